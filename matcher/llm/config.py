"""The verifier's switches and construction: the key, prompt version, models, the rate limiter, bulk mode.

The call itself lives in matcher/pipeline/verify/ (plain Python); this builds it from settings.
Without settings.GEMINI_API_KEY the verifier is off: callers check `verifier_enabled()`.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from django.conf import settings

from matcher.models import MatchRun
from matcher.pipeline.ratelimit import RedisRateLimiter
from matcher.pipeline.verify import GeminiVerifier, VerifierConfig, load_prompt

DEFAULT_PROMPT_VERSION = "verify_v1"
# A fast verdict this unsure of itself is asked again of the escalation model.
DEFAULT_ESCALATE_BAND: tuple[float, float] = (0.4, 0.8)
OFF_ERROR = "LLM 검증 꺼짐: GEMINI_API_KEY 없음 (verifier off)"


@dataclass
class LlmPairRequest:
    """One (our SKU, competitor listing) pair to verify. A = ours, B = the listing.

    images_* are JPEG bytes: the regions the pipeline chose first, then originals where they help
    (see `matcher.llm.images.verification_jpegs`). The hashes identify the pair for the cache: use
    the primary image's ImageFile.sha256 on each side.
    """

    image_a_hash: str
    image_b_hash: str
    images_a: list[bytes]
    images_b: list[bytes]
    title_a: str = ""
    title_b: str = ""
    escalate_band: tuple[float, float] | None = DEFAULT_ESCALATE_BAND
    product_id: int | None = None  # per-SKU spend; defaults to verify_pairs(product_id=...)
    match_id: int | None = None  # carried through batch jobs so results find their Match


def verifier_enabled() -> bool:
    return bool(settings.GEMINI_API_KEY)


def prompt_version() -> str:
    return settings.GEMINI_PROMPT_VERSION or DEFAULT_PROMPT_VERSION


def cache_key(image_a: str, image_b: str, version: str, model: str) -> str:
    """Order matters: A is always our SKU."""
    raw = "\x1f".join([image_a, image_b, version, model.removeprefix("models/")])
    return hashlib.sha256(raw.encode()).hexdigest()


# --- bulk mode: a run big enough asks the Batch API (half price) instead of calling online ------------


def batch_mode_for_pairs(total: int | None) -> bool:
    """Bulk (Batch API) for a run of `total` (SKU, listing) pairs: from GEMINI_BATCH_MIN_PAIRS; 0 turns it off."""
    minimum = settings.GEMINI_BATCH_MIN_PAIRS
    return minimum > 0 and total is not None and total >= minimum


def batch_mode_for_run(run_id: int | None) -> bool:
    """Bulk (Batch API) or online: by the run's size in (SKU, listing) pairs, so all its batches agree."""
    if run_id is None or settings.GEMINI_BATCH_MIN_PAIRS <= 0:
        return False
    return batch_mode_for_pairs(MatchRun.objects.filter(id=run_id).values_list("listings_total", flat=True).first())


# --- the verifier --------------------------------------------------------------------------------


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def _limiter(model: str) -> RedisRateLimiter:
    return _limiter_cached(settings.RATE_LIMIT_REDIS_URL, model, settings.GEMINI_RPM, settings.GEMINI_TPM)


@lru_cache(maxsize=16)
def _limiter_cached(url: str, model: str, rpm: int, tpm: int) -> RedisRateLimiter:
    import redis  # only processes that call the LLM need a Redis client

    # Quotas are per model, so each model has its own window.
    return RedisRateLimiter(
        redis.Redis.from_url(url), name=f"gemini:{model}", requests=rpm, tokens=tpm, window_s=60.0,
        sleep=lambda s: _sleep(s),
    )


def prices() -> dict[str, tuple[Decimal, Decimal]]:
    """USD per million input and output tokens, by model."""
    return {k: (Decimal(v[0]), Decimal(v[1])) for k, v in settings.GEMINI_PRICES_PER_MTOK.items()}


def verifier(*, version: str | None = None) -> GeminiVerifier:
    """The process's verifier for the current settings (rebuilt when they change, e.g. in tests)."""
    version = version or prompt_version()
    key = (
        settings.GEMINI_API_KEY,
        settings.GEMINI_BASE_URL,
        settings.GEMINI_MODEL,
        settings.GEMINI_MEDIA_RESOLUTION,
        float(settings.GEMINI_TIMEOUT_S),
        int(settings.GEMINI_MAX_RETRIES),
        str(settings.PROMPTS_DIR),
        version,
        tuple(sorted((k, str(v)) for k, v in settings.GEMINI_PRICES_PER_MTOK.items())),
        float(settings.GEMINI_BACKOFF_BASE_S),
    )
    return _verifier_cached(key)


@lru_cache(maxsize=8)
def _verifier_cached(key: tuple[Any, ...]) -> GeminiVerifier:
    api_key, base_url, model, media_resolution, timeout_s, max_retries, prompts_dir, version, _, backoff = key
    config = VerifierConfig(
        api_key=api_key,
        model=model,
        prompt=load_prompt(prompts_dir, version),
        base_url=base_url or None,
        media_resolution=media_resolution,
        timeout_s=timeout_s,
        max_retries=max_retries,
        prices=prices(),
        backoff_base_s=backoff,
    )
    # The sleep is looked up at call time so tests can replace the clock without rebuilding.
    return GeminiVerifier(config, limiter_for=_limiter, sleep=lambda s: _sleep(s))
