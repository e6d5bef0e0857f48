"""Celery tasks of the matcher app: take ids, call one service, safe to run twice.

Each task imports its service inside its body: the services import these tasks at the top (to
enqueue them as `x_task`), so `tasks → services` at import time would form a cycle.
"""
from __future__ import annotations

import logging
from typing import Literal

from celery import Task, shared_task
from django.conf import settings

log = logging.getLogger(__name__)


# --- Match runs ---------------------------------------------------------------------------------


# acks_late + reject_on_worker_lost: a pool process killed mid-batch (OOM, hard time limit) puts the
# message back at once; a whole worker killed leaves it unacknowledged until the Redis transport's
# visibility_timeout (an hour) brings it back. Neither waits on the other: the batch's heartbeat stops
# with its worker, and match_runs_heal re-enqueues it about a lease later. A redelivery of a batch
# already taken over or done finds it claimed and does nothing.
@shared_task(name="matcher.tasks.match_run_batch", acks_late=True, reject_on_worker_lost=True)
def match_run_batch(batch_id: int) -> bool:
    from matcher.runs import match_run_batch_process

    return match_run_batch_process(batch_id=batch_id)


@shared_task(name="matcher.tasks.match_runs_heal", acks_late=True)
def match_runs_heal() -> int:
    """Periodic (celery beat): re-enqueue the batches whose worker stopped. Returns how many."""
    from matcher.runs import match_runs_heal as heal

    return len(heal())


@shared_task(name="matcher.tasks.match_changed_listings")
def match_changed_listings() -> int | None:
    """Periodic (celery beat): a match run over SKUs whose listings changed since their decision."""
    from matcher.runs import match_run_for_changes

    run = match_run_for_changes()
    return run.pk if run else None


# --- Image downloads (routed to the `ingest` queue by the image_fetch prefix) --------------------


def _image_fetch(task: Task, owner: Literal["product", "listing"], owner_id: int) -> dict:
    from matcher.services.image_fetch import image_fetch_backoff, image_refs_fetch

    # max_retries None would mean "retry for ever" (both tasks below set it from settings).
    final = task.max_retries is not None and task.request.retries >= task.max_retries
    summary = image_refs_fetch(owner=owner, owner_id=owner_id, final_attempt=final)
    if summary.retry and not final:
        # Only the still-pending images are tried again; the ones stored stay stored.
        raise task.retry(countdown=image_fetch_backoff(task.request.retries))
    return {"ok": summary.ok, "failed": summary.failed, "retry": summary.retry}


@shared_task(
    bind=True, name="matcher.tasks.image_fetch_listing_images", max_retries=settings.IMAGE_FETCH_MAX_RETRIES
)
def image_fetch_listing_images(self: Task, listing_id: int) -> dict:
    return _image_fetch(self, "listing", listing_id)


@shared_task(
    bind=True, name="matcher.tasks.image_fetch_product_images", max_retries=settings.IMAGE_FETCH_MAX_RETRIES
)
def image_fetch_product_images(self: Task, product_id: int) -> dict:
    return _image_fetch(self, "product", product_id)


# --- Imports uploaded in the browser (routed to the `ingest` queue by the import_ prefix) ----------


# acks_late + reject_on_worker_lost: a worker that dies mid-file leaves the message to be delivered
# again, and the rerun imports the file from its first row (rows are idempotent). A redelivery while
# the first run is still alive (its heartbeat fresh) waits a lease and looks again. The time limits
# stay under the broker's visibility timeout (an hour), so a slow file is never delivered twice.
@shared_task(
    bind=True,
    name="matcher.tasks.import_upload_run",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
    soft_time_limit=50 * 60,
    time_limit=55 * 60,
)
def import_upload_run(self: Task, report_id: int) -> str | None:
    from matcher.services.import_upload import ImportBusy, import_upload_process

    try:
        report = import_upload_process(report_id=report_id)
    except ImportBusy:
        raise self.retry(countdown=settings.IMPORT_UPLOAD_LEASE_S) from None
    return report.status if report else None


# --- LLM ------------------------------------------------------------------------------------------
# Routed to the `llm` queue by the llm_ prefix, so paid calls scale (and stop) on their own workers.


@shared_task(name="matcher.tasks.llm_batch_poll", acks_late=True)
def llm_batch_poll(job_id: int) -> str:
    """Poll one Batch API job once; collect it (and write its verdicts back) when done. Safe to run twice.

    It does not re-enqueue itself: llm_batch_resume (celery beat, every 5 minutes) polls every open
    job, so a job is never polled by several chains at once however often workers restart."""
    from matcher.llm.batch import batch_poll_and_collect

    return batch_poll_and_collect(job_id=job_id).state


@shared_task(name="matcher.tasks.llm_batch_resume", acks_late=True)
def llm_batch_resume() -> int:
    """Periodic (celery beat) and after a restart: submit awaiting pairs a dead worker left without a
    job, then start polling every job still open. Safe to run twice: a duplicate poll finds the job
    collected and stops. Returns the number of open jobs."""
    from matcher.llm.batch import batch_jobs_open, batch_submit_awaiting

    try:
        batch_submit_awaiting()
    except Exception:  # polling must go on even if the sweep meets a bad row
        log.exception("sweep of pairs awaiting a batch verdict failed")
    ids = list(batch_jobs_open())
    for job_id in ids:
        llm_batch_poll.delay(job_id)
    return len(ids)
