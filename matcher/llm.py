"""The vision-LLM verifier inside the project: which pairs to send, the verdict cache, money and batches.

The call itself lives in matcher/pipeline/verify.py (plain Python); this module adds what needs
Django: settings, the cache and ledger in `LlmVerdictRecord`, the daily spend cap, spend per
run and per SKU, and Batch API jobs in `LlmBatchJob`.

Money: every paid call leaves an `LlmVerdictRecord` with its cost (a failed but billed call too,
with ok=False), so the ledger is the table and spend is a SUM over it. Cached answers cost
nothing and leave no new row. The cap is checked before each call; workers racing past it
together can overshoot by at most one call each (cents), which is accepted rather than
serialising every call through a lock.

Without settings.GEMINI_API_KEY the verifier is off: callers check `verifier_enabled()` and
leave `PairEvidence.llm` empty. `verify_pairs` called anyway answers every pair with an error
verdict, which sends it to review rather than auto-matching on evidence nobody checked.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Iterable

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Sum
from django.utils import timezone

from matcher.models import LlmBatchJob, LlmVerdictRecord
from matcher.pipeline.types import Decision, LlmVerdict

if TYPE_CHECKING:
    from matcher.pipeline.decide import DecisionPolicy
    from matcher.pipeline.verify import GeminiVerifier, VerifyResult

log = logging.getLogger(__name__)

DEFAULT_PROMPT_VERSION = "verify_v1"
# A fast verdict this unsure of itself is asked again of the escalation model.
DEFAULT_ESCALATE_BAND: tuple[float, float] = (0.4, 0.8)
# The Batch API takes at most 20 MB of inline requests; stay well under it.
BATCH_INLINE_MAX_BYTES = 15 * 1024 * 1024
# A job still PREPARING after this long was interrupted between its row and the remote submit.
BATCH_PREPARING_STALE = timedelta(minutes=10)
OFF_ERROR = "LLM 검증 꺼짐: GEMINI_API_KEY 없음 (verifier off)"


@dataclass
class LlmPairRequest:
    """One (our SKU, competitor listing) pair to verify. A = ours, B = the listing.

    images_* are JPEG bytes: the regions the pipeline chose first, then originals where they help
    (see `matcher.pipeline.verify.jpeg_bytes`). The hashes identify the pair for the cache: use
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


@dataclass(frozen=True)
class Spend:
    usd: Decimal
    krw: int
    calls: int


# --- switches and keys -----------------------------------------------------------------------------


def verifier_enabled() -> bool:
    return bool(settings.GEMINI_API_KEY)


def prompt_version() -> str:
    return getattr(settings, "GEMINI_PROMPT_VERSION", "") or DEFAULT_PROMPT_VERSION


def cache_key(image_a: str, image_b: str, version: str, model: str) -> str:
    """Order matters: A is always our SKU."""
    raw = "\x1f".join([image_a, image_b, version, model.removeprefix("models/")])
    return hashlib.sha256(raw.encode()).hexdigest()


def usd_to_krw(usd: Decimal) -> int:
    return int((Decimal(usd) * settings.USD_TO_KRW).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


# --- which pairs are worth paying for --------------------------------------------------------------


def should_verify(decision: Decision, policy: "DecisionPolicy") -> bool:
    """Send a pair only when the verdict could change its bucket.

    `decision` is the decision made without an LLM verdict. Already auto means certain (the
    gates all passed); a pair so unlikely that even a confident "match" (+llm_weight log-odds)
    cannot lift it into review is not worth a call either.
    """
    if decision.bucket == "auto":
        return False
    c = min(max(decision.confidence, 1e-9), 1 - 1e-9)
    lifted = math.log(c / (1 - c)) + policy.llm_weight
    return 1 / (1 + math.exp(-lifted)) >= policy.review_threshold


# --- the verifier --------------------------------------------------------------------------------


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def _limiter(model: str):
    return _limiter_cached(settings.RATE_LIMIT_REDIS_URL, model, settings.GEMINI_RPM, settings.GEMINI_TPM)


@lru_cache(maxsize=16)
def _limiter_cached(url: str, model: str, rpm: int, tpm: int):
    import redis

    from matcher.pipeline.ratelimit import RedisRateLimiter

    # Quotas are per model, so each model has its own window.
    return RedisRateLimiter(
        redis.Redis.from_url(url), name=f"gemini:{model}", requests=rpm, tokens=tpm, window_s=60.0,
        sleep=lambda s: _sleep(s),
    )


def _prices() -> dict[str, tuple[Decimal, Decimal]]:
    return {k: (Decimal(v[0]), Decimal(v[1])) for k, v in settings.GEMINI_PRICES_PER_MTOK.items()}


def verifier(*, version: str | None = None) -> "GeminiVerifier":
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
        float(getattr(settings, "GEMINI_BACKOFF_BASE_S", 1.0)),
    )
    return _verifier_cached(key)


