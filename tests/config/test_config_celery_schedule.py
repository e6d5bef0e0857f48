"""The beat schedule names real tasks: each periodic entry is a task registered under that name."""

from __future__ import annotations

import re

import pytest
from django.conf import settings

from config.celery import app

PERIODIC = {
    "matcher.tasks.llm_batch_resume",
    "matcher.tasks.match_changed_listings",
    "matcher.tasks.match_runs_heal",
    "pricing.tasks.alerts_evaluate_task",
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


def test_the_readme_beat_table_lists_exactly_the_scheduled_tasks():
    readme = (settings.BASE_DIR / "README.md").read_text(encoding="utf-8")
    table = readme.split("<!-- beat:start -->")[1].split("<!-- beat:end -->")[0]
    assert set(re.findall(r"^\| `([\w.]+)` \|", table, flags=re.M)) == PERIODIC


def test_dead_workers_batches_are_healed_often_and_off_the_busy_vision_queue():
    [entry] = [e for e in app.conf.beat_schedule.values() if e["task"] == "matcher.tasks.match_runs_heal"]
    assert entry["schedule"] == settings.MATCHER_BATCH_HEAL_S < settings.MATCHER_BATCH_LEASE_S
    assert entry["options"]["queue"] == "default"


def test_importing_the_celery_app_does_not_configure_django():
    """The benchmarks import `config` before they point DATABASE_URL at their own database: if the import
    read Django's settings, `make bench` would write its catalogue into the working database."""
    import subprocess
    import sys

    code = "import config; from django.conf import settings; print(settings.configured)"
    env = {k: v for k, v in __import__("os").environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "False"
