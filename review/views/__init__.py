"""Pages of the review app, by page: the pair queue, the list with bulk decisions, calibration,
quality control and reviewer stats. review/urls.py routes to the names re-exported here."""

from review.views.calibration import calibration, thresholds_save
from review.views.lists import bulk, pair_list
from review.views.quality import audit_draw, quality, stats
from review.views.queue import claim_release, claim_renew, decide, queue, summary, undo

__all__ = [
    "audit_draw",
    "bulk",
    "calibration",
    "claim_release",
    "claim_renew",
    "decide",
    "pair_list",
    "quality",
    "queue",
    "stats",
    "summary",
    "thresholds_save",
    "undo",
]
