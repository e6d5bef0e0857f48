"""What the review queue is: which pairs are in it, how they are ordered and filtered.

Shared by selectors (reads) and services (claiming), so both agree on one definition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from decimal import Decimal, InvalidOperation
from typing import Literal
from urllib.parse import urlencode

from django.db.models import Q, QuerySet

from matcher.models import Match
from matcher.pipeline.attributes import normalise_product_number

# Pending pairs plus QC samples of automatic decisions (their status stays as it is until reviewed:
# an audited auto-match keeps driving prices until a reviewer rejects it).
IN_QUEUE = Q(status=Match.Status.PENDING) | Q(audit_sample=True)


def in_queue(match: Match) -> bool:
    """IN_QUEUE for one loaded row."""
    return match.status == Match.Status.PENDING or match.audit_sample

BAND_WIDTH = Decimal("0.05")
# Confidence bands offered as filters; "audit" selects the QC samples instead of a band.
BAND_CHOICES: list[tuple[str, str]] = [("audit", "품질 감사 표본")] + [
    (f"{Decimal(i) / 100:.2f}", f"{Decimal(i) / 100:.2f}–{(Decimal(i) + 5) / 100:.2f}")
    for i in range(50, 100, 5)
]
_BAND_VALUES = {value for value, _ in BAND_CHOICES}

Direction = Literal["next", "prev"]


@dataclass(frozen=True)
class QueueFilters:
    band: str = ""
    mall: str = ""
    category: str = ""
    brand: str = ""
    q: str = ""  # SKU or product number (품번), exact after normalisation

    @classmethod
    def from_data(cls, data: Mapping[str, str]) -> QueueFilters:
        band = (data.get("band") or "").strip()
        return cls(
            band=band if band in _BAND_VALUES else "",
            mall=(data.get("mall") or "").strip()[:60],
            category=(data.get("category") or "").strip()[:120],
            brand=(data.get("brand") or "").strip()[:120],
            q=(data.get("q") or "").strip()[:64],
        )

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v}

    def as_query(self) -> str:
        """URL query string of the active filters (empty string when none)."""
        return urlencode(self.as_dict())

    @property
    def active(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    def q_object(self) -> Q:
        """The filters as one Q over Match (joins only to product and listing, which pages select anyway)."""
        q = Q()
        if self.band == "audit":
            q &= Q(audit_sample=True)
        elif self.band:
            try:
                low = Decimal(self.band)
            except InvalidOperation:  # pragma: no cover - from_data only lets known values through
                low = None
            if low is not None:
                q &= Q(confidence__gte=low, confidence__lt=low + BAND_WIDTH)
        if self.mall:
            q &= Q(listing__mall=self.mall)
        if self.category:
            q &= Q(product__category=self.category)
        if self.brand:
            q &= Q(product__brand__iexact=self.brand)
        if self.q:
            q &= Q(product__sku=self.q) | Q(product__product_number_norm=normalise_product_number(self.q))
        return q

    def apply(self, qs: QuerySet[Match]) -> QuerySet[Match]:
        return qs.filter(self.q_object())


@dataclass(frozen=True)
class Cursor:
    """A position in queue order (money at risk descending, then id) for J/K navigation."""

    money_at_risk: int
    match_id: int

    def __str__(self) -> str:
        return f"{self.money_at_risk}:{self.match_id}"

    @classmethod
    def parse(cls, value: str | None) -> Cursor | None:
        if not value:
            return None
        try:
            money, match_id = value.split(":", 1)
            return cls(int(money), int(match_id))
        except ValueError:
            return None

    @classmethod
    def of(cls, match: Match) -> Cursor:
        return cls(match.money_at_risk, match.pk)

    def after(self, direction: Direction) -> Q:
        """Pairs strictly after (next) or before (prev) this position in queue order."""
        if direction == "next":
            return Q(money_at_risk__lt=self.money_at_risk) | Q(
                money_at_risk=self.money_at_risk, id__gt=self.match_id
            )
        return Q(money_at_risk__gt=self.money_at_risk) | Q(
            money_at_risk=self.money_at_risk, id__lt=self.match_id
        )


def queue_order(direction: Direction = "next") -> list[str]:
    return ["-money_at_risk", "id"] if direction == "next" else ["money_at_risk", "-id"]
