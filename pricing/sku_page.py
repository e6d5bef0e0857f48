"""The SKU page's read: our price, the floor and why, the policy in force layer by layer, every competitor
listing of the SKU with its decision and whether it counts for pricing now, and the price history on a
time axis with its causes in Korean.

``sku_page`` runs 7 queries whatever the number of listings, changes, observations and proposals:
product, policy layers, listings (with their match and first photo), changes, observations, proposals,
audit entries. ``listing_rows`` (the table alone, after an overturn) runs 3: product, policy, listings.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import OuterRef
from django.db.models.functions import JSONObject
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone

from matcher.causes import Cause, CauseKind
from matcher.models import Listing, ListingImage, Match, Product
from pricing import rules, selectors
from pricing.models import (
    CompetitorPriceObservation,
    PriceAuditEntry,
    PriceChange,
    PriceProposal,
)
from review.evidence import image_views
from review.services import overturn_action

AUDIT_SHOWN = 50
PROPOSALS_SHOWN = 50

# --- the header ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FloorView:
    amount: int
    basis: str  # "min_price" | "cost_margin" | "none"
    by_cost: int
    min_price: int | None
    margin: Decimal

    @property
    def reason(self) -> str:
        """Why the floor is what it is, in Korean."""
        margin = rules.pct(self.margin)
        if self.basis == "none":
            return "원가와 최저가가 없어 하한가를 정할 수 없습니다 (자동 적용하지 않습니다)"
        if self.basis == "min_price":
            other = f"; 원가 기준 {rules.won(self.by_cost)}보다 높음" if self.by_cost else ""
            return f"설정한 최저가 {rules.won(self.amount)}{other}"
        other = f"; 설정한 최저가 {rules.won(self.min_price)}보다 높음" if self.min_price else ""
        return f"원가 × (1 + 최소 마진 {margin}) = {rules.won(self.by_cost)}{other}"


def floor_view(product: Product, policy: rules.Policy) -> FloorView:
    numbers = selectors.product_numbers(product)
    amount = rules.floor_price(numbers, policy)
    by_cost = rules.floor_by_cost(numbers, policy)
    if not amount:
        basis = "none"
    elif product.min_price and product.min_price >= by_cost:
        basis = "min_price"
    else:
        basis = "cost_margin"
    return FloorView(amount=amount, basis=basis, by_cost=by_cost, min_price=product.min_price,
                     margin=policy.min_margin_percent)


@dataclass(frozen=True)
class PolicyLine:
    name: str
    label: str
    value: str
    source: str

    @property
    def inherited(self) -> bool:
        return self.source == rules.DEFAULT_SOURCE


_MONEY_FIELDS = {"undercut_amount", "rounding", "raise_ceiling_price"}
_MODES = {"amount": "금액", "percent": "비율"}


def _policy_value(name: str, value: object) -> str:
    if value is None:
        return "없음"
    if isinstance(value, bool):
        return "예" if value else "아니오"
    if isinstance(value, Decimal):
        return rules.pct(value)
    if name in _MONEY_FIELDS and isinstance(value, int):
        return rules.won(value)
    if name == "stale_after_hours":
        return f"{value}시간"
    if name == "undercut_mode":
        return _MODES.get(str(value), str(value))
    return str(value)


def policy_lines(policy: rules.Policy) -> list[PolicyLine]:
    return [
        PolicyLine(
            name=name,
            label=rules.FIELD_LABELS[name],
            value=_policy_value(name, getattr(policy, name)),
            source=policy.sources.get(name, rules.DEFAULT_SOURCE),
        )
        for name in rules.POLICY_FIELDS
    ]


# --- the competitor listings -------------------------------------------------------------------------

STATUS_LABELS = {
    "auto": "자동 매칭",
    "matched": "확정 (검토자)",
    "review": "검토 대기",
    "rejected": "제외",
    "none": "판정 전",
}


@dataclass
class ListingRow:
    listing: Listing
    match: Match | None
    thumb_url: str
    total: int  # as the policy counts it (with or without shipping)
    counts: bool
    why_not: str  # Korean, when it does not count
    followed: bool = False

    @property
    def status(self) -> str:
        m = self.match
        if m is None:
            return "none"
        if m.status == Match.Status.MATCHED:
            return "matched" if m.decided_by_human else "auto"
        if m.status == Match.Status.PENDING:
            return "review"
        return "rejected"

    @property
    def status_label(self) -> str:
        label = STATUS_LABELS[self.status]
        if self.status == "rejected" and self.match is not None and not self.match.decided_by_human:
            label += " (자동)"
        return label

    @property
    def overturn(self) -> str | None:
        """"reject" or "approve" when a reviewer may overturn this pair from the SKU page."""
        return overturn_action(self.match) if self.match is not None else None

    @property
    def pair_url(self) -> str:
        return f"{reverse('review:queue')}?match={self.match.pk}" if self.match is not None else ""


def _listings(product: Product) -> list[Listing]:
    first_photo = ArraySubquery(
        ListingImage.objects.filter(listing_id=OuterRef("pk"), image__isnull=False)
        .order_by("position", "id")
        .values(json=JSONObject(sha="image__sha256", file="image__file", w="image__width", h="image__height"))[:1]
    )
    return list(
        Listing.objects.filter(product=product)
        .select_related("match")
        .annotate(first_photo=first_photo)
        .order_by("id")
    )


def _why_not(match: Match | None, candidate: rules.Candidate, policy: rules.Policy, now: datetime) -> str:
    if match is None:
        return "판정 전"
    if match.status == Match.Status.PENDING:
        return "검토 대기"
    if match.status == Match.Status.REJECTED:
        return "제외됨"
    if candidate.price <= 0:
        return "0원 (가격 오류)"
    if not rules.counts(candidate, policy, now):
        return f"{policy.stale_after_hours}시간 넘게 확인되지 않음"
    return ""


def listing_rows_of(listings: list[Listing], policy: rules.Policy, now: datetime) -> list[ListingRow]:
    """Each listing as the rules see it now; the one they follow marked. The cheapest first."""
    rows: list[ListingRow] = []
    counted: list[rules.Candidate] = []
    for listing in listings:
        match = getattr(listing, "match", None)
        candidate = rules.Candidate(
            listing_id=listing.pk,
            match_id=match.pk if match else None,
            status=match.status if match else "",
            price=listing.price,
            shipping_fee=listing.shipping_fee,
            last_seen=listing.last_seen,
            mall=listing.mall,
            title=listing.title,
        )
        counts = rules.counts(candidate, policy, now)
        if counts:
            counted.append(candidate)
        photos = image_views(getattr(listing, "first_photo", None), None)
        rows.append(
            ListingRow(
                listing=listing,
                match=match,
                thumb_url=photos[0].url if photos else "",
                total=candidate.total(policy.include_shipping),
                counts=counts,
                why_not="" if counts else _why_not(match, candidate, policy, now),
            )
        )
    best = rules.cheapest(counted, policy)
    for row in rows:
        row.followed = best is not None and row.listing.pk == best.listing_id
    rows.sort(key=lambda r: (r.total, r.listing.pk))
    return rows


def listing_rows(product_id: int, now: datetime | None = None) -> list[ListingRow]:
    """The table alone (after an overturn). 3 queries."""
    product = get_object_or_404(Product, pk=product_id)
    return listing_rows_of(_listings(product), selectors.policy_for_product(product), now or timezone.now())


# --- causes and history ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CauseView:
    label: str
    url: str = ""


_REVIEW = {CauseKind.REVIEW_APPROVE, CauseKind.REVIEW_REJECT, CauseKind.REVIEW_UNDO}


def cause_view(text: str) -> CauseView | None:
    """A stored cause in Korean with a link to what it names; a string our code did not write is shown
    as it is (matcher.causes reads only its own strings)."""
    if not text:
        return None
    cause = Cause.read(text)
    if cause is None:
        return CauseView(label=text)
    url = ""
    if cause.kind in _REVIEW and cause.ref is not None:
        url = f"{reverse('review:queue')}?match={cause.ref}"
    elif cause.kind in (CauseKind.REVIEW_BULK_APPROVE, CauseKind.REVIEW_BULK_REJECT):
        url = reverse("review:stats")
    elif cause.kind == CauseKind.MATCH_RUN:
        url = reverse("matcher:runs")
    elif cause.kind == CauseKind.CATALOGUE_IMPORT and cause.ref is not None:
        url = reverse("admin:matcher_importreport_change", args=[cause.ref])
    elif cause.kind == CauseKind.PRODUCT_ADMIN and cause.ref is not None:
        url = reverse("admin:matcher_product_change", args=[cause.ref])
    elif cause.kind == CauseKind.POLICY_CHANGE and cause.ref is not None:
        url = reverse("admin:pricing_policyauditentry_change", args=[cause.ref])
    return CauseView(label=cause.label, url=url)


def run_url(run_id: int | None) -> str:
    return f"{reverse('pricing:index')}#run-{run_id}" if run_id else ""


KIND_LABELS = {
    "observation": "경쟁가 관측",
    PriceChange.Kind.APPLY: "가격 적용",
    PriceChange.Kind.ROLLBACK: "되돌림",
    PriceChange.Kind.IMPORT: "카탈로그 가져오기",
}


@dataclass
class HistoryRow:
    point: selectors.HistoryPoint
    kind_label: str
    cause: str  # as stored; the page shows it through the ``cause`` filter
    run_id: int | None = None
    proposal_id: int | None = None


def history_rows(points: list[selectors.HistoryPoint], audit_by_change: dict[int, PriceAuditEntry]) -> list[HistoryRow]:
    """Newest first; a change's cause is its proposal's, or its audit row's for changes without one
    (a catalogue import)."""
    rows: list[HistoryRow] = []
    for p in reversed(points):
        cause_text = ""
        run_id = proposal_id = None
        if p.change is not None:
            change = p.change
            run_id, proposal_id = change.run_id, change.proposal_id
            if change.proposal is not None:
                cause_text = change.proposal.cause
            elif change.pk in audit_by_change:
                cause_text = audit_by_change[change.pk].cause
        elif p.observation is not None:
            cause_text = p.observation.cause
        rows.append(HistoryRow(point=p, kind_label=KIND_LABELS.get(p.kind, p.kind), cause=cause_text,
                               run_id=run_id, proposal_id=proposal_id))
    return rows


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def chart_data(
    product: Product,
    points: list[selectors.HistoryPoint],
    proposals: list[PriceProposal],
    floor: int,
    now: datetime,
) -> dict[str, Any]:
    """Series on a true time axis (x: epoch milliseconds), oldest first, each held until its next point
    and carried to ``now``: our price, the cheapest confirmed competitor, the floor (as each proposal
    recorded it, then today's); the changes and the proposals as markers."""
    ours = [{"x": _ms(p.at), "y": p.our_price} for p in points]
    competitor = [{"x": _ms(p.at), "y": p.competitor} for p in points if p.kind == "observation"]
    changes = [
        {"x": _ms(p.at), "y": p.our_price, "kind": KIND_LABELS.get(p.kind, p.kind), "old": p.old_price}
        for p in points if p.is_change
    ]
    oldest_first = sorted(proposals, key=lambda pr: (pr.created_at, pr.pk))
    floors = [{"x": _ms(pr.created_at), "y": pr.floor} for pr in oldest_first if pr.floor]
    marks = [
        {"x": _ms(pr.created_at), "y": pr.new_price, "status": pr.status, "label": pr.get_status_display(),
         "id": pr.pk}
        for pr in oldest_first
    ]
    end = _ms(now)
    ours.append({"x": end, "y": product.price})
    if competitor:
        competitor.append({"x": end, "y": competitor[-1]["y"]})
    if floor:
        if not floors:
            start = min([pt["x"] for pt in ours] + [end])
            floors.append({"x": start, "y": floor})
        floors.append({"x": end, "y": floor})
    return {"ours": ours, "competitor": competitor, "floor": floors, "changes": changes, "proposals": marks}


# --- the page --------------------------------------------------------------------------------------


@dataclass
class SkuPage:
    product: Product
    policy: rules.Policy
    floor: FloorView
    policy_lines: list[PolicyLine]
    listings: list[ListingRow]
    history: list[HistoryRow]
    proposals: list[PriceProposal]
    audit: list[PriceAuditEntry]
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
    def pending_proposals(self) -> list[PriceProposal]:
        return [p for p in self.proposals if p.status == PriceProposal.Status.PENDING]


def sku_page(sku: str, now: datetime | None = None) -> SkuPage:
    """Everything the SKU page shows. 7 queries (see the module docstring); a 404 for an unknown SKU."""
    now = now or timezone.now()
    product = get_object_or_404(Product, sku=sku)
    policy = selectors.policy_for_product(product)
    listings = listing_rows_of(_listings(product), policy, now)
    limit = selectors.HISTORY_LIMIT
    changes = list(
        PriceChange.objects.filter(product=product)
        .select_related("user", "proposal")
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
        PriceAuditEntry.objects.filter(product=product).select_related("user").order_by("-created_at", "-id")[:limit]
    )
    points = selectors.history_points(product, changes, observations)
    floor = floor_view(product, policy)
    counts: dict[str, int] = {}
    for row in listings:
        counts[row.status] = counts.get(row.status, 0) + 1
    return SkuPage(
        product=product,
        policy=policy,
        floor=floor,
        policy_lines=policy_lines(policy),
        listings=listings,
        history=history_rows(points, {a.change_id: a for a in audit if a.change_id}),
        proposals=proposals,
        audit=audit[:AUDIT_SHOWN],
        chart=chart_data(product, points, proposals, floor.amount, now),
        now=now,
        counts=counts,
    )
