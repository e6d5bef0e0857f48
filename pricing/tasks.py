"""Celery tasks of the pricing app: take ids, call one service, safe to run twice."""
from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from pricing import services


@shared_task(acks_late=True)
def reprice_product_task(product_id: int, cause: str) -> int | None:
    """Re-evaluate one SKU (enqueued after a review decision or a match run). Returns the proposal id, if any."""
    proposal = services.reprice_product(product_id=product_id, cause=cause)
    return proposal.pk if proposal else None


@shared_task(acks_late=True)
def reprice_run_task(run_id: int, start: int = 0) -> None:
    """One slice of a run; the next slice is its own message so no task nears the time limit."""
    following = services.pricing_run_execute(run_id=run_id, start=start)
    if following is not None:
        reprice_run_task.delay(run_id, following)


@shared_task
def reprice_due_task() -> int:
    """Periodic (celery beat): continue moves a limit cut short, once their 24-hour window has passed."""
    from pricing.models import RepricingState

    due = list(
        RepricingState.objects.filter(retry_after__lte=timezone.now()).values_list("product_id", flat=True)[:5000]
    )
    for product_id in due:
        services.reprice_product(product_id=product_id, cause="이동 한도 이후 재계산")
    return len(due)


WEBHOOK_MAX_RETRIES = 6


@shared_task(
    bind=True,
    autoretry_for=(services.WebhookDeliveryError,),
    retry_backoff=30,  # 30 s, 60 s, 120 s, … with jitter
    retry_backoff_max=60 * 60,
    retry_jitter=True,
    max_retries=WEBHOOK_MAX_RETRIES,
)
def deliver_webhook_task(self, delivery_id: int) -> str:
    final = self.request.retries >= WEBHOOK_MAX_RETRIES
    delivery = services.webhook_deliver(delivery_id=delivery_id, final_attempt=final)
    return delivery.state


@shared_task
def webhook_redeliver_pending() -> int:
    """Periodic: re-enqueue deliveries whose first enqueue was lost (broker down at commit time)."""
    from datetime import timedelta

    from pricing.models import WebhookDelivery

    stuck = WebhookDelivery.objects.filter(
        state=WebhookDelivery.State.PENDING, attempts=0, created_at__lt=timezone.now() - timedelta(minutes=10)
    ).values_list("pk", flat=True)[:1000]
    ids = list(stuck)
    for pk in ids:
        deliver_webhook_task.delay(pk)
    return len(ids)
