"""Row parsing and validation (matcher/ingest.py): plain Python, no database."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from matcher import ingest
from matcher.ingest import RowError, parse_krw

SEOUL = ZoneInfo("Asia/Seoul")
NOW = datetime(2025, 11, 3, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("129,000", 129_000),
        ("129000", 129_000),
        ("129000원", 129_000),
        ("129,000 원", 129_000),
        ("₩129,000", 129_000),
        ("￦129,000", 129_000),  # full-width won sign from Korean keyboards
        ("KRW 129000", 129_000),
        ("１２９，０００원", 129_000),  # full-width digits
        (" 0 ", 0),
        (129000, 129_000),
    ],
)
def test_it_reads_korean_price_notations_as_integer_won(raw, expected):
    assert parse_krw(raw, name="price") == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("129000.5", "decimal"),
        ("129,000.00", "decimal"),
        ("-129000", "negative"),
        (-5, "negative"),
        ("12,90,00", "not a KRW amount"),
        ("about 10만원", "not a KRW amount"),
        ("1e5", "not a KRW amount"),
        (129000.0, "integer KRW only"),
        (True, "not a number"),
        ("99999999999", "too large"),
    ],
)
def test_it_refuses_prices_that_are_not_whole_non_negative_won(raw, reason):
    with pytest.raises(RowError) as exc:
        parse_krw(raw, name="price")
    assert reason in str(exc.value)
    assert "price" in str(exc.value)


@given(st.integers(min_value=0, max_value=ingest.MAX_KRW), st.sampled_from(["{:,}", "{}", "{:,}원", "₩{:,}", "{}원"]))
def test_any_formatted_amount_reads_back_exactly(amount, pattern):
    assert parse_krw(pattern.format(amount), name="price") == amount


def test_an_empty_optional_price_is_none_but_a_required_one_is_an_error():
    assert parse_krw("", name="cost", required=False) is None
    with pytest.raises(RowError, match="required"):
        parse_krw(" ", name="price")


def catalog(**overrides):
    row = {
        "sku": "SKU-1",
        "product_number": "nj1-dn.55a",
        "title": "눕시 구스다운 숏패딩",
        "price": "189,000",
        "images": "https://img.example.com/a.jpg",
    }
    row.update(overrides)
    return row


def test_a_catalog_row_normalises_the_product_number_and_defaults_active():
    row = ingest.parse_catalog_row(catalog(), base_dir=None)
    assert row.product_number_norm == "NJ1DN55A"
    assert row.active is True
    assert row.attributes == {}
    assert [s.url for s in row.images] == ["https://img.example.com/a.jpg"]


def test_a_catalog_row_reports_every_problem_at_once():
    with pytest.raises(RowError) as exc:
        ingest.parse_catalog_row(
            catalog(title="", price="12.5", attributes="[1, 2]", active="yes", images=""), base_dir=None
        )
    text = str(exc.value)
    for expected in ("title", "price", "attributes", "active", "images"):
        assert expected in text


def test_attributes_must_be_a_json_object():
    row = ingest.parse_catalog_row(catalog(attributes='{"소재": "구스다운", "충전재": "90/10"}'), base_dir=None)
    assert row.attributes == {"소재": "구스다운", "충전재": "90/10"}
    with pytest.raises(RowError, match="invalid JSON"):
        ingest.parse_catalog_row(catalog(attributes="{소재: 구스다운}"), base_dir=None)


def test_a_catalog_row_takes_one_to_five_images():
    six = "|".join(f"https://img.example.com/{i}.jpg" for i in range(6))
    with pytest.raises(RowError, match="at most 5"):
        ingest.parse_catalog_row(catalog(images=six), base_dir=None)
    with pytest.raises(RowError, match="at least one"):
        ingest.parse_catalog_row(catalog(images=" | "), base_dir=None)


@pytest.mark.parametrize("image", ["ftp://img.example.com/a.jpg", "file:///etc/passwd", "javascript:alert(1)"])
def test_it_refuses_image_schemes_other_than_http(image):
    with pytest.raises(RowError, match="scheme not allowed"):
        ingest.parse_catalog_row(catalog(images=image), base_dir=Path("/tmp"))


def test_without_an_import_folder_local_paths_are_refused():
    with pytest.raises(RowError, match="image URLs only"):
        ingest.parse_catalog_row(catalog(images="a.jpg"), base_dir=None)


def test_local_images_resolve_inside_the_import_folder(tmp_path):
    (tmp_path / "shots").mkdir()
    (tmp_path / "shots" / "a.png").write_bytes(b"x")
    row = ingest.parse_catalog_row(catalog(images="shots/a.png"), base_dir=tmp_path)
    assert row.images[0].path == (tmp_path / "shots" / "a.png").resolve()
    assert row.images[0].source == "shots/a.png"


@pytest.mark.parametrize("escape", ["../outside.png", "shots/../../outside.png", "/etc/hostname"])
def test_it_refuses_local_paths_that_escape_the_import_folder(tmp_path, escape):
    base = tmp_path / "import"
    base.mkdir()
    (tmp_path / "outside.png").write_bytes(b"x")
    with pytest.raises(RowError, match="outside the import folder"):
        ingest.resolve_local_image(escape, base_dir=base)


def test_a_symlink_out_of_the_import_folder_is_refused(tmp_path):
    base = tmp_path / "import"
    base.mkdir()
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"x")
    (base / "link.png").symlink_to(secret)
    with pytest.raises(RowError, match="outside the import folder"):
        ingest.resolve_local_image("link.png", base_dir=base)


def test_an_allowed_root_admits_absolute_paths_under_it(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "a.png").write_bytes(b"x")
    base = tmp_path / "import"
    base.mkdir()
    path = ingest.resolve_local_image(str(shared / "a.png"), base_dir=base, allowed_roots=[shared])
    assert path == (shared / "a.png").resolve()


def listing(**overrides):
    row = {
        "sku": "SKU-1",
        "mall": "무신사",
        "title": "[정품] 눕시 구스다운",
        "price": "179,000원",
        "url": "https://www.musinsa.com/app/goods/123",
        "images": ["https://img.example.com/a.jpg"],
    }
    row.update(overrides)
    return row


def test_a_listing_without_seen_at_is_seen_now_and_a_naive_time_is_seoul_time():
    assert ingest.parse_listing_row(listing(), now=NOW, base_dir=None).seen_at == NOW
    row = ingest.parse_listing_row(listing(seen_at="2025-11-01T10:00:00"), now=NOW, default_tz=SEOUL, base_dir=None)
    assert row.seen_at == datetime(2025, 11, 1, 1, 0, tzinfo=UTC)
    row = ingest.parse_listing_row(listing(seen_at="2025-11-01T10:00:00Z"), now=NOW, base_dir=None)
    assert row.seen_at.utcoffset() == timedelta(0)


def test_a_listing_needs_an_http_url_and_a_readable_seen_at():
    with pytest.raises(RowError) as exc:
        ingest.parse_listing_row(listing(url="www.musinsa.com/1", seen_at="어제"), now=NOW, base_dir=None)
    assert "url" in str(exc.value) and "seen_at" in str(exc.value)


def test_shipping_fee_defaults_to_free():
    assert ingest.parse_listing_row(listing(), now=NOW, base_dir=None).shipping_fee == 0


def test_the_fingerprint_ignores_image_order_but_not_title_price_or_images():
    base = dict(title="t", price=1000, shipping_fee=0, product_number="", image_keys=["a", "b"])
    fp = ingest.listing_fingerprint(**base)
    assert ingest.listing_fingerprint(**{**base, "image_keys": ["b", "a"]}) == fp
    for change in ({"title": "t2"}, {"price": 1001}, {"shipping_fee": 3000}, {"image_keys": ["a", "c"]}):
        assert ingest.listing_fingerprint(**{**base, **change}) != fp


def test_csv_rows_keep_their_physical_line_numbers(tmp_path):
    path = tmp_path / "catalog.csv"
    path.write_text(
        "\ufeffSKU,Title,Price,Images\n"
        'A,"두 줄\n제목",1000,a.png\n'
        "\n"
        "B,제목,2000,b.png\n"
        "C,너무,많은,열,이,있음\n",
        encoding="utf-8",
    )
    rows = ingest.read_rows(path, required=ingest.CATALOG_REQUIRED[:3])
    assert [(r.line, r.values.get("sku"), bool(r.error)) for r in rows] == [
        (2, "A", False),
        (5, "B", False),
        (6, None, True),
    ]
    assert rows[0].values["title"] == "두 줄\n제목"


def test_a_file_that_is_not_utf8_is_refused_with_advice(tmp_path):
    path = tmp_path / "catalog.csv"
    path.write_bytes("sku,title,price,images\nA,패딩,1000,a.png\n".encode("cp949"))
    with pytest.raises(ingest.FileFormatError, match="UTF-8"):
        ingest.read_rows(path, required=ingest.CATALOG_REQUIRED)


def test_missing_required_columns_refuse_the_file(tmp_path):
    path = tmp_path / "catalog.csv"
    path.write_text("sku,title\nA,패딩\n", encoding="utf-8")
    with pytest.raises(ingest.FileFormatError, match="price, images"):
        ingest.read_rows(path, required=ingest.CATALOG_REQUIRED)


def test_jsonl_lines_that_are_not_objects_are_row_errors(tmp_path):
    path = tmp_path / "listings.ndjson"
    path.write_text('{"sku": "A"}\n\n[1,2]\n{broken\n', encoding="utf-8")
    rows = ingest.read_rows(path, required=ingest.LISTING_REQUIRED)
    assert [(r.line, r.error is None) for r in rows] == [(1, True), (3, False), (4, False)]


def test_other_extensions_are_refused(tmp_path):
    path = tmp_path / "catalog.xlsx"
    path.write_bytes(b"PK")
    with pytest.raises(ingest.FileFormatError, match="xlsx"):
        ingest.read_rows(path, required=())
