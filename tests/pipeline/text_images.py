"""Rendered text for OCR tests: Korean and Latin lines in NanumGothic (shipped by koreanize-matplotlib)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont


def korean_font(size: int) -> ImageFont.FreeTypeFont:
    # koreanize-matplotlib (a project dependency) ships NanumGothic.
    spec = importlib.util.find_spec("koreanize_matplotlib")
    if spec is None or spec.origin is None:
        pytest.skip("no Korean font available")
    return ImageFont.truetype(str(Path(spec.origin).parent / "fonts" / "NanumGothic.ttf"), size)


def label(lines: list[str], size=(760, 240)) -> Image.Image:
    """Black lines of text on white, 80 px apart: a size chart or a product-number label."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((24, 30 + i * 80), line, font=korean_font(36), fill="black")
    return image
