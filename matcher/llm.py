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
from collections import Counter
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
    from matcher.pipeline.policy import DecisionPolicy
    from matcher.pipeline.types import PairEvidence
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
    return settings.GEMINI_PROMPT_VERSION or DEFAULT_PROMPT_VERSION


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
        float(settings.GEMINI_BACKOFF_BASE_S),
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


def committed_batch_usd(*, exclude_job_id: int | None = None) -> Decimal:
    """The estimated cost of Batch API jobs still out: billed (and recorded) only once collected."""
    jobs = LlmBatchJob.objects.filter(state__in=[LlmBatchJob.State.PREPARING, LlmBatchJob.State.SUBMITTED])
    if exclude_job_id is not None:
        jobs = jobs.exclude(id=exclude_job_id)
    return jobs.aggregate(usd=Sum("cost_usd"))["usd"] or Decimal(0)


def spend_cap_reached() -> bool:
    """Today's spend plus what open batch jobs are expected to cost has reached the daily cap."""
    return spend_today().usd + committed_batch_usd() >= settings.GEMINI_DAILY_SPEND_CAP_USD


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


_OPEN_STATES = (LlmBatchJob.State.PREPARING, LlmBatchJob.State.SUBMITTED)


def _fail(job: LlmBatchJob, error: str) -> LlmBatchJob:
    """Mark the job failed and, in the same transaction, send its pairs to review with the reason."""
    with transaction.atomic():
        failed = (
            LlmBatchJob.objects.filter(id=job.id)
            .exclude(state__in=[LlmBatchJob.State.COLLECTED, LlmBatchJob.State.FAILED])
            .update(
                state=LlmBatchJob.State.FAILED,
                error=error[:2000],
                cost_usd=Decimal(0),
                updated_at=timezone.now(),
            )
        )
        if failed:
            _write_back_job(job.id)
    job.refresh_from_db()
    return job


@dataclass
class _Todo:
    """One request of a job: a cache key, the pair to send, and the Match rows waiting for its verdict."""

    key: str
    pair: LlmPairRequest
    match_ids: list[int]


def _dedupe(pairs: Iterable[LlmPairRequest], *, model: str, version: str) -> list[_Todo]:
    """One request per cache key (two listings re-using one photo ask once); already-paid keys left out."""
    todo: dict[str, _Todo] = {}
    for pair in pairs:
        key = cache_key(pair.image_a_hash, pair.image_b_hash, version, model)
        if key not in todo:
            todo[key] = _Todo(key, pair, [])
        if pair.match_id is not None:
            todo[key].match_ids.append(pair.match_id)
    cached = set(LlmVerdictRecord.objects.filter(key__in=list(todo), ok=True).values_list("key", flat=True))
    return [t for k, t in todo.items() if k not in cached]


def _verify_request(pair: LlmPairRequest):
    from matcher.pipeline.verify import VerifyRequest

    return VerifyRequest(pair.images_a, pair.images_b, title_a=pair.title_a, title_b=pair.title_b)


def _payload_bytes(pair: LlmPairRequest) -> int:
    return sum(len(b) for b in (*pair.images_a, *pair.images_b)) * 4 // 3  # base64 in the JSON body


def _job_create(*, run_id: int | None, model: str, version: str, todo: list[_Todo]) -> LlmBatchJob:
    return LlmBatchJob.objects.create(
        run_id=run_id,
        model=model,
        prompt_version=version,
        requests=[
            {
                "key": t.key,
                "match_id": t.match_ids[0] if t.match_ids else t.pair.match_id,
                "match_ids": t.match_ids,
                "product_id": t.pair.product_id,
                "image_a": t.pair.image_a_hash,
                "image_b": t.pair.image_b_hash,
            }
            for t in todo
        ],
    )


