"""A worker's hold on a batch: a short lease renewed by a heartbeat, numbered claims, and who holds it.

A batch is claimed with a conditional update, so two deliveries of the same task never work on it
together. The claim is a short lease (`MATCHER_BATCH_LEASE_S`, 90 s) that a thread of the worker renews
every third of it while the batch works, however long that takes; a batch whose heartbeat stopped (its
worker died) is claimable again. Each claim is numbered (`attempts`): only the holder of the current
claim may renew or finish the batch.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection, connections, transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Q, Value
from django.db.models.functions import Now

from matcher.models import MatchRunBatch

log = logging.getLogger(__name__)

# A batch claimed this many times without finishing (its worker died, or it ran out of time) is likely
# what stops it (memory, a photo that hangs a model): it is failed, so the run finishes, instead of
# being fed to worker after worker. Resume tries a failed batch again when someone decides to.
BATCH_MAX_ATTEMPTS = 3


def lease_length() -> timedelta:
    """How long a batch stays with its worker after the last heartbeat; after that another may take it."""
    return timedelta(seconds=settings.MATCHER_BATCH_LEASE_S)


def expired() -> Q:
    """Running batches whose heartbeat is older than the lease, in the database's clock (one clock for
    every worker, so a skewed machine neither steals a live batch nor keeps a dead one)."""
    stale = ExpressionWrapper(Now() - Value(lease_length()), output_field=DateTimeField())
    return Q(state=MatchRunBatch.State.RUNNING) & (Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True))


def handed_back() -> dict[str, object]:
    """The fields of a batch given back to the queue: nobody holds it."""
    return {"state": MatchRunBatch.State.PENDING, "held_by": "", "heartbeat_at": None}


def worker_name() -> str:
    """Who holds a claim, as the resume message shows it: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


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


def claim_batch(batch_id: int) -> Claim | None:
    holder = worker_name()
    claimable = Q(state=MatchRunBatch.State.PENDING) | expired()
    with transaction.atomic():
        batch = MatchRunBatch.objects.select_for_update(skip_locked=True).filter(claimable, id=batch_id).first()
        if batch is None:
            return None
        MatchRunBatch.objects.filter(id=batch_id).update(
            state=MatchRunBatch.State.RUNNING, claimed_at=Now(), heartbeat_at=Now(), held_by=holder,
            attempts=F("attempts") + 1,
        )
    return Claim(batch_id=batch_id, attempt=batch.attempts + 1, holder=holder)


class Heartbeat:
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

    def __enter__(self) -> Heartbeat:
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