@lru_cache(maxsize=8)
def _verifier_cached(key: tuple) -> "GeminiVerifier":
    from matcher.pipeline.verify import GeminiVerifier, VerifierConfig, load_prompt

    api_key, base_url, model, media_resolution, timeout_s, max_retries, prompts_dir, version, _, backoff = key
    config = VerifierConfig(
        api_key=api_key,
        model=model,
        prompt=load_prompt(prompts_dir, version),
        base_url=base_url or None,
        media_resolution=media_resolution,
        timeout_s=timeout_s,
        max_retries=max_retries,
        prices=_prices(),
        backoff_base_s=backoff,
    )
    # The sleep is looked up at call time so tests can replace the clock without rebuilding.
    return GeminiVerifier(config, limiter_for=_limiter, sleep=lambda s: _sleep(s))


# --- money ---------------------------------------------------------------------------------------


def _day_start() -> datetime:
    return timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)


def _spend(records) -> Spend:
    agg = records.aggregate(usd=Sum("cost_usd"), calls=Count("id"))
    usd = agg["usd"] or Decimal("0")
    return Spend(usd=usd, krw=usd_to_krw(usd), calls=agg["calls"] or 0)


def spend_today() -> Spend:
    """Since local midnight (settings.TIME_ZONE), online and collected batch calls."""
    return _spend(LlmVerdictRecord.objects.filter(created_at__gte=_day_start()))


def spend_for_run(run_id: int) -> Spend:
    return _spend(LlmVerdictRecord.objects.filter(run_id=run_id))


def spend_for_product(product_id: int) -> Spend:
    return _spend(LlmVerdictRecord.objects.filter(product_id=product_id))


def spend_cap_reached() -> bool:
    return spend_today().usd >= settings.GEMINI_DAILY_SPEND_CAP_USD


def _cap_error() -> str:
    cap = settings.GEMINI_DAILY_SPEND_CAP_USD
    return f"일일 LLM 비용 한도 도달 (daily spend cap {cap} USD reached): not verified"


# --- evidence ------------------------------------------------------------------------------------


def verdict_to_evidence(v: LlmVerdict) -> dict[str, Any]:
    """What Match.evidence["llm"] holds: the verdict, its reasoning, its cost in USD and KRW."""
    cost = Decimal(v.cost_usd or "0")
    return {
        "is_match": v.is_match,
        "confidence": v.confidence,
        "candidate_type": v.candidate_type,
        "matched_features": list(v.matched_features),
        "mismatched_features": list(v.mismatched_features),
        "reasoning": v.reasoning,
        "model": v.model,
        "prompt_version": v.prompt_version,
        "error": v.error,
        "cost_usd": str(cost),
        "cost_krw": usd_to_krw(cost),
        "cached": v.cached,
    }


def verdict_from_evidence(data: dict[str, Any]) -> LlmVerdict:
    names = {f.name for f in dataclasses.fields(LlmVerdict)}
    return LlmVerdict(**{k: v for k, v in data.items() if k in names})


def _verdict_from_record(record: LlmVerdictRecord) -> LlmVerdict:
    v = verdict_from_evidence(record.verdict)
    v.cost_usd = "0"
    v.cached = True
    return v


