"""The Celery app. Workers on any machine run: celery -A config worker -Q <queues>."""
import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("pricematch")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _limit_threads(**_: object) -> None:
    # Each worker process owns its cores; torch otherwise oversubscribes a small machine.
    from django.conf import settings

    threads = settings.MATCHER_TORCH_THREADS
    if threads:
        try:
            import torch

            torch.set_num_threads(threads)
        except ImportError:
            pass
