"""Reads of the review app, by page: the queue, quality control, calibration and reviewer stats.

Each runs a fixed number of queries whatever the queue size. Callers import from here
(`from review import selectors`); the submodules are the place to read the code.
"""

from review.selectors.calibration import (
    BUCKETS,
    BandRow,
    Simulation,
    calibration_bands,
    threshold_simulation,
)
from review.selectors.quality import (
    PAUSE_CACHE_KEY,
    PAUSE_CACHE_SECONDS,
    QcEstimate,
    audits_needed,
    auto_pricing_paused,
    effective_decisions,
    qc_estimate,
    review_settings,
    wilson_interval,
    z_value,
)
from review.selectors.queue import (
    SKIP_MEMORY,
    ListPage,
    QueueSummary,
    active_claims_by_others,
    last_decision,
    last_undoable,
    my_open_claim,
    pair_for_display,
    pair_queryset,
    queue_candidates,
    queue_list,
    queue_summary,
)
from review.selectors.stats import IDLE_GAP_SECONDS, ReviewerStats, reviewer_stats

__all__ = [
    "BUCKETS",
    "IDLE_GAP_SECONDS",
    "PAUSE_CACHE_KEY",
    "PAUSE_CACHE_SECONDS",
    "SKIP_MEMORY",
    "BandRow",
    "ListPage",
    "QcEstimate",
    "QueueSummary",
    "ReviewerStats",
    "Simulation",
    "active_claims_by_others",
    "audits_needed",
    "auto_pricing_paused",
    "calibration_bands",
    "effective_decisions",
    "last_decision",
    "last_undoable",
    "my_open_claim",
    "pair_for_display",
    "pair_queryset",
    "qc_estimate",
    "queue_candidates",
    "queue_list",
    "queue_summary",
    "review_settings",
    "reviewer_stats",
    "threshold_simulation",
    "wilson_interval",
    "z_value",
]
