"""Writes of the matcher app: each a keyword-only function, one transaction, validation first."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from matcher.models import ThresholdSet


def thresholds_active() -> ThresholdSet:
    """The newest threshold version; creates v1 with the defaults on a fresh database."""
    current = ThresholdSet.objects.order_by("-version").first()
    if current is None:
        current = threshold_set_create(
            auto_threshold=Decimal("0.9"), review_threshold=Decimal("0.7"), policy={}, note="defaults", user=None
        )
    return current


@transaction.atomic
def threshold_set_create(
    *, auto_threshold: Decimal, review_threshold: Decimal, policy: dict[str, Any], note: str, user
) -> ThresholdSet:
    auto_threshold, review_threshold = Decimal(str(auto_threshold)), Decimal(str(review_threshold))
    if not (Decimal("0") < review_threshold <= auto_threshold <= Decimal("1")):
        raise ValidationError("0 < 검토 기준 ≤ 자동 매칭 기준 ≤ 1 이어야 합니다 (review ≤ auto).")
    # Serialise version numbering: two admins saving at once must not collide.
    ThresholdSet.objects.select_for_update().order_by("-version").first()
    version = (ThresholdSet.objects.aggregate(v=Max("version"))["v"] or 0) + 1
    return ThresholdSet.objects.create(
        version=version,
        auto_threshold=auto_threshold,
        review_threshold=review_threshold,
        policy=policy or {},
        note=note,
        created_by=user,
    )


@transaction.atomic
def lexicon_load(*, rows: list[dict[str, str]]) -> int:
    """Add the lexicon file's terms; rows an admin deactivated stay deactivated."""
    from matcher.models import AttributeTerm

    groups = {g for g, _ in AttributeTerm.GROUPS}
    created = 0
    for i, row in enumerate(rows, start=2):
        group, value, term = (row.get(k, "").strip() for k in ("group", "value", "term"))
        if group not in groups or not value or not term:
            raise ValidationError(f"lexicon line {i}: need group in {sorted(groups)}, value and term")
        _, was_created = AttributeTerm.objects.get_or_create(group=group, value=value, term=term)
        created += was_created
    return created
