"""All colour evidence: where the garment is, its signature, distances, and colour read through a transform.

- garment.py: the garment's pixels in a region (pose polygon, background and skin left out).
- signature.py: a garment's colour signature and the distance of two.
- in_place.py: our garment's pixels against the same place in their photo (needs a keypoint transform).
- regions.py: a pair's garment colour distance over its photos' regions, and the evidence it makes.
"""
from matcher.pipeline.evidence.colour.garment import (
    GARMENT_FALLBACK_ORDER,
    BorderBackground,
    border_background,
    garment_mask,
    garment_polygon,
    garment_region,
)
from matcher.pipeline.evidence.colour.in_place import (
    GarmentPixels,
    InPlaceColour,
    in_place_colour,
    mapped_colour_distance,
)
from matcher.pipeline.evidence.colour.regions import (
    colour_candidates,
    colour_evidence,
    pair_colour_distance,
    photo_colour_distance,
)
from matcher.pipeline.evidence.colour.signature import (
    LIGHTNESS_WEIGHT,
    colour_distance,
    colour_emd,
    colour_signature,
    colour_signature_in_mask,
    histogram_distance,
    signature_of_pixels,
)

__all__ = [
    "GARMENT_FALLBACK_ORDER", "LIGHTNESS_WEIGHT", "BorderBackground", "GarmentPixels", "InPlaceColour",
    "border_background", "colour_candidates", "colour_distance", "colour_emd", "colour_evidence",
    "colour_signature", "colour_signature_in_mask", "garment_mask", "garment_polygon", "garment_region",
    "histogram_distance", "in_place_colour", "mapped_colour_distance", "pair_colour_distance",
    "photo_colour_distance", "signature_of_pixels",
]
