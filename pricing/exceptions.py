"""Errors of the pricing app (apart from the ValidationErrors services raise for people to read)."""
from __future__ import annotations


class WebhookDeliveryError(Exception):
    """A webhook attempt failed; deliver_webhook_task retries on it with backoff."""
