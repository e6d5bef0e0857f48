"""Image evidence: the colour of a garment and keypoint geometry between two photos.

Plain Python (numpy, OpenCV), no Django.

Colour is read where the garment is: inside a region, on the pose keypoints' torso (upper
garment) or thighs (lower garment) when a person was found, otherwise on the region's
foreground; background pixels (estimated from the image border, or given by a cut-out
mask) and the model's skin (sampled from the face) are left out.

Geometry: SIFT keypoints (cached per image), Lowe's ratio test, then a RANSAC
similarity/affine fit; the inliers are matched points consistent with one transform,
which a crop, rescale, re-encode, banner or collage of the same photo keeps and another
photo of the same model does not. Each inlier's local patch is also compared in colour,
so the same print in another colour does not count.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property
from typing import Sequence

import numpy as np
from PIL import Image

from matcher.pipeline.pixels import delta_e_squared, rgb_to_lab  # noqa: F401  (rgb_to_lab: F.rgb_to_lab for callers)
from matcher.pipeline.types import ColourSignature, Region

# COCO keypoints.
NOSE, L_EYE, R_EYE, L_EAR, R_EAR = 0, 1, 2, 3, 4
L_SHOULDER, R_SHOULDER, L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE = 5, 6, 11, 12, 13, 14, 15, 16

# Histogram bins over L (0..100), a, b (−128..127).
HIST_BINS = (4, 8, 8)
DOMINANT_K = 4
COLOUR_MAX_PIXELS = 6000
# Lightness counts for less than hue/chroma: the same garment under other light or in a
# shadowed fold changes L far more than a and b.
LIGHTNESS_WEIGHT = 0.5
# Colour distances are mapped to [0, 1] with 1 − exp(−d / scale).
COLOUR_DISTANCE_SCALE = 20.0
# The torso/thigh polygon must cover this share of its region's box to be trusted.
MIN_POLYGON_SHARE = 0.08
# Skin-coloured pixels are dropped unless fewer than this share of the garment would remain.
SKIN_KEEP_SHARE = 0.15


def to_rgb_array(image: Image.Image | np.ndarray) -> np.ndarray:
    if isinstance(image, np.ndarray):
        return image
    return np.asarray(image.convert("RGB"))


def image_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# The light blur in_place_colour puts on our photo before reading it (a kernel side in pixels).
IN_PLACE_BLUR = 5


class PreparedImage:
    """One photo's pixels with the conversions several evidence functions need, each made once.

    A pair comparison reads the same photo's CIELAB for its garment mask, its colour through
    the keypoint transform and its in-place colour, for each of up to three image pairs;
    converting the whole photo once instead of every time is the same arithmetic, done once.
    """

    def __init__(self, rgb: np.ndarray) -> None:
        self.rgb = rgb

    @cached_property
    def lab(self) -> np.ndarray:
        return rgb_to_lab(self.rgb)

    @cached_property
    def blurred(self) -> np.ndarray:
        import cv2

        return cv2.GaussianBlur(self.rgb, (IN_PLACE_BLUR, IN_PLACE_BLUR), 0)

    @cached_property
    def blurred_lab(self) -> np.ndarray:
        return rgb_to_lab(self.blurred)


def _pixels_of(image: "Image.Image | np.ndarray | PreparedImage") -> np.ndarray:
    return image.rgb if isinstance(image, PreparedImage) else to_rgb_array(image)


# --- colour ------------------------------------------------------------------------


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
    image: "Image.Image | np.ndarray | PreparedImage", mask: np.ndarray, *, min_pixels: int = 200, seed: int = 0
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
    _, labels, centres = cv2.kmeans(
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


# --- keypoint geometry -------------------------------------------------------------

# Keypoints are found on a copy no larger than this (a 640 px photo and its 1600 px
# original then give comparable keypoints; cost stays bounded).
KEYPOINT_MAX_SIDE = 800
KEYPOINT_MAX_FEATURES = 1500
RATIO_TEST = 0.75
# RANSAC reprojection threshold, as a share of the larger side of the smaller image.
RANSAC_THRESHOLD_SHARE = 0.012
# Inlier patches agree in colour when their (lightness-weighted) ΔE is below this.
PATCH_COLOUR_TOLERANCE = 15.0
# A colour covering at least this share of our garment that agrees in fewer than this
# share of its pixels makes the whole garment disagree (see warped_colour_agreement).
MISSING_COLOUR_MIN_SHARE = 0.03
MISSING_COLOUR_MAX_AGREEMENT = 0.2
# In-place comparison: a pixel agrees below this weighted ΔE; the distance maps the 75th
# percentile ΔE q to 1 − exp(−q / scale); a whole-photo tint is corrected up to this much.
IN_PLACE_TOLERANCE = 5.0
IN_PLACE_DISTANCE_SCALE = 10.0
MAX_CAST_GAIN = 1.25


@dataclass
class ImageKeypoints:
    """SIFT keypoints of one image, in original-image pixels, with each point's local colour."""

    points: np.ndarray  # (n, 2) float32
    descriptors: np.ndarray  # (n, 128) float32
    patch_lab: np.ndarray  # (n, 3) float32, mean Lab around each point
    size: tuple[int, int]  # (width, height) of the original image

    def __len__(self) -> int:
        return len(self.points)

    def to_bytes(self) -> bytes:
        """Compact serialisation for a per-image cache.

        OpenCV's SIFT descriptors are whole numbers 0..255 stored as float32, so they are kept as
        uint8, exactly, and written uncompressed: zlib cost ~19 ms per photo for ~12 % fewer bytes.
        Descriptors that are not whole bytes (another extractor) fall back to float16. Blobs written
        earlier (float16, compressed) still load."""
        import io

        desc = self.descriptors
        exact = desc.size == 0 or (desc.min() >= 0 and desc.max() <= 255 and np.array_equal(desc, np.round(desc)))
        buf = io.BytesIO()
        np.savez(
            buf,
            points=self.points.astype(np.float32),
            descriptors=desc.astype(np.uint8 if exact else np.float16),
            patch_lab=self.patch_lab.astype(np.float16),
            size=np.array(self.size, np.int32),
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "ImageKeypoints":
        import io

        z = np.load(io.BytesIO(data))
        return cls(
            points=z["points"].astype(np.float32),
            descriptors=z["descriptors"].astype(np.float32),
            patch_lab=z["patch_lab"].astype(np.float32),
            size=(int(z["size"][0]), int(z["size"][1])),
        )


def image_keypoints(
    image: Image.Image | np.ndarray, *, max_side: int = KEYPOINT_MAX_SIDE, max_features: int = KEYPOINT_MAX_FEATURES
) -> ImageKeypoints:
    import cv2

    rgb = to_rgb_array(image)
    h, w = rgb.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA) if scale < 1 else rgb
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    sift = cv2.SIFT_create(nfeatures=max_features)
    kps, desc = sift.detectAndCompute(gray, None)
    if desc is None or not kps:
        return ImageKeypoints(np.zeros((0, 2), np.float32), np.zeros((0, 128), np.float32), np.zeros((0, 3), np.float32), (w, h))
    pts = np.array([k.pt for k in kps], np.float32)
    # Mean colour of a small patch around each point (box-filtered Lab, sampled at the point).
    lab = rgb_to_lab(small)
    radius = 4
    blurred = cv2.blur(lab, (2 * radius + 1, 2 * radius + 1))
    xi = np.clip(np.round(pts[:, 0]).astype(int), 0, small.shape[1] - 1)
    yi = np.clip(np.round(pts[:, 1]).astype(int), 0, small.shape[0] - 1)
    patch = blurred[yi, xi]
    return ImageKeypoints(points=pts / scale, descriptors=desc.astype(np.float32), patch_lab=patch.astype(np.float32), size=(w, h))


