"""Quality control writes: drawing the QC audit sample and the QC settings."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import FloatField, Func, Q
from django.utils import timezone

from matcher.models import Match
from review import selectors
from review.exceptions import ReviewRefused
from review.models import AuditSampleDraw, ReviewSettings


@transaction.atomic
def audit_sample_draw(*, user=None) -> AuditSampleDraw:
    """Sample the configured share of automatic decisions made since the last draw into the queue as QC items.

    Bernoulli sampling (each pair independently with probability audit_share), capped at audit_max_per_draw
    by a random subset, so the estimate stays unbiased. The status of sampled pairs does not change.
    """
    # review_settings() creates the row if missing, so the locked read always finds it.
    cfg = ReviewSettings.objects.select_for_update().get(pk=selectors.review_settings().pk)
    now = timezone.now()
    last = AuditSampleDraw.objects.order_by("-created_at").first()
    since = last.until if last else None
    base = Match.objects.filter(decided_by_human=False, audit_sample=False, decided_at__lte=now).filter(
        Q(bucket=Match.Bucket.AUTO, status=Match.Status.MATCHED)
        | Q(bucket=Match.Bucket.REJECT, status=Match.Status.REJECTED)
    )
    if since is not None:
        base = base.filter(decided_at__gt=since)
    candidates = base.count()
    picked = list(
        base.alias(r=Func(function="random", output_field=FloatField()))
        .filter(r__lt=float(cfg.audit_share))
        .order_by("?")
        .values_list("id", "bucket")[: cfg.audit_max_per_draw]
    )
    Match.objects.filter(pk__in=[pk for pk, _ in picked]).update(audit_sample=True, updated_at=now)
    return AuditSampleDraw.objects.create(
        created_at=now,
        since=since,
        until=now,
        share=cfg.audit_share,
        candidates=candidates,
        sampled_auto=sum(1 for _, b in picked if b == Match.Bucket.AUTO),
        sampled_reject=sum(1 for _, b in picked if b == Match.Bucket.REJECT),
        user=user,
    )


def _decimal(value: Any, name: str, low: Decimal, high: Decimal) -> Decimal:
    try:
        d = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ReviewRefused(f"{name}: 숫자를 입력해 주세요.") from None
    if not (low <= d <= high):
        raise ReviewRefused(f"{name}: {low}–{high} 사이여야 합니다.")
    return d


@transaction.atomic
def review_settings_update(
    *,
    user,
    audit_share: Any,
    precision_target: Any,
    min_audit_sample: Any,
    confidence_level: Any,
    qc_window_days: Any,
    audit_max_per_draw: Any,
) -> ReviewSettings:
    values = {
        "audit_share": _decimal(audit_share, "감사 표본 비율", Decimal("0"), Decimal("0.5")),
        "precision_target": _decimal(precision_target, "정밀도 목표", Decimal("0.5"), Decimal("0.9999")),
        "confidence_level": _decimal(confidence_level, "신뢰 수준", Decimal("0.5"), Decimal("0.999")),
        "min_audit_sample": int(_decimal(min_audit_sample, "최소 표본 수", Decimal("1"), Decimal("100000"))),
        "qc_window_days": int(_decimal(qc_window_days, "추정 기간", Decimal("1"), Decimal("3650"))),
        "audit_max_per_draw": int(
            _decimal(audit_max_per_draw, "1회 최대 표본 수", Decimal("1"), Decimal("100000"))
        ),
    }
    row = ReviewSettings.objects.select_for_update().get(pk=selectors.review_settings().pk)
    for key, value in values.items():
        setattr(row, key, value)
    row.updated_by = user
    row.save()
    transaction.on_commit(lambda: cache.delete(selectors.PAUSE_CACHE_KEY))
    return row
