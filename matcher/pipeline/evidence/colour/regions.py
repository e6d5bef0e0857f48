"""The garment colour distance of a pair, read region against region over their photos' analyses.

Plain Python, no Django. Works on anything shaped like an ImageAnalysis (HasRegionColours), so
this module needs nothing of the analysis cache.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from matcher.pipeline.evidence.colour.garment import GARMENT_FALLBACK_ORDER
from matcher.pipeline.evidence.colour.signature import colour_distance
from matcher.pipeline.types import ColourSignature, Region


class HasRegionColours(Protocol):
    """What this module reads of an ImageAnalysis: one colour signature (or None) per region."""

    regions: list[Region]
    colours: list[ColourSignature | None]
    cutout_colours: dict[int, ColourSignature | None]


def colour_candidates(analysis: HasRegionColours, kind: str, use_cutout: bool) -> list[ColourSignature]:
    """The signatures of the photo's regions of this kind (the cut-out's where one was read and use_cutout)."""
    out = []
    for k, region in enumerate(analysis.regions):
        if region.kind != kind:
            continue
        sig = analysis.cutout_colours.get(k) if use_cutout and k in analysis.cutout_colours else analysis.colours[k]
        if sig is not None:
            out.append(sig)
    return out


def pair_colour_distance(
    a_list: Sequence[HasRegionColours], b_list: Sequence[HasRegionColours], garment: str | None, *, use_cutout: bool
) -> float | None:
    """Smallest garment colour distance over image pairs.

    With the garment's place known from our title (upper/lower/outfit) that region is
    compared; otherwise every garment region both photos show (upper and lower) must
    agree (the larger distance counts), which is what tells a top in another colour
    from the same top over the same trousers. Close-ups and flat-lays fall back to the
    item or the whole view. Several instances on their side (people or collage tiles)
    count as alternatives.
    """
    best: float | None = None
    for a in a_list:
        for b in b_list:
            d = photo_colour_distance(a, b, garment, use_cutout)
            if d is not None and (best is None or d < best):
                best = d
    return best


def photo_colour_distance(
    a: HasRegionColours, b: HasRegionColours, garment: str | None, use_cutout: bool
) -> float | None:
    """The garment colour distance of one photo of ours and one of theirs (see pair_colour_distance)."""

    def dist(kind_a: str, kind_b: str) -> float | None:
        sa = colour_candidates(a, kind_a, use_cutout)
        sb = colour_candidates(b, kind_b, use_cutout)
        if not sa or not sb:
            return None
        return min(colour_distance(sa[0], y) for y in sb)

    if garment is not None:
        d = dist(garment, garment)
        if d is not None:
            return d
    common = [
        k for k in ("upper", "lower") if colour_candidates(a, k, use_cutout) and colour_candidates(b, k, use_cutout)
    ]
    if common and garment is None:
        ds = [dist(k, k) for k in common]
        return max(d for d in ds if d is not None)
    order = ((garment,) if garment else ()) + GARMENT_FALLBACK_ORDER
    ka = next((k for k in order if colour_candidates(a, k, use_cutout)), None)
    kb = next((k for k in order if colour_candidates(b, k, use_cutout)), None)
    if ka is None or kb is None:
        return None
    return dist(ka, kb)


def smaller(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


def colour_evidence(
    by_region: float | None, mapped: float | None, in_place: tuple[float, int] | None, *, trusted_inliers: int
) -> tuple[float | None, float | None]:
    """(colour_distance, colour_distance_in_place) for PairEvidence.

    colour_distance: the smaller of the region and the through-the-transform readings (a collage
    tile the pose model missed still counts); colour_distance_in_place: the pixel-by-pixel
    reading (distance, inliers), when at least `trusted_inliers` make the transform reliable."""
    trusted = in_place is not None and in_place[1] >= trusted_inliers
    return smaller(by_region, mapped), (in_place[0] if trusted and in_place is not None else None)
