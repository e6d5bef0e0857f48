"""Tesseract's library in the worker process, and the text-line finder in front of OCR.

The library must read exactly what the `tesseract` command reads (the comparer's decisions and the
cached texts depend on it), and the finder must never hide a banner or a label from OCR.
"""
from __future__ import annotations

import ctypes

import numpy as np
import pytest
from PIL import Image, ImageDraw

from matcher.pipeline.attributes import Lexicon, extract
from matcher.pipeline.ocr import TesseractOcr
from matcher.pipeline.ocr.library import _library
from matcher.pipeline.textgate import TextLineFinder
from tests.pipeline.text_images import korean_font, label


@pytest.fixture(scope="module")
def cli() -> TesseractOcr:
    engine = TesseractOcr(engine="cli")
    if not engine.available():
        pytest.skip("tesseract with kor+eng is not installed (Debian: tesseract-ocr tesseract-ocr-kor)")
    return engine


@pytest.fixture(scope="module")
def library(cli) -> TesseractOcr:
    if _library(cli.languages) is None:
        pytest.skip("libtesseract (Debian: libtesseract5) cannot be loaded")
    return TesseractOcr(engine="library")


def _banners(luma) -> list[Image.Image]:
    """The demo's banner transform with each kind of copy the comparer acts on, over studio photos."""
    from matcher.demo import transforms as T

    photos = [luma("mj01-red_main.jpg"), luma("wh07-purple_main.jpg")]
    texts = [t for group in T.NEAR_MISS_BANNER_TEXTS.values() for t in group] + list(T.BANNER_TEXTS[:2])
    return [T.banner(photos[i % 2], 6 + i, text=text) for i, text in enumerate(texts)]


@pytest.mark.parametrize("layout", ["lines", "page"])
def test_the_library_reads_byte_for_byte_what_the_command_reads(cli, library, luma, layout):
    lexicon = Lexicon.load()
    read_something = 0
    by_library, by_command = TesseractOcr(engine="library", layout=layout), TesseractOcr(engine="cli", layout=layout)
    for image in _banners(luma)[:5] + [label(["품번 NJ1DN55A 구스다운", "키즈 해외배송"]), luma("mh02-black_back.jpg")]:
        text = by_library.read(image)
        assert text == by_command.read(image)
        read_something += bool(extract(text, lexicon))
    assert read_something >= 4  # the comparison covered banners that were read, not only blanks


def test_a_refurb_banner_is_read_through_the_library_where_the_sparse_pass_misses_it(library, luma):
    from matcher.demo import transforms as T

    photo = luma("mj01-red_main.jpg")
    for seed in (6, 7, 8, 9):
        text = library.read(T.banner(photo, seed, text="리퍼 B급 ★ 특가 판매"))
        assert extract(text, Lexicon.load()).get("condition") == {"refurb"}, (seed, text)


def test_reading_leaves_the_process_openmp_setting_as_it_was(library):
    # Tesseract's parallel regions are switched off only while it reads: torch shares the runtime.
    engine = _library(library.languages)
    get = engine.lib.omp_get_max_active_levels
    get.restype = ctypes.c_int
    before = get()
    assert library.read(label(["품번 NJ1DN55A"])) != ""
    assert get() == before


def test_a_pass_past_the_deadline_reads_nothing_through_the_library(library):
    slow = TesseractOcr(engine="library", timeout_seconds=0.001)
    assert slow.read(label(["품번 NJ1DN55A 구스다운", "키즈 해외배송"] * 2, size=(760, 400))) == ""


def test_the_command_is_used_when_passes_run_side_by_side(library, luma):
    # parallel_passes is a property of the command engine; the text is the same either way.
    image = label(["리퍼 상품 NJ1DP85A"])
    assert TesseractOcr(parallel_passes=True, layout="page").read(image) == TesseractOcr(
        engine="library", layout="page"
    ).read(image)


def test_an_unknown_engine_or_gate_is_refused():
    with pytest.raises(ValueError):
        TesseractOcr(engine="gpu")
    with pytest.raises(ValueError):
        TesseractOcr(text_gate="maybe")


# --- the text-line finder ----------------------------------------------------------------------


def test_the_finder_marks_every_banner_line(luma):
    finder = TextLineFinder()
    for image in _banners(luma):
        grey = np.asarray(image.convert("L"))
        lines = finder.find(grey)
        # The bar is the top or bottom 9-14 % of the photo; a line must sit inside it.
        h = grey.shape[0]
        assert any(b.y1 <= 0.2 * h or b.y0 >= 0.8 * h for b in lines), lines


def test_the_finder_marks_a_small_brand_label_on_a_garment(luma):
    # A label with 9 px capitals on a jacket, as the demo's garments carry: Tesseract reads those.
    photo = luma("mj01-red_main.jpg").copy()
    draw = ImageDraw.Draw(photo)
    draw.rectangle((300, 300, 372, 316), fill="white")
    draw.text((304, 302), "NORTHRIDGE", font=korean_font(11), fill="black")
    lines = TextLineFinder().find(np.asarray(photo.convert("L")))
    assert any(b.x0 <= 310 and b.x1 >= 360 and 295 <= b.y0 and b.y1 <= 322 for b in lines), lines


def test_a_plain_studio_back_shot_has_no_text_line_and_the_gate_reads_nothing(library, luma):
    photo = luma("mj02-green_back.jpg")
    assert TextLineFinder().find(np.asarray(photo.convert("L"))) == []
    assert TesseractOcr(text_gate="skip", layout="page").read(photo) == ""
    assert TesseractOcr().read(photo) == ""  # the line layout reads only lines, and there are none


def test_the_gate_passes_a_banner_photo_whole_so_the_text_is_unchanged(library, luma):
    from matcher.demo import transforms as T

    image = T.banner(luma("mj01-red_main.jpg"), 7, text="해외배송 ★ 병행수입 정품")
    gated = TesseractOcr(text_gate="skip", layout="page").read(image)
    assert gated == TesseractOcr(engine="library", layout="page").read(image)
    assert extract(gated, Lexicon.load()).get("shipping") == {"overseas"}


def test_the_gate_is_part_of_the_signature_so_cached_texts_are_read_again():
    assert TesseractOcr(layout="page").signature != TesseractOcr(text_gate="skip", layout="page").signature
    assert TesseractOcr(engine="cli").signature == TesseractOcr(engine="library").signature  # same text
