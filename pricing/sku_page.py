"""The SKU page's read: our price, the floor and why, the policy in force layer by layer, every competitor
listing of the SKU with its decision and whether it counts for pricing now, and the price history on a
time axis with its causes in Korean.

``sku_page`` runs 7 queries whatever the number of listings, changes, observations and proposals:
product, policy layers, listings (with their match and first photo), changes, observations, proposals,
audit entries. ``listing_rows`` (the table alone, after an overturn) runs 3: product, policy, listings.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import F, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce, JSONObject
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


def pair_url(match_id: int) -> str:
    """The pair's page in the review app."""
    return f"{_queue_url()}?match={match_id}"


@functools.cache
def _queue_url() -> str:
    return reverse("review:queue")  # once per process: a page may link hundreds of pairs

STATUS_LABELS = {
    "auto": "자동 매칭",
    "matched": "확정 (검토자)",
    "review": "검토 대기",
    "rejected": "제외",
    "none": "판정 전",
}


def ago(then: datetime, now: datetime) -> str:
    """"방금", "5분 전", "3시간 전", "2일 전": how long since a listing was seen, in Korean."""
    seconds = max(int((now - then).total_seconds()), 0)
    if seconds < 60:
        return "방금"
    if seconds < 3600:
        return f"{seconds // 60}분 전"
    if seconds < 86400:
        return f"{seconds // 3600}시간 전"
    return f"{seconds // 86400}일 전"


def _status(match: Match | None) -> str:
    if match is None:
        return "none"
    if match.status == Match.Status.MATCHED:
        return "matched" if match.decided_by_human else "auto"
    if match.status == Match.Status.PENDING:
        return "review"
    return "rejected"


@dataclass
class ListingRow:
    """One listing as the table shows it; everything computed once (a SKU may have hundreds)."""

    listing: Listing
    match: Match | None
    thumb_url: str
    total: int  # as the policy counts it (with or without shipping)
    counts: bool
    why_not: str  # Korean, when it does not count
    seen_ago: str
    seen_at: str
    followed: bool = False
    status: str = field(init=False)  # auto | matched | review | rejected | none
    status_label: str = field(init=False)
    overturn: str | None = field(init=False)  # "reject" / "approve" when a reviewer may overturn it here
    overturn_url: str = field(init=False)
    pair_url: str = field(init=False)
    confidence: str = field(init=False)

    def __post_init__(self) -> None:
        m = self.match
        self.status = _status(m)
        self.status_label = STATUS_LABELS[self.status]
        if self.status == "rejected" and m is not None and not m.decided_by_human:
            self.status_label += " (자동)"
        self.overturn = overturn_action(m) if m is not None else None
        self.overturn_url = reverse("pricing:listing_overturn", args=[m.pk]) if self.overturn and m else ""
        self.pair_url = pair_url(m.pk) if m is not None else ""
        self.confidence = f"{m.confidence:.2f}" if m is not None else ""


def _listings(product: Product) -> list[Listing]:
    first_photo = ArraySubquery(
        ListingImage.objects.filter(listing_id=OuterRef("pk"), image__isnull=False)
        .order_by("position", "id")
        .values(json=JSONObject(sha="image__sha256", file="image__file", w="image__width", h="image__height"))[:1]
    )
    return list(
        Listing.objects.filter(product=product)
        .select_related("match")
        # The evidence and reasons are the pair page's; here they would only be decoded and dropped.
        .defer("match__evidence", "match__reasons")
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
                seen_ago=ago(listing.last_seen, now),
                seen_at=timezone.localtime(listing.last_seen).strftime("%Y-%m-%d %H:%M"),
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


class CauseViews(dict[str, "CauseView | None"]):
    """cause_view per distinct text, for one page (a history repeats a handful of causes)."""

    def __missing__(self, text: str) -> CauseView | None:
        view = self[text] = cause_view(text)
        return view


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
        url = pair_url(cause.ref)
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
    cause_text: str  # as stored
    cause: CauseView | None
    run_id: int | None = None
    proposal_id: int | None = None


@dataclass
class ProposalRow:
    proposal: PriceProposal
    cause: CauseView | None


@dataclass
class AuditRow:
    entry: PriceAuditEntry
    cause: CauseView | None


HISTORY_ROWS_SHOWN = 100  # the table; the chart draws every point and the CSV has every row


def telling(points: list[selectors.HistoryPoint]) -> list[selectors.HistoryPoint]:
    """The points that say something: every change, and each observation whose cheapest competitor
    (price or mall) or our price differs from the point before (a re-evaluation that found the same
    is left to the chart and the CSV)."""
    kept: list[selectors.HistoryPoint] = []
    seen: tuple[object, ...] | None = None
    for p in points:
        state = (p.competitor, p.mall, p.our_price)
        if p.is_change or state != seen:
            kept.append(p)
        if not p.is_change:
            seen = state
        else:
            seen = (p.competitor, seen[1] if seen else "", p.our_price)
    return kept


def history_rows(points: list[selectors.HistoryPoint], causes: CauseViews) -> list[HistoryRow]:
    """The newest HISTORY_ROWS_SHOWN telling points, newest first; a change's cause (``cause`` annotated on
    the change, see sku_page) is its proposal's, or its audit row's for a change without one (an import)."""
    rows: list[HistoryRow] = []
    for p in list(reversed(telling(points)))[:HISTORY_ROWS_SHOWN]:
        cause_text = ""
        run_id = proposal_id = None
        if p.change is not None:
            change = p.change
            run_id, proposal_id = change.run_id, change.proposal_id
            cause_text = getattr(change, "cause", "") or ""
        elif p.observation is not None:
            cause_text = p.observation.cause
        rows.append(HistoryRow(point=p, kind_label=KIND_LABELS.get(p.kind, p.kind), cause_text=cause_text,
                               cause=causes[cause_text], run_id=run_id, proposal_id=proposal_id))
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
    listings = listing_rows_of(_listings(product), policy, now)
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