def _estimate_usd(todo: list[_Todo], *, model: str, version: str) -> Decimal:
    """What the job will cost at most roughly, before anybody has billed it (see `_batch_cap_exceeded`)."""
    from matcher.pipeline.verify import Usage, cost_usd

    client = verifier(version=version)
    tokens_in = sum(client.estimate_input_tokens(_verify_request(t.pair)) for t in todo)
    usage = Usage(input_tokens=tokens_in, output_tokens=BATCH_ESTIMATE_OUTPUT_TOKENS * len(todo))
    return cost_usd(_prices(), model, usage, batch=True)


def _batch_cap_exceeded(estimate: Decimal, *, job_id: int) -> bool:
    """Batch verdicts are billed (and recorded) only when collected, so jobs still open count with their
    estimate: otherwise a whole-catalogue run could submit far past the daily cap before the first answer."""
    committed = committed_batch_usd(exclude_job_id=job_id)
    return spend_today().usd + committed + estimate >= settings.GEMINI_DAILY_SPEND_CAP_USD


def _job_send(job: LlmBatchJob, todo: list[_Todo]) -> LlmBatchJob:
    if not verifier_enabled():
        return _fail(job, OFF_ERROR)
    if not todo:
        LlmBatchJob.objects.filter(id=job.id).update(
            state=LlmBatchJob.State.COLLECTED, updated_at=timezone.now()
        )
        job.refresh_from_db()
        return job
    estimate = _estimate_usd(todo, model=job.model, version=job.prompt_version)
    if _batch_cap_exceeded(estimate, job_id=job.id):
        return _fail(job, _cap_error())
    # Counted against the cap from now on, until the collected cost replaces it.
    LlmBatchJob.objects.filter(id=job.id).update(cost_usd=estimate)

    from matcher.pipeline.verify import BatchError

    try:
        name = verifier(version=job.prompt_version).batch_create(
            [_verify_request(t.pair) for t in todo],
            keys=[t.key for t in todo],
            display_name=_display_name(job),
            model=job.model,
        )
    except BatchError as e:
        return _fail(job, str(e))
    LlmBatchJob.objects.filter(id=job.id, state=LlmBatchJob.State.PREPARING).update(
        remote_name=name, state=LlmBatchJob.State.SUBMITTED, updated_at=timezone.now()
    )
    job.refresh_from_db()
    return job


def batch_submit(*, run_id: int | None, pairs: list[LlmPairRequest], model: str | None = None) -> LlmBatchJob:
    """Submit the pairs as one Gemini Batch API job (half price), with the fast model unless told otherwise.

    Pairs already in the cache, and repeats within the list, are left out: nothing is paid twice.
    A job with nothing left to ask is COLLECTED at once. When the verifier is off, the spend cap
    (today's spend plus the estimates of jobs still open) would be passed, or the submit fails, the
    job is FAILED with the reason and the Match rows of its pairs (`match_id`) go to review with it.
    Raises ValueError if the inline payload is too large: split the pairs.
    Poll with `batch_poll_and_collect` (task `llm_batch_poll`).
    """
    model = model or settings.GEMINI_MODEL
    version = prompt_version()
    todo = _dedupe(pairs, model=model, version=version)
    payload = sum(_payload_bytes(t.pair) for t in todo)
    if payload > BATCH_INLINE_MAX_BYTES:
        raise ValueError(f"batch too large for inline requests ({payload} bytes base64); submit fewer pairs")
    job = _job_create(run_id=run_id, model=model, version=version, todo=todo)
    return _job_send(job, todo)


