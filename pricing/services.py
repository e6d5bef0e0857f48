"""Where a price is decided and changed.

Public functions others call:
- ``reprice_product(*, product_id, cause, run_id=None, user=None)``: evaluate one SKU; creates a
  proposal (applied when the policy allows) or nothing. Safe to call twice.
- ``price_preview(*, product, listing)``: the price we would set if ``listing`` were confirmed. Reads only.

Every applied change writes its PriceChange, its PriceAuditEntry, Product.price and the webhook
outbox row in one transaction; the webhook is sent after commit.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from matcher.models import Listing, Match, Product
from pricing import rules, selectors
from pricing.models import (
    CompetitorPriceObservation,
    PriceAuditEntry,
    PriceChange,
    PriceProposal,
    PricingRun,
    RepricingState,
    WebhookDelivery,
)

logger = logging.getLogger(__name__)

PAUSED_REASON = "검토 대기열 품질 관리로 자동 가격 변경이 일시 중지되었습니다"


def auto_pricing_paused() -> bool:
    """The review app's quality-control switch; False while that app does not provide one.

    If the switch exists but fails, we treat automatic changes as paused: a missed automatic
    change waits for an admin, a wrong one reaches customers.
    """
    try:
        from review.selectors import auto_pricing_paused as review_paused
    except ImportError:
        return False
    try:
        return bool(review_paused())
    except Exception:  # noqa: BLE001 - fail safe, see docstring
        logger.exception("review.selectors.auto_pricing_paused failed; holding automatic price changes")
        return True


@dataclass
class Evaluation:
    """Everything one evaluation of a SKU looks at, read once."""

    policy: rules.Policy
    numbers: rules.ProductNumbers
    candidates: list[rules.Candidate]
    day_baseline: int | None
    correction_cap: int | None
    fingerprint: str
    now: datetime


def _fingerprint(
    policy: rules.Policy, product: Product, counted: list[rules.Candidate], correction_cap: int | None
) -> str:
    """What the decision depends on apart from our own price and the clock: policy, cost, counted listings."""
    data = {
        "policy": {k: v for k, v in policy.as_json().items() if k != "sources"},
        "cost": product.cost,
        "min_price": product.min_price,
        "listings": [(c.listing_id, c.match_id, c.price, c.shipping_fee) for c in counted],
        "correction_cap": correction_cap,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _evaluation(product: Product, now: datetime) -> Evaluation:
    """4 queries: policy, confirmed matches, 24-hour baseline, last change."""
    policy = selectors.policy_for_product(product)
    candidates = selectors.confirmed_candidates(product.pk)
    cap = selectors.correction_cap(product)
    counted = rules.counted_candidates(candidates, policy, now)
    return Evaluation(
        policy=policy,
        numbers=selectors.product_numbers(product),
        candidates=candidates,
        day_baseline=selectors.day_baseline(product.pk, now),
        correction_cap=cap,
        fingerprint=_fingerprint(policy, product, counted, cap),
        now=now,
    )


def _decide(ev: Evaluation) -> rules.Decision:
    return rules.decide_price(
        product=ev.numbers,
        policy=ev.policy,
        candidates=ev.candidates,
        now=ev.now,
        day_baseline=ev.day_baseline,
        correction_cap=ev.correction_cap,
    )


def _state_save(product: Product, ev: Evaluation, *, retry_after: datetime | None) -> None:
    RepricingState.objects.update_or_create(
        product=product,
        defaults={
            "fingerprint": ev.fingerprint,
            "price": product.price,
            "evaluated_at": ev.now,
            "retry_after": retry_after,
        },
    )


def _state_refresh(product: Product) -> None:
    """After our price moved: remember the inputs as they are now, so a re-run with nothing changed is a no-op."""
    now = timezone.now()
    _state_save(product, _evaluation(product, now), retry_after=None)


def _nothing_changed(state: RepricingState | None, product: Product, ev: Evaluation) -> bool:
    if state is None or state.fingerprint != ev.fingerprint or state.price != product.price:
        return False
    # A move cut short by a limit continues once the 24-hour window has moved on.
    return state.retry_after is None or ev.now < state.retry_after


def _match_snapshot(match: Match | None) -> dict[str, object]:
    if match is None:
        return {}
    return {
        "match_id": match.pk,
        "listing_id": match.listing_id,
        "status": match.status,
        "bucket": match.bucket,
        "decided_by_human": match.decided_by_human,
        "confidence": str(match.confidence),
        "decided_at": match.decided_at.isoformat() if match.decided_at else None,
    }


def _webhook_outbox(change: PriceChange) -> None:
    url = getattr(settings, "PRICING_WEBHOOK_URL", "") or ""
    if not url:
        return
    product = change.product
    payload = {
        "event": "price.changed",
        "change_id": change.pk,
        "kind": change.kind,
        "sku": product.sku,
        "product_number": product.product_number,
        "old_price": change.old_price,
        "new_price": change.new_price,
        "automatic": change.automatic,
        "changed_at": change.created_at.isoformat(),
    }
    delivery = WebhookDelivery.objects.create(change=change, url=url, payload=payload)

    def enqueue() -> None:
        from pricing.tasks import deliver_webhook_task

        deliver_webhook_task.delay(delivery.pk)

    # robust: a broker outage must not turn a committed price change into an error page; the
    # delivery row stays pending and webhook_redeliver_pending picks it up.
    transaction.on_commit(enqueue, robust=True)


def _apply(
    proposal: PriceProposal, *, product: Product, user, automatic: bool, match: Match | None
) -> PriceChange:
    """Call inside a transaction holding the product's row lock."""
    now = timezone.now()
    reason = "\n".join(proposal.notes)
    change = PriceChange.objects.create(
        product=product,
        kind=PriceChange.Kind.APPLY,
        old_price=product.price,
        new_price=proposal.new_price,
        reason=reason,
        proposal=proposal,
        run=proposal.run,
        automatic=automatic,
        user=user,
    )
    product.price = proposal.new_price
    product.save(update_fields=["price", "updated_at"])
    proposal.status = PriceProposal.Status.APPLIED
    proposal.decided_by = user
    proposal.decided_at = now
    proposal.save(update_fields=["status", "decided_by", "decided_at"])
    PriceAuditEntry.objects.create(
        action=PriceAuditEntry.Action.APPLIED,
        product=product,
        sku=product.sku,
        old_price=change.old_price,
        new_price=change.new_price,
        reason=reason,
        cause=proposal.cause,
        proposal=proposal,
        change=change,
        run=proposal.run,
        match=match,
        match_snapshot=_match_snapshot(match),
        automatic=automatic,
        user=user,
    )
    if proposal.run_id:
        PricingRun.objects.filter(pk=proposal.run_id).update(applied=F("applied") + 1)
    _webhook_outbox(change)
    return change


