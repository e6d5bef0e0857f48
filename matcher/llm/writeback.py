"""Bulk mode in match runs: pairs awaiting a Batch API verdict, and writing verdicts back to their Match.

A run big enough (settings.GEMINI_BATCH_MIN_PAIRS) does not call the LLM online. Each pair that
would be sent is written as review with BATCH_AWAITING_REASON and a marker in
Match.evidence["llm_pending"] that holds everything needed to ask later and decide again: the
image hashes and boxes, the models and prompt version, and the evidence without the verdict.
`matcher.llm.batch.batch_submit_awaiting` turns markers into Batch API jobs (a Match row is held by
at most one job: Match.llm_batch_job, set under a row lock, so a re-processed batch or a racing
sweep never submits a pair twice). Collecting a job writes each verdict back (`apply_verdicts`):
decided again with the Match's own ThresholdSet, unless a reviewer decided it, it left the queue,
or the listing changed since. Fast verdicts inside the uncertain band are asked again of the
escalation model in a batch job of its own (half price on the dear model too, where most of the
money is).

Marker states: no job + marker = to submit; job + marker = in flight; no marker = decided.
"""
from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from matcher.causes import Cause, CauseKind
from matcher.decisions import (
    STATUS_FOR_BUCKET,
    decide_with_verdict,
    our_shas,
    pair_fingerprint,
    policy_for,
    verdict_from_evidence,
    verdict_to_evidence,
)
from matcher.evidence import EvidenceRecord
from matcher.llm.config import DEFAULT_ESCALATE_BAND, cache_key, prompt_version
from matcher.llm.online import cached_record, combine_escalation, verdict_from_record
from matcher.models import LlmBatchJob, LlmVerdictRecord, Match, MatchRun, ProductImage
from matcher.pipeline.types import Decision, LlmVerdict, PairEvidence
from matcher.pipeline.verify import error_verdict, needs_escalation
from matcher.signals import matches_changed_on_commit

BATCH_AWAITING_REASON = (
    "LLM 일괄 검증 대기 — 결과가 오면 다시 판정 (awaiting LLM batch verdict; never auto meanwhile)"
)
BATCH_ESCALATING_REASON = "LLM 상위 모델 일괄 검증 대기 (awaiting escalation batch verdict: {model})"
# Re-pricing after a write-back follows the rule of a run's writes, under the run's cause.
WRITE_BACK_CAUSE = Cause(CauseKind.MATCH_RUN).text


# --- the marker ----------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def evidence_to_plain(evidence: PairEvidence) -> dict[str, Any]:
    """The evidence without the LLM verdict, JSON-ready, so a later verdict can be decided with it exactly."""
    return {
        f.name: _plain(getattr(evidence, f.name)) for f in dataclasses.fields(evidence) if f.name != "llm"
    }


def evidence_from_plain(data: dict[str, Any]) -> PairEvidence:
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
    evidence: PairEvidence,
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
    return dataclasses.replace(decision, bucket="review", reasons=[BATCH_AWAITING_REASON, *decision.reasons])


def stage_model(marker: dict[str, Any]) -> str:
    return marker["escalation_model"] if marker.get("stage") == "escalate" else marker["model"]


def marker_key(marker: dict[str, Any]) -> str:
    """The cache key of the request the marker waits for (fast model first, then the escalation model)."""
    return cache_key(marker["image_a"], marker["image_b"], marker["prompt_version"], stage_model(marker))


def awaiting_matches() -> QuerySet[Match]:
    """Match rows waiting for a batch verdict that nobody has decided meanwhile."""
    return Match.objects.filter(
        evidence__has_key="llm_pending", decided_by_human=False, status=Match.Status.PENDING
    )


# --- writing verdicts back -----------------------------------------------------------------------


@dataclass
class VerdictItem:
    match_id: int
    key: str  # the request this verdict answers; must still be the one the Match waits for
    verdict: LlmVerdict


@dataclass
class WriteBack:
    applied: dict[int, str] = dataclasses.field(default_factory=dict)  # match id → bucket written
    escalated: list[int] = dataclasses.field(default_factory=list)
    skipped: dict[int, str] = dataclasses.field(default_factory=dict)  # match id → why not


