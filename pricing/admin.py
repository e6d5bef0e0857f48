"""Admin: policies are edited here (admins only) through pricing.services, which audit each edit;
proposals, changes and both audit logs are read-only."""
from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join
from django.utils.timezone import localtime

from pricing import models, services
from pricing.alerts import admin as alerts_admin  # noqa: F401 - registers the alert rules' admin
from pricing.policy_preview import policy_preview

POLICY_HISTORY_ROWS = 20


@admin.register(models.PricingPolicy)
class PricingPolicyAdmin(admin.ModelAdmin):
    list_display = [
        "scope", "key", "active", "undercut_mode", "undercut_amount", "undercut_percent", "rounding",
        "min_margin_percent", "max_change_percent", "max_daily_change_percent", "auto_apply", "updated_at",
    ]
    list_filter = ["scope", "active", "auto_apply", "raise_when_cheapest_rises"]
    search_fields = ["key", "note"]
    readonly_fields = ["updated_by", "updated_at", "audit_history"]
    fieldsets = [
        (None, {"fields": ["scope", "key", "active", "note"], "description": "비워 둔 항목은 아래 단계(전체 → 기본값)를 따릅니다. SKU > 브랜드 > 카테고리 > 전체 순으로 항목별로 적용됩니다."}),
        ("차감·내림", {"fields": ["undercut_mode", "undercut_amount", "undercut_percent", "rounding"]}),
        ("하한가", {"fields": ["min_margin_percent"]}),
        ("변동 한도", {"fields": ["max_change_percent", "max_daily_change_percent"]}),
        ("경쟁 상품", {"fields": ["include_shipping", "stale_after_hours"]}),
        ("인상", {"fields": ["raise_when_cheapest_rises", "raise_ceiling_price", "raise_ceiling_markup_percent"]}),
        ("자동 적용", {"fields": ["auto_apply", "auto_apply_max_change_percent"]}),
        ("기록", {"fields": ["updated_by", "updated_at", "audit_history"]}),
    ]

    # Saving shows first what the edit would do on today's data (pricing/policy_preview.py); the preview
    # page re-posts the same form with `_confirm_preview`, which saves. An invalid form shows its errors.
    def changeform_view(
        self, request: HttpRequest, object_id: str | None = None, form_url: str = "", extra_context=None  # noqa: ANN001
    ) -> HttpResponse:
        if request.method != "POST" or "_confirm_preview" in request.POST:
            return super().changeform_view(request, object_id, form_url, extra_context)
        obj = self.get_object(request, unquote(object_id)) if object_id else None
        if object_id and obj is None:
            return super().changeform_view(request, object_id, form_url, extra_context)  # the admin's "not found"
        allowed = self.has_change_permission(request, obj) if obj is not None else self.has_add_permission(request)
        if not allowed:
            raise PermissionDenied
        form = self.get_form(request, obj, change=obj is not None)(request.POST, request.FILES, instance=obj)
        if not form.is_valid():
            return super().changeform_view(request, object_id, form_url, extra_context)
        edited = form.save(commit=False)  # in memory only: the preview writes nothing
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "정책 변경 미리보기",
            "policy": edited,
            "preview": policy_preview(policy=edited),
            "posted": [(name, value) for name, values in request.POST.lists() if name != "csrfmiddlewaretoken"
                       for value in values],
            "cancel_url": request.path,
        }
        return TemplateResponse(request, "admin/pricing/pricingpolicy/preview.html", context)

    # Every write goes through the service, which validates again and writes the audit row in the
    # admin's transaction.
    def save_model(self, request, obj, form, change):  # noqa: ANN001
        services.policy_save(policy=obj, user=request.user)

    def delete_model(self, request, obj):  # noqa: ANN001
        services.policy_delete(policy=obj, user=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for policy in queryset:
            services.policy_delete(policy=policy, user=request.user)

    @admin.display(description="변경 기록")
    def audit_history(self, obj: models.PricingPolicy) -> str:
        if obj.pk is None:
            return "—"
        entries = obj.audit_entries.select_related("user")[:POLICY_HISTORY_ROWS]
        if not entries:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (localtime(e.created_at).strftime("%Y-%m-%d %H:%M"), e.get_action_display(), e.user or "—", e.changes_text())
                for e in entries
            ),
        )
        return format_html(
            "<table><thead><tr><th>언제</th><th>작업</th><th>누가</th><th>변경 내용 (이전 → 이후)</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )


class ReadOnlyAdmin(admin.ModelAdmin):
    """History is written by pricing.services only."""

    def has_add_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False


@admin.register(models.PriceProposal)
class PriceProposalAdmin(ReadOnlyAdmin):
    list_display = ["id", "product", "status", "old_price", "new_price", "floor", "followed_mall", "cause", "created_at"]
    list_filter = ["status", "auto_eligible", "created_at"]
    search_fields = ["product__sku", "product__title", "followed_mall", "cause"]
    list_select_related = ["product"]
    date_hierarchy = "created_at"


@admin.register(models.PriceChange)
class PriceChangeAdmin(ReadOnlyAdmin):
    list_display = ["id", "product", "kind", "old_price", "new_price", "automatic", "user", "created_at"]
    list_filter = ["kind", "automatic", "created_at"]
    search_fields = ["product__sku", "reason"]
    list_select_related = ["product", "user"]
    date_hierarchy = "created_at"


@admin.register(models.PriceAuditEntry)
class PriceAuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "action", "sku", "old_price", "new_price", "automatic", "user", "cause"]
    list_filter = ["action", "automatic", "created_at"]
    search_fields = ["sku", "reason", "cause"]
    list_select_related = ["user"]
    date_hierarchy = "created_at"


@admin.register(models.PolicyAuditEntry)
class PolicyAuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "action", "scope", "key", "user", "changes_display"]
    list_filter = ["action", "scope", "created_at"]
    search_fields = ["key", "user__username"]
    list_select_related = ["user"]
    date_hierarchy = "created_at"

    @admin.display(description="변경 내용 (이전 → 이후)")
    def changes_display(self, obj: models.PolicyAuditEntry) -> str:
        return obj.changes_text()


@admin.register(models.AutoPricingHalt)
class AutoPricingHaltAdmin(ReadOnlyAdmin):
    """Switching is done on the pricing page (services.auto_pricing_halt_set); here the history is read."""

    list_display = ["id", "created_at", "halted", "user", "reason"]
    list_select_related = ["user"]


@admin.register(models.PricingRun)
class PricingRunAdmin(ReadOnlyAdmin):
    list_display = ["id", "cause", "evaluated", "proposed", "applied", "requested_by", "created_at", "rolled_back_at"]
    list_filter = ["created_at"]
    search_fields = ["cause"]


@admin.register(models.CompetitorPriceObservation)
class CompetitorPriceObservationAdmin(ReadOnlyAdmin):
    list_display = ["id", "product", "observed_at", "cheapest_total", "cheapest_mall", "counted_listings", "our_price"]
    list_filter = ["observed_at"]
    search_fields = ["product__sku", "cheapest_mall"]
    list_select_related = ["product"]


@admin.register(models.WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["id", "change", "state", "attempts", "last_status_code", "created_at", "delivered_at"]
    list_filter = ["state"]
    search_fields = ["url", "last_error"]
