"""Reads of the pricing app: each with a fixed number of queries, whatever the data."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.paginator import Page, Paginator
from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from matcher.models import Match, Product
from pricing import rules
from pricing.models import (
    CompetitorPriceObservation,
    PriceAuditEntry,
    PriceChange,
    PriceProposal,
    PricingPolicy,
    PricingRun,
)

# Most specific last: each layer overrides the fields it sets.
LAYER_ORDER = [
    PricingPolicy.Scope.GLOBAL,
    PricingPolicy.Scope.CATEGORY,
    PricingPolicy.Scope.BRAND,
    PricingPolicy.Scope.SKU,
]
LAYER_LABEL = {
    PricingPolicy.Scope.GLOBAL: "전체",
    PricingPolicy.Scope.CATEGORY: "카테고리",
    PricingPolicy.Scope.BRAND: "브랜드",
    PricingPolicy.Scope.SKU: "SKU",
}


def policy_for_product(product: Product) -> rules.Policy:
    """The policy for one SKU, field by field: SKU over brand over category over global over defaults. 1 query."""
    wanted = Q(scope=PricingPolicy.Scope.GLOBAL, key="") | Q(scope=PricingPolicy.Scope.SKU, key=product.sku)
    if product.category:
        wanted |= Q(scope=PricingPolicy.Scope.CATEGORY, key=product.category)
    if product.brand:
        wanted |= Q(scope=PricingPolicy.Scope.BRAND, key=product.brand)
    layers = {(p.scope, p.key): p for p in PricingPolicy.objects.filter(wanted, active=True)}
    return resolve_policy(layers, product)


def resolve_policy(layers: dict[tuple[str, str], PricingPolicy], product: Product) -> rules.Policy:
    """The policy for one SKU from active layers keyed by (scope, key); no query (the preview resolves
    thousands of SKUs from one read of the layers)."""
    keys = {
        PricingPolicy.Scope.GLOBAL: "",
        PricingPolicy.Scope.CATEGORY: product.category,
        PricingPolicy.Scope.BRAND: product.brand,
        PricingPolicy.Scope.SKU: product.sku,
    }
    values: dict[str, object] = dict(rules.DEFAULTS)
    sources = {name: rules.DEFAULT_SOURCE for name in rules.POLICY_FIELDS}
    for scope in LAYER_ORDER:
        key = keys[scope]
        layer = layers.get((scope, key)) if (key or scope == PricingPolicy.Scope.GLOBAL) else None
        if layer is None or not layer.active:
            continue
        label = LAYER_LABEL[scope] + (f" {layer.key}" if layer.key else "")
        for name in rules.POLICY_FIELDS:
            value = getattr(layer, name)
            if value is not None:
                values[name] = value
                sources[name] = label
    return dataclasses.replace(rules.Policy(**values), sources=sources)  # type: ignore[arg-type]


def product_numbers(product: Product) -> rules.ProductNumbers:
    return rules.ProductNumbers(price=product.price, cost=product.cost, min_price=product.min_price)


def confirmed_candidates(product_id: int) -> list[rules.Candidate]:
    """The product's confirmed matches with their listings. 1 query. Pending and rejected never load."""
    matches = (
        Match.objects.filter(product_id=product_id, status=Match.Status.MATCHED)
        .select_related("listing")
        .order_by("listing_id")
    )
    return [candidate_from_match(m) for m in matches]


def candidate_from_match(match: Match) -> rules.Candidate:
    listing = match.listing
    return rules.Candidate(
        listing_id=listing.pk,
        match_id=match.pk,
        status=match.status,
        price=listing.price,
        shipping_fee=listing.shipping_fee,
        last_seen=listing.last_seen,
        mall=listing.mall,
        title=listing.title,
    )


def day_baseline(product_id: int, now: datetime) -> int | None:
    """Our price 24 hours ago: the old price of the first change since then, or None. 1 query."""
    first = (
        PriceChange.objects.filter(product_id=product_id, created_at__gt=now - timedelta(hours=24))
        .order_by("created_at", "id")
        .values_list("old_price", flat=True)
        .first()
    )
    return first


def correction_cap(product: Product) -> int | None:
    """The price before our last cut, if that cut followed a match that is no longer confirmed. 1 query.

    Only when the cut is still in force (our price is what it set) and the followed match was
    rejected, sent back to review or deleted — a human or the matcher said it was not our product.
    """
    last = (
        PriceChange.objects.filter(product_id=product.pk)
        .select_related("proposal__followed_match")
        .order_by("-created_at", "-id")
        .first()
    )
    return correction_cap_after(last, product)


def correction_cap_after(last: PriceChange | None, product: Product) -> int | None:
    """`correction_cap` given the product's last change (with proposal__followed_match loaded); no query."""
    if last is None or last.kind != PriceChange.Kind.APPLY or last.proposal is None:
        return None
    if product.price != last.new_price or last.new_price >= last.old_price:
        return None
    proposal = last.proposal
    if proposal.followed_price is None:
        return None
    match = proposal.followed_match
    if match is not None and match.status == Match.Status.MATCHED:
        return None
    return last.old_price


# --- Pages ----------------------------------------------------------------------------------------