def batch_poll_and_collect(*, job_id: int) -> LlmBatchJob:
    """Ask the Batch API about a job; when it has finished, store every verdict in the cache and write
    the verdicts back to the Match rows waiting for them. Safe to repeat.

    Works from any process after a restart: a SUBMITTED job is found again by its remote name, and a
    job interrupted between its row and the remote submit is looked up by its display name. Verdicts
    of the fast model inside the uncertain band go on to an escalation job (`batch_submit_awaiting`).
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
    job, escalate = _collect(job.id, status.results)
    if escalate:
        # Outside the collect transaction: building the requests reads images and calls the provider.
        # A crash here leaves the pairs awaiting with no job; the periodic sweep submits them.
        batch_submit_awaiting(match_ids=escalate)
    return job


@transaction.atomic
def _collect(job_id: int, results: list[tuple[str | None, "VerifyResult"]]) -> tuple[LlmBatchJob, list[int]]:
    # The row lock makes a second collector (a duplicate task) wait, then see COLLECTED and stop.
    job = LlmBatchJob.objects.select_for_update().get(id=job_id)
    if job.state != LlmBatchJob.State.SUBMITTED:
        return job, []
    requests = [dict(r) for r in job.requests]
    by_key = {r["key"]: r for r in requests}
    total = Decimal("0")
    for index, (key, result) in enumerate(results):
        meta = by_key.get(key) if key else None
        if meta is None and index < len(requests):
            meta = requests[index]  # responses come back in request order
        if meta is None:
            continue
        cost = Decimal(result.verdict.cost_usd or "0")
        total += cost
        # What this job paid for each request, and why an answer was unusable: the write-back shows both.
        meta["cost_usd"] = str(cost)
        meta["ok"] = result.verdict.error is None
        meta["error"] = result.verdict.error or ""
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
    job.requests = requests
    job.state = LlmBatchJob.State.COLLECTED
    job.cost_usd = total
    job.error = ""
    job.save(update_fields=["requests", "state", "cost_usd", "error", "updated_at"])
    escalate = _write_back_job(job.id)
    job.refresh_from_db()
    return job, escalate


def _job_verdicts(job: LlmBatchJob) -> list[tuple[dict[str, Any], LlmVerdict]]:
    from matcher.pipeline.verify import error_verdict

    keys = [r["key"] for r in job.requests]
    records = {r.key: r for r in LlmVerdictRecord.objects.filter(key__in=keys, ok=True)}
    out = []
    for meta in job.requests:
        record = records.get(meta["key"])
        cost = Decimal(meta.get("cost_usd") or "0")
        if record is not None and job.state == LlmBatchJob.State.COLLECTED:
            verdict = _verdict_from_record(record)
            if meta.get("ok"):  # answered by this job, so its cost is this pair's
                verdict = dataclasses.replace(verdict, cost_usd=str(cost), cached=False)
            out.append((meta, verdict))
        else:
            reason = meta.get("error") or job.error or "no usable verdict in the batch"
            verdict = error_verdict(reason, model=job.model, prompt_version=job.prompt_version, cost=cost)
            out.append((meta, verdict))
    return out


def batch_results(*, job_id: int) -> list[tuple[dict[str, Any], LlmVerdict]]:
    """For a finished job: each request's meta ({key, match_id, match_ids, product_id, image_a, image_b, and
    once collected cost_usd, ok, error}) and its verdict with what this job paid for it.

    A request without a usable verdict gets an error verdict with the reason (review, never auto). The
    verdicts are also in the cache, so a later `verify_pairs` on the same pairs gets them without paying.
    """
    return _job_verdicts(LlmBatchJob.objects.get(id=job_id))


def batch_job_open(job_id: int) -> bool:
    return LlmBatchJob.objects.filter(id=job_id, state__in=_OPEN_STATES).exists()


def batch_jobs_open() -> Iterable[int]:
    """Jobs a restarted worker should keep polling."""
    return LlmBatchJob.objects.filter(state__in=_OPEN_STATES).values_list("id", flat=True)


# --- bulk mode in match runs ---------------------------------------------------------------------
#
# A run big enough (settings.GEMINI_BATCH_MIN_PAIRS) does not call the LLM online. Each pair that
# would be sent is written as review with BATCH_AWAITING_REASON and a marker in
# Match.evidence["llm_pending"] that holds everything needed to ask later and decide again: the
# image hashes and boxes, the models and prompt version, and the evidence without the verdict.
# `batch_submit_awaiting` turns markers into Batch API jobs (a Match row is held by at most one
# job: Match.llm_batch_job, set under a row lock, so a re-processed batch or a racing sweep never
# submits a pair twice). Collecting a job writes each verdict back (`_apply_verdicts`): decided
# again with the Match's own ThresholdSet, unless a reviewer decided it, it left the queue, or the
# listing changed since. Fast verdicts inside the uncertain band are asked again of the escalation
# model in a batch job of their own (half price on the dear model too, where most of the money is).
#
# Marker states: no job + marker = to submit; job + marker = in flight; no marker = decided.

BATCH_AWAITING_REASON = (
    "LLM 일괄 검증 대기 — 결과가 오면 다시 판정 (awaiting LLM batch verdict; never auto meanwhile)"
)
BATCH_ESCALATING_REASON = "LLM 상위 모델 일괄 검증 대기 (awaiting escalation batch verdict: {model})"
# Output tokens a batch request is assumed to bill (JSON + thinking) when estimating a job for the cap.
BATCH_ESTIMATE_OUTPUT_TOKENS = 700
# Pairs one sweep (llm_batch_resume) turns into jobs at most; the next sweep takes the rest.
BATCH_SWEEP_LIMIT = 1000


def batch_mode_for_pairs(total: int | None) -> bool:
    """Bulk (Batch API) for a run of `total` (SKU, listing) pairs: from GEMINI_BATCH_MIN_PAIRS; 0 turns it off."""
    minimum = settings.GEMINI_BATCH_MIN_PAIRS
    return minimum > 0 and total is not None and total >= minimum


def batch_mode_for_run(run_id: int | None) -> bool:
    """Bulk (Batch API) or online: by the run's size in (SKU, listing) pairs, so all its batches agree."""
    from matcher.models import MatchRun

    if run_id is None or settings.GEMINI_BATCH_MIN_PAIRS <= 0:
        return False
    return batch_mode_for_pairs(MatchRun.objects.filter(id=run_id).values_list("listings_total", flat=True).first())


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def evidence_to_plain(evidence: "PairEvidence") -> dict[str, Any]:
    """The evidence without the LLM verdict, JSON-ready, so a later verdict can be decided with it exactly."""
    return {
        f.name: _plain(getattr(evidence, f.name)) for f in dataclasses.fields(evidence) if f.name != "llm"
    }


