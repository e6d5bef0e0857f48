"""Reads of the alerts: the rules in force, the bell's count and the list page. Fixed query counts."""
from __future__ import annotations

from django.core.paginator import Page, Paginator

from pricing.alerts.models import Alert, AlertKind, AlertRule

PER_PAGE = 50
OPEN = "open"
ALL = "all"


def alert_rules() -> dict[str, AlertRule]:
    """Every kind's rule, in the order of AlertKind: its row, or an unsaved one with the defaults. 1 query."""
    saved = {rule.kind: rule for rule in AlertRule.objects.select_related("updated_by")}
    return {kind: saved.get(kind) or AlertRule(kind=kind) for kind in AlertKind.values}


def alerts_unacknowledged_count() -> int:
    """The bell's number: open alerts nobody has acknowledged yet. 1 query."""
    return Alert.objects.filter(cleared_at__isnull=True, acknowledged_at__isnull=True).count()


def alerts_page(state: str, page_number: str | int | None) -> Page:
    """Open alerts (state "open"), or every alert newest first; 2 queries (count, page)."""
    alerts = Alert.objects.select_related("acknowledged_by", "product")
    if state != ALL:
        alerts = alerts.filter(cleared_at__isnull=True)
    return Paginator(alerts.order_by("-opened_at", "-id"), PER_PAGE).get_page(page_number)


def alert_row(alert_id: int) -> Alert:
    return Alert.objects.select_related("acknowledged_by", "product").get(pk=alert_id)
