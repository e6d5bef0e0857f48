"""The SKU page's table of competitor listings: each as the rules see it now, the one they follow marked."""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import OuterRef
from django.db.models.functions import JSONObject
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone

from matcher.models import Listing, ListingImage, Match, Product
from pricing import rules, selectors
from review.evidence import image_views
from review.services import overturn_action


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


def listings_of(product: Product) -> list[Listing]:
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
    return listing_rows_of(listings_of(product), selectors.policy_for_product(product), now or timezone.now())
