"""Thresholds: the one rule a threshold pair must satisfy, and saving a new version with its audit row."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from matcher.services import threshold_set_create, thresholds_active, thresholds_validate
from review import selectors
from review.exceptions import ReviewRefused
from review.models import ThresholdChange


@transaction.atomic
def thresholds_save(*, user, auto_threshold: Any, review_threshold: Any, note: str = "") -> ThresholdChange:
    """Save a new threshold version (matcher.services.threshold_set_create) with an audit row holding what
    the simulator predicted for it. Existing pairs keep their bucket until the matcher decides them again."""
    try:
        auto, review = thresholds_validate(auto_threshold=auto_threshold, review_threshold=review_threshold)
    except ValidationError as invalid:
        raise ReviewRefused(invalid.messages[0]) from None
    note = (note or "").strip()[:300]
    previous = thresholds_active()
    simulation = selectors.threshold_simulation(auto_threshold=auto, review_threshold=review)
    policy = dict(previous.policy or {})
    # The decision policy may carry its own copy of the thresholds; keep them in step.
    for key, value in (("auto_threshold", auto), ("review_threshold", review)):
        if key in policy:
            policy[key] = float(value)
    new = threshold_set_create(
        auto_threshold=auto, review_threshold=review, policy=policy, note=note, user=user
    )
    return ThresholdChange.objects.create(
        threshold_set=new,
        previous=previous,
        user=user,
        created_at=timezone.now(),
        note=note,
        simulation=simulation.as_json(),
    )
