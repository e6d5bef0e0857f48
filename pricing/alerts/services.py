"""Writes of the alerts: the periodic evaluation, acknowledging an alert, editing a kind's rule.

The evaluation opens an Alert for each condition that holds and has no open row, leaves open rows
alone while their condition holds (their text follows the figures, nothing is sent again), and clears
rows whose condition ended or whose kind was switched off. New alerts go out by e-mail and webhook
after commit, through tasks that retry.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from pricing.alerts import conditions
from pricing.alerts.models import Alert, AlertRule
from pricing.alerts.selectors import alert_rules
from pricing.tasks import alert_email_task, alert_webhook_task

log = logging.getLogger(__name__)

# Two evaluations at once (beat and a finished match run) take turns on this lock, so both never open
# the same alert (the partial unique index would refuse the second anyway).
_LOCK_KEY = 0x616C657274  # "alert"


@dataclass
class EvaluationResult:
    opened: list[int] = field(default_factory=list)
    cleared: list[int] = field(default_factory=list)
    failed_kinds: list[str] = field(default_factory=list)


def alerts_evaluate(*, now: datetime | None = None) -> EvaluationResult:
    """Check every switched-on kind and bring the open alerts in line with what holds now.

    A check that fails (say the QC estimate's cache is down) is logged and its kind's open alerts are
    left as they are: an unknown state neither opens nor clears anything.
    """
    now = now or timezone.now()
    result = EvaluationResult()
    found: dict[tuple[str, str], conditions.Condition] = {}
    for kind, rule in alert_rules().items():
        if not rule.enabled:
            continue
        try:
            holding = conditions.CHECKS[kind](rule, now)
        except Exception:  # noqa: BLE001 - one broken check must not stop the others
            log.exception("alert check %s failed", kind)
            result.failed_kinds.append(kind)
            continue
        for condition in holding:
            found[(condition.kind, condition.key)] = condition

    with transaction.atomic(durable=True):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        open_alerts = {(a.kind, a.subject_key): a for a in Alert.objects.filter(cleared_at__isnull=True)}
        ended = [a.pk for key, a in open_alerts.items() if key not in found and key[0] not in result.failed_kinds]
        Alert.objects.filter(pk__in=ended).update(cleared_at=now)
        result.cleared = ended
        changed = []
        for key, alert in open_alerts.items():
            still = found.get(key)
            if still is not None and still.message != alert.message:
                alert.message = still.message
                changed.append(alert)
        Alert.objects.bulk_update(changed, ["message"])
        new = Alert.objects.bulk_create([
            Alert(kind=c.kind, subject_key=c.key, message=c.message, product_id=c.product_id, opened_at=now)
            for key, c in found.items() if key not in open_alerts
        ])
        result.opened = [a.pk for a in new]
        if result.opened:
            ids = list(result.opened)
            transaction.on_commit(lambda: alerts_send(alert_ids=ids), robust=True)
    return result


def alerts_send(*, alert_ids: list[int]) -> None:
    """Enqueue the outward deliveries of new alerts: e-mail when switched on, the webhook when set."""
    if settings.ALERT_EMAIL_ENABLED:
        alert_email_task.delay(alert_ids)
    if settings.ALERT_WEBHOOK_URL:
        alert_webhook_task.delay(alert_ids)


@transaction.atomic
def alert_acknowledge(*, alert_id: int, user: Any) -> Alert:
    """Record who saw an alert (a merchandiser or an admin). The first acknowledgement stays; the alert
    stays open until its condition clears, but leaves the bell's count."""
    alert = Alert.objects.select_for_update().get(pk=alert_id)
    if alert.acknowledged_at is None:
        alert.acknowledged_by = user
        alert.acknowledged_at = timezone.now()
        alert.save(update_fields=["acknowledged_by", "acknowledged_at"])
    return alert


@transaction.atomic
def alert_rule_save(*, rule: AlertRule, user: Any) -> AlertRule:
    """Save a kind's switch and threshold (validated by AlertRule.clean) with who changed it and when;
    the Django admin's history keeps each edit's fields."""
    rule.full_clean()
    rule.updated_by = user
    rule.updated_at = timezone.now()
    rule.save()
    return rule
