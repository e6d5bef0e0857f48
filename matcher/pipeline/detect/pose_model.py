"""The YOLO pose model behind the region finder: loaded once per process, in PyTorch or OpenVINO.

No clothing detector ships in any package registry, so people (their box and 17 COCO keypoints)
come from ultralytics' pose model, run as the .pt in PyTorch or exported once to OpenVINO IR.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from functools import partial
from pathlib import Path

import numpy as np

from matcher.pipeline.runtime import openvino_bf16_available, var_dir

log = logging.getLogger(__name__)

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
