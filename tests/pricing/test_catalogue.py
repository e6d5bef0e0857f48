"""The catalogue page: positions, gaps and floors under layered policies, search, filters, sort,
a fixed number of queries, the formula-safe CSV, the page in Korean."""
from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from matcher.models import Match, Product
from pricing import rules, selectors
from pricing.catalogue import CatalogueFilters, CatalogueRow, catalogue_page, catalogue_rows
from pricing.models import PriceChange, PricingPolicy
from tests.factories import UserFactory
from tests.pricing.factories import (
    PricingProductFactory,
    match_for,
    policy_set,
    pricing_admin,
    pricing_merchandiser,
)

pytestmark = pytest.mark.django_db


def rows(**filters: object) -> list[CatalogueRow]:
    data = {k: ("1" if v is True else str(v)) for k, v in filters.items()}
    return list(catalogue_rows(CatalogueFilters.from_data(data)))


def row_of(product: Product, **filters: object) -> CatalogueRow:
    return next(r for r in rows(**filters) if r.sku == product.sku)


def expected(product: Product) -> tuple[int, int | None, str]:
    """Floor, cheapest counted total and position as the pricing rules compute them for one SKU."""
    product.refresh_from_db()
    policy = selectors.policy_for_product(product)
    candidates = [selectors.candidate_from_match(m)
                  for m in Match.objects.filter(product=product).select_related("listing")]
    now = timezone.now()
    best = rules.cheapest(rules.counted_candidates(candidates, policy, now), policy)
    floor = rules.floor_price(selectors.product_numbers(product), policy)
    if best is None:
        return floor, None, "none"
    total = best.total(policy.include_shipping)
    if product.price <= total:
        return floor, total, "cheapest"
    if product.price <= rules.round_up(max(floor, 1), policy.rounding):
        return floor, total, "floor"
    return floor, total, "dearer"


# --- what counts -----------------------------------------------------------------------------------


def test_a_zero_won_a_stale_a_pending_and_a_rejected_listing_never_count():
    product = PricingProductFactory(price=100_000)
    match_for(product, price=0)  # a scraper's misreading
    match_for(product, price=80_000, last_seen=timezone.now() - timedelta(hours=49))  # stale under 48 h
    match_for(product, price=81_000, status=Match.Status.PENDING)
    match_for(product, price=82_000, status=Match.Status.REJECTED)
    match_for(product, price=97_000, shipping_fee=2_500, mall="쿠팡")

    row = row_of(product)

    assert (row.cheapest_total, row.cheapest_mall) == (99_500, "쿠팡")
    assert (row.gap, row.gap_pct_shown) == (500, Decimal("0.5"))
    assert row.position == "dearer" and row.position_label == "500원 비쌈"
    assert (row.n_matched, row.n_pending, row.n_rejected) == (3, 1, 1)


def test_the_stale_cut_off_and_shipping_follow_each_skus_policy_layers():
    policy_set(scope=PricingPolicy.Scope.BRAND, key="빠른브랜드", stale_after_hours=6)
    policy_set(scope=PricingPolicy.Scope.CATEGORY, key="신발", include_shipping=False)
    # A SKU layer over the brand: back to a long cut-off for this one SKU.
    policy_set(scope=PricingPolicy.Scope.SKU, key="PR-SLOW", stale_after_hours=72)
    ten_hours_ago = timezone.now() - timedelta(hours=10)

    fast = PricingProductFactory(brand="빠른브랜드")
    slow = PricingProductFactory(brand="빠른브랜드", sku="PR-SLOW")
    shoes = PricingProductFactory(category="신발")
    plain = PricingProductFactory()
    for product in (fast, slow, shoes, plain):
        match_for(product, price=90_000, shipping_fee=3_000, last_seen=ten_hours_ago)

    assert row_of(fast).cheapest_total is None and row_of(fast).position_label == "확정 경쟁 없음"
    assert row_of(slow).cheapest_total == 93_000
    assert row_of(shoes).cheapest_total == 90_000  # shipping left out by the category layer
    assert row_of(plain).cheapest_total == 93_000
    for product in (fast, slow, shoes, plain):
        r = row_of(product)
        assert (r.floor, r.cheapest_total, r.position) == expected(product)


