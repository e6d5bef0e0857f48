"""Models of the review app: claims (leases on pairs), decisions (the audit trail), QC settings, samples."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from matcher.models import Match, ThresholdSet


class RejectReason(models.TextChoices):
    """Why a reviewer said "not the same product"; the order is the keyboard digit (R then 1..8)."""

    OTHER_COLOUR = "other_colour", "다른 색상"
    OTHER_MODEL = "other_model", "다른 모델"
    KIDS = "kids", "아동용"
    MATERIAL = "material", "소재 다름"
    VEST = "vest", "조끼/베스트"
    COUNTERFEIT = "counterfeit", "카피/가품"
    BAD_IMAGE = "bad_image", "이미지 불량"
    OTHER = "other", "기타"

    @classmethod
    def by_digit(cls) -> dict[str, RejectReason]:
        return {str(i): reason for i, reason in enumerate(cls, start=1)}


class Claim(models.Model):
    """A reviewer's lease on one pair. Open while released_at is empty; it lapses at expires_at.

    At most one open claim per pair and per reviewer (partial unique constraints). An open claim past
    expires_at still blocks nobody: the next reviewer who claims the pair releases it as "expired".
    """

    class Release(models.TextChoices):
        DECIDED = "decided", "결정"
        SKIPPED = "skipped", "건너뜀"
        NAVIGATED = "navigated", "이동"
        EXPIRED = "expired", "만료"
        CLOSED = "closed", "창 닫힘"

    match = models.ForeignKey(Match, on_delete=models.CASCADE, related_name="review_claims")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="review_claims")
    claimed_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    released_at = models.DateTimeField(null=True, blank=True)
    release_reason = models.CharField(max_length=12, choices=Release.choices, blank=True, default="")

    class Meta:
        ordering = ["-claimed_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["match"],
                condition=Q(released_at__isnull=True),
                name="review_claim_one_open_per_match",
            ),
            models.UniqueConstraint(
                fields=["user"], condition=Q(released_at__isnull=True), name="review_claim_one_open_per_user"
            ),
        ]
        indexes = [
            models.Index(
                fields=["match", "expires_at"],
                name="review_claim_open",
                condition=Q(released_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"claim #{self.pk} match={self.match_id} user={self.user_id}"


class ReviewDecision(models.Model):
    """One reviewer action, written in the same transaction as the Match change it causes.

    Rows are never edited: an undo is its own row pointing at the decision it reverses.
    """

    class Action(models.TextChoices):
        APPROVE = "approve", "승인"
        REJECT = "reject", "제외"
        SKIP = "skip", "건너뛰기"
        UNDO = "undo", "되돌리기"

    match = models.ForeignKey(Match, null=True, on_delete=models.SET_NULL, related_name="review_decisions")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="review_decisions"
    )
    created_at = models.DateTimeField(db_index=True)
    action = models.CharField(max_length=10, choices=Action.choices)
    reason = models.CharField(max_length=20, choices=RejectReason.choices, blank=True, default="")
    note = models.CharField(max_length=500, blank=True, default="")
    bulk = models.BooleanField(default=False)
    claim = models.ForeignKey(
        Claim, null=True, blank=True, on_delete=models.SET_NULL, related_name="decisions"
    )
    undoes = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="undone_by"
    )
    # What the reviewer saw and what the pair was before and after: enough to explain or reverse it.
    thresholds = models.ForeignKey(ThresholdSet, null=True, on_delete=models.PROTECT, related_name="+")
    thresholds_version = models.PositiveIntegerField(null=True)
    confidence = models.DecimalField(max_digits=5, decimal_places=4)
    bucket = models.CharField(max_length=10, choices=Match.Bucket.choices)
    audit_item = models.BooleanField(
        default=False, help_text="the pair was a QC sample of an automatic decision"
    )
    status_before = models.CharField(max_length=10, choices=Match.Status.choices)
    status_after = models.CharField(max_length=10, choices=Match.Status.choices)
    decided_by_human_before = models.BooleanField(default=False)
    audit_sample_before = models.BooleanField(default=False)
    snapshot = models.JSONField(
        default=dict, help_text="evidence, reasons, titles and prices at decision time"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="review_decision_user_recent"),
            models.Index(fields=["match", "user", "action"], name="review_decision_match_user"),
            models.Index(fields=["audit_item", "bucket", "created_at"], name="review_decision_audit"),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} match={self.match_id} by {self.user_id}"


class ReviewSettings(models.Model):
    """The single row of review and quality-control settings (admin-editable)."""

    audit_share = models.DecimalField(
        "감사 표본 비율",
        max_digits=5,
        decimal_places=4,
        default=Decimal("0.02"),
        help_text="share of automatic decisions (auto-match and auto-reject) sampled into the queue",
    )
    audit_max_per_draw = models.PositiveIntegerField("1회 최대 표본 수", default=500)
    precision_target = models.DecimalField(
        "자동 매칭 정밀도 목표", max_digits=5, decimal_places=4, default=Decimal("0.99")
    )
    # With a perfect record the Wilson lower bound reaches 0.99 only after ~381 audits (z=1.96):
    # below that the bound is low whatever reviewers find, so pausing would not be evidence-driven.
    min_audit_sample = models.PositiveIntegerField("최소 감사 표본 수", default=400)
    confidence_level = models.DecimalField(
        "신뢰 수준", max_digits=4, decimal_places=3, default=Decimal("0.95")
    )
    qc_window_days = models.PositiveIntegerField("추정 기간(일)", default=90)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "검토 설정"
        verbose_name_plural = "검토 설정"

    def __str__(self) -> str:
        return f"표본 {self.audit_share:%} · 목표 {self.precision_target}"


class AuditSampleDraw(models.Model):
    """One sampling pass over automatic decisions made after the previous pass's watermark."""

    created_at = models.DateTimeField()
    since = models.DateTimeField(null=True, blank=True)
    until = models.DateTimeField()
    share = models.DecimalField(max_digits=5, decimal_places=4)
    candidates = models.PositiveIntegerField(default=0)
    sampled_auto = models.PositiveIntegerField(default=0)
    sampled_reject = models.PositiveIntegerField(default=0)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-created_at"]


class ThresholdChange(models.Model):
    """Audit row for a threshold version saved from the simulator, with what the simulation predicted."""

    threshold_set = models.OneToOneField(ThresholdSet, on_delete=models.PROTECT, related_name="review_change")
    previous = models.ForeignKey(ThresholdSet, null=True, on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    note = models.CharField(max_length=300, blank=True, default="")
    simulation = models.JSONField(default=dict)

    class Meta:
        ordering = ["-created_at"]
