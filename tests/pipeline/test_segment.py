from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from matcher.pipeline.types import BackgroundRemover
from matcher.pipeline.weights import checkpoint_hash

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model_on_bricks(luma, brick):
    """A studio shot with its white background swapped for a brick wall, and where the wall is."""
    photo = luma("mj08-green_main.jpg")
    rgb = np.asarray(photo)
    wall = np.asarray(brick.resize(photo.size))
    is_background = rgb.min(axis=2) >= 245
    return Image.fromarray(np.where(is_background[..., None], wall, rgb)), is_background


def test_it_is_a_background_remover_named_after_its_model(remover):
    assert isinstance(remover, BackgroundRemover)
    assert remover.name == "rembg:isnet-medium-fp16"
    assert len(remover.checkpoint_hash) == 12


def test_the_wall_behind_a_model_becomes_studio_white_and_the_jacket_stays(remover, model_on_bricks):
    composite, is_background = model_on_bricks
    (out,) = remover.cutout([composite])

    assert out.size == composite.size and out.mode == "RGB"
    result, before = np.asarray(out).astype(int), np.asarray(composite).astype(int)
    # Background well away from the model (the left and right fifths) is white now.
    w = composite.width
    sides = np.zeros_like(is_background)
    sides[:, : w // 5] = sides[:, -w // 5 :] = True
    assert (result[sides & is_background].min(axis=1) >= 235).mean() > 0.97
    # The green fleece in the middle of the torso keeps its colour.
    torso = (slice(250, 450), slice(200, 320))
    assert np.abs(result[torso] - before[torso]).mean() < 8


def test_a_street_photo_keeps_its_people_on_white(remover, zidane):
    (out,) = remover.cutout([zidane])
    result = np.asarray(out).astype(int)
    # The crowd in the top-left corner is gone; the suit of the man on the left is not.
    assert (result[:120, :120].min(axis=2) >= 235).mean() > 0.95
    suit = (slice(450, 600), slice(300, 420))
    assert np.abs(result[suit] - np.asarray(zidane).astype(int)[suit]).mean() < 10


def test_masks_are_grey_images_of_the_input_size(remover, zidane):
    (mask,) = remover.masks([zidane])
    assert mask.mode == "L" and mask.size == zidane.size
    assert remover.cutout([]) == []


@pytest.fixture(scope="module")
def isnet_path():
    from matcher.pipeline.weights import ISNET_MEDIUM, default_path

    path = default_path(ISNET_MEDIUM)
    if not path.is_file():
        pytest.skip(f"{path} is missing; run `python -m matcher.pipeline.weights fetch`")
    return path


def _agreement(a, b) -> tuple[float, float]:
    """Mean absolute difference in grey levels, and the IoU of the two masks' foregrounds."""
    x, y = np.asarray(a, np.int16), np.asarray(b, np.int16)
    fa, fb = x >= 128, y >= 128
    return float(np.abs(x - y).mean()), float((fa & fb).sum() / max(1, (fa | fb).sum()))


def test_openvino_runs_the_same_network_float32_gives_the_same_masks_bfloat16_nearly(isnet_path, luma, zidane,
                                                                                    threads):
    from matcher.pipeline.runtime import openvino_bf16_available
    from matcher.pipeline.segment import RembgRemover

    photos = [zidane, luma("mj08-green_main.jpg")]
    reference = RembgRemover(isnet_path, threads=threads, runtime="onnxruntime").masks(photos)
    f32 = RembgRemover(isnet_path, threads=threads, runtime="openvino")
    assert f32.runtime == "openvino"
    # Same file, same checkpoint hash and name: the runtime is how the masks are computed, not what.
    assert (f32.name, f32.checkpoint_hash) == ("rembg:isnet-medium-fp16", checkpoint_hash(isnet_path))
    for a, b in zip(reference, f32.masks(photos)):
        mad, iou = _agreement(a, b)
        assert mad < 0.1 and iou > 0.999
    if openvino_bf16_available():
        bf16 = RembgRemover(isnet_path, threads=threads, runtime="openvino-bf16")
        assert bf16.runtime == "openvino-bf16" and bf16._session.inner_session.precision == "bf16"
        for a, b in zip(reference, bf16.masks(photos)):
            mad, iou = _agreement(a, b)
            assert mad < 1.0 and iou > 0.97


def test_bfloat16_falls_back_to_float32_on_a_cpu_without_it(isnet_path, monkeypatch, caplog, threads):
    import logging

    from matcher.pipeline import segment

    monkeypatch.setattr(segment, "openvino_bf16_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger="matcher.pipeline.segment"):
        remover = segment.RembgRemover(isnet_path, threads=threads, runtime="openvino-bf16")
    assert remover.runtime == "openvino" and remover._session.inner_session.precision == "f32"
    assert "no native bfloat16" in caplog.text


def test_openvino_falls_back_to_onnxruntime_when_it_cannot_load(isnet_path, monkeypatch, caplog, zidane, threads):
    import logging

    from matcher.pipeline import segment

    def broken(*args, **kwargs):
        raise RuntimeError("no OpenVINO here")

    monkeypatch.setattr(segment, "OpenVinoNetwork", broken)
    monkeypatch.setattr(segment, "_sessions", {})
    with caplog.at_level(logging.WARNING, logger="matcher.pipeline.segment"):
        remover = segment.RembgRemover(isnet_path, threads=threads, runtime="openvino")
    assert remover.runtime == "onnxruntime" and "no OpenVINO here" in caplog.text
    (mask,) = remover.masks([zidane])
    assert mask.size == zidane.size


def test_an_unknown_runtime_is_refused(isnet_path):
    from matcher.pipeline.segment import RembgRemover

    with pytest.raises(ValueError, match="tensorrt"):
        RembgRemover(isnet_path, runtime="tensorrt")
