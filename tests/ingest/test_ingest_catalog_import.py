"""`manage.py import_catalog`: rows land, bad rows are reported by line, re-imports update in place."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from matcher.models import FetchStatus, ImageFile, ImportReport, Product, ProductImage
from tests.ingest.conftest import bomb_png

pytestmark = pytest.mark.django_db

HEADER = "sku,product_number,brand,title,category,colour,price,cost,min_price,attributes,images,active"


def write_csv(path: Path, lines: list[str], *, bom: bool = True) -> Path:
    path.write_text(("\ufeff" if bom else "") + "\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return path


def run(path: Path, *args: str) -> str:
    out = io.StringIO()
    call_command("import_catalog", str(path), "--no-progress", *args, stdout=out)
    return out.getvalue()


def test_good_rows_land_with_their_local_images(tmp_path, write_image):
    write_image("shots/nuptse-1.png", colour=(10, 10, 10))
    write_image("shots/nuptse-2.png", colour=(20, 20, 20))
    write_image("shots/cardigan.png", colour=(200, 180, 150))
    csv_path = write_csv(
        tmp_path / "catalog.csv",
        [
            'NP-001,NJ1DN-55A,노스페이스,1996 에코 눕시 구스다운 자켓,outerwear,black,"329,000",150000,"279,000",'
            '"{""소재"": ""구스다운"", ""충전재"": ""90/10""}",shots/nuptse-1.png|shots/nuptse-2.png,1',
            "CD-777,cd 777.bg,,울 캐시미어 가디건,tops,beige,129000원,,,,shots/cardigan.png,false",
        ],
    )

    output = run(csv_path)

    assert "created 2, updated 0, unchanged 0, failed 0" in output
    jacket = Product.objects.get(sku="NP-001")
    assert (jacket.title, jacket.price, jacket.cost, jacket.min_price) == ("1996 에코 눕시 구스다운 자켓", 329_000, 150_000, 279_000)
    assert jacket.product_number_norm == "NJ1DN55A"
    assert jacket.attributes == {"소재": "구스다운", "충전재": "90/10"}
    refs = list(jacket.images.order_by("position"))
    assert [r.source for r in refs] == ["shots/nuptse-1.png", "shots/nuptse-2.png"]
    assert all(r.fetch_status == FetchStatus.OK and r.image.format == "PNG" for r in refs)
    assert refs[0].image.file.storage.exists(refs[0].image.file.name)
    cardigan = Product.objects.get(sku="CD-777")
    assert (cardigan.price, cardigan.active, cardigan.product_number_norm) == (129_000, False, "CD777BG")
    report = ImportReport.objects.get()
    assert (report.kind, report.created, report.failed) == ("catalog", 2, 0)
    assert sorted(report.product_ids) == sorted([jacket.pk, cardigan.pk])


def test_bad_rows_are_reported_with_line_numbers_and_good_rows_still_land(tmp_path, write_image):
    write_image("a.png")
    (tmp_path.parent / f"{tmp_path.name}-outside.png").write_bytes(b"x")
    csv_path = write_csv(
        tmp_path / "catalog.csv",
        [
            "OK-1,,,좋은 행,,,1000,,,,a.png,1",  # line 2
            "BAD-PRICE,,,소수 가격,,,12.5,,,,a.png,1",  # line 3
            "BAD-TITLE,,,,,,1000,,,,a.png,1",  # line 4
            f"ESCAPE,,,경로 탈출,,,1000,,,,../{tmp_path.name}-outside.png,1",  # line 5
            "ABSOLUTE,,,절대 경로,,,1000,,,,/etc/hostname,1",  # line 6
            "MISSING,,,없는 파일,,,1000,,,,nope.png,1",  # line 7
            "OK-2,,,좋은 행 2,,,\"2,000\",,,,a.png,1",  # line 8
        ],
    )

    output = run(csv_path)

    assert set(Product.objects.values_list("sku", flat=True)) == {"OK-1", "OK-2"}
    report = ImportReport.objects.get()
    assert (report.created, report.failed) == (2, 5)
    by_line = {e["line"]: " ".join(e["errors"]) for e in report.errors}
    assert set(by_line) == {3, 4, 5, 6, 7}
    assert "decimal" in by_line[3]
    assert "title" in by_line[4]
    assert "outside the import folder" in by_line[5]
    assert "outside the import folder" in by_line[6]
    assert "file not found" in by_line[7]
    assert "line 3 [BAD-PRICE]" in output


def test_reimporting_updates_in_place_and_counts_unchanged_rows(tmp_path, write_image):
    write_image("a.png", colour=(1, 2, 3))
    write_image("b.png", colour=(4, 5, 6))
    lines = ["A,,,패딩,,,\"100,000\",,,,a.png,1", "B,,,가디건,,,50000,,,,b.png,1"]
    csv_path = write_csv(tmp_path / "catalog.csv", lines)
    run(csv_path)

    assert "created 0, updated 0, unchanged 2, failed 0" in run(csv_path)

    write_csv(csv_path, ["A,,,패딩,,,\"95,000\",,,,a.png,1", "B,,,가디건,,,50000,,,,a.png|b.png,1"])
    assert "created 0, updated 2, unchanged 0, failed 0" in run(csv_path)

    assert Product.objects.count() == 2
    assert Product.objects.get(sku="A").price == 95_000
    assert list(Product.objects.get(sku="B").images.values_list("source", flat=True)) == ["a.png", "b.png"]
    assert ProductImage.objects.count() == 3
    assert ImageFile.objects.count() == 2  # the same bytes are stored once


def test_the_same_bytes_under_two_names_are_one_image_file(tmp_path, write_image):
    write_image("front.png", colour=(9, 9, 9))
    write_image("copy-of-front.png", colour=(9, 9, 9))
    run(write_csv(tmp_path / "catalog.csv", ["A,,,a,,,1000,,,,front.png,1", "B,,,b,,,1000,,,,copy-of-front.png,1"]))
    assert ImageFile.objects.count() == 1
    assert ProductImage.objects.filter(image=ImageFile.objects.get()).count() == 2


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("corrupt.png", None, "corrupt"),
        ("notes.png", b"this is not an image", "not a recognisable image"),
        ("bomb.png", bomb_png(), "decompression bomb"),
    ],
)
def test_a_row_with_a_bad_local_image_writes_nothing(tmp_path, write_image, name, data, reason):
    good = write_image("good.png").read_bytes()
    write_image(name, data=data if data is not None else good[: len(good) // 2])
    run(write_csv(tmp_path / "catalog.csv", [f"A,,,패딩,,,1000,,,,good.png|{name},1"]))
    assert not Product.objects.exists()
    assert not ProductImage.objects.exists()
    assert reason in " ".join(ImportReport.objects.get().errors[0]["errors"])


def test_an_oversized_local_image_is_refused(tmp_path, write_image, settings):
    settings.IMAGE_MAX_BYTES = 50
    write_image("big.png")
    run(write_csv(tmp_path / "catalog.csv", ["A,,,패딩,,,1000,,,,big.png,1"]))
    assert not Product.objects.exists()
    assert "larger than 50 bytes" in ImportReport.objects.get().errors[0]["errors"][0]


def test_url_images_wait_for_the_download_workers(tmp_path, django_capture_on_commit_callbacks):
    csv_path = write_csv(tmp_path / "catalog.csv", ["A,,,패딩,,,1000,,,,https://img.example.com/a.jpg,1"])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run(csv_path)
    ref = ProductImage.objects.get()
    assert (ref.source, ref.fetch_status, ref.image) == ("https://img.example.com/a.jpg", FetchStatus.PENDING, None)
    assert len(callbacks) == 1  # one download task per SKU, sent after the row commits


def test_jsonl_catalogue_with_typed_values(tmp_path, write_image):
    write_image("a.png")
    rows = [
        {"sku": "J-1", "title": "롱패딩", "price": 259000, "images": ["a.png"], "active": False,
         "attributes": {"기장": "롱"}},
        {"sku": "J-2", "title": "숏패딩", "price": "₩199,000", "images": "a.png"},
        {"sku": "J-3", "title": "가격 오류", "price": 199000.5, "images": "a.png"},
    ]
    path = tmp_path / "catalog.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")

    output = run(path)

    assert "created 2, updated 0, unchanged 0, failed 1" in output
    assert Product.objects.get(sku="J-1").attributes == {"기장": "롱"}
    assert Product.objects.get(sku="J-1").active is False
    assert Product.objects.get(sku="J-2").price == 199_000
    assert ImportReport.objects.get().errors[0]["line"] == 3


def test_a_file_in_another_encoding_stops_before_writing(tmp_path):
    path = tmp_path / "catalog.csv"
    path.write_bytes((HEADER + "\nA,,,패딩,,,1000,,,,a.png,1\n").encode("cp949"))
    with pytest.raises(CommandError, match="UTF-8"):
        run(path)
    assert not ImportReport.objects.exists()


def test_unknown_file_and_user_are_command_errors(tmp_path):
    with pytest.raises(CommandError, match="file not found"):
        run(tmp_path / "nope.csv")
    path = write_csv(tmp_path / "catalog.csv", [])
    with pytest.raises(CommandError, match="no such user"):
        run(path, "--user", "nobody")
