"""Processing one batch: claim it, decide its SKUs' listings under a heartbeat, count it on its run.

Decisions are written per listing with update_or_create, so re-running a batch duplicates nothing; a
late finisher whose batch was taken over adds nothing to the run's counts.
"""
from __future__ import annotations

import logging
import time
from collections import Counter

from celery.exceptions import SoftTimeLimitExceeded
from django.db import transaction
from django.utils import timezone

from matcher.matching import decide_products
from matcher.models import MatchRun, MatchRunBatch
from matcher.runs.lease import BATCH_MAX_ATTEMPTS, Heartbeat, claim_batch, handed_back
from matcher.runs.start import enqueue_batches
from matcher.signals import run_finished_on_commit

log = logging.getLogger(__name__)


def match_run_batch_process(*, batch_id: int) -> bool:
    """Decide every listing of the batch's SKUs. Returns False when another worker has the batch (or
    took it over while this one worked: its counts are then the other worker's to add)."""
    claim = claim_batch(batch_id)
    if claim is None:
        return False
    batch = MatchRunBatch.objects.select_related("run").get(id=batch_id)
    run = batch.run
    MatchRun.objects.filter(id=run.id, started_at__isnull=True).update(
        started_at=timezone.now(), status=MatchRun.Status.RUNNING
    )
    started = time.perf_counter()
    try:
        with Heartbeat(claim):
            outcome = decide_products(product_ids=batch.product_ids, run_id=run.id, force=run.force)
    except SoftTimeLimitExceeded:
        # Out of time, before the hard kill: hand the batch back and send it again (a worker with more
        # time, or less load, may finish it), or fail it once it has been tried BATCH_MAX_ATTEMPTS times.
        with transaction.atomic():
            if claim.attempt >= BATCH_MAX_ATTEMPTS:
                if MatchRunBatch.objects.select_for_update().filter(claim.mine()).exists():
                    batch_abandon(batch_id=batch_id, run_id=run.id, attempts=claim.attempt,
                                  why="처리 시간 한도를 넘었습니다 (soft time limit on every attempt)")
            elif MatchRunBatch.objects.filter(claim.mine()).update(claimed_at=None, **handed_back()):
                transaction.on_commit(lambda: enqueue_batches([batch_id]))
        raise
    except Exception as exc:  # a bad batch must not stall the run; it is recorded and resumable
        log.exception("match batch %s failed", batch_id)
        with transaction.atomic():
            if not MatchRunBatch.objects.filter(claim.mine()).update(
                state=MatchRunBatch.State.FAILED, error=repr(exc)[:2000]
            ):
                return False
            locked = MatchRun.objects.select_for_update().get(id=run.id)
            locked.failures += 1
            locked.batches_done += 1
            locked.errors = (locked.errors + [f"batch {batch_id}: {exc!r}"[:500]])[-50:]
            finish_if_complete(locked)
            locked.save()
        return True
    outcome.timings["batch_total"] = time.perf_counter() - started
    with transaction.atomic():
        # Only the latest claim counts: a late finisher whose batch was taken over adds nothing.
        if not MatchRunBatch.objects.filter(claim.mine()).update(state=MatchRunBatch.State.DONE, error=""):
            log.warning("match batch %s was taken over while claim %s worked; its counts are not added",
                        batch_id, claim.attempt)
            return False
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
        finish_if_complete(locked)
        locked.save()
    return True


def finish_if_complete(run: MatchRun) -> None:
    """Call with the run row locked. The SKUs' "matches changed" was sent by each batch as it wrote them."""
    if run.batches_done >= run.batches_total:
        run.status = MatchRun.Status.DONE if not run.failures or run.listings_done else MatchRun.Status.FAILED
        run.finished_at = timezone.now()
        run_finished_on_commit(run_id=run.id)


def batch_abandon(*, batch_id: int, run_id: int, attempts: int, why: str) -> None:
    """Call with the batch row locked: fail it and count it on its run (locked after the batch).

    For a batch claimed `BATCH_MAX_ATTEMPTS` times without finishing; `why` says how each ended."""
    reason = f"batch {batch_id}: {attempts}번 모두 {why}"
    MatchRunBatch.objects.filter(id=batch_id).update(state=MatchRunBatch.State.FAILED, error=reason)
    run = MatchRun.objects.select_for_update().get(id=run_id)
    run.failures += 1
    run.batches_done += 1
    run.errors = (run.errors + [reason])[-50:]
    finish_if_complete(run)
    run.save()
