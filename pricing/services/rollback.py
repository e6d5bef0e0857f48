"""Taking price changes back: one change, or everything a run changed; each audited."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from matcher.models import Match
from pricing import rules, selectors
from pricing.models import PriceAuditEntry, PriceChange, PriceProposal, PricingRun
from pricing.services.repricing import lock_product, match_snapshot, state_refresh
from pricing.services.webhooks import webhook_outbox


def _rollback_one(change: PriceChange, *, user, action: str) -> PriceChange:
    """Call inside a transaction. Restores the price before ``change`` and audits it."""
    product = lock_product(change.product_id)
    assert product is not None
    if change.kind != PriceChange.Kind.APPLY:
        raise ValidationError("되돌림 기록은 다시 되돌릴 수 없습니다.")
    if PriceChange.objects.filter(reverts=change).exists():
        raise ValidationError("이미 되돌린 변경입니다.")
    later = PriceChange.objects.filter(
        product=product,
        kind=PriceChange.Kind.APPLY,
        created_at__gt=change.created_at,
        reverted_by__isnull=True,
    ).exclude(pk=change.pk)
    if later.exists() or product.price != change.new_price:
        raise ValidationError(
            f"{product.sku}: 이후에 다른 가격 변경이 있어 되돌릴 수 없습니다. 최신 변경부터 되돌리세요."
        )
    floor = rules.floor_price(selectors.product_numbers(product), selectors.policy_for_product(product))
    if change.old_price < floor:
        raise ValidationError(
            f"{product.sku}: 이전 가격 {rules.won(change.old_price)}이 "
            f"현재 하한가 {rules.won(floor)}보다 낮습니다."
        )
    label = "실행 전체 되돌림" if action == PriceAuditEntry.Action.RUN_ROLLED_BACK else "변경 되돌림"
    moved = f"{rules.won(change.old_price)} → {rules.won(change.new_price)}"
    reason = f"{label}: 변경 #{change.pk} ({moved})을 되돌립니다"
    rollback = PriceChange.objects.create(
        product=product,
        kind=PriceChange.Kind.ROLLBACK,
        old_price=product.price,
        new_price=change.old_price,
        reason=reason,
        proposal=change.proposal,
        run=change.run,
        reverts=change,
        automatic=False,
        user=user,
    )
    product.price = change.old_price
    product.save(update_fields=["price", "updated_at"])
    proposal = change.proposal
    match = None
    if proposal is not None:
        PriceProposal.objects.filter(pk=proposal.pk).update(status=PriceProposal.Status.ROLLED_BACK)
        match = (
            Match.objects.filter(pk=proposal.followed_match_id).first()
            if proposal.followed_match_id
            else None
        )
    PriceAuditEntry.objects.create(
        action=action,
        product=product,
        sku=product.sku,
        old_price=rollback.old_price,
        new_price=rollback.new_price,
        reason=reason,
        cause=proposal.cause if proposal else "",
        proposal=proposal,
        change=rollback,
        run=change.run,
        match=match,
        match_snapshot=match_snapshot(match),
        automatic=False,
        user=user,
    )
    webhook_outbox(rollback)
    # Remember the restored price with today's inputs: re-running with nothing changed must not
    # re-apply the move an admin just took back.
    state_refresh(product)
    return rollback


@transaction.atomic
def change_rollback(*, change_id: int, user) -> PriceChange:
    """Restore the price before one applied change (the newest on its SKU); audited."""
    # _rollback_one locks the SKU before it checks the change was not rolled back already.
    change = PriceChange.objects.select_related("proposal").get(pk=change_id)
    return _rollback_one(change, user=user, action=PriceAuditEntry.Action.ROLLED_BACK)


@dataclass
class RunRollbackResult:
    restored: list[int] = field(default_factory=list)  # product ids
    skipped: dict[str, str] = field(default_factory=dict)  # sku → why


@transaction.atomic
def run_rollback(*, run_id: int, user) -> RunRollbackResult:
    """Restore the prices a run changed, newest first. SKUs changed again since are skipped and reported."""
    # No lock on the run row before the SKUs' rows (reprice_product locks SKU then run); a second
    # rollback racing this one is caught by the conditional update at the end.
    run = PricingRun.objects.get(pk=run_id)
    if run.rolled_back_at:
        raise ValidationError("이미 되돌린 실행입니다.")
    result = RunRollbackResult()
    changes = (
        PriceChange.objects.filter(run=run, kind=PriceChange.Kind.APPLY, reverted_by__isnull=True)
        .select_related("proposal", "product")
        .order_by("-created_at", "-id")
    )
    for change in changes:
        try:
            with transaction.atomic():
                _rollback_one(change, user=user, action=PriceAuditEntry.Action.RUN_ROLLED_BACK)
        except ValidationError as exc:
            result.skipped[change.product.sku] = "; ".join(exc.messages)
        else:
            result.restored.append(change.product_id)
    marked = PricingRun.objects.filter(pk=run.pk, rolled_back_at__isnull=True).update(
        rolled_back_at=timezone.now(), rolled_back_by=user
    )
    if not marked:
        raise ValidationError("이미 되돌린 실행입니다.")
    return result
