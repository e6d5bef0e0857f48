"""Celery tasks of the matcher app: take ids, call one service, safe to run twice."""

# --- Match runs ---------------------------------------------------------------------------------
from celery import shared_task  # noqa: E402


@shared_task(name="matcher.tasks.match_run_batch", acks_late=True)
def match_run_batch(batch_id: int) -> bool:
    from matcher.runs import match_run_batch_process

    return match_run_batch_process(batch_id=batch_id)