def _lock_product(product_id: int) -> Product | None:
    return Product.objects.select_for_update().filter(pk=product_id).first()


@transaction.atomic
def reprice_product(
    *, product_id: int, cause: str, run_id: int | None = None, user=None
) -> PriceProposal | None:
    """Evaluate one SKU against its confirmed, fresh matches.

    Returns the new proposal (status applied when the policy's auto-apply limits allow and quality
    control has not paused automatic changes, otherwise pending), or None when nothing changed
    since the last evaluation or the price stays. Idempotent: a second call with nothing changed
    writes nothing.
    """
    product = _lock_product(product_id)
    if product is None or not product.active:
        return None
    now = timezone.now()
    ev = _evaluation(product, now)
    state = RepricingState.objects.filter(product=product).first()
    if _nothing_changed(state, product, ev):
        return None

    decision = _decide(ev)
    if run_id:
        PricingRun.objects.filter(pk=run_id).update(evaluated=F("evaluated") + 1)

    # A new evaluation replaces whatever was waiting: it was computed from inputs that moved on.
    PriceProposal.objects.filter(product=product, status=PriceProposal.Status.PENDING).update(
        status=PriceProposal.Status.SUPERSEDED, decided_at=now
    )

    proposal: PriceProposal | None = None
    applied = False
    if decision.changed:
        followed = decision.followed
        match = Match.objects.filter(pk=followed.match_id).first() if followed and followed.match_id else None
        allowed, held_reason = rules.auto_apply_verdict(decision, ev.policy)
        if allowed and auto_pricing_paused():
            allowed, held_reason = False, PAUSED_REASON
        proposal = PriceProposal.objects.create(
            product=product,
            run_id=run_id,
            cause=cause[:200],
            old_price=decision.old_price,
            new_price=decision.price,
            floor=decision.floor,
            target=decision.target,
            followed_listing_id=followed.listing_id if followed else None,
            followed_match=match,
            followed_mall=followed.mall if followed else "",
            followed_title=followed.title[:500] if followed else "",
            followed_price=followed.price if followed else None,
            followed_shipping_fee=followed.shipping_fee if followed else None,
            limits_hit=decision.limits_hit,
            notes=decision.notes + ([f"보류: {held_reason}"] if held_reason else []),
            policy=ev.policy.as_json(),
            auto_eligible=allowed,
            held_reason=held_reason,
            requested_by=user,
        )
        if run_id:
            PricingRun.objects.filter(pk=run_id).update(proposed=F("proposed") + 1)
        if allowed:
            _apply(proposal, product=product, user=None, automatic=True, match=match)
            applied = True

    best = rules.cheapest(rules.counted_candidates(ev.candidates, ev.policy, now), ev.policy)
    CompetitorPriceObservation.objects.create(
        product=product,
        observed_at=now,
        cheapest_total=best.total(ev.policy.include_shipping) if best else None,
        cheapest_listing_id=best.listing_id if best else None,
        cheapest_mall=best.mall if best else "",
        counted_listings=decision.counted,
        our_price=product.price,
        cause=cause[:200],
    )
    clamped = "max_change" in decision.limits_hit
    if applied:
        # Our price moved: the stored inputs must include what we just did (e.g. the last change).
        retry = now + timedelta(hours=24) if clamped else None
        _state_save(product, _evaluation(product, now), retry_after=retry)
    else:
        retry = now + timedelta(hours=24) if clamped and not decision.changed else None
        _state_save(product, ev, retry_after=retry)
    return proposal


