"""Threshold sets: versioned, never edited in place; the newest one decides new pairs."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from matcher.models import ThresholdSet

DEFAULT_AUTO_THRESHOLD = Decimal("0.9")
DEFAULT_REVIEW_THRESHOLD = Decimal("0.7")
STORED = Decimal("0.001")  # ThresholdSet's decimal places


NOT_A_NUMBER = "기준값은 0과 1 사이의 숫자여야 합니다."
OUT_OF_ORDER = "0 < 검토 기준 ≤ 자동 매칭 기준 ≤ 1 이어야 합니다."


def thresholds_validate(*, auto_threshold: Any, review_threshold: Any) -> tuple[Decimal, Decimal]:
    """The pair as Decimals (as given, not rounded) when both are finite numbers and `0 < review ≤ auto ≤ 1`;
    raises ValidationError with a Korean message otherwise.

    The one statement of the rule: `threshold_set_create` (the admin's path too), the review pages' form,
    the calibration simulator and `thresholds_save` all ask here.
    """
    try:
        auto = Decimal(str(auto_threshold).strip())
        review = Decimal(str(review_threshold).strip())
    except (InvalidOperation, ValueError):
        raise ValidationError(NOT_A_NUMBER, code="not_a_number") from None
    if not (auto.is_finite() and review.is_finite()):
        raise ValidationError(NOT_A_NUMBER, code="not_a_number")
    if not (Decimal(0) < review <= auto <= Decimal(1)):
        raise ValidationError(OUT_OF_ORDER, code="out_of_order")
    return auto, review


def thresholds_active() -> ThresholdSet:
    """The newest threshold version; creates v1 with the defaults on a fresh database."""
    current = ThresholdSet.objects.order_by("-version").first()
    if current is None:
        current = threshold_set_create(
            auto_threshold=DEFAULT_AUTO_THRESHOLD,
            review_threshold=DEFAULT_REVIEW_THRESHOLD,
            policy={},
            note="defaults",
            user=None,
        )
    return current


@transaction.atomic
def threshold_set_create(
    *, auto_threshold: Decimal, review_threshold: Decimal, policy: dict[str, Any], note: str, user: Any
) -> ThresholdSet:
    """The one way thresholds change: a new version naming who saved it, with the values before and
    after, written in the caller's transaction (the calibration page, the admin, a fresh database)."""
    auto_threshold, review_threshold = thresholds_validate(
        auto_threshold=auto_threshold, review_threshold=review_threshold
    )
    # Stored with three decimals; round here so the audited values are the stored ones.
    auto_threshold, review_threshold = auto_threshold.quantize(STORED), review_threshold.quantize(STORED)
    if not (Decimal(0) < review_threshold <= auto_threshold):
        raise ValidationError(OUT_OF_ORDER, code="out_of_order")
    # Serialise version numbering: two admins saving at once must not collide.
    previous = ThresholdSet.objects.select_for_update().order_by("-version").first()
    version = (ThresholdSet.objects.aggregate(v=Max("version"))["v"] or 0) + 1
    new = ThresholdSet(
        version=version,
        auto_threshold=auto_threshold,
        review_threshold=review_threshold,
        policy=policy or {},
        note=note,
        created_by=user,
        previous=previous,
        before=previous.audit_values() if previous else {},
    )
    new.after = new.audit_values()
    new.save()
    return new
