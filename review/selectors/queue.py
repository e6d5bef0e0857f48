"""Reads of the review queue: the pairs a reviewer may claim, the list page and the toolbar counts.

Each runs a fixed number of queries whatever the queue size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypedDict

from django.contrib.postgres.expressions import ArraySubquery
from django.core.files.storage import default_storage
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import JSONObject
from django.utils import timezone

from matcher.models import Listing, ListingImage, Match, ProductImage
from review.models import Claim, ReviewDecision
from review.queue import IN_QUEUE, Cursor, Direction, QueueFilters, queue_order

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations  # a check-time dependency only

SKIP_MEMORY = timedelta(hours=12)  # a skipped pair stays out of that reviewer's "next" for a working day


class OpenClaim(TypedDict):
    """What queue_candidates annotates: a claim still open on the pair (an expired one, or another's)."""

    open_claim_id: int | None
    open_claim_user_id: int | None


class HeldClaim(TypedDict):
    """What my_open_claim annotates: the reviewer's lease and whether the pair still fits the filters."""

    claim_id: int
    claim_expires_at: datetime
    fits: bool


def _images(model: type[ProductImage | ListingImage], owner: str, outer: str) -> ArraySubquery:
    """All fetched images of one side as a JSON array, so a pair loads in one query."""
    return ArraySubquery(
        model.objects.filter(**{owner: OuterRef(outer)}, image__isnull=False)
        .order_by("position", "id")
        .values(
            json=JSONObject(
                sha="image__sha256",
                file="image__file",
                w="image__width",
                h="image__height",
                ocr="image__ocr_text",
            )
        )
    )


def _cheapest_other_total() -> Subquery:
    """Cheapest confirmed competitor total (price + shipping) for the pair's SKU, other than this listing."""
    return Subquery(
        Listing.objects.filter(product_id=OuterRef("product_id"), match__status=Match.Status.MATCHED)
        .exclude(id=OuterRef("listing_id"))
        .annotate(total=F("price") + F("shipping_fee"))
        .order_by("total")
        .values("total")[:1],
        output_field=IntegerField(),
    )


_pair_base: QuerySet[Match] | None = None


def pair_queryset() -> QuerySet[Match]:
    """Matches with everything the pair page shows: SKU, listing, thresholds, both sides' images.

    Built once per process and cloned: resolving the three subqueries costs more CPU than the query itself.
    """
    global _pair_base
    if _pair_base is None:
        _pair_base = Match.objects.select_related("product", "listing", "thresholds").annotate(
            our_images=_images(ProductImage, "product_id", "product_id"),
            their_images=_images(ListingImage, "listing_id", "listing_id"),
            cheapest_other_total=_cheapest_other_total(),
        )
    return _pair_base.all()


def active_claims_by_others(user, now=None) -> Exists:
    now = now or timezone.now()
    return Exists(
        Claim.objects.filter(match=OuterRef("pk"), released_at__isnull=True, expires_at__gt=now).exclude(
            user=user
        )
    )


def queue_candidates(
    *,
    user,
    filters: QueueFilters,
    cursor: Cursor | None = None,
    direction: Direction = "next",
    exclude_skipped: bool = True,
) -> QuerySet[WithAnnotations[Match, OpenClaim]]:
    """Pairs this reviewer may claim, in queue order: in the queue, matching the filters, not held by another
    reviewer, and (for the plain "next pair") not skipped by this reviewer recently."""
    now = timezone.now()
    qs = pair_queryset().filter(IN_QUEUE, filters.q_object()).exclude(active_claims_by_others(user, now))
    if exclude_skipped:
        qs = qs.exclude(
            Exists(
                ReviewDecision.objects.filter(
                    match=OuterRef("pk"),
                    user=user,
                    action=ReviewDecision.Action.SKIP,
                    created_at__gt=now - SKIP_MEMORY,
                )
            )
        )
    if cursor is not None:
        qs = qs.filter(cursor.after(direction))
    # The id of a claim left open on the pair (expired, or else it would have been excluded) to release it.
    open_claim = Claim.objects.filter(match=OuterRef("pk"), released_at__isnull=True)
    qs = qs.annotate(
        open_claim_id=Subquery(open_claim.values("id")[:1]),
        open_claim_user_id=Subquery(open_claim.values("user_id")[:1]),
    )
    return qs.order_by(*queue_order(direction))


def my_open_claim(*, user, filters: QueueFilters) -> WithAnnotations[Match, HeldClaim] | None:
    """The pair this reviewer holds, with claim_id, claim_expires_at and fits (still in queue and filters)."""
    return (
        pair_queryset()
        .filter(review_claims__user=user, review_claims__released_at__isnull=True)
        .annotate(
            claim_id=F("review_claims__id"),
            claim_expires_at=F("review_claims__expires_at"),
            fits=ExpressionWrapper(IN_QUEUE & filters.q_object(), output_field=BooleanField()),
        )
        .first()
    )


def pair_for_display(*, match_id: int) -> Match | None:
    return pair_queryset().filter(pk=match_id).first()


@dataclass
class ListPage:
    rows: Sequence[Match]
    next_cursor: Cursor | None
    first: bool


def queue_list(*, user, filters: QueueFilters, cursor: Cursor | None, size: int = 50) -> ListPage:
    """One page of the list view in queue order (keyset pagination: no OFFSET, no COUNT)."""
    now = timezone.now()
    qs = (
        Match.objects.select_related("product", "listing")
        .filter(IN_QUEUE, filters.q_object())
        .annotate(
            held_by_other=active_claims_by_others(user, now),
            our_thumb=Subquery(
                ProductImage.objects.filter(product_id=OuterRef("product_id"), image__isnull=False)
                .order_by("position", "id")
                .values("image__file")[:1]
            ),
            their_thumb=Subquery(
                ListingImage.objects.filter(listing_id=OuterRef("listing_id"), image__isnull=False)
                .order_by("position", "id")
                .values("image__file")[:1]
            ),
            cheapest_other_total=_cheapest_other_total(),
        )
        .order_by(*queue_order("next"))
    )
    if cursor is not None:
        qs = qs.filter(cursor.after("next"))
    rows = list(qs[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    for row in rows:
        # For templates/review/list.html: URLs, not annotations, so the stubs cannot know them.
        row.our_thumb_url = default_storage.url(row.our_thumb) if row.our_thumb else ""  # type: ignore[attr-defined]
        row.their_thumb_url = default_storage.url(row.their_thumb) if row.their_thumb else ""  # type: ignore[attr-defined]
    return ListPage(
        rows=rows, next_cursor=Cursor.of(rows[-1]) if more and rows else None, first=cursor is None
    )


@dataclass
class QueueSummary:
    total: int
    audit: int
    held_by_others: int
    mine_today: int


def queue_summary(*, user, filters: QueueFilters) -> QueueSummary:
    """Counts for the toolbar: pairs in the (filtered) queue, QC samples among them, pairs other reviewers
    hold right now, and this reviewer's decisions today. The queue count walks the partial index
    review_queue_order; held pairs come from the small set of open claims."""
    now = timezone.now()
    counts = Match.objects.filter(IN_QUEUE, filters.q_object()).aggregate(
        total=Count("id"), audit=Count("id", filter=Q(audit_sample=True))
    )
    held = Claim.objects.filter(released_at__isnull=True, expires_at__gt=now).exclude(user=user).count()
    start_of_day = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    mine = ReviewDecision.objects.filter(
        user=user,
        created_at__gte=start_of_day,
        action__in=[ReviewDecision.Action.APPROVE, ReviewDecision.Action.REJECT],
    ).count()
    return QueueSummary(total=counts["total"], audit=counts["audit"], held_by_others=held, mine_today=mine)


def last_decision(*, match_id: int) -> ReviewDecision | None:
    return (
        ReviewDecision.objects.select_related("user")
        .filter(match_id=match_id, action__in=[ReviewDecision.Action.APPROVE, ReviewDecision.Action.REJECT])
        .order_by("-created_at", "-id")
        .first()
    )


def last_undoable(*, user) -> ReviewDecision | None:
    """This reviewer's newest approve/reject that has not been undone."""
    return (
        ReviewDecision.objects.filter(
            user=user,
            action__in=[ReviewDecision.Action.APPROVE, ReviewDecision.Action.REJECT],
            undone_by__isnull=True,
            bulk=False,
        )
        .order_by("-created_at", "-id")
        .first()
    )
