"""Batch API jobs (half price): submit, poll, collect into the ledger, and submit the pairs awaiting one.

A job is an `LlmBatchJob` row: PREPARING (row written, remote submit under way), SUBMITTED (the
provider has it), COLLECTED or FAILED. Collecting, or failing, writes the job's verdicts back to the
Match rows waiting for them (`matcher.llm.writeback`) in the same transaction.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from matcher.decisions import BATCH_OPEN_STATES
from matcher.llm.config import OFF_ERROR, LlmPairRequest, cache_key, prices, verifier, verifier_enabled
from matcher.llm.images import verification_jpegs
from matcher.llm.online import record_call, verdict_from_record, verify_request
from matcher.llm.spend import batch_cap_exceeded, cap_error
from matcher.llm.writeback import (
    VerdictItem,
    apply_verdicts,
    awaiting_matches,
    marker_key,
    stage_model,
    write_back_job,
)
from matcher.models import ImageFile, LlmBatchJob, LlmVerdictRecord, Match
from matcher.pipeline.verify import BatchError, Usage, VerifyResult, cost_usd, error_verdict

log = logging.getLogger(__name__)

# The Batch API takes at most 20 MB of inline requests; stay well under it.
BATCH_INLINE_MAX_BYTES = 15 * 1024 * 1024
# A job still PREPARING after this long was interrupted between its row and the remote submit.
BATCH_PREPARING_STALE = timedelta(minutes=10)
# Output tokens a batch request is assumed to bill (JSON + thinking) when estimating a job for the cap.
BATCH_ESTIMATE_OUTPUT_TOKENS = 700
# Pairs one sweep (llm_batch_resume) turns into jobs at most; the next sweep takes the rest.
BATCH_SWEEP_LIMIT = 1000


@dataclass
class BatchTodo:
    """One request of a job: a cache key, the pair to send, and the Match rows waiting for its verdict."""

    key: str
    pair: LlmPairRequest
    match_ids: list[int]


def _display_name(job: LlmBatchJob) -> str:
    return f"pricematch-llm-job-{job.id}"


def payload_bytes(pair: LlmPairRequest) -> int:
    return sum(len(b) for b in (*pair.images_a, *pair.images_b)) * 4 // 3  # base64 in the JSON body


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
            write_back_job(job.id)
    job.refresh_from_db()
    return job


def job_create(*, run_id: int | None, model: str, version: str, todo: list[BatchTodo]) -> LlmBatchJob:
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


def _estimate_usd(todo: list[BatchTodo], *, model: str, version: str) -> Decimal:
    """What the job will cost at most roughly, before anybody has billed it (see `batch_cap_exceeded`)."""
    client = verifier(version=version)
    tokens_in = sum(client.estimate_input_tokens(verify_request(t.pair)) for t in todo)
    usage = Usage(input_tokens=tokens_in, output_tokens=BATCH_ESTIMATE_OUTPUT_TOKENS * len(todo))
    return cost_usd(prices(), model, usage, batch=True)


def job_send(job: LlmBatchJob, todo: list[BatchTodo]) -> LlmBatchJob:
    """Submit a PREPARING job's requests. A job with nothing left to ask is COLLECTED at once; when the
    verifier is off, the spend cap would be passed, or the submit fails, it is FAILED with the reason and
    the Match rows of its pairs go to review with it."""
    if not verifier_enabled():
        return _fail(job, OFF_ERROR)
    if not todo:
        LlmBatchJob.objects.filter(id=job.id).update(
            state=LlmBatchJob.State.COLLECTED, updated_at=timezone.now()
        )
        job.refresh_from_db()
        return job
    estimate = _estimate_usd(todo, model=job.model, version=job.prompt_version)
    if batch_cap_exceeded(estimate, job_id=job.id):
        return _fail(job, cap_error())
    # Counted against the cap from now on, until the collected cost replaces it.
    LlmBatchJob.objects.filter(id=job.id).update(cost_usd=estimate)
    try:
        name = verifier(version=job.prompt_version).batch_create(
            [verify_request(t.pair) for t in todo],
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


def batch_poll_and_collect(*, job_id: int) -> LlmBatchJob:
    """Ask the Batch API about a job; when it has finished, store every verdict in the cache and write
    the verdicts back to the Match rows waiting for them. Safe to repeat.

    Works from any process after a restart: a SUBMITTED job is found again by its remote name, and a
    job interrupted between its row and the remote submit is looked up by its display name. Verdicts
    of the fast model inside the uncertain band go on to an escalation job (`batch_submit_awaiting`).
    """
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
def _collect(job_id: int, results: list[tuple[str | None, VerifyResult]]) -> tuple[LlmBatchJob, list[int]]:
    # The row lock makes a second collector (a duplicate task) wait, then see COLLECTED and stop.
    job = LlmBatchJob.objects.select_for_update().get(id=job_id)
    if job.state != LlmBatchJob.State.SUBMITTED:
        return job, []
    requests = [dict(r) for r in job.requests]
    by_key = {r["key"]: r for r in requests}
    total = Decimal(0)
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
        record_call(
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
    escalate = write_back_job(job.id)
    job.refresh_from_db()
    return job, escalate


def batch_jobs_open() -> Iterable[int]:
    """Jobs a restarted worker should keep polling."""
    return LlmBatchJob.objects.filter(state__in=BATCH_OPEN_STATES).values_list("id", flat=True)


# --- pairs awaiting a verdict → jobs ---------------------------------------------------------------


def batch_submit_awaiting(*, match_ids: Iterable[int] | None = None) -> list[LlmBatchJob]:
    """Send the pairs awaiting a batch verdict that no job holds yet; returns the jobs created.

    match_ids: those rows (a run batch just wrote them, or a collected job escalates them). None: a
    sweep (llm_batch_resume) over rows left without a job for a while — a worker died between writing
    them and submitting. Answers already in the cache are written back at once without a request.
    Safe to run twice and concurrently: each row is linked to its job under a row lock, and a row
    already linked is left out. A pair whose photos cannot be read goes to review with the reason.
    """
    qs = awaiting_matches().filter(llm_batch_job__isnull=True)
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
        VerdictItem(m.id, keys[m.id], verdict_from_record(records[keys[m.id]]))
        for m in matches
        if keys[m.id] in records
    ]
    if hits:
        with transaction.atomic():
            escalated = apply_verdicts(hits, job_id=None).escalated
        hit_ids = {i.match_id for i in hits}
        matches = [m for m in matches if m.id not in hit_ids]
        if escalated:
            again = awaiting_matches().filter(id__in=escalated, llm_batch_job__isnull=True)
            matches += list(again.select_related("product", "listing"))

    # The rest to the Batch API: one job per (model, prompt version, run), each under the inline limit.
    markers = [m.evidence["llm_pending"] for m in matches]
    shas = {s for marker in markers for s in (marker["image_a"], marker["image_b"])}
    files = {f.sha256: f for f in ImageFile.objects.filter(sha256__in=list(shas))}
    groups: dict[tuple[str, str, int | None], list[tuple[int, LlmPairRequest]]] = {}
    unreadable: list[VerdictItem] = []
    for m in matches:
        marker = m.evidence["llm_pending"]
        try:
            pair = LlmPairRequest(
                image_a_hash=marker["image_a"],
                image_b_hash=marker["image_b"],
                images_a=verification_jpegs(files[marker["image_a"]], marker.get("box_a")),
                images_b=verification_jpegs(files[marker["image_b"]], marker.get("box_b")),
                title_a=m.product.title,
                title_b=m.listing.title,
                product_id=m.product_id,
                match_id=m.id,
            )
        except Exception as exc:  # a missing or unreadable file: this pair is not verified, the others are
            log.warning("LLM batch request for match %s: %r", m.id, exc)
            reason = f"이미지를 읽을 수 없어 LLM 검증 안 함 (photos unreadable): {exc!r}"[:300]
            failed = error_verdict(reason, model=stage_model(marker), prompt_version=marker["prompt_version"])
            unreadable.append(VerdictItem(m.id, marker_key(marker), failed))
            continue
        group = (stage_model(marker), marker["prompt_version"], m.run_id)
        groups.setdefault(group, []).append((m.id, pair))
    if unreadable:
        with transaction.atomic():
            apply_verdicts(unreadable, job_id=None)

    jobs: list[LlmBatchJob | None] = []
    for (model, version, run_id), entries in groups.items():
        chunk: list[tuple[int, LlmPairRequest]] = []
        size = 0
        for entry in entries:
            nbytes = payload_bytes(entry[1])
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
    with transaction.atomic():
        # Locked and re-checked: a row another submitter linked meanwhile (or that was decided again
        # with other photos) is not sent twice.
        locked = {
            m.id: m
            for m in awaiting_matches()
            .select_for_update()
            .filter(id__in=[i for i, _ in entries], llm_batch_job__isnull=True)
        }
        todo: dict[str, BatchTodo] = {}
        held = []
        for match_id, pair in entries:
            match = locked.get(match_id)
            if match is None:
                continue
            key = marker_key(match.evidence["llm_pending"])
            if key != cache_key(pair.image_a_hash, pair.image_b_hash, version, model):
                continue
            held.append(match_id)
            todo.setdefault(key, BatchTodo(key, pair, [])).match_ids.append(match_id)
        if not held:
            return None
        job = job_create(run_id=run_id, model=model, version=version, todo=list(todo.values()))
        Match.objects.filter(id__in=held).update(llm_batch_job=job, updated_at=timezone.now())
    return job_send(job, list(todo.values()))
