"""Money at risk: how far our price would move if a queued pair's status flipped.

The review queue is ordered by it (highest first), so reviewers decide what matters for prices
first. It is a price calculation, so it lives here; pricing refreshes it when a SKU's matches
change (receivers.py) and review only reads `Match.money_at_risk`.
"""

from __future__ import annotations

import logging

from django.db import transaction

from matcher.models import Listing, Match, Product
from pricing.services import price_preview
from review.queue import in_queue

log = logging.getLogger(__name__)


def _price_preview_price(product: Product, listing: Listing) -> int | None:
    """What pricing would set if the listing were confirmed, or None when it cannot say."""
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
        if not in_queue(m):
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