def test_floor_and_position_agree_with_the_rules_under_every_layer():
    policy_set(min_margin_percent=Decimal("12.35"))
    policy_set(scope=PricingPolicy.Scope.CATEGORY, key="아우터", min_margin_percent=Decimal("40"), rounding=1000)
    policy_set(scope=PricingPolicy.Scope.BRAND, key="브랜드B", min_margin_percent=Decimal("5.5"))
    policy_set(scope=PricingPolicy.Scope.SKU, key="PR-EXACT", min_margin_percent=Decimal("0"), rounding=1)
    products = [
        PricingProductFactory(cost=33_333),  # global margin: 37,449.6255 → 37,450
        PricingProductFactory(category="아우터", cost=50_001, price=70_002),  # at its floor rounded up
        PricingProductFactory(category="아우터", brand="브랜드B", cost=61_111),  # brand over category
        PricingProductFactory(sku="PR-EXACT", category="아우터", cost=70_000, min_price=71_111, price=71_111),
        PricingProductFactory(cost=None, min_price=None, price=50_000),  # no floor known
        PricingProductFactory(price=60_000),
    ]
    for i, product in enumerate(products):
        match_for(product, price=40_000 + 10_000 * i, shipping_fee=2_500)
    match_for(products[5], price=1_000, status=Match.Status.PENDING)

    for product in products:
        r = row_of(product)
        assert (r.floor, r.cheapest_total, r.position) == expected(product), product.sku
    assert row_of(products[0]).floor == 37_450
    assert row_of(products[1]).position_label == "하한가에 막힘"  # 70,002 ≤ round_up(70,002, 1,000)
    assert row_of(products[5]).position_label == "최저가"


def test_held_at_the_floor_and_competitor_below_the_floor():
    held = PricingProductFactory(price=66_000)  # floor 60,000 × 1.1 = 66,000
    match_for(held, price=55_000)
    dearer_above_floor = PricingProductFactory(price=90_000)
    match_for(dearer_above_floor, price=60_000)
    fine = PricingProductFactory(price=90_000)
    match_for(fine, price=85_000)

    assert row_of(held).position_label == "하한가에 막힘" and row_of(held).below_floor
    assert row_of(dearer_above_floor).position == "dearer" and row_of(dearer_above_floor).below_floor
    assert {r.sku for r in rows(below_floor=True)} == {held.sku, dearer_above_floor.sku}
    assert {r.sku for r in rows(position="floor")} == {held.sku}


# --- search, filters, sort -------------------------------------------------------------------------


def test_search_by_sku_product_number_or_title_and_filters_by_brand_and_category():
    a = PricingProductFactory(sku="ZZ-100", product_number="AB123", title="구스다운 롱패딩", brand="갑", category="패딩")
    b = PricingProductFactory(sku="YY-200", product_number="CD456", title="플리스 자켓", brand="을", category="플리스")
    PricingProductFactory(sku="XX-300", active=False, title="구스다운 베스트")  # inactive: never listed

    assert [r.sku for r in rows(q="zz-1")] == [a.sku]
    assert [r.sku for r in rows(q="cd45")] == [b.sku]
    assert [r.sku for r in rows(q="구스다운")] == [a.sku]
    assert [r.sku for r in rows(q="100%")] == []  # % is a character, not a wildcard
    assert [r.sku for r in rows(brand="을")] == [b.sku]
    assert [r.sku for r in rows(category="패딩")] == [a.sku]
    assert [r.sku for r in rows(brand="갑", category="플리스")] == []


def test_filters_by_position_cover_the_whole_catalogue_and_sorting_keeps_nulls_last():
    cheapest = PricingProductFactory(price=90_000)
    match_for(cheapest, price=95_000)
    dearer_a = PricingProductFactory(price=100_000)
    match_for(dearer_a, price=90_000)
    dearer_b = PricingProductFactory(price=100_000)
    match_for(dearer_b, price=97_000)
    alone = PricingProductFactory()
    match_for(alone, price=90_000, status=Match.Status.PENDING)

    assert {r.sku for r in rows(position="cheapest")} == {cheapest.sku}
    assert {r.sku for r in rows(position="dearer")} == {dearer_a.sku, dearer_b.sku}
    assert {r.sku for r in rows(position="none")} == {alone.sku}
    assert [r.sku for r in rows(sort="-gap")] == [dearer_a.sku, dearer_b.sku, cheapest.sku, alone.sku]
    assert [r.sku for r in rows(sort="gap")] == [cheapest.sku, dearer_b.sku, dearer_a.sku, alone.sku]
    assert [r.sku for r in rows(sort="-cheapest")][-1] == alone.sku
    assert [r.sku for r in rows(sort="bogus); DROP TABLE x;--")] == sorted(
        p.sku for p in (cheapest, dearer_a, dearer_b, alone))


def test_last_change_is_the_latest_price_change():
    product = PricingProductFactory()
    PriceChange.objects.create(product=product, kind="import", old_price=120_000, new_price=110_000, reason="a")
    PriceChange.objects.create(product=product, kind="import", old_price=110_000, new_price=100_000, reason="b")

    r = row_of(product, sort="-changed")

    assert (r.last_change_old, r.last_change_new) == (110_000, 100_000) and r.last_change_at is not None


# --- the page --------------------------------------------------------------------------------------


def _catalogue_with(n: int) -> None:
    for i in range(n):
        product = PricingProductFactory(brand=f"브랜드{i % 3}", category=f"카테고리{i % 4}")
        match_for(product, price=90_000 + i)
        match_for(product, price=80_000, status=Match.Status.PENDING)
        PriceChange.objects.create(product=product, kind="import", old_price=110_000, new_price=100_000, reason="r")
    policy_set(scope=PricingPolicy.Scope.BRAND, key="브랜드1", stale_after_hours=12)