@dataclass
class PricePreview:
    """What we would set if the listing were confirmed (``price`` equals the current price if nothing would move)."""

    price: int
    floor: int
    notes: list[str] = field(default_factory=list)
    current_price: int = 0
    follows_listing: bool = False


def price_preview(*, product: Product, listing: Listing) -> PricePreview:
    """The price we would set if ``listing`` were confirmed for ``product``. Reads only (4 queries)."""
    now = timezone.now()
    ev = _evaluation(product, now)
    others = [c for c in ev.candidates if c.listing_id != listing.pk]
    match_id = Match.objects.filter(listing_id=listing.pk).values_list("pk", flat=True).first()
    imagined = rules.Candidate(
        listing_id=listing.pk,
        match_id=match_id,
        status=rules.MATCHED,
        price=listing.price,
        shipping_fee=listing.shipping_fee,
        last_seen=listing.last_seen,
        mall=listing.mall,
        title=listing.title,
    )
    ev.candidates = others + [imagined]
    decision = _decide(ev)
    notes = list(decision.notes)
    if not rules.counts(imagined, ev.policy, now):
        notes.insert(0, f"이 상품은 {ev.policy.stale_after_hours}시간 넘게 확인되지 않아 가격에 반영되지 않습니다")
    return PricePreview(
        price=decision.price,
        floor=decision.floor,
        notes=notes,
        current_price=product.price,
        follows_listing=decision.followed is not None and decision.followed.listing_id == listing.pk,
    )


