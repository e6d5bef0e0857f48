"""The cut-out stage: background removal for the regions of a pair's best photos that sit on a busy background.

Plain Python (numpy, Pillow), no Django. The remover itself is segment.py's (or any BackgroundRemover);
this module decides which photos to cut, and stores the cut-out embeddings and garment colours with
their analyses.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from matcher.pipeline.analysis import AnalysisCache, ImageAnalysis
from matcher.pipeline.evidence.colour.signature import colour_signature
from matcher.pipeline.inputs import ImageInput
from matcher.pipeline.timings import StageCounts
from matcher.pipeline.types import BackgroundRemover, Embedder


def cut_out_photos(
    photos: Sequence[tuple[ImageInput, ImageAnalysis]],
    *,
    remover: BackgroundRemover,
    embedder: Embedder,
    cache: AnalysisCache,
    stats: StageCounts,
) -> bool:
    """Cut out each photo whose regions need it (needs_cutout, not cut yet); True if anything changed.

    Precondition: each analysis is the ImageInput's, with embeddings from `embedder`."""
    changed = False
    for ref, analysis in photos:
        todo = [k for k, r in enumerate(analysis.regions) if r.needs_cutout and k not in analysis.cutout_embeddings]
        if not todo:
            continue
        image = ref.load()
        cut, foreground = cut_out(remover, image)
        stats.cutout_images += 1
        crops = [cut.crop(analysis.regions[k].box.as_tuple()) for k in todo]
        embs = embedder.embed(crops)
        stats.embedded_crops += len(crops)
        rgb = np.asarray(image)
        for k, emb in zip(todo, embs):
            analysis.cutout_embeddings[k] = emb.astype(np.float32)
            analysis.cutout_colours[k] = colour_signature(rgb, analysis.regions[k], foreground=foreground)
            stats.colour_signatures += 1
        cache.put(analysis)
        changed = True
    return changed


def cut_out(remover: BackgroundRemover, image: Image.Image) -> tuple[Image.Image, np.ndarray]:
    """The cut-out and its foreground mask (from the remover's own mask when it offers one)."""
    masks = getattr(remover, "masks", None)
    if callable(masks):
        alpha = np.asarray(masks([image])[0].convert("L").resize(image.size), np.float32)[..., None] / 255.0
        rgb = np.asarray(image, np.float32)
        fill = np.asarray(getattr(remover, "background", (255, 255, 255)), np.float32)
        cut = Image.fromarray(np.clip(rgb * alpha + fill * (1 - alpha) + 0.5, 0, 255).astype(np.uint8), "RGB")
        return cut, alpha[..., 0] >= 0.5
    cut = remover.cutout([image])[0]
    return cut, foreground_from_cutout(image, cut)


def foreground_from_cutout(original: Image.Image, cut: Image.Image) -> np.ndarray:
    """Foreground mask from a cut-out alone: pixels the remover left as they were and that
    are not its fill colour (read from the cut-out's corners)."""
    a = np.asarray(original.convert("RGB"), np.int16)
    b = np.asarray(cut.convert("RGB").resize(original.size), np.int16)
    corners = np.stack([b[0, 0], b[0, -1], b[-1, 0], b[-1, -1]])
    fill = np.median(corners, axis=0)
    unchanged = np.abs(a - b).max(axis=2) <= 24
    is_fill = np.abs(b - fill).max(axis=2) <= 6
    return unchanged & ~is_fill
