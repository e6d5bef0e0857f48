"""Writes of the review app: claims, decisions, undo, bulk decisions, QC sampling, thresholds.

Each public function takes keyword-only arguments, validates before writing and runs in one
transaction together with its audit row; side effects (repricing, cache) run on commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import FloatField, Func, Q
from django.utils import timezone
from django.utils.formats import date_format

from matcher.models import Match, Product
from review import selectors
from review.models import (
    AuditSampleDraw,
    Claim,
    RejectReason,
    ReviewDecision,
    ReviewSettings,
    ThresholdChange,
)
from review.queue import Cursor, Direction, QueueFilters

log = logging.getLogger(__name__)

Action = ReviewDecision.Action
NOTE_MAX = 500
BULK_MAX = 200


class ReviewRefused(ValidationError):
    """A decision or undo that must not happen; the message is shown to the reviewer as is (Korean)."""


def _lease() -> timedelta:
    return timedelta(seconds=settings.REVIEW_CLAIM_SECONDS)


def _in_queue(match: Match) -> bool:
    return match.status == Match.Status.PENDING or match.audit_sample


# --- Claims ------------------------------------------------------------------------------------


def claim_pair(
    *,
    user,
    filters: QueueFilters | None = None,
    cursor: Cursor | None = None,
    direction: Direction = "next",
    match_id: int | None = None,
    exclude_skipped: bool | None = None,
) -> Match | None:
    """Lease one pair to this reviewer and return it (from selectors.pair_queryset, with claim_id and
    claim_expires_at set), or None when nothing is available.

    Without cursor or match_id: the pair the reviewer already holds (if it still fits the filters), else the
    first free pair in queue order they have not skipped lately. With a cursor: the next/previous free pair
    in queue order (J/K). With match_id: that pair, if nobody else holds it. Any other pair the reviewer
    held is released ("navigated"): a reviewer holds one pair at a time. Pairs the reviewer skipped lately
    are left out unless they navigate explicitly (exclude_skipped defaults to "no cursor and no match_id";
    auto-advance after a decision passes True with a cursor).

    Two reviewers never get the same pair: candidates are locked with SKIP LOCKED and pairs with another
    reviewer's unexpired claim are excluded; the partial unique index on open claims catches the remaining
    race (a claim committed between our snapshot and our lock), after which we simply try again.
    """
    filters = filters or QueueFilters()
    navigating = cursor is not None or match_id is not None
    held_elsewhere = False
    if not navigating:
        mine = selectors.my_open_claim(user=user, filters=filters)
        if mine is not None:
            if mine.fits:
                expires = timezone.now() + _lease()
                Claim.objects.filter(pk=mine.claim_id, released_at__isnull=True).update(expires_at=expires)
                mine.claim_expires_at = expires
                return mine
            held_elsewhere = True
    for attempt in range(3):
        try:
            return _claim_candidate(
                user=user,
                filters=filters,
                cursor=cursor,
                direction=direction,
                match_id=match_id,
                release_mine=navigating or held_elsewhere or attempt > 0,
                exclude_skipped=(not navigating) if exclude_skipped is None else exclude_skipped,
            )
        except IntegrityError:
            log.info("claim race on attempt %s for user %s; retrying", attempt, user.pk)
    return None


@transaction.atomic
def _claim_candidate(
    *,
    user,
    filters: QueueFilters,
    cursor: Cursor | None,
    direction: Direction,
    match_id: int | None,
    release_mine: bool,
    exclude_skipped: bool,
) -> Match | None:
    now = timezone.now()
    qs = selectors.queue_candidates(
        user=user, filters=filters, cursor=cursor, direction=direction, exclude_skipped=exclude_skipped
    )
    if match_id is not None:
        qs = qs.filter(pk=match_id)
    candidate = qs.select_for_update(skip_locked=True, of=("self",)).first()
    if candidate is not None and candidate.open_claim_id and candidate.open_claim_user_id == user.pk:
        # Navigating to the pair we already hold: keep the lease, extend it.
        expires = now + _lease()
        Claim.objects.filter(pk=candidate.open_claim_id).update(expires_at=expires)
        candidate.claim_id, candidate.claim_expires_at = candidate.open_claim_id, expires
        return candidate
    if release_mine:
        Claim.objects.filter(user=user, released_at__isnull=True).update(
            released_at=now, release_reason=Claim.Release.NAVIGATED
        )
    if candidate is None:
        return None
    if candidate.open_claim_id:
        # Another reviewer's lease ran out (an open tab closed): free it before taking the pair.
        Claim.objects.filter(pk=candidate.open_claim_id, released_at__isnull=True).update(
            released_at=now, release_reason=Claim.Release.EXPIRED
        )
    claim = Claim.objects.create(match=candidate, user=user, claimed_at=now, expires_at=now + _lease())
    candidate.claim_id, candidate.claim_expires_at = claim.pk, claim.expires_at
    return candidate


def claim_renew(*, user, claim_id: int) -> bool:
    """Extend an open lease of this reviewer (heartbeat of an open tab); False if it is gone."""
    updated = Claim.objects.filter(pk=claim_id, user=user, released_at__isnull=True).update(
        expires_at=timezone.now() + _lease()
    )
    return updated == 1


def claim_release(*, user, reason: str = Claim.Release.NAVIGATED, claim_id: int | None = None) -> int:
    """Release this reviewer's open lease (one claim, or all of theirs)."""
    qs = Claim.objects.filter(user=user, released_at__isnull=True)
    if claim_id is not None:
        qs = qs.filter(pk=claim_id)
    return qs.update(released_at=timezone.now(), release_reason=reason)