def evidence_from_plain(data: dict[str, Any]) -> "PairEvidence":
    from matcher.pipeline.types import PairEvidence

    names = {f.name for f in dataclasses.fields(PairEvidence)} - {"llm"}
    kwargs = {k: v for k, v in data.items() if k in names}
    if kwargs.get("cosine_regions") is not None:
        kwargs["cosine_regions"] = tuple(kwargs["cosine_regions"])
    return PairEvidence(**kwargs)


def batch_marker(
    *,
    image_a: str,
    image_b: str,
    box_a: list[int] | None,
    box_b: list[int] | None,
    evidence: "PairEvidence",
    escalate_band: tuple[float, float] | None = DEFAULT_ESCALATE_BAND,
) -> dict[str, Any]:
    """What Match.evidence["llm_pending"] holds for a pair awaiting a batch verdict."""
    return {
        "mode": "batch",
        "stage": "fast",
        "model": settings.GEMINI_MODEL,
        "escalation_model": settings.GEMINI_ESCALATION_MODEL,
        "prompt_version": prompt_version(),
        "image_a": image_a,
        "image_b": image_b,
        "box_a": _plain(box_a),
        "box_b": _plain(box_b),
        "escalate_band": list(escalate_band) if escalate_band else None,
        "pair_evidence": evidence_to_plain(evidence),
        "since": timezone.now().isoformat(),
    }


def awaiting_decision(decision: Decision) -> Decision:
    """The decision written while the verdict is awaited: review (never auto), saying so first."""
    return Decision(
        confidence=decision.confidence, bucket="review", reasons=[BATCH_AWAITING_REASON, *decision.reasons]
    )


def _stage_model(marker: dict[str, Any]) -> str:
    return marker["escalation_model"] if marker.get("stage") == "escalate" else marker["model"]


