"""Fixtures for the demo-data tests: plain Python, no database, no Django.

The Luma studio photos are read from ../shared/eval/ (or $LUMA_DEV_DIR) and the tests that
need them skip when they are absent.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from matcher.demo.garments import GarmentSpec, render

LUMA_DIR = Path(os.environ.get("LUMA_DEV_DIR", Path(__file__).resolve().parents[3] / "shared/eval/luma_dev"))


@pytest.fixture(autouse=True)
def _media_in_tmp():
    """Shadows the project-wide fixture of the same name: demo tests write no media and need no Django."""
    yield


@pytest.fixture(scope="session")
def navy_jacket_spec() -> GarmentSpec:
    return GarmentSpec("jacket", "navy", "horizontal", hood=True, logo="NORTHRIDGE", seed=3)


@pytest.fixture(scope="session")
def navy_jacket(navy_jacket_spec: GarmentSpec) -> Image.Image:
    return render(navy_jacket_spec, "front")


@pytest.fixture(scope="session")
def black_tee() -> Image.Image:
    spec = GarmentSpec("tshirt", "black", collar="crew", zipper="none", pockets="none", texture="cotton",
                       print_kind="badge", print_text="MOVE ON", length=0.46, seed=4)
    return render(spec, "front")


@pytest.fixture(scope="session")
def luma_dir() -> Path:
    if not (LUMA_DIR / "images_meta.csv").is_file():
        pytest.skip(f"Luma evaluation photos not found at {LUMA_DIR} (set LUMA_DEV_DIR or put shared/eval beside the repo)")
    return LUMA_DIR
