"""The dashboard's figures: where our prices stand, what moved today, what waits, and whether the machine
may act on its own. Reads only; every figure has the filtered list it links to (in the template).

It reads all three apps, so it lives in the top one (`pricing → review → matcher`). A fixed number of
queries whatever the catalogue size: the page runs 17 in all (tests/pricing/test_dashboard.py counts them).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, F, Min, Q, Sum
from django.utils import timezone

from matcher.llm.spend import Spend, spend_today
from matcher.models import Listing, Match, MatchRun, Product
from pricing import catalogue
from pricing.models import AutoPricingHalt, PriceChange, PriceProposal
from pricing.services.halt import auto_pricing_halt_current
from review import selectors as review_selectors
from review.selectors import QcEstimate

POSITION_ORDER = [catalogue.CHEAPEST, catalogue.DEARER, catalogue.FLOOR, catalogue.NO_COMPETITION]


@dataclass(frozen=True)
class PositionBar:
    key: str
    label: str
    count: int
    share: float  # of active SKUs, 0–1


@dataclass(frozen=True)
class Dashboard:
    products: int
    products_without_floor: int
    listings: int
    positions: list[PositionBar]
    below_floor: int
    changes_today: int
    won_moved_today: int  # sum of (new − old) of today's changes, KRW (negative: we cut)
    proposals_waiting: int
    oldest_proposal_at: datetime | None
    pending_pairs: int
    price_moving_pairs: int
    money_at_risk: int  # KRW, summed over the price-moving pending pairs
    qc: QcEstimate
    halt: AutoPricingHalt | None
    llm: Spend
    llm_cap_usd: Decimal
    last_run: MatchRun | None

    @property
    def llm_cap_share(self) -> float:
        return float(self.llm.usd / self.llm_cap_usd) if self.llm_cap_usd else 0.0


def _today_start(now: datetime) -> datetime:
    return timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)


def dashboard_figures(*, now: datetime | None = None) -> Dashboard:
    """Everything the dashboard shows; a fixed number of queries (see the module docstring)."""
    now = now or timezone.now()
    products = Product.objects.filter(active=True).aggregate(
        total=Count("id"), without_floor=Count("id", filter=Q(cost__isnull=True, min_price__isnull=True))
    )
    positions = catalogue.position_counts(now=now)  # 2
    total = products["total"] or 0
    bars = [
        PositionBar(key, catalogue.POSITION_LABELS[key], positions[key], positions[key] / total if total else 0.0)
        for key in POSITION_ORDER
    ]
    today = PriceChange.objects.filter(created_at__gte=_today_start(now)).aggregate(
        n=Count("id"), moved=Sum(F("new_price") - F("old_price"))
    )
    waiting = PriceProposal.objects.filter(status=PriceProposal.Status.PENDING).aggregate(
        n=Count("id"), oldest=Min("created_at")
    )
    pairs = Match.objects.filter(status=Match.Status.PENDING).aggregate(
        n=Count("id"),
        moving=Count("id", filter=Q(money_at_risk__gt=0)),
        risk=Sum("money_at_risk", filter=Q(money_at_risk__gt=0)),
    )
    return Dashboard(
        products=total,
        products_without_floor=products["without_floor"] or 0,
        listings=Listing.objects.count(),
        positions=bars,
        below_floor=positions["below_floor"],
        changes_today=today["n"] or 0,
        won_moved_today=today["moved"] or 0,
        proposals_waiting=waiting["n"] or 0,
        oldest_proposal_at=waiting["oldest"],
        pending_pairs=pairs["n"] or 0,
        price_moving_pairs=pairs["moving"] or 0,
        money_at_risk=pairs["risk"] or 0,
        qc=review_selectors.qc_estimate(with_pending=True),  # 3
        halt=auto_pricing_halt_current(),
        llm=spend_today(),
        llm_cap_usd=settings.GEMINI_DAILY_SPEND_CAP_USD,
        last_run=MatchRun.objects.order_by("-created_at").first(),
    )
