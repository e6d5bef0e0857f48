"""The kill switch: an admin stops every automatic price change at once, and starts them again.

Each switch is an AutoPricingHalt row (who, when, why), so the switch is its own audit log. While it is
on, `reprice_product` still evaluates and proposes, but applies nothing by itself.
"""
from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from pricing.models import AutoPricingHalt

HALTED_REASON = "관리자가 자동 가격 변경을 중지했습니다"


def auto_pricing_halt_current() -> AutoPricingHalt | None:
    """The switch row in force when automatic changes are halted, else None. 1 query."""
    latest = AutoPricingHalt.objects.select_related("user").order_by("-created_at", "-id").first()
    return latest if latest is not None and latest.halted else None


@transaction.atomic
def auto_pricing_halt_set(*, halted: bool, user: Any, reason: str = "") -> AutoPricingHalt:
    """Switch automatic price changes off (halted=True) or on again; refuses a switch to the state in force.

    Stopping needs a reason (the banner on every page shows it); starting again may give one.
    """
    reason = (reason or "").strip()[:300]
    # One switch at a time: concurrent admins serialise on the log's newest row.
    current = AutoPricingHalt.objects.select_for_update().order_by("-created_at", "-id").first()
    if (current is not None and current.halted) == halted:
        raise ValidationError("이미 중지되어 있습니다." if halted else "이미 자동 가격 변경이 켜져 있습니다.")
    if halted and not reason:
        raise ValidationError("중지 사유를 적어 주세요.")
    return AutoPricingHalt.objects.create(halted=halted, reason=reason, user=user)