def apply_verdicts(items: list[VerdictItem], *, job_id: int | None) -> WriteBack:
    """Write verdicts back to the Match rows waiting for them. Call inside a transaction (with the job's
    row locked when the verdicts come from a job): the Match rows are locked here, and "matches changed"
    is sent on commit.

    A row is left alone — reason in `skipped` — when it no longer waits for this request, a reviewer
    decided it (or it left the queue), or its listing or our photos changed since it was decided.
    """
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
        if pair_fingerprint(match.product, match.listing, our_shas(match.product)) != match.fingerprint:
            out.skipped[match.id] = "listing or our photos changed since; the next run decides it again"
            continue

        verdict = item.verdict
        if marker.get("stage") == "escalate":
            fast = marker.get("fast")
            verdict = combine_escalation(verdict_from_evidence(fast), verdict) if fast else verdict
        else:
            band = tuple(marker["escalate_band"]) if marker.get("escalate_band") else None
            strong_model = marker["escalation_model"]
            if needs_escalation(verdict, band) and strong_model != marker["model"]:
                record = cached_record(marker_key({**marker, "stage": "escalate"}))
                if record is None:
                    # Unsure: ask the escalation model, in a batch job of its own (see batch_submit_awaiting).
                    escalating = {**marker, "stage": "escalate", "fast": verdict_to_evidence(verdict)}
                    reasons = [BATCH_ESCALATING_REASON.format(model=strong_model)] + [
                        r for r in match.reasons if r != BATCH_AWAITING_REASON
                    ]
                    Match.objects.filter(id=match.id).update(
                        evidence=EvidenceRecord.from_json(match.evidence, reasons=match.reasons)
                        .with_llm_awaiting(escalating)
                        .to_json(),
                        reasons=reasons,
                        llm_batch_job=None,
                        llm_cost_usd=Decimal(verdict.cost_usd or "0"),
                        updated_at=now,
                    )
                    out.escalated.append(match.id)
                    if match.run_id:
                        run_counts.setdefault(match.run_id, Counter())["llm_batch_escalated"] += 1
                    continue
                verdict = combine_escalation(verdict, verdict_from_record(record))

        evidence = evidence_from_plain(marker.get("pair_evidence") or {})
        decision = decide_with_verdict(evidence, verdict, policy_for(match.thresholds))
        status = STATUS_FOR_BUCKET[decision.bucket]
        # The record with the verdict in, the decision's blockers and gates as decided again with it, and the
        # audit trail of this write: which job, when, and what it replaced.
        stored = (
            EvidenceRecord.from_json(match.evidence, reasons=match.reasons)
            .with_llm_verdict(
                verdict,
                decision=decision,
                batch_audit={
                    "job_id": job_id,
                    "applied_at": now.isoformat(),
                    "bucket_before": match.bucket,
                    "confidence_before": str(match.confidence),
                    "awaited_since": marker.get("since"),
                },
            )
            .to_json()
        )
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
        merged = Counter(run.counts)
        merged.update(run_counts[run.id])
        run.counts = dict(merged)
        run.save(update_fields=["counts"])
    matches_changed_on_commit(product_ids=touched, reprice_ids=reprice, cause=WRITE_BACK_CAUSE)
    return out


# --- a finished job's verdicts -------------------------------------------------------------------


def job_verdicts(job: LlmBatchJob) -> list[tuple[dict[str, Any], LlmVerdict]]:
    """For a finished job: each request's meta ({key, match_id, match_ids, product_id, image_a, image_b, and
    once collected cost_usd, ok, error}) and its verdict with what this job paid for it.

    A request without a usable verdict gets an error verdict with the reason (review, never auto). The
    verdicts are also in the cache, so a later `verify_pairs` on the same pairs gets them without paying.
    """
    keys = [r["key"] for r in job.requests]
    records = {r.key: r for r in LlmVerdictRecord.objects.filter(key__in=keys, ok=True)}
    out = []
    for meta in job.requests:
        record = records.get(meta["key"])
        cost = Decimal(meta.get("cost_usd") or "0")
        if record is not None and job.state == LlmBatchJob.State.COLLECTED:
            verdict = verdict_from_record(record)
            if meta.get("ok"):  # answered by this job, so its cost is this pair's
                verdict = dataclasses.replace(verdict, cost_usd=str(cost), cached=False)
            out.append((meta, verdict))
        else:
            reason = meta.get("error") or job.error or "no usable verdict in the batch"
            verdict = error_verdict(reason, model=job.model, prompt_version=job.prompt_version, cost=cost)
            out.append((meta, verdict))
    return out


def _match_ids(meta: dict[str, Any]) -> list[int]:
    return meta.get("match_ids") or ([meta["match_id"]] if meta.get("match_id") else [])


def write_back_job(job_id: int) -> list[int]:
    """Apply a finished (collected or failed) job's verdicts to its Match rows and note, per request, what
    happened to each row. Call inside the transaction that finished the job. Returns the ids to escalate."""
    job = LlmBatchJob.objects.select_for_update().get(id=job_id)
    items: list[VerdictItem] = []
    for meta, verdict in job_verdicts(job):
        for n, match_id in enumerate(_match_ids(meta)):
            # Two listings that re-use one photo shared one request: the first carries its cost.
            v = verdict
            if n > 0:
                v = dataclasses.replace(verdict, cost_usd="0", cached=verdict.error is None)
            items.append(VerdictItem(match_id=match_id, key=meta["key"], verdict=v))
    if not items:
        return []
    result = apply_verdicts(items, job_id=job.id)
    requests = []
    for meta in job.requests:
        outcome = {}
        for match_id in _match_ids(meta):
            if match_id in result.applied:
                outcome[str(match_id)] = result.applied[match_id]
            elif match_id in result.escalated:
                outcome[str(match_id)] = "escalated"
            else:
                outcome[str(match_id)] = f"skipped: {result.skipped.get(match_id, 'unknown')}"
        requests.append({**meta, "applied": outcome, "applied_at": timezone.now().isoformat()})
    LlmBatchJob.objects.filter(id=job.id).update(requests=requests)
    return result.escalated
