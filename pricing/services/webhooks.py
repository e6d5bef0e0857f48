"""The price-change webhook: an outbox row written with the change, sent after commit, retried.

The receiver checks ``X-PriceMatch-Signature`` (HMAC-SHA256 over "<timestamp>.<body>").
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from pricing.exceptions import WebhookDeliveryError
from pricing.models import PriceChange, WebhookDelivery
from pricing.tasks import deliver_webhook_task

STUCK_AFTER = timedelta(minutes=10)


def webhook_outbox(change: PriceChange) -> None:
    """Write the outbox row of an applied change (inside its transaction); sent after commit."""
    url = getattr(settings, "PRICING_WEBHOOK_URL", "") or ""
    if not url:
        return
    product = change.product
    payload = {
        "event": "price.changed",
        "change_id": change.pk,
        "kind": change.kind,
        "sku": product.sku,
        "product_number": product.product_number,
        "old_price": change.old_price,
        "new_price": change.new_price,
        "automatic": change.automatic,
        "changed_at": change.created_at.isoformat(),
    }
    delivery = WebhookDelivery.objects.create(change=change, url=url, payload=payload)

    def enqueue() -> None:
        deliver_webhook_task.delay(delivery.pk)

    # robust: a broker outage must not turn a committed price change into an error page; the
    # delivery row stays pending and webhook_redeliver_pending picks it up.
    transaction.on_commit(enqueue, robust=True)


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over "<timestamp>.<body>", hex; the receiver recomputes it and rejects old timestamps."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def webhook_deliver(*, delivery_id: int, final_attempt: bool = False) -> WebhookDelivery:
    """Send one outbox row; raises on a failed attempt so the task retries. Delivered rows are left alone."""
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
        if delivery.state == WebhookDelivery.State.DELIVERED:
            return delivery
        delivery.attempts += 1
        delivery.save(update_fields=["attempts"])
    body = json.dumps(delivery.payload, sort_keys=True, ensure_ascii=False).encode()
    timestamp = str(int(timezone.now().timestamp()))
    headers = {
        "Content-Type": "application/json",
        "X-PriceMatch-Event": str(delivery.payload.get("event", "")),
        "X-PriceMatch-Delivery": str(delivery.pk),
        "X-PriceMatch-Timestamp": timestamp,
    }
    secret = getattr(settings, "PRICING_WEBHOOK_SECRET", "") or ""
    if secret:
        headers["X-PriceMatch-Signature"] = "sha256=" + webhook_signature(secret, timestamp, body)
    timeout = getattr(settings, "PRICING_WEBHOOK_TIMEOUT_S", 10)
    try:
        response = requests.post(
            delivery.url, data=body, headers=headers, timeout=timeout, allow_redirects=False
        )
        status, error = response.status_code, ("" if response.ok else response.text[:300])
    except requests.RequestException as exc:
        status, error = None, str(exc)[:500]
    ok = status is not None and 200 <= status < 300
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        last_status_code=status,
        last_error=error,
        state=WebhookDelivery.State.DELIVERED
        if ok
        else (WebhookDelivery.State.FAILED if final_attempt else WebhookDelivery.State.PENDING),
        delivered_at=timezone.now() if ok else None,
    )
    delivery.refresh_from_db()
    if not ok and not final_attempt:
        raise WebhookDeliveryError(f"webhook {delivery.pk}: {status or error}")
    return delivery


def webhooks_requeue_stuck(*, older_than: timedelta = STUCK_AFTER, limit: int = 1000) -> int:
    """Enqueue deliveries whose first enqueue was lost (broker down at commit time). Returns how many."""
    ids = list(
        WebhookDelivery.objects.filter(
            state=WebhookDelivery.State.PENDING, attempts=0, created_at__lt=timezone.now() - older_than
        ).values_list("pk", flat=True)[:limit]
    )
    for pk in ids:
        deliver_webhook_task.delay(pk)
    return len(ids)