@dataclass
class GeometryMatch:
    """RANSAC-consistent matches between image A and image B."""

    inliers: int
    points_a: np.ndarray  # (inliers, 2) in A's pixels
    points_b: np.ndarray  # (inliers, 2) in B's pixels
    colour_agrees: np.ndarray  # (inliers,) bool
    transform: np.ndarray | None  # 2×3 A→B similarity, if one was found

    @property
    def colour_agreement(self) -> float | None:
        return float(self.colour_agrees.mean()) if self.inliers else None

    def within(self, box_a: "tuple[int, int, int, int] | None") -> "GeometryMatch":
        """Only the inliers whose point in A lies in box_a (x0, y0, x1, y1)."""
        if box_a is None or not self.inliers:
            return self
        x0, y0, x1, y1 = box_a
        keep = (
            (self.points_a[:, 0] >= x0) & (self.points_a[:, 0] < x1) & (self.points_a[:, 1] >= y0) & (self.points_a[:, 1] < y1)
        )
        return GeometryMatch(
            inliers=int(keep.sum()),
            points_a=self.points_a[keep],
            points_b=self.points_b[keep],
            colour_agrees=self.colour_agrees[keep],
            transform=self.transform,
        )


def _empty_match() -> GeometryMatch:
    z = np.zeros((0, 2), np.float32)
    return GeometryMatch(0, z, z, np.zeros(0, bool), None)


