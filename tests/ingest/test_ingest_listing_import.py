"""`manage.py import_listings`: keyed by (SKU, URL), fingerprints follow content, bad rows by line."""
from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.management import call_command

from matcher.models import FetchStatus, ImportReport, Listing, ListingImage
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db

HEADER = "sku,mall,seller,title,price,shipping_fee,url,product_number,images,seen_at"


def write_csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return path


def run(path: Path) -> str:
    out = io.StringIO()
    call_command("import_listings", str(path), "--no-progress", stdout=out)
    return out.getvalue()


@pytest.fixture
def jacket():
    return ProductFactory(sku="NP-001", title="1996 에코 눕시 구스다운 자켓")


def test_good_rows_land_and_bad_rows_are_reported_by_line(tmp_path, jacket, write_image):
    write_image("shots/m1.png")
    csv_path = write_csv(
        tmp_path / "listings.csv",
        [
            'NP-001,무신사,노스공식,[정품] 눕시 구스다운,"299,000",0,https://www.musinsa.com/goods/1,NJ1DN55A,'
            "shots/m1.png,2025-11-01T10:00:00+09:00",  # line 2
            "NP-001,11번가,아울렛,눕시 패딩 블랙,289000원,3000,https://www.11st.co.kr/p/2,,https://img.11st.co.kr/a.jpg,",
            "NOPE-9,무신사,x,모르는 SKU,1000,0,https://www.musinsa.com/goods/3,,https://img.example.com/a.jpg,",  # 4
            "NP-001,쿠팡,x,음수 가격,-1000,0,https://www.coupang.com/vp/4,,https://img.example.com/a.jpg,",  # 5
            "NP-001,쿠팡,x,주소 없음,1000,0,ftp://coupang.com/5,,https://img.example.com/a.jpg,",  # 6
            "NP-001,쿠팡,x,시간 오류,1000,0,https://www.coupang.com/vp/6,,https://img.example.com/a.jpg,어제",  # 7
        ],
    )

    output = run(csv_path)

    assert "created 2, updated 0, unchanged 0, failed 4" in output
    musinsa = Listing.objects.get(mall="무신사")
    assert (musinsa.product, musinsa.price, musinsa.shipping_fee, musinsa.product_number) == (
        jacket, 299_000, 0, "NJ1DN55A"
    )
    assert musinsa.first_seen == datetime(2025, 11, 1, 1, 0, tzinfo=UTC)
    assert musinsa.images.get().fetch_status == FetchStatus.OK  # local file stored during the import
    eleven = Listing.objects.get(mall="11번가")
    assert (eleven.price, eleven.shipping_fee, eleven.total_price) == (289_000, 3_000, 292_000)
    assert eleven.images.get().fetch_status == FetchStatus.PENDING
    assert len(eleven.content_fingerprint) == 64
    by_line = {e["line"]: " ".join(e["errors"]) for e in ImportReport.objects.get().errors}
    assert set(by_line) == {4, 5, 6, 7}
    assert "unknown SKU" in by_line[4]
    assert "negative" in by_line[5]
    assert "url" in by_line[6]
    assert "seen_at" in by_line[7]


def test_reimport_updates_by_sku_and_url_and_changes_the_fingerprint_only_when_content_changes(tmp_path, jacket):
    url = "https://www.musinsa.com/goods/1"
    row = "NP-001,무신사,노스공식,{title},{price},0,{url},,{images},{seen}"
    first = dict(title="눕시 패딩", price="299000", url=url, images="https://img.example.com/a.jpg|https://img.example.com/b.jpg",
                 seen="2025-11-01T10:00:00+09:00")
    csv_path = write_csv(tmp_path / "listings.csv", [row.format(**first)])
    run(csv_path)
    listing = Listing.objects.get()
    fingerprint = listing.content_fingerprint

    # Seen again later, same content, pictures in another order: unchanged, but last_seen moves.
    again = {**first, "images": "https://img.example.com/b.jpg|https://img.example.com/a.jpg",
             "seen": "2025-11-03T10:00:00+09:00"}
    assert "unchanged 1" in run(write_csv(csv_path, [row.format(**again)]))
    listing.refresh_from_db()
    assert listing.content_fingerprint == fingerprint
    assert listing.last_seen == datetime(2025, 11, 3, 1, 0, tzinfo=UTC)
    assert listing.first_seen == datetime(2025, 11, 1, 1, 0, tzinfo=UTC)

    for change in ({"title": "눕시 패딩 (품절임박)"}, {"price": "\"289,000\""}, {"images": "https://img.example.com/c.jpg"}):
        assert "updated 1" in run(write_csv(csv_path, [row.format(**{**again, **change})]))
        listing.refresh_from_db()
        assert listing.content_fingerprint != fingerprint, change
        fingerprint = listing.content_fingerprint

    assert Listing.objects.count() == 1
    assert list(ListingImage.objects.values_list("source", flat=True)) == ["https://img.example.com/c.jpg"]


def test_the_same_url_for_two_skus_is_two_listings(tmp_path, jacket):
    ProductFactory(sku="NP-002")
    url = "https://www.musinsa.com/goods/1"
    csv_path = write_csv(
        tmp_path / "listings.csv",
        [f"NP-001,무신사,,패딩,1000,0,{url},,https://img.example.com/a.jpg,",
         f"NP-002,무신사,,패딩,1000,0,{url},,https://img.example.com/a.jpg,"],
    )
    run(csv_path)
    run(csv_path)
    assert Listing.objects.count() == 2


def test_jsonl_listings(tmp_path, jacket):
    path = tmp_path / "listings.jsonl"
    items = [
        {"sku": "NP-001", "mall": "무신사", "title": "눕시", "price": 299000, "url": "https://m.example.com/1",
         "images": ["https://img.example.com/1.jpg", "https://img.example.com/2.jpg"]},
        {"sku": "NP-001", "mall": "무신사", "title": "눕시", "price": "299000", "url": "https://m.example.com/2",
         "images": []},
    ]
    path.write_text("\n".join(json.dumps(i, ensure_ascii=False) for i in items), encoding="utf-8")

    output = run(path)

    assert "created 1, updated 0, unchanged 0, failed 1" in output
    assert Listing.objects.get().images.count() == 2
    assert "line 2" in output and "at least one image" in output