def pending_proposals(page_number: int | str | None, per_page: int = 50) -> Page:
    """Proposals waiting for an admin, oldest first. 2 queries (count + page)."""
    qs = (
        PriceProposal.objects.filter(status=PriceProposal.Status.PENDING)
        .select_related("product")
        .order_by("created_at", "id")
    )
    return Paginator(qs, per_page).get_page(page_number)


def proposals_by_ids(ids: list[int]) -> QuerySet[PriceProposal]:
    return PriceProposal.objects.filter(pk__in=ids).select_related("product").order_by("created_at", "id")


def proposal_row(proposal_id: int) -> PriceProposal:
    return get_object_or_404(PriceProposal.objects.select_related("product", "decided_by"), pk=proposal_id)


def recent_changes(limit: int = 50) -> list[PriceChange]:
    """The latest applied changes and rollbacks with what a row shows. 1 query."""
    return list(
        PriceChange.objects.select_related("product", "user", "reverted_by", "proposal").order_by("-created_at", "-id")[
            :limit
        ]
    )


def change_row(change_id: int) -> PriceChange:
    return get_object_or_404(
        PriceChange.objects.select_related("product", "user", "reverted_by", "proposal"), pk=change_id
    )


def recent_runs(limit: int = 10) -> list[PricingRun]:
    return list(PricingRun.objects.select_related("requested_by", "rolled_back_by").order_by("-created_at")[:limit])


@dataclass
class HistoryPoint:
    at: datetime
    our_price: int
    competitor: int | None
    is_change: bool
    kind: str  # "observation" | "apply" | "rollback"
    old_price: int | None = None
    reason: str = ""
    who: str = ""
    mall: str = ""
    # The row behind the point, for pages that show more of it (its cause, run, proposal).
    change: PriceChange | None = None
    observation: CompetitorPriceObservation | None = None


@dataclass
class SkuHistory:
    product: Product
    points: list[HistoryPoint]
    proposals: list[PriceProposal]
    audit: list[PriceAuditEntry]


HISTORY_LIMIT = 500


def sku_history(sku: str) -> SkuHistory:
    """Our price against the cheapest confirmed competitor over time, changes marked. 5 queries."""
    product = get_object_or_404(Product, sku=sku)
    changes = list(
        PriceChange.objects.filter(product=product).select_related("user").order_by("-created_at", "-id")[:HISTORY_LIMIT]
    )
    observations = list(
        CompetitorPriceObservation.objects.filter(product=product).order_by("-observed_at", "-id")[:HISTORY_LIMIT]
    )
    proposals = list(
        PriceProposal.objects.filter(product=product).select_related("decided_by").order_by("-created_at", "-id")[:50]
    )
    audit = list(
        PriceAuditEntry.objects.filter(product=product).select_related("user").order_by("-created_at", "-id")[:50]
    )
    return SkuHistory(product=product, points=history_points(product, changes, observations), proposals=proposals,
                      audit=audit)


def history_points(
    product: Product, changes: list[PriceChange], observations: list[CompetitorPriceObservation]
) -> list[HistoryPoint]:
    """One timeline: each observation and each change, carrying the other series' last known value."""
    events: list[tuple[datetime, int, CompetitorPriceObservation | PriceChange]] = []
    events += [(o.observed_at, 0, o) for o in observations]
    # A change made by an evaluation sorts after that evaluation's observation at the same instant.
    events += [(c.created_at, 1, c) for c in changes]
    events.sort(key=lambda e: (e[0], e[1], e[2].pk))
    points: list[HistoryPoint] = []
    competitor: int | None = None
    ours: int | None = None
    for at, _, item in events:
        if isinstance(item, CompetitorPriceObservation):
            competitor = item.cheapest_total
            ours = item.our_price
            points.append(
                HistoryPoint(at=at, our_price=ours, competitor=competitor, is_change=False, kind="observation",
                             mall=item.cheapest_mall, observation=item)
            )
        else:
            assert isinstance(item, PriceChange)
            ours = item.new_price
            who = item.user.get_username() if item.user else ("자동" if item.automatic else "")
            points.append(
                HistoryPoint(at=at, our_price=ours, competitor=competitor, is_change=True, kind=item.kind,
                             old_price=item.old_price, reason=item.reason, who=who, change=item)
            )
    return points


def changed_prices_since(since: datetime) -> list[dict[str, object]]:
    """One row per SKU whose price changed since ``since``: the price before the first of those changes and
    after the last, with the changes' ids. Every move of our price is a PriceChange (rules, rollbacks and
    catalogue imports alike), so the last change's price is the price now. 1 query."""
    changes = (
        PriceChange.objects.filter(created_at__gte=since)
        .select_related("product")
        .order_by("product_id", "created_at", "id")
    )
    rows: dict[int, dict[str, object]] = {}
    change_ids: dict[int, list[int]] = {}  # the rows' "change_ids" lists, typed
    for change in changes:
        row = rows.get(change.product_id)
        if row is None:
            row = rows[change.product_id] = {
                "sku": change.product.sku,
                "product_number": change.product.product_number,
                "previous_price": change.old_price,
                "price": change.new_price,
                "changed_at": change.created_at.isoformat(),
                "change_ids": change_ids.setdefault(change.product_id, []),
            }
        row["price"] = change.new_price
        row["changed_at"] = change.created_at.isoformat()
        change_ids[change.product_id].append(change.pk)
    return sorted(rows.values(), key=lambda r: str(r["sku"]))
