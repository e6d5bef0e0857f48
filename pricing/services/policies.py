"""Editing the pricing policies: every create, change, switch-off and delete writes its PolicyAuditEntry
(who, when, the values before and after) in the same transaction as the edit, and starts a pricing run
over the SKUs the policy covers, so pending proposals never keep a floor or limit that has changed.
The Django admin is the editor today; it calls these."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from matcher.causes import Cause, CauseKind
from matcher.models import Product
from pricing.models import PolicyAuditEntry, PricingPolicy
from pricing.services.runs import pricing_run_create

Action = PolicyAuditEntry.Action


@transaction.atomic
def policy_save(*, policy: PricingPolicy, user: Any) -> PricingPolicy:
    """Validate (`PricingPolicy.clean`: key in the catalogue, limits within range and the auto-apply limit
    under the change limits once inherited) and save a new or changed policy, with its audit row.
    Raises ValidationError with Korean messages; an edit that changes nothing writes no audit row."""
    policy.full_clean()
    saved = None
    if policy.pk is not None:
        saved = PricingPolicy.objects.select_for_update().filter(pk=policy.pk).first()
    before = saved.audit_values() if saved else {}
    after = policy.audit_values()
    policy.updated_by = user
    policy.save()
    if before != after:
        entry = PolicyAuditEntry.objects.create(
            action=_action(before, after),
            policy=policy,
            scope=policy.scope,
            key=policy.key,
            before=before,
            after=after,
            user=user,
        )
        _reprice_covered(policy=policy, entry=entry, user=user)
        if saved is not None and (saved.scope, saved.key) != (policy.scope, policy.key):
            _reprice_covered(policy=saved, entry=entry, user=user)  # the SKUs it no longer covers
    return policy


@transaction.atomic
def policy_delete(*, policy: PricingPolicy, user: Any) -> None:
    """Delete a policy; its audit row keeps the scope, key and last values (the policy link becomes NULL)."""
    saved = PricingPolicy.objects.select_for_update().get(pk=policy.pk)
    entry = PolicyAuditEntry.objects.create(
        action=Action.DELETED,
        policy=saved,
        scope=saved.scope,
        key=saved.key,
        before=saved.audit_values(),
        after={},
        user=user,
    )
    saved.delete()
    _reprice_covered(policy=saved, entry=entry, user=user)


def _action(before: dict[str, Any], after: dict[str, Any]) -> str:
    if not before:
        return Action.CREATED
    if before.get("active") and not after.get("active"):
        return Action.DEACTIVATED
    if not before.get("active") and after.get("active"):
        return Action.ACTIVATED
    return Action.UPDATED


def _reprice_covered(*, policy: PricingPolicy, entry: PolicyAuditEntry, user: Any) -> None:
    """A pricing run (after commit) over the active SKUs the policy layer applies to."""
    products = Product.objects.filter(active=True)
    if policy.scope == PricingPolicy.Scope.CATEGORY:
        products = products.filter(category=policy.key)
    elif policy.scope == PricingPolicy.Scope.BRAND:
        products = products.filter(brand=policy.key)
    elif policy.scope == PricingPolicy.Scope.SKU:
        products = products.filter(sku=policy.key)
    product_ids = list(products.order_by("pk").values_list("pk", flat=True))
    if product_ids:
        pricing_run_create(cause=Cause(CauseKind.POLICY_CHANGE, entry.pk).text, product_ids=product_ids, user=user)
