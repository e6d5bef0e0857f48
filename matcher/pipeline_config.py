"""Settings → pipeline stage objects, built once per process.

Django-side glue: matcher/pipeline/ itself never reads settings.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from django.conf import settings


def models_dir() -> Path:
    return Path(settings.MODELS_DIR)


@lru_cache(maxsize=None)
def _file_hash(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:12]


def active_embedder_label() -> str:
    """Name and checkpoint hash of the configured embedder, without loading it."""
    if settings.MATCHER_EMBEDDER == "open_clip":
        pretrained = settings.OPEN_CLIP_PRETRAINED
        tag = _file_hash(pretrained) if Path(pretrained).is_file() else pretrained
        return f"open_clip:{settings.OPEN_CLIP_MODEL}@{tag}"
    weights = models_dir() / "efficientnet-lite2.pth"
    tag = _file_hash(str(weights)) if weights.is_file() else "missing"
    return f"efficientnet_lite2@{tag}"
