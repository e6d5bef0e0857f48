"""Background work of the review app: take ids, call one service, safe to run twice."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="review.tasks.audit_sample_draw_task", ignore_result=True)
def audit_sample_draw_task() -> int:
    """Sample new automatic decisions into the QC queue (after each match run, and daily by beat)."""
    # Imported here, not at the top: services enqueue tasks, so tasks reach services at call time.
    from review import services

    draw = services.audit_sample_draw()
    return draw.sampled_auto + draw.sampled_reject
