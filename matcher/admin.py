from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Q
from django.utils.html import format_html, format_html_join

from matcher import models
from matcher.causes import Cause, CauseKind
from matcher.services import threshold_set_create, thresholds_validate
from matcher.signals import catalogue_changed_on_commit


@admin.register(models.ImageFile)
class ImageFileAdmin(admin.ModelAdmin):
    list_display = ["sha256", "width", "height", "format", "bytes", "analysed_with", "created_at"]
    search_fields = ["sha256"]
    list_filter = ["format", "analysed_with"]
    readonly_fields = ["preview"]

    @admin.display(description="미리보기")
    def preview(self, obj: models.ImageFile) -> str:
        return format_html('<img src="{}" style="max-height:240px">', obj.file.url) if obj.file else "-"


class ProductImageInline(admin.TabularInline):
    model = models.ProductImage
    extra = 0
    fields = ["position", "source", "image", "fetch_status", "fetch_error", "fetch_attempts"]
    readonly_fields = ["image", "fetch_status", "fetch_error", "fetch_attempts"]


class FloorFilter(admin.SimpleListFilter):
    title = "하한가"
    parameter_name = "floor"

    def lookups(self, request, model_admin):  # noqa: ANN001, ANN201 - Django's signature
        return [("none", "하한가 없음 (원가·최저가 모두 비어 있음)"), ("set", "하한가 있음")]

    def queryset(self, request, queryset):  # noqa: ANN001, ANN201
        no_floor = Q(cost__isnull=True, min_price__isnull=True)
        if self.value() == "none":
            return queryset.filter(no_floor)
        if self.value() == "set":
            return queryset.exclude(no_floor)
        return queryset