def _lock_proposal(proposal_id: int) -> tuple[PriceProposal, Product]:
    """Lock the SKU, then its proposal, then check it still waits.

    Always the product row first, as reprice_product does, so an approval racing a re-evaluation
    queues behind it instead of deadlocking.
    """
    product_id = PriceProposal.objects.values_list("product_id", flat=True).get(pk=proposal_id)
    product = _lock_product(product_id)
    proposal = PriceProposal.objects.select_for_update().get(pk=proposal_id)
    if proposal.status != PriceProposal.Status.PENDING:
        raise ValidationError(f"이미 처리된 제안입니다 ({proposal.get_status_display()}).")
    assert product is not None
    return proposal, product


@transaction.atomic
def proposal_approve(*, proposal_id: int, user) -> PriceProposal:
    """An admin applies a waiting proposal; refused if the price or the followed match moved on since."""
    proposal, product = _lock_proposal(proposal_id)
    if product.price != proposal.old_price:
        raise ValidationError("제안 이후 가격이 바뀌었습니다. 다시 계산해 주세요.")
    match = Match.objects.filter(pk=proposal.followed_match_id).first() if proposal.followed_match_id else None
    if proposal.followed_price is not None and (match is None or match.status != Match.Status.MATCHED):
        raise ValidationError("이 제안이 따르던 매칭이 더 이상 확정 상태가 아닙니다.")
    floor = rules.floor_price(selectors.product_numbers(product), selectors.policy_for_product(product))
    if proposal.new_price < floor:
        raise ValidationError(f"제안 가격이 현재 하한가 {rules.won(floor)}보다 낮습니다.")
    _apply(proposal, product=product, user=user, automatic=False, match=match)
    _state_refresh(product)
    return proposal


@transaction.atomic
def proposal_reject(*, proposal_id: int, user, note: str = "") -> PriceProposal:
    proposal, product = _lock_proposal(proposal_id)
    proposal.status = PriceProposal.Status.REJECTED
    proposal.decided_by = user
    proposal.decided_at = timezone.now()
    proposal.save(update_fields=["status", "decided_by", "decided_at"])
    match = Match.objects.filter(pk=proposal.followed_match_id).first() if proposal.followed_match_id else None
    PriceAuditEntry.objects.create(
        action=PriceAuditEntry.Action.REJECTED,
        product=product,
        sku=product.sku,
        old_price=proposal.old_price,
        new_price=proposal.new_price,
        reason=("관리자 거절" + (f": {note}" if note else "")),
        cause=proposal.cause,
        proposal=proposal,
        run=proposal.run,
        match=match,
        match_snapshot=_match_snapshot(match),
        automatic=False,
        user=user,
    )
    return proposal


@dataclass
class BulkResult:
    done: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)


def proposals_decide_bulk(*, proposal_ids: list[int], approve: bool, user) -> BulkResult:
    """Approve or reject many; each proposal in its own transaction so one refusal does not undo the rest."""
    result = BulkResult()
    for pid in proposal_ids:
        try:
            if approve:
                proposal_approve(proposal_id=pid, user=user)
            else:
                proposal_reject(proposal_id=pid, user=user)
        except (ValidationError, PriceProposal.DoesNotExist) as exc:
            result.failed[pid] = "; ".join(getattr(exc, "messages", [str(exc)]))
        else:
            result.done.append(pid)
    return result


