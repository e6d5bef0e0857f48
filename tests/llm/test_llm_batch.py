"""Batch API mode: submit inline requests, poll, collect into the cache, resume from another process."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from decimal import Decimal
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings as django_settings
from django.db import connection

from matcher import llm
from matcher.models import LlmBatchJob, LlmVerdictRecord, MatchRun
from tests.fakes import gemini_server as fg
from tests.llm.pairs import FAST, FLASH_CALL_USD, batch_results, batch_submit, pair

HALF_PRICE_CALL_USD = FLASH_CALL_USD / 2


@pytest.mark.django_db
def test_a_batch_is_submitted_with_one_inline_request_per_new_pair(fake_gemini):
    llm.verify_pairs(pairs=[pair(1)], run_id=None, product_id=None)  # already paid for: not sent again
    run = MatchRun.objects.create()

    job = batch_submit(run_id=run.id, pairs=[pair(1), pair(2), pair(3), pair(3)])

    assert job.state == LlmBatchJob.State.SUBMITTED
    assert job.remote_name.startswith("batches/")
    assert [r["key"] for r in job.requests] == [
        llm.cache_key(p.image_a_hash, p.image_b_hash, "verify_v1", FAST) for p in (pair(2), pair(3))
    ]
    remote = fake_gemini.batches[job.remote_name]
    assert remote.model == FAST and len(remote.requests) == 2
    sent = remote.requests[0]["request"]
    assert sent["generationConfig"]["responseMimeType"] == "application/json"
    assert {s["threshold"] for s in sent["safetySettings"]} == {"BLOCK_ONLY_HIGH"}
    assert remote.requests[0]["metadata"] == {"key": job.requests[0]["key"]}


@pytest.mark.django_db
def test_poll_waits_while_pending_then_collects_verdicts_into_the_cache_at_half_price(fake_gemini):
    run = MatchRun.objects.create()
    job = batch_submit(run_id=run.id, pairs=[pair(1, match_id=11), pair(2, match_id=12)])

    assert llm.batch_poll_and_collect(job_id=job.id).state == LlmBatchJob.State.SUBMITTED
    fake_gemini.complete_batch(job.remote_name)
    job = llm.batch_poll_and_collect(job_id=job.id)

    assert job.state == LlmBatchJob.State.COLLECTED
    assert job.cost_usd == 2 * HALF_PRICE_CALL_USD
    records = LlmVerdictRecord.objects.filter(batch=True, ok=True, run=run)
    assert records.count() == 2 and {r.cost_usd for r in records} == {HALF_PRICE_CALL_USD}
    results = batch_results(job_id=job.id)
    assert [meta["match_id"] for meta, _ in results] == [11, 12]
    assert all(v.error is None and v.is_match for _, v in results)
    # Online verification of the same pairs now costs nothing and asks nothing.
    before = fake_gemini.generate_count()
    verdicts = llm.verify_pairs(pairs=[pair(1), pair(2)], run_id=run.id, product_id=None)
    assert fake_gemini.generate_count() == before == 0
    assert all(v.cached for v in verdicts)


@pytest.mark.django_db
def test_collecting_twice_records_each_verdict_once(fake_gemini):
    job = batch_submit(run_id=None, pairs=[pair(1)])
    fake_gemini.complete_batch()

    llm.batch_poll_and_collect(job_id=job.id)
    llm.batch_poll_and_collect(job_id=job.id)

    assert LlmVerdictRecord.objects.count() == 1
    assert fake_gemini.count("batch_get") == 1  # a collected job is not polled again


@pytest.mark.django_db
def test_a_failed_item_in_a_batch_gets_an_error_verdict_and_is_not_cached(fake_gemini):
    job = batch_submit(run_id=None, pairs=[pair(1), pair(2)])
    fake_gemini.push(fg.ok(), fg.malformed())
    fake_gemini.complete_batch()

    llm.batch_poll_and_collect(job_id=job.id)
    (_, good), (_, bad) = batch_results(job_id=job.id)

    assert good.error is None
    assert bad.error and bad.is_match is None
    assert LlmVerdictRecord.objects.filter(ok=True).count() == 1
    assert LlmVerdictRecord.objects.filter(ok=False, batch=True).count() == 1  # billed, so in the ledger


@pytest.mark.django_db
def test_a_failed_remote_job_is_marked_failed_and_its_pairs_get_error_verdicts(fake_gemini):
    job = batch_submit(run_id=None, pairs=[pair(1)])
    fake_gemini.fail_batch(job.remote_name)

    job = llm.batch_poll_and_collect(job_id=job.id)

    assert job.state == LlmBatchJob.State.FAILED and "FAILED" in job.error
    [(_, verdict)] = batch_results(job_id=job.id)
    assert verdict.error


@pytest.mark.django_db
def test_no_batch_is_submitted_past_the_spend_cap(fake_gemini, settings):
    settings.GEMINI_DAILY_SPEND_CAP_USD = Decimal("0")

    job = batch_submit(run_id=None, pairs=[pair(1)])

    assert job.state == LlmBatchJob.State.FAILED and "spend cap" in job.error
    assert fake_gemini.count("batch_create") == 0


@pytest.mark.django_db
def test_a_job_interrupted_before_its_name_was_saved_is_found_by_its_display_name(fake_gemini):
    job = batch_submit(run_id=None, pairs=[pair(1)])
    remote_name = job.remote_name
    # As if the worker died after the provider accepted the job but before the row was updated.
    long_ago = job.updated_at - llm.BATCH_PREPARING_STALE * 2
    LlmBatchJob.objects.filter(id=job.id).update(
        state=LlmBatchJob.State.PREPARING, remote_name="", updated_at=long_ago
    )

    job = llm.batch_poll_and_collect(job_id=job.id)

    assert job.state == LlmBatchJob.State.SUBMITTED and job.remote_name == remote_name


def _database_url() -> str:
    """The settings' database URL, pointed at the test database this test runs in."""
    parts = urlsplit(django_settings.DATABASE_URL)
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


