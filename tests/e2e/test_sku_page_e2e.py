"""The SKU page in a real browser: a merchandiser overturns a wrong automatic match from the listing table
and sees our price and the history change without reloading (tasks run inline, see conftest)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from matcher.models import Match
from pricing import services
from review.models import ReviewDecision
from tests.e2e.conftest import login
from tests.factories import ListingImageFactory
from tests.pricing.factories import PricingProductFactory, match_for, pricing_merchandiser

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_merchandiser_overturns_an_automatic_match_and_sees_the_price_and_history_change(new_page, shot):
    product = PricingProductFactory(sku="HUB-E2E", title="노스페이스 눕시 숏패딩", price=100_000, cost=60_000)
    wrong = match_for(product, price=97_000, mall="무신사")
    match_for(product, price=99_000, mall="29CM")
    ListingImageFactory(listing=wrong.listing)
    services.reprice_product(product_id=product.pk, cause="match_run")
    pricing_merchandiser(username="kim")
    page = new_page()

    login(page, "kim", next_url=f"/pricing/sku/{product.sku}/")
    expect(page.get_by_test_id("our-price")).to_have_text("96,900원")
    row = page.locator(f"#listing-{wrong.listing_id}")
    expect(row).to_have_attribute("data-status", "auto")
    expect(row.get_by_test_id("counts")).to_contain_text("따름")
    shot(page, "sku-01-before")

    row.locator("select[name=reason]").select_option("other_model")
    row.get_by_role("button", name="자동 매칭 취소 (제외)").click()

    expect(page.locator(f"#listing-{wrong.listing_id}")).to_have_attribute("data-status", "rejected")
    # The live part refreshes after the decision: the price the rules set from the remaining listing,
    # and the history's newest change names the reviewer and its cause.
    expect(page.get_by_test_id("our-price")).to_have_text("98,900원")
    newest = page.locator(".sku-history tbody tr.pr-status-applied").first
    expect(newest).to_contain_text("kim")
    expect(newest).to_contain_text(f"검토 제외 · 매칭 #{wrong.pk}")
    expect(page.locator(f"#listing-{wrong.listing_id}").get_by_test_id("counts")).to_contain_text("미반영")
    shot(page, "sku-02-after-overturn")
    page.locator("#history").scroll_into_view_if_needed()
    shot(page, "sku-03-history")
    assert page.js_errors == []
    assert Match.objects.get(pk=wrong.pk).status == Match.Status.REJECTED
    assert ReviewDecision.objects.get(match=wrong).reason == "other_model"
