"""Starting a match run: the run row and its batches, cut by listing count, enqueued after commit.

A batch's work grows with its listings, not its SKUs (one SKU may have 3 competitor listings,
another 80), so batches are cut by listing count: SKUs are added in id order until the next
would take the batch past `MATCHER_BATCH_LISTINGS` listings or `MATCHER_BATCH_SIZE` SKUs. A SKU
with more listings than that forms a batch of its own (a SKU is never split: its listings
share our photos' analysis).
"""
from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from matcher.models import Listing, MatchRun, MatchRunBatch, Product
from matcher.tasks import match_run_batch as match_run_batch_task


def enqueue_batches(batch_ids: list[int]) -> None:
    for batch_id in batch_ids:
        match_run_batch_task.delay(batch_id)


@transaction.atomic
def match_run_start(
    *, product_ids: list[int] | None, force: bool = False, user=None, enqueue: bool = True
) -> MatchRun:
    """Create a run over the given SKUs (None: the whole active catalogue) and enqueue its batches.

    enqueue=False leaves the batches for the caller to process (`match --inline`, evaluation).
    """
    qs = Product.objects.filter(active=True)
    if product_ids is not None:
        qs = qs.filter(id__in=product_ids)
    ids = list(qs.order_by("id").values_list("id", flat=True))
    listings = _listing_counts(ids)
    run = MatchRun.objects.create(
        scope=MatchRun.Scope.ALL if product_ids is None else MatchRun.Scope.SKUS,
        product_ids=[] if product_ids is None else ids,
        force=force,
        requested_by=user,
        listings_total=sum(listings.values()),
    )
    groups = batch_product_ids(
        ids, listings, max_listings=settings.MATCHER_BATCH_LISTINGS, max_skus=settings.MATCHER_BATCH_SIZE
    )
    batches = MatchRunBatch.objects.bulk_create([MatchRunBatch(run=run, product_ids=group) for group in groups])
    run.batches_total = len(batches)
    if not batches:
        run.status = MatchRun.Status.DONE
        run.finished_at = timezone.now()
    run.save(update_fields=["batches_total", "status", "finished_at"])
    batch_ids = [b.id for b in batches]
    if enqueue:
        transaction.on_commit(lambda: enqueue_batches(batch_ids))
    return run


def _listing_counts(product_ids: list[int]) -> dict[int, int]:
    """Listings per SKU, in one query (SKUs without listings are absent)."""
    rows = Listing.objects.filter(product_id__in=product_ids).values("product_id").annotate(n=Count("id"))
    return {row["product_id"]: row["n"] for row in rows}


def batch_product_ids(
    product_ids: list[int], listings: dict[int, int], *, max_listings: int, max_skus: int
) -> list[list[int]]:
    """Consecutive groups of SKUs with at most `max_listings` listings and `max_skus` SKUs each.

    A SKU alone over `max_listings` still gets a batch (of one); SKUs without listings count as
    none. Order is kept, so batches follow the catalogue.
    """
    max_listings, max_skus = max(1, max_listings), max(1, max_skus)
    groups: list[list[int]] = []
    current: list[int] = []
    load = 0
    for pid in product_ids:
        n = listings.get(pid, 0)
        if current and (load + n > max_listings or len(current) >= max_skus):
            groups.append(current)
            current, load = [], 0
        current.append(pid)
        load += n
    if current:
        groups.append(current)
    return groups
