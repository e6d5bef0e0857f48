"""Runs that heal: a batch's claim is a short lease its worker renews; a dead worker's batch is taken
over about a lease later, a late finisher adds nothing, and Resume says what is held, by whom, until when.

The SKUs here have no photos, so deciding a batch is instant and the tests stay fast; the real
pipeline killed mid-batch in a real worker process is in test_run_heal_worker.py.
"""
from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command
from django.db import connections, transaction
from django.utils import timezone

from config.celery import app
from matcher.matching import toolkit
from matcher.models import MatchRun, MatchRunBatch
from matcher.runs import (
    BATCH_MAX_ATTEMPTS,
    Heartbeat,
    claim_batch,
    match_run_batch_process,
    match_run_resume,
    match_run_start,
    match_runs_heal,
)
from matcher.services import thresholds_active
from tests.factories import ListingFactory, ProductFactory


def _run_of(n_skus: int = 2, listings: int = 3, *, batch_size: int = 10) -> tuple[MatchRun, MatchRunBatch]:
    products = [ProductFactory() for _ in range(n_skus)]
    for product in products:
        ListingFactory.create_batch(listings, product=product)
    run = match_run_start(product_ids=[p.id for p in products], enqueue=False)
    return run, run.batches.order_by("id").first()


def _held(batch: MatchRunBatch, *, by: str, beat_ago: timedelta, attempts: int = 1) -> None:
    """What a worker's claim leaves on the row: running, its name, its last heartbeat."""
    MatchRunBatch.objects.filter(id=batch.id).update(
        state=MatchRunBatch.State.RUNNING, held_by=by, attempts=attempts,
        claimed_at=timezone.now() - beat_ago, heartbeat_at=timezone.now() - beat_ago,
    )


