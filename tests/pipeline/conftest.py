"""Fixtures for the vision stages: real photos, real model files, two threads.

These tests need no database. Model tests skip (with the command that fixes it) when a
file is missing from var/models; `python -m matcher.pipeline.weights fetch` puts them there.
The Luma studio photos are read from ../shared/eval/ and skipped when absent.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from matcher.pipeline.weights import EFFICIENTNET_LITE2, ISNET_MEDIUM, POSE, ModelFile, default_path

THREADS = 2  # the build machine has two cores shared with other work
LUMA_DIR = Path(os.environ.get("LUMA_DEV_DIR", Path(__file__).resolve().parents[3] / "shared/eval/luma_dev"))


@pytest.fixture(scope="session")
def threads() -> int:
    return THREADS


@pytest.fixture(autouse=True)
def _media_in_tmp():
    """Shadows the project-wide fixture of the same name: pipeline tests write no media and need no Django."""
    yield


def model_file(model: ModelFile) -> Path:
    path = default_path(model)
    if not path.is_file():
        pytest.skip(f"{path} is missing; run `python -m matcher.pipeline.weights fetch`")
    return path


def _package_asset(module: str, *parts: str) -> Image.Image:
    import importlib.util

    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None, f"{module} is not installed"
    return Image.open(Path(spec.origin).parent.joinpath(*parts)).convert("RGB")


@pytest.fixture(scope="session")
def bus() -> Image.Image:
    """Ultralytics' street photo: people in front of a bus."""
    return _package_asset("ultralytics", "assets", "bus.jpg")


@pytest.fixture(scope="session")
def zidane() -> Image.Image:
    """Ultralytics' photo of two men in suits in front of a crowd."""
    return _package_asset("ultralytics", "assets", "zidane.jpg")


@pytest.fixture(scope="session")
def brick() -> Image.Image:
    """A busy texture (scikit-image's brick wall), used as a street-like backdrop."""
    return _package_asset("skimage", "data", "brick.png")


def _luma(name: str) -> Image.Image:
    if not (LUMA_DIR / "images").is_dir():
        pytest.skip(f"Luma studio photos not found at {LUMA_DIR} (set LUMA_DEV_DIR)")
    return Image.open(LUMA_DIR / "images" / name).convert("RGB")


@pytest.fixture(scope="session")
def luma():
    """Open a Luma studio photo by file name; skips the test when the eval set is absent."""
    return _luma


def _expected_runtime(asked: str) -> str:
    """What a runtime request runs as here: bfloat16 falls back to float32 on a CPU without it."""
    from matcher.pipeline.runtime import openvino_bf16_available

    return "openvino" if asked == "openvino-bf16" and not openvino_bf16_available() else asked


@pytest.fixture(scope="session", params=["torch", "openvino"])
def pose_finder(request):
    """The region finder in each float32 detector runtime: every region test runs on both. (bfloat16 moves
    keypoint confidences enough to flip a borderline case, e.g. the ghost-garment collage; its own test
    is in test_detect_runtime.py.)"""
    from matcher.pipeline.detect import PoseRegionFinder

    finder = PoseRegionFinder(model_file(POSE), threads=THREADS, runtime=request.param)
    assert finder.runtime == _expected_runtime(request.param)
    return finder


@pytest.fixture(scope="session", params=["onnxruntime", "openvino-bf16"])
def remover(request):
    """ISNet in rembg's own ONNX Runtime session and in OpenVINO bfloat16 (the default): every
    background-removal test runs on both."""
    from matcher.pipeline.segment import RembgRemover

    remover = RembgRemover(model_file(ISNET_MEDIUM), threads=THREADS, runtime=request.param)
    assert remover.runtime == _expected_runtime(request.param)
    return remover


@pytest.fixture(scope="session")
def efficientnet():
    from matcher.pipeline.embed import EfficientNetLiteEmbedder

    return EfficientNetLiteEmbedder(model_file(EFFICIENTNET_LITE2), threads=THREADS)


# --- garments without a person -------------------------------------------------------------


def garment_cutout(photo: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    """The garment of an on-model studio shot on white, without the model: a ghost-mannequin look.

    Keeps the connected pixels whose colour is close to the middle of `box` (the garment),
    so face, hands and trousers of another colour drop out.
    """
    import cv2

    from matcher.pipeline.pixels import rgb_to_lab

    crop = np.asarray(photo)[box[1] : box[3], box[0] : box[2]]
    lab = rgb_to_lab(crop)
    h, w = lab.shape[:2]
    garment_colour = np.median(lab[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3].reshape(-1, 3), axis=0)
    mask = (np.linalg.norm(lab - garment_colour, axis=2) < 25).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
    mask = labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    ys, xs = np.nonzero(mask)
    rows, cols = slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1)
    crop, mask = crop[rows, cols], mask[rows, cols]
    return Image.fromarray(np.where(mask[..., None], crop, 255).astype(np.uint8))


# Saturated tops, each a different colour, cropped from the Luma front shots (box = upper body).
GHOST_SOURCES = [
    ("mj08-green_main.jpg", (117, 159, 420, 577)),
    ("mt01-gray_main.jpg", (123, 155, 438, 575)),
    ("wh07-purple_main.jpg", (145, 167, 415, 582)),
]


@pytest.fixture(scope="session")
def ghost_garments() -> list[Image.Image]:
    return [garment_cutout(_luma(name), box) for name, box in GHOST_SOURCES]


def _compose(pieces: list[Image.Image], canvas_size: tuple[int, int], fill="white", gap: int = 40):
    """Pieces side by side on a canvas (a collage); returns the canvas and where each piece went."""
    canvas = Image.new("RGB", canvas_size, fill) if isinstance(fill, str) else fill.resize(canvas_size)
    slot_w = (canvas_size[0] - gap * (len(pieces) + 1)) // len(pieces)
    placed, x = [], gap
    for piece in pieces:
        piece = piece.copy()
        piece.thumbnail((slot_w, canvas_size[1] - 2 * gap))
        y = (canvas_size[1] - piece.height) // 2
        canvas.paste(piece, (x, y))
        placed.append((x, y, x + piece.width, y + piece.height))
        x += slot_w + gap
    return canvas, placed


@pytest.fixture(scope="session")
def compose():
    return _compose
