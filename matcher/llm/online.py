"""Online verification: which pairs are worth a call, the verdict cache and ledger, and `verify_pairs`.

`verify_pairs` called while the verifier is off answers every pair with an error verdict, which
sends it to review rather than auto-matching on evidence nobody checked.
"""
from __future__ import annotations

import dataclasses
import hashlib
import uuid
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction

from matcher.decisions import verdict_from_evidence
from matcher.llm.config import (
    OFF_ERROR,
    LlmPairRequest,
    cache_key,
    prompt_version,
    verifier,
    verifier_enabled,
)
from matcher.llm.spend import cap_error, spend_cap_reached
from matcher.models import LlmVerdictRecord
from matcher.pipeline.types import LlmVerdict
from matcher.pipeline.verify import VerifyRequest, error_verdict, needs_escalation

# --- the ledger and cache ----------------------------------------------------------------------------


def verdict_from_record(record: LlmVerdictRecord) -> LlmVerdict:
    """A paid answer given again: free, and marked as coming from the cache."""
    v = verdict_from_evidence(record.verdict)
    v.cost_usd = "0"
    v.cached = True
    return v


def cached_record(key: str) -> LlmVerdictRecord | None:
    return LlmVerdictRecord.objects.filter(key=key, ok=True).first()


def record_call(
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


def verify_request(pair: LlmPairRequest) -> VerifyRequest:
    return VerifyRequest(pair.images_a, pair.images_b, title_a=pair.title_a, title_b=pair.title_b)


# --- online calls ------------------------------------------------------------------------------------


def _one(
    pair: LlmPairRequest, *, model: str, version: str, run_id: int | None, product_id: int | None
) -> LlmVerdict:
    key = cache_key(pair.image_a_hash, pair.image_b_hash, version, model)
    record = cached_record(key)
    if record is not None:
        return verdict_from_record(record)
    if spend_cap_reached():
        return error_verdict(cap_error(), model=model, prompt_version=version)
    result = verifier(version=version).verify(verify_request(pair), model=model)
    record_call(
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


def combine_escalation(fast: LlmVerdict, strong: LlmVerdict) -> LlmVerdict:
    """The stronger verdict replaces the unsure one and the costs add up; if the escalation failed, the
    pair gets an error verdict (no automatic decision) — an unsure answer must not count as a sure one."""
    total = str(Decimal(fast.cost_usd or "0") + Decimal(strong.cost_usd or "0"))
    if strong.error:
        return dataclasses.replace(
            fast, error=f"escalation to {strong.model} failed: {strong.error}", cost_usd=total, cached=False
        )
    return dataclasses.replace(strong, cost_usd=total, cached=fast.cached and strong.cached)


def verify_pairs(
    *, pairs: list[LlmPairRequest], run_id: int | None, product_id: int | None
) -> list[LlmVerdict]:
    """Online verdicts, one per pair in order: cache first, then rate-limited, spend-capped calls.

    A fast verdict inside the pair's escalate_band is asked again of settings.GEMINI_ESCALATION_MODEL
    (see `combine_escalation`). Never raises for a failed call. Call outside a transaction: each paid
    call is recorded at once.
    """
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
        out.append(combine_escalation(fast, strong))
    return out
