"""Reads of the calibration page: reviewer approval per confidence band and the threshold simulator."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Count, F, IntegerField, Q
from django.db.models.functions import Cast, Floor

from matcher.evidence import auto_blocked_q
from matcher.models import Match
from review.models import ReviewDecision
from review.queue import BAND_WIDTH
from review.selectors.quality import effective_decisions


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
    for counted in pairs:
        band = bands.get(min(int(counted["band"]), len(bands) - 1))
        if band:
            band.pairs += counted["c"]
    return [bands[i] for i in sorted(bands)]


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
    qs = Match.objects.filter(decided_by_human=False)
    new_auto = Q(confidence__gte=auto_threshold) & ~auto_blocked_q()
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
