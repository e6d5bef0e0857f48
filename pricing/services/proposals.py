"""Decisions on waiting proposals: approve (apply), reject, or many at once — by whoever
`pricing.deciders` allows (admins; merchandisers for small moves when the shop says so)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from matcher.models import Match, Product
from pricing import rules, selectors
from pricing.deciders import proposal_decide_refusal
from pricing.models import PriceAuditEntry, PriceProposal
from pricing.services.repricing import apply_proposal, lock_product, match_snapshot, state_refresh


def _lock_proposal(proposal_id: int, user) -> tuple[PriceProposal, Product]:  # noqa: ANN001
    """Lock the SKU, then its proposal, then check it still waits and `user` may decide it
    (PermissionDenied with the reason otherwise).

    Always the product row first, as reprice_product does, so an approval racing a re-evaluation
    queues behind it instead of deadlocking.
    """
    product_id = PriceProposal.objects.values_list("product_id", flat=True).get(pk=proposal_id)
    product = lock_product(product_id)
    proposal = PriceProposal.objects.select_for_update().get(pk=proposal_id)
    if proposal.status != PriceProposal.Status.PENDING:
        raise ValidationError(f"이미 처리된 제안입니다 ({proposal.get_status_display()}).")
    refusal = proposal_decide_refusal(user, proposal)
    if refusal:
        raise PermissionDenied(refusal)
    assert product is not None
    return proposal, product


@transaction.atomic
def proposal_approve(*, proposal_id: int, user) -> PriceProposal:
    """An admin applies a waiting proposal; refused if the price or the followed match moved on since."""
    proposal, product = _lock_proposal(proposal_id, user)
    if product.price != proposal.old_price:
        raise ValidationError("제안 이후 가격이 바뀌었습니다. 다시 계산해 주세요.")
    match = (
        Match.objects.filter(pk=proposal.followed_match_id).first() if proposal.followed_match_id else None
    )
    if proposal.followed_price is not None and (match is None or match.status != Match.Status.MATCHED):
        raise ValidationError("이 제안이 따르던 매칭이 더 이상 확정 상태가 아닙니다.")
    floor = rules.floor_price(selectors.product_numbers(product), selectors.policy_for_product(product))
    if proposal.new_price < floor:
        raise ValidationError(f"제안 가격이 현재 하한가 {rules.won(floor)}보다 낮습니다.")
    apply_proposal(proposal, product=product, user=user, automatic=False, match=match)
    state_refresh(product)
    return proposal


@transaction.atomic
def proposal_reject(*, proposal_id: int, user, note: str = "") -> PriceProposal:
    proposal, product = _lock_proposal(proposal_id, user)
    proposal.status = PriceProposal.Status.REJECTED
    proposal.decided_by = user
    proposal.decided_at = timezone.now()
    proposal.save(update_fields=["status", "decided_by", "decided_at"])
    match = (
        Match.objects.filter(pk=proposal.followed_match_id).first() if proposal.followed_match_id else None
    )
    PriceAuditEntry.objects.create(
        action=PriceAuditEntry.Action.REJECTED,
        product=product,
        sku=product.sku,
        old_price=proposal.old_price,
        new_price=proposal.new_price,
        reason=("관리자 거절" + (f": {note}" if note else "")),
        cause=proposal.cause,
        proposal=proposal,
        run=proposal.run,
        match=match,
        match_snapshot=match_snapshot(match),
        automatic=False,
        user=user,
    )
    return proposal


@dataclass
class BulkResult:
    done: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)


def proposals_decide_bulk(*, proposal_ids: list[int], approve: bool, user) -> BulkResult:
    """Approve or reject many; each proposal in its own transaction so one refusal does not undo the rest."""
    result = BulkResult()
    for pid in proposal_ids:
        try:
            if approve:
                proposal_approve(proposal_id=pid, user=user)
            else:
                proposal_reject(proposal_id=pid, user=user)
        except PermissionDenied as exc:
            result.failed[pid] = str(exc)
        except (ValidationError, PriceProposal.DoesNotExist) as exc:
            result.failed[pid] = "; ".join(getattr(exc, "messages", [str(exc)]))
        else:
            result.done.append(pid)
    return result
