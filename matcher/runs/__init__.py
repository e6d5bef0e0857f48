"""Match runs: a row with counts and timings, split into batches of SKUs that workers claim.

- start.py     a run over some SKUs (or the catalogue) and its batches, cut by listing count
- changes.py   the periodic run over SKUs whose listings changed since they were decided
- lease.py     a worker's claim on a batch: short lease, heartbeat thread, numbered claims
- batch.py     processing one batch and counting it on its run
- recovery.py  resume (on request) and heal (periodic) after a worker died

Decisions are written per listing with update_or_create, so re-running a batch duplicates nothing.
"""
from __future__ import annotations

from matcher.runs.batch import finish_if_complete, match_run_batch_process
from matcher.runs.changes import MATCH_CHANGES_MAX_SKUS, match_run_for_changes, products_with_changed_listings
from matcher.runs.lease import Claim, Heartbeat, claim_batch, worker_name
from matcher.runs.recovery import (
    BATCH_MAX_ATTEMPTS,
    HeldBatch,
    ResumeResult,
    match_run_resume,
    match_runs_heal,
)
from matcher.runs.start import batch_product_ids, match_run_start

__all__ = [
    "BATCH_MAX_ATTEMPTS",
    "MATCH_CHANGES_MAX_SKUS",
    "Claim",
    "HeldBatch",
    "Heartbeat",
    "ResumeResult",
    "batch_product_ids",
    "claim_batch",
    "finish_if_complete",
    "match_run_batch_process",
    "match_run_for_changes",
    "match_run_resume",
    "match_run_start",
    "match_runs_heal",
    "products_with_changed_listings",
    "worker_name",
]
