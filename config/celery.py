"""The Celery app. Workers on any machine run: celery -A config worker -Q <queues>."""
import logging
import os

from celery import Celery
from celery.schedules import crontab
from celery.signals import worker_process_init, worker_ready
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
log = logging.getLogger(__name__)

app = Celery("pricematch")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Periodic work, sent by one `celery -A config beat` process (the demo runs it inside its worker, -B).
# Each entry names a task registered under that explicit name (tests/config checks they exist).
# - llm_batch_resume polls every open Batch API job (collect → write-back → escalation) and submits
#   pairs a dead worker left awaiting. Batch answers take minutes to hours, so 5 minutes loses little.
# - reprice_due_task continues price moves a limit cut short once their 24-hour window has passed.
# - webhook_redeliver_pending re-sends price webhooks whose enqueue was lost (broker down at commit).
# - audit_sample_draw_task: the daily QC sample, for days without a match run (each run draws one too).
# - match_changed_listings starts a match run over SKUs whose listings are new or changed since their
#   decision (one run at a time), so re-scraped titles, prices and photos are re-decided within the hour.
# - match_runs_heal re-enqueues match batches whose worker died (heartbeat older than the lease), so a
#   run finishes on its own. On the default queue: the vision workers may all be busy with batches.
# - alerts_evaluate_task opens, keeps or clears the alerts (competitor below our floor, proposals waiting,
#   automatic pricing paused, stale listings, LLM spend); each finished match run also runs it.
#
# Built when Celery configures itself, not at import: two intervals come from Django's settings, and
# reading them here would configure Django the moment anything imports `config` (the benchmarks
# import it before pointing DATABASE_URL at their own database).
def beat_schedule() -> dict[str, dict[str, object]]:
    return {
        "match-runs-heal": {
            "task": "matcher.tasks.match_runs_heal",
            "schedule": float(settings.MATCHER_BATCH_HEAL_S),
            "options": {"queue": "default", "expires": max(1, settings.MATCHER_BATCH_HEAL_S - 1)},
        },
        "match-changed-listings": {
            "task": "matcher.tasks.match_changed_listings",
            "schedule": 60 * 60.0,
            "options": {"queue": "default", "expires": 59 * 60},
        },
        "llm-batch-resume": {
            "task": "matcher.tasks.llm_batch_resume",
            "schedule": 5 * 60.0,
            "options": {"queue": "llm", "expires": 4 * 60},
        },
        "pricing-reprice-due": {
            "task": "pricing.tasks.reprice_due_task",
            "schedule": 15 * 60.0,
            "options": {"expires": 14 * 60},
        },
        "pricing-webhook-redeliver": {
            "task": "pricing.tasks.webhook_redeliver_pending",
            "schedule": 10 * 60.0,
            "options": {"expires": 9 * 60},
        },
        "pricing-alerts-evaluate": {
            "task": "pricing.tasks.alerts_evaluate_task",
            "schedule": float(settings.ALERT_EVALUATE_S),
            "options": {"expires": max(1, settings.ALERT_EVALUATE_S - 1)},
        },
        "review-audit-sample-daily": {
            "task": "review.tasks.audit_sample_draw_task",
            "schedule": crontab(hour=6, minute=0),
            "options": {"expires": 60 * 60},
        },
    }


@app.on_after_configure.connect
def _schedule(sender: Celery, **_: object) -> None:
    sender.conf.beat_schedule = beat_schedule()


@worker_process_init.connect
def _limit_threads(**_: object) -> None:
    # Each worker process owns its cores; torch otherwise oversubscribes a small machine.
    threads = settings.MATCHER_TORCH_THREADS
    if threads:
        try:
            import torch

            torch.set_num_threads(threads)
        except ImportError:
            pass


def _resume_interrupted_runs(**_: object) -> None:
    """A worker coming up re-enqueues what interrupted runs left (batches a live worker holds stay)."""
    # Imported here, not at the top: this module is loaded (by config/__init__.py) before Django has
    # set up its apps, and matcher's modules import its models. By worker_ready the apps are ready.
    from matcher.models import MatchRun
    from matcher.runs import match_run_resume

    try:
        for run_id in MatchRun.objects.filter(status=MatchRun.Status.RUNNING).values_list("id", flat=True):
            match_run_resume(run_id=run_id)
    except Exception:  # the database may not be migrated yet; the worker must still start
        log.exception("could not resume interrupted match runs")


worker_ready.connect(_resume_interrupted_runs)
