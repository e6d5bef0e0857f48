"""matcher.pipeline.resample must give Pillow's bicubic resize byte for byte: the embedder's vectors
(and every stored embedding key) assume Pillow's pixels."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from matcher.pipeline.resample import horizontal_first, resize_normalised_into, resize_planes


def pillow_planes(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    resized = Image.fromarray(pixels).resize(size, Image.Resampling.BICUBIC)
    return np.asarray(resized).transpose(2, 0, 1)


sides = st.integers(min_value=1, max_value=180)


@settings(max_examples=150, deadline=None)
@given(w=sides, h=sides, out_w=sides, out_h=sides, seed=st.integers(0, 2**32 - 1))
def test_any_size_up_or_down_gives_pillows_bytes(w, h, out_w, out_h, seed):
    # Noise is the hardest case: every coefficient, clamp and rounding shows in the output.
    pixels = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    assert np.array_equal(resize_planes(pixels, (out_w, out_h)), pillow_planes(pixels, (out_w, out_h)))


@pytest.mark.parametrize(
    "shape, size",
    [
        ((821, 485), (303, 25)),  # the height shrinks far more: Pillow runs the vertical pass first
        ((485, 821), (25, 303)),  # the width shrinks far more: horizontal first
        ((300, 100), (100, 100)),  # only the height changes
        ((100, 300), (100, 100)),  # only the width changes
        ((64, 64), (64, 64)),  # nothing changes
        ((7, 5), (260, 182)),  # a tiny crop blown up
        ((2000, 40), (5, 260)),  # a thin banner strip
    ],
)
def test_both_pass_orders_and_skipped_passes(shape, size):
    h, w = shape
    pixels = np.random.default_rng(h * w).integers(0, 256, (h, w, 3), dtype=np.uint8)
    assert np.array_equal(resize_planes(pixels, size), pillow_planes(pixels, size))


def test_pass_order_follows_pillow():
    assert not horizontal_first(485, 821, 303, 25)  # height shrinks by 796, width by 182
    assert horizontal_first(485, 821, 100, 600)  # 221 > 2 * 385 does not hold
    assert horizontal_first(100, 100, 300, 300)  # enlarging: horizontal first
    assert not horizontal_first(100, 300, 400, 200)  # height shrinks while width grows


def test_real_photos_letterboxed_to_the_embedders_size(bus, zidane, luma):
    for photo in (bus, zidane, luma("ms08-black_main.jpg")):
        pixels = np.asarray(photo.convert("RGB"))
        for side in (260, 224, 64):
            scale = side / max(photo.size)
            size = (max(1, round(photo.width * scale)), max(1, round(photo.height * scale)))
            assert np.array_equal(resize_planes(pixels, size), pillow_planes(pixels, size))


def test_normalised_write_lands_inside_the_batch_and_nowhere_else(zidane):
    pixels = np.asarray(zidane.convert("RGB"))
    out = np.full((3, 70, 90), -7.0, np.float32)
    scale = np.array([0.5, 0.25, 2.0], np.float32)
    offset = np.array([-1.0, 0.0, 3.0], np.float32)
    resize_normalised_into(pixels, (60, 34), out, 20, 30, scale, offset)

    planes = pillow_planes(pixels, (60, 34)).astype(np.float32)
    expected = planes * scale[:, None, None] + offset[:, None, None]
    assert np.array_equal(out[:, 30:64, 20:80], expected)
    outside = out.copy()
    outside[:, 30:64, 20:80] = -7.0
    assert (outside == -7.0).all()


@pytest.mark.parametrize(
    "pixels, size, message",
    [
        (np.zeros((10, 10), np.uint8), (5, 5), "RGB array"),
        (np.zeros((10, 10, 4), np.uint8), (5, 5), "RGB array"),
        (np.zeros((0, 10, 3), np.uint8), (5, 5), "RGB array"),
        (np.zeros((10, 10, 3), np.uint8), (0, 5), "positive"),
        (np.zeros((10, 10, 3), np.uint8), (5, -1), "positive"),
    ],
)
def test_bad_input_is_refused_clearly(pixels, size, message):
    with pytest.raises(ValueError, match=message):
        resize_planes(pixels, size)


def test_a_write_that_does_not_fit_is_refused_before_anything_is_written():
    out = np.zeros((3, 20, 20), np.float32)
    pixels = np.full((40, 40, 3), 200, np.uint8)
    ones, zeros = np.ones(3, np.float32), np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="does not fit"):
        resize_normalised_into(pixels, (16, 16), out, 10, 0, ones, zeros)
    with pytest.raises(ValueError, match="float32"):
        resize_normalised_into(pixels, (16, 16), out.astype(np.float64), 0, 0, ones, zeros)
    assert (out == 0).all()



def test_a_read_only_install_caches_compiled_code_under_the_temp_dir(monkeypatch, tmp_path):
    """numba refuses cache=True at import when it has nowhere to write (a read-only image with no home
    directory); the module then points it at the temp dir. (Simulated: as root every path is writable.)"""
    import os

    import matcher.pipeline.resample as resample

    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "missing"))
    monkeypatch.setattr(resample.tempfile, "gettempdir", lambda: str(tmp_path))
    monkeypatch.setattr(resample.os, "access", lambda path, mode: False)
    resample._cache_dir_for_numba()
    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "pricematch-numba")

    monkeypatch.delenv("NUMBA_CACHE_DIR")
    monkeypatch.setattr(resample.os, "access", lambda path, mode: True)  # the package is writable
    resample._cache_dir_for_numba()
    assert "NUMBA_CACHE_DIR" not in os.environ
