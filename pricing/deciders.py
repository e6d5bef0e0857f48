"""Who may approve or reject a waiting price proposal.

Admins always. Merchandisers only when `PROPOSAL_MERCHANDISER_MAX_CHANGE_PERCENT` is above 0 and the
proposal moves our price by at most that much (a shop may let its merchandisers clear small moves and
keep large ones for admins). Anyone else, never. The services enforce it; pages use the same answer to
show the buttons or say who can decide and why.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings

from config.roles import is_admin, is_merchandiser
from pricing.models import PriceProposal

WHO = "승인·거절할 수 있는 사람: 관리자"


def merchandiser_limit() -> Decimal:
    return Decimal(settings.PROPOSAL_MERCHANDISER_MAX_CHANGE_PERCENT)


def proposal_move_percent(proposal: PriceProposal) -> Decimal:
    if not proposal.old_price:
        return Decimal(0)
    return (abs(Decimal(proposal.new_price) - proposal.old_price) * 100 / proposal.old_price).quantize(Decimal("0.01"))


def proposal_decide_refusal(user: Any, proposal: PriceProposal) -> str | None:
    """None when `user` may decide `proposal`; otherwise why not and who can, in Korean. No query
    beyond the user's role (cached on the user object)."""
    if is_admin(user):
        return None
    limit = merchandiser_limit()
    if not is_merchandiser(user) or limit <= 0:
        return f"가격 제안은 관리자만 승인·거절합니다 ({WHO})."
    moved = proposal_move_percent(proposal)
    if moved > limit:
        return f"변동 {moved}%가 담당자 승인 한도 {limit}%를 넘습니다 ({WHO}, 또는 {limit}% 이하 변동은 담당자)."
    return None
