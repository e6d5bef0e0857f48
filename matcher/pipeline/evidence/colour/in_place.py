"""Colour read through a keypoint transform: our garment's pixels against the same place in their photo.

Plain Python (numpy, OpenCV), no Django. Preconditions: `transform` is the 2×3 A→B similarity
match_geometry found (our photo A, their photo B), both photos RGB.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from PIL import Image

from matcher.pipeline.evidence.colour.signature import (
    LIGHTNESS_WEIGHT,
    colour_distance,
    colour_signature_in_mask,
    signature_of_pixels,
)
from matcher.pipeline.pixels import IN_PLACE_BLUR, PreparedImage, pixels_of, rgb_to_lab
from matcher.pipeline.types import ColourSignature

# A colour covering at least this share of our garment that agrees in fewer than this
# share of its pixels makes the whole garment disagree (see in_place_colour).
MISSING_COLOUR_MIN_SHARE = 0.03


MISSING_COLOUR_MAX_AGREEMENT = 0.2


# In-place comparison: a pixel agrees below this weighted ΔE; the distance maps the 75th
# percentile ΔE q to 1 − exp(−q / scale); a whole-photo tint is corrected up to this much.
IN_PLACE_TOLERANCE = 5.0


IN_PLACE_DISTANCE_SCALE = 10.0


MAX_CAST_GAIN = 1.25


@dataclass
class InPlaceColour:
    """Our garment's pixels against the same place in their photo (see in_place_colour)."""

    agreement: float  # share of garment pixels that agree (0 when one of its colours is missing)
    distance: float  # 0 (same colour) .. 1, from the 75th percentile of the per-pixel ΔE
    samples: int


