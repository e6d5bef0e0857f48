"""Match runs: a row with counts and timings, split into batches of SKUs that workers claim.

A batch's work grows with its listings, not its SKUs (one SKU may have 3 competitor listings,
another 80), so batches are cut by listing count: SKUs are added in id order until the next
would take the batch past `MATCHER_BATCH_LISTINGS` listings or `MATCHER_BATCH_SIZE` SKUs. A SKU
with more listings than that forms a batch of its own (a SKU is never split: its listings
share our photos' analysis).

A batch is claimed with a conditional update, so two deliveries of the same task never work on it
together. The claim is a short lease (`MATCHER_BATCH_LEASE_S`, 90 s) that a thread of the worker renews
every third of it while the batch works, however long that takes; a batch whose heartbeat stopped (its
worker died) is claimable again, `match_runs_heal` (celery beat) hands it back and re-enqueues it, and
`match_run_resume` re-enqueues whatever is not done and says which batches are still held, by whom,
until when. Each claim is numbered (`attempts`): only the holder of the current claim may finish the
batch, so a worker whose batch was taken over never adds its counts to the run a second time.
Decisions are written per listing with update_or_create, so re-running a batch duplicates nothing.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, connection, connections, transaction
from django.db.models import Count, DateTimeField, ExpressionWrapper, F, Q, Value
from django.db.models.functions import Now
from django.utils import timezone

from matcher.matching import decide_products
from matcher.models import Listing, MatchRun, MatchRunBatch, Product
from matcher.signals import run_finished_on_commit
from matcher.tasks import match_run_batch as match_run_batch_task

log = logging.getLogger(__name__)


def _lease() -> timedelta:
    """How long a batch stays with its worker after the last heartbeat; after that another may take it."""
    return timedelta(seconds=settings.MATCHER_BATCH_LEASE_S)


def _expired() -> Q:
    """Running batches whose heartbeat is older than the lease, in the database's clock (one clock for
    every worker, so a skewed machine neither steals a live batch nor keeps a dead one)."""
    stale = ExpressionWrapper(Now() - Value(_lease()), output_field=DateTimeField())
    return Q(state=MatchRunBatch.State.RUNNING) & (Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True))


def _handed_back() -> dict[str, object]:
    """The fields of a batch given back to the queue: nobody holds it."""
    return {"state": MatchRunBatch.State.PENDING, "held_by": "", "heartbeat_at": None}


def worker_name() -> str:
    """Who holds a claim, as the resume message shows it: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


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


@dataclass(frozen=True)
class HeldBatch:
    """A batch a live worker is still working on: its last heartbeat, and when it is free if none follows."""

    batch_id: int
    held_by: str
    heartbeat_at: datetime
    held_until: datetime


@dataclass(frozen=True)
class ResumeResult:
    """What `match_run_resume` did: the batches it re-enqueued and those it left with their worker."""

    run_id: int
    requeued_ids: tuple[int, ...]
    held: tuple[HeldBatch, ...]

    def describe(self) -> list[str]:
        """The outcome in Korean, one line per fact, for the command and the Resume button."""

        def at(moment: datetime) -> str:
            return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S")

        if self.requeued_ids:
            ids = ", ".join(f"#{i}" for i in self.requeued_ids)
            lines = [f"실행 #{self.run_id}: 배치 {len(self.requeued_ids)}개를 다시 대기열에 넣었습니다 "
                     f"(re-enqueued): {ids}"]
        else:
            lines = [f"실행 #{self.run_id}: 다시 대기열에 넣은 배치가 없습니다 (nothing re-enqueued)."]
        for held in self.held:
            lines.append(
                f"배치 #{held.batch_id}: {held.held_by or '알 수 없는 작업자'}이(가) 작업 중입니다 (held) — "
                f"마지막 신호 {at(held.heartbeat_at)}, {at(held.held_until)}까지 잡혀 있고 그 뒤에도 신호가 "
                f"없으면 자동으로 다시 대기열에 들어갑니다."
            )
        return lines


