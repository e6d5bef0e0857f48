"""Pricing: policies, proposals, applied changes, the append-only audit log, observations, webhooks.

Money is integer KRW everywhere; percentages are Decimal numbers of percent (``Decimal("5.00")`` is 5 %).
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from matcher.models import Listing, Match, Product

PERCENT: dict[str, Any] = {"max_digits": 5, "decimal_places": 2, "validators": [MinValueValidator(Decimal("0"))]}


class PricingPolicy(models.Model):
    """One layer of the pricing rules.

    Layers stack field by field: SKU over brand over category over the global row over the code
    defaults (``pricing.rules.DEFAULTS``). A blank field (NULL) inherits from the layer below, so a
    SKU policy can change just the minimum margin and keep everything else.
    """

    class Scope(models.TextChoices):
        GLOBAL = "global", "전체 global"
        CATEGORY = "category", "카테고리 category"
        BRAND = "brand", "브랜드 brand"
        SKU = "sku", "SKU"

    class UndercutMode(models.TextChoices):
        AMOUNT = "amount", "금액 KRW"
        PERCENT = "percent", "비율 %"

    class Rounding(models.IntegerChoices):
        ONE = 1, "1원"
        TEN = 10, "10원"
        HUNDRED = 100, "100원"
        THOUSAND = 1000, "1,000원"

    scope = models.CharField(max_length=10, choices=Scope.choices)
    key = models.CharField(
        max_length=120, blank=True, default="", help_text="카테고리명, 브랜드명 또는 SKU (전체는 비워 둠)"
    )
    active = models.BooleanField(default=True)
    note = models.CharField(max_length=300, blank=True, default="")

    undercut_mode = models.CharField(max_length=10, choices=UndercutMode.choices, null=True, blank=True)  # noqa: DJ001 (NULL: inherit from the layer above)
    undercut_amount = models.PositiveIntegerField("차감 금액 (KRW)", null=True, blank=True)
    undercut_percent = models.DecimalField(
        "차감 비율 (%)", null=True, blank=True, max_digits=5, decimal_places=2,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("50"))],
    )
    rounding = models.PositiveIntegerField("내림 단위 (KRW)", choices=Rounding.choices, null=True, blank=True)
    min_margin_percent = models.DecimalField("최소 마진 (%)", null=True, blank=True, **PERCENT)
    max_change_percent = models.DecimalField("1회 최대 변동 (%)", null=True, blank=True, **PERCENT)
    max_daily_change_percent = models.DecimalField("24시간 최대 변동 (%)", null=True, blank=True, **PERCENT)
    include_shipping = models.BooleanField("경쟁사 배송비 포함", null=True, blank=True)
    stale_after_hours = models.PositiveIntegerField("미확인 기준 (시간)", null=True, blank=True)
    raise_when_cheapest_rises = models.BooleanField("최저가 상승 시 인상", null=True, blank=True)
    raise_ceiling_price = models.PositiveIntegerField("인상 상한가 (KRW)", null=True, blank=True)
    raise_ceiling_markup_percent = models.DecimalField(
        "인상 상한 = 원가 × (1 + %)", null=True, blank=True, **PERCENT
    )
    auto_apply = models.BooleanField("자동 적용", null=True, blank=True)
    auto_apply_max_change_percent = models.DecimalField("자동 적용 최대 변동 (%)", null=True, blank=True, **PERCENT)

    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["scope", "key"]
        verbose_name = "가격 정책 pricing policy"
        verbose_name_plural = "가격 정책 pricing policies"
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="pricing_policy_unique_scope_key"),
            models.CheckConstraint(
                condition=(models.Q(scope="global", key="") | (~models.Q(scope="global") & ~models.Q(key=""))),
                name="pricing_policy_key_matches_scope",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_scope_display()} {self.key}".strip()

    def clean(self) -> None:
        if self.scope == self.Scope.GLOBAL and self.key:
            raise ValidationError({"key": "전체 정책에는 키를 비워 두세요."})
        if self.scope != self.Scope.GLOBAL and not self.key:
            raise ValidationError({"key": "카테고리·브랜드·SKU 정책에는 키가 필요합니다."})


class PricingRun(models.Model):
    """A batch of re-pricing (a match run's follow-up, an admin's "reprice all"); rolled back as one."""

    cause = models.CharField(max_length=200)
    product_ids = models.JSONField(default=list, blank=True)
    evaluated = models.PositiveIntegerField(default=0)
    proposed = models.PositiveIntegerField(default=0)
    applied = models.PositiveIntegerField(default=0)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    rolled_back_at = models.DateTimeField(null=True, blank=True)
    rolled_back_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"run #{self.pk} {self.cause}"


class RepricingState(models.Model):
    """What the last evaluation of a SKU saw, so an evaluation with nothing changed writes nothing."""

    product = models.OneToOneField(Product, on_delete=models.CASCADE, related_name="repricing_state")
    fingerprint = models.CharField(max_length=64, help_text="policy, cost, floor inputs and counted listings")
    price = models.PositiveIntegerField(help_text="our price when the fingerprint was taken, KRW")
    evaluated_at = models.DateTimeField()
    # Set when a limit cut a move short: the move may continue once the 24-hour window has passed.
    retry_after = models.DateTimeField(null=True, blank=True, db_index=True)


class CompetitorPriceObservation(models.Model):
    """The cheapest confirmed, fresh competitor price one evaluation saw; the history chart's second line.

    Written only when the evaluation's inputs changed, so the series has a point per real change.
    """

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="price_observations")
    observed_at = models.DateTimeField(db_index=True)
    cheapest_total = models.PositiveIntegerField(null=True, blank=True, help_text="KRW; null: none counted")
    cheapest_listing = models.ForeignKey(Listing, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    cheapest_mall = models.CharField(max_length=60, blank=True, default="")
    counted_listings = models.PositiveIntegerField(default=0)
    our_price = models.PositiveIntegerField(help_text="our price after this evaluation, KRW")
    cause = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["product_id", "observed_at", "id"]
        indexes = [models.Index(fields=["product", "observed_at"], name="pricing_obs_product_time")]


class PriceProposal(models.Model):
    """A price the rules want, with why; applied automatically within the policy's limits or by an admin."""

    class Status(models.TextChoices):
        PENDING = "pending", "승인 대기 pending"
        APPLIED = "applied", "적용됨 applied"
        REJECTED = "rejected", "거절됨 rejected"
        SUPERSEDED = "superseded", "대체됨 superseded"
        ROLLED_BACK = "rolled_back", "되돌림 rolled back"

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="price_proposals")
    run = models.ForeignKey(PricingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="proposals")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING, db_index=True)
    cause = models.CharField(max_length=200, blank=True, default="")
    old_price = models.PositiveIntegerField()
    new_price = models.PositiveIntegerField()
    floor = models.PositiveIntegerField(default=0)
    target = models.PositiveIntegerField(null=True, blank=True, help_text="the undercut price before limits")
    # The listing followed, with its numbers at the time: a listing's price moves on, the reason must not.
    followed_listing = models.ForeignKey(Listing, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    followed_match = models.ForeignKey(Match, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    followed_mall = models.CharField(max_length=60, blank=True, default="")
    followed_title = models.CharField(max_length=500, blank=True, default="")
    followed_price = models.PositiveIntegerField(null=True, blank=True)
    followed_shipping_fee = models.PositiveIntegerField(null=True, blank=True)
    limits_hit = models.JSONField(default=list, blank=True)  # e.g. ["floor", "max_change"]
    notes = models.JSONField(default=list, blank=True)  # Korean sentences: the explanation
    policy = models.JSONField(default=dict, blank=True)  # the resolved policy values used
    auto_eligible = models.BooleanField(default=False)
    held_reason = models.CharField(max_length=300, blank=True, default="")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["product", "status"], name="pricing_proposal_prod_status")]

    def __str__(self) -> str:
        return f"{self.product_id}: {self.old_price} → {self.new_price} ({self.status})"

    @property
    def change_percent(self) -> Decimal:
        if not self.old_price:
            return Decimal("0")
        return ((Decimal(self.new_price) - self.old_price) * 100 / self.old_price).quantize(Decimal("0.01"))

    @property
    def followed_total(self) -> int | None:
        if self.followed_price is None:
            return None
        return self.followed_price + (self.followed_shipping_fee or 0)


