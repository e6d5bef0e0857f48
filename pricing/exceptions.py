"""Errors of the pricing app (apart from the ValidationErrors services raise for people to read)."""
from __future__ import annotations


class WebhookDeliveryError(Exception):
    """A webhook attempt failed; deliver_webhook_task retries on it with backoff."""


class PriceBelowFloor(Exception):
    """A price someone brought in (a catalogue import) is below the SKU's floor; nothing was written."""

    def __init__(self, *, price: int, floor: int) -> None:
        super().__init__(f"price {price} below floor {floor}")
        self.price = price
        self.floor = floor


class AlertDeliveryError(Exception):
    """Sending alerts by e-mail or to the alert webhook failed for now; the alert tasks retry on it."""
