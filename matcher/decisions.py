"""Writing a decision: a Match row with its evidence, and the rules every writer of one shares.

Below the LLM layer and the match run (`matching → llm → decisions`): both write Match rows, so what
they must agree on lives here — the status a bucket means, the fingerprint a decision depends on,
the policy of a ThresholdSet, which of our photos count, the JSON of an LLM verdict, and the reason
a failed verdict gives.
"""
from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from matcher.analysis_cache import DbAnalysisCache
from matcher.evidence import EvidenceRecord, LlmEvidence
from matcher.models import ImageFile, Listing, LlmBatchJob, Match, Product, ThresholdSet
from matcher.pipeline.compare import Comparison
from matcher.pipeline.policy import DecisionPolicy, decide
from matcher.pipeline.types import Decision, LlmVerdict, PairEvidence

STATUS_FOR_BUCKET = {"auto": Match.Status.MATCHED, "review": Match.Status.PENDING, "reject": Match.Status.REJECTED}
# A SKU is compared on its first photos only: more adds time, rarely evidence.
OUR_PHOTOS_MAX = 5
# Batch API jobs whose verdicts are still to come.
BATCH_OPEN_STATES = (LlmBatchJob.State.PREPARING, LlmBatchJob.State.SUBMITTED)

Row = tuple[Product, Listing, str, Comparison]  # a decided pair: SKU, listing, fingerprint, comparison


def our_images(product: Product) -> list[ImageFile]:
    """The photos of ours a pair is compared on: the first OUR_PHOTOS_MAX of `product.ok_images`
    (the usable ones in position order, prefetched by the caller)."""
    return [pi.image for pi in product.ok_images[:OUR_PHOTOS_MAX]]  # type: ignore[attr-defined]


def their_images(listing: Listing) -> list[ImageFile]:
    """A listing's usable photos, in position order (`listing.ok_images`, prefetched by the caller)."""
    return [li.image for li in listing.ok_images]  # type: ignore[attr-defined]  # Prefetch(to_attr=)


def our_shas(product: Product) -> list[str]:
    return [im.sha256 for im in our_images(product)]


def pair_fingerprint(product: Product, listing: Listing, our_shas: list[str]) -> str:
    """What a decision depends on besides the thresholds: the listing's content and our photos and title."""
    raw = "\x1f".join([listing.content_fingerprint or f"{listing.title}|{listing.price}", product.title,
                       product.product_number, *sorted(our_shas)])
    return hashlib.sha256(raw.encode()).hexdigest()


def policy_for(thresholds: ThresholdSet) -> DecisionPolicy:
    """The decision policy of a threshold version (its thresholds win over a copy in its policy)."""
    data = {**(thresholds.policy or {})}
    data.update(
        auto_threshold=float(thresholds.auto_threshold),
        review_threshold=float(thresholds.review_threshold),
        version=f"t{thresholds.version}",
    )
    return DecisionPolicy.from_dict(data)


# --- the LLM verdict in a decision -----------------------------------------------------------------


def verdict_to_evidence(v: LlmVerdict) -> dict[str, Any]:
    """What Match.evidence["llm"] holds: the verdict, its reasoning, its cost in USD and KRW."""
    return LlmEvidence.from_verdict(v).verdict_json()


def verdict_from_evidence(data: dict[str, Any]) -> LlmVerdict:
    names = {f.name for f in dataclasses.fields(LlmVerdict)}
    return LlmVerdict(**{k: v for k, v in data.items() if k in names})


def decide_with_verdict(evidence: PairEvidence, verdict: LlmVerdict, policy: DecisionPolicy) -> Decision:
    """The pair decided again with the verdict in its evidence; a failed verdict says so (and is never auto)."""
    evidence.llm = verdict
    decision = decide(evidence, policy)
    if verdict.error:
        decision.reasons.append(f"LLM 검증 실패 — 자동 매칭 안 함: {verdict.error}")
    return decision


# --- the evidence record ----------------------------------------------------------------------------


