"""How the pricing app reacts to the matcher's signals (connected in PricingConfig.ready).

`catalogue_price_imported` arrives inside the import row's transaction: the price goes through
`services.catalogue_price_record` or the row is refused (RowError, in the merchandiser's words).
`catalogue_changed` arrives after commit: what the price depends on changed (cost, minimum, our
price), so the SKU is re-priced at once — a floor raised above our price becomes a proposal now.

`matches_changed` arrives after the change committed (a review decision, a match run, an LLM
write-back): re-price the SKUs whose confirmed matches may have moved and re-rank the queued pairs
of every SKU touched. Each enqueue stands alone: a broker outage is logged and must not turn a
committed decision into an error page, nor stop the other SKUs' messages.

`run_finished` arrives after a match run's last batch committed: the alerts are evaluated at once
(a new confirmed competitor may sit below our floor) rather than at beat's next tick.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from matcher.ingest import RowError
from pricing import rules
from pricing.exceptions import PriceBelowFloor
from pricing.services.catalogue_price import catalogue_price_record
from pricing.tasks import alerts_evaluate_task, money_at_risk_refresh_task, reprice_product_task

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


def price_from_catalogue_import(
    *, product_id: int, price: int, created: bool, report_id: int | None, actor_id: int | None, **_: Any
) -> None:
    try:
        catalogue_price_record(
            product_id=product_id, price=price, created=created, report_id=report_id, user_id=actor_id
        )
    except PriceBelowFloor as exc:
        raise RowError(
            f"price: 판매가 {rules.won(exc.price)}이 하한가 {rules.won(exc.floor)}보다 낮아 가져오지 않았습니다 "
            f"(below the floor: min_price or cost × (1 + minimum margin))"
        ) from None


def reprice_after_catalogue_changed(
    *, product_ids: Iterable[int], cause: str, actor_id: int | None = None, **_: Any
) -> None:
    for product_id in product_ids:
        try:
            reprice_product_task.delay(product_id, cause, actor_id)
        except Exception:
            log.exception("could not enqueue reprice of product %s (%s)", product_id, cause)


def alerts_after_run(*, run_id: int, **_: Any) -> None:
    try:
        alerts_evaluate_task.delay()
    except Exception:  # the run is committed; beat evaluates the alerts within minutes anyway
        log.exception("could not enqueue the alert evaluation after match run %s", run_id)
