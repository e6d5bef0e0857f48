"""The periodic pricing tasks (celery beat) run through their real code against the database."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from config.celery import app
from matcher.models import Product
from pricing import services
from pricing.models import PriceChange, PriceProposal, RepricingState, WebhookDelivery
from pricing.tasks import reprice_due_task, webhook_redeliver_pending
from tests.pricing.factories import PricingProductFactory, match_for, policy_set

pytestmark = pytest.mark.django_db


def price_of(product: Product) -> int:
    return Product.objects.values_list("price", flat=True).get(pk=product.pk)


def test_reprice_due_continues_a_move_a_limit_cut_short_once_its_window_has_passed():
    policy_set(
        max_change_percent=Decimal("10"),
        auto_apply=True,
        auto_apply_max_change_percent=Decimal("50"),
    )
    product = PricingProductFactory()  # 100,000; floor 60,000 × (1 + margin)
    match_for(product, price=70_000)
    first = services.reprice_product(product_id=product.pk, cause="test")
    assert first.status == PriceProposal.Status.APPLIED and "max_change" in first.limits_hit
    moved_once = price_of(product)
    assert moved_once == 90_000  # 10 % at most per move

    assert reprice_due_task.apply().get() == 0  # the 24-hour window has not passed: nothing is due
    RepricingState.objects.filter(product=product).update(retry_after=timezone.now() - timedelta(minutes=1))

    assert reprice_due_task.apply().get() == 1

    assert price_of(product) < moved_once
    follow_up = PriceProposal.objects.exclude(pk=first.pk).get(product=product)
    assert follow_up.cause == services.DUE_CAUSE and follow_up.status == PriceProposal.Status.APPLIED
    assert PriceChange.objects.filter(product=product).count() == 2


@pytest.fixture
def eager_tasks():
    """Enqueued tasks run at once in this process, so a test sees what the worker would do."""
    before = {key: app.conf[key] for key in ("task_always_eager", "task_eager_propagates")}
    app.conf.update(task_always_eager=True, task_eager_propagates=True)
    yield
    app.conf.update(before)


def test_webhook_redeliver_sends_deliveries_whose_enqueue_was_lost_and_leaves_fresh_ones(
    settings, webhook_receiver, eager_tasks
):
    settings.PRICING_WEBHOOK_URL = webhook_receiver.url
    policy_set(auto_apply=True, auto_apply_max_change_percent=Decimal("50"))
    # No commit happens in this test, so the outbox's on-commit enqueue never runs: a lost message.
    for sku, price in (("LOST-1", 97_000), ("FRESH-1", 96_000)):
        product = PricingProductFactory(sku=sku)
        match_for(product, price=price)
        services.reprice_product(product_id=product.pk, cause="test")
    lost = WebhookDelivery.objects.get(change__product__sku="LOST-1")
    fresh = WebhookDelivery.objects.get(change__product__sku="FRESH-1")
    WebhookDelivery.objects.filter(pk=lost.pk).update(created_at=timezone.now() - timedelta(minutes=11))

    assert webhook_redeliver_pending.apply().get() == 1

    lost.refresh_from_db()
    fresh.refresh_from_db()
    assert (lost.state, lost.attempts) == (WebhookDelivery.State.DELIVERED, 1)
    assert (fresh.state, fresh.attempts) == (WebhookDelivery.State.PENDING, 0)
    assert len(webhook_receiver.received) == 1
    assert webhook_redeliver_pending.apply().get() == 0  # delivered rows are not sent again
