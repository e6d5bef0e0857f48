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

from matcher.models import (
    AppendOnlyModel,
    AppendOnlyQuerySet,
    Listing,
    Match,
    Product,
    audit_changes,
    audit_changes_text,
)
from pricing import rules
from pricing.alerts.models import Alert, AlertKind, AlertRule  # noqa: F401 - registered with this app


def _percent(high: int) -> dict[str, Any]:
    """A percentage field between 0 and `high` (the Korean message names the range)."""
    message = f"0에서 {high} 사이의 값이어야 합니다 (percent 0–{high})."
    return {
        "max_digits": 5,
        "decimal_places": 2,
        "validators": [MinValueValidator(Decimal("0"), message), MaxValueValidator(Decimal(high), message)],
    }


# A move limit is a share of the price (≤ 100 %); a margin or markup is a share of the cost and may exceed it.
CHANGE_PERCENT = _percent(100)
MARKUP_PERCENT = _percent(500)


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
    min_margin_percent = models.DecimalField("최소 마진 (%)", null=True, blank=True, **MARKUP_PERCENT)
    max_change_percent = models.DecimalField("1회 최대 변동 (%)", null=True, blank=True, **CHANGE_PERCENT)
    max_daily_change_percent = models.DecimalField("24시간 최대 변동 (%)", null=True, blank=True, **CHANGE_PERCENT)
    include_shipping = models.BooleanField("경쟁사 배송비 포함", null=True, blank=True)
    stale_after_hours = models.PositiveIntegerField("미확인 기준 (시간)", null=True, blank=True)
    raise_when_cheapest_rises = models.BooleanField("최저가 상승 시 인상", null=True, blank=True)
    raise_ceiling_price = models.PositiveIntegerField("인상 상한가 (KRW)", null=True, blank=True)
    raise_ceiling_markup_percent = models.DecimalField(
        "인상 상한 = 원가 × (1 + %)", null=True, blank=True, **MARKUP_PERCENT
    )
    auto_apply = models.BooleanField("자동 적용", null=True, blank=True)
    auto_apply_max_change_percent = models.DecimalField(
        "자동 적용 최대 변동 (%)", null=True, blank=True, **CHANGE_PERCENT
    )

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
        """The rules a policy row must satisfy before it is saved (the admin's form and
        `pricing.services.policy_save` both run it): a key that fits the scope and names something in
        the catalogue, and an auto-apply limit no larger than the change limits it ends up under."""
        if self.scope == self.Scope.GLOBAL and self.key:
            raise ValidationError({"key": "전체 정책에는 키를 비워 두세요."})
        if self.scope != self.Scope.GLOBAL and not self.key:
            raise ValidationError({"key": "카테고리·브랜드·SKU 정책에는 키가 필요합니다."})
        if self.scope in CATALOGUE_FIELD and self._key_is_new():
            self._check_key_exists()
        if self.active:
            self._check_limits()

    def audit_values(self) -> dict[str, Any]:
        """What the policy audit records, field by field, as JSON values (Decimals as their text)."""
        values: dict[str, Any] = {}
        for name in AUDITED_POLICY_FIELDS:
            value = getattr(self, name)
            if isinstance(value, Decimal):
                # As stored ("5.00"), so a form's "5" is no change.
                places = self._meta.get_field(name).decimal_places  # type: ignore[union-attr]
                value = str(value.quantize(Decimal(1).scaleb(-places)))
            values[name] = value
        return values

    def _key_is_new(self) -> bool:
        # A row whose SKU has since left the catalogue can still be edited or switched off.
        if self._state.adding or self.pk is None:
            return True
        saved = PricingPolicy.objects.filter(pk=self.pk).values_list("scope", "key").first()
        return saved != (self.scope, self.key)

    def _check_key_exists(self) -> None:
        field, label = CATALOGUE_FIELD[self.scope]
        if Product.objects.filter(**{field: self.key}).exists():
            return
        message = f"카탈로그에 없는 {label}입니다 (unknown {self.scope}: {self.key})."
        near = Product.objects.filter(**{f"{field}__iexact": self.key}).values_list(field, flat=True).first()
        if near:
            message += f" 대소문자까지 같아야 합니다: '{near}'"
        raise ValidationError({"key": message})

    def _check_limits(self) -> None:
        """Auto-apply limit ≤ the per-change and 24-hour limits, each resolved through inheritance for
        every SKU this row reaches (SKU over brand over category over global over the code defaults)."""
        layers = {(p.scope, p.key): p for p in PricingPolicy.objects.filter(active=True).exclude(pk=self.pk)}
        layers.pop((self.scope, self.key), None)
        layers[(self.scope, self.key)] = self
        for sku, category, brand in self._reached(layers):
            chain = [
                layers.get((self.Scope.GLOBAL, "")),
                layers.get((self.Scope.CATEGORY, category)) if category else None,
                layers.get((self.Scope.BRAND, brand)) if brand else None,
                layers.get((self.Scope.SKU, sku)) if sku else None,
            ]
            values, sources = resolve_policy(chain)
            auto = values["auto_apply_max_change_percent"]
            for limit in ("max_change_percent", "max_daily_change_percent"):
                if auto is not None and values[limit] is not None and auto > values[limit]:
                    where = _where(sku, category, brand)
                    message = (
                        f"자동 적용 최대 변동 {rules.pct(auto)}({sources['auto_apply_max_change_percent']})가 "
                        f"{rules.FIELD_LABELS[limit]} {rules.pct(values[limit])}({sources[limit]})보다 큽니다{where}. "
                        "자동 적용 한도는 변동 한도 이하여야 합니다 (auto-apply limit above the change limit)."
                    )
                    own = [f for f in ("auto_apply_max_change_percent", limit) if getattr(self, f) is not None]
                    raise ValidationError({own[0]: message} if own else message)

    def _reached(self, layers: dict[tuple[str, str], PricingPolicy]) -> set[tuple[str, str, str]]:
        """(sku, category, brand) for the kinds of SKU this row applies to: one entry per SKU that has a
        policy of its own, one per (category, brand) for the rest. 2 queries."""
        products = Product.objects.all()
        if self.scope in CATALOGUE_FIELD:
            products = products.filter(**{CATALOGUE_FIELD[self.scope][0]: self.key})
        own = [key for scope, key in layers if scope == self.Scope.SKU]
        reached = set(products.filter(sku__in=own).values_list("sku", "category", "brand"))
        reached |= {("", c, b) for c, b in products.exclude(sku__in=own).values_list("category", "brand").distinct()}
        if not reached and self.scope == self.Scope.GLOBAL:
            reached.add(("", "", ""))  # an empty catalogue: the global row over the defaults
        return reached


