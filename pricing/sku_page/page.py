"""Everything the SKU page shows, read in a fixed number of queries (see the package docstring)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import F, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
from django.utils import timezone

from matcher.models import Product
from pricing import rules, selectors
from pricing.models import (
    CompetitorPriceObservation,
    PriceAuditEntry,
    PriceChange,
    PriceProposal,
)
from pricing.sku_page.header import FloorView, PolicyLine, floor_view, policy_lines
from pricing.sku_page.history import (
    HISTORY_ROWS_SHOWN,
    AuditRow,
    CauseViews,
    HistoryRow,
    ProposalRow,
    chart_data,
    history_rows,
)
from pricing.sku_page.listings import ListingRow, listing_rows_of, listings_of

AUDIT_SHOWN = 50
PROPOSALS_SHOWN = 50


@dataclass
class SkuPage:
    product: Product
    policy: rules.Policy
    floor: FloorView
    policy_lines: list[PolicyLine]
    listings: list[ListingRow]
    history: list[HistoryRow]
    history_total: int
    proposals: list[ProposalRow]
    audit: list[AuditRow]
    chart: dict[str, Any]
    now: datetime
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def followed(self) -> ListingRow | None:
        return next((r for r in self.listings if r.followed), None)

    @property
    def counted(self) -> int:
        return sum(1 for r in self.listings if r.counts)

    @property
    def gap(self) -> int | None:
        """Our price minus the cheapest counted competitor's total (negative: we are cheaper)."""
        followed = self.followed
        return self.product.price - followed.total if followed is not None else None

    @property
    def history_cut(self) -> bool:
        """The table stopped at HISTORY_ROWS_SHOWN rows."""
        return len(self.history) >= HISTORY_ROWS_SHOWN


def sku_page(sku: str, now: datetime | None = None) -> SkuPage:
    """Everything the SKU page shows. 7 queries (see the module docstring); a 404 for an unknown SKU."""
    now = now or timezone.now()
    product = get_object_or_404(Product, sku=sku)
    policy = selectors.policy_for_product(product)
    listings = listing_rows_of(listings_of(product), policy, now)
    limit = selectors.HISTORY_LIMIT
    audit_cause = PriceAuditEntry.objects.filter(change_id=OuterRef("pk")).order_by("id").values("cause")[:1]
    changes: list[PriceChange] = list(
        PriceChange.objects.filter(product=product)
        .select_related("user")
        .annotate(cause=Coalesce(F("proposal__cause"), Subquery(audit_cause), Value("")))
        .order_by("-created_at", "-id")[:limit]
    )
    observations = list(
        CompetitorPriceObservation.objects.filter(product=product).order_by("-observed_at", "-id")[:limit]
    )
    proposals = list(
        PriceProposal.objects.filter(product=product)
        .select_related("decided_by", "requested_by")
        .order_by("-created_at", "-id")[:PROPOSALS_SHOWN]
    )
    audit = list(
        PriceAuditEntry.objects.filter(product=product).select_related("user").order_by("-created_at", "-id")[
            :AUDIT_SHOWN
        ]
    )
    points = selectors.history_points(product, changes, observations)
    floor = floor_view(product, policy)
    causes = CauseViews()
    counts: dict[str, int] = {}
    for row in listings:
        counts[row.status] = counts.get(row.status, 0) + 1
    return SkuPage(
        product=product,
        policy=policy,
        floor=floor,
        policy_lines=policy_lines(policy),
        listings=listings,
        history=history_rows(points, causes),
        history_total=len(points),
        proposals=[ProposalRow(p, causes[p.cause]) for p in proposals],
        audit=[AuditRow(a, causes[a.cause]) for a in audit],
        chart=chart_data(product, points, proposals, floor.amount, now),
        now=now,
        counts=counts,
    )
