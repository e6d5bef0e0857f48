"""Celery tasks of the pricing app: take ids, call one service, safe to run twice.

Each task imports its service inside its body: services import these tasks at the top to enqueue
them, so the import runs one way only. Every task is registered under an explicit name, which is
what the beat schedule (config/celery.py) and the broker messages carry.
"""

from __future__ import annotations

from celery import shared_task

from pricing.exceptions import AlertDeliveryError, WebhookDeliveryError

WEBHOOK_MAX_RETRIES = 6
ALERT_MAX_RETRIES = 5


@shared_task(name="pricing.tasks.reprice_product_task", acks_late=True)
def reprice_product_task(product_id: int, cause: str, actor_id: int | None = None) -> int | None:
    """Re-evaluate one SKU (after a review decision or a match run). Returns the proposal id, if any.

    actor_id: the user whose decision caused it (a reviewer); the change and its audit row name them."""
    from django.contrib.auth import get_user_model

    from pricing import services

    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id is not None else None
    proposal = services.reprice_product(product_id=product_id, cause=cause, user=actor)
    return proposal.pk if proposal else None


@shared_task(name="pricing.tasks.reprice_run_task", acks_late=True)
def reprice_run_task(run_id: int, start: int = 0) -> None:
    """One slice of a run; the next slice is its own message so no task nears the time limit."""
    from pricing import services

    following = services.pricing_run_execute(run_id=run_id, start=start)
    if following is not None:
        reprice_run_task.delay(run_id, following)


@shared_task(name="pricing.tasks.reprice_due_task")
def reprice_due_task() -> int:
    """Periodic (celery beat): continue moves a limit cut short, once their 24-hour window has passed."""
    from pricing import services

    return services.reprice_due()


@shared_task(
    name="pricing.tasks.deliver_webhook_task",
    bind=True,
    autoretry_for=(WebhookDeliveryError,),
    retry_backoff=30,  # 30 s, 60 s, 120 s, … with jitter
    retry_backoff_max=60 * 60,
    retry_jitter=True,
    max_retries=WEBHOOK_MAX_RETRIES,
)
def deliver_webhook_task(self, delivery_id: int) -> str:  # noqa: ANN001 - Celery's bound task
    from pricing import services

    final = self.request.retries >= WEBHOOK_MAX_RETRIES
    delivery = services.webhook_deliver(delivery_id=delivery_id, final_attempt=final)
    return delivery.state


@shared_task(name="pricing.tasks.webhook_redeliver_pending")
def webhook_redeliver_pending() -> int:
    """Periodic: re-enqueue deliveries whose first enqueue was lost (broker down at commit time)."""
    from pricing import services

    return services.webhooks_requeue_stuck()


@shared_task(name="pricing.tasks.money_at_risk_refresh_task", ignore_result=True)
def money_at_risk_refresh_task(product_id: int) -> int:
    """Re-rank a SKU's queued pairs after its matches changed."""
    from pricing import money_at_risk

    return money_at_risk.money_at_risk_refresh(product_id=product_id)


@shared_task(name="pricing.tasks.alerts_evaluate_task")
def alerts_evaluate_task() -> dict[str, int]:
    """Periodic (celery beat), and after each match run: open, keep or clear the alerts."""
    from pricing.alerts import services

    result = services.alerts_evaluate()
    return {"opened": len(result.opened), "cleared": len(result.cleared)}


@shared_task(
    name="pricing.tasks.alert_email_task",
    autoretry_for=(AlertDeliveryError,),
    retry_backoff=30,  # 30 s, 60 s, 120 s, … with jitter
    retry_backoff_max=30 * 60,
    retry_jitter=True,
    max_retries=ALERT_MAX_RETRIES,
)
def alert_email_task(alert_ids: list[int]) -> int:
    """E-mail new alerts (those not e-mailed yet); retried while the mail server fails."""
    from pricing.alerts import delivery

    return delivery.alerts_email_send(alert_ids=alert_ids)


@shared_task(
    name="pricing.tasks.alert_webhook_task",
    autoretry_for=(AlertDeliveryError,),
    retry_backoff=30,  # 30 s, 60 s, 120 s, … with jitter
    retry_backoff_max=30 * 60,
    retry_jitter=True,
    max_retries=ALERT_MAX_RETRIES,
)
def alert_webhook_task(alert_ids: list[int]) -> int:
    """POST new alerts (those not sent yet) to ALERT_WEBHOOK_URL; retried while it fails."""
    from pricing.alerts import delivery

    return delivery.alerts_webhook_send(alert_ids=alert_ids)