class PriceChange(models.Model):
    """A change to Product.price that happened: applying a proposal, rolling one back, or the shop's
    own catalogue import carrying a new price."""

    class Kind(models.TextChoices):
        APPLY = "apply", "적용 apply"
        ROLLBACK = "rollback", "되돌림 rollback"
        IMPORT = "import", "가져오기 import"

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="price_changes")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    old_price = models.PositiveIntegerField()
    new_price = models.PositiveIntegerField()
    reason = models.TextField()
    proposal = models.ForeignKey(PriceProposal, null=True, blank=True, on_delete=models.SET_NULL, related_name="changes")
    run = models.ForeignKey(PricingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="changes")
    reverts = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reverted_by"
    )
    automatic = models.BooleanField(default=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["product", "created_at"], name="pricing_change_prod_time")]

    def __str__(self) -> str:
        return f"{self.product_id}: {self.old_price} → {self.new_price} ({self.kind})"


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):  # noqa: ANN003
        raise ValidationError("감사 기록은 수정할 수 없습니다 (append-only).")

    def delete(self):
        raise ValidationError("감사 기록은 삭제할 수 없습니다 (append-only).")


class PriceAuditEntry(models.Model):
    """Append-only: every applied change, rejection and rollback, with who and why.

    Rows are never updated or deleted: the model refuses it and a database trigger (migration 0002)
    refuses it too, except for a related row's deletion setting a foreign key to NULL — the
    snapshots (SKU, prices, match) keep the entry readable after that.
    """

    class Action(models.TextChoices):
        APPLIED = "applied", "가격 적용"
        REJECTED = "rejected", "제안 거절"
        ROLLED_BACK = "rolled_back", "변경 되돌림"
        RUN_ROLLED_BACK = "run_rolled_back", "실행 전체 되돌림"
        IMPORTED = "imported", "카탈로그 가격 반영"

    action = models.CharField(max_length=20, choices=Action.choices)
    product = models.ForeignKey(Product, null=True, on_delete=models.SET_NULL, related_name="+")
    sku = models.CharField(max_length=64)
    old_price = models.PositiveIntegerField()
    new_price = models.PositiveIntegerField()
    reason = models.TextField()
    cause = models.CharField(max_length=200, blank=True, default="")
    proposal = models.ForeignKey(PriceProposal, null=True, on_delete=models.SET_NULL, related_name="+")
    change = models.ForeignKey(PriceChange, null=True, on_delete=models.SET_NULL, related_name="+")
    run = models.ForeignKey(PricingRun, null=True, on_delete=models.SET_NULL, related_name="+")
    match = models.ForeignKey(Match, null=True, on_delete=models.SET_NULL, related_name="+")
    # The decision behind the match as it stood when the price moved: status, bucket, human or not.
    match_snapshot = models.JSONField(default=dict, blank=True)
    automatic = models.BooleanField(default=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "가격 감사 기록 price audit entry"
        verbose_name_plural = "가격 감사 기록 price audit log"

    def save(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        if self.pk is not None:
            raise ValidationError("감사 기록은 수정할 수 없습니다 (append-only).")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):  # noqa: ANN002, ANN003
        raise ValidationError("감사 기록은 삭제할 수 없습니다 (append-only).")


class WebhookDelivery(models.Model):
    """An outbox row for the shop's upload automation: written with the change, sent after commit."""

    class State(models.TextChoices):
        PENDING = "pending", "대기"
        DELIVERED = "delivered", "전송됨"
        FAILED = "failed", "실패"

    change = models.ForeignKey(PriceChange, on_delete=models.CASCADE, related_name="webhook_deliveries")
    url = models.URLField(max_length=2000)
    payload = models.JSONField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
