"""Reads of quality control: the QC settings, the auto-match precision estimate and the pricing pause."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from statistics import NormalDist

from django.core.cache import cache
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from matcher.models import Match
from review.models import ReviewDecision, ReviewSettings

PAUSE_CACHE_KEY = "review:auto_pricing_paused"
PAUSE_CACHE_SECONDS = 60


def effective_decisions() -> QuerySet[ReviewDecision]:
    """Approve/reject decisions that still stand (not undone): what calibration and QC learn from."""
    return ReviewDecision.objects.filter(
        action__in=[ReviewDecision.Action.APPROVE, ReviewDecision.Action.REJECT], undone_by__isnull=True
    )


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
