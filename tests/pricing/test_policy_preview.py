"""Saving a policy first shows what it would do on today's data; the preview writes nothing and predicts
exactly what the repricing then does (issue 27, item 5)."""
from __future__ import annotations

from decimal import Decimal

import pytest

from pricing import services
from pricing.models import PolicyAuditEntry, PriceProposal, PricingPolicy, PricingRun
from pricing.policy_preview import policy_preview
from tests.factories import UserFactory
from tests.pricing.factories import PricingProductFactory, match_for, policy_set
from tests.pricing.test_policy_admin import CHANGE_URL, form_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(username="pricing-lead", is_staff=True, is_superuser=True, groups=["admin"]))
    return client


@pytest.fixture
def catalogue():
    """Four SKUs at 100,000 (cost 60,000): three followed competitors at different prices, one without."""
    policy = policy_set(auto_apply=False, max_change_percent=Decimal("30"), max_daily_change_percent=Decimal("30"))
    skus = []
    for competitor in (98_000, 90_000, 70_000, None):
        product = PricingProductFactory(price=100_000, cost=60_000, title="<script>alert(1)</script> 패딩")
        if competitor:
            match_for(product, price=competitor)
        skus.append(product)
    return policy, skus


def test_the_first_save_shows_the_preview_and_writes_nothing(admin_client, catalogue):
    policy, _ = catalogue
    response = admin_client.post(CHANGE_URL.format(policy.pk), form_data(policy, confirmed=False, min_margin_percent="40"))

    page = response.content.decode()
    assert response.status_code == 200 and "정책 변경 미리보기" in page
    assert 'data-testid="preview-summary"' in page and "&lt;script&gt;" in page and "<script>alert" not in page
    assert 'name="_confirm_preview"' in page and 'name="min_margin_percent" value="40"' in page
    policy.refresh_from_db()
    assert policy.min_margin_percent != Decimal("40")
    assert not PolicyAuditEntry.objects.exists() and not PricingRun.objects.exists()


def test_the_preview_counts_moves_and_the_floor(catalogue):
    policy, _ = catalogue
    policy.min_margin_percent = Decimal("40")  # floor 84,000: the 70,000 competitor cannot be followed

    preview = policy_preview(policy=policy)

    assert (preview.skus, preview.moved_down, preview.moved_up, preview.unchanged) == (4, 3, 0, 1)
    assert preview.held_at_floor == 1
    assert sum(count for _, count in preview.histogram) == 3
    by_floor = {m.held_at_floor: m for m in preview.largest}
    assert by_floor[True].new_price == 84_000 and by_floor[True].now_price < 84_000


def test_the_preview_predicts_what_the_repricing_does_once_saved(admin_client, catalogue):
    policy, skus = catalogue
    preview = policy_preview(policy=PricingPolicy(**{**_values(policy), "undercut_amount": 2_000, "undercut_mode": "amount"}))
    predicted = {m.sku: m.new_price for m in preview.largest}

    response = admin_client.post(
        CHANGE_URL.format(policy.pk), form_data(policy, undercut_mode="amount", undercut_amount="2000")
    )
    assert response.status_code == 302
    run = PricingRun.objects.get()
    assert services.pricing_run_execute(run_id=run.pk) is None  # the real repricing, inline

    proposed = {p.product.sku: p.new_price for p in PriceProposal.objects.filter(run=run).select_related("product")}
    assert proposed == predicted and len(proposed) == 3


def test_a_brand_policy_previews_only_that_brands_skus(catalogue):
    _, skus = catalogue
    PricingProductFactory(brand="하이랜드피크", price=100_000, cost=60_000)
    preview = policy_preview(policy=PricingPolicy(scope="brand", key="하이랜드피크", min_margin_percent=Decimal("20")))
    assert preview.skus == 1


def test_an_invalid_edit_shows_its_errors_not_a_preview(admin_client, catalogue):
    policy, _ = catalogue
    response = admin_client.post(CHANGE_URL.format(policy.pk), form_data(policy, confirmed=False, max_change_percent="500"))
    assert response.status_code == 200 and "정책 변경 미리보기" not in response.content.decode()
    assert response.context["adminform"].form.errors


def _values(policy: PricingPolicy) -> dict:
    return {f.name: getattr(policy, f.name) for f in PricingPolicy._meta.concrete_fields}