def _rollback_one(change: PriceChange, *, user, action: str) -> PriceChange:
    """Call inside a transaction. Restores the price before ``change`` and audits it."""
    product = _lock_product(change.product_id)
    assert product is not None
    if change.kind != PriceChange.Kind.APPLY:
        raise ValidationError("되돌림 기록은 다시 되돌릴 수 없습니다.")
    if PriceChange.objects.filter(reverts=change).exists():
        raise ValidationError("이미 되돌린 변경입니다.")
    later = PriceChange.objects.filter(
        product=product, kind=PriceChange.Kind.APPLY, created_at__gt=change.created_at, reverted_by__isnull=True
    ).exclude(pk=change.pk)
    if later.exists() or product.price != change.new_price:
        raise ValidationError(f"{product.sku}: 이후에 다른 가격 변경이 있어 되돌릴 수 없습니다. 최신 변경부터 되돌리세요.")
    floor = rules.floor_price(selectors.product_numbers(product), selectors.policy_for_product(product))
    if change.old_price < floor:
        raise ValidationError(f"{product.sku}: 이전 가격 {rules.won(change.old_price)}이 현재 하한가 {rules.won(floor)}보다 낮습니다.")
    label = "실행 전체 되돌림" if action == PriceAuditEntry.Action.RUN_ROLLED_BACK else "변경 되돌림"
    reason = f"{label}: 변경 #{change.pk} ({rules.won(change.old_price)} → {rules.won(change.new_price)})을 되돌립니다"
    rollback = PriceChange.objects.create(
        product=product,
        kind=PriceChange.Kind.ROLLBACK,
        old_price=product.price,
        new_price=change.old_price,
        reason=reason,
        proposal=change.proposal,
        run=change.run,
        reverts=change,
        automatic=False,
        user=user,
    )
    product.price = change.old_price
    product.save(update_fields=["price", "updated_at"])
    proposal = change.proposal
    match = None
    if proposal is not None:
        PriceProposal.objects.filter(pk=proposal.pk).update(status=PriceProposal.Status.ROLLED_BACK)
        match = Match.objects.filter(pk=proposal.followed_match_id).first() if proposal.followed_match_id else None
    PriceAuditEntry.objects.create(
        action=action,
        product=product,
        sku=product.sku,
        old_price=rollback.old_price,
        new_price=rollback.new_price,
        reason=reason,
        cause=proposal.cause if proposal else "",
        proposal=proposal,
        change=rollback,
        run=change.run,
        match=match,
        match_snapshot=_match_snapshot(match),
        automatic=False,
        user=user,
    )
    _webhook_outbox(rollback)
    # Remember the restored price with today's inputs: re-running with nothing changed must not
    # re-apply the move an admin just took back.
    _state_refresh(product)
    return rollback


@transaction.atomic
def change_rollback(*, change_id: int, user) -> PriceChange:
    """Restore the price before one applied change (the newest on its SKU); audited."""
    # _rollback_one locks the SKU before it checks the change was not rolled back already.
    change = PriceChange.objects.select_related("proposal").get(pk=change_id)
    return _rollback_one(change, user=user, action=PriceAuditEntry.Action.ROLLED_BACK)


@dataclass
class RunRollbackResult:
    restored: list[int] = field(default_factory=list)  # product ids
    skipped: dict[str, str] = field(default_factory=dict)  # sku → why


@transaction.atomic
def run_rollback(*, run_id: int, user) -> RunRollbackResult:
    """Restore the prices a run changed, newest first. SKUs changed again since are skipped and reported."""
    # No lock on the run row before the SKUs' rows (reprice_product locks SKU then run); a second
    # rollback racing this one is caught by the conditional update at the end.
    run = PricingRun.objects.get(pk=run_id)
    if run.rolled_back_at:
        raise ValidationError("이미 되돌린 실행입니다.")
    result = RunRollbackResult()
    changes = (
        PriceChange.objects.filter(run=run, kind=PriceChange.Kind.APPLY, reverted_by__isnull=True)
        .select_related("proposal", "product")
        .order_by("-created_at", "-id")
    )
    for change in changes:
        try:
            with transaction.atomic():
                _rollback_one(change, user=user, action=PriceAuditEntry.Action.RUN_ROLLED_BACK)
        except ValidationError as exc:
            result.skipped[change.product.sku] = "; ".join(exc.messages)
        else:
            result.restored.append(change.product_id)
    marked = PricingRun.objects.filter(pk=run.pk, rolled_back_at__isnull=True).update(
        rolled_back_at=timezone.now(), rolled_back_by=user
    )
    if not marked:
        raise ValidationError("이미 되돌린 실행입니다.")
    return result


