from __future__ import annotations

import csv
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from matcher.demo.generate import NEAR_KINDS, TRUE_KINDS, generate


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("demo"), seed=7, n_skus=8, listings_per_sku=10)


def test_the_csvs_have_the_import_columns(demo):
    with demo.catalog_csv.open(encoding="utf-8") as f:
        assert next(csv.reader(f)) == ["sku", "product_number", "brand", "title", "category", "colour", "price", "cost",
                                       "min_price", "attributes", "images", "active"]
    with demo.listings_csv.open(encoding="utf-8") as f:
        assert next(csv.reader(f)) == ["sku", "mall", "seller", "title", "price", "shipping_fee", "url", "product_number",
                                       "images", "seen_at"]


def test_every_listing_belongs_to_a_sku_and_every_image_exists(demo):
    catalog = _rows(demo.catalog_csv)
    listings = _rows(demo.listings_csv)
    skus = {r["sku"] for r in catalog}

    assert len(catalog) == 8 and len(listings) == 80
    assert all(r["sku"] in skus for r in listings)
    for row in catalog + listings:
        paths = row["images"].split("|")
        assert paths and all((demo.out_dir / p).is_file() for p in paths)
        assert all(not Path(p).is_absolute() for p in paths)
    assert len({r["url"] for r in listings}) == len(listings)


def test_money_is_whole_won_and_the_floor_sits_between_cost_and_price(demo):
    for row in _rows(demo.catalog_csv):
        price, cost, floor = int(row["price"]), int(row["cost"]), int(row["min_price"])
        assert 89_000 <= price <= 459_000
        assert cost < floor < price
        attrs = json.loads(row["attributes"])
        assert {"material", "audience", "garment"} <= attrs.keys()
    for row in _rows(demo.listings_csv):
        assert int(row["price"]) > 0 and str(int(row["price"])) == row["price"]
        assert int(row["shipping_fee"]) in (0, 2500, 3000)


def test_the_truth_has_true_matches_and_every_kind_of_near_miss(demo):
    truth = _rows(demo.truth_csv)
    urls = {r["url"] for r in _rows(demo.listings_csv)}
    kinds = {r["kind"] for r in truth}

    assert {r["url"] for r in truth} == urls
    assert {r["same_product"] for r in truth} == {"0", "1"}
    assert all(r["kind"] in TRUE_KINDS for r in truth if r["same_product"] == "1")
    assert all(r["kind"] in NEAR_KINDS for r in truth if r["same_product"] == "0")
    assert set(NEAR_KINDS) <= kinds
    assert set(TRUE_KINDS) <= kinds


def test_some_true_matches_undercut_our_floor_and_some_are_dearer(demo):
    floor = {r["sku"]: int(r["min_price"]) for r in _rows(demo.catalog_csv)}
    price = {r["sku"]: int(r["price"]) for r in _rows(demo.catalog_csv)}
    same = {r["url"] for r in _rows(demo.truth_csv) if r["same_product"] == "1"}
    true_listings = [r for r in _rows(demo.listings_csv) if r["url"] in same]

    assert any(int(r["price"]) < floor[r["sku"]] for r in true_listings)
    assert any(int(r["price"]) > price[r["sku"]] for r in true_listings)


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(folder).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_the_same_seed_writes_the_same_files(tmp_path):
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # seen_at is relative to the moment of generation
    generate(tmp_path / "a", seed=3, n_skus=3, listings_per_sku=4, now=now)
    generate(tmp_path / "b", seed=3, n_skus=3, listings_per_sku=4, now=now)
    generate(tmp_path / "c", seed=4, n_skus=3, listings_per_sku=4, now=now)

    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_competitor_listings_are_seen_recently_relative_to_now_and_a_few_are_stale(demo):
    now = datetime.now(UTC)
    seen = [datetime.fromisoformat(r["seen_at"]) for r in _rows(demo.listings_csv) if r["seen_at"]]
    ages = [now - s for s in seen]

    assert len(seen) >= 60  # one in ten may be blank: the import's own time
    assert all(timedelta(minutes=50) < age < timedelta(days=5) for age in ages)
    fresh = [a for a in ages if a <= timedelta(hours=37)]
    stale = [a for a in ages if a > timedelta(hours=48)]
    assert len(fresh) >= 0.85 * len(seen)  # pricing counts them (stale after 48 hours by default)
    assert 1 <= len(stale) <= 0.15 * len(seen)  # a few, deliberately, to show the cut-off at work


def test_seen_at_moves_with_now_and_nothing_else_does(tmp_path):
    generate(tmp_path / "a", seed=3, n_skus=2, listings_per_sku=4, now=datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    generate(tmp_path / "b", seed=3, n_skus=2, listings_per_sku=4, now=datetime(2026, 3, 3, 12, 0, tzinfo=UTC))
    a, b = _rows(tmp_path / "a" / "listings.csv"), _rows(tmp_path / "b" / "listings.csv")

    for row_a, row_b in zip(a, b, strict=True):
        assert {k: v for k, v in row_a.items() if k != "seen_at"} == {k: v for k, v in row_b.items() if k != "seen_at"}
        if row_a["seen_at"]:
            moved = datetime.fromisoformat(row_b["seen_at"]) - datetime.fromisoformat(row_a["seen_at"])
            assert moved == timedelta(days=2)
    assert _digest(tmp_path / "a" / "images") == _digest(tmp_path / "b" / "images")
