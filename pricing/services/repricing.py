"""Repricing one SKU: read what the decision depends on once, decide, propose, and apply when allowed.

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

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from matcher.causes import Cause, CauseKind
from matcher.models import Listing, Match, Product
from pricing import rules, selectors
from pricing.models import (
    CompetitorPriceObservation,
    PriceAuditEntry,
    PriceChange,
    PriceProposal,
    PricingRun,
    RepricingState,
)
from pricing.services.halt import HALTED_REASON, auto_pricing_halt_current
from pricing.services.webhooks import webhook_outbox
from review import selectors as review_selectors

logger = logging.getLogger(__name__)

PAUSED_REASON = "검토 대기열 품질 관리로 자동 가격 변경이 일시 중지되었습니다"
DUE_CAUSE = Cause(CauseKind.LIMIT_RETRY).text


def auto_pricing_paused() -> bool:
    """The review app's quality-control switch.

    If the switch fails, we treat automatic changes as paused: a missed automatic change waits for
    an admin, a wrong one reaches customers.
    """
    try:
        return bool(review_selectors.auto_pricing_paused())
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


def inputs_fingerprint(
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


def evaluation(product: Product, now: datetime) -> Evaluation:
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
        fingerprint=inputs_fingerprint(policy, product, counted, cap),
        now=now,
    )


def decide(ev: Evaluation) -> rules.Decision:
    return rules.decide_price(
        product=ev.numbers,
        policy=ev.policy,
        candidates=ev.candidates,
        now=ev.now,
        day_baseline=ev.day_baseline,
        correction_cap=ev.correction_cap,
    )


def state_save(product: Product, ev: Evaluation, *, retry_after: datetime | None) -> None:
    RepricingState.objects.update_or_create(
        product=product,
        defaults={
            "fingerprint": ev.fingerprint,
            "price": product.price,
            "evaluated_at": ev.now,
            "retry_after": retry_after,
        },
    )


def state_refresh(product: Product) -> None:
    """After our price moved: remember the inputs as they are now, so a re-run with nothing changed
    is a no-op."""
    now = timezone.now()
    state_save(product, evaluation(product, now), retry_after=None)


def nothing_changed(state: RepricingState | None, product: Product, ev: Evaluation) -> bool:
    if state is None or state.fingerprint != ev.fingerprint or state.price != product.price:
        return False
    # A move cut short by a limit continues once the 24-hour window has moved on.
    return state.retry_after is None or ev.now < state.retry_after


def match_snapshot(match: Match | None) -> dict[str, object]:
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


def apply_proposal(
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
        match_snapshot=match_snapshot(match),
        automatic=automatic,
        user=user,
    )
    if proposal.run_id:
        PricingRun.objects.filter(pk=proposal.run_id).update(applied=F("applied") + 1)
    webhook_outbox(change)
    return change


def lock_product(product_id: int) -> Product | None:
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
    product = lock_product(product_id)
    if product is None or not product.active:
        return None
    now = timezone.now()
    ev = evaluation(product, now)
    state = RepricingState.objects.filter(product=product).first()
    if nothing_changed(state, product, ev):
        return None

    decision = decide(ev)
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
        if allowed and auto_pricing_halt_current() is not None:
            allowed, held_reason = False, HALTED_REASON
        elif allowed and auto_pricing_paused():
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
            # Still automatic (the rules applied it), but caused by `user` when a person's decision led here.
            apply_proposal(proposal, product=product, user=user, automatic=True, match=match)
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
        state_save(product, evaluation(product, now), retry_after=retry)
    else:
        retry = now + timedelta(hours=24) if clamped and not decision.changed else None
        state_save(product, ev, retry_after=retry)
    return proposal


@dataclass
class PricePreview:
    """What we would set if the listing were confirmed (``price`` equals the current price if nothing
    would move)."""

    price: int
    floor: int
    notes: list[str] = field(default_factory=list)
    current_price: int = 0
    follows_listing: bool = False


def price_preview(*, product: Product, listing: Listing) -> PricePreview:
    """The price we would set if ``listing`` were confirmed for ``product``. Reads only (4 queries)."""
    now = timezone.now()
    ev = evaluation(product, now)
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
    decision = decide(ev)
    notes = list(decision.notes)
    if not rules.counts(imagined, ev.policy, now):
        notes.insert(
            0, f"이 상품은 {ev.policy.stale_after_hours}시간 넘게 확인되지 않아 가격에 반영되지 않습니다"
        )
    return PricePreview(
        price=decision.price,
        floor=decision.floor,
        notes=notes,
        current_price=product.price,
        follows_listing=decision.followed is not None and decision.followed.listing_id == listing.pk,
    )


def reprice_due(*, limit: int = 5000) -> int:
    """Continue moves a limit cut short, once their 24-hour window has passed (periodic).

    Returns how many SKUs were evaluated.
    """
    due = RepricingState.objects.filter(retry_after__lte=timezone.now()).values_list("product_id", flat=True)
    product_ids = list(due[:limit])
    for product_id in product_ids:
        reprice_product(product_id=product_id, cause=DUE_CAUSE)
    return len(product_ids)
