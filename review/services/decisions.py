"""Decisions on pairs: approve, reject, skip, undo, bulk decisions and overturning a decided pair (from the
SKU page), each with its audit row.

When a decision changed a SKU's matches, `matcher.signals.matches_changed` is sent on commit with
the SKU ids and a cause (`matcher.causes`: `review:approve:match=12`, …); pricing re-prices and re-ranks from it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.formats import date_format

from matcher import causes
from matcher.models import Match
from matcher.signals import matches_changed_on_commit
from review import selectors
from review.exceptions import ReviewRefused
from review.models import Claim, RejectReason, ReviewDecision
from review.queue import in_queue
from review.services.claims import claim_lease

Action = ReviewDecision.Action
NOTE_MAX = 500
BULK_MAX = 200


def _snapshot(match: Match) -> dict[str, Any]:
    product, listing = match.product, match.listing
    return {
        "evidence": match.evidence,
        "reasons": match.reasons,
        "confidence": str(match.confidence),
        "bucket": match.bucket,
        "embedder": match.embedder,
        "prompt_version": match.prompt_version,
        "llm_cost_usd": str(match.llm_cost_usd),
        "money_at_risk": match.money_at_risk,
        "ours": {
            "sku": product.sku,
            "title": product.title,
            "product_number": product.product_number,
            "price": product.price,
        },
        "theirs": {
            "listing_id": listing.pk,
            "mall": listing.mall,
            "seller": listing.seller,
            "title": listing.title,
            "price": listing.price,
            "shipping_fee": listing.shipping_fee,
            "url": listing.url,
            "product_number": listing.product_number,
        },
    }


def _decision_row(
    *,
    match: Match,
    user,
    action: str,
    now: datetime,
    status_after: str,
    reason: str = "",
    note: str = "",
    claim_id: int | None = None,
    bulk: bool = False,
    undoes: ReviewDecision | None = None,
    snapshot: dict | None = None,
) -> ReviewDecision:
    return ReviewDecision(
        match=match,
        user=user,
        created_at=now,
        action=action,
        reason=reason,
        note=note,
        bulk=bulk,
        claim_id=claim_id,
        undoes=undoes,
        thresholds_id=match.thresholds_id,
        thresholds_version=match.thresholds.version if match.thresholds_id else None,
        confidence=match.confidence,
        bucket=match.bucket,
        audit_item=match.audit_sample if undoes is None else undoes.audit_item,
        status_before=match.status,
        status_after=status_after,
        decided_by_human_before=match.decided_by_human,
        audit_sample_before=match.audit_sample,
        snapshot=snapshot if snapshot is not None else _snapshot(match),
    )


def _validated(action: str, reason: str, note: str) -> tuple[str, str]:
    if action not in (Action.APPROVE, Action.REJECT):
        raise ReviewRefused("알 수 없는 결정입니다.")
    reason = (reason or "").strip()
    if action == Action.REJECT and reason not in RejectReason.values:
        raise ReviewRefused("제외 사유를 골라 주세요.")
    if action == Action.APPROVE:
        reason = ""
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise ReviewRefused(f"메모는 {NOTE_MAX}자 이내로 써 주세요.")
    return reason, note


def _already_decided_message(match_id: int) -> str:
    last = selectors.last_decision(match_id=match_id)
    if last is None:
        return "이미 처리된 항목입니다 (검토 대기 상태가 아닙니다). 다음 항목으로 넘어갑니다."
    when = date_format(timezone.localtime(last.created_at), "n월 j일 H:i")
    return (
        f"이미 {last.user.get_username()} 님이 {when}에 "
        f"'{last.get_action_display()}'(으)로 결정한 항목입니다. "
        "다시 결정할 수 없습니다."
    )


def _after_commit(
    *, product_ids: Iterable[int], cause: str, actor_id: int, reprice_ids: Iterable[int] = (),
    qc_changed: bool = False,
) -> None:
    """On commit: forget the cached QC verdict when a QC sample was decided, then tell the apps above
    which SKUs' matches changed (pricing reprices `reprice_ids`, re-ranks all of them)."""
    if qc_changed:
        # Registered first, so a reprice enqueued by the signal already reads the new verdict.
        transaction.on_commit(lambda: cache.delete(selectors.PAUSE_CACHE_KEY))
    matches_changed_on_commit(product_ids=product_ids, reprice_ids=reprice_ids, cause=cause, actor_id=actor_id)


@transaction.atomic
def decision_record(
    *, user, match_id: int, action: str, claim_id: int | None, reason: str = "", note: str = ""
) -> ReviewDecision:
    """Approve or reject one pair under the reviewer's lease.

    Approve → status matched, reject → rejected; decided_by_human set and the QC flag cleared. Refused
    (ReviewRefused, nothing written) when the pair left the queue or the lease is not this reviewer's.
    A lease past its expiry still counts while nobody took the pair over (the open claim is still ours).
    """
    reason, note = _validated(action, reason, note)
    now = timezone.now()
    match = _locked_match(match_id)
    if not in_queue(match):
        raise ReviewRefused(_already_decided_message(match.pk))
    claim = _open_claim(match)
    if claim is None or claim.user_id != user.pk or (claim_id is not None and claim.pk != claim_id):
        _refuse_if_held_by_another(claim, user, now)
        raise ReviewRefused("검토 잠금이 만료되어 이 항목을 결정할 수 없습니다. 다시 불러와 주세요.")
    return _decide(match=match, user=user, action=action, now=now, reason=reason, note=note, claim=claim)


