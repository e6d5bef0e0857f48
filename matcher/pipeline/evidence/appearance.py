"""Appearance: the embedding cosine of a pair, the best over compatible region pairs of their photos.

Plain Python (numpy), no Django. Precondition: each analysis has one L2-normalised embedding per
region (ImageAnalysis.embeddings, row k for region k), all from the same embedder.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from matcher.pipeline.analysis import ImageAnalysis
from matcher.pipeline.types import RegionRef

# Which region kinds may be compared by embedding: like with like, plus a flat-lay or collage
# item against a garment worn by a person, and a whole photo against a collage item.
COMPATIBLE_KINDS: frozenset[tuple[str, str]] = frozenset(
    {("whole", "whole"), ("outfit", "outfit"), ("upper", "upper"), ("lower", "lower"), ("item", "item")}
    | {(a, b) for a in ("item",) for b in ("upper", "lower", "outfit", "whole")}
    | {(b, a) for a in ("item",) for b in ("upper", "lower", "outfit", "whole")}
)

# For each (our photo, their photo): the best cosine and the region pair that gave it.
PhotoPairCosines = dict[tuple[int, int], tuple[float, RegionRef, RegionRef]]


def region_embeddings(analysis: ImageAnalysis, use_cutout: bool) -> list[list[np.ndarray]]:
    """Per region: the embeddings to try (original, and the cut-out one when there is one)."""
    out = []
    for k in range(len(analysis.regions)):
        options = [analysis.embeddings[k]]
        if use_cutout and k in analysis.cutout_embeddings:
            options.append(analysis.cutout_embeddings[k])
        out.append(options)
    return out


def photo_pair_cosines(
    a_list: Sequence[ImageAnalysis], b_list: Sequence[ImageAnalysis], *, use_cutout: bool
) -> PhotoPairCosines:
    """For each (our image, their image): the best cosine over compatible region pairs."""
    best: PhotoPairCosines = {}
    for i, a in enumerate(a_list):
        ea = region_embeddings(a, use_cutout)
        for j, b in enumerate(b_list):
            eb = region_embeddings(b, use_cutout)
            for ra, region_a in enumerate(a.regions):
                for rb, region_b in enumerate(b.regions):
                    if (region_a.kind, region_b.kind) not in COMPATIBLE_KINDS:
                        continue
                    cos = max(float(np.dot(x, y)) for x in ea[ra] for y in eb[rb])
                    if (i, j) not in best or cos > best[(i, j)][0]:
                        best[(i, j)] = (
                            cos,
                            RegionRef("ours", i, ra, region_a.kind, region_a.box),
                            RegionRef("theirs", j, rb, region_b.kind, region_b.box),
                        )
    return best


def best_pair(per_image: PhotoPairCosines) -> tuple[float, RegionRef, RegionRef] | None:
    """The photo pair's entry with the highest cosine (the first of equals), or None when there is none."""
    if not per_image:
        return None
    return max(per_image.values(), key=lambda v: v[0])


def best_photos(per_image: PhotoPairCosines) -> tuple[int, int] | None:
    """(our photo, their photo) with the highest cosine (the first of equals), or None."""
    return max(per_image, key=lambda k: per_image[k][0]) if per_image else None


def ranked_photo_pairs(per_image: PhotoPairCosines) -> list[tuple[int, int]]:
    """Every photo pair, highest cosine first (stable for equal cosines)."""
    return sorted(per_image, key=lambda k: -per_image[k][0])
