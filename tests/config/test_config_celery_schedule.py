"""The beat schedule names real tasks: each periodic entry is a task registered under that name."""

from __future__ import annotations

import pytest

from config.celery import app

PERIODIC = {
    "matcher.tasks.llm_batch_resume",
    "pricing.tasks.reprice_due_task",
    "pricing.tasks.webhook_redeliver_pending",
    "review.tasks.audit_sample_draw_task",
}


def test_the_schedule_runs_the_periodic_work_of_every_app():
    scheduled = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert scheduled == PERIODIC


@pytest.mark.parametrize("name", sorted(PERIODIC))
def test_each_scheduled_name_is_a_task_registered_in_the_celery_app(name):
    app.loader.import_default_modules()  # what a worker does at start: the apps' tasks modules
    assert name in app.tasks
    assert app.tasks[name].name == name


def test_the_tasks_the_signals_enqueue_keep_their_names():
    # Broker messages carry these names: renaming one strands the messages already queued.
    app.loader.import_default_modules()
    for name in (
        "pricing.tasks.reprice_product_task",
        "pricing.tasks.money_at_risk_refresh_task",
        "pricing.tasks.deliver_webhook_task",
        "pricing.tasks.reprice_run_task",
    ):
        assert name in app.tasks


def test_the_daily_entries_are_read_in_korean_time():
    from config.celery import app

    assert str(app.conf.timezone) == "Asia/Seoul"