def _locked_match(match_id: int) -> Match:
    """The pair, row-locked, with what its decision snapshot reads; ReviewRefused when it is gone."""
    match = (
        Match.objects.select_for_update(of=("self",))
        .select_related("product", "listing", "thresholds")
        .filter(pk=match_id)
        .first()
    )
    if match is None:
        raise ReviewRefused("이 항목은 더 이상 없습니다 (경쟁 상품이 삭제되었습니다).")
    return match


def _open_claim(match: Match) -> Claim | None:
    return Claim.objects.select_for_update().select_related("user").filter(match=match, released_at__isnull=True).first()


def _refuse_if_held_by_another(claim: Claim | None, user, now: datetime) -> None:  # noqa: ANN001
    if claim is not None and claim.user_id != user.pk and claim.expires_at > now:
        raise ReviewRefused(f"{claim.user.get_username()} 님이 검토 중인 항목입니다. 결정하지 않았습니다.")


def _decide(
    *, match: Match, user, action: str, now: datetime, reason: str, note: str, claim: Claim | None  # noqa: ANN001
) -> ReviewDecision:
    """Write an approve/reject: the audit row with its snapshot, the pair decided by a human (QC flag
    cleared), the lease released as decided, and on commit `matches_changed` with the reviewer as actor."""
    status_after = Match.Status.MATCHED if action == Action.APPROVE else Match.Status.REJECTED
    decision = _decision_row(
        match=match, user=user, action=action, now=now, status_after=status_after, reason=reason, note=note,
        claim_id=claim.pk if claim is not None else None,
    )
    decision.save()
    Match.objects.filter(pk=match.pk).update(
        status=status_after, decided_by_human=True, audit_sample=False, updated_at=now
    )
    if claim is not None:
        Claim.objects.filter(pk=claim.pk).update(released_at=now, release_reason=Claim.Release.DECIDED)
    _after_commit(
        product_ids=[match.product_id],
        cause=causes.review_decision(action, match.pk).text,
        actor_id=user.pk,
        reprice_ids=[match.product_id] if status_after != match.status else [],
        qc_changed=match.audit_sample,
    )
    return decision


def overturn_action(match: Match) -> str | None:
    """What overturning this pair means, or None if it cannot be overturned: an automatic match
    (matched, no human decided it) can be rejected, a rejection (automatic or human) approved.
    Pending pairs are decided in the queue; a reviewer's approval stands until the queue's undo."""
    if match.status == Match.Status.MATCHED and not match.decided_by_human:
        return Action.REJECT
    if match.status == Match.Status.REJECTED:
        return Action.APPROVE
    return None


@transaction.atomic
def decision_overturn(*, user, match_id: int, action: str, reason: str = "", note: str = "") -> ReviewDecision:
    """Overturn a decided pair from outside the queue (the SKU page): an automatic match → rejected (with a
    reason), a rejection → matched. Audited exactly as a queue decision — one ReviewDecision row with the
    snapshot, the pair marked decided by a human, the QC flag cleared, ``matches_changed`` on commit with
    the reviewer as actor so pricing re-prices — and, like the queue, refused (ReviewRefused, nothing
    written) while another reviewer holds the pair; an open lease on it is released as decided.
    """
    reason, note = _validated(action, reason, note)
    now = timezone.now()
    match = _locked_match(match_id)
    if overturn_action(match) != action:
        raise ReviewRefused(
            f"이 항목은 지금 '{match.get_status_display()}' 상태라 이 결정으로 뒤집을 수 없습니다. "
            "화면을 새로 고쳐 주세요."
        )
    claim = _open_claim(match)
    _refuse_if_held_by_another(claim, user, now)
    # An overturn always changes the status (overturn_action), so pricing always re-prices.
    return _decide(match=match, user=user, action=action, now=now, reason=reason, note=note, claim=claim)


@transaction.atomic
def decision_skip(*, user, match_id: int, claim_id: int | None) -> ReviewDecision | None:
    """Set a pair aside: recorded (for stats and so "next" does not offer it again today), lease released."""
    now = timezone.now()
    match = Match.objects.select_related("thresholds", "product", "listing").filter(pk=match_id).first()
    released = Claim.objects.filter(user=user, released_at__isnull=True, match_id=match_id)
    if claim_id is not None:
        released = released.filter(pk=claim_id)
    released.update(released_at=now, release_reason=Claim.Release.SKIPPED)
    if match is None or not in_queue(match):
        return None
    row = _decision_row(
        match=match,
        user=user,
        action=Action.SKIP,
        now=now,
        status_after=match.status,
        claim_id=claim_id,
        snapshot={},
    )
    row.save()
    return row


