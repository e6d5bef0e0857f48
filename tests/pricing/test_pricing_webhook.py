"""The optional webhook: an outbox row written with the change, a signed POST, recorded attempts."""
from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from pricing import services
from pricing.models import PriceChange, WebhookDelivery
from tests.pricing.factories import PricingProductFactory, match_for, pricing_admin

pytestmark = pytest.mark.django_db


def apply_one_change(sku: str = "HOOK-1") -> PriceChange:
    product = PricingProductFactory(sku=sku)
    match_for(product, price=97_000)
    return PriceChange.objects.get(proposal=services.reprice_product(product_id=product.pk, cause="test"))


def test_without_a_webhook_url_no_delivery_is_recorded(settings):
    settings.PRICING_WEBHOOK_URL = ""
    apply_one_change()
    assert not WebhookDelivery.objects.exists()


def test_an_applied_change_and_its_rollback_each_write_a_delivery_with_the_change(settings, webhook_receiver):
    settings.PRICING_WEBHOOK_URL = webhook_receiver.url
    change = apply_one_change()
    rollback = services.change_rollback(change_id=change.pk, user=pricing_admin())

    deliveries = {d.change_id: d for d in WebhookDelivery.objects.all()}
    assert deliveries[change.pk].payload | {"changed_at": None} == {
        "event": "price.changed",
        "change_id": change.pk,
        "kind": "apply",
        "sku": "HOOK-1",
        "product_number": change.product.product_number,
        "old_price": 100_000,
        "new_price": 96_900,
        "automatic": True,
        "changed_at": None,
    }
    assert deliveries[rollback.pk].payload["new_price"] == 100_000
    assert all(d.state == WebhookDelivery.State.PENDING for d in deliveries.values())


def test_a_delivery_is_signed_with_hmac_sha256_and_recorded_as_delivered(settings, webhook_receiver):
    settings.PRICING_WEBHOOK_URL = webhook_receiver.url
    settings.PRICING_WEBHOOK_SECRET = "hook-secret"
    apply_one_change()
    delivery = WebhookDelivery.objects.get()

    services.webhook_deliver(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    headers, body = webhook_receiver.received[0]
    expected = hmac.new(b"hook-secret", headers["X-PriceMatch-Timestamp"].encode() + b"." + body, hashlib.sha256)
    assert headers["X-PriceMatch-Signature"] == "sha256=" + expected.hexdigest()
    assert json.loads(body)["new_price"] == 96_900
    # Delivered rows are not sent again when a retry arrives late.
    services.webhook_deliver(delivery_id=delivery.pk)
    assert len(webhook_receiver.received) == 1


def test_a_failed_attempt_is_recorded_and_raised_for_a_retry_and_the_last_attempt_marks_it_failed(
    settings, webhook_receiver
):
    settings.PRICING_WEBHOOK_URL = webhook_receiver.url
    webhook_receiver.statuses = [500, 503]
    apply_one_change()
    delivery = WebhookDelivery.objects.get()

    with pytest.raises(services.WebhookDeliveryError):
        services.webhook_deliver(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)

    services.webhook_deliver(delivery_id=delivery.pk, final_attempt=True)
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.last_status_code) == ("failed", 2, 503)


def test_the_webhook_task_retries_with_backoff_until_the_receiver_accepts(settings, webhook_receiver):
    from pricing.tasks import deliver_webhook_task

    settings.PRICING_WEBHOOK_URL = webhook_receiver.url
    webhook_receiver.statuses = [502]
    apply_one_change()
    delivery = WebhookDelivery.objects.get()

    # Run in this process: the first attempt fails and asks Celery for a retry with a countdown.
    from celery.exceptions import Retry

    with pytest.raises(Retry) as retry:
        deliver_webhook_task.apply(args=[delivery.pk], throw=True)
    assert retry.value.when  # a backoff delay, not an immediate retry
    deliver_webhook_task.apply(args=[delivery.pk], throw=True)

    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == ("delivered", 2)
