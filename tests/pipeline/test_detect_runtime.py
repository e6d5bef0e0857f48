"""The pose detector in OpenVINO: exported once beside the .pt, float32, the PyTorch model's regions."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from matcher.pipeline import detect
from matcher.pipeline.detect import pose_model
from matcher.pipeline.weights import POSE, default_path


@pytest.fixture
def lonely_pose(tmp_path) -> Path:
    """The .pt alone in a fresh folder: nothing exported beside it yet."""
    source = default_path(POSE)
    if not source.is_file():
        pytest.skip(f"{source} is missing; run `python -m matcher.pipeline.weights fetch`")
    return Path(shutil.copy(source, tmp_path / POSE.filename))


def _same_regions(a, b) -> None:
    assert [r.kind for r in a] == [r.kind for r in b]
    for ra, rb in zip(a, b):
        assert ra.needs_cutout == rb.needs_cutout
        box_a, box_b = (ra.box.x0, ra.box.y0, ra.box.x1, ra.box.y1), (rb.box.x0, rb.box.y0, rb.box.x1, rb.box.y1)
        assert np.abs(np.subtract(box_a, box_b)).max() <= 1
        if ra.keypoints:
            ka, kb = np.asarray(ra.keypoints), np.asarray(rb.keypoints)
            assert np.abs(ka[:, :2] - kb[:, :2]).max() < 0.5
            assert np.abs(ka[:, 2] - kb[:, 2]).max() < 0.01
            assert ra.score == pytest.approx(rb.score, abs=0.01)


@pytest.mark.slow
def test_openvino_is_exported_once_beside_the_weights_and_finds_the_pytorch_regions(lonely_pose, luma, bus, zidane,
                                                                                     threads):
    photos = [bus, zidane] + [luma(n) for n in ("mj08-green_main.jpg", "mh02-black_alt1.jpg", "mj08-gray_back.jpg")]
    eager = detect.PoseRegionFinder(lonely_pose, threads=threads, runtime="torch")
    assert not detect.openvino_dir_for(lonely_pose).exists()

    ov = detect.PoseRegionFinder(lonely_pose, threads=threads, runtime="openvino")

    folder = detect.openvino_dir_for(lonely_pose)
    assert ov.runtime == "openvino" and eager.runtime == "torch"
    assert (folder / f"{lonely_pose.stem}.xml").is_file() and (folder / f"{lonely_pose.stem}.bin").is_file()
    # Nothing half-written is left beside the weights.
    assert sorted(p.name for p in lonely_pose.parent.iterdir()) == sorted([lonely_pose.name, folder.name])
    # float32 even on a CPU where OpenVINO would pick bfloat16 by itself.
    assert detect.compiled_precision(ov._model) == "f32" and detect.compiled_precision(eager._model) is None
    # Same weights, same checkpoint hash: analyses made by either runtime are the same analyses.
    assert ov.checkpoint_hash == eager.checkpoint_hash
    found_ov, found_eager = ov.find(photos), eager.find(photos)
    assert sum(r.kind == "outfit" for regions in found_eager for r in regions) >= 4  # people were found
    for a, b in zip(found_eager, found_ov):
        _same_regions(a, b)
    # A batch split differently gives the same regions.
    for one, batched in zip([ov.find([p])[0] for p in photos[:2]], found_ov[:2]):
        _same_regions(one, batched)
    assert ov.find([]) == []

    # The export is reused, not made again.
    stamp = (folder / f"{lonely_pose.stem}.xml").stat().st_mtime_ns
    pose_model._models.clear()
    again = detect.PoseRegionFinder(lonely_pose, threads=threads, runtime="openvino")
    assert again.runtime == "openvino" and (folder / f"{lonely_pose.stem}.xml").stat().st_mtime_ns == stamp


def test_openvino_falls_back_to_pytorch_when_it_cannot_export(lonely_pose, monkeypatch, caplog, bus, threads):
    def broken(path):
        raise RuntimeError("no exporter here")

    monkeypatch.setattr(pose_model, "export_openvino", broken)
    with caplog.at_level(logging.WARNING, logger="matcher.pipeline.detect.pose_model"):
        finder = detect.PoseRegionFinder(lonely_pose, threads=threads, runtime="openvino")
    assert finder.runtime == "torch"
    assert "no exporter here" in caplog.text
    assert not detect.openvino_dir_for(lonely_pose).exists()
    assert any(r.kind == "outfit" for r in finder.find([bus])[0])


def test_an_unknown_runtime_is_refused(lonely_pose):
    with pytest.raises(ValueError, match="tensorrt"):
        detect.PoseRegionFinder(lonely_pose, runtime="tensorrt")


@pytest.mark.slow
def test_bfloat16_runs_where_the_cpu_has_it_and_finds_nearly_the_float32_regions(luma, bus, zidane, threads):
    from matcher.pipeline.runtime import openvino_bf16_available

    photos = [bus, zidane] + [luma(n) for n in ("mj08-green_main.jpg", "mh02-black_alt1.jpg", "mj08-gray_back.jpg")]
    f32 = detect.PoseRegionFinder(threads=threads, runtime="openvino")
    bf16 = detect.PoseRegionFinder(threads=threads, runtime="openvino-bf16")
    if not openvino_bf16_available():
        assert bf16.runtime == "openvino" and detect.compiled_precision(bf16._model) == "f32"
        return
    assert bf16.runtime == "openvino-bf16" and detect.compiled_precision(bf16._model) == "bf16"
    assert bf16.checkpoint_hash == f32.checkpoint_hash
    # Scores move a little, so a keypoint near the confidence bar can move a garment box's edge (zidane's
    # arm: an upper box 8 % wider); on 450 evaluation photos the smallest IoU was 0.82, the 5th percentile 0.98.
    ious = []
    for a, b in zip(f32.find(photos), bf16.find(photos)):
        assert [r.kind for r in a] == [r.kind for r in b]
        ious += [_iou(ra.box, rb.box) for ra, rb in zip(a, b)]
    assert min(ious) > 0.8 and np.median(ious) > 0.97


def _iou(a, b) -> float:
    w = max(0, min(a.x1, b.x1) - max(a.x0, b.x0))
    h = max(0, min(a.y1, b.y1) - max(a.y0, b.y0))
    union = (a.x1 - a.x0) * (a.y1 - a.y0) + (b.x1 - b.x0) * (b.y1 - b.y0) - w * h
    return w * h / union


def test_bfloat16_falls_back_to_float32_on_a_cpu_without_it(lonely_pose, monkeypatch, caplog, threads):
    monkeypatch.setattr(pose_model, "openvino_bf16_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger="matcher.pipeline.detect.pose_model"):
        finder = detect.PoseRegionFinder(lonely_pose, threads=threads, runtime="openvino-bf16")
    assert finder.runtime == "openvino" and detect.compiled_precision(finder._model) == "f32"
    assert "no native bfloat16" in caplog.text
