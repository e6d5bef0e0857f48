"""Plausibility on import and the API: amounts that parse but cannot be right, clocks that are wrong,
SKUs without a floor. Row-level Korean messages; refused rows write nothing; warned rows are imported
and reported (command summary, API result, dashboard)."""
from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse

from matcher import ingest
from matcher.models import ImportReport, Listing, Product
from pricing import services
from tests.factories import ApiTokenFactory, ProductFactory, UserFactory, png_bytes
from tests.pricing.factories import PricingMatchFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 8, 3, 0, tzinfo=UTC)
CATALOG_HEADER = "sku,product_number,brand,title,category,colour,price,cost,min_price,attributes,images,active"


def catalog_row(**overrides: object) -> dict:
    row = {"sku": "A-1", "title": "구스다운 자켓", "price": "100000", "cost": "60000", "images": "https://img.example.com/a.jpg"}
    row.update(overrides)
    return row


def listing_row(**overrides: object) -> dict:
    row = {"sku": "A-1", "mall": "무신사", "title": "구스다운 자켓", "price": "95000", "url": "https://m.example.com/1",
           "images": "https://img.example.com/1.jpg"}
    row.update(overrides)
    return row


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"price": "0"}, "price: 0원은 판매가가 될 수 없습니다"),
        ({"cost": "0"}, "cost: 0원은 안 됩니다"),
        ({"min_price": "0"}, "min_price: 0원은 안 됩니다"),
        ({"min_price": "120,000"}, "min_price: 최저가 120,000원이 판매가 100,000원보다 높습니다"),
    ],
)
def test_a_catalogue_row_with_an_impossible_amount_is_refused_with_its_reason(overrides, message):
    with pytest.raises(ingest.RowError) as refused:
        ingest.parse_catalog_row(catalog_row(**overrides), base_dir=None)
    assert message in str(refused.value)


def test_a_catalogue_row_without_cost_or_minimum_is_imported_with_a_no_floor_warning():
    row = ingest.parse_catalog_row(catalog_row(cost=""), base_dir=None)
    assert row.warnings == (ingest.NO_FLOOR_WARNING,)
    assert ingest.parse_catalog_row(catalog_row(), base_dir=None).warnings == ()


@pytest.mark.parametrize(
    ("seen_at", "message"),
    [
        ("2099-01-01T00:00:00+09:00", "seen_at: 미래 시각입니다"),
        ("1900-01-01T00:00:00+09:00", "seen_at: 1095일보다 오래된 시각입니다"),
        ((NOW + timedelta(minutes=11)).isoformat(), "seen_at: 미래 시각입니다"),
    ],
)
def test_a_listing_seen_in_the_future_or_absurdly_long_ago_is_refused(seen_at, message):
    with pytest.raises(ingest.RowError) as refused:
        ingest.parse_listing_row(listing_row(seen_at=seen_at), now=NOW, base_dir=None)
    assert message in str(refused.value)


def test_a_scrapers_clock_a_few_minutes_ahead_is_accepted():
    ahead = NOW + timedelta(minutes=5)
    assert ingest.parse_listing_row(listing_row(seen_at=ahead.isoformat()), now=NOW, base_dir=None).seen_at == ahead


def test_a_catalogue_without_floors_is_reported_in_the_summary_and_on_the_dashboard(tmp_path: Path, client):
    (tmp_path / "a.png").write_bytes(png_bytes((10, 10, 10)))
    path = tmp_path / "catalog.csv"
    path.write_text(
        "\n".join([CATALOG_HEADER, "A-1,,,자켓,,,100000,,,,a.png,1", "A-2,,,코트,,,200000,90000,,,a.png,1"]) + "\n",
        encoding="utf-8",
    )
    out = io.StringIO()
    call_command("import_catalog", str(path), "--no-progress", stdout=out)

    report = ImportReport.objects.get()
    assert (report.created, report.failed, report.warned) == (2, 0, 1)
    assert report.warnings == [{"line": 2, "sku": "A-1", "warnings": [ingest.NO_FLOOR_WARNING]}]
    assert "with warnings 1" in out.getvalue() and "line 2 [A-1] (경고 warning): 하한가 없음" in out.getvalue()

    client.force_login(UserFactory(groups=["admin"], is_staff=True))
    page = client.get(reverse("home")).content.decode()
    assert "하한가가 없는 SKU 1개" in page and "?floor=none" in page
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    changelist = client.get(reverse("admin:matcher_product_changelist") + "?floor=none")
    assert [p.sku for p in changelist.context["cl"].result_list] == ["A-1"]


def test_a_zero_won_listing_is_stored_with_a_warning_and_never_followed(client):
    product = ProductFactory(sku="A-1", price=100_000, cost=60_000, min_price=None)
    ApiTokenFactory(key="pm_key", user=UserFactory(username="scraper"))
    body = {"listings": [listing_row(price=0, images=["https://img.example.com/1.jpg"])]}
    response = client.post(
        reverse("matcher:api_listings"), data=json.dumps(body).encode(), content_type="application/json",
        HTTP_AUTHORIZATION="Bearer pm_key",
    )

    payload = response.json()
    assert response.status_code == 200 and payload["warned"] == 1
    assert payload["results"][0]["warnings"] == [ingest.ZERO_LISTING_WARNING]
    listing = Listing.objects.get()
    assert listing.price == 0

    # Even confirmed by the matcher, a 0-won listing never drives our price.
    PricingMatchFactory(product=product, listing=listing)
    assert services.reprice_product(product_id=product.pk, cause="test") is None
    assert Product.objects.get(pk=product.pk).price == 100_000


def test_the_import_report_reads_in_korean_by_line_escaped_and_cannot_be_edited(tmp_path: Path, client):
    (tmp_path / "a.png").write_bytes(png_bytes((10, 10, 10)))
    path = tmp_path / "catalog.csv"
    path.write_text(
        "\n".join([CATALOG_HEADER, "A-1,,,자켓,,,100000,,,,a.png,1", "<b>X</b>,,,코트,,,0,90000,,,a.png,1"]) + "\n",
        encoding="utf-8",
    )
    call_command("import_catalog", str(path), "--no-progress", stdout=io.StringIO())
    report = ImportReport.objects.get()
    client.force_login(UserFactory(is_superuser=True, is_staff=True))

    page = client.get(reverse("admin:matcher_importreport_change", args=[report.pk])).content.decode()

    assert "2행 [A-1]: 하한가 없음" in page
    assert "3행 [&lt;b&gt;X&lt;/b&gt;]: price: 0원은 판매가가 될 수 없습니다" in page and "<b>X</b>" not in page
    assert 'name="failed"' not in page  # read-only: no form fields
    assert client.get(reverse("admin:matcher_importreport_add")).status_code == 403
