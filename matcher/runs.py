"""Match runs: a row with counts and timings, split into batches of SKUs that workers claim.

A batch's work grows with its listings, not its SKUs (one SKU may have 3 competitor listings,
another 80), so batches are cut by listing count: SKUs are added in id order until the next
would take the batch past `MATCHER_BATCH_LISTINGS` listings or `MATCHER_BATCH_SIZE` SKUs. A SKU
with more listings than that forms a batch of its own (a SKU is never split: its listings
share our photos' analysis).

A batch is claimed with a conditional update, so two deliveries of the same task never work on it
together; a batch whose worker died is claimable again once its lease has expired, and
`match_run_resume` re-enqueues whatever is not done. Decisions are written per listing with
update_or_create, so re-running a batch duplicates nothing.
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from matcher.matching import decide_products
from matcher.models import Listing, MatchRun, MatchRunBatch, Product
from matcher.signals import run_finished_on_commit
from matcher.tasks import match_run_batch as match_run_batch_task

log = logging.getLogger(__name__)


def _lease() -> timedelta:
    """How long a batch stays with the worker that claimed it; after that another may take it."""
    return timedelta(seconds=settings.MATCHER_BATCH_LEASE_S)


def _enqueue(batch_ids: list[int]) -> None:
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
        transaction.on_commit(lambda: _enqueue(batch_ids))
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


def match_run_resume(*, run_id: int) -> int:
    """Re-enqueue the batches of a run that are not done (after a crash or a lost message).

    Failed batches are tried again: their count comes off the run's done and failure totals,
    so the progress bar stays true.
    """
    stale = timezone.now() - _lease()
    with transaction.atomic():
        run = MatchRun.objects.select_for_update().get(id=run_id)
        batches = MatchRunBatch.objects.filter(run_id=run_id)
        ids = list(
            batches.filter(
                Q(state=MatchRunBatch.State.PENDING)
                | Q(state=MatchRunBatch.State.RUNNING, claimed_at__lt=stale)
                | Q(state=MatchRunBatch.State.FAILED)
            ).values_list("id", flat=True)
        )
        retried = batches.filter(id__in=ids, state=MatchRunBatch.State.FAILED).update(
            state=MatchRunBatch.State.PENDING
        )
        if ids:
            run.batches_done = max(0, run.batches_done - retried)
            run.failures = max(0, run.failures - retried)
            run.status = MatchRun.Status.RUNNING
            run.finished_at = None
            run.save(update_fields=["batches_done", "failures", "status", "finished_at"])
        transaction.on_commit(lambda: _enqueue(ids))
    return len(ids)


def _claim(batch_id: int) -> bool:
    now = timezone.now()
    claimable = Q(state=MatchRunBatch.State.PENDING) | Q(
        state=MatchRunBatch.State.RUNNING, claimed_at__lt=now - _lease()
    )
    return bool(
        MatchRunBatch.objects.filter(claimable, id=batch_id).update(
            state=MatchRunBatch.State.RUNNING, claimed_at=now, attempts=F("attempts") + 1
        )
    )


def match_run_batch_process(*, batch_id: int) -> bool:
    """Decide every listing of the batch's SKUs. Returns False when another worker has the batch."""
    if not _claim(batch_id):
        return False
    batch = MatchRunBatch.objects.select_related("run").get(id=batch_id)
    run = batch.run
    MatchRun.objects.filter(id=run.id, started_at__isnull=True).update(
        started_at=timezone.now(), status=MatchRun.Status.RUNNING
    )
    started = time.perf_counter()
    try:
        outcome = decide_products(product_ids=batch.product_ids, run_id=run.id, force=run.force)
    except SoftTimeLimitExceeded:
        # Out of time: hand the batch back (pending) so a resume retries it, instead of a hard kill.
        MatchRunBatch.objects.filter(id=batch_id).update(state=MatchRunBatch.State.PENDING, claimed_at=None)
        raise
    except Exception as exc:  # a bad batch must not stall the run; it is recorded and resumable
        log.exception("match batch %s failed", batch_id)
        with transaction.atomic():
            MatchRunBatch.objects.filter(id=batch_id).update(state=MatchRunBatch.State.FAILED, error=repr(exc)[:2000])
            locked = MatchRun.objects.select_for_update().get(id=run.id)
            locked.failures += 1
            locked.batches_done += 1
            locked.errors = (locked.errors + [f"batch {batch_id}: {exc!r}"[:500]])[-50:]
            _finish_if_complete(locked)
            locked.save()
        return True
    outcome.timings["batch_total"] = time.perf_counter() - started
    with transaction.atomic():
        MatchRunBatch.objects.filter(id=batch_id).update(state=MatchRunBatch.State.DONE, error="")
        locked = MatchRun.objects.select_for_update().get(id=run.id)
        locked.batches_done += 1
        locked.listings_done += outcome.decided
        locked.listings_skipped += outcome.skipped
        locked.failures += outcome.failed
        counts = Counter(locked.counts)
        counts.update(outcome.counts)
        locked.counts = dict(counts)
        timings = Counter(locked.timings)
        timings.update({k: round(v, 4) for k, v in outcome.timings.items()})
        locked.timings = dict(timings)
        if outcome.errors:
            locked.errors = (locked.errors + outcome.errors)[-50:]
        _finish_if_complete(locked)
        locked.save()
    return True


def _finish_if_complete(run: MatchRun) -> None:
    """Call with the run row locked. The SKUs' "matches changed" was sent by each batch as it wrote them."""
    if run.batches_done >= run.batches_total:
        run.status = MatchRun.Status.DONE if not run.failures or run.listings_done else MatchRun.Status.FAILED
        run.finished_at = timezone.now()
        run_finished_on_commit(run_id=run.id)
