"""How the review app reacts to the matcher's signals (connected in ReviewConfig.ready)."""

from __future__ import annotations

import logging
from typing import Any

from review.tasks import audit_sample_draw_task

log = logging.getLogger(__name__)


def draw_audit_sample_after_run(*, run_id: int, **_: Any) -> None:
    """A finished run feeds quality control: a share of its new certain decisions goes to audit."""
    try:
        audit_sample_draw_task.delay()
    except Exception:  # the run is committed; a broker outage only delays the sample to the daily draw
        log.exception("could not enqueue the QC sample draw after match run %s", run_id)