@admin.register(models.Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["sku", "product_number", "brand", "title", "category", "colour", "price", "active"]
    search_fields = ["sku", "product_number", "product_number_norm", "title", "brand"]
    list_filter = ["active", FloorFilter, "category", "brand"]
    inlines = [ProductImageInline]

    def get_readonly_fields(self, request, obj=None):  # noqa: ANN001, ANN201
        # Our price moves only through the pricing rules and the catalogue import, both audited.
        return ["price"] if obj is not None else []

    def save_model(self, request, obj, form, change) -> None:  # noqa: ANN001
        super().save_model(request, obj, form, change)
        if not change or {"cost", "min_price", "active"} & set(form.changed_data):
            # The floor may have moved above our price: re-price now, not at the next full recalculation.
            catalogue_changed_on_commit(product_ids=[obj.pk], cause=Cause(CauseKind.PRODUCT_ADMIN, obj.pk).text, actor_id=request.user.pk)


class ListingImageInline(admin.TabularInline):
    model = models.ListingImage
    extra = 0
    fields = ["position", "source", "image", "fetch_status", "fetch_error", "fetch_attempts"]
    readonly_fields = ["image", "fetch_status", "fetch_error", "fetch_attempts"]


@admin.register(models.Listing)
class ListingAdmin(admin.ModelAdmin):
    list_display = ["id", "product", "mall", "seller", "title", "price", "shipping_fee", "last_seen"]
    search_fields = ["product__sku", "product__product_number", "product_number", "title", "mall", "seller"]
    list_filter = ["mall"]
    list_select_related = ["product"]
    raw_id_fields = ["product"]
    inlines = [ListingImageInline]


@admin.register(models.ListingImage)
class ListingImageAdmin(admin.ModelAdmin):
    list_display = ["id", "listing", "source", "fetch_status", "fetch_error", "fetch_attempts"]
    list_filter = ["fetch_status"]
    search_fields = ["source", "listing__product__sku", "listing__mall"]
    raw_id_fields = ["listing", "image"]


@admin.register(models.ProductImage)
class ProductImageAdmin(admin.ModelAdmin):
    list_display = ["id", "product", "source", "fetch_status", "fetch_error", "fetch_attempts"]
    list_filter = ["fetch_status"]
    search_fields = ["source", "product__sku"]
    raw_id_fields = ["product", "image"]


@admin.register(models.Region)
class RegionAdmin(admin.ModelAdmin):
    list_display = ["id", "image", "embedder", "index", "kind", "cutout"]
    list_filter = ["embedder", "kind", "cutout"]
    search_fields = ["image__sha256"]
    raw_id_fields = ["image"]
    exclude = ["embedding"]


@admin.register(models.AttributeTerm)
class AttributeTermAdmin(admin.ModelAdmin):
    list_display = ["group", "value", "term", "active"]
    list_filter = ["group", "active"]
    search_fields = ["term", "value"]
    list_editable = ["active"]


class ThresholdSetForm(forms.ModelForm):
    """The admin's "add" form: the pair must pass the one rule before the service is asked."""

    class Meta:
        model = models.ThresholdSet
        fields = ["auto_threshold", "review_threshold", "policy", "note"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("auto_threshold") is not None and data.get("review_threshold") is not None:
            thresholds_validate(auto_threshold=data["auto_threshold"], review_threshold=data["review_threshold"])
        return data


@admin.register(models.ThresholdSet)
class ThresholdSetAdmin(admin.ModelAdmin):
    """Versions are the thresholds' audit log: added through the service, never changed or deleted."""

    form = ThresholdSetForm
    list_display = ["version", "auto_threshold", "review_threshold", "changes_display", "note", "created_by", "created_at"]
    list_select_related = ["created_by"]
    readonly_fields = ["version", "previous", "changes_display", "created_by", "created_at"]

    def has_change_permission(self, request, obj=None) -> bool:
        # Versions are immutable: decisions point at them. A change is a new version (services).
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # deleting the newest would silently bring back the one before, unaudited

    @admin.display(description="변경 내용 (이전 → 이후)")
    def changes_display(self, obj: models.ThresholdSet) -> str:
        return obj.changes_text()

    def save_model(self, request, obj, form, change) -> None:
        created = threshold_set_create(
            auto_threshold=obj.auto_threshold,
            review_threshold=obj.review_threshold,
            policy=obj.policy,
            note=obj.note,
            user=request.user,
        )
        obj.pk, obj.version = created.pk, created.version
        obj._state.adding = False


@admin.register(models.MatchRun)
class MatchRunAdmin(admin.ModelAdmin):
    list_display = ["id", "scope", "status", "listings_done", "listings_total", "failures", "created_at"]
    list_filter = ["status", "scope"]


@admin.register(models.Match)
class MatchAdmin(admin.ModelAdmin):
    list_display = ["id", "product", "listing", "bucket", "status", "confidence", "decided_by_human", "decided_at"]
    list_filter = ["bucket", "status", "decided_by_human", "listing__mall"]
    search_fields = ["product__sku", "product__product_number", "listing__mall", "listing__title"]
    list_select_related = ["product", "listing"]
    raw_id_fields = ["product", "listing", "run", "thresholds"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # decisions change through the review queue, which audits them


@admin.register(models.LlmVerdictRecord)
class LlmVerdictRecordAdmin(admin.ModelAdmin):
    list_display = ["id", "model", "prompt_version", "ok", "cost_usd", "batch", "created_at"]
    list_filter = ["model", "ok", "batch", "prompt_version"]
    search_fields = ["image_a", "image_b", "key"]


@admin.register(models.LlmBatchJob)
class LlmBatchJobAdmin(admin.ModelAdmin):
    """Batch API jobs; they change through matcher.llm (submit, poll, collect), never by hand."""

    list_display = ["id", "run", "model", "prompt_version", "state", "remote_name", "cost_usd", "created_at", "updated_at"]
    list_filter = ["state", "model", "prompt_version"]
    search_fields = ["remote_name"]
    raw_id_fields = ["run"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_add_permission(self, request) -> bool:
        return False


class ApiTokenForm(forms.ModelForm):
    scopes = forms.TypedMultipleChoiceField(
        choices=models.ApiToken.Scope.choices, widget=forms.CheckboxSelectMultiple, label="권한 (scopes)",
        help_text="ingest: 경쟁 상품을 올립니다. export: 바뀐 가격을 읽습니다.",
    )

    class Meta:
        model = models.ApiToken
        fields = ["name", "user", "active", "scopes", "expires_at"]


@admin.register(models.ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Scopes, expiry and deactivation are edited here; new tokens come from `manage.py create_api_token`,
    which prints the key once (the admin never sees a key, only its hash)."""

    form = ApiTokenForm
    list_display = ["name", "prefix", "user", "active", "scopes", "expires_at", "created_at", "last_used_at"]
    list_filter = ["active"]
    readonly_fields = ["key_hash", "prefix", "last_used_at"]

    def has_add_permission(self, request) -> bool:
        return False  # a token added here would have no key: create_api_token makes one


@admin.register(models.ImportReport)
class ImportReportAdmin(admin.ModelAdmin):
    """What an import did, read-only: the rows it refused and the rows it imported with a warning, by line."""

    list_display = ["id", "kind", "source", "status", "created", "updated", "unchanged", "failed", "warned", "user",
                    "created_at"]
    list_filter = ["kind", "status"]
    list_select_related = ["user"]
    readonly_fields = ("kind", "source", "user", "created_at", "status", "rows_total", "rows_done", "error",
                       "created", "updated", "unchanged", "failed", "errors_display", "warned", "warnings_display")
    fields = readonly_fields

    def has_add_permission(self, request) -> bool:  # noqa: ANN001 - imports make reports, people read them
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False

    @staticmethod
    def _lines(rows: list[dict], key: str) -> str:
        if not rows:
            return "-"
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "", "<li>{}행{}: {}</li>",
                ((r.get("line"), f" [{r['sku']}]" if r.get("sku") else "", "; ".join(r.get(key, []))) for r in rows),
            ),
        )

    @admin.display(description="거절된 행 (줄 번호)")
    def errors_display(self, obj: models.ImportReport) -> str:
        return self._lines(obj.errors, "errors")

    @admin.display(description="경고와 함께 가져온 행")
    def warnings_display(self, obj: models.ImportReport) -> str:
        return self._lines(obj.warnings, "warnings")
