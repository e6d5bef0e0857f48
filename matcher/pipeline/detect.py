"""Where to look in a photo: the whole view, garments on people, items of a collage.

No clothing detector ships in any package registry, so garment regions come from two
plain sources:
- on-model shots: a YOLO pose model's person box and 17 COCO keypoints (shoulders,
  hips, knees, ankles) give 'outfit', 'upper' and 'lower' regions;
- no person: if the background is plain (studio white, a flat colour), the foreground
  is split into items by colour distance to the background plus edges, morphology and
  connected components; a busy background without a person gives only the whole view,
  flagged for background removal.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from matcher.pipeline.pixels import as_rgb, delta_e_squared, rgb_to_lab
from matcher.pipeline.runtime import configure_threads, default_threads, openvino_bf16_available, var_dir
from matcher.pipeline.types import Box, Region
from matcher.pipeline.weights import POSE, checkpoint_hash, default_path

log = logging.getLogger(__name__)

# COCO keypoint indices used for garment regions.
L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST = 5, 6, 7, 8, 9, 10
L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE = 11, 12, 13, 14, 15, 16
FACE = (0, 1, 2, 3, 4)  # nose, eyes, ears
LEGS = (L_KNEE, R_KNEE, L_ANKLE, R_ANKLE)


# --- background --------------------------------------------------------------------


@dataclass(frozen=True)
class Background:
    plain: bool
    lab: np.ndarray  # (3,) the background colour in CIELAB (L 0..100)
    share: float  # share of border pixels that have that colour
    roughness: float  # mean |grey - blurred grey| over those pixels: texture (brick, grass) vs paper


def _downscale(rgb: np.ndarray, max_side: int) -> np.ndarray:
    import cv2

    h, w = rgb.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return rgb
    return cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


ANALYSIS_SIDE = 512  # background analysis and item splitting work on a copy this size


@dataclass(frozen=True)
class WorkingCopy:
    """The downscaled copy both background analysis and item splitting read, made once per photo.

    Each of them used to downscale the photo and convert it to CIELAB and grey on its own; the
    copy is the same one they made (INTER_AREA to 512 px), so their results do not change.
    """

    shape: tuple[int, int]  # (h, w) of the full-size photo
    rgb: np.ndarray  # uint8, longer side at most ANALYSIS_SIDE
    lab: np.ndarray  # float32 CIELAB (L 0..100)
    grey: np.ndarray  # uint8

    @classmethod
    def of(cls, rgb: np.ndarray) -> WorkingCopy:
        import cv2

        small = np.ascontiguousarray(_downscale(rgb, ANALYSIS_SIDE))
        return cls(rgb.shape[:2], small, rgb_to_lab(small), cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))


def border_texture_of(grey: np.ndarray, t: int) -> np.ndarray:
    """|grey - blurred grey| (sigma 2) on the frame of width t, in the order of a frame mask's pixels.

    Only the frame is read, so only bands along the edges are blurred, each reaching past the
    kernel's radius (8 px for sigma 2 in OpenCV) into the photo: every frame pixel sees the same
    neighbours as in a blur of the whole photo, and gets the same value.
    """
    import cv2

    h, w = grey.shape
    grey = grey.astype(np.float32)
    texture = np.zeros((h, w), np.float32)
    band = t + 9
    for rows, cols, keep in (
        (slice(0, band), slice(None), (slice(0, t), slice(None))),
        (slice(max(0, h - band), h), slice(None), (slice(-t, None), slice(None))),
        (slice(None), slice(0, band), (slice(None), slice(0, t))),
        (slice(None), slice(max(0, w - band), w), (slice(None), slice(-t, None))),
    ):
        part = np.ascontiguousarray(grey[rows, cols])
        blurred = np.abs(part - cv2.GaussianBlur(part, (0, 0), 2))
        # Only the band's frame side is kept: its inner edge is blurred against a made-up border.
        texture[rows, cols][keep] = blurred[keep]
    frame = np.zeros((h, w), bool)
    frame[:t] = frame[-t:] = frame[:, :t] = frame[:, -t:] = True
    return texture[frame]


def background_of(
    rgb: np.ndarray, *, tolerance: float = 10.0, min_share: float = 0.6, min_white_share: float = 0.2,
    max_roughness: float = 2.0, copy: WorkingCopy | None = None,
) -> Background:
    """Judge the background from a frame of border pixels.

    Plain when one smooth colour covers most of the border (studio shots where the
    model's legs or a garment touch an edge still leave well over half of it), or when
    smooth studio white covers a fifth of it: close-ups fill most of the frame with the
    garment, but street and room photos almost never have pure white at their edges.
    "Smooth" rules out textures of one colour, such as a brick wall or a knit filling a
    close-up. Measured on the Luma studio set: every front and back shot is plain, with
    roughness at most 0.5; brick 3.7, street photos 2-13.

    copy: the photo's WorkingCopy when the caller has one (made here otherwise).
    """
    copy = copy or WorkingCopy.of(rgb)
    small, lab = copy.rgb, copy.lab
    h, w = small.shape[:2]
    t = max(2, round(min(h, w) * 0.02))
    frame = np.zeros((h, w), bool)
    frame[:t] = frame[-t:] = frame[:, :t] = frame[:, -t:] = True
    border, border_rgb, border_texture = lab[frame], small[frame].astype(np.int16), border_texture_of(copy.grey, t)
    sides = [lab[:t], lab[-t:], lab[:, :t], lab[:, -t:]]

    best_share, best_lab, best_match = -1.0, border[0], np.zeros(len(border), bool)
    for candidate in [np.median(s.reshape(-1, 3), axis=0) for s in sides] + [np.median(border, axis=0)]:
        match = delta_e_squared(border, candidate) < np.float32(tolerance) ** 2
        if match.mean() > best_share:
            best_share, best_lab, best_match = float(match.mean()), candidate, match

    white = (border_rgb.min(axis=1) >= 235) & (np.ptp(border_rgb, axis=1) <= 12)
    if best_share < min_share and white.mean() >= min_white_share:
        roughness = float(border_texture[white].mean())
        plain = roughness <= max_roughness
        return Background(plain, np.median(border[white], axis=0), float(white.mean()), roughness)
    roughness = float(border_texture[best_match].mean())
    return Background(best_share >= min_share and roughness <= max_roughness, best_lab, best_share, roughness)


def split_items(
    rgb: np.ndarray,
    background: Background,
    *,
    colour_tolerance: float = 12.0,
    min_item_share: float = 0.01,
    min_share_of_largest: float = 0.1,
    copy: WorkingCopy | None = None,
) -> list[Box]:
    """Boxes of the separate things on a plain background, largest first.

    Foreground = pixels far in colour from the background, plus edges (so a white shirt
    on white still has an outline), closed and hole-filled into solid shapes. Specks,
    captions and small logos fall under the size floors.

    copy: the photo's WorkingCopy when the caller has one (made here otherwise).
    """
    import cv2

    copy = copy or WorkingCopy.of(rgb)
    h0, w0 = copy.shape
    small = copy.rgb
    h, w = small.shape[:2]
    scale_x, scale_y = w0 / w, h0 / h

    mask = (delta_e_squared(copy.lab, background.lab) >= np.float32(colour_tolerance) ** 2).astype(np.uint8)
    edges = cv2.Canny(cv2.GaussianBlur(copy.grey, (3, 3), 0), 40, 120)
    mask |= (edges > 0).astype(np.uint8)

    k = max(3, round(min(h, w) * 0.015)) | 1
    # morphologyEx keeps the uint8 type of its input; cv2's stubs return any numeric array.
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))  # type: ignore[assignment]
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))  # type: ignore[assignment]
    # Fill holes: whatever background cannot be reached from the border is inside an item.
    padded = np.pad(mask, 1)
    flood = padded.copy()
    cv2.floodFill(flood, np.zeros((h + 4, w + 4), np.uint8), (0, 0), 1)
    mask = (padded | (1 - flood))[1:-1, 1:-1]

    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    comps = [stats[i] for i in range(1, count)]
    if not comps:
        return []
    largest = max(int(c[cv2.CC_STAT_AREA]) for c in comps)
    floor = max(min_item_share * h * w, min_share_of_largest * largest)
    boxes = [
        [int(c[0]), int(c[1]), int(c[0] + c[2]), int(c[1] + c[3])]
        for c in comps
        if c[cv2.CC_STAT_AREA] >= floor
    ]
    boxes = _merge_overlapping(boxes)

    pad = round(min(h, w) * 0.01)
    out = []
    for x0, y0, x1, y1 in boxes:
        out.append(
            Box(
                max(0, int((x0 - pad) * scale_x)),
                max(0, int((y0 - pad) * scale_y)),
                min(w0, int(np.ceil((x1 + pad) * scale_x))),
                min(h0, int(np.ceil((y1 + pad) * scale_y))),
            )
        )
    return sorted(out, key=lambda b: -b.area)


def _merge_overlapping(boxes: list[list[int]], min_overlap: float = 0.3) -> list[list[int]]:
    """Merge boxes that overlap by more than `min_overlap` of the smaller one (one garment in pieces)."""
    boxes = [list(b) for b in boxes]
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                iw = min(a[2], b[2]) - max(a[0], b[0])
                ih = min(a[3], b[3]) - max(a[1], b[1])
                if iw <= 0 or ih <= 0:
                    continue
                smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
                if iw * ih > min_overlap * smaller:
                    boxes[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return boxes


# --- garment regions from pose -----------------------------------------------------


def _clamp(x0: float, y0: float, x1: float, y1: float, limit: Box) -> Box | None:
    box = Box(
        max(limit.x0, int(round(x0))),
        max(limit.y0, int(round(y0))),
        min(limit.x1, int(round(x1))),
        min(limit.y1, int(round(y1))),
    )
    if box.x1 - box.x0 < 16 or box.y1 - box.y0 < 16:
        return None
    return box


def garment_boxes(
    person: Box, keypoints: np.ndarray, *, min_conf: float = 0.5
) -> dict[Literal["upper", "lower"], Box]:
    """'upper' and 'lower' boxes from COCO keypoints (x, y, conf), within the person box.

    Upper: shoulders (less a collar/hood margin) to a little below the hips, as wide as
    the arms reach. Lower: a waistband margin above the hips down to the ankles, or to
    the bottom of the person box when the ankles are out of view.
    """
    seen = keypoints[:, 2] >= min_conf

    def pts(*idx: int) -> np.ndarray:
        return keypoints[[i for i in idx if seen[i]], :2]

    shoulders, hips = pts(L_SHOULDER, R_SHOULDER), pts(L_HIP, R_HIP)
    knees, ankles = pts(L_KNEE, R_KNEE), pts(L_ANKLE, R_ANKLE)
    arms = pts(L_ELBOW, R_ELBOW, L_WRIST, R_WRIST)
    box_w, box_h = person.x1 - person.x0, person.y1 - person.y0
    torso = float(hips[:, 1].mean() - shoulders[:, 1].mean()) if len(shoulders) and len(hips) else 0.0
    if torso <= 0:
        torso = 0.3 * box_h
    out: dict[Literal["upper", "lower"], Box] = {}

    if len(shoulders):
        xs = np.concatenate([shoulders[:, 0], arms[:, 0], hips[:, 0]])
        margin = 0.1 * (np.ptp(shoulders[:, 0]) if len(shoulders) == 2 else 0.25 * box_w)
        y0 = shoulders[:, 1].min() - 0.2 * torso
        y1 = hips[:, 1].max() + 0.15 * torso if len(hips) else person.y1
        box = _clamp(xs.min() - margin, y0, xs.max() + margin, y1, person)
        if box is not None:
            out["upper"] = box

    if len(hips) and (len(knees) or len(ankles)):
        xs = np.concatenate([hips[:, 0], knees[:, 0], ankles[:, 0]])
        margin = 0.2 * (np.ptp(hips[:, 0]) if len(hips) == 2 else 0.15 * box_w)
        y0 = hips[:, 1].min() - 0.2 * torso
        y1 = ankles[:, 1].max() + 0.05 * box_h if len(ankles) else person.y1
        box = _clamp(xs.min() - margin, y0, xs.max() + margin, y1, person)
        if box is not None:
            out["lower"] = box
    return out


def shows_a_body(keypoints: np.ndarray, *, min_conf: float = 0.5, sure_conf: float = 0.8) -> bool:
    """True when a face or a leg is visible.

    A top on a ghost mannequin or laid flat is detected as a headless torso with
    confident shoulders, elbows and hips, and sometimes a guessed nose at the neckline
    (seen at 0.67); on a plain background such a "person" is treated as an item instead.
    A face therefore needs one sure keypoint (a model seen from the back shows one ear
    at ~0.99) or two likely ones. Models cropped at the neck still show their legs, and
    torso-only crops lose little by becoming one item region.
    """
    face, legs = keypoints[list(FACE), 2], keypoints[list(LEGS), 2]
    return bool(face.max() >= sure_conf or (face >= min_conf).sum() >= 2 or (legs >= min_conf).any())


# --- the stage ---------------------------------------------------------------------

_models: dict[tuple[str, str, int], object] = {}
_models_lock = threading.Lock()

# "torch": ultralytics' own PyTorch model. "openvino": the same network exported once to OpenVINO IR
# beside the .pt and run in float32 (about two thirds of PyTorch's CPU per image here; boxes and
# keypoints agree to a fraction of a pixel). "openvino-bf16": bfloat16 on CPUs that have it (another
# ~0.6x), the setting's default: scores move by up to ~0.04 and keypoint confidences by up to ~0.2 (p99
# 0.04), which left the region kinds of 320 photos and the buckets of 827 Luma pairs as in float32
# (benchmarks/README.md). OpenVINO would pick bfloat16 by itself on such CPUs, so "openvino" asks for
# float32 explicitly.
RUNTIMES = ("torch", "openvino", "openvino-bf16")


def _restore_pillow_open() -> None:
    """Undo ultralytics' process-wide patch of PIL.Image.open.

    On an unreadable file the patched opener tries to install and import pi-heif, so every
    image check in a worker that loaded the detector would fail with ModuleNotFoundError
    instead of Pillow's own "cannot identify image".
    """
    from PIL import Image

    try:
        from ultralytics.utils import patches
    except ImportError:
        return
    original = getattr(patches, "_image_open", None)
    if original is not None and Image.open is not original:
        Image.open = original


def _ultralytics():
    # Offline and quiet: never reach for the network, never pip-install, keep settings in var/.
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "0")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(var_dir() / "ultralytics"))
    Path(os.environ["YOLO_CONFIG_DIR"]).mkdir(parents=True, exist_ok=True)
    from ultralytics import YOLO

    _restore_pillow_open()
    return YOLO


def openvino_dir_for(weights_path: Path) -> Path:
    """Where the OpenVINO export of a .pt lives: ultralytics' own name for it, beside the weights."""
    return weights_path.with_name(f"{weights_path.stem}_openvino_model")


def export_openvino(weights_path: Path) -> Path:
    """Export the pose model to OpenVINO IR once (dynamic batch and sides, float32 weights).

    The export runs on a copy in a temporary folder and the finished folder is renamed into place,
    so a worker never loads half an export; when two workers export at once, the first rename wins
    and the other's copy is dropped."""
    target = openvino_dir_for(weights_path)
    tmp = Path(tempfile.mkdtemp(dir=weights_path.parent, prefix=".ov-export-"))
    try:
        copy = tmp / weights_path.name
        shutil.copyfile(weights_path, copy)
        exported = Path(_ultralytics()(str(copy), task="pose").export(format="openvino", dynamic=True, verbose=False))
        if not (exported / f"{weights_path.stem}.xml").is_file():
            raise RuntimeError(f"ultralytics exported no {weights_path.stem}.xml into {exported}")
        try:
            os.rename(exported, target)
        except OSError:
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _compile(model, xml_path: Path, threads: int, precision: str) -> None:
    """Recompile the OpenVINO network behind ultralytics' predictor in `precision` with our threads.

    Ultralytics compiles with OpenVINO's defaults, which on a CPU with AMX or AVX512-BF16 means
    bfloat16 (other scores and keypoints than the .pt) and every core; "f32" keeps the .pt's
    results, "bf16" is asked for only by the "openvino-bf16" runtime. The predictor is set up by one
    call on a blank image, then its compiled model is replaced; `compile_model` too, for the
    recompiles ultralytics makes itself."""
    import openvino as ov

    model.predict(np.full((32, 32, 3), 114, np.uint8), device="cpu", verbose=False)
    backend = model.predictor.model.backend
    if not hasattr(backend, "ov_compiled_model"):
        raise RuntimeError(f"ultralytics loaded {xml_path.parent} with {type(backend).__name__}, not OpenVINO")
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": threads}
    core = ov.Core()
    backend.compile_model = partial(core.compile_model, device_name="CPU", config=config)
    backend.ov_compiled_model = backend.compile_model(core.read_model(str(xml_path)))


def compiled_precision(model) -> str | None:
    """The precision the OpenVINO network behind a loaded model runs in ("f32", "bf16"), None for PyTorch."""
    backend = getattr(getattr(model, "predictor", None), "model", None)
    compiled = getattr(getattr(backend, "backend", None), "ov_compiled_model", None)
    return None if compiled is None else compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()


def _load_pose_model(path: Path, runtime: str, threads: int):
    """One ultralytics model per weights file, runtime and thread count per process.

    "openvino" and "openvino-bf16" export the .pt on first use; "openvino-bf16" on a CPU without
    native bfloat16 runs float32 with a warning. Without openvino, or if the export fails, the
    finder runs the .pt in PyTorch with a warning (the same boxes and keypoints as float32, more CPU)."""
    if runtime == "openvino-bf16" and not openvino_bf16_available():
        log.warning("this CPU has no native bfloat16 (or openvino is missing); the pose detector runs float32")
        runtime = "openvino"
    key = (str(path.resolve()), runtime, threads if runtime != "torch" else 0)
    with _models_lock:
        if key not in _models:
            YOLO = _ultralytics()
            if runtime != "torch":
                try:
                    folder = openvino_dir_for(path)
                    if not (folder / f"{path.stem}.xml").is_file():
                        export_openvino(path)
                    model = YOLO(str(folder), task="pose")
                    _compile(model, folder / f"{path.stem}.xml", threads, "bf16" if runtime == "openvino-bf16" else "f32")
                    _models[key] = model
                except Exception as exc:  # noqa: BLE001 - any failure falls back to the .pt
                    log.warning("pose detector in OpenVINO unavailable (%r); running the .pt in PyTorch", exc)
                    _models[key] = _load_pose_model_torch(path, YOLO)
            else:
                _load_pose_model_torch(path, YOLO)
    return _models[key]


def _load_pose_model_torch(path: Path, YOLO):
    """The .pt in PyTorch, one per weights file (also what a failed OpenVINO load falls back to)."""
    key = (str(path.resolve()), "torch", 0)
    if key not in _models:
        _models[key] = YOLO(str(path), task="pose")
    return _models[key]


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
