"""Pricing pages, htmx partials, CSV history, the JSON export endpoint and the export command."""
from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from config.spreadsheet import formula_safe
from matcher.models import Product
from pricing import services
from pricing.models import PriceAuditEntry, PriceChange, PriceProposal
from tests.factories import ApiTokenFactory
from tests.pricing.factories import PricingProductFactory, match_for, pricing_admin, pricing_merchandiser

pytestmark = pytest.mark.django_db


def price_of(product: Product) -> int:
    return Product.objects.values_list("price", flat=True).get(pk=product.pk)


def waiting_proposal(**product_kwargs) -> PriceProposal:
    product = PricingProductFactory(**product_kwargs)
    match_for(product, price=92_000)  # an 8.1 % cut: beyond the 5 % auto-apply limit
    return services.reprice_product(product_id=product.pk, cause="test")


def applied_change(**product_kwargs) -> PriceChange:
    product = PricingProductFactory(**product_kwargs)
    match_for(product, price=97_000)
    return PriceChange.objects.get(proposal=services.reprice_product(product_id=product.pk, cause="test"))


def test_the_pricing_page_needs_a_login(client):
    response = client.get(reverse("pricing:index"))
    assert response.status_code == 302
    assert "/login/" in response["Location"]


@pytest.mark.parametrize("rows", [3, 12])
def test_the_pricing_page_runs_a_fixed_number_of_queries(client, django_assert_max_num_queries, rows):
    client.force_login(pricing_admin())
    for _ in range(rows):
        waiting_proposal()
        applied_change()

    # session, user, groups (base template), groups (admin buttons), count, page, changes, runs
    with django_assert_max_num_queries(8):
        response = client.get(reverse("pricing:index"))

    assert response.status_code == 200
    assert response.content.decode().count('class="pr-status-pending"') == rows
    assert "되돌리기" in response.content.decode()


def test_a_merchandiser_sees_the_list_but_cannot_approve(client):
    proposal = waiting_proposal()
    client.force_login(pricing_merchandiser())

    page = client.get(reverse("pricing:index")).content.decode()
    response = client.post(reverse("pricing:proposal_approve", args=[proposal.pk]))

    assert "승인</button>" not in page
    assert response.status_code == 403
    assert price_of(proposal.product) == 100_000


