"""What a policy edit would do, before it is saved: reads only, on the current data.

`policy_preview(policy=edited)` takes an unsaved (or changed, not yet saved) PricingPolicy and, for every
active SKU that layer covers (before and after the edit, when its scope or key changes), decides the price
the rules would set now under the policies as they are and under the policies with the edit, exactly as
`services.reprice_product` would (same `rules.decide_price`, same inputs), and counts: how many SKUs would
move, up and down, by how much (a histogram of the % move), which would be held at the floor, the won moved
in total, and the largest moves. Nothing is written.

Reads are set-based so a global edit over the whole catalogue stays within seconds: 5 queries (policy
layers, covered SKUs, confirmed listings, 24-hour baselines, last changes), then the rules in Python.
"""
from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Q
from django.utils import timezone

from matcher.models import Match, Product
from pricing import rules, selectors
from pricing.models import PriceChange, PricingPolicy

# % move bands for the histogram, lower bound inclusive (a move of exactly 0 is "no change").
BANDS: list[tuple[str, Decimal, Decimal]] = [
    ("-10% 이상 인하", Decimal("-1000"), Decimal("-10")),
    ("-5 ~ -10%", Decimal("-10"), Decimal("-5")),
    ("-2 ~ -5%", Decimal("-5"), Decimal("-2")),
    ("0 ~ -2%", Decimal("-2"), Decimal("0")),
    ("0 ~ +2%", Decimal("0"), Decimal("2")),
    ("+2 ~ +5%", Decimal("2"), Decimal("5")),
    ("+5 ~ +10%", Decimal("5"), Decimal("10")),
    ("+10% 이상 인상", Decimal("10"), Decimal("1000")),
]
EXAMPLES = 20


@dataclass(frozen=True)
class PreviewMove:
    sku: str
    title: str
    old_price: int
    new_price: int
    now_price: int  # what the rules would set under the policies as they are
    floor: int
    held_at_floor: bool

    @property
    def percent(self) -> Decimal:
        return ((Decimal(self.new_price) - self.old_price) * 100 / self.old_price).quantize(Decimal("0.1"))


@dataclass
class PolicyPreview:
    skus: int = 0
    moved_up: int = 0
    moved_down: int = 0
    unchanged: int = 0
    differs_from_now: int = 0  # SKUs where the edit changes what the rules would set
    held_at_floor: int = 0
    won_moved: int = 0  # the sum of (new - old) over the SKUs that move, KRW
    histogram: list[tuple[str, int]] = field(default_factory=list)
    largest: list[PreviewMove] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def histogram_max(self) -> int:
        return max((count for _, count in self.histogram), default=0)


def _covered(policy: PricingPolicy, saved: PricingPolicy | None) -> Q:
    def one(p: PricingPolicy) -> Q:
        if p.scope == PricingPolicy.Scope.CATEGORY:
            return Q(category=p.key)
        if p.scope == PricingPolicy.Scope.BRAND:
            return Q(brand=p.key)
        if p.scope == PricingPolicy.Scope.SKU:
            return Q(sku=p.key)
        return Q()

    wanted = one(policy)
    if saved is not None and (saved.scope, saved.key) != (policy.scope, policy.key):
        wanted |= one(saved)
    return wanted


def _baselines(product_ids: list[int], now: datetime) -> dict[int, int]:
    """Our price 24 hours ago per SKU (the old price of its first change since), as `day_baseline`."""
    rows = (
        PriceChange.objects.filter(product_id__in=product_ids, created_at__gt=now - timedelta(hours=24))
        .order_by("product_id", "created_at", "id")
        .distinct("product_id")
        .values_list("product_id", "old_price")
    )
    return dict(rows)


def _last_changes(product_ids: list[int]) -> dict[int, PriceChange]:
    rows = (
        PriceChange.objects.filter(product_id__in=product_ids)
        .select_related("proposal__followed_match")
        .order_by("product_id", "-created_at", "-id")
        .distinct("product_id")
    )
    return {change.product_id: change for change in rows}


def policy_preview(*, policy: PricingPolicy, now: datetime | None = None) -> PolicyPreview:
    """What saving `policy` (edited in memory, not saved) would make the rules do now. Reads only."""
    started = time.perf_counter()
    now = now or timezone.now()
    saved = PricingPolicy.objects.filter(pk=policy.pk).first() if policy.pk else None
    current = {(p.scope, p.key): p for p in PricingPolicy.objects.filter(active=True)}
    proposed = {k: v for k, v in current.items() if policy.pk is None or v.pk != policy.pk}
    if policy.active:
        proposed[(policy.scope, policy.key)] = policy

    products = list(
        Product.objects.filter(_covered(policy, saved), active=True)
        .only("id", "sku", "title", "brand", "category", "price", "cost", "min_price")
        .order_by("id")
    )
    ids = [p.pk for p in products]
    candidates: dict[int, list[rules.Candidate]] = defaultdict(list)
    matches = Match.objects.filter(product_id__in=ids, status=Match.Status.MATCHED).select_related("listing")
    for match in matches.order_by("listing_id"):
        candidates[match.product_id].append(selectors.candidate_from_match(match))
    baselines = _baselines(ids, now)
    last_changes = _last_changes(ids)

    # Most SKUs share their category and brand layers and have none of their own: resolve each
    # combination once (a global edit over 50,000 SKUs resolves a few hundred policies, not 100,000).
    resolved: dict[tuple[str, str, str, bool], rules.Policy] = {}

    def policy_of(layers: dict[tuple[str, str], PricingPolicy], product: Product, edited: bool) -> rules.Policy:
        own = product.sku if (PricingPolicy.Scope.SKU, product.sku) in layers else ""
        key = (product.category, product.brand, own, edited)
        if key not in resolved:
            resolved[key] = selectors.resolve_policy(layers, product)
        return resolved[key]

    preview = PolicyPreview(skus=len(products))
    bands = [0] * len(BANDS)
    moves: list[PreviewMove] = []
    for product in products:
        numbers = selectors.product_numbers(product)
        inputs = {
            "product": numbers,
            "candidates": candidates.get(product.pk, []),
            "now": now,
            "day_baseline": baselines.get(product.pk),
            "correction_cap": selectors.correction_cap_after(last_changes.get(product.pk), product),
        }
        before = rules.decide_price(policy=policy_of(current, product, False), **inputs)  # type: ignore[arg-type]
        after = rules.decide_price(policy=policy_of(proposed, product, True), **inputs)  # type: ignore[arg-type]
        if after.price != before.price:
            preview.differs_from_now += 1
        if not after.changed:
            preview.unchanged += 1
            continue
        move = PreviewMove(
            sku=product.sku, title=product.title, old_price=product.price, new_price=after.price,
            now_price=before.price, floor=after.floor, held_at_floor="floor" in after.limits_hit,
        )
        moves.append(move)
        preview.won_moved += after.price - product.price
        if after.price > product.price:
            preview.moved_up += 1
        else:
            preview.moved_down += 1
        if move.held_at_floor:
            preview.held_at_floor += 1
        exact = (Decimal(after.price) - product.price) * 100 / product.price  # never 0: the price moved
        for i, (_, low, high) in enumerate(BANDS):
            if low <= exact < high:
                bands[i] += 1
                break
    preview.histogram = [(label, count) for (label, _, _), count in zip(BANDS, bands)]
    preview.largest = sorted(moves, key=lambda m: abs(m.new_price - m.old_price), reverse=True)[:EXAMPLES]
    preview.seconds = time.perf_counter() - started
    return preview
