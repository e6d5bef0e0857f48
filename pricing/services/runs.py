"""Pricing runs: reprice many SKUs in slices, one transaction per SKU."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from matcher.models import Product
from pricing.models import PricingRun
from pricing.services.repricing import reprice_product
from pricing.tasks import reprice_run_task


@transaction.atomic
def pricing_run_create(*, cause: str, product_ids: list[int] | None, user=None) -> PricingRun:
    """A run over the given SKUs (all active SKUs when None); the task reprices them after commit."""
    if product_ids is None:
        product_ids = list(Product.objects.filter(active=True).order_by("pk").values_list("pk", flat=True))
    run = PricingRun.objects.create(cause=cause[:200], product_ids=product_ids, requested_by=user)

    def enqueue() -> None:
        reprice_run_task.delay(run.pk, 0)

    transaction.on_commit(enqueue)
    return run


RUN_BATCH = 500


def pricing_run_execute(*, run_id: int, start: int = 0, batch: int | None = None) -> int | None:
    """Reprice SKUs ``start`` … ``start + batch`` of a run, one transaction per SKU so a long run holds
    no long lock. Returns where the next slice starts, or None when the run is done.

    Safe to repeat: a SKU evaluated already is a no-op the second time.
    """
    batch = batch or RUN_BATCH
    run = PricingRun.objects.select_related("requested_by").get(pk=run_id)
    if run.finished_at:
        return None
    ids = run.product_ids[start : start + batch]
    for product_id in ids:
        reprice_product(product_id=product_id, cause=run.cause, run_id=run.pk, user=run.requested_by)
    following = start + batch
    if following >= len(run.product_ids):
        PricingRun.objects.filter(pk=run.pk).update(finished_at=timezone.now())
        return None
    return following
