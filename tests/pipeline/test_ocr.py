"""Tesseract OCR (kor+eng) on rendered text; skipped when Tesseract or its Korean data is missing."""
from __future__ import annotations

import pytest
from PIL import Image

from matcher.pipeline.attributes import (
    Lexicon,
    compare_product_numbers,
    extract,
    extract_product_numbers,
    parse_product_number,
)
from matcher.pipeline.ocr import TesseractOcr
from tests.pipeline.text_images import label


@pytest.fixture(scope="module")
def ocr() -> TesseractOcr:
    engine = TesseractOcr()
    if not engine.available():
        pytest.skip("tesseract with kor+eng is not installed (Debian: tesseract-ocr tesseract-ocr-kor)")
    return engine


def test_it_reads_korean_and_a_product_number_from_a_label(ocr):
    text = ocr.read(label(["품번 NJ1DN55A 구스다운", "키즈 해외배송"]))
    attrs = extract(text, Lexicon.load())
    assert attrs["material"] == {"goose_down"}
    assert attrs["audience"] == {"kids"} and attrs["shipping"] == {"overseas"}
    found = extract_product_numbers(text)
    assert compare_product_numbers([parse_product_number("NJ1DN55A")], found, ocr_tolerant=True) == "match"


def test_a_blank_image_reads_as_nothing(ocr):
    assert ocr.read(Image.new("RGB", (400, 300), "white")) == ""


def test_a_missing_binary_is_unavailable_not_an_error():
    engine = TesseractOcr(tesseract_cmd="/nonexistent/tesseract")
    assert engine.available() is False
    with pytest.raises(RuntimeError):
        engine.read(Image.new("RGB", (10, 10)))


def test_a_missing_language_is_unavailable():
    assert TesseractOcr(languages="kor+xyz").available() is False


def test_it_reads_the_same_text_as_pytesseract_did_on_a_product_photo_banner():
    # The stage reads through libtesseract in this process (or, without it, the command on a PGM with
    # one OpenMP thread) instead of pytesseract's PNG temp file; the text must not change.
    import pytesseract

    ocr = TesseractOcr(psm=11, layout="page")
    if not ocr.available():
        pytest.skip("tesseract with kor+eng is not installed (Debian: tesseract-ocr tesseract-ocr-kor)")
    image = label(["리퍼 상품 NJ1DP85A", "SALE 30% 해외배송"], size=(520, 200))  # small: the 2× upscale path
    gray = image.convert("L").resize((1040, 400), Image.LANCZOS)
    pytesseract.pytesseract.tesseract_cmd = ocr.tesseract_cmd
    expected = pytesseract.image_to_string(gray, lang=ocr.languages, config="--psm 11")
    expected = "\n".join(line.strip() for line in expected.splitlines() if line.strip())
    assert ocr.read(image) == expected
    assert "NJ1DP85A" in expected.replace(" ", "")


def test_a_shop_banner_across_a_photo_is_read_even_where_the_sparse_pass_misses_it(ocr, luma):
    # The demo's banner transform on a studio photo: a coloured bar with "리퍼 B급" (refurbished).
    # Tesseract's sparse-text pass alone misses it on one of these; the block pass reads it, and so
    # does the default layout, line by line.
    from matcher.demo import transforms as T

    photo = luma("mj01-red_main.jpg")
    lexicon = Lexicon.load()
    for engine in (ocr, TesseractOcr(layout="page")):
        for seed in (6, 7, 8, 9):
            text = engine.read(T.banner(photo, seed, text="리퍼 B급 ★ 특가 판매"))
            assert extract(text, lexicon).get("condition") == {"refurb"}, (engine.layout, seed, text)


def test_a_banner_over_a_large_dark_garment_is_read_line_by_line(ocr):
    # Precision guard: 키즈 / 리퍼 / 해외배송 printed over our own photo of a black padded jacket.
    # Tesseract laying out the whole photo itself loses most of these bars in the quilting (the page
    # layout read 2 of 8 kids and 4 of 8 refurb banners here); each line cut out on its own is read.
    from matcher.demo import transforms as T
    from matcher.demo.garments import GarmentSpec, render

    photo = render(GarmentSpec("jacket", "black", hood=True, logo="NORTHRIDGE", seed=1), "front").resize((460, 460))
    lexicon = Lexicon.load()
    expected = {
        "키즈 ★ 아동용 ★ 130~160": ("audience", "kids"),
        "리퍼 B급 ★ 특가 판매": ("condition", "refurb"),
        "해외배송 ★ 병행수입 정품": ("shipping", "overseas"),
    }
    for text, (attribute, value) in expected.items():
        for seed in range(6, 14):
            read = ocr.read(T.banner(photo, seed, text=text))
            assert value in extract(read, lexicon).get(attribute, set()), (text, seed, read)


def test_a_label_photographed_on_its_own_is_read(ocr):
    # A strip wider than tall whose letters fill half its height (a tag close-up, a banner image).
    text = ocr.read(label(["NJ1DP85A 블랙 95"], size=(300, 80)))
    found = extract_product_numbers(text)
    assert compare_product_numbers([parse_product_number("NJ1DP85A")], found, ocr_tolerant=True) == "match", text


def test_the_layout_is_part_of_the_signature_and_an_unknown_one_is_refused():
    assert TesseractOcr().signature != TesseractOcr(layout="page").signature
    with pytest.raises(ValueError):
        TesseractOcr(layout="columns")


def test_passes_side_by_side_read_what_each_pass_reads_alone(luma):
    # Same text as running each page mode alone and joining the lines in the same order.
    from matcher.demo import transforms as T

    ocr = TesseractOcr(layout="page")
    image = T.banner(luma("mj01-red_main.jpg"), 7, text="리퍼 B급 ★ 특가 판매")
    together = TesseractOcr(parallel_passes=True, layout="page").read(image)
    assert ocr.read(image) == together  # one after the other (the default): the same text
    lines: list[str] = []
    for psm in ocr.psm:
        for line in TesseractOcr(psm=psm, layout="page").read(image).splitlines():
            if line not in lines:
                lines.append(line)
    assert together == "\n".join(lines)
    assert together


def test_a_pass_that_outlasts_the_timeout_reads_nothing_instead_of_failing(ocr):
    slow = TesseractOcr(timeout_seconds=0.001)
    assert slow.read(label(["품번 NJ1DN55A"])) == ""
