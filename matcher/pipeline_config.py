"""Settings → pipeline stage objects, built once per process.

Django-side glue: matcher/pipeline/ itself never reads settings.
"""
from __future__ import annotations

import inspect
from functools import cache
from pathlib import Path

from django.conf import settings

from matcher.pipeline import weights
from matcher.pipeline.embed import efficientnet_name
from matcher.pipeline.registry import import_dotted, load_stage


@cache
def active_embedder_label() -> str:
    """Name and checkpoint hash of the configured embedder, without loading the model.

    The same string Region rows and decisions are keyed by (see `embedder_key`).
    """
    if settings.MATCHER_EMBEDDER == "open_clip":
        pretrained = settings.OPEN_CLIP_PRETRAINED
        tag = weights.checkpoint_hash(pretrained) if Path(pretrained).is_file() else f"tag:{pretrained}"
        return f"open_clip:{settings.OPEN_CLIP_MODEL}@{tag}"
    path = weights.default_path(weights.EFFICIENTNET_LITE2)
    tag = weights.checkpoint_hash(path) if path.is_file() else "missing"
    return f"{efficientnet_name(getattr(settings, 'MATCHER_EMBEDDER_RUNTIME', 'onnx'))}@{tag}"


def _threads() -> int | None:
    return settings.MATCHER_TORCH_THREADS or None


def region_finder():
    size = getattr(settings, "MATCHER_DETECT_IMAGE_SIZE", 0)
    extra = {"image_size": size} if size else {}
    if "runtime" in inspect.signature(import_dotted(settings.MATCHER_REGION_FINDER)).parameters:
        extra["runtime"] = getattr(settings, "MATCHER_DETECTOR_RUNTIME", "openvino-bf16")
    return load_stage(settings.MATCHER_REGION_FINDER, threads=_threads(), **extra)


def background_remover():
    """The background remover, or None when its model file is missing (the pipeline runs without it)."""
    extra = {}
    if "runtime" in inspect.signature(import_dotted(settings.MATCHER_BACKGROUND_REMOVER)).parameters:
        extra["runtime"] = getattr(settings, "MATCHER_CUTOUT_RUNTIME", "openvino-bf16")
    try:
        return load_stage(settings.MATCHER_BACKGROUND_REMOVER, threads=_threads(), **extra)
    except FileNotFoundError:
        return None


def embedder():
    if settings.MATCHER_EMBEDDER == "open_clip":
        return load_stage(
            "matcher.pipeline.embed.OpenClipEmbedder",
            model_name=settings.OPEN_CLIP_MODEL,
            pretrained=settings.OPEN_CLIP_PRETRAINED,
            threads=_threads(),
        )
    return load_stage(
        "matcher.pipeline.embed.EfficientNetLiteEmbedder",
        threads=_threads(),
        runtime=getattr(settings, "MATCHER_EMBEDDER_RUNTIME", "onnx"),
    )


def embedder_key(emb) -> str:
    """What a Region row is keyed by: the embedder's name and checkpoint hash."""
    return f"{emb.name}@{emb.checkpoint_hash}"