def ratio_test_matches(
    descriptors_a: np.ndarray, descriptors_b: np.ndarray, *, ratio: float = RATIO_TEST
) -> tuple[np.ndarray, np.ndarray]:
    """Lowe's ratio test: (indices in A, indices in B) of each A descriptor whose nearest B
    descriptor is clearly nearer than its second nearest, in A's order.

    The same pairs as OpenCV's brute-force `knnMatch(k=2)` followed by the test on its
    distances, computed as one matrix product: ‖a‖² + ‖b‖² − 2a·b. SIFT descriptors are whole
    numbers 0..255, so every term and partial sum is an integer below 2²⁴ and exact in float32:
    the squared distances, their float32 square roots and so the kept pairs are OpenCV's, bit
    for bit (tested), in about a quarter of the time, most of which is the product itself."""
    n, m = len(descriptors_a), len(descriptors_b)
    if n == 0 or m < 2:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    da = np.ascontiguousarray(descriptors_a, np.float32)
    db = np.ascontiguousarray(descriptors_b, np.float32)
    d = da @ db.T
    d *= -2
    d += np.einsum("ij,ij->i", da, da)[:, None]
    d += np.einsum("ij,ij->i", db, db)[None, :]
    rows = np.arange(n)
    nearest = d.argmin(axis=1)
    d1 = d[rows, nearest]
    d[rows, nearest] = np.inf
    d2 = d.min(axis=1)
    # Distances as OpenCV reports them (float32 square roots), compared as the test always was.
    s1 = np.sqrt(np.maximum(d1, 0)).astype(np.float64)
    s2 = np.sqrt(np.maximum(d2, 0)).astype(np.float64)
    query = np.flatnonzero(s1 < ratio * s2)
    return query, nearest[query]


def match_geometry(
    a: ImageKeypoints,
    b: ImageKeypoints,
    *,
    ratio: float = RATIO_TEST,
    threshold_share: float = RANSAC_THRESHOLD_SHARE,
    colour_tolerance: float = PATCH_COLOUR_TOLERANCE,
) -> GeometryMatch:
    """Ratio-test matches A→B, then one RANSAC similarity (rotation, uniform scale,
    translation: what a crop, rescale, banner or collage tile does to a photo)."""
    import cv2

    if len(a) < 3 or len(b) < 3:
        return _empty_match()
    query, train = ratio_test_matches(a.descriptors, b.descriptors, ratio=ratio)
    if len(query) < 3:
        return _empty_match()
    pa = a.points[query]
    pb = b.points[train]
    # Threshold in B's pixels: B is where the points are projected.
    threshold = max(2.0, threshold_share * max(b.size))
    transform, mask = cv2.estimateAffinePartial2D(
        pa, pb, method=cv2.RANSAC, ransacReprojThreshold=threshold, maxIters=2000, confidence=0.995
    )
    if transform is None or mask is None:
        return _empty_match()
    scale = float(np.hypot(transform[0, 0], transform[1, 0]))
    if not 0.05 <= scale <= 20:
        return _empty_match()
    keep = mask.ravel().astype(bool)
    # Several A points matched to one B point are one piece of evidence, not several.
    _, first = np.unique(train[keep], return_index=True)
    sel = np.flatnonzero(keep)[np.sort(first)]
    lab_a = a.patch_lab[query[sel]].reshape(-1, 3)
    lab_b = b.patch_lab[train[sel]].reshape(-1, 3)
    d = lab_a - lab_b
    d[:, 0] *= LIGHTNESS_WEIGHT
    agrees = np.sqrt((d**2).sum(axis=1)) < colour_tolerance
    return GeometryMatch(
        inliers=len(sel), points_a=pa[sel], points_b=pb[sel], colour_agrees=agrees, transform=transform
    )


class KeypointCache:
    """Keypoints per image key (e.g. the image's sha256), computed once, least recently used dropped."""

    def __init__(self, max_items: int = 512) -> None:
        self.max_items = max_items
        self._items: OrderedDict[str, ImageKeypoints] = OrderedDict()
        self.computed = 0

    def get(self, key: str, image: Image.Image | np.ndarray | None = None) -> ImageKeypoints:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        if image is None:
            raise KeyError(key)
        kp = image_keypoints(image)
        self.computed += 1
        self.put(key, kp)
        return kp

    def put(self, key: str, keypoints: ImageKeypoints) -> None:
        self._items[key] = keypoints
        self._items.move_to_end(key)
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)

    def __contains__(self, key: str) -> bool:
        return key in self._items


@dataclass
class InPlaceColour:
    """Our garment's pixels against the same place in their photo (see in_place_colour)."""

    agreement: float  # share of garment pixels that agree (0 when one of its colours is missing)
    distance: float  # 0 (same colour) .. 1, from the 75th percentile of the per-pixel ΔE
    samples: int


def warped_colour_agreement(
    image_a: Image.Image | np.ndarray,
    mask_a: np.ndarray | None,
    image_b: Image.Image | np.ndarray,
    transform: np.ndarray,
    **kwargs,
) -> float | None:
    """Share of A's garment pixels whose colour B shows at the same place (see in_place_colour)."""
    found = in_place_colour(image_a, mask_a, image_b, transform, **kwargs)
    return None if found is None else found.agreement


def in_place_colour(
    image_a: "Image.Image | np.ndarray | PreparedImage",
    mask_a: np.ndarray | None,
    image_b: "Image.Image | np.ndarray | PreparedImage",
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

    rgb_a, rgb_b = _pixels_of(image_a), _pixels_of(image_b)
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
