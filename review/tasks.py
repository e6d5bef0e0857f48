"""Background work of the review app: take ids, call one service, safe to run twice."""

from __future__ import annotations

from celery import shared_task

from review import services


@shared_task(name="review.tasks.money_at_risk_refresh_task", ignore_result=True)
def money_at_risk_refresh_task(product_id: int) -> int:
    """Re-rank a SKU's queued pairs after its confirmed matches changed."""
    return services.money_at_risk_refresh(product_id=product_id)


@shared_task(name="review.tasks.audit_sample_draw_task", ignore_result=True)
def audit_sample_draw_task() -> int:
    """Sample new automatic decisions into the QC queue (run after each match run, or daily by beat)."""
    draw = services.audit_sample_draw()
    return draw.sampled_auto + draw.sampled_reject
