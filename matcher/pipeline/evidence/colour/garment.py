"""Where the garment is in a photo: its pixels inside a region, without background or skin.

Plain Python (numpy, OpenCV), no Django.

Colour is read where the garment is: inside a region, on the pose keypoints' torso (upper
garment) or thighs (lower garment) when a person was found, otherwise on the region's
foreground; background pixels (estimated from the image border, or given by a cut-out
mask) and the model's skin (sampled from the face) are left out.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from matcher.pipeline.pixels import delta_e_squared, rgb_to_lab
from matcher.pipeline.types import Region

# COCO keypoints.
NOSE, L_EYE, R_EYE, L_EAR, R_EAR = 0, 1, 2, 3, 4
L_SHOULDER, R_SHOULDER, L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE = 5, 6, 11, 12, 13, 14, 15, 16

# The torso/thigh polygon must cover this share of its region's box to be trusted.
MIN_POLYGON_SHARE = 0.08


# Skin-coloured pixels are dropped unless fewer than this share of the garment would remain.
SKIN_KEEP_SHARE = 0.15


@dataclass(frozen=True)
class BorderBackground:
    plain: bool
    lab: np.ndarray  # (3,)
    tolerance: float


def border_background(lab: np.ndarray, *, plain_share: float = 0.5) -> BorderBackground:
    """The background colour from a thin frame of border pixels, and whether it is plain."""
    h, w = lab.shape[:2]
    t = max(2, round(min(h, w) * 0.02))
    border = np.concatenate(
        [lab[:t].reshape(-1, 3), lab[-t:].reshape(-1, 3), lab[:, :t].reshape(-1, 3), lab[:, -t:].reshape(-1, 3)]
    )
    centre = np.median(border, axis=0)
    dist = _delta_e(border, centre)
    share = float((dist < 8.0).mean())
    spread = float(np.median(dist[dist < 8.0])) if share > 0 else 99.0
    return BorderBackground(plain=share >= plain_share, lab=centre, tolerance=max(6.0, 3.0 * spread))


def _delta_e(lab: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return np.sqrt(delta_e_squared(lab, ref))


def _kp(keypoints: Sequence[tuple[float, float, float]] | None, idx: int, min_conf: float) -> np.ndarray | None:
    if not keypoints or idx >= len(keypoints):
        return None
    x, y, c = keypoints[idx]
    return np.array([x, y], np.float32) if c >= min_conf else None


def garment_polygon(region: Region, *, min_conf: float = 0.5) -> np.ndarray | None:
    """Where the garment itself is, from the pose keypoints, in image pixels (n, 2), or None.

    upper: the torso between the shoulders and the hips, below the collar, a little inset
    (arms crossed over it and the neck stay mostly out); lower: from the hips halfway to the
    knees, which is cloth for shorts and trousers alike.
    """
    kps = region.keypoints
    if not kps:
        return None
    ls, rs = _kp(kps, L_SHOULDER, min_conf), _kp(kps, R_SHOULDER, min_conf)
    lh, rh = _kp(kps, L_HIP, min_conf), _kp(kps, R_HIP, min_conf)
    lk, rk = _kp(kps, L_KNEE, min_conf), _kp(kps, R_KNEE, min_conf)
    if region.kind == "upper" and ls is not None and rs is not None:
        width = float(np.linalg.norm(ls - rs))
        if lh is not None and rh is not None:
            if width < 0.35 * float(np.linalg.norm((lh + rh) / 2 - (ls + rs) / 2)):
                return None  # side view: the quad would be a sliver along the arm
            top_l, top_r, bot_l, bot_r = ls, rs, lh, rh
        else:
            if width < 0.3 * max(1, region.box.x1 - region.box.x0):
                return None
            down = np.array([0.0, 1.2 * width], np.float32)
            top_l, top_r, bot_l, bot_r = ls, rs, ls + down, rs + down
        quad = np.stack([top_l, top_r, bot_r, bot_l])
        # Start a fifth of the way down (below collar and hood), inset 15% on each side.
        top_l2 = top_l + 0.2 * (bot_l - top_l)
        top_r2 = top_r + 0.2 * (bot_r - top_r)
        quad = np.stack([top_l2, top_r2, bot_r, bot_l])
        return _inset(quad, 0.15)
    if region.kind == "lower" and lh is not None and rh is not None:
        width = float(np.linalg.norm(lh - rh))
        if lk is not None and rk is not None:
            bot_l, bot_r = lh + 0.5 * (lk - lh), rh + 0.5 * (rk - rh)
        else:
            down = np.array([0.0, 0.8 * width], np.float32)
            bot_l, bot_r = lh + down, rh + down
        return _inset(np.stack([lh, rh, bot_r, bot_l]), 0.05)
    return None


def _inset(quad: np.ndarray, share: float) -> np.ndarray:
    """Pull the left and right edges of a quad (tl, tr, br, bl) towards each other."""
    tl, tr, br, bl = quad
    return np.stack(
        [tl + share * (tr - tl), tr + share * (tl - tr), br + share * (bl - br), bl + share * (br - bl)]
    ).astype(np.float32)


def _skin_lab(lab: np.ndarray, region: Region, min_conf: float = 0.5) -> np.ndarray | None:
    """The model's skin colour, sampled around the nose and between the eyes."""
    kps = region.keypoints
    nose = _kp(kps, NOSE, min_conf)
    if nose is None:
        return None
    eyes = [e for e in (_kp(kps, L_EYE, min_conf), _kp(kps, R_EYE, min_conf)) if e is not None]
    ears = [e for e in (_kp(kps, L_EAR, min_conf), _kp(kps, R_EAR, min_conf)) if e is not None]
    scale = max([float(np.linalg.norm(nose - p)) for p in eyes + ears] or [0.0])
    if scale < 4:
        return None
    r = max(2, int(0.3 * scale))
    h, w = lab.shape[:2]
    samples = []
    centres = [nose] + [(nose + e) / 2 for e in eyes]
    for centre in centres:
        x, y = int(centre[0]), int(centre[1])
        patch = lab[max(0, y - r) : min(h, y + r), max(0, x - r) : min(w, x + r)]
        if patch.size:
            samples.append(patch.reshape(-1, 3))
    if not samples:
        return None
    return np.median(np.concatenate(samples), axis=0)