@transaction.atomic
def decision_undo(*, user) -> ReviewDecision:
    """Reverse this reviewer's newest approve/reject: the pair gets its previous status back, returns to the
    queue and is leased to the reviewer again. The undo is its own ReviewDecision row.

    Refused when the pair changed since (decided again, re-matched).
    """
    now = timezone.now()
    target = (
        ReviewDecision.objects.select_for_update(of=("self",))
        .filter(user=user, action__in=[Action.APPROVE, Action.REJECT], bulk=False, undone_by__isnull=True)
        .order_by("-created_at", "-id")
        .first()
    )
    if target is None or target.match_id is None:
        raise ReviewRefused("되돌릴 결정이 없습니다.")
    match = Match.objects.select_for_update(of=("self",)).select_related("thresholds").get(pk=target.match_id)
    newer = ReviewDecision.objects.filter(
        match=match, action__in=[Action.APPROVE, Action.REJECT], created_at__gt=target.created_at
    ).exists()
    if newer or match.status != target.status_after or not match.decided_by_human or match.audit_sample:
        raise ReviewRefused("그 사이 이 항목의 상태가 바뀌어 되돌릴 수 없습니다.")
    undo = _decision_row(
        match=match,
        user=user,
        action=Action.UNDO,
        now=now,
        status_after=target.status_before,
        undoes=target,
        snapshot={"undoes": target.pk, "action": target.action, "reason": target.reason},
    )
    Match.objects.filter(pk=match.pk).update(
        status=target.status_before,
        decided_by_human=target.decided_by_human_before,
        audit_sample=target.audit_sample_before,
        updated_at=now,
    )
    # The pair comes back to whoever undid it, so they can decide it again at once.
    Claim.objects.filter(Q(user=user) | Q(match=match), released_at__isnull=True).update(
        released_at=now, release_reason=Claim.Release.NAVIGATED
    )
    claim = Claim.objects.create(match=match, user=user, claimed_at=now, expires_at=now + claim_lease())
    undo.claim = claim
    undo.save()
    _after_commit(
        product_ids=[match.product_id],
        cause=causes.review_decision("undo", match.pk).text,
        actor_id=user.pk,
        reprice_ids=[match.product_id] if target.status_before != target.status_after else [],
        qc_changed=target.audit_item,
    )
    return undo


@dataclass
class BulkResult:
    done: list[int] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)


@transaction.atomic
def decisions_bulk(
    *, user, match_ids: Iterable[int], action: str, reason: str = "", note: str = ""
) -> BulkResult:
    """Approve or reject a selected set at once; pairs another reviewer holds or that left the queue are
    reported, not decided. One ReviewDecision per pair (bulk=True)."""
    reason, note = _validated(action, reason, note)
    ids = sorted({int(i) for i in match_ids})
    if not ids:
        raise ReviewRefused("선택한 항목이 없습니다.")
    if len(ids) > BULK_MAX:
        raise ReviewRefused(f"한 번에 {BULK_MAX}건까지 처리할 수 있습니다.")
    now = timezone.now()
    result = BulkResult()
    matches = list(
        Match.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("product", "listing", "thresholds")
        .filter(pk__in=ids)
        .order_by("id")
    )
    found = {m.pk for m in matches}
    for missing in ids:
        if missing not in found:
            result.refused[missing] = "다른 작업이 처리 중이거나 없는 항목입니다."
    claims = {
        c.match_id: c
        for c in Claim.objects.select_for_update().filter(match_id__in=found, released_at__isnull=True)
    }
    status_after = Match.Status.MATCHED if action == Action.APPROVE else Match.Status.REJECTED
    rows: list[ReviewDecision] = []
    decided: list[Match] = []
    for m in matches:
        if not in_queue(m):
            result.refused[m.pk] = "이미 결정된 항목입니다."
            continue
        claim = claims.get(m.pk)
        if claim is not None and claim.user_id != user.pk and claim.expires_at > now:
            result.refused[m.pk] = "다른 검토자가 검토 중입니다."
            continue
        rows.append(
            _decision_row(
                match=m,
                user=user,
                action=action,
                now=now,
                status_after=status_after,
                reason=reason,
                note=note,
                bulk=True,
                claim_id=claim.pk if claim else None,
            )
        )
        decided.append(m)
    if not decided:
        return result
    decided_ids = [m.pk for m in decided]
    Claim.objects.filter(match_id__in=decided_ids, released_at__isnull=True).update(
        released_at=now, release_reason=Claim.Release.DECIDED
    )
    Match.objects.filter(pk__in=decided_ids).update(
        status=status_after, decided_by_human=True, audit_sample=False, updated_at=now
    )
    ReviewDecision.objects.bulk_create(rows)
    result.done = decided_ids
    _after_commit(
        product_ids=[m.product_id for m in decided],
        cause=causes.review_bulk(action).text,
        actor_id=user.pk,
        reprice_ids=[m.product_id for m in decided if m.status != status_after],
        qc_changed=any(m.audit_sample for m in decided),
    )
    return result