@pytest.mark.parametrize("n", [20, 60])
@pytest.mark.parametrize("query", ["", "?sort=-gap&position=dearer", "?below_floor=1&q=PR&sort=-changed&page=2"])
def test_the_page_runs_a_fixed_number_of_queries(client, django_assert_num_queries, n, query):
    _catalogue_with(n)
    client.force_login(pricing_merchandiser())

    # session, user, role (groups), the kill switch's state (every page shows it), policy layers, count,
    # the page's rows, brand/category choices
    with django_assert_num_queries(8):
        response = client.get(reverse("pricing:catalogue") + query)

    assert response.status_code == 200


def test_the_selector_reads_four_queries_whatever_the_page_size(django_assert_num_queries):
    _catalogue_with(60)
    for per_page in (10, 50):
        with django_assert_num_queries(4):  # policies, count, rows, choices
            result = catalogue_page(CatalogueFilters(), 1, per_page=per_page)
        assert len(result.rows) == per_page


def test_a_merchandiser_sees_the_catalogue_in_korean_with_links_that_work_without_javascript(client):
    product = PricingProductFactory(title="<script>alert(1)</script> 패딩")
    match_for(product, price=95_000, mall="11번가")
    client.force_login(pricing_merchandiser())

    html = client.get(reverse("pricing:catalogue")).content.decode()

    assert "카탈로그" in html and "최저 확정 경쟁가" in html and "5,000원 비쌈" in html and "11번가" in html
    assert "<script>alert(1)</script>" not in html  # a title is escaped, never trusted
    assert 'href="/pricing/catalogue/?sort=-sku"' in html and 'hx-get="/pricing/catalogue/?sort=-sku"' in html
    assert f'href="{reverse("pricing:sku_history", args=[product.sku])}"' in html


def test_an_admin_sees_it_too_and_the_nav_and_dashboard_lead_there(client):
    PricingProductFactory()
    client.force_login(pricing_admin())

    html = client.get(reverse("pricing:catalogue")).content.decode()
    home = client.get(reverse("home")).content.decode()

    assert "확정 경쟁 없음" in html
    assert '<a href="/pricing/catalogue/">카탈로그</a>' in html
    assert 'data-testid="catalogue-link"' in home and reverse("pricing:catalogue") in home


def test_someone_without_a_role_is_refused_in_korean(client):
    client.force_login(UserFactory())

    response = client.get(reverse("pricing:catalogue"))

    assert response.status_code == 403 and "권한" in response.content.decode()


def test_htmx_gets_only_the_table_and_pages_keep_the_filters(client):
    for _ in range(3):
        PricingProductFactory(brand="갑")
    client.force_login(pricing_merchandiser())

    html = client.get(reverse("pricing:catalogue") + "?brand=갑&sort=-price", HTTP_HX_REQUEST="true").content.decode()

    assert html.lstrip().startswith('<section id="ct-table"') and "<html" not in html
    assert "brand=%EA%B0%91" in html and "sort=-price" in html  # the CSV link keeps the view


def test_pagination_walks_the_filtered_view(client):
    for i in range(5):
        PricingProductFactory(sku=f"PG-{i}")
    client.force_login(pricing_merchandiser())

    result = catalogue_page(CatalogueFilters(q="PG-"), 2, per_page=2)

    assert [r.sku for r in result.rows] == ["PG-2", "PG-3"]
    assert result.page.paginator.count == 5 and result.page.has_next()


# --- CSV -------------------------------------------------------------------------------------------


def test_the_csv_is_the_filtered_view_and_formula_safe(client):
    evil = PricingProductFactory(title='=HYPERLINK("http://evil.example","열기")', brand="갑")
    match_for(evil, price=95_000, mall="+쇼핑몰")
    PricingProductFactory(brand="을")
    client.force_login(pricing_merchandiser())

    response = client.get(reverse("pricing:catalogue_csv") + "?brand=갑")
    text = response.content.decode("utf-8")

    assert response["Content-Type"].startswith("text/csv")
    assert text.startswith("\ufeff")
    table = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert table[0][:3] == ["SKU", "품번", "브랜드"] and len(table) == 2
    line = dict(zip(table[0], table[1], strict=True))
    assert line["상품명"] == "'" + evil.title  # neutralised: a spreadsheet shows it, never runs it
    assert line["경쟁 쇼핑몰"] == "'+쇼핑몰"
    assert line["가격 차이(원)"] == "5000" and line["위치"] == "5,000원 비쌈"


def test_the_csv_reads_every_chunk():
    for i in range(7):
        PricingProductFactory(sku=f"CH-{i}")

    got = list(catalogue_rows(CatalogueFilters(q="CH-"), chunk=3))

    assert [r.sku for r in got] == [f"CH-{i}" for i in range(7)]