@pytest.mark.django_db(transaction=True)
def test_after_a_restart_a_new_process_picks_up_a_submitted_job_by_its_remote_name(fake_gemini):
    job = batch_submit(run_id=None, pairs=[pair(1), pair(2)])
    assert job.state == LlmBatchJob.State.SUBMITTED
    fake_gemini.complete_batch()

    # A fresh interpreter: nothing in memory but what is in the database and the settings.
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": _database_url(),
        "REDIS_DB_OFFSET": str(django_settings.REDIS_DB_OFFSET),
        "GEMINI_API_KEY": "test-key",
        "GEMINI_BASE_URL": fake_gemini.base_url,
        "GEMINI_MODEL": FAST,
    }
    script = (
        "import sys, django; django.setup();"
        "from matcher.llm import batch_poll_and_collect;"
        "print(batch_poll_and_collect(job_id=int(sys.argv[1])).state)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(job.id)],
        env=env, cwd=django_settings.BASE_DIR, capture_output=True, text=True, timeout=120,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "collected"
    job.refresh_from_db()
    assert job.state == LlmBatchJob.State.COLLECTED
    assert LlmVerdictRecord.objects.filter(batch=True, ok=True).count() == 2
    assert fake_gemini.count("batch_get") == 1


@pytest.mark.django_db(transaction=True)
def test_the_llm_batch_poll_task_collects_a_finished_job_on_the_llm_queue(fake_gemini):
    from celery.contrib.testing.worker import start_worker

    from config.celery import app
    from matcher.tasks import llm_batch_poll

    job = batch_submit(run_id=None, pairs=[pair(1)])
    fake_gemini.complete_batch()

    with start_worker(app, queues=["llm"], perform_ping_check=False, shutdown_timeout=30):
        llm_batch_poll.delay(job.id)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            job.refresh_from_db()
            if job.state == LlmBatchJob.State.COLLECTED:
                break
            time.sleep(0.2)

    assert job.state == LlmBatchJob.State.COLLECTED
    assert LlmVerdictRecord.objects.filter(batch=True, ok=True).count() == 1
