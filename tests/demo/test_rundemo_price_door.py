"""`make demo` shows the pricing door: a re-import of a demo SKU below its floor is refused."""
from __future__ import annotations

import io

import pytest

from matcher.management.commands.rundemo import Command
from matcher.models import ImportReport, Product
from pricing.models import PriceChange


@pytest.mark.django_db
def test_the_demo_re_imports_one_sku_below_its_floor_and_it_is_refused(demo_dir, imported_demo):
    prices = dict(Product.objects.values_list("sku", "price"))
    out = io.StringIO()

    Command(stdout=out)._import_a_price_below_the_floor(demo_dir)

    report = ImportReport.objects.order_by("-pk").first()
    assert (report.failed, report.created, report.updated) == (1, 0, 0)
    assert "하한가" in report.errors[0]["errors"][0] and "하한가" in out.getvalue()
    assert dict(Product.objects.values_list("sku", "price")) == prices
    assert not PriceChange.objects.exists()