# --- the ledger ----------------------------------------------------------------------------------


def _record(
    *,
    key: str,
    image_a: str,
    image_b: str,
    model: str,
    version: str,
    verdict: LlmVerdict,
    input_tokens: int,
    output_tokens: int,
    batch: bool,
    run_id: int | None,
    product_id: int | None,
) -> None:
    """Write the paid call. A usable verdict takes the cache key; a failed one, or a second copy from a
    worker that raced us to the same pair, gets a key of its own: it is still money spent."""
    cost = Decimal(verdict.cost_usd or "0")
    ok = verdict.error is None
    if not ok and cost == 0 and not input_tokens:
        return  # nothing was billed (e.g. 5xx until we gave up): nothing to keep
    fields = dict(
        image_a=image_a,
        image_b=image_b,
        model=model,
        prompt_version=version,
        verdict=dataclasses.asdict(verdict),
        ok=ok,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=cost,
        batch=batch,
        run_id=run_id,
        product_id=product_id,
    )
    if ok:
        try:
            with transaction.atomic():
                LlmVerdictRecord.objects.create(key=key, **fields)
            return
        except IntegrityError:
            pass
    suffix = "failed" if not ok else "duplicate"
    unique = hashlib.sha256(f"{key}:{suffix}:{uuid.uuid4().hex}".encode()).hexdigest()
    LlmVerdictRecord.objects.create(key=unique, **fields)


def _cached(key: str) -> LlmVerdictRecord | None:
    return LlmVerdictRecord.objects.filter(key=key, ok=True).first()


# --- online --------------------------------------------------------------------------------------


def _one(
    pair: LlmPairRequest, *, model: str, version: str, run_id: int | None, product_id: int | None
) -> LlmVerdict:
    from matcher.pipeline.verify import VerifyRequest, error_verdict

    key = cache_key(pair.image_a_hash, pair.image_b_hash, version, model)
    record = _cached(key)
    if record is not None:
        return _verdict_from_record(record)
    if spend_cap_reached():
        return error_verdict(_cap_error(), model=model, prompt_version=version)
    result: VerifyResult = verifier(version=version).verify(
        VerifyRequest(pair.images_a, pair.images_b, title_a=pair.title_a, title_b=pair.title_b),
        model=model,
    )
    _record(
        key=key,
        image_a=pair.image_a_hash,
        image_b=pair.image_b_hash,
        model=model,
        version=version,
        verdict=result.verdict,
        input_tokens=result.usage.input_tokens,
        output_tokens=result.usage.output_tokens,
        batch=False,
        run_id=run_id,
        product_id=product_id,
    )
    return result.verdict


def verify_pairs(
    *, pairs: list[LlmPairRequest], run_id: int | None, product_id: int | None
) -> list[LlmVerdict]:
    """Online verdicts, one per pair in order: cache first, then rate-limited, spend-capped calls.

    A fast verdict inside the pair's escalate_band is asked again of settings.GEMINI_ESCALATION_MODEL;
    the stronger verdict replaces it and the cost is the sum. If that second call fails, the pair
    gets an error verdict (no automatic decision) — an unsure answer must not count as a sure one.
    Never raises for a failed call. Call outside a transaction: each paid call is recorded at once.
    """
    from matcher.pipeline.verify import error_verdict, needs_escalation

    version = prompt_version()
    fast_model = settings.GEMINI_MODEL
    strong_model = settings.GEMINI_ESCALATION_MODEL
    out: list[LlmVerdict] = []
    for pair in pairs:
        if not verifier_enabled():
            out.append(error_verdict(OFF_ERROR, prompt_version=version))
            continue
        sku = pair.product_id if pair.product_id is not None else product_id
        fast = _one(pair, model=fast_model, version=version, run_id=run_id, product_id=sku)
        if not needs_escalation(fast, pair.escalate_band) or strong_model == fast_model:
            out.append(fast)
            continue
        strong = _one(pair, model=strong_model, version=version, run_id=run_id, product_id=sku)
        total = str(Decimal(fast.cost_usd) + Decimal(strong.cost_usd))
        if strong.error:
            error = f"escalation to {strong_model} failed: {strong.error}"
            failed = dataclasses.replace(fast, error=error, cost_usd=total, cached=False)
            out.append(failed)
        else:
            out.append(dataclasses.replace(strong, cost_usd=total, cached=fast.cached and strong.cached))
    return out


