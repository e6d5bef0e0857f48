from django.contrib import admin
from django.core.cache import cache

from review import models
from review.selectors import PAUSE_CACHE_KEY


@admin.register(models.ReviewSettings)
class ReviewSettingsAdmin(admin.ModelAdmin):
    """The QC settings row: share sampled, precision target and the evidence needed to pause pricing."""

    list_display = [
        "__str__",
        "audit_share",
        "precision_target",
        "min_audit_sample",
        "confidence_level",
        "qc_window_days",
        "updated_by",
        "updated_at",
    ]
    readonly_fields = ["updated_by", "updated_at"]

    def has_add_permission(self, request) -> bool:
        return not models.ReviewSettings.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        obj.updated_by = request.user
        super().save_model(request, obj, form, change)
        cache.delete(PAUSE_CACHE_KEY)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Audit rows are written by services only."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(models.ReviewDecision)
class ReviewDecisionAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "created_at",
        "user",
        "action",
        "reason",
        "match",
        "confidence",
        "bucket",
        "audit_item",
        "status_before",
        "status_after",
        "bulk",
        "thresholds_version",
    ]
    list_filter = ["action", "reason", "audit_item", "bucket", "bulk"]
    search_fields = ["user__username", "note", "match__product__sku"]
    date_hierarchy = "created_at"
    list_select_related = ["user"]


@admin.register(models.Claim)
class ClaimAdmin(ReadOnlyAdmin):
    list_display = ["id", "match", "user", "claimed_at", "expires_at", "released_at", "release_reason"]
    list_filter = ["release_reason"]
    list_select_related = ["user"]


@admin.register(models.ThresholdChange)
class ThresholdChangeAdmin(ReadOnlyAdmin):
    list_display = ["threshold_set", "previous", "user", "created_at", "note"]


@admin.register(models.AuditSampleDraw)
class AuditSampleDrawAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "since",
        "until",
        "share",
        "candidates",
        "sampled_auto",
        "sampled_reject",
        "user",
    ]
