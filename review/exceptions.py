"""Errors of the review app."""

from __future__ import annotations

from django.core.exceptions import ValidationError


class ReviewRefused(ValidationError):
    """A decision or undo that must not happen; the message is shown to the reviewer as is (Korean)."""