def match_run_resume(*, run_id: int, enqueue: bool = True) -> ResumeResult:
    """Re-enqueue the batches of a run that are not done (after a crash or a lost message).

    Pending, failed and expired (heartbeat stopped) batches are handed back and enqueued; batches a
    live worker holds are left to it and listed. Failed batches are tried again: their count comes off
    the run's done and failure totals, so the progress bar stays true. enqueue=False only hands them
    back (`match --inline` processes them itself). Raises MatchRun.DoesNotExist for an unknown run.
    """
    lease = _lease()
    with transaction.atomic():
        batches = MatchRunBatch.objects.filter(run_id=run_id)
        # Locked, so a batch counted here as free is not claimed by a worker before it is enqueued;
        # batches before the run row, in the order a finishing batch takes them (no deadlock).
        free = batches.select_for_update().filter(
            Q(state=MatchRunBatch.State.PENDING) | Q(state=MatchRunBatch.State.FAILED) | _expired()
        )
        ids = list(free.order_by("id").values_list("id", flat=True))
        run = MatchRun.objects.select_for_update().get(id=run_id)
        retried = batches.filter(id__in=ids, state=MatchRunBatch.State.FAILED).count()
        batches.filter(id__in=ids).exclude(state=MatchRunBatch.State.PENDING).update(**_handed_back())
        if ids:
            run.batches_done = max(0, run.batches_done - retried)
            run.failures = max(0, run.failures - retried)
            run.status = MatchRun.Status.RUNNING
            run.finished_at = None
            run.save(update_fields=["batches_done", "failures", "status", "finished_at"])
        held = tuple(
            HeldBatch(batch_id=b.id, held_by=b.held_by, heartbeat_at=b.heartbeat_at, held_until=b.heartbeat_at + lease)
            for b in batches.filter(state=MatchRunBatch.State.RUNNING).exclude(id__in=ids).order_by("id")
            if b.heartbeat_at is not None
        )
        if enqueue:
            transaction.on_commit(lambda: _enqueue(ids))
    return ResumeResult(run_id=run_id, requeued_ids=tuple(ids), held=held)


# A batch whose worker died this many times is likely what kills it (memory, a photo that hangs a
# model past the hard time limit): the heal fails it, so the run finishes, instead of feeding it to
# worker after worker. Resume tries a failed batch again when someone decides to.
BATCH_MAX_ATTEMPTS = 3


def match_runs_heal(*, limit: int = 500) -> list[int]:
    """Hand back and re-enqueue every batch whose heartbeat stopped (its worker died), in any run.

    Periodic (celery beat, every `MATCHER_BATCH_HEAL_S`), so a run finishes on its own about a lease
    after its worker died, without anyone pressing Resume. A batch is handed back (pending) before it
    is enqueued, so the next sweep does not enqueue it again while its message waits in the queue; one
    claimed `BATCH_MAX_ATTEMPTS` times is failed instead. Returns the ids re-enqueued.
    """
    with transaction.atomic():
        rows = list(
            MatchRunBatch.objects.select_for_update(skip_locked=True)
            .filter(_expired())
            .order_by("id")
            .values_list("id", "run_id", "attempts", "held_by", "heartbeat_at")[:limit]
        )
        ids = [batch_id for batch_id, _, attempts, _, _ in rows if attempts < BATCH_MAX_ATTEMPTS]
        MatchRunBatch.objects.filter(id__in=ids).update(**_handed_back())
        for batch_id, run_id, attempts, held_by, heartbeat_at in rows:
            log.warning("match batch %s: worker %s stopped (last heartbeat %s, claim %s)",
                        batch_id, held_by or "?", heartbeat_at, attempts)
            if batch_id not in ids:
                _fail_abandoned(batch_id=batch_id, run_id=run_id, attempts=attempts)
        if ids:
            transaction.on_commit(lambda: _enqueue(ids))
    return ids


def _fail_abandoned(*, batch_id: int, run_id: int, attempts: int) -> None:
    """Call with the batch row locked: fail it and count it on its run (locked after the batch)."""
    reason = f"batch {batch_id}: 작업자가 {attempts}번 모두 처리 중에 멈췄습니다 (worker died on every attempt)"
    MatchRunBatch.objects.filter(id=batch_id).update(state=MatchRunBatch.State.FAILED, error=reason)
    run = MatchRun.objects.select_for_update().get(id=run_id)
    run.failures += 1
    run.batches_done += 1
    run.errors = (run.errors + [reason])[-50:]
    _finish_if_complete(run)
    run.save()


