"""Admin: each kind of alert switched on or off, with its threshold (admins only), saved through
``services.alert_rule_save`` (who and when on the row; the admin's history keeps each edit)."""
from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from config.roles import is_admin
from pricing.alerts import services
from pricing.alerts.models import AlertRule


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = ["kind", "enabled", "threshold", "threshold_in_force", "updated_by", "updated_at"]
    list_editable = ["enabled", "threshold"]
    readonly_fields = ["kind", "threshold_in_force", "updated_by", "updated_at"]
    fields = ["kind", "enabled", "threshold", "threshold_in_force", "updated_by", "updated_at"]

    @admin.display(description="적용 중인 기준값")
    def threshold_in_force(self, obj: AlertRule) -> str:
        value = obj.threshold_value
        return "—" if value is None else f"{value} {obj.threshold_unit}"

    # One row per kind, made by the migration: nothing to add or delete.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_admin(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_admin(request.user)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_admin(request.user)

    def save_model(self, request: HttpRequest, obj: AlertRule, form: Any, change: bool) -> None:
        services.alert_rule_save(rule=obj, user=request.user)
