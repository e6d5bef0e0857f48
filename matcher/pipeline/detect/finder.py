"""PoseRegionFinder, the RegionFinder stage: the whole view, garments on people, items of a collage."""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from matcher.pipeline.detect.background import WorkingCopy, background_of, split_items
from matcher.pipeline.detect.garments import garment_boxes, shows_a_body
from matcher.pipeline.detect.pose_model import RUNTIMES, _load_pose_model, compiled_precision
from matcher.pipeline.pixels import as_rgb
from matcher.pipeline.runtime import configure_threads, default_threads
from matcher.pipeline.types import Box, Region
from matcher.pipeline.weights import POSE, checkpoint_hash, default_path


class PoseRegionFinder:
    """RegionFinder: YOLO pose for people, background analysis for everything else.

    weights_path: a local YOLO pose .pt (never a bare model name, which would download);
        default var/models/yolo11n-pose.pt from `python -m matcher.pipeline.weights fetch`.
    image_size: the detector's input side; 640 is what the model was trained at.
    runtime: "openvino" (the .pt exported once to OpenVINO IR beside it, run in float32),
        "openvino-bf16" (the same in bfloat16 where the CPU has it) or "torch" (ultralytics' PyTorch
        model); see RUNTIMES. `self.runtime` says which one runs.
    person_conf: minimum person score; min_person_share: people smaller than this share
        of the image (passers-by in a street photo) are ignored; max_people: largest kept.
    """

    name = "yolo_pose"

    def __init__(
        self,
        weights_path: str | os.PathLike[str] | None = None,
        *,
        image_size: int = 640,
        person_conf: float = 0.35,
        keypoint_conf: float = 0.5,
        min_person_share: float = 0.03,
        max_people: int = 4,
        batch_size: int = 8,
        threads: int | None = None,
        runtime: str = "torch",
    ) -> None:
        if runtime not in RUNTIMES:
            raise ValueError(f"unknown detector runtime {runtime!r}; expected one of {', '.join(RUNTIMES)}")
        self.weights_path = Path(weights_path) if weights_path else default_path(POSE)
        if not self.weights_path.is_file():
            raise FileNotFoundError(
                f"pose weights not found at {self.weights_path}; "
                "run `python -m matcher.pipeline.weights fetch`"
            )
        self.image_size = image_size
        self.person_conf = person_conf
        self.keypoint_conf = keypoint_conf
        self.min_person_share = min_person_share
        self.max_people = max_people
        self.batch_size = batch_size
        self.threads = threads
        self.checkpoint_hash = checkpoint_hash(self.weights_path)
        self._model = _load_pose_model(self.weights_path, runtime, max(1, threads or default_threads()))
        runtimes: dict[str | None, str] = {"f32": "openvino", "bf16": "openvino-bf16"}
        self.runtime = runtimes.get(compiled_precision(self._model), "torch")

    def find(self, images: Sequence[Image.Image]) -> list[list[Region]]:
        import torch

        configure_threads(self.threads)
        rgbs = [np.asarray(as_rgb(im)) for im in images]
        people: list[list[tuple[Box, float, np.ndarray]]] = [[] for _ in rgbs]
        # Batches of one photo size only: ultralytics letterboxes a batch of equal sizes to the
        # smallest stride-aligned rectangle, as it does a photo alone, but a batch of mixed sizes to
        # the full square, which moves scores (a 0.46 passer-by found alone, missed beside another
        # photo). Grouped by size, a photo's regions do not depend on what it was batched with.
        by_size: dict[tuple[int, ...], list[int]] = {}
        for i, a in enumerate(rgbs):
            by_size.setdefault(a.shape, []).append(i)
        for indices in by_size.values():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                with torch.inference_mode():
                    # ultralytics reads numpy arrays as BGR.
                    results = self._model.predict(
                        [np.ascontiguousarray(rgbs[i][:, :, ::-1]) for i in chunk],
                        imgsz=self.image_size,
                        conf=self.person_conf,
                        device="cpu",
                        batch=len(chunk),
                        verbose=False,
                    )
                for i, result in zip(chunk, results):
                    people[i] = self._people(result, rgbs[i].shape)
        return [self._regions(rgb, found) for rgb, found in zip(rgbs, people)]

    def _people(self, result, shape: tuple[int, ...]) -> list[tuple[Box, float, np.ndarray]]:
        h, w = shape[:2]
        if result.boxes is None or len(result.boxes) == 0:
            return []
        boxes = result.boxes.xyxy.cpu().numpy()
        scores = result.boxes.conf.cpu().numpy()
        kps = result.keypoints.data.cpu().numpy() if result.keypoints is not None else None
        found = []
        for i, (x0, y0, x1, y1) in enumerate(boxes):
            box = Box(max(0, int(x0)), max(0, int(y0)), min(w, int(np.ceil(x1))), min(h, int(np.ceil(y1))))
            if box.area < self.min_person_share * h * w:
                continue
            keypoints = kps[i] if kps is not None else np.zeros((17, 3), np.float32)
            found.append((box, float(scores[i]), keypoints))
        found.sort(key=lambda p: -p[0].area)
        return found[: self.max_people]

    def _regions(self, rgb: np.ndarray, people: list[tuple[Box, float, np.ndarray]]) -> list[Region]:
        h, w = rgb.shape[:2]
        copy = WorkingCopy.of(rgb)
        background = background_of(rgb, copy=copy)
        busy = not background.plain
        if background.plain:
            people = [p for p in people if shows_a_body(p[2], min_conf=self.keypoint_conf)]
        regions = [Region(kind="whole", box=Box(0, 0, w, h), needs_cutout=busy)]
        for box, score, kps in people:
            keypoints = [(float(x), float(y), float(c)) for x, y, c in kps]
            regions.append(Region("outfit", box, needs_cutout=busy, score=score, keypoints=keypoints))
            for kind, garment in garment_boxes(box, kps, min_conf=self.keypoint_conf).items():
                regions.append(Region(kind, garment, needs_cutout=busy, score=score, keypoints=keypoints))
        if background.plain:
            # Items beside the people too: a collage may pair a model shot with a flat-lay.
            person_boxes = [box for box, _, _ in people]
            for item in split_items(rgb, background, copy=copy):
                if not any(_overlap(item, box) > 0.3 * item.area for box in person_boxes):
                    regions.append(Region("item", item, needs_cutout=False, score=1.0))
        return regions


def _overlap(a: Box, b: Box) -> int:
    return Box(max(a.x0, b.x0), max(a.y0, b.y0), min(a.x1, b.x1), min(a.y1, b.y1)).area
