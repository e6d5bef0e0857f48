"""Writes of the review app, by noun: claims, decisions, quality control and thresholds.

Each public function takes keyword-only arguments, validates before writing and runs in one
transaction together with its audit row; side effects (the QC cache, `matches_changed`) run on
commit. Callers import from here (`from review import services`).
"""

from review.exceptions import ReviewRefused
from review.services.claims import claim_attach, claim_lease, claim_pair, claim_release, claim_renew
from review.services.decisions import (
    BULK_MAX,
    NOTE_MAX,
    Action,
    BulkResult,
    decision_overturn,
    decision_record,
    decision_skip,
    decision_undo,
    decisions_bulk,
    overturn_action,
)
from review.services.quality import audit_sample_draw, review_settings_update
from review.services.thresholds import thresholds_save

__all__ = [
    "BULK_MAX",
    "NOTE_MAX",
    "Action",
    "BulkResult",
    "ReviewRefused",
    "audit_sample_draw",
    "claim_attach",
    "claim_lease",
    "claim_pair",
    "claim_release",
    "claim_renew",
    "decision_overturn",
    "decision_record",
    "decision_skip",
    "decision_undo",
    "decisions_bulk",
    "overturn_action",
    "review_settings_update",
    "thresholds_save",
]