def test_approving_with_htmx_returns_the_updated_row_and_an_event(client):
    admin = pricing_admin()
    client.force_login(admin)
    proposal = waiting_proposal()

    response = client.post(reverse("pricing:proposal_approve", args=[proposal.pk]), HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith(f'<tr id="proposal-{proposal.pk}"')
    assert "적용됨" in html
    assert "pricing-changed" in json.loads(response["HX-Trigger"])
    assert price_of(proposal.product) == 91_900
    assert PriceAuditEntry.objects.get(proposal=proposal).user == admin


def test_rejecting_without_javascript_redirects_back_with_the_proposal_rejected(client):
    client.force_login(pricing_admin())
    proposal = waiting_proposal()

    response = client.post(reverse("pricing:proposal_reject", args=[proposal.pk]))

    assert response.status_code == 302
    proposal.refresh_from_db()
    assert proposal.status == PriceProposal.Status.REJECTED
    assert price_of(proposal.product) == 100_000


def test_bulk_approval_asks_for_confirmation_before_changing_prices(client):
    client.force_login(pricing_admin())
    proposals = [waiting_proposal() for _ in range(3)]
    ids = [str(p.pk) for p in proposals]

    confirm = client.post(reverse("pricing:proposals_bulk"), {"ids": ids, "action": "approve"})
    assert confirm.status_code == 200
    assert "3건 가격 적용" in confirm.content.decode()
    assert all(price_of(p.product) == 100_000 for p in proposals)

    done = client.post(reverse("pricing:proposals_bulk"), {"ids": ids, "action": "approve", "confirm": "yes"})

    assert done.status_code == 302
    assert all(price_of(p.product) == 91_900 for p in proposals)


def test_a_rollback_button_restores_the_old_price(client):
    admin = pricing_admin()
    client.force_login(admin)
    change = applied_change()

    response = client.post(reverse("pricing:change_rollback", args=[change.pk]), HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert "되돌림 #" in response.content.decode()
    assert price_of(change.product) == 100_000
    assert PriceAuditEntry.objects.filter(action="rolled_back", user=admin).count() == 1


def test_the_sku_history_shows_the_chart_data_and_the_table_in_fixed_queries(client, django_assert_max_num_queries):
    client.force_login(pricing_merchandiser())
    product = PricingProductFactory(sku="HIST-1")
    match = match_for(product, price=97_000, mall="<script>alert(1)</script>몰")
    services.reprice_product(product_id=product.pk, cause="test")
    for price in (96_500, 96_000, 95_500):
        match.listing.price = price
        match.listing.save()
        services.reprice_product(product_id=product.pk, cause="test")

    # session, user, groups, the kill switch banner, product, policy, listings, changes, observations,
    # proposals, audit entries
    with django_assert_max_num_queries(11):
        response = client.get(reverse("pricing:sku_history", args=["HIST-1"]))

    html = response.content.decode()
    assert response.status_code == 200
    chart = json.loads(html.split('id="pr-history-data" type="application/json">')[1].split("</script>")[0])
    assert chart["ours"][-1]["y"] == 95_400
    assert chart["competitor"][-1]["y"] == 95_500
    assert len(chart["changes"]) == 4
    assert "chart-4.6.1.umd.min.js" in html
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;몰" in html


def test_the_sku_history_exports_as_csv(client):
    client.force_login(pricing_merchandiser())
    product = PricingProductFactory(sku="HIST-CSV")
    match_for(product, price=97_000, mall="=HYPERLINK(1)")
    services.reprice_product(product_id=product.pk, cause="test")

    response = client.get(reverse("pricing:sku_history_csv", args=["HIST-CSV"]))

    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:4] == ["time", "event", "our_price", "old_price"]
    assert [r[1] for r in rows[1:]] == ["observation", "apply"]
    apply_row = next(r for r in rows[1:] if r[1] == "apply")
    assert (apply_row[2], apply_row[3]) == ("96900", "100000")
    observation = next(r for r in rows[1:] if r[1] == "observation")
    assert observation[5] == "'=HYPERLINK(1)"  # no formula injection into a spreadsheet


def test_an_unknown_sku_is_a_404(client):
    client.force_login(pricing_merchandiser())
    assert client.get(reverse("pricing:sku_history", args=["NOPE"])).status_code == 404


def test_the_export_endpoint_refuses_a_missing_or_wrong_token(client):
    url = reverse("pricing:api_changes")
    ApiTokenFactory(key="pm_right_key")

    assert client.get(url).status_code == 401
    wrong = client.get(url, HTTP_AUTHORIZATION="Bearer pm_wrong_key")
    assert wrong.status_code == 401
    assert wrong["WWW-Authenticate"].startswith("Bearer")


def test_the_export_endpoint_refuses_an_ingest_only_token_naming_the_scope(client):
    ApiTokenFactory(key="pm_scraper_key", scopes=["ingest"])

    response = client.get(reverse("pricing:api_changes"), HTTP_AUTHORIZATION="Bearer pm_scraper_key")

    assert response.status_code == 403
    body = response.json()
    assert body["missing_scope"] == "export" and "'export' 권한" in body["error"]
    assert "prices" not in body


def test_the_export_endpoint_refuses_an_expired_token_in_korean(client):
    ApiTokenFactory(key="pm_old_key", expires_at=timezone.now() - timedelta(days=1))

    response = client.get(reverse("pricing:api_changes"), HTTP_AUTHORIZATION="Bearer pm_old_key")

    assert response.status_code == 401 and "만료되었습니다" in response.json()["error"]
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_the_export_endpoint_lists_changed_prices_for_a_valid_token(client):
    change = applied_change(sku="API-1")
    ApiTokenFactory(key="pm_right_key")

    response = client.get(reverse("pricing:api_changes") + "?since=1h", HTTP_AUTHORIZATION="Bearer pm_right_key")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert body["prices"][0] | {"changed_at": None} == {
        "sku": "API-1",
        "product_number": change.product.product_number,
        "previous_price": 100_000,
        "price": 96_900,
        "changed_at": None,
        "change_ids": [change.pk],
    }
    bad = client.get(reverse("pricing:api_changes") + "?since=yesterday", HTTP_AUTHORIZATION="Bearer pm_right_key")
    assert bad.status_code == 400
    # A duration past any date was an OverflowError (a 500); it is a bad request like any other.
    huge = client.get(reverse("pricing:api_changes") + "?since=99999999999d", HTTP_AUTHORIZATION="Bearer pm_right_key")
    assert huge.status_code == 400 and "since" in huge.content.decode()


def test_export_prices_writes_csv_and_json_of_changed_prices(tmp_path):
    applied_change(sku="EXP-1")
    applied_change(sku="EXP-2")
    out = tmp_path / "prices.csv"

    call_command("export_prices", "--since", "24h", "--format", "csv", "--out", str(out))
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [(r["sku"], r["previous_price"], r["price"]) for r in rows] == [
        ("EXP-1", "100000", "96900"),
        ("EXP-2", "100000", "96900"),
    ]

    stdout = io.StringIO()
    call_command("export_prices", "--since", "2000-01-01T00:00:00+09:00", "--format", "json", stdout=stdout)
    data = json.loads(stdout.getvalue())
    assert [p["sku"] for p in data["prices"]] == ["EXP-1", "EXP-2"]
    assert all(isinstance(p["price"], int) for p in data["prices"])


def test_export_prices_csv_writes_text_a_spreadsheet_would_run_as_plain_text(tmp_path):
    applied_change(sku='=HYPERLINK("http://evil.example","x")', product_number="=1+2")
    out = tmp_path / "prices.csv"

    call_command("export_prices", "--since", "24h", "--format", "csv", "--out", str(out))

    (row,) = list(csv.DictReader(out.open(encoding="utf-8")))
    assert row["sku"] == '\'=HYPERLINK("http://evil.example","x")'
    assert row["product_number"] == "'=1+2"
    assert (row["previous_price"], row["price"]) == ("100000", "96900")  # numbers stay numbers


@pytest.mark.parametrize("value, cell", [
    ("=1+2", "'=1+2"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"), ("\t=1", "'\t=1"),
    ("노스페이스", "노스페이스"), (None, ""), (-5000, -5000), (96900, 96900),
])
def test_every_csv_cell_goes_through_one_formula_guard(value, cell):
    assert formula_safe(value) == cell


def test_export_prices_leaves_out_changes_before_since():
    applied_change(sku="OLD-1")
    stdout = io.StringIO()
    call_command("export_prices", "--since", "2999-01-01", "--format", "json", stdout=stdout)
    assert json.loads(stdout.getvalue())["count"] == 0


def test_an_admin_starts_a_run_from_the_page_and_rolls_the_whole_run_back(client):
    admin = pricing_admin()
    client.force_login(admin)
    products = [PricingProductFactory() for _ in range(2)]
    for p in products:
        match_for(p, price=97_000)

    assert client.post(reverse("pricing:run_start")).status_code == 302
    from pricing.models import PricingRun

    run = PricingRun.objects.get()
    assert set(run.product_ids) >= {p.pk for p in products}
    services.pricing_run_execute(run_id=run.pk, batch=10_000)  # what the task does after commit
    assert [price_of(p) for p in products] == [96_900, 96_900]
    assert "실행 전체 되돌리기" in client.get(reverse("pricing:index")).content.decode()

    client.post(reverse("pricing:run_rollback", args=[run.pk]))

    assert [price_of(p) for p in products] == [100_000, 100_000]
    assert PriceAuditEntry.objects.filter(action="run_rolled_back", user=admin).count() == 2


def test_the_admin_lists_pricing_history_with_filters(client):
    from tests.factories import UserFactory

    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    applied_change()
    for model in ("pricingpolicy", "priceproposal", "pricechange", "priceauditentry", "pricingrun"):
        response = client.get(f"/admin/pricing/{model}/")
        assert response.status_code == 200, model
    audit = client.get("/admin/pricing/priceauditentry/?action__exact=applied").content.decode()
    assert "96900" in audit or "96,900" in audit