def garment_mask(
    rgb: np.ndarray,
    region: Region,
    *,
    foreground: np.ndarray | None = None,
    lab: np.ndarray | None = None,
) -> np.ndarray:
    """Boolean mask (image size) of the garment pixels in a region.

    foreground: an optional boolean mask from background removal; without it the
    background is estimated from the image border (plain studio or flat backgrounds).
    lab: the image in CIELAB (rgb_to_lab), when the caller already has it.
    """
    import cv2

    h, w = rgb.shape[:2]
    lab = rgb_to_lab(rgb) if lab is None else lab
    mask = np.zeros((h, w), np.uint8)
    polygon = garment_polygon(region)
    if polygon is not None:
        cv2.fillPoly(mask, [np.round(polygon).astype(np.int32)], 1)
    box = region.box
    # Everything below happens inside the region's box (the mask is empty outside it), so the
    # per-pixel colour tests run over the box only.
    window = (slice(max(0, box.y0), box.y1), slice(max(0, box.x0), box.x1))
    region_mask = np.zeros((h, w), np.uint8)
    region_mask[window] = 1
    # A side view squeezes the torso quad to a sliver: then the region's foreground is better.
    if polygon is None or (mask & region_mask).sum() < MIN_POLYGON_SHARE * max(1, box.area):
        mask = region_mask
    else:
        mask &= region_mask
    keep_full = mask.astype(bool)
    keep = keep_full[window]
    lab_box = lab[window]
    if foreground is not None:
        keep &= foreground.astype(bool)[window]
    else:
        bg = border_background(lab)
        if bg.plain:
            not_bg = keep & (delta_e_squared(lab_box, bg.lab) > np.float32(bg.tolerance) ** 2)
            # In a close-up the garment itself fills the border: what looks like background
            # is the garment, unless it is studio white or grey.
            if bg.lab[0] > 80 and np.hypot(bg.lab[1], bg.lab[2]) < 12 or not_bg.sum() >= 0.25 * keep.sum():
                keep = not_bg
    if region.keypoints:
        skin_like = _skin_like(lab_box)
        face = _skin_lab(lab, region)
        if face is not None:
            skin_like |= delta_e_squared(lab_box, face) < np.float32(12.0**2)
        not_skin = keep & ~skin_like
        # A garment the colour of skin (beige, tan, pink) would vanish: then keep those pixels.
        # (A bra top or tank leaves far less than half the torso as cloth, hence a low bar.)
        if not_skin.sum() >= SKIN_KEEP_SHARE * keep.sum():
            keep = not_skin
    out = np.zeros((h, w), bool)
    out[window] = keep
    return out


def _skin_like(lab: np.ndarray) -> np.ndarray:
    """Pixels in the broad band of human skin tones (warm hue, moderate chroma)."""
    a, b = lab[..., 1], lab[..., 2]
    chroma = np.hypot(a, b)
    hue = np.degrees(np.arctan2(b, a))
    return (lab[..., 0] > 15) & (lab[..., 0] < 92) & (chroma > 8) & (chroma < 50) & (hue > 25) & (hue < 80)


# Where to look for the garment when the title does not say (or the photo lacks that region).
GARMENT_FALLBACK_ORDER = ("upper", "lower", "item", "outfit", "whole")


def garment_region(regions: Sequence[Region], garment: str | None) -> Region:
    """The region showing the garment: the title's kind first, then GARMENT_FALLBACK_ORDER.

    Precondition: `regions` is not empty (the region finder always gives the whole view first)."""
    order = ((garment,) if garment else ()) + GARMENT_FALLBACK_ORDER
    for kind in order:
        for region in regions:
            if region.kind == kind:
                return region
    return regions[0]
