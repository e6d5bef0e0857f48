"""A garment's colour as a signature (Lab histogram + dominant colours) and the distance of two.

Plain Python (numpy, OpenCV), no Django.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from matcher.pipeline.evidence.colour.garment import garment_mask
from matcher.pipeline.pixels import PreparedImage, rgb_to_lab, to_rgb_array
from matcher.pipeline.types import ColourSignature, Region

# Histogram bins over L (0..100), a, b (−128..127).
HIST_BINS = (4, 8, 8)


DOMINANT_K = 4


COLOUR_MAX_PIXELS = 6000


# Lightness counts for less than hue/chroma: the same garment under other light or in a
# shadowed fold changes L far more than a and b.
LIGHTNESS_WEIGHT = 0.5


# Colour distances are mapped to [0, 1] with 1 − exp(−d / scale).
COLOUR_DISTANCE_SCALE = 20.0


def colour_signature(
    image: Image.Image | np.ndarray,
    region: Region,
    *,
    foreground: np.ndarray | None = None,
    min_pixels: int = 200,
    seed: int = 0,
    lab: np.ndarray | None = None,
) -> ColourSignature | None:
    """Lab histogram and dominant colours of the garment in `region`; None if too few pixels.

    lab: the image in CIELAB, when the caller converted it already (one photo, several regions)."""
    rgb = to_rgb_array(image)
    lab = rgb_to_lab(rgb) if lab is None else lab
    keep = garment_mask(rgb, region, foreground=foreground, lab=lab)
    return signature_of_pixels(lab, min_pixels=min_pixels, seed=seed, mask=keep)


def colour_signature_in_mask(
    image: Image.Image | np.ndarray | PreparedImage, mask: np.ndarray, *, min_pixels: int = 200, seed: int = 0
) -> ColourSignature | None:
    """Colour signature of the pixels under a boolean mask (e.g. our garment mapped into their photo).

    Only the sampled pixels are read, and converted to CIELAB unless the photo comes prepared (the
    conversion is per pixel, so this is the same as converting the whole photo and then picking them)."""
    mask = mask.astype(bool)
    if isinstance(image, PreparedImage):
        return signature_of_pixels(image.lab, min_pixels=min_pixels, seed=seed, mask=mask)
    picked = _sample_of_mask(mask, min_pixels, seed)
    if picked is None:
        return None
    pixels = rgb_to_lab(to_rgb_array(image).reshape(-1, 3)[picked].reshape(-1, 1, 3)).reshape(-1, 3)
    return signature_of_pixels(pixels, min_pixels=min_pixels, seed=seed)


def _sample_of_mask(mask: np.ndarray, min_pixels: int, seed: int) -> np.ndarray | None:
    """Flat indices of the pixels signature_of_pixels would keep of image[mask]: all of them, or the
    same random COLOUR_MAX_PIXELS (same seed, same draw, row-major order as boolean indexing)."""
    flat = np.flatnonzero(mask)
    if len(flat) < min_pixels:
        return None
    if len(flat) > COLOUR_MAX_PIXELS:
        flat = flat[np.random.default_rng(seed).choice(len(flat), COLOUR_MAX_PIXELS, replace=False)]
    return flat


def signature_of_pixels(
    pixels: np.ndarray, *, min_pixels: int = 200, seed: int = 0, mask: np.ndarray | None = None
) -> ColourSignature | None:
    """Histogram and dominant colours of (n, 3) Lab pixels; None if fewer than min_pixels.

    mask: pixels is then an (h, w, 3) Lab image and the signature is that of pixels[mask], computed
    without gathering every masked pixel first (only the sample is read; the same result)."""
    import cv2

    if mask is not None:
        picked = _sample_of_mask(mask, min_pixels, seed)
        if picked is None:
            return None
        pixels = pixels.reshape(-1, 3)[picked]
    if len(pixels) < min_pixels:
        return None
    rng = np.random.default_rng(seed)
    if len(pixels) > COLOUR_MAX_PIXELS:
        pixels = pixels[rng.choice(len(pixels), COLOUR_MAX_PIXELS, replace=False)]
    hist, _ = np.histogramdd(
        pixels, bins=HIST_BINS, range=((0, 100), (-128, 128), (-128, 128))
    )
    hist = (hist / max(1.0, hist.sum())).astype(np.float32).ravel()
    k = min(DOMINANT_K, len(pixels))
    scaled = pixels * np.array([LIGHTNESS_WEIGHT, 1.0, 1.0], np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    cv2.setRNGSeed(seed)
    # bestLabels=None lets OpenCV allocate the labels (documented); its stubs require an array.
    _, labels, centres = cv2.kmeans(  # type: ignore[call-overload]
        np.ascontiguousarray(scaled, np.float32), k, None, criteria, 2, cv2.KMEANS_PP_CENTERS
    )
    counts = np.bincount(labels.ravel(), minlength=k).astype(np.float32)
    centres = centres / np.array([LIGHTNESS_WEIGHT, 1.0, 1.0], np.float32)
    order = np.argsort(-counts)
    weights = counts[order] / counts.sum()
    return ColourSignature(histogram=hist, dominant_lab=centres[order].astype(np.float32), weights=weights.astype(np.float32))


def _ground_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = a[:, None, :] - b[None, :, :]
    d[..., 0] *= LIGHTNESS_WEIGHT
    return np.sqrt((d**2).sum(axis=2))


def colour_emd(a: ColourSignature, b: ColourSignature) -> float:
    """Earth mover's distance between the dominant colours, in (lightness-weighted) ΔE units."""
    import cv2

    sa = np.hstack([a.weights[:, None], a.dominant_lab]).astype(np.float32)
    sb = np.hstack([b.weights[:, None], b.dominant_lab]).astype(np.float32)
    cost = _ground_distance(a.dominant_lab, b.dominant_lab).astype(np.float32)
    emd, _, _ = cv2.EMD(sa, sb, cv2.DIST_USER, cost)
    return float(emd)


def histogram_distance(a: ColourSignature, b: ColourSignature) -> float:
    """Hellinger (Bhattacharyya) distance between the Lab histograms, 0..1."""
    bc = float(np.sum(np.sqrt(np.clip(a.histogram, 0, None) * np.clip(b.histogram, 0, None))))
    return float(np.sqrt(max(0.0, 1.0 - bc)))


def colour_distance(a: ColourSignature, b: ColourSignature, *, scale: float = COLOUR_DISTANCE_SCALE) -> float:
    """0 (same colour) .. 1 (far apart).

    The larger of two views: the dominant colours' earth mover's distance (1 − exp(−EMD /
    scale): how far the main colours moved) and the histograms' Hellinger distance (how
    much of the garment's colour mass does not overlap). On the Luma studio photos, either
    alone lets through about twice as many "same style, other colour" pairs at the same
    recall of true pairs across views.
    """
    emd = float(1.0 - np.exp(-colour_emd(a, b) / scale))
    return max(emd, histogram_distance(a, b))