# Scope → (the Product field its key names, its Korean name).
CATALOGUE_FIELD: dict[str, tuple[str, str]] = {
    PricingPolicy.Scope.SKU: ("sku", "SKU"),
    PricingPolicy.Scope.BRAND: ("brand", "브랜드"),
    PricingPolicy.Scope.CATEGORY: ("category", "카테고리"),
}
SCOPE_LABEL = {"global": "전체", "category": "카테고리", "brand": "브랜드", "sku": "SKU"}
AUDITED_POLICY_FIELDS = ("scope", "key", "active", "note", *rules.POLICY_FIELDS)
POLICY_LABELS = {"scope": "범위", "key": "키", "active": "사용", "note": "메모", **rules.FIELD_LABELS}


def resolve_policy(chain: list[PricingPolicy | None]) -> tuple[dict[str, Any], dict[str, str]]:
    """Values and their sources, field by field: later layers in `chain` over earlier ones over the defaults."""
    values: dict[str, Any] = dict(rules.DEFAULTS)
    sources = {name: rules.DEFAULT_SOURCE for name in rules.POLICY_FIELDS}
    for layer in chain:
        if layer is None:
            continue
        for name in rules.POLICY_FIELDS:
            value = getattr(layer, name)
            if value is not None:
                values[name] = value
                sources[name] = f"{SCOPE_LABEL[layer.scope]} {layer.key}".strip() + " 정책"
    return values, sources


def _where(sku: str, category: str, brand: str) -> str:
    parts = [f"SKU {sku}"] if sku else [p for p in (f"카테고리 {category}" if category else "", f"브랜드 {brand}" if brand else "") if p]
    return f" ({' · '.join(parts)})" if parts else ""


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


class PolicyAuditEntry(AppendOnlyModel):
    """Append-only: who created, changed, switched off or deleted a pricing policy, with its values before
    and after (field by field, JSON). Written by `pricing.services.policy_save`/`policy_delete` in the
    edit's transaction; a database trigger (migration 0003) refuses updates and deletes, except the
    policy or user foreign key being nulled when that row goes — the scope, key and values stay."""

    class Action(models.TextChoices):
        CREATED = "created", "정책 생성"
        UPDATED = "updated", "정책 수정"
        DEACTIVATED = "deactivated", "정책 사용 중지"
        ACTIVATED = "activated", "정책 다시 사용"
        DELETED = "deleted", "정책 삭제"

    action = models.CharField("작업", max_length=12, choices=Action.choices)
    policy = models.ForeignKey(PricingPolicy, null=True, on_delete=models.SET_NULL, related_name="audit_entries")
    scope = models.CharField("범위", max_length=10, choices=PricingPolicy.Scope.choices)
    key = models.CharField("키", max_length=120, blank=True, default="")
    before = models.JSONField("이전 값", default=dict, blank=True)
    after = models.JSONField("이후 값", default=dict, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+", verbose_name="누가"
    )
    created_at = models.DateTimeField("언제", auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "정책 변경 기록 policy audit entry"
        verbose_name_plural = "정책 변경 기록 policy audit log"

    def changes(self) -> dict[str, tuple[Any, Any]]:
        return audit_changes(self.before, self.after)

    def changes_text(self) -> str:
        return audit_changes_text(self.changes(), labels=POLICY_LABELS)


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


class AutoPricingHalt(AppendOnlyModel):
    """The operator's switch "자동 가격 변경 중지", kept as its own history: the newest row is the state.

    While halted, every change the rules would apply by themselves (auto-apply, a correction) waits as a
    proposal for an admin; every page says so. Switching is `pricing.services.auto_pricing_halt_set`.
    """

    halted = models.BooleanField("중지")
    reason = models.CharField("사유", max_length=300, blank=True, default="")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+", verbose_name="누가"
    )
    created_at = models.DateTimeField("언제", auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "자동 가격 변경 중지 기록"
        verbose_name_plural = "자동 가격 변경 중지 기록"
