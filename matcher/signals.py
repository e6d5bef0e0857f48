"""What the matcher tells the apps above it, sent only once the writing transaction has committed.

The matcher sits at the bottom (`pricing → review → matcher`): it never imports the apps that react to
its changes. It sends one of these signals instead, and each reacting app connects its receiver in its
own `apps.py` (`pricing` re-prices and re-ranks money at risk; `review` samples for QC).

- `matches_changed(product_ids, reprice_ids, cause)`: the decisions of these SKUs changed (a match run, an
  LLM write-back, a review decision or its undo). `product_ids`: every SKU whose pairs changed in any way;
  `reprice_ids`: the subset whose confirmed (matched) listings may have changed, so their price is due.
  `cause` is a short code for the audit trail (e.g. ``match_run``, ``review:approve:match=12``);
  `actor_id`: the user whose decision it was (a reviewer), None for the system (a run, a write-back).
- `run_finished(run_id)`: a match run has decided its last batch.
- `catalogue_changed(product_ids, cause, actor_id)`: what our price depends on besides matches changed
  (cost, minimum price, our price, active) through a catalogue import or the admin; the price is due.

One signal is synchronous, because it is the only door to our price:
- `catalogue_price_imported(product_id, price, created, report_id, actor_id)` is sent inside the
  import row's transaction. The catalogue never writes `Product.price` of an existing SKU itself: the
  receiver (pricing) checks the price against the floor and records it as an audited change, or
  refuses the row by raising `matcher.ingest.RowError` (the row's transaction then writes nothing).
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.dispatch import Signal

log = logging.getLogger(__name__)

matches_changed = Signal()
run_finished = Signal()
catalogue_changed = Signal()
catalogue_price_imported = Signal()


def _send(signal: Signal, **kwargs: Any) -> None:
    # The change is committed: a failing receiver must not undo it or stop the others, but must be seen.
    for receiver, result in signal.send_robust(sender=None, **kwargs):
        if isinstance(result, BaseException):
            log.error("receiver %r of %s failed", receiver, kwargs, exc_info=result)


def matches_changed_on_commit(
    *, product_ids: Iterable[int], reprice_ids: Iterable[int] = (), cause: str, actor_id: int | None = None
) -> None:
    """Send `matches_changed` when the current transaction commits (at once outside one)."""
    changed = sorted(set(product_ids) | set(reprice_ids))
    reprice = sorted(set(reprice_ids))
    if not changed:
        return
    transaction.on_commit(
        lambda: _send(matches_changed, product_ids=changed, reprice_ids=reprice, cause=cause, actor_id=actor_id)
    )


def run_finished_on_commit(*, run_id: int) -> None:
    """Send `run_finished` when the current transaction commits."""
    transaction.on_commit(lambda: _send(run_finished, run_id=run_id))


def catalogue_changed_on_commit(*, product_ids: Iterable[int], cause: str, actor_id: int | None = None) -> None:
    """Send `catalogue_changed` when the current transaction commits (at once outside one)."""
    changed = sorted(set(product_ids))
    if not changed:
        return
    transaction.on_commit(lambda: _send(catalogue_changed, product_ids=changed, cause=cause, actor_id=actor_id))


def catalogue_price_import(
    *, product_id: int, price: int, created: bool, report_id: int | None, actor_id: int | None
) -> None:
    """Hand an imported price to the app that owns price changes, now, inside the caller's transaction.

    Raises whatever the receiver raises (`matcher.ingest.RowError` when it refuses the price). Without a
    receiver the price would silently not be applied, so that is a configuration error, not a no-op.
    """
    if not catalogue_price_imported.has_listeners():
        raise ImproperlyConfigured("no receiver for catalogue_price_imported: is the pricing app installed?")
    catalogue_price_imported.send(
        sender=None, product_id=product_id, price=price, created=created, report_id=report_id, actor_id=actor_id
    )
