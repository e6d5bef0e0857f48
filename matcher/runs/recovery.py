"""Getting a run going again after a worker died: resume (on request) and heal (periodic).

`match_runs_heal` (celery beat) hands back and re-enqueues every batch whose heartbeat stopped, so a
run finishes on its own about a lease after its worker died; `match_run_resume` re-enqueues whatever
is not done and says which batches are still held, by whom, until when.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from matcher.models import MatchRun, MatchRunBatch
from matcher.runs.batch import batch_abandon
from matcher.runs.lease import BATCH_MAX_ATTEMPTS, expired, handed_back, lease_length
from matcher.runs.start import enqueue_batches

log = logging.getLogger(__name__)


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
    lease = lease_length()
    with transaction.atomic():
        batches = MatchRunBatch.objects.filter(run_id=run_id)
        # Locked, so a batch counted here as free is not claimed by a worker before it is enqueued;
        # batches before the run row, in the order a finishing batch takes them (no deadlock).
        free = batches.select_for_update().filter(
            Q(state=MatchRunBatch.State.PENDING) | Q(state=MatchRunBatch.State.FAILED) | expired()
        )
        ids = list(free.order_by("id").values_list("id", flat=True))
        run = MatchRun.objects.select_for_update().get(id=run_id)
        retried = batches.filter(id__in=ids, state=MatchRunBatch.State.FAILED).count()
        batches.filter(id__in=ids).exclude(state=MatchRunBatch.State.PENDING).update(**handed_back())
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
            transaction.on_commit(lambda: enqueue_batches(ids))
    return ResumeResult(run_id=run_id, requeued_ids=tuple(ids), held=held)


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
            .filter(expired())
            .order_by("id")
            .values_list("id", "run_id", "attempts", "held_by", "heartbeat_at")[:limit]
        )
        ids = [batch_id for batch_id, _, attempts, _, _ in rows if attempts < BATCH_MAX_ATTEMPTS]
        MatchRunBatch.objects.filter(id__in=ids).update(**handed_back())
        for batch_id, run_id, attempts, held_by, heartbeat_at in rows:
            log.warning("match batch %s: worker %s stopped (last heartbeat %s, claim %s)",
                        batch_id, held_by or "?", heartbeat_at, attempts)
            if batch_id not in ids:
                batch_abandon(
                    batch_id=batch_id, run_id=run_id, attempts=attempts,
                    why="처리 중에 작업자가 멈췄습니다 (worker died on every attempt)",
                )
        if ids:
            transaction.on_commit(lambda: enqueue_batches(ids))
    return ids
