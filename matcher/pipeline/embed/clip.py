"""OpenClipEmbedder: an open_clip image tower, where CLIP weights can be had (a pretrained tag
downloads them; a local state-dict file works offline)."""
from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from PIL import Image

from matcher.pipeline.embed import cache
from matcher.pipeline.embed.preprocess import _normalised, _to_batch
from matcher.pipeline.runtime import configure_threads
from matcher.pipeline.weights import checkpoint_hash, sha256_file


def _load_open_clip(model_name: str, pretrained: str | None):
    key = ("open_clip", model_name, pretrained or "")
    with cache.models_lock:
        if key not in cache.models:
            import open_clip

            model = open_clip.create_model(model_name, pretrained=pretrained or None, device="cpu")
            cache.models[key] = model.eval()
    return cache.models[key]


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