# --- batch ---------------------------------------------------------------------------------------


def _display_name(job: LlmBatchJob) -> str:
    return f"pricematch-llm-job-{job.id}"


def _fail(job: LlmBatchJob, error: str) -> LlmBatchJob:
    LlmBatchJob.objects.filter(id=job.id).exclude(state=LlmBatchJob.State.COLLECTED).update(
        state=LlmBatchJob.State.FAILED, error=error[:2000], updated_at=timezone.now()
    )
    job.refresh_from_db()
    return job


def batch_submit(*, run_id: int | None, pairs: list[LlmPairRequest]) -> LlmBatchJob:
    """Submit the pairs as one Gemini Batch API job (half price) with the fast model.

    Pairs already in the cache, and repeats within the list, are left out: nothing is paid twice.
    A job with nothing left to ask is COLLECTED at once. When the verifier is off, the spend cap
    is reached or the submit fails, the job is FAILED with the reason and the caller sends the
    pairs to review. Raises ValueError if the inline payload is too large: split the pairs.
    Poll with `batch_poll_and_collect` (task `llm_batch_poll`).
    """
    model = settings.GEMINI_MODEL
    version = prompt_version()
    todo: list[tuple[str, LlmPairRequest]] = []
    seen: set[str] = set()
    for pair in pairs:
        key = cache_key(pair.image_a_hash, pair.image_b_hash, version, model)
        if key in seen:
            continue
        seen.add(key)
        todo.append((key, pair))
    cached = set(LlmVerdictRecord.objects.filter(key__in=list(seen), ok=True).values_list("key", flat=True))
    todo = [(k, p) for k, p in todo if k not in cached]
    payload = sum(len(b) for _, p in todo for b in (*p.images_a, *p.images_b)) * 4 // 3
    if payload > BATCH_INLINE_MAX_BYTES:
        raise ValueError(f"batch too large for inline requests ({payload} bytes base64); submit fewer pairs")

    job = LlmBatchJob.objects.create(
        run_id=run_id,
        model=model,
        prompt_version=version,
        requests=[
            {
                "key": k,
                "match_id": p.match_id,
                "product_id": p.product_id,
                "image_a": p.image_a_hash,
                "image_b": p.image_b_hash,
            }
            for k, p in todo
        ],
    )
    if not verifier_enabled():
        return _fail(job, OFF_ERROR)
    if not todo:
        LlmBatchJob.objects.filter(id=job.id).update(
            state=LlmBatchJob.State.COLLECTED, updated_at=timezone.now()
        )
        job.refresh_from_db()
        return job
    if spend_cap_reached():
        return _fail(job, _cap_error())

    from matcher.pipeline.verify import BatchError, VerifyRequest

    try:
        name = verifier(version=version).batch_create(
            [VerifyRequest(p.images_a, p.images_b, p.title_a, p.title_b) for _, p in todo],
            keys=[k for k, _ in todo],
            display_name=_display_name(job),
            model=model,
        )
    except BatchError as e:
        return _fail(job, str(e))
    LlmBatchJob.objects.filter(id=job.id, state=LlmBatchJob.State.PREPARING).update(
        remote_name=name, state=LlmBatchJob.State.SUBMITTED, updated_at=timezone.now()
    )
    job.refresh_from_db()
    return job