@transaction.atomic
def pricing_run_create(*, cause: str, product_ids: list[int] | None, user=None) -> PricingRun:
    """A run over the given SKUs (all active SKUs when None); the task reprices them after commit."""
    if product_ids is None:
        product_ids = list(Product.objects.filter(active=True).order_by("pk").values_list("pk", flat=True))
    run = PricingRun.objects.create(cause=cause[:200], product_ids=product_ids, requested_by=user)

    def enqueue() -> None:
        from pricing.tasks import reprice_run_task

        reprice_run_task.delay(run.pk, 0)

    transaction.on_commit(enqueue)
    return run


RUN_BATCH = 500


def pricing_run_execute(*, run_id: int, start: int = 0, batch: int | None = None) -> int | None:
    """Reprice SKUs ``start`` … ``start + batch`` of a run, one transaction per SKU so a long run holds
    no long lock. Returns where the next slice starts, or None when the run is done.

    Safe to repeat: a SKU evaluated already is a no-op the second time.
    """
    batch = batch or RUN_BATCH
    run = PricingRun.objects.select_related("requested_by").get(pk=run_id)
    if run.finished_at:
        return None
    ids = run.product_ids[start : start + batch]
    for product_id in ids:
        reprice_product(product_id=product_id, cause=run.cause, run_id=run.pk, user=run.requested_by)
    following = start + batch
    if following >= len(run.product_ids):
        PricingRun.objects.filter(pk=run.pk).update(finished_at=timezone.now())
        return None
    return following


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over "<timestamp>.<body>", hex; the receiver recomputes it and rejects old timestamps."""
    import hmac

    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def webhook_deliver(*, delivery_id: int, final_attempt: bool = False) -> WebhookDelivery:
    """Send one outbox row; raises on a failed attempt so the task retries. Delivered rows are left alone."""
    import requests

    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
        if delivery.state == WebhookDelivery.State.DELIVERED:
            return delivery
        delivery.attempts += 1
        delivery.save(update_fields=["attempts"])
    body = json.dumps(delivery.payload, sort_keys=True, ensure_ascii=False).encode()
    timestamp = str(int(timezone.now().timestamp()))
    headers = {
        "Content-Type": "application/json",
        "X-PriceMatch-Event": str(delivery.payload.get("event", "")),
        "X-PriceMatch-Delivery": str(delivery.pk),
        "X-PriceMatch-Timestamp": timestamp,
    }
    secret = getattr(settings, "PRICING_WEBHOOK_SECRET", "") or ""
    if secret:
        headers["X-PriceMatch-Signature"] = "sha256=" + webhook_signature(secret, timestamp, body)
    timeout = getattr(settings, "PRICING_WEBHOOK_TIMEOUT_S", 10)
    try:
        response = requests.post(delivery.url, data=body, headers=headers, timeout=timeout, allow_redirects=False)
        status, error = response.status_code, ("" if response.ok else response.text[:300])
    except requests.RequestException as exc:
        status, error = None, str(exc)[:500]
    ok = status is not None and 200 <= status < 300
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        last_status_code=status,
        last_error=error,
        state=WebhookDelivery.State.DELIVERED if ok else (
            WebhookDelivery.State.FAILED if final_attempt else WebhookDelivery.State.PENDING
        ),
        delivered_at=timezone.now() if ok else None,
    )
    delivery.refresh_from_db()
    if not ok and not final_attempt:
        raise WebhookDeliveryError(f"webhook {delivery.pk}: {status or error}")
    return delivery


class WebhookDeliveryError(Exception):
    pass
