"""How the pricing app reacts to the matcher's signals (connected in PricingConfig.ready).

`matches_changed` arrives after the change committed (a review decision, a match run, an LLM
write-back): re-price the SKUs whose confirmed matches may have moved and re-rank the queued pairs
of every SKU touched. Each enqueue stands alone: a broker outage is logged and must not turn a
committed decision into an error page, nor stop the other SKUs' messages.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from pricing.tasks import money_at_risk_refresh_task, reprice_product_task

log = logging.getLogger(__name__)


def reprice_after_matches_changed(
    *, product_ids: Iterable[int], reprice_ids: Iterable[int], cause: str, actor_id: int | None = None, **_: Any
) -> None:
    for product_id in reprice_ids:
        try:
            reprice_product_task.delay(product_id, cause, actor_id)
        except Exception:
            log.exception("could not enqueue reprice of product %s (%s)", product_id, cause)
    for product_id in product_ids:
        try:
            money_at_risk_refresh_task.delay(product_id)
        except Exception:
            log.exception("could not enqueue money-at-risk refresh of product %s", product_id)