def marker_key(marker: dict[str, Any]) -> str:
    """The cache key of the request the marker waits for (fast model first, then the escalation model)."""
    return cache_key(marker["image_a"], marker["image_b"], marker["prompt_version"], _stage_model(marker))


_SAME_REQUEST = ("image_a", "image_b", "prompt_version", "model", "escalation_model")


def marker_carry(previous: dict[str, Any] | None, new: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """A pair decided again while its request is in flight (a forced re-run) keeps its place: same images,
    prompt and models → the previous stage and fast verdict stay and the caller keeps the job link
    (True). Anything else starts over without a job."""
    same = previous is not None and all(previous.get(k) == new.get(k) for k in _SAME_REQUEST)
    if not same:
        return new, False
    carried = {**new, "stage": previous.get("stage", "fast")}
    if "fast" in previous:
        carried["fast"] = previous["fast"]
    return carried, True


@dataclass
class _Item:
    match_id: int
    key: str  # the request this verdict answers; must still be the one the Match waits for
    verdict: LlmVerdict


@dataclass
class WriteBack:
    applied: dict[int, str] = dataclasses.field(default_factory=dict)  # match id → bucket written
    escalated: list[int] = dataclasses.field(default_factory=list)
    skipped: dict[int, str] = dataclasses.field(default_factory=dict)  # match id → why not


def _awaiting():
    from matcher.models import Match

    return Match.objects.filter(
        evidence__has_key="llm_pending", decided_by_human=False, status=Match.Status.PENDING
    )


def _combine(fast: LlmVerdict, strong: LlmVerdict) -> LlmVerdict:
    """As online: the stronger verdict replaces the unsure one, costs add up, a failed escalation fails."""
    total = str(Decimal(fast.cost_usd or "0") + Decimal(strong.cost_usd or "0"))
    if strong.error:
        return dataclasses.replace(
            fast, error=f"escalation to {strong.model} failed: {strong.error}", cost_usd=total, cached=False
        )
    return dataclasses.replace(strong, cost_usd=total, cached=fast.cached and strong.cached)


def _apply_verdicts(items: list[_Item], *, job_id: int | None) -> WriteBack:
    """Write verdicts back to the Match rows waiting for them. Call inside a transaction (with the job's
    row locked when the verdicts come from a job): the Match rows are locked here, and the pricing and
    queue-order refreshes run on commit.

    A row is left alone — reason in `skipped` — when it no longer waits for this request, a reviewer
    decided it (or it left the queue), or its listing or our photos changed since it was decided.
    """
    from django.db.models import Prefetch

    from matcher.analysis import STATUS_FOR_BUCKET, pair_fingerprint, policy_for
    from matcher.models import Match, MatchRun, ProductImage
    from matcher.pipeline.policy import decide
    from matcher.pipeline.verify import needs_escalation

    out = WriteBack()
    if not items:
        return out
    ok_images = (
        ProductImage.objects.filter(fetch_status="ok").select_related("image").order_by("position", "id")
    )
    matches = {
        m.id: m
        for m in Match.objects.select_for_update(of=("self",))
        .select_related("product", "listing", "thresholds")
        .prefetch_related(Prefetch("product__images", queryset=ok_images, to_attr="ok_images"))
        .filter(id__in=[i.match_id for i in items])
        .order_by("id")
    }
    now = timezone.now()
    run_counts: dict[int, Counter] = {}
    reprice: set[int] = set()
    touched: set[int] = set()
    for item in items:
        match = matches.get(item.match_id)
        marker = match.evidence.get("llm_pending") if match is not None else None
        if match is None:
            out.skipped[item.match_id] = "match gone"
            continue
        if match.decided_by_human or match.status != Match.Status.PENDING or match.audit_sample:
            out.skipped[match.id] = "decided by a reviewer or no longer pending"
            continue
        if not marker or marker_key(marker) != item.key or match.llm_batch_job_id != job_id:
            out.skipped[match.id] = "not waiting for this verdict"
            continue
        our_shas = [pi.image.sha256 for pi in match.product.ok_images[:5]]
        if pair_fingerprint(match.product, match.listing, our_shas) != match.fingerprint:
            out.skipped[match.id] = "listing or our photos changed since; the next run decides it again"
            continue

        verdict = item.verdict
        if marker.get("stage") == "escalate":
            fast = marker.get("fast")
            verdict = _combine(verdict_from_evidence(fast), verdict) if fast else verdict
        else:
            band = tuple(marker["escalate_band"]) if marker.get("escalate_band") else None
            strong_model = marker["escalation_model"]
            if needs_escalation(verdict, band) and strong_model != marker["model"]:
                record = _cached(marker_key({**marker, "stage": "escalate"}))
                if record is None:
                    # Unsure: ask the escalation model, in a batch job of its own (see batch_submit_awaiting).
                    escalating = {**marker, "stage": "escalate", "fast": verdict_to_evidence(verdict)}
                    reasons = [BATCH_ESCALATING_REASON.format(model=strong_model)] + [
                        r for r in match.reasons if r != BATCH_AWAITING_REASON
                    ]
                    Match.objects.filter(id=match.id).update(
                        evidence={**match.evidence, "llm_pending": escalating},
                        reasons=reasons,
                        llm_batch_job=None,
                        llm_cost_usd=Decimal(verdict.cost_usd or "0"),
                        updated_at=now,
                    )
                    out.escalated.append(match.id)
                    if match.run_id:
                        run_counts.setdefault(match.run_id, Counter())["llm_batch_escalated"] += 1
                    continue
                verdict = _combine(verdict, _verdict_from_record(record))

        evidence = evidence_from_plain(marker.get("pair_evidence") or {})
        evidence.llm = verdict
        decision = decide(evidence, policy_for(match.thresholds))
        if verdict.error:
            decision.reasons.append(f"LLM 검증 실패 — 자동 매칭 안 함: {verdict.error}")
        status = STATUS_FOR_BUCKET[decision.bucket]
        stored = {k: v for k, v in match.evidence.items() if k != "llm_pending"}
        stored["llm"] = verdict_to_evidence(verdict)
        # The audit trail of this write, next to the change: which job, when, and what it replaced.
        stored["llm_batch"] = {
            "job_id": job_id,
            "applied_at": now.isoformat(),
            "bucket_before": match.bucket,
            "confidence_before": str(match.confidence),
            "awaited_since": marker.get("since"),
        }
        Match.objects.filter(id=match.id).update(
            bucket=decision.bucket,
            status=status,
            confidence=Decimal(str(round(decision.confidence, 4))),
            reasons=decision.reasons,
            evidence=stored,
            prompt_version=verdict.prompt_version,
            llm_cost_usd=Decimal(verdict.cost_usd or "0"),
            decided_at=now,
            updated_at=now,
        )
        out.applied[match.id] = decision.bucket
        touched.add(match.product_id)
        # The rule a run's writes follow: what pricing follows (matched listings) may have changed.
        if status != match.status or status == Match.Status.MATCHED:
            reprice.add(match.product_id)
        if match.run_id:
            counts = run_counts.setdefault(match.run_id, Counter())
            counts[match.bucket] -= 1
            counts[decision.bucket] += 1
            counts["llm_batch_applied"] += 1
            counts["llm_pairs"] += 1  # as online: pairs that got a verdict (the run page shows it)
            if verdict.error:
                counts["llm_errors"] += 1

    for run in MatchRun.objects.select_for_update().filter(id__in=list(run_counts)).order_by("id"):
        counts = Counter(run.counts)
        counts.update(run_counts[run.id])
        run.counts = dict(counts)
        run.save(update_fields=["counts"])
    if touched:
        transaction.on_commit(lambda: _after_write_back(sorted(touched), sorted(reprice)))
    return out


def _after_write_back(product_ids: list[int], reprice_ids: list[int]) -> None:
    """What a run does after its writes: the queue's order per SKU, and re-pricing through the run's hook."""
    from matcher.analysis import _refresh_money_at_risk
    from matcher.runs import _after_changes

    for product_id in product_ids:
        try:
            _refresh_money_at_risk(product_id)
        except Exception:  # the verdicts are committed; a refresh can be redone by the next run
            log.exception("money-at-risk refresh of product %s failed after LLM write-back", product_id)
    if reprice_ids:
        _after_changes(reprice_ids)


def _write_back_job(job_id: int) -> list[int]:
    """Apply a finished (collected or failed) job's verdicts to its Match rows and note, per request, what
    happened to each row. Call inside the transaction that finished the job. Returns the ids to escalate."""
    job = LlmBatchJob.objects.select_for_update().get(id=job_id)
    items: list[_Item] = []
    for meta, verdict in _job_verdicts(job):
        ids = meta.get("match_ids") or ([meta["match_id"]] if meta.get("match_id") else [])
        for n, match_id in enumerate(ids):
            # Two listings that re-use one photo shared one request: the first carries its cost.
            v = verdict
            if n > 0:
                v = dataclasses.replace(verdict, cost_usd="0", cached=verdict.error is None)
            items.append(_Item(match_id=match_id, key=meta["key"], verdict=v))
    if not items:
        return []
    result = _apply_verdicts(items, job_id=job.id)
    requests = []
    for meta in job.requests:
        outcome = {}
        for match_id in meta.get("match_ids") or ([meta["match_id"]] if meta.get("match_id") else []):
            if match_id in result.applied:
                outcome[str(match_id)] = result.applied[match_id]
            elif match_id in result.escalated:
                outcome[str(match_id)] = "escalated"
            else:
                outcome[str(match_id)] = f"skipped: {result.skipped.get(match_id, 'unknown')}"
        requests.append({**meta, "applied": outcome, "applied_at": timezone.now().isoformat()})
    LlmBatchJob.objects.filter(id=job.id).update(requests=requests)
    return result.escalated


def _load_jpegs(image, box: list[int] | None) -> list[bytes]:
    """The crop the pipeline chose (if any), then the original: what online verification sends too."""
    from matcher.analysis import image_input
    from matcher.pipeline.verify import jpeg_bytes

    img = image_input(image, Counter()).load()
    return ([jpeg_bytes(img.crop(tuple(box)))] if box else []) + [jpeg_bytes(img)]


def batch_submit_awaiting(*, match_ids: Iterable[int] | None = None) -> list[LlmBatchJob]:
    """Send the pairs awaiting a batch verdict that no job holds yet; returns the jobs created.

    match_ids: those rows (a run batch just wrote them, or a collected job escalates them). None: a
    sweep (llm_batch_resume) over rows left without a job for a while — a worker died between writing
    them and submitting. Answers already in the cache are written back at once without a request.
    Safe to run twice and concurrently: each row is linked to its job under a row lock, and a row
    already linked is left out. A pair whose photos cannot be read goes to review with the reason.
    """
    from matcher.models import ImageFile, Match
    from matcher.pipeline.verify import error_verdict

    qs = _awaiting().filter(llm_batch_job__isnull=True)
    if match_ids is not None:
        qs = qs.filter(id__in=list(match_ids))
    else:
        qs = qs.filter(updated_at__lt=timezone.now() - BATCH_PREPARING_STALE)
    matches = list(qs.select_related("product", "listing").order_by("id")[:BATCH_SWEEP_LIMIT])
    if not matches:
        return []

    # Answers already paid for (an earlier run, another listing with the same photos) cost nothing.
    keys = {m.id: marker_key(m.evidence["llm_pending"]) for m in matches}
    records = {r.key: r for r in LlmVerdictRecord.objects.filter(key__in=list(keys.values()), ok=True)}
    hits = [
        _Item(m.id, keys[m.id], _verdict_from_record(records[keys[m.id]]))
        for m in matches
        if keys[m.id] in records
    ]
    if hits:
        with transaction.atomic():
            escalated = _apply_verdicts(hits, job_id=None).escalated
        hit_ids = {i.match_id for i in hits}
        matches = [m for m in matches if m.id not in hit_ids]
        if escalated:
            again = _awaiting().filter(id__in=escalated, llm_batch_job__isnull=True)
            matches += list(again.select_related("product", "listing"))

    # The rest to the Batch API: one job per (model, prompt version, run), each under the inline limit.
    markers = [m.evidence["llm_pending"] for m in matches]
    shas = {s for marker in markers for s in (marker["image_a"], marker["image_b"])}
    files = {f.sha256: f for f in ImageFile.objects.filter(sha256__in=list(shas))}
    groups: dict[tuple[str, str, int | None], list[tuple[int, LlmPairRequest]]] = {}
    unreadable: list[_Item] = []
    for m in matches:
        marker = m.evidence["llm_pending"]
        try:
            pair = LlmPairRequest(
                image_a_hash=marker["image_a"],
                image_b_hash=marker["image_b"],
                images_a=_load_jpegs(files[marker["image_a"]], marker.get("box_a")),
                images_b=_load_jpegs(files[marker["image_b"]], marker.get("box_b")),
                title_a=m.product.title,
                title_b=m.listing.title,
                product_id=m.product_id,
                match_id=m.id,
            )
        except Exception as exc:  # a missing or unreadable file: this pair is not verified, the others are
            log.warning("LLM batch request for match %s: %r", m.id, exc)
            reason = f"이미지를 읽을 수 없어 LLM 검증 안 함 (photos unreadable): {exc!r}"[:300]
            failed = error_verdict(
                reason, model=_stage_model(marker), prompt_version=marker["prompt_version"]
            )
            unreadable.append(_Item(m.id, marker_key(marker), failed))
            continue
        group = (_stage_model(marker), marker["prompt_version"], m.run_id)
        groups.setdefault(group, []).append((m.id, pair))
    if unreadable:
        with transaction.atomic():
            _apply_verdicts(unreadable, job_id=None)

    jobs = []
    for (model, version, run_id), entries in groups.items():
        chunk: list[tuple[int, LlmPairRequest]] = []
        size = 0
        for entry in entries:
            nbytes = _payload_bytes(entry[1])
            if chunk and size + nbytes > BATCH_INLINE_MAX_BYTES:
                jobs.append(_job_for_matches(chunk, model=model, version=version, run_id=run_id))
                chunk, size = [], 0
            chunk.append(entry)
            size += nbytes
        if chunk:
            jobs.append(_job_for_matches(chunk, model=model, version=version, run_id=run_id))
    return [j for j in jobs if j is not None]


def _job_for_matches(
    entries: list[tuple[int, LlmPairRequest]], *, model: str, version: str, run_id: int | None
) -> LlmBatchJob | None:
    from matcher.models import Match

    with transaction.atomic():
        # Locked and re-checked: a row another submitter linked meanwhile (or that was decided again
        # with other photos) is not sent twice.
        locked = {
            m.id: m
            for m in _awaiting()
            .select_for_update()
            .filter(id__in=[i for i, _ in entries], llm_batch_job__isnull=True)
        }
        todo: dict[str, _Todo] = {}
        held = []
        for match_id, pair in entries:
            match = locked.get(match_id)
            if match is None:
                continue
            key = marker_key(match.evidence["llm_pending"])
            if key != cache_key(pair.image_a_hash, pair.image_b_hash, version, model):
                continue
            held.append(match_id)
            todo.setdefault(key, _Todo(key, pair, [])).match_ids.append(match_id)
        if not held:
            return None
        job = _job_create(run_id=run_id, model=model, version=version, todo=list(todo.values()))
        Match.objects.filter(id__in=held).update(llm_batch_job=job, updated_at=timezone.now())
    return _job_send(job, list(todo.values()))