def printed_text(cache: DbAnalysisCache, their_shas: list[str]) -> str:
    """What OCR read on their photos (from their cached analyses), for the record and the review page."""
    texts = [a.ocr_text for a in (cache.get(sha) for sha in their_shas) if a is not None and a.ocr_text]
    return "\n".join(texts)[:2000]


# --- a pair awaiting a Batch API verdict ----------------------------------------------------------
# The marker itself (Match.evidence["llm_pending"]) is built and consumed by matcher.llm; a decision
# written again while its request is in flight only has to know whether to keep it.

_SAME_REQUEST = ("image_a", "image_b", "prompt_version", "model", "escalation_model")


def batch_job_open(job_id: int) -> bool:
    return LlmBatchJob.objects.filter(id=job_id, state__in=BATCH_OPEN_STATES).exists()


def marker_carry(previous: dict[str, Any] | None, new: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """A pair decided again while its request is in flight (a forced re-run) keeps its place: same images,
    prompt and models → the previous stage and fast verdict stay and the caller keeps the job link
    (True). Anything else starts over without a job."""
    same = previous is not None and all(previous.get(k) == new.get(k) for k in _SAME_REQUEST)
    if previous is None or not same:
        return new, False
    carried = {**new, "stage": previous.get("stage", "fast")}
    if "fast" in previous:
        carried["fast"] = previous["fast"]
    return carried, True


def _llm_pending_marker(
    marker: dict[str, Any] | None, previous: Match | None
) -> tuple[dict[str, Any] | None, int | None]:
    """Bulk mode: the awaiting marker to store, and the Batch API job that keeps holding the pair (its
    request, same photos and prompt, is still in flight), else None — a new request is due."""
    if marker is None:
        return None, None
    held = (
        previous is not None
        and previous.llm_batch_job_id is not None
        and not previous.decided_by_human
        and batch_job_open(previous.llm_batch_job_id)
    )
    before = (previous.evidence or {}).get("llm_pending") if held and previous is not None else None
    marker, keep = marker_carry(before, marker)
    return marker, previous.llm_batch_job_id if keep and previous is not None else None


# --- writing ------------------------------------------------------------------------------------------


def write_decisions(
    rows: list[Row],
    *,
    cache: DbAnalysisCache,
    thresholds: ThresholdSet,
    pending_markers: Mapping[int, dict[str, Any]],
    run_id: int | None,
    counts: Counter,
) -> bool:
    """Write one SKU's decisions in one transaction; True when what pricing follows (matched listings)
    may have changed. `pending_markers`: listing id → the marker of a pair awaiting its Batch API verdict."""
    changed = False
    now = timezone.now()
    with transaction.atomic():
        for product, listing, fp, comp in rows:
            ours = our_shas(product)
            theirs = [im.sha256 for im in their_images(listing)]
            bucket = comp.decision.bucket
            status = STATUS_FOR_BUCKET[bucket]
            llm_cost = Decimal(comp.evidence.llm.cost_usd) if comp.evidence.llm is not None else Decimal(0)
            previous = Match.objects.select_for_update().filter(listing=listing).first()
            marker, llm_batch_job_id = _llm_pending_marker(pending_markers.get(listing.id), previous)
            record = EvidenceRecord.from_comparison(
                comp, our_shas=ours, their_shas=theirs, ocr_text=printed_text(cache, theirs), llm_pending=marker
            )
            Match.objects.update_or_create(
                listing=listing,
                defaults=dict(
                    product=product,
                    bucket=bucket,
                    status=status,
                    decided_by_human=False,
                    confidence=Decimal(str(round(comp.decision.confidence, 4))),
                    reasons=comp.decision.reasons,
                    evidence=record.to_json(),
                    llm_batch_job_id=llm_batch_job_id,
                    embedder=cache.embedder,
                    prompt_version=comp.evidence.llm.prompt_version if comp.evidence.llm is not None else "",
                    thresholds=thresholds,
                    fingerprint=fp,
                    listing_fingerprint=listing.content_fingerprint,
                    run_id=run_id,
                    llm_cost_usd=llm_cost,
                    decided_at=now,
                ),
            )
            counts[bucket] += 1
            if previous is None or previous.status != status or status == Match.Status.MATCHED:
                changed = True
    return changed