def _wait(condition: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(what)


def _in_thread(target: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """Run `target` as another worker would: its own thread, its own connection, closed at the end."""
    out: list[object] = []

    def body() -> None:
        try:
            out.append(target())
        finally:
            connections.close_all()

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread, out


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    """Enqueued tasks run at once in this process, so a test sees what the worker would do."""
    before = {key: app.conf[key] for key in ("task_always_eager", "task_eager_propagates")}
    app.conf.update(task_always_eager=True, task_eager_propagates=True)
    yield
    app.conf.update(before)


# --- the lease ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_renewed_heartbeat_keeps_a_batch_that_outlives_its_lease_from_being_claimed(settings):
    settings.MATCHER_BATCH_LEASE_S = 1  # renewed every ~0.33 s
    run, batch = _run_of()
    claim = claim_batch(batch.id)
    assert claim is not None and claim.attempt == 1

    with Heartbeat(claim) as heartbeat:
        first = MatchRunBatch.objects.get(id=batch.id).heartbeat_at
        for _ in range(6):  # three leases in all
            time.sleep(0.5)
            assert match_run_batch_process(batch_id=batch.id) is False  # another worker's delivery
            assert match_runs_heal() == []
        renewed = MatchRunBatch.objects.get(id=batch.id)
        assert renewed.heartbeat_at > first and renewed.held_by == claim.holder
        assert not heartbeat.lost

    # The worker is gone (its heartbeat stopped): a lease later the batch is free again.
    time.sleep(1.2)
    assert match_run_batch_process(batch_id=batch.id) is True
    run.refresh_from_db()
    batch.refresh_from_db()
    assert batch.state == MatchRunBatch.State.DONE and batch.attempts == 2
    assert run.status == MatchRun.Status.DONE and run.batches_done == run.batches_total == 1


@pytest.mark.django_db
def test_a_live_heartbeat_is_respected_and_an_expired_one_is_taken_over(settings):
    settings.MATCHER_BATCH_LEASE_S = 90
    run, batch = _run_of()
    _held(batch, by="vision0@gone:4242", beat_ago=timedelta(seconds=80))
    assert match_run_batch_process(batch_id=batch.id) is False

    _held(batch, by="vision0@gone:4242", beat_ago=timedelta(seconds=100))
    assert match_run_batch_process(batch_id=batch.id) is True
    batch.refresh_from_db()
    run.refresh_from_db()
    assert batch.state == MatchRunBatch.State.DONE and batch.attempts == 2 and batch.held_by != "vision0@gone:4242"
    assert run.batches_done == 1 and run.listings_skipped == run.listings_total == 6  # no photos: skipped


@pytest.mark.django_db
def test_the_periodic_heal_re_enqueues_a_dead_workers_batch_and_the_run_finishes(
    settings, eager_tasks, django_capture_on_commit_callbacks
):
    settings.MATCHER_BATCH_LEASE_S = 90
    run, batch = _run_of()
    alive_run, alive = _run_of()
    _held(batch, by="vision0@gone:4242", beat_ago=timedelta(minutes=3))
    _held(alive, by="vision1@busy:77", beat_ago=timedelta(seconds=5))

    with django_capture_on_commit_callbacks(execute=True):
        healed = app.tasks["matcher.tasks.match_runs_heal"].apply().get()

    assert healed == 1  # the live worker's batch is left alone
    run.refresh_from_db()
    assert run.status == MatchRun.Status.DONE and run.batches_done == run.batches_total == 1
    assert MatchRunBatch.objects.get(id=alive.id).held_by == "vision1@busy:77"
    assert match_runs_heal() == []  # nothing left to heal


@pytest.mark.django_db
def test_a_batch_whose_worker_died_on_every_attempt_is_failed_so_the_run_finishes(settings):
    settings.MATCHER_BATCH_LEASE_S = 90
    run, batch = _run_of()
    _held(batch, by="vision0@gone:4242", beat_ago=timedelta(minutes=3), attempts=BATCH_MAX_ATTEMPTS)

    assert match_runs_heal() == []

    batch.refresh_from_db()
    run.refresh_from_db()
    assert batch.state == MatchRunBatch.State.FAILED and "worker died on every attempt" in batch.error
    assert run.status == MatchRun.Status.FAILED and run.batches_done == 1 and run.failures == 1
    assert match_run_resume(run_id=run.id).requeued_ids == (batch.id,)  # a person may still try it again


@pytest.mark.django_db(transaction=True)
def test_a_late_finisher_whose_batch_was_taken_over_does_not_count_it_again(settings):
    settings.MATCHER_BATCH_LEASE_S = 60  # no renewal (every 20 s) inside this test
    run, batch = _run_of(n_skus=2, listings=3)
    # What a running worker has already: the threshold version and its models (loaded once per process).
    thresholds_active()
    toolkit()
    holding = threading.Event()
    release = threading.Event()

    def hold_the_run_row() -> None:
        # Both workers stop right after their claim, on the run row (they mark it started), until released.
        with transaction.atomic():
            MatchRun.objects.select_for_update().get(id=run.id)
            holding.set()
            release.wait(20)

    holder, _ = _in_thread(hold_the_run_row)
    holding.wait(10)
    late, late_result = _in_thread(lambda: match_run_batch_process(batch_id=batch.id))
    _wait(lambda: MatchRunBatch.objects.get(id=batch.id).attempts == 1, "the first worker did not claim")

    # The first worker's heartbeat stopped (a pause longer than the lease); a second worker takes over.
    MatchRunBatch.objects.filter(id=batch.id).update(heartbeat_at=timezone.now() - timedelta(minutes=2))
    second, second_result = _in_thread(lambda: match_run_batch_process(batch_id=batch.id))
    _wait(lambda: MatchRunBatch.objects.get(id=batch.id).attempts == 2, "the second worker did not take over")

    release.set()
    for thread in (holder, late, second):
        thread.join(20)

    assert late_result == [False] and second_result == [True]
    run.refresh_from_db()
    assert run.status == MatchRun.Status.DONE
    assert run.batches_done == run.batches_total == 1
    assert run.listings_skipped == run.listings_total == 6  # once, not twice
    assert run.counts["no_sku_images"] == 2


@pytest.mark.django_db(transaction=True)
def test_a_worker_that_only_stalled_finishes_its_batch_if_nobody_took_it_yet(settings):
    settings.MATCHER_BATCH_LEASE_S = 60
    run, batch = _run_of()
    claim = claim_batch(batch.id)
    assert claim is not None
    # The heal handed it back while its worker paused; the re-enqueued message has not run yet.
    MatchRunBatch.objects.filter(id=batch.id).update(heartbeat_at=timezone.now() - timedelta(minutes=2))
    assert match_runs_heal() == [batch.id]

    # The paused worker's claim is still the latest: its renewal takes the batch back.
    with Heartbeat(claim) as heartbeat:
        assert heartbeat._renew() is True
    batch.refresh_from_db()
    assert batch.state == MatchRunBatch.State.RUNNING and batch.held_by == claim.holder
    assert match_run_batch_process(batch_id=batch.id) is False  # the re-enqueued message finds it held


# --- resume: what it did, what is held ------------------------------------------------------------


@pytest.mark.django_db
def test_resume_re_enqueues_what_is_free_and_lists_each_held_batch_with_its_holder_and_deadline(settings):
    settings.MATCHER_BATCH_LEASE_S = 90
    settings.MATCHER_BATCH_SIZE = 1
    run, _ = _run_of(n_skus=4)
    pending, dead, failed, held = run.batches.order_by("id")
    _held(dead, by="vision0@gone:11", beat_ago=timedelta(minutes=5))
    _held(held, by="vision1@alive:22", beat_ago=timedelta(seconds=30))
    MatchRunBatch.objects.filter(id=failed.id).update(state=MatchRunBatch.State.FAILED, error="boom")
    MatchRun.objects.filter(id=run.id).update(batches_done=1, failures=1)

    result = match_run_resume(run_id=run.id)

    assert result.requeued_ids == (pending.id, dead.id, failed.id)
    (only,) = result.held
    beat = MatchRunBatch.objects.get(id=held.id).heartbeat_at
    assert (only.batch_id, only.held_by, only.heartbeat_at) == (held.id, "vision1@alive:22", beat)
    assert only.held_until == beat + timedelta(seconds=90)
    assert set(run.batches.filter(id__in=result.requeued_ids).values_list("state", "held_by")) == {("pending", "")}
    run.refresh_from_db()
    assert (run.batches_done, run.failures, run.status) == (0, 0, MatchRun.Status.RUNNING)

    lines = result.describe()
    assert lines[0] == f"실행 #{run.id}: 배치 3개를 다시 대기열에 넣었습니다 (re-enqueued): #{pending.id}, #{dead.id}, #{failed.id}"
    until = timezone.localtime(only.held_until).strftime("%Y-%m-%d %H:%M:%S")
    assert f"배치 #{held.id}: vision1@alive:22" in lines[1] and f"{until}까지 잡혀 있고" in lines[1]


@pytest.mark.django_db
def test_resume_of_a_run_that_does_not_exist_raises_not_found():
    with pytest.raises(MatchRun.DoesNotExist):
        match_run_resume(run_id=987654)


@pytest.mark.django_db
def test_the_command_says_nothing_was_re_enqueued_and_who_holds_what_until_when_not_in_success_colours(settings):
    settings.MATCHER_BATCH_LEASE_S = 90
    run, batch = _run_of()
    _held(batch, by="vision0@alive:33", beat_ago=timedelta(seconds=10))
    out = io.StringIO()

    call_command("match", "--resume", str(run.id), "--no-wait", stdout=out, force_color=True)

    text = out.getvalue()
    until = timezone.localtime(match_run_resume(run_id=run.id).held[0].held_until).strftime("%H:%M:%S")
    assert f"실행 #{run.id}: 다시 대기열에 넣은 배치가 없습니다 (nothing re-enqueued)." in text
    assert f"배치 #{batch.id}: vision0@alive:33이(가) 작업 중입니다 (held)" in text and until in text
    assert "\x1b[32;1m" not in text  # SUCCESS's green
    assert "\x1b[33;1m" in text  # WARNING's yellow

    MatchRunBatch.objects.filter(id=batch.id).update(heartbeat_at=timezone.now() - timedelta(minutes=3))
    out = io.StringIO()
    call_command("match", "--resume", str(run.id), "--no-wait", stdout=out, force_color=True)
    assert f"배치 1개를 다시 대기열에 넣었습니다 (re-enqueued): #{batch.id}" in out.getvalue()
    assert "\x1b[32;1m" in out.getvalue()

    with pytest.raises(CommandError, match="없습니다"):
        call_command("match", "--resume", "987654", "--no-wait", stdout=io.StringIO())


@pytest.fixture
def admin_client(client):
    user = User.objects.create_user("boss", password="x")
    user.groups.add(Group.objects.get(name="admin"))
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_the_resume_button_says_which_batch_is_held_by_whom_until_when_as_a_warning(admin_client, settings):
    settings.MATCHER_BATCH_LEASE_S = 90
    run, batch = _run_of()
    _held(batch, by="vision0@alive:44", beat_ago=timedelta(seconds=10))
    url = f"/matcher/runs/{run.id}/resume/"

    part = admin_client.post(url, HTTP_HX_REQUEST="true")
    body = part.content.decode()
    assert part.status_code == 200 and "<html" not in body and 'id="run-resume"' in body
    assert "다시 대기열에 넣은 배치가 없습니다" in body and "vision0@alive:44" in body and "까지 잡혀 있고" in body
    assert 'class="success"' not in body and 'class="warning"' in body

    page = admin_client.post(url, follow=True)
    levels = [(m.level_tag, str(m)) for m in page.context["messages"]]
    assert [tag for tag, _ in levels] == ["warning", "warning"]
    assert "vision0@alive:44" in levels[1][1]

    MatchRunBatch.objects.filter(id=batch.id).update(heartbeat_at=timezone.now() - timedelta(minutes=3))
    body = admin_client.post(url, HTTP_HX_REQUEST="true").content.decode()
    assert f"배치 1개를 다시 대기열에 넣었습니다 (re-enqueued): #{batch.id}" in body and 'class="success"' in body

    assert admin_client.post("/matcher/runs/987654/resume/", HTTP_HX_REQUEST="true").status_code == 404
