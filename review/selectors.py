"""Reads of the review app; each runs a fixed number of queries whatever the queue size."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from statistics import NormalDist
from typing import Any

from django.contrib.postgres.expressions import ArraySubquery
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.db import connection
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
    TextField,
)
from django.db.models.functions import Cast, Floor, JSONObject
from django.utils import timezone

from matcher.models import Listing, ListingImage, Match, ProductImage
from review.models import Claim, ReviewDecision, ReviewSettings
from review.queue import BAND_WIDTH, IN_QUEUE, Cursor, Direction, QueueFilters, queue_order

PAUSE_CACHE_KEY = "review:auto_pricing_paused"
PAUSE_CACHE_SECONDS = 60
SKIP_MEMORY = timedelta(hours=12)  # a skipped pair stays out of that reviewer's "next" for a working day


# --- Pairs -------------------------------------------------------------------------------------


def _images(model: type[ProductImage] | type[ListingImage], owner: str, outer: str) -> ArraySubquery:
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
) -> QuerySet[Match]:
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


def my_open_claim(*, user, filters: QueueFilters) -> Match | None:
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
    rows: list[Match]
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
        row.our_thumb_url = default_storage.url(row.our_thumb) if row.our_thumb else ""
        row.their_thumb_url = default_storage.url(row.their_thumb) if row.their_thumb else ""
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


def effective_decisions() -> QuerySet[ReviewDecision]:
    """Approve/reject decisions that still stand (not undone): what calibration and QC learn from."""
    return ReviewDecision.objects.filter(
        action__in=[ReviewDecision.Action.APPROVE, ReviewDecision.Action.REJECT], undone_by__isnull=True
    )


# --- Settings and quality control -----------------------------------------------------------------


def review_settings() -> ReviewSettings:
    row = ReviewSettings.objects.order_by("pk").first()
    if row is None:
        row, _ = ReviewSettings.objects.get_or_create(pk=1)
    return row


def z_value(confidence_level: Decimal | float) -> float:
    level = float(confidence_level)
    return NormalDist().inv_cdf(1 - (1 - level) / 2)


def wilson_interval(successes: int, n: int, z: float) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (0, 1) when there is no data."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def audits_needed(target: float, z: float) -> int:
    """Audits, all approved, before the Wilson lower bound can reach the target at all."""
    if target >= 1:
        return 0
    return math.ceil(target * z * z / (1 - target))


@dataclass
class QcEstimate:
    n: int  # audit decisions on automatic matches in the window
    approved: int
    precision: float | None
    low: float
    high: float
    target: float
    min_sample: int
    confidence_level: float
    needed: int
    paused: bool
    reject_n: int  # audit decisions on automatic rejects
    reject_missed: int  # of those, approved by the reviewer (matches the pipeline threw away)
    pending_audit: int
    window_days: int


def qc_estimate(*, with_pending: bool = True) -> QcEstimate:
    """Auto-match precision estimated from QC samples reviewers decided (Wilson interval)."""
    cfg = review_settings()
    since = timezone.now() - timedelta(days=cfg.qc_window_days)
    agg = (
        effective_decisions()
        .filter(audit_item=True, created_at__gte=since)
        .aggregate(
            n=Count("id", filter=Q(bucket=Match.Bucket.AUTO)),
            approved=Count("id", filter=Q(bucket=Match.Bucket.AUTO, action=ReviewDecision.Action.APPROVE)),
            reject_n=Count("id", filter=Q(bucket=Match.Bucket.REJECT)),
            reject_missed=Count(
                "id", filter=Q(bucket=Match.Bucket.REJECT, action=ReviewDecision.Action.APPROVE)
            ),
        )
    )
    z = z_value(cfg.confidence_level)
    n, approved = agg["n"], agg["approved"]
    low, high = wilson_interval(approved, n, z)
    target = float(cfg.precision_target)
    return QcEstimate(
        n=n,
        approved=approved,
        precision=approved / n if n else None,
        low=low,
        high=high,
        target=target,
        min_sample=cfg.min_audit_sample,
        confidence_level=float(cfg.confidence_level),
        needed=audits_needed(target, z),
        paused=n >= cfg.min_audit_sample and low < target,
        reject_n=agg["reject_n"],
        reject_missed=agg["reject_missed"],
        pending_audit=Match.objects.filter(audit_sample=True).count() if with_pending else 0,
        window_days=cfg.qc_window_days,
    )


def auto_pricing_paused() -> bool:
    """True when QC says automatic matches are not precise enough to price from.

    That is: at least `min_audit_sample` audited auto-matches in the window and the Wilson lower bound
    of their approval rate below `precision_target`. Cached for a minute; review writes clear the cache.
    """
    cached = cache.get(PAUSE_CACHE_KEY)
    if cached is not None:
        return bool(cached)
    paused = qc_estimate(with_pending=False).paused
    cache.set(PAUSE_CACHE_KEY, paused, PAUSE_CACHE_SECONDS)
    return paused


# --- Calibration -------------------------------------------------------------------------------


@dataclass
class BandRow:
    low: Decimal
    high: Decimal
    approved: int = 0
    rejected: int = 0
    audit_approved: int = 0
    audit_rejected: int = 0
    pairs: int = 0  # current pairs in the band not decided by a person

    @property
    def decided(self) -> int:
        return self.approved + self.rejected + self.audit_approved + self.audit_rejected

    @property
    def approval_rate(self) -> float | None:
        total = self.decided
        return (self.approved + self.audit_approved) / total if total else None


def _band_index(field_name: str = "confidence") -> Any:
    return Cast(Floor(F(field_name) / BAND_WIDTH), IntegerField())


def calibration_bands() -> list[BandRow]:
    """Per 0.05 confidence band: how often reviewers approved (queue, QC samples) and the pairs there."""
    bands = {i: BandRow(low=BAND_WIDTH * i, high=BAND_WIDTH * (i + 1)) for i in range(int(1 / BAND_WIDTH))}
    decided = (
        effective_decisions()
        .annotate(band=_band_index())
        .values("band")
        .order_by("band")
        .annotate(
            approved=Count("id", filter=Q(audit_item=False, action=ReviewDecision.Action.APPROVE)),
            rejected=Count("id", filter=Q(audit_item=False, action=ReviewDecision.Action.REJECT)),
            audit_approved=Count("id", filter=Q(audit_item=True, action=ReviewDecision.Action.APPROVE)),
            audit_rejected=Count("id", filter=Q(audit_item=True, action=ReviewDecision.Action.REJECT)),
        )
    )
    for row in decided:
        band = bands.get(min(int(row["band"]), len(bands) - 1))
        if band:
            band.approved += row["approved"]
            band.rejected += row["rejected"]
            band.audit_approved += row["audit_approved"]
            band.audit_rejected += row["audit_rejected"]
    pairs = (
        Match.objects.filter(decided_by_human=False)
        .annotate(band=_band_index())
        .values("band")
        .order_by("band")
        .annotate(c=Count("id"))
    )
    for row in pairs:
        band = bands.get(min(int(row["band"]), len(bands) - 1))
        if band:
            band.pairs += row["c"]
    return [bands[i] for i in sorted(bands)]


def _gated() -> Q:
    """Pairs whose confidence the decision rules capped below auto (a blocker or a missing gate):
    they stay out of auto whatever the threshold, because the cap moves with it."""
    # Containment, not a key lookup: a missing key must read as false, not NULL, under NOT.
    return (
        Q(evidence__contains={"auto_blocked": True})
        | Q(reasons_text__contains="blocks auto:")
        | Q(reasons_text__contains="no auto:")
    )


BUCKETS = [Match.Bucket.AUTO, Match.Bucket.REVIEW, Match.Bucket.REJECT]


@dataclass
class Simulation:
    auto_threshold: Decimal
    review_threshold: Decimal
    moves: dict[str, dict[str, int]] = field(default_factory=dict)  # current bucket → new bucket → pairs
    totals_now: dict[str, int] = field(default_factory=dict)
    totals_new: dict[str, int] = field(default_factory=dict)
    precision: float | None = None  # estimated precision of the new auto bucket
    precision_now: float | None = None
    covered: float | None = None  # share of new-auto pairs whose band has reviewer data
    moved: int = 0

    @property
    def table(self) -> list[dict[str, Any]]:
        """Rows of the move table for the template: current bucket → cells per new bucket."""
        return [
            {
                "label": Match.Bucket(cur).label,
                "cells": [
                    {"n": self.moves[cur][new], "move": cur != new and self.moves[cur][new] > 0}
                    for new in BUCKETS
                ],
                "total": self.totals_now[cur],
            }
            for cur in BUCKETS
        ]

    @property
    def new_totals(self) -> list[int]:
        return [self.totals_new[b] for b in BUCKETS]

    def as_json(self) -> dict[str, Any]:
        return {
            "auto_threshold": str(self.auto_threshold),
            "review_threshold": str(self.review_threshold),
            "moves": self.moves,
            "totals_now": self.totals_now,
            "totals_new": self.totals_new,
            "precision": self.precision,
            "precision_now": self.precision_now,
            "covered": self.covered,
            "moved": self.moved,
        }


def _estimated_precision(
    counts_by_band: dict[int, int], rates: dict[int, float | None]
) -> tuple[float | None, float | None]:
    weighted = covered = total = 0.0
    for band, count in counts_by_band.items():
        total += count
        rate = rates.get(band)
        if rate is not None:
            weighted += count * rate
            covered += count
    if not covered:
        return None, (0.0 if total else None)
    return weighted / covered, covered / total


def threshold_simulation(
    *, auto_threshold: Decimal, review_threshold: Decimal, bands: list[BandRow] | None = None
) -> Simulation:
    """How many automatic pairs would change bucket under other thresholds, and the precision to expect.

    Pairs a person decided never move. Precision of the new auto bucket: the reviewer approval rate of each
    0.05 band (queue decisions and QC samples), weighted by how many pairs of that band would be auto.
    """
    auto_threshold, review_threshold = Decimal(str(auto_threshold)), Decimal(str(review_threshold))
    sim = Simulation(auto_threshold=auto_threshold, review_threshold=review_threshold)
    qs = Match.objects.filter(decided_by_human=False).annotate(reasons_text=Cast("reasons", TextField()))
    new_auto = Q(confidence__gte=auto_threshold) & ~_gated()
    new_review = ~new_auto & Q(confidence__gte=review_threshold)
    new_reject = ~new_auto & Q(confidence__lt=review_threshold)
    new_q = {Match.Bucket.AUTO: new_auto, Match.Bucket.REVIEW: new_review, Match.Bucket.REJECT: new_reject}
    aggregates = {
        f"{cur}__{new}": Count("id", filter=Q(bucket=cur) & new_q[new]) for cur in BUCKETS for new in BUCKETS
    }
    counts = qs.aggregate(**aggregates)
    for cur in BUCKETS:
        sim.moves[cur] = {new: counts[f"{cur}__{new}"] for new in BUCKETS}
        sim.totals_now[cur] = sum(sim.moves[cur].values())
    for new in BUCKETS:
        sim.totals_new[new] = sum(sim.moves[cur][new] for cur in BUCKETS)
    sim.moved = sum(sim.moves[c][n] for c in BUCKETS for n in BUCKETS if c != n)

    bands = bands if bands is not None else calibration_bands()
    rates = {i: b.approval_rate for i, b in enumerate(bands)}
    per_band = (
        qs.annotate(band=_band_index())
        .values("band")
        .order_by("band")
        .annotate(new=Count("id", filter=new_auto), now=Count("id", filter=Q(bucket=Match.Bucket.AUTO)))
    )
    new_counts: dict[int, int] = {}
    now_counts: dict[int, int] = {}
    for row in per_band:
        band = min(int(row["band"]), len(bands) - 1)
        if row["new"]:
            new_counts[band] = new_counts.get(band, 0) + row["new"]
        if row["now"]:
            now_counts[band] = now_counts.get(band, 0) + row["now"]
    sim.precision, sim.covered = _estimated_precision(new_counts, rates)
    sim.precision_now, _ = _estimated_precision(now_counts, rates)
    return sim


# --- Reviewer stats ------------------------------------------------------------------------------

IDLE_GAP_SECONDS = 300  # a longer gap between two decisions is a break, not review time


@dataclass
class ReviewerStats:
    user_id: int
    username: str
    decisions: int
    approvals: int
    skips: int
    undone: int
    active_seconds: float
    audits: int
    audit_agreements: int

    @property
    def per_hour(self) -> float | None:
        """Decisions per hour of active review (gaps up to IDLE_GAP_SECONDS between consecutive actions)."""
        return self.decisions / (self.active_seconds / 3600) if self.active_seconds > 0 else None

    @property
    def agreement(self) -> float | None:
        return self.audit_agreements / self.audits if self.audits else None


def reviewer_stats(*, days: int = 7, user_id: int | None = None) -> list[ReviewerStats]:
    """Decisions per active hour and agreement with automatic decisions on QC samples, per reviewer."""
    since = timezone.now() - timedelta(days=days)
    decision_table = ReviewDecision._meta.db_table
    user_table = ReviewDecision._meta.get_field("user").related_model._meta.db_table
    sql = f"""
        WITH d AS (
            SELECT r.id, r.user_id, r.action, r.audit_item, r.bucket,
                   EXTRACT(EPOCH FROM r.created_at - lag(r.created_at) OVER (
                       PARTITION BY r.user_id ORDER BY r.created_at, r.id)) AS gap,
                   EXISTS (SELECT 1 FROM {decision_table} u WHERE u.undoes_id = r.id) AS undone
            FROM {decision_table} r
            WHERE r.created_at >= %s AND r.action IN ('approve', 'reject', 'skip')
              AND (%s::bigint IS NULL OR r.user_id = %s::bigint)
        )
        SELECT d.user_id, u.username,
               count(*) FILTER (WHERE d.action IN ('approve', 'reject')),
               count(*) FILTER (WHERE d.action = 'approve'),
               count(*) FILTER (WHERE d.action = 'skip'),
               count(*) FILTER (WHERE d.undone),
               coalesce(sum(d.gap) FILTER (WHERE d.gap <= %s), 0),
               count(*) FILTER (WHERE d.audit_item AND d.action IN ('approve', 'reject') AND NOT d.undone),
               count(*) FILTER (WHERE d.audit_item AND NOT d.undone AND (
                   (d.action = 'approve' AND d.bucket = 'auto')
                   OR (d.action = 'reject' AND d.bucket = 'reject')))
        FROM d JOIN {user_table} u ON u.id = d.user_id
        GROUP BY d.user_id, u.username
        ORDER BY 3 DESC, u.username
    """
    with connection.cursor() as cur:
        cur.execute(sql, [since, user_id, user_id, IDLE_GAP_SECONDS])
        rows = cur.fetchall()
    return [
        ReviewerStats(
            user_id=r[0],
            username=r[1],
            decisions=r[2],
            approvals=r[3],
            skips=r[4],
            undone=r[5],
            active_seconds=float(r[6]),
            audits=r[7],
            audit_agreements=r[8],
        )
        for r in rows
    ]


def is_admin(user) -> bool:
    return bool(user.is_superuser or user.groups.filter(name="admin").exists())


def review_role(user) -> str | None:
    """ "admin", "merchandiser" or None, in one query (none for superusers)."""
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return "admin"
    names = set(user.groups.filter(name__in=["admin", "merchandiser"]).values_list("name", flat=True))
    if "admin" in names:
        return "admin"
    return "merchandiser" if "merchandiser" in names else None