@dataclass(frozen=True)
class Claim:
    """A worker's hold on a batch: the claim's number is what lets it renew and finish the batch."""

    batch_id: int
    attempt: int
    holder: str

    def mine(self) -> Q:
        """The batch as long as this claim is its latest. A batch the heal handed back (pending) while
        this worker only stalled is still its own until someone else claims it."""
        return Q(id=self.batch_id, attempts=self.attempt) & Q(
            state__in=[MatchRunBatch.State.RUNNING, MatchRunBatch.State.PENDING]
        )


def _claim(batch_id: int) -> Claim | None:
    holder = worker_name()
    claimable = Q(state=MatchRunBatch.State.PENDING) | _expired()
    with transaction.atomic():
        batch = MatchRunBatch.objects.select_for_update(skip_locked=True).filter(claimable, id=batch_id).first()
        if batch is None:
            return None
        MatchRunBatch.objects.filter(id=batch_id).update(
            state=MatchRunBatch.State.RUNNING, claimed_at=Now(), heartbeat_at=Now(), held_by=holder,
            attempts=F("attempts") + 1,
        )
    return Claim(batch_id=batch_id, attempt=batch.attempts + 1, holder=holder)


class _Heartbeat:
    """Renews a claim from a thread of its own every third of the lease while the batch works.

    The worker's main thread may sit for minutes inside one model call; a thread keeps the heartbeat
    going as long as the process lives (and stops with it, which is the point). The thread uses its
    own database connection and closes it when it ends. A renewal that finds the claim gone (taken
    over) stops renewing; the batch's finish then finds it gone too and adds nothing.
    """

    def __init__(self, claim: Claim) -> None:
        self.claim = claim
        self.every = max(0.2, settings.MATCHER_BATCH_LEASE_S / 3)
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"batch-{claim.batch_id}-heartbeat", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.every + 10)

    def _renew(self) -> bool:
        with transaction.atomic():
            with connection.cursor() as cursor:
                # Never wait long on a row lock: a missed beat is harmless, a stuck thread is not.
                cursor.execute("SET LOCAL lock_timeout = '5s'")
            return bool(
                MatchRunBatch.objects.filter(self.claim.mine()).update(
                    state=MatchRunBatch.State.RUNNING, heartbeat_at=Now(), held_by=self.claim.holder
                )
            )

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.every):
                try:
                    renewed = self._renew()
                except DatabaseError:
                    log.warning("match batch %s: heartbeat not renewed", self.claim.batch_id, exc_info=True)
                    connection.close()  # a fresh connection on the next beat
                    continue
                if not renewed:
                    self.lost = True
                    log.warning("match batch %s: claim %s was taken over", self.claim.batch_id, self.claim.attempt)
                    return
        finally:
            connections.close_all()  # this thread's connections only (they are per thread)


def match_run_batch_process(*, batch_id: int) -> bool:
    """Decide every listing of the batch's SKUs. Returns False when another worker has the batch (or
    took it over while this one worked: its counts are then the other worker's to add)."""
    claim = _claim(batch_id)
    if claim is None:
        return False
    batch = MatchRunBatch.objects.select_related("run").get(id=batch_id)
    run = batch.run
    MatchRun.objects.filter(id=run.id, started_at__isnull=True).update(
        started_at=timezone.now(), status=MatchRun.Status.RUNNING
    )
    started = time.perf_counter()
    try:
        with _Heartbeat(claim):
            outcome = decide_products(product_ids=batch.product_ids, run_id=run.id, force=run.force)
    except SoftTimeLimitExceeded:
        # Out of time: hand the batch back (pending) so a resume retries it, instead of a hard kill.
        MatchRunBatch.objects.filter(claim.mine()).update(claimed_at=None, **_handed_back())
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
            _finish_if_complete(locked)
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
        _finish_if_complete(locked)
        locked.save()
    return True


def _finish_if_complete(run: MatchRun) -> None:
    """Call with the run row locked. The SKUs' "matches changed" was sent by each batch as it wrote them."""
    if run.batches_done >= run.batches_total:
        run.status = MatchRun.Status.DONE if not run.failures or run.listings_done else MatchRun.Status.FAILED
        run.finished_at = timezone.now()
        run_finished_on_commit(run_id=run.id)