def batch_poll_and_collect(*, job_id: int) -> LlmBatchJob:
    """Ask the Batch API about a job; when it has finished, store every verdict in the cache. Safe to repeat.

    Works from any process after a restart: a SUBMITTED job is found again by its remote name, and a
    job interrupted between its row and the remote submit is looked up by its display name.
    """
    from matcher.pipeline.verify import BatchError

    job = LlmBatchJob.objects.get(id=job_id)
    if job.state in (LlmBatchJob.State.COLLECTED, LlmBatchJob.State.FAILED):
        return job
    if not verifier_enabled():
        return job  # keep it: polling resumes when the key is back
    client = verifier(version=job.prompt_version)

    if job.state == LlmBatchJob.State.PREPARING:
        if timezone.now() - job.updated_at < BATCH_PREPARING_STALE:
            return job  # its submit may still be running in another worker
        try:
            name = client.batch_find(_display_name(job))
        except BatchError as e:
            log.warning("LLM batch job %s: %s", job.id, e)
            return job
        if name is None:
            # The images are not kept in the job, so it cannot be re-sent from here.
            return _fail(job, "submit interrupted before the provider accepted it; submit the pairs again")
        LlmBatchJob.objects.filter(id=job.id, state=LlmBatchJob.State.PREPARING).update(
            remote_name=name, state=LlmBatchJob.State.SUBMITTED, updated_at=timezone.now()
        )
        job.refresh_from_db()

    try:
        status = client.batch_get(job.remote_name, model=job.model)
    except BatchError as e:
        log.warning("LLM batch job %s: %s", job.id, e)
        return job
    if not status.done:
        LlmBatchJob.objects.filter(id=job.id).update(updated_at=timezone.now())
        job.refresh_from_db()
        return job
    if status.state != "JOB_STATE_SUCCEEDED" or status.results is None:
        return _fail(job, f"batch {status.state}: {status.error}".strip())
    return _collect(job.id, status.results)


@transaction.atomic
def _collect(job_id: int, results: list[tuple[str | None, "VerifyResult"]]) -> LlmBatchJob:
    # The row lock makes a second collector (a duplicate task) wait, then see COLLECTED and stop.
    job = LlmBatchJob.objects.select_for_update().get(id=job_id)
    if job.state != LlmBatchJob.State.SUBMITTED:
        return job
    by_key = {r["key"]: r for r in job.requests}
    total = Decimal("0")
    for index, (key, result) in enumerate(results):
        meta = by_key.get(key) if key else None
        if meta is None and index < len(job.requests):
            meta = job.requests[index]  # responses come back in request order
        if meta is None:
            continue
        total += Decimal(result.verdict.cost_usd or "0")
        _record(
            key=meta["key"],
            image_a=meta["image_a"],
            image_b=meta["image_b"],
            model=job.model,
            version=job.prompt_version,
            verdict=result.verdict,
            input_tokens=result.usage.input_tokens,
            output_tokens=result.usage.output_tokens,
            batch=True,
            run_id=job.run_id,
            product_id=meta.get("product_id"),
        )
    job.state = LlmBatchJob.State.COLLECTED
    job.cost_usd = total
    job.error = ""
    job.save(update_fields=["state", "cost_usd", "error", "updated_at"])
    return job


def batch_results(*, job_id: int) -> list[tuple[dict[str, Any], LlmVerdict]]:
    """For a collected job: each request's meta ({key, match_id, product_id, image_a, image_b}) and verdict.

    A request without a usable verdict gets an error verdict (review, never auto). The verdicts are
    the cached ones, so a later `verify_pairs` on the same pairs also gets them without paying.
    """
    from matcher.pipeline.verify import error_verdict

    job = LlmBatchJob.objects.get(id=job_id)
    keys = [r["key"] for r in job.requests]
    records = {r.key: r for r in LlmVerdictRecord.objects.filter(key__in=keys, ok=True)}
    out = []
    for meta in job.requests:
        record = records.get(meta["key"])
        if record is not None:
            out.append((meta, _verdict_from_record(record)))
        else:
            reason = job.error or "no usable verdict in the batch"
            out.append((meta, error_verdict(reason, model=job.model, prompt_version=job.prompt_version)))
    return out


def batch_jobs_open() -> Iterable[int]:
    """Jobs a restarted worker should keep polling."""
    return LlmBatchJob.objects.filter(
        state__in=[LlmBatchJob.State.PREPARING, LlmBatchJob.State.SUBMITTED]
    ).values_list("id", flat=True)
