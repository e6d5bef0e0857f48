"""Reads of the stats page: decisions per active hour and agreement with QC samples, per reviewer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from review.models import ReviewDecision

IDLE_GAP_SECONDS = 300  # a longer gap between two decisions is a break, not review time


@dataclass
class ReviewerStats:
    user_id: int
    username: str
    decisions: int
    approvals: int
    skips: int
    undone: int
    active_seconds: float
    audits: int
    audit_agreements: int

    @property
    def per_hour(self) -> float | None:
        """Decisions per hour of active review (gaps up to IDLE_GAP_SECONDS between consecutive actions)."""
        return self.decisions / (self.active_seconds / 3600) if self.active_seconds > 0 else None

    @property
    def agreement(self) -> float | None:
        return self.audit_agreements / self.audits if self.audits else None


def reviewer_stats(*, days: int = 7, user_id: int | None = None) -> list[ReviewerStats]:
    """Decisions per active hour and agreement with automatic decisions on QC samples, per reviewer."""
    since = timezone.now() - timedelta(days=days)
    decision_table = ReviewDecision._meta.db_table
    user_table = ReviewDecision._meta.get_field("user").related_model._meta.db_table
    sql = f"""
        WITH d AS (
            SELECT r.id, r.user_id, r.action, r.audit_item, r.bucket,
                   EXTRACT(EPOCH FROM r.created_at - lag(r.created_at) OVER (
                       PARTITION BY r.user_id ORDER BY r.created_at, r.id)) AS gap,
                   EXISTS (SELECT 1 FROM {decision_table} u WHERE u.undoes_id = r.id) AS undone
            FROM {decision_table} r
            WHERE r.created_at >= %s AND r.action IN ('approve', 'reject', 'skip')
              AND (%s::bigint IS NULL OR r.user_id = %s::bigint)
        )
        SELECT d.user_id, u.username,
               count(*) FILTER (WHERE d.action IN ('approve', 'reject')),
               count(*) FILTER (WHERE d.action = 'approve'),
               count(*) FILTER (WHERE d.action = 'skip'),
               count(*) FILTER (WHERE d.undone),
               coalesce(sum(d.gap) FILTER (WHERE d.gap <= %s), 0),
               count(*) FILTER (WHERE d.audit_item AND d.action IN ('approve', 'reject') AND NOT d.undone),
               count(*) FILTER (WHERE d.audit_item AND NOT d.undone AND (
                   (d.action = 'approve' AND d.bucket = 'auto')
                   OR (d.action = 'reject' AND d.bucket = 'reject')))
        FROM d JOIN {user_table} u ON u.id = d.user_id
        GROUP BY d.user_id, u.username
        ORDER BY 3 DESC, u.username
    """
    with connection.cursor() as cur:
        cur.execute(sql, [since, user_id, user_id, IDLE_GAP_SECONDS])
        rows = cur.fetchall()
    return [
        ReviewerStats(
            user_id=r[0],
            username=r[1],
            decisions=r[2],
            approvals=r[3],
            skips=r[4],
            undone=r[5],
            active_seconds=float(r[6]),
            audits=r[7],
            audit_agreements=r[8],
        )
        for r in rows
    ]
