"""Money: what the LLM cost today, per run and per SKU, and the daily cap.

Every paid call leaves an `LlmVerdictRecord` with its cost (a failed but billed call too, with
ok=False), so the ledger is the table and spend is a SUM over it. Cached answers cost nothing and
leave no new row. The cap is checked before each call; workers racing past it together can
overshoot by at most one call each (cents), which is accepted rather than serialising every call
through a lock. Batch API jobs still out count with their estimate until they are collected.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, QuerySet, Sum
from django.utils import timezone

from matcher.decisions import BATCH_OPEN_STATES
from matcher.evidence import usd_to_krw
from matcher.models import LlmBatchJob, LlmVerdictRecord


@dataclass(frozen=True)
class Spend:
    usd: Decimal
    krw: int
    calls: int


def _day_start() -> datetime:
    return timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)


def _spend(records: QuerySet[LlmVerdictRecord]) -> Spend:
    agg = records.aggregate(usd=Sum("cost_usd"), calls=Count("id"))
    usd = agg["usd"] or Decimal(0)
    return Spend(usd=usd, krw=usd_to_krw(usd), calls=agg["calls"] or 0)


def spend_today() -> Spend:
    """Since local midnight (settings.TIME_ZONE), online and collected batch calls."""
    return _spend(LlmVerdictRecord.objects.filter(created_at__gte=_day_start()))


def spend_for_run(run_id: int) -> Spend:
    return _spend(LlmVerdictRecord.objects.filter(run_id=run_id))


def spend_for_product(product_id: int) -> Spend:
    return _spend(LlmVerdictRecord.objects.filter(product_id=product_id))


def committed_batch_usd(*, exclude_job_id: int | None = None) -> Decimal:
    """The estimated cost of Batch API jobs still out: billed (and recorded) only once collected."""
    jobs = LlmBatchJob.objects.filter(state__in=BATCH_OPEN_STATES)
    if exclude_job_id is not None:
        jobs = jobs.exclude(id=exclude_job_id)
    return jobs.aggregate(usd=Sum("cost_usd"))["usd"] or Decimal(0)


def spend_cap_reached() -> bool:
    """Today's spend plus what open batch jobs are expected to cost has reached the daily cap."""
    return spend_today().usd + committed_batch_usd() >= settings.GEMINI_DAILY_SPEND_CAP_USD


def batch_cap_exceeded(estimate: Decimal, *, job_id: int) -> bool:
    """Batch verdicts are billed (and recorded) only when collected, so jobs still open count with their
    estimate: otherwise a whole-catalogue run could submit far past the daily cap before the first answer."""
    committed = committed_batch_usd(exclude_job_id=job_id)
    return spend_today().usd + committed + estimate >= settings.GEMINI_DAILY_SPEND_CAP_USD


def cap_error() -> str:
    cap = settings.GEMINI_DAILY_SPEND_CAP_USD
    return f"일일 LLM 비용 한도 도달 (daily spend cap {cap} USD reached): not verified"
