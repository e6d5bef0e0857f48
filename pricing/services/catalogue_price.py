"""Our price as the shop's own catalogue states it: the one door an imported price comes through.

The matcher's catalogue import never writes `Product.price` of an existing SKU. It hands the price
to `catalogue_price_record` inside the import row's transaction (signal `catalogue_price_imported`,
connected in pricing/apps.py), which

- refuses a price below the SKU's floor (max of the minimum price and cost × (1 + minimum margin)
  under the SKU's policy): `PriceBelowFloor`, and the row writes nothing;
- records a different price as a PriceChange of kind "import" with its audit row, naming the user
  who ran the import and the import report, in that same transaction;
- supersedes pending proposals: they were computed from the old price.

No webhook is sent for an import: the shop told us this price, it does not need telling back.
"""
from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from matcher import causes
from matcher.models import Product
from pricing import rules, selectors
from pricing.exceptions import PriceBelowFloor
from pricing.models import PriceAuditEntry, PriceChange, PriceProposal


def import_reason(report_id: int | None) -> str:
    return f"카탈로그 가져오기 #{report_id}" if report_id else "카탈로그 가져오기"


def catalogue_price_record(
    *, product_id: int, price: int, created: bool, report_id: int | None, user_id: int | None
) -> PriceChange | None:
    """Check an imported price against the floor and record it; None when nothing changed.

    Call inside the import row's transaction (the caller holds the product's row lock); the floor is
    taken from the row's cost and minimum price as already written by that transaction.
    """
    with transaction.atomic():
        product = Product.objects.select_for_update().get(pk=product_id)
        numbers = rules.ProductNumbers(price=price, cost=product.cost, min_price=product.min_price)
        floor = rules.floor_price(numbers, selectors.policy_for_product(product))
        if price < floor:
            raise PriceBelowFloor(price=price, floor=floor)
        if created or price == product.price:
            return None
        reason = f"{import_reason(report_id)}: {rules.won(product.price)} → {rules.won(price)}"
        change = PriceChange.objects.create(
            product=product,
            kind=PriceChange.Kind.IMPORT,
            old_price=product.price,
            new_price=price,
            reason=reason,
            automatic=False,
            user_id=user_id,
        )
        PriceAuditEntry.objects.create(
            action=PriceAuditEntry.Action.IMPORTED,
            product=product,
            sku=product.sku,
            old_price=change.old_price,
            new_price=price,
            reason=reason,
            cause=causes.catalogue_import(report_id).text,
            change=change,
            automatic=False,
            user_id=user_id,
        )
        Product.objects.filter(pk=product.pk).update(price=price, updated_at=timezone.now())
        PriceProposal.objects.filter(product=product, status=PriceProposal.Status.PENDING).update(
            status=PriceProposal.Status.SUPERSEDED, decided_at=timezone.now()
        )
    return change