# --- Decisions ----------------------------------------------------------------------------------


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
    *, product_ids: Iterable[int], cause: str, reprice_ids: Iterable[int] = (), qc_changed: bool = False
) -> None:
    """On commit: reprice the SKUs whose confirmed matches changed, refresh money at risk of the SKUs
    touched, and forget the cached QC verdict when a QC sample was decided."""
    refresh, reprice = sorted(set(product_ids)), sorted(set(reprice_ids))

    def run() -> None:
        if qc_changed:
            cache.delete(selectors.PAUSE_CACHE_KEY)
        for product_id in reprice:
            _enqueue_reprice(product_id, cause)
        for product_id in refresh:
            _enqueue_money_at_risk(product_id)

    transaction.on_commit(run)


def _enqueue_reprice(product_id: int, cause: str) -> None:
    try:
        from pricing.tasks import reprice_product_task
    except ImportError:  # pricing's task is written in its own issue; decisions must not wait for it
        log.warning(
            "pricing.tasks.reprice_product_task missing; product %s not repriced (%s)", product_id, cause
        )
        return
    try:
        reprice_product_task.delay(product_id, cause)
    except Exception:  # the decision is committed; a broker outage must not turn it into an error page
        log.exception("could not enqueue reprice of product %s (%s)", product_id, cause)


def _enqueue_money_at_risk(product_id: int) -> None:
    from review.tasks import money_at_risk_refresh_task

    try:
        money_at_risk_refresh_task.delay(product_id)
    except Exception:
        log.exception("could not enqueue money-at-risk refresh of product %s", product_id)


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
    match = (
        Match.objects.select_for_update(of=("self",))
        .select_related("product", "listing", "thresholds")
        .filter(pk=match_id)
        .first()
    )
    if match is None:
        raise ReviewRefused("이 항목은 더 이상 없습니다 (경쟁 상품이 삭제되었습니다).")
    if not _in_queue(match):
        raise ReviewRefused(_already_decided_message(match.pk))
    claim = (
        Claim.objects.select_for_update()
        .select_related("user")
        .filter(match=match, released_at__isnull=True)
        .first()
    )
    if claim is None or claim.user_id != user.pk or (claim_id is not None and claim.pk != claim_id):
        if claim is not None and claim.user_id != user.pk and claim.expires_at > now:
            raise ReviewRefused(
                f"{claim.user.get_username()} 님이 검토 중인 항목입니다. 결정하지 않았습니다."
            )
        raise ReviewRefused("검토 잠금이 만료되어 이 항목을 결정할 수 없습니다. 다시 불러와 주세요.")
    status_after = Match.Status.MATCHED if action == Action.APPROVE else Match.Status.REJECTED
    decision = _decision_row(
        match=match,
        user=user,
        action=action,
        now=now,
        status_after=status_after,
        reason=reason,
        note=note,
        claim_id=claim.pk,
    )
    decision.save()
    Match.objects.filter(pk=match.pk).update(
        status=status_after, decided_by_human=True, audit_sample=False, updated_at=now
    )
    Claim.objects.filter(pk=claim.pk).update(released_at=now, release_reason=Claim.Release.DECIDED)
    _after_commit(
        product_ids=[match.product_id],
        cause=f"review:{action}:match={match.pk}",
        reprice_ids=[match.product_id] if status_after != match.status else [],
        qc_changed=match.audit_sample,
    )
    return decision


