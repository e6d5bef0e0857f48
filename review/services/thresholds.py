"""Thresholds: the one rule a threshold pair must satisfy, and saving a new version with its audit row."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from matcher.services import threshold_set_create, thresholds_active
from review import selectors
from review.exceptions import ReviewRefused
from review.models import ThresholdChange

NOT_A_NUMBER = "기준값은 0과 1 사이의 숫자여야 합니다."
OUT_OF_ORDER = "0 < 검토 기준 ≤ 자동 매칭 기준 ≤ 1 이어야 합니다."


def validate_thresholds(*, auto_threshold: Any, review_threshold: Any) -> tuple[Decimal, Decimal]:
    """The rule for a threshold pair, in one place: both numbers and 0 < review ≤ auto ≤ 1.

    Returns (auto, review) as Decimals as given (not rounded); raises ValidationError with a Korean
    message otherwise. The calibration form, the simulator and thresholds_save all call this.
    """
    try:
        auto = Decimal(str(auto_threshold).strip())
        review = Decimal(str(review_threshold).strip())
    except (InvalidOperation, ValueError):
        raise ValidationError(NOT_A_NUMBER, code="not_a_number") from None
    if not (auto.is_finite() and review.is_finite()):
        raise ValidationError(NOT_A_NUMBER, code="not_a_number")
    if not (Decimal("0") < review <= auto <= Decimal("1")):
        raise ValidationError(OUT_OF_ORDER, code="out_of_order")
    return auto, review


@transaction.atomic
def thresholds_save(*, user, auto_threshold: Any, review_threshold: Any, note: str = "") -> ThresholdChange:
    """Save a new threshold version (matcher.services.threshold_set_create) with an audit row holding what
    the simulator predicted for it. Existing pairs keep their bucket until the matcher decides them again."""
    try:
        auto, review = validate_thresholds(auto_threshold=auto_threshold, review_threshold=review_threshold)
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
