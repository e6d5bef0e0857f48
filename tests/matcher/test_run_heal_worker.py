"""A worker killed mid-batch: the run finishes on its own, about a lease later, through real processes.

Two real Celery worker processes and one beat process on the real Redis broker and the test database.
The batch goes to one of them; once its heartbeat has been renewed, that worker's process group is
SIGKILLed (what the OOM killer or a lost machine does). The surviving worker runs the periodic heal,
takes the batch over and decides it with the real pipeline. Before the heartbeat this waited for the
25-minute lease; nobody presses Resume here.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings as django_settings
from django.db import connection

from config.celery import app
from matcher.models import Listing, Match, MatchRun, MatchRunBatch
from matcher.runs import match_run_start

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

LEASE_S = 3


def _database_url() -> str:
    """The settings' database URL, pointed at the test database this test runs in."""
    parts = urlsplit(django_settings.DATABASE_URL)
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


def _wait(condition: Callable[[], bool], what: Callable[[], str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(what())  # read when it failed: the processes' logs up to then


class Processes:
    """Celery processes of this test, each in its own process group, with its log in a file."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.procs: dict[str, subprocess.Popen] = {}
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": _database_url(),
            "REDIS_DB_OFFSET": str(django_settings.REDIS_DB_OFFSET),
            "MEDIA_ROOT": str(django_settings.MEDIA_ROOT),
            "MATCHER_BATCH_LEASE_S": str(LEASE_S),
            "MATCHER_BATCH_HEAL_S": "1",
            "MATCHER_TORCH_THREADS": "1",
        }

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = (self.tmp_path / f"{name}.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", *args],
            env=self.env, cwd=django_settings.BASE_DIR, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.tmp_path / f"{name}.log").read_text(errors="replace")

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def kill_all(self) -> None:
        for name in self.procs:
            self.kill(name)


def _purge_batches_left_in_the_broker() -> None:
    """The killed worker's message stays unacknowledged in Redis (for the visibility timeout, an hour):
    forget it, and whatever is queued, so no later test's worker meets this test's batches."""
    with app.connection() as conn:
        channel = conn.default_channel
        for queue in ("vision", "default"):
            channel.queue_purge(queue)
        client = channel.client
        for tag, raw in client.hgetall("unacked").items():
            if json.loads(raw)[0]["headers"].get("task") == "matcher.tasks.match_run_batch":
                client.hdel("unacked", tag)
                client.zrem("unacked_index", tag)


@pytest.fixture
def processes(tmp_path) -> Iterator[Processes]:
    _purge_batches_left_in_the_broker()
    procs = Processes(tmp_path)
    try:
        yield procs
    finally:
        procs.kill_all()
        _purge_batches_left_in_the_broker()


def test_a_worker_killed_mid_batch_is_taken_over_and_the_run_finishes_on_its_own(imported_demo, processes):
    worker = ["worker", "-Q", "vision,default", "--pool", "solo", "--without-mingle", "--without-gossip", "-l", "INFO"]
    for name in ("w1", "w2"):
        processes.start(name, *worker, "-n", f"{name}@%h")
    processes.start("beat", "beat", "-l", "INFO", "--schedule", str(processes.tmp_path / "beat-schedule"),
                    "--pidfile", str(processes.tmp_path / "beat.pid"))
    for name in ("w1", "w2"):
        _wait(lambda n=name: " ready." in processes.log(n),
              lambda n=name: f"worker {n} did not start:\n{processes.log(n)}", 90)

    # One SKU and its listings: one batch, decided by the real pipeline.
    sku = Listing.objects.filter(images__fetch_status="ok").values_list("product_id", flat=True).first()
    listings = set(Listing.objects.filter(product_id=sku, images__fetch_status="ok").values_list("id", flat=True))
    run = match_run_start(product_ids=[sku])
    batch = run.batches.get()

    def renewed() -> bool:
        b = MatchRunBatch.objects.get(id=batch.id)
        return b.state == MatchRunBatch.State.RUNNING and b.heartbeat_at > b.claimed_at

    _wait(renewed, lambda: f"no worker claimed the batch and renewed its heartbeat:\n{processes.log('w1')}", 60)
    held = MatchRunBatch.objects.get(id=batch.id)
    victim = next(name for name, p in processes.procs.items() if held.held_by.endswith(f":{p.pid}"))
    survivor = "w2" if victim == "w1" else "w1"
    assert not Match.objects.filter(listing_id__in=listings).exists()  # killed before it wrote a decision

    processes.kill(victim)
    killed_at = time.monotonic()

    _wait(lambda: MatchRun.objects.get(id=run.id).status in (MatchRun.Status.DONE, MatchRun.Status.FAILED),
          lambda: f"the run did not finish:\n{processes.log(survivor)[-3000:]}", 120)
    took = time.monotonic() - killed_at

    run.refresh_from_db()
    batch.refresh_from_db()
    assert run.status == MatchRun.Status.DONE, run.errors
    assert took < 120  # the old lease was 25 minutes
    assert run.batches_done == run.batches_total == 1
    assert batch.state == MatchRunBatch.State.DONE and batch.attempts == 2
    assert batch.held_by.endswith(f":{processes.procs[survivor].pid}")
    # Each listing decided once: one decision each, counted once.
    assert set(Match.objects.filter(run=run).values_list("listing_id", flat=True)) == listings
    assert run.listings_done == len(listings) and run.listings_skipped == 0
    # The periodic heal found the stopped heartbeat, not a restart or a Resume.
    assert f"match batch {batch.id}: worker {held.held_by} stopped" in processes.log(survivor)