@transaction.atomic
def decision_skip(*, user, match_id: int, claim_id: int | None) -> ReviewDecision | None:
    """Set a pair aside: recorded (for stats and so "next" does not offer it again today), lease released."""
    now = timezone.now()
    match = Match.objects.select_related("thresholds", "product", "listing").filter(pk=match_id).first()
    released = Claim.objects.filter(user=user, released_at__isnull=True, match_id=match_id)
    if claim_id is not None:
        released = released.filter(pk=claim_id)
    released.update(released_at=now, release_reason=Claim.Release.SKIPPED)
    if match is None or not _in_queue(match):
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
    claim = Claim.objects.create(match=match, user=user, claimed_at=now, expires_at=now + _lease())
    undo.claim = claim
    undo.save()
    _after_commit(
        product_ids=[match.product_id],
        cause=f"review:undo:match={match.pk}",
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
        if not _in_queue(m):
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
        cause=f"review:bulk_{action}",
        reprice_ids=[m.product_id for m in decided if m.status != status_after],
        qc_changed=any(m.audit_sample for m in decided),
    )
    return result


# --- Money at risk --------------------------------------------------------------------------------


def _price_preview_price(product: Product, listing) -> int | None:
    try:
        from pricing.services import price_preview
    except ImportError:
        return None
    try:
        preview = price_preview(product=product, listing=listing)
    except Exception:  # a preview is advice for ordering; never let it break the refresh
        log.exception("price_preview failed for product %s listing %s", product.pk, listing.pk)
        return None
    price = getattr(preview, "price", None)
    return int(price) if price is not None else None


def _target(product: Product, cheapest: int | None) -> int:
    """Where our price would go with this cheapest confirmed competitor: just matching it, never under the
    floor; no competitor → unchanged. Only for ordering the queue; pricing decides the real price."""
    if cheapest is None:
        return product.price
    floor = product.min_price or product.cost or 0
    return max(floor, cheapest)


@transaction.atomic
def money_at_risk_refresh(*, product_id: int) -> int:
    """Recompute Match.money_at_risk for the SKU's queued pairs (pending and QC samples): how far our price
    would move if the pair's status flipped (approved for pending/auto-rejected, rejected for auto-matched).
    Call after matching a SKU or after a decision changed its confirmed matches. Returns rows changed."""
    product = Product.objects.filter(pk=product_id).first()
    if product is None:
        return 0
    matches = list(
        Match.objects.select_for_update(of=("self",))
        .select_related("listing")
        .filter(product_id=product_id)
        .order_by("id")
    )
    confirmed = {m.listing_id: m.listing.total_price for m in matches if m.status == Match.Status.MATCHED}
    changed: list[Match] = []
    for m in matches:
        if not _in_queue(m):
            continue
        others = [total for listing_id, total in confirmed.items() if listing_id != m.listing_id]
        without = min(others) if others else None
        with_it = min(others + [m.listing.total_price])
        risk = abs(_target(product, with_it) - _target(product, without))
        if m.status == Match.Status.PENDING:
            preview = _price_preview_price(product, m.listing)
            if preview is not None:
                risk = abs(preview - product.price)
        if risk != m.money_at_risk:
            m.money_at_risk = risk
            changed.append(m)
    if changed:
        Match.objects.bulk_update(changed, ["money_at_risk"])
    return len(changed)


# --- Quality control ------------------------------------------------------------------------------