def in_place_colour(
    image_a: Image.Image | np.ndarray | PreparedImage,
    mask_a: np.ndarray | None,
    image_b: Image.Image | np.ndarray | PreparedImage,
    transform: np.ndarray,
    *,
    tolerance: float = IN_PLACE_TOLERANCE,
    scale: float = IN_PLACE_DISTANCE_SCALE,
    max_samples: int = 4000,
    seed: int = 0,
) -> InPlaceColour | None:
    """Compare A's garment pixels with the pixels B shows at the same place under `transform`.

    The keypoints of a recoloured photo (the same shot published in another colour) sit
    on the same edges, so the geometry agrees; only the colour of the garment differs.
    Sampling the whole garment area through the fitted transform tells the two apart far
    better than the keypoints' own small patches. Both images are lightly blurred so a
    pixel of misalignment or JPEG noise does not count as disagreement, and B's colours are
    first matched to A's (a white balance read on A's light neutral pixels, then a robust
    lightness gain and offset over the whole overlap): a re-used photo is often brightened
    or tinted as a whole, while a recolour leaves everything but the garment as it was, so
    the fit stays near identity.
    None when fewer than 50 garment pixels land inside B.
    """
    import cv2

    rgb_a, rgb_b = pixels_of(image_a), pixels_of(image_b)
    ha, wa = rgb_a.shape[:2]
    hb, wb = rgb_b.shape[:2]
    if mask_a is None:
        mask_a = np.ones((ha, wa), bool)
    ys, xs = np.nonzero(mask_a)
    if len(xs) == 0:
        return None
    rng = np.random.default_rng(seed)
    if len(xs) > max_samples:
        pick = rng.choice(len(xs), max_samples, replace=False)
        xs, ys = xs[pick], ys[pick]
    pts = np.stack([xs, ys, np.ones_like(xs)], axis=1).astype(np.float32)
    mapped = pts @ transform.T.astype(np.float32)
    inside = (mapped[:, 0] >= 0) & (mapped[:, 0] < wb - 1) & (mapped[:, 1] >= 0) & (mapped[:, 1] < hb - 1)
    if inside.sum() < 50:
        return None
    zoom = float(np.hypot(transform[0, 0], transform[1, 0]))
    ka = IN_PLACE_BLUR
    kb = max(3, int(round(ka * zoom)) | 1)
    prepared_a = image_a if isinstance(image_a, PreparedImage) else PreparedImage(rgb_a)
    blur_a, lab_a = prepared_a.blurred, prepared_a.blurred_lab
    if isinstance(image_b, PreparedImage) and kb == ka:
        blur_b = image_b.blurred
    else:
        blur_b = cv2.GaussianBlur(rgb_b, (kb, kb), 0)

    def sample(px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = np.stack([px, py, np.ones_like(px)], axis=1).astype(np.float32) @ transform.T.astype(np.float32)
        ok = (p[:, 0] >= 0) & (p[:, 0] < wb - 1) & (p[:, 1] >= 0) & (p[:, 1] < hb - 1)
        return blur_a[py[ok], px[ok]], blur_b[np.round(p[ok, 1]).astype(int), np.round(p[ok, 0]).astype(int)]

    correct = _colour_fit(*sample(rng.integers(0, wa, max_samples), rng.integers(0, ha, max_samples)))
    ca = lab_a[ys[inside], xs[inside]]
    mx, my = mapped[inside, 0], mapped[inside, 1]
    raw_b = blur_b[np.round(my).astype(int), np.round(mx).astype(int)]

    def deltas(cb: np.ndarray) -> np.ndarray:
        d = ca - cb
        d[:, 0] *= LIGHTNESS_WEIGHT
        return np.sqrt((d**2).sum(axis=1))

    # The correction is fitted on the whole overlap, which is right for a tint or a brighter
    # copy but wrong when the competitor put our cut-out on a new background (the fit then
    # follows the new background and bends the garment's colours). A recolour disagrees
    # with or without the correction, so the reading that agrees better is the one to keep.
    delta = min(
        (deltas(correct(raw_b)), deltas(rgb_to_lab(raw_b.reshape(-1, 1, 3)).reshape(-1, 3))),
        key=lambda dl: float(np.quantile(dl, 0.75)),
    )
    agrees = delta < tolerance
    agreement = float(agrees.mean())
    # Every colour of our garment must reappear in its place: a recoloured trim, liner or
    # stripe is a few percent of the pixels, too few to move the overall share, but none
    # of them agree. Small clusters of a re-used photo (shadows, seams after rescaling)
    # still agree in part.
    sig = signature_of_pixels(ca, min_pixels=50, seed=seed)
    if sig is not None:
        dd = ca[:, None, :] - sig.dominant_lab[None, :, :]
        dd[..., 0] *= LIGHTNESS_WEIGHT
        nearest = np.argmin((dd**2).sum(axis=2), axis=1)
        for c in range(len(sig.dominant_lab)):
            members = nearest == c
            if members.mean() >= MISSING_COLOUR_MIN_SHARE:
                share = float(agrees[members].mean())
                if share < MISSING_COLOUR_MAX_AGREEMENT:
                    agreement = min(agreement, share)
    distance = float(1.0 - np.exp(-float(np.quantile(delta, 0.75)) / scale))
    return InPlaceColour(agreement=agreement, distance=distance, samples=int(inside.sum()))


def _colour_fit(rgb_a: np.ndarray, rgb_b: np.ndarray, *, rounds: int = 4, keep_share: float = 0.7):
    """A correction for B's colours towards A's, from matched (n, 3) uint8 RGB samples.

    First a white balance: per-channel gains that make B's version of A's light neutral
    pixels (studio background, a white logo) neutral again; a cast multiplies every pixel,
    dark ones included, while a recolour of the garment (black to navy as well) leaves
    them alone. Then L_a ≈ gain·L_b + offset, refitted on the best-fitting share of the
    samples (banners and overlays are outliers, not a change of light). Returns a function
    from B's RGB samples to corrected Lab; identity where it cannot fit.
    """
    def lab_of(rgb: np.ndarray) -> np.ndarray:
        return rgb_to_lab(np.clip(rgb, 0, 255).astype(np.uint8).reshape(-1, 1, 3)).reshape(-1, 3)

    ca = lab_of(rgb_a)
    neutral = (ca[:, 0] > 70) & (np.hypot(ca[:, 1], ca[:, 2]) < 8)
    balance = np.ones(3, np.float32)
    if neutral.sum() >= 100:
        ratio = (rgb_a[neutral].astype(np.float32) + 1) / (rgb_b[neutral].astype(np.float32) + 1)
        balance = np.clip(np.median(ratio, axis=0), 1 / MAX_CAST_GAIN, MAX_CAST_GAIN).astype(np.float32)
    cb = lab_of(rgb_b.astype(np.float32) * balance)

    gain, offset = 1.0, 0.0
    if len(ca) >= 100:
        la, lb = ca[:, 0].astype(np.float64), cb[:, 0].astype(np.float64)
        keep = np.ones(len(la), bool)
        for _ in range(rounds):
            if keep.sum() < 50 or np.ptp(lb[keep]) < 5:
                break
            gain, offset = np.polyfit(lb[keep], la[keep], 1)
            resid = np.abs(lb * gain + offset - la)
            keep = resid <= np.quantile(resid, keep_share)
        if not (0.7 <= gain <= 1.4) or abs(offset) > 30:
            gain, offset = 1.0, 0.0

    def correct(rgb: np.ndarray) -> np.ndarray:
        out = lab_of(rgb.astype(np.float32) * balance)
        out[:, 0] = out[:, 0] * gain + offset
        return out

    return correct


class GarmentPixels:
    """Our garment's mask in one of our photos and, read when first asked, the colour signature of all of
    it: our few photos are checked against every listing of a batch, and when the whole garment lands
    inside their photo the signature is the same each time."""

    def __init__(self, image: PreparedImage, mask: np.ndarray) -> None:
        self.image = image
        self.mask = mask
        self.pixels = int(np.count_nonzero(mask))

    @cached_property
    def signature(self) -> ColourSignature | None:
        return colour_signature_in_mask(self.image, self.mask)

    def signature_within(self, keep: np.ndarray) -> ColourSignature | None:
        """The signature of the garment pixels under `keep` (the whole garment's when none is left out)."""
        inside = self.mask & keep
        return self.signature if np.count_nonzero(inside) == self.pixels else colour_signature_in_mask(self.image, inside)


def mapped_colour_distance(garment_a: GarmentPixels, image_b: PreparedImage, transform: np.ndarray) -> float | None:
    """Colour distance between our garment and the same place in their photo under `transform`,
    both read over the part of the garment that lands inside their photo."""
    import cv2

    hb, wb = image_b.rgb.shape[:2]
    ha, wa = garment_a.image.rgb.shape[:2]
    warped = cv2.warpAffine(
        garment_a.mask.astype(np.uint8), transform.astype(np.float64), (wb, hb), flags=cv2.INTER_NEAREST
    ) > 0
    # The part of our mask that lands inside their photo, back in our coordinates.
    back = cv2.warpAffine(
        np.ones((hb, wb), np.uint8), transform.astype(np.float64), (wa, ha), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP
    ) > 0
    ours = garment_a.signature_within(back)
    theirs = colour_signature_in_mask(image_b, warped)
    if ours is None or theirs is None:
        return None
    return colour_distance(ours, theirs)
