"""A policy edit re-prices the SKUs it covers through a real worker: a pending proposal never keeps
showing a floor that has since changed (issue 29, Why 6)."""
from __future__ import annotations

from decimal import Decimal

import pytest

from pricing.models import PolicyAuditEntry, PriceProposal, PricingRun
from tests.factories import UserFactory
from tests.pricing.factories import PricingProductFactory, match_for, policy_set
from tests.pricing.test_policy_admin import CHANGE_URL, form_data
from tests.pricing.test_pricing_worker import wait_for


@pytest.mark.django_db(transaction=True)
def test_raising_the_margin_replaces_a_pending_proposal_with_one_at_the_new_floor(client, pricing_worker):
    from pricing import services

    policy = policy_set(auto_apply=False, min_margin_percent=Decimal("10.00"), max_change_percent=Decimal("30.00"),
                        max_daily_change_percent=Decimal("30.00"))
    product = PricingProductFactory(price=100_000, cost=60_000)
    other_brand = PricingProductFactory(price=100_000, cost=60_000, brand="다른브랜드")
    match_for(product, price=80_000)
    first = services.reprice_product(product_id=product.pk, cause="test")
    assert first is not None and (first.status, first.floor) == (PriceProposal.Status.PENDING, 66_000)

    admin = UserFactory(username="pricing-lead", is_staff=True, is_superuser=True, groups=["admin"])
    client.force_login(admin)
    response = client.post(CHANGE_URL.format(policy.pk), form_data(policy, min_margin_percent="50"))
    assert response.status_code == 302

    entry = PolicyAuditEntry.objects.get()
    run = PricingRun.objects.get()
    assert run.cause == f"정책 변경 기록 #{entry.pk}" and set(run.product_ids) == {product.pk, other_brand.pk}
    wait_for(lambda: PricingRun.objects.filter(pk=run.pk, finished_at__isnull=False).exists(), "finish the run")
    first.refresh_from_db()
    assert first.status == PriceProposal.Status.SUPERSEDED
    current = PriceProposal.objects.get(product=product, status=PriceProposal.Status.PENDING)
    assert (current.floor, current.new_price) == (90_000, 90_000)


@pytest.mark.django_db
def test_a_brand_policy_re_prices_only_that_brands_skus(client):
    PricingProductFactory(brand="노스페이스")
    PricingProductFactory(brand="다른브랜드")
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    data = form_data(scope="brand", key="노스페이스", min_margin_percent="20")
    assert client.post("/admin/pricing/pricingpolicy/add/", data).status_code == 302
    run = PricingRun.objects.get()
    assert [p.brand for p in PricingProductFactory._meta.model.objects.filter(pk__in=run.product_ids)] == ["노스페이스"]