@transaction.atomic
def audit_sample_draw(*, user=None) -> AuditSampleDraw:
    """Sample the configured share of automatic decisions made since the last draw into the queue as QC items.

    Bernoulli sampling (each pair independently with probability audit_share), capped at audit_max_per_draw
    by a random subset, so the estimate stays unbiased. The status of sampled pairs does not change.
    """
    cfg = ReviewSettings.objects.select_for_update().filter(pk=selectors.review_settings().pk).first()
    now = timezone.now()
    last = AuditSampleDraw.objects.order_by("-created_at").first()
    since = last.until if last else None
    base = Match.objects.filter(decided_by_human=False, audit_sample=False, decided_at__lte=now).filter(
        Q(bucket=Match.Bucket.AUTO, status=Match.Status.MATCHED)
        | Q(bucket=Match.Bucket.REJECT, status=Match.Status.REJECTED)
    )
    if since is not None:
        base = base.filter(decided_at__gt=since)
    candidates = base.count()
    picked = list(
        base.alias(r=Func(function="random", output_field=FloatField()))
        .filter(r__lt=float(cfg.audit_share))
        .order_by("?")
        .values_list("id", "bucket")[: cfg.audit_max_per_draw]
    )
    Match.objects.filter(pk__in=[pk for pk, _ in picked]).update(audit_sample=True, updated_at=now)
    return AuditSampleDraw.objects.create(
        created_at=now,
        since=since,
        until=now,
        share=cfg.audit_share,
        candidates=candidates,
        sampled_auto=sum(1 for _, b in picked if b == Match.Bucket.AUTO),
        sampled_reject=sum(1 for _, b in picked if b == Match.Bucket.REJECT),
        user=user,
    )


def _decimal(value: Any, name: str, low: Decimal, high: Decimal) -> Decimal:
    try:
        d = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ReviewRefused(f"{name}: 숫자를 입력해 주세요.") from None
    if not (low <= d <= high):
        raise ReviewRefused(f"{name}: {low}–{high} 사이여야 합니다.")
    return d


@transaction.atomic
def review_settings_update(
    *,
    user,
    audit_share: Any,
    precision_target: Any,
    min_audit_sample: Any,
    confidence_level: Any,
    qc_window_days: Any,
    audit_max_per_draw: Any,
) -> ReviewSettings:
    values = {
        "audit_share": _decimal(audit_share, "감사 표본 비율", Decimal("0"), Decimal("0.5")),
        "precision_target": _decimal(precision_target, "정밀도 목표", Decimal("0.5"), Decimal("0.9999")),
        "confidence_level": _decimal(confidence_level, "신뢰 수준", Decimal("0.5"), Decimal("0.999")),
        "min_audit_sample": int(_decimal(min_audit_sample, "최소 표본 수", Decimal("1"), Decimal("100000"))),
        "qc_window_days": int(_decimal(qc_window_days, "추정 기간", Decimal("1"), Decimal("3650"))),
        "audit_max_per_draw": int(
            _decimal(audit_max_per_draw, "1회 최대 표본 수", Decimal("1"), Decimal("100000"))
        ),
    }
    row = ReviewSettings.objects.select_for_update().get(pk=selectors.review_settings().pk)
    for key, value in values.items():
        setattr(row, key, value)
    row.updated_by = user
    row.save()
    transaction.on_commit(lambda: cache.delete(selectors.PAUSE_CACHE_KEY))
    return row


# --- Thresholds -----------------------------------------------------------------------------------


@transaction.atomic
def thresholds_save(*, user, auto_threshold: Any, review_threshold: Any, note: str = "") -> ThresholdChange:
    """Save a new threshold version (matcher.services.threshold_set_create) with an audit row holding what
    the simulator predicted for it. Existing pairs keep their bucket until the matcher decides them again."""
    from matcher.services import threshold_set_create, thresholds_active

    auto = _decimal(auto_threshold, "자동 매칭 기준", Decimal("0.001"), Decimal("1"))
    review = _decimal(review_threshold, "검토 기준", Decimal("0.001"), Decimal("1"))
    if review > auto:
        raise ReviewRefused("검토 기준은 자동 매칭 기준보다 클 수 없습니다.")
    note = (note or "").strip()[:300]
    previous = thresholds_active()
    simulation = selectors.threshold_simulation(auto_threshold=auto, review_threshold=review)
    policy = dict(previous.policy or {})
    # The decision policy may carry its own copy of the thresholds; keep them in step.
    for key, value in (("auto_threshold", auto), ("review_threshold", review)):
        if key in policy:
            policy[key] = float(value)
    new = threshold_set_create(
        auto_threshold=auto, review_threshold=review, policy=policy, note=note, user=user
    )
    return ThresholdChange.objects.create(
        threshold_set=new,
        previous=previous,
        user=user,
        created_at=timezone.now(),
        note=note,
        simulation=simulation.as_json(),
    )
