"""Our price changes through one door: a catalogue import's price is checked against the floor and
audited as a change of kind "import"; a floor raised above our price is re-priced at once.

Everything here goes through the real importer (`manage.py import_catalog` on a CSV file), the real
pricing services and, for what happens after the commit, a real Celery worker.
"""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse

from matcher.models import ImportReport, Product
from pricing import selectors, services
from pricing.models import PriceAuditEntry, PriceChange, PriceProposal
from tests.factories import UserFactory, png_bytes
from tests.pricing.factories import PricingProductFactory, match_for, pricing_admin
from tests.pricing.test_pricing_worker import wait_for

HEADER = "sku,product_number,brand,title,category,colour,price,cost,min_price,attributes,images,active"


@pytest.fixture
def catalogue(tmp_path: Path):  # noqa: ANN201 - fixture
    """Write a one-row catalogue for a SKU and import it; returns (command output, report)."""
    (tmp_path / "shots").mkdir()
    (tmp_path / "shots" / "a.png").write_bytes(png_bytes((10, 10, 10)))

    def run(sku: str, *, price: str, cost: str = "", min_price: str = "", user: str = "") -> tuple[str, ImportReport]:
        path = tmp_path / "catalog.csv"
        row = f"{sku},NJ1,브랜드,구스다운 자켓,outerwear,black,{price},{cost},{min_price},,shots/a.png,1"
        path.write_text("\n".join([HEADER, row]) + "\n", encoding="utf-8")
        out = io.StringIO()
        call_command("import_catalog", str(path), "--no-progress", *(["--user", user] if user else []), stdout=out)
        return out.getvalue(), ImportReport.objects.order_by("-pk").first()

    return run


def cut_price(product: Product) -> PriceChange:
    """A real applied change: a confirmed competitor at 97,000 makes the rules cut our 100,000."""
    match_for(product, price=97_000)
    proposal = services.reprice_product(product_id=product.pk, cause="test")
    assert proposal is not None and proposal.status == PriceProposal.Status.APPLIED
    return PriceChange.objects.get(proposal=proposal)


@pytest.mark.django_db
def test_an_import_below_the_floor_is_refused_and_writes_nothing(catalogue):
    product = PricingProductFactory(sku="NP-1", price=100_000, cost=60_000)
    applied = cut_price(product)
    product.refresh_from_db()
    before = product.price

    # Cost 65,000 × (1 + 10 % margin) = 71,500: 70,000 is below the floor.
    output, report = catalogue("NP-1", price="70000", cost="65000")

    product.refresh_from_db()
    assert (product.price, product.cost) == (before, 60_000)  # the whole row is refused, cost included
    assert report.failed == 1 and "하한가 71,500원보다 낮아" in output
    assert list(PriceChange.objects.filter(product=product)) == [applied]
    assert not PriceAuditEntry.objects.filter(action=PriceAuditEntry.Action.IMPORTED).exists()


@pytest.mark.django_db
def test_an_import_with_a_minimum_above_its_own_price_is_refused(catalogue):
    product = PricingProductFactory(sku="NP-2", price=100_000, cost=60_000)

    output, report = catalogue("NP-2", price="70000", min_price="95000")

    assert report.failed == 1 and "min_price: 최저가 95,000원이 판매가 70,000원보다 높습니다" in output
    product.refresh_from_db()
    assert (product.price, product.min_price) == (100_000, None)
    assert not PriceChange.objects.exists()


@pytest.mark.django_db
def test_an_imported_price_is_an_audited_change_naming_the_user_and_the_export_lists_real_changes(
    client, catalogue
):
    admin = pricing_admin(username="kim")
    product = PricingProductFactory(sku="NP-3", price=100_000, cost=60_000)
    applied = cut_price(product)
    pending = PriceProposal.objects.create(product=product, old_price=applied.new_price, new_price=90_000, floor=66_000)

    _, report = catalogue("NP-3", price="98000", cost="60000", user="kim")

    product.refresh_from_db()
    assert product.price == 98_000
    change = PriceChange.objects.get(kind=PriceChange.Kind.IMPORT)
    assert (change.old_price, change.new_price, change.user, change.automatic) == (applied.new_price, 98_000, admin, False)
    assert f"카탈로그 가져오기 #{report.pk}" in change.reason
    audit = PriceAuditEntry.objects.get(action=PriceAuditEntry.Action.IMPORTED)
    assert (audit.change, audit.user, audit.old_price, audit.new_price) == (change, admin, applied.new_price, 98_000)
    pending.refresh_from_db()
    assert pending.status == PriceProposal.Status.SUPERSEDED  # computed from a price that is gone

    [row] = selectors.changed_prices_since(applied.created_at)
    assert (row["previous_price"], row["price"], row["change_ids"]) == (100_000, 98_000, [applied.pk, change.pk])

    client.force_login(admin)
    page = client.get(reverse("pricing:sku_history", args=[product.sku])).content.decode()
    assert "카탈로그 가져오기" in page and "kim" in page


@pytest.mark.django_db
def test_an_unchanged_price_writes_no_change(catalogue):
    product = PricingProductFactory(sku="NP-4", price=100_000, cost=60_000)

    _, report = catalogue("NP-4", price="100000", cost="60000")

    assert report.failed == 0 and not PriceChange.objects.filter(product=product).exists()


@pytest.mark.django_db(transaction=True)
def test_a_floor_raised_above_our_price_is_proposed_at_once_by_the_worker(catalogue, pricing_worker):
    product = PricingProductFactory(sku="NP-5", price=100_000, cost=60_000)

    # The price column stays, the cost rises: floor 95,000 × 1.1 = 104,500 is above our 100,000.
    _, report = catalogue("NP-5", price="100000", cost="95000")
    assert report.updated == 1

    wait_for(lambda: PriceProposal.objects.filter(product=product).exists(), "propose the floor")
    proposal = PriceProposal.objects.get(product=product)
    assert (proposal.old_price, proposal.new_price, proposal.floor) == (100_000, 104_500, 104_500)
    assert "floor" in proposal.limits_hit
    # Raising because of the floor waits for an admin; our price has not moved yet.
    assert proposal.status == PriceProposal.Status.PENDING and proposal.held_reason
    assert Product.objects.get(pk=product.pk).price == 100_000


@pytest.mark.django_db(transaction=True)
def test_raising_the_minimum_in_the_admin_is_proposed_at_once_and_the_price_is_read_only(client, pricing_worker):
    admin = UserFactory(username="lee", is_superuser=True, is_staff=True)
    product = PricingProductFactory(sku="NP-6", price=100_000, cost=60_000)
    client.force_login(admin)
    url = reverse("admin:matcher_product_change", args=[product.pk])
    form = client.get(url).context["adminform"].form
    assert "price" not in form.fields  # read-only: our price moves through the rules and imports only

    data = {name: form[name].value() if form[name].value() is not None else "" for name in form.fields}
    data.update(
        {"min_price": "120000", "attributes": "{}", "images-TOTAL_FORMS": "0", "images-INITIAL_FORMS": "0",
         "images-MIN_NUM_FORMS": "0", "images-MAX_NUM_FORMS": "1000"}
    )
    data = {k: v for k, v in data.items() if v is not False}
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]

    wait_for(lambda: PriceProposal.objects.filter(product=product).exists(), "propose the new minimum")
    proposal = PriceProposal.objects.get(product=product)
    assert (proposal.new_price, proposal.status) == (120_000, PriceProposal.Status.PENDING)
    assert Product.objects.get(pk=product.pk).price == 100_000
