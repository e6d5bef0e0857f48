"""What holds now: one check per kind of alert, each a read returning the conditions it found.

A condition is (kind, subject key, message): the key says which thing the alert is about (a SKU's id,
"qc" or "halt", or "" for a kind that is about the whole shop), so the evaluation can tell a condition
that goes on from a new one. Messages are Korean, for the list page, the e-mail and the webhook.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Min

from matcher.llm.spend import committed_batch_usd, spend_today
from matcher.models import Match
from pricing import rules
from pricing.alerts.models import AlertKind, AlertRule
from pricing.catalogue import CatalogueFilters, catalogue_rows
from pricing.models import PriceProposal
from pricing.services import HALTED_REASON, auto_pricing_halt_current
from review import selectors as review_selectors

MESSAGE_MAX = 500


@dataclass(frozen=True)
class Condition:
    kind: str
    key: str
    message: str
    product_id: int | None = None


def _condition(kind: str, key: str, message: str, product_id: int | None = None) -> Condition:
    return Condition(kind=kind, key=key, message=message[:MESSAGE_MAX], product_id=product_id)


def below_floor(rule: AlertRule, now: datetime) -> list[Condition]:
    """Each active SKU whose cheapest counted confirmed competitor total is below our floor: the rules
    hold our price at the floor, so we cannot compete. The catalogue's set-based read (its floor and
    cheapest total resolve each SKU's policy layers in SQL): 1 query for the policies, 1 per 2,000 SKUs."""
    return [
        _condition(
            AlertKind.BELOW_FLOOR,
            f"sku:{row.id}",
            f"{row.sku}: 확정 경쟁 최저가 {rules.won(row.cheapest_total or 0)}({row.cheapest_mall or '—'})이 "
            f"하한가 {rules.won(row.floor)}보다 낮아 따라갈 수 없습니다 (competitor below our floor)",
            row.id,
        )
        for row in catalogue_rows(CatalogueFilters(below_floor=True), now=now)
    ]


def proposals_waiting(rule: AlertRule, now: datetime) -> list[Condition]:
    """Price proposals pending for longer than the threshold, as one alert for the shop. 1 query."""
    hours = rule.threshold_value or 0
    waiting = PriceProposal.objects.filter(
        status=PriceProposal.Status.PENDING, created_at__lt=now - timedelta(hours=hours)
    ).aggregate(n=Count("id"), oldest=Min("created_at"))
    if not waiting["n"]:
        return []
    age = int((now - waiting["oldest"]).total_seconds() // 3600)
    return [_condition(
        AlertKind.PROPOSALS_WAITING, "",
        f"가격 제안 {waiting['n']:,}건이 {hours}시간 넘게 승인을 기다립니다 (가장 오래된 것 {age}시간) "
        f"(proposals waiting over {hours} h)",
    )]


def pricing_paused(rule: AlertRule, now: datetime) -> list[Condition]:
    """Automatic price changes stopped: by quality control (the review app's estimate) and/or by an
    admin's switch, one alert each. 1–2 queries (QC's verdict is cached for a minute)."""
    found: list[Condition] = []
    if review_selectors.auto_pricing_paused():
        found.append(_condition(
            AlertKind.PRICING_PAUSED, "qc",
            "품질 검사(QC) 결과 자동 매칭 정확도가 목표보다 낮아 자동 가격 변경이 멈췄습니다 "
            "(automatic pricing paused by QC)",
        ))
    halt = auto_pricing_halt_current()
    if halt is not None:
        who = halt.user.get_username() if halt.user else "관리자"
        found.append(_condition(
            AlertKind.PRICING_PAUSED, "halt",
            f"{HALTED_REASON} ({who}, 사유: {halt.reason}) (automatic pricing halted by an admin)",
        ))
    return found


def listings_stale(rule: AlertRule, now: datetime) -> list[Condition]:
    """Confirmed competitor listings of active SKUs not seen for longer than the threshold, counted in
    total and by SKU, as one alert for the shop. 1 query."""
    hours = rule.threshold_value or 0
    stale = Match.objects.filter(
        status=Match.Status.MATCHED, product__active=True, listing__last_seen__lt=now - timedelta(hours=hours)
    ).aggregate(listings=Count("id"), skus=Count("product", distinct=True))
    if not stale["listings"]:
        return []
    return [_condition(
        AlertKind.LISTINGS_STALE, "",
        f"확정 경쟁 상품 {stale['listings']:,}건(SKU {stale['skus']:,}개)이 {hours}시간 넘게 갱신되지 않았습니다 "
        f"(listings not refreshed for {hours} h)",
    )]


def llm_spend(rule: AlertRule, now: datetime) -> list[Condition]:
    """Today's LLM spend, with the estimate of Batch API jobs still out (what the cap counts), at or
    above the threshold's share of GEMINI_DAILY_SPEND_CAP_USD. 2 queries."""
    cap = Decimal(settings.GEMINI_DAILY_SPEND_CAP_USD)
    percent = Decimal(rule.threshold_value or 0)
    if cap <= 0:
        return []
    used = spend_today().usd + committed_batch_usd()
    if used * 100 < cap * percent:
        return []
    share = (used * 100 / cap).quantize(Decimal("1"))
    return [_condition(
        AlertKind.LLM_SPEND, "",
        f"오늘 LLM 비용 ${used.quantize(Decimal('0.01'))}이 일일 한도 ${cap}의 {share}%입니다 "
        f"(기준 {percent}%) (LLM spend near the daily cap)",
    )]


Check = Callable[[AlertRule, datetime], list[Condition]]
CHECKS: dict[str, Check] = {
    AlertKind.BELOW_FLOOR: below_floor,
    AlertKind.PROPOSALS_WAITING: proposals_waiting,
    AlertKind.PRICING_PAUSED: pricing_paused,
    AlertKind.LISTINGS_STALE: listings_stale,
    AlertKind.LLM_SPEND: llm_spend,
}
