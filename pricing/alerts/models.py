"""The alerts' tables: one switch and threshold per kind of alert, and one row per alert raised.

Imported by ``pricing/models.py`` so Django registers them with the pricing app. This module imports
nothing of the pricing app (``pricing.models`` imports it while it loads).
"""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from matcher.models import Product


class AlertKind(models.TextChoices):
    BELOW_FLOOR = "below_floor", "경쟁가가 하한가 아래 (따라갈 수 없음)"
    PROPOSALS_WAITING = "proposals_waiting", "오래 기다리는 가격 제안"
    PRICING_PAUSED = "pricing_paused", "자동 가격 변경 멈춤"
    LISTINGS_STALE = "listings_stale", "갱신되지 않은 경쟁 상품"
    LLM_SPEND = "llm_spend", "LLM 비용 한도 근접"


# Kinds with a number to tune: its default and unit. The others have no threshold.
DEFAULT_THRESHOLDS: dict[str, int] = {
    AlertKind.PROPOSALS_WAITING: 24,
    AlertKind.LISTINGS_STALE: 48,
    AlertKind.LLM_SPEND: 80,
}
THRESHOLD_UNITS: dict[str, str] = {
    AlertKind.PROPOSALS_WAITING: "시간",
    AlertKind.LISTINGS_STALE: "시간",
    AlertKind.LLM_SPEND: "% (일일 한도 대비)",
}


class AlertRule(models.Model):
    """Whether one kind of alert is raised, and its threshold. Edited by admins in the Django admin
    (through ``pricing.alerts.services.alert_rule_save``, which records who and when); a kind without a
    row uses the defaults above, switched on."""

    kind = models.CharField("알림 종류", max_length=20, choices=AlertKind.choices, unique=True)
    enabled = models.BooleanField("사용", default=True)
    threshold = models.PositiveIntegerField(
        "기준값", null=True, blank=True, help_text="기다린 시간·갱신 없는 시간(시간) 또는 일일 LLM 한도 대비 %"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name="마지막 수정자",
    )
    updated_at = models.DateTimeField("마지막 수정", null=True, blank=True)

    class Meta:
        ordering = ["kind"]
        verbose_name = "알림 설정 alert rule"
        verbose_name_plural = "알림 설정 alert rules"

    def clean(self) -> None:
        """A threshold only for a kind that has one: at least 1; a share of the LLM cap at most 100 %."""
        if self.threshold is None:
            return
        if self.kind not in DEFAULT_THRESHOLDS:
            raise ValidationError({"threshold": "이 알림에는 기준값이 없습니다. 비워 두세요 (no threshold for this kind)."})
        high = 100 if self.kind == AlertKind.LLM_SPEND else None
        if self.threshold < 1 or (high is not None and self.threshold > high):
            limit = f"1에서 {high} 사이여야" if high else "1 이상이어야"
            raise ValidationError({"threshold": f"기준값은 {limit} 합니다 (threshold out of range)."})

    @property
    def threshold_value(self) -> int | None:
        """The threshold in force: the row's, else the default for its kind (None: the kind has none)."""
        if self.kind not in DEFAULT_THRESHOLDS:
            return None
        return self.threshold if self.threshold is not None else DEFAULT_THRESHOLDS[self.kind]

    @property
    def threshold_unit(self) -> str:
        return THRESHOLD_UNITS.get(self.kind, "")


class Alert(models.Model):
    """One condition that held: opened by an evaluation, cleared by the first evaluation that finds it gone.

    At most one open row per (kind, subject): while a condition holds, later evaluations leave its row
    alone (no repeated e-mail); once cleared, the same condition coming back opens a new row.
    """

    kind = models.CharField("종류", max_length=20, choices=AlertKind.choices)
    subject_key = models.CharField("대상", max_length=120, blank=True, default="")
    message = models.CharField("내용", max_length=500)
    product = models.ForeignKey(Product, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    opened_at = models.DateTimeField("발생", default=timezone.now, db_index=True)
    cleared_at = models.DateTimeField("해소", null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name="확인한 사람",
    )
    acknowledged_at = models.DateTimeField("확인", null=True, blank=True)
    # Outward delivery, so a retried task sends each alert once.
    emailed_at = models.DateTimeField(null=True, blank=True)
    webhook_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        verbose_name = "알림 alert"
        verbose_name_plural = "알림 alerts"
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "subject_key"], condition=models.Q(cleared_at__isnull=True),
                name="pricing_alert_one_open_per_subject",
            ),
        ]
        indexes = [
            models.Index(fields=["opened_at"], condition=models.Q(cleared_at__isnull=True), name="pricing_alert_open"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.subject_key}".strip()

    @property
    def is_open(self) -> bool:
        return self.cleared_at is None
