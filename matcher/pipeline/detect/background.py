"""The photo's background: plain (studio white, a flat colour) or busy, and the items on a plain one.

With no person in the photo, a plain background lets the foreground be split into items by colour
distance to the background plus edges, morphology and connected components; a busy background
without a person gives only the whole view, flagged for background removal.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from matcher.pipeline.pixels import delta_e_squared, rgb_to_lab
from matcher.pipeline.types import Box


@dataclass(frozen=True)
class Background:
    plain: bool
    lab: np.ndarray  # (3,) the background colour in CIELAB (L 0..100)
    share: float  # share of border pixels that have that colour
    roughness: float  # mean |grey - blurred grey| over those pixels: texture (brick, grass) vs paper


def _downscale(rgb: np.ndarray, max_side: int) -> np.ndarray:
    import cv2

    h, w = rgb.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return rgb
    return cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


ANALYSIS_SIDE = 512  # background analysis and item splitting work on a copy this size


@dataclass(frozen=True)
class WorkingCopy:
    """The downscaled copy both background analysis and item splitting read, made once per photo.

    Each of them used to downscale the photo and convert it to CIELAB and grey on its own; the
    copy is the same one they made (INTER_AREA to 512 px), so their results do not change.
    """

    shape: tuple[int, int]  # (h, w) of the full-size photo
    rgb: np.ndarray  # uint8, longer side at most ANALYSIS_SIDE
    lab: np.ndarray  # float32 CIELAB (L 0..100)
    grey: np.ndarray  # uint8

    @classmethod
    def of(cls, rgb: np.ndarray) -> WorkingCopy:
        import cv2

        small = np.ascontiguousarray(_downscale(rgb, ANALYSIS_SIDE))
        return cls(rgb.shape[:2], small, rgb_to_lab(small), cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))


def border_texture_of(grey: np.ndarray, t: int) -> np.ndarray:
    """|grey - blurred grey| (sigma 2) on the frame of width t, in the order of a frame mask's pixels.

    Only the frame is read, so only bands along the edges are blurred, each reaching past the
    kernel's radius (8 px for sigma 2 in OpenCV) into the photo: every frame pixel sees the same
    neighbours as in a blur of the whole photo, and gets the same value.
    """
    import cv2

    h, w = grey.shape
    grey = grey.astype(np.float32)
    texture = np.zeros((h, w), np.float32)
    band = t + 9
    for rows, cols, keep in (
        (slice(0, band), slice(None), (slice(0, t), slice(None))),
        (slice(max(0, h - band), h), slice(None), (slice(-t, None), slice(None))),
        (slice(None), slice(0, band), (slice(None), slice(0, t))),
        (slice(None), slice(max(0, w - band), w), (slice(None), slice(-t, None))),
    ):
        part = np.ascontiguousarray(grey[rows, cols])
        blurred = np.abs(part - cv2.GaussianBlur(part, (0, 0), 2))
        # Only the band's frame side is kept: its inner edge is blurred against a made-up border.
        texture[rows, cols][keep] = blurred[keep]
    frame = np.zeros((h, w), bool)
    frame[:t] = frame[-t:] = frame[:, :t] = frame[:, -t:] = True
    return texture[frame]


def background_of(
    rgb: np.ndarray, *, tolerance: float = 10.0, min_share: float = 0.6, min_white_share: float = 0.2,
    max_roughness: float = 2.0, copy: WorkingCopy | None = None,
) -> Background:
    """Judge the background from a frame of border pixels.

    Plain when one smooth colour covers most of the border (studio shots where the
    model's legs or a garment touch an edge still leave well over half of it), or when
    smooth studio white covers a fifth of it: close-ups fill most of the frame with the
    garment, but street and room photos almost never have pure white at their edges.
    "Smooth" rules out textures of one colour, such as a brick wall or a knit filling a
    close-up. Measured on the Luma studio set: every front and back shot is plain, with
    roughness at most 0.5; brick 3.7, street photos 2-13.

    copy: the photo's WorkingCopy when the caller has one (made here otherwise).
    """
    copy = copy or WorkingCopy.of(rgb)
    small, lab = copy.rgb, copy.lab
    h, w = small.shape[:2]
    t = max(2, round(min(h, w) * 0.02))
    frame = np.zeros((h, w), bool)
    frame[:t] = frame[-t:] = frame[:, :t] = frame[:, -t:] = True
    border, border_rgb, border_texture = lab[frame], small[frame].astype(np.int16), border_texture_of(copy.grey, t)
    sides = [lab[:t], lab[-t:], lab[:, :t], lab[:, -t:]]

    best_share, best_lab, best_match = -1.0, border[0], np.zeros(len(border), bool)
    for candidate in [np.median(s.reshape(-1, 3), axis=0) for s in sides] + [np.median(border, axis=0)]:
        match = delta_e_squared(border, candidate) < np.float32(tolerance) ** 2
        if match.mean() > best_share:
            best_share, best_lab, best_match = float(match.mean()), candidate, match

    white = (border_rgb.min(axis=1) >= 235) & (np.ptp(border_rgb, axis=1) <= 12)
    if best_share < min_share and white.mean() >= min_white_share:
        roughness = float(border_texture[white].mean())
        plain = roughness <= max_roughness
        return Background(plain, np.median(border[white], axis=0), float(white.mean()), roughness)
    roughness = float(border_texture[best_match].mean())
    return Background(best_share >= min_share and roughness <= max_roughness, best_lab, best_share, roughness)


def split_items(
    rgb: np.ndarray,
    background: Background,
    *,
    colour_tolerance: float = 12.0,
    min_item_share: float = 0.01,
    min_share_of_largest: float = 0.1,
    copy: WorkingCopy | None = None,
) -> list[Box]:
    """Boxes of the separate things on a plain background, largest first.

    Foreground = pixels far in colour from the background, plus edges (so a white shirt
    on white still has an outline), closed and hole-filled into solid shapes. Specks,
    captions and small logos fall under the size floors.

    copy: the photo's WorkingCopy when the caller has one (made here otherwise).
    """
    import cv2

    copy = copy or WorkingCopy.of(rgb)
    h0, w0 = copy.shape
    small = copy.rgb
    h, w = small.shape[:2]
    scale_x, scale_y = w0 / w, h0 / h

    mask = (delta_e_squared(copy.lab, background.lab) >= np.float32(colour_tolerance) ** 2).astype(np.uint8)
    edges = cv2.Canny(cv2.GaussianBlur(copy.grey, (3, 3), 0), 40, 120)
    mask |= (edges > 0).astype(np.uint8)

    k = max(3, round(min(h, w) * 0.015)) | 1
    # morphologyEx keeps the uint8 type of its input; cv2's stubs return any numeric array.
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))  # type: ignore[assignment]
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))  # type: ignore[assignment]
    # Fill holes: whatever background cannot be reached from the border is inside an item.
    padded = np.pad(mask, 1)
    flood = padded.copy()
    cv2.floodFill(flood, np.zeros((h + 4, w + 4), np.uint8), (0, 0), 1)
    mask = (padded | (1 - flood))[1:-1, 1:-1]

    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    comps = [stats[i] for i in range(1, count)]
    if not comps:
        return []
    largest = max(int(c[cv2.CC_STAT_AREA]) for c in comps)
    floor = max(min_item_share * h * w, min_share_of_largest * largest)
    boxes = [
        [int(c[0]), int(c[1]), int(c[0] + c[2]), int(c[1] + c[3])]
        for c in comps
        if c[cv2.CC_STAT_AREA] >= floor
    ]
    boxes = _merge_overlapping(boxes)

    pad = round(min(h, w) * 0.01)
    out = []
    for x0, y0, x1, y1 in boxes:
        out.append(
            Box(
                max(0, int((x0 - pad) * scale_x)),
                max(0, int((y0 - pad) * scale_y)),
                min(w0, int(np.ceil((x1 + pad) * scale_x))),
                min(h0, int(np.ceil((y1 + pad) * scale_y))),
            )
        )
    return sorted(out, key=lambda b: -b.area)


def _merge_overlapping(boxes: list[list[int]], min_overlap: float = 0.3) -> list[list[int]]:
    """Merge boxes that overlap by more than `min_overlap` of the smaller one (one garment in pieces)."""
    boxes = [list(b) for b in boxes]
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                iw = min(a[2], b[2]) - max(a[0], b[0])
                ih = min(a[3], b[3]) - max(a[1], b[1])
                if iw <= 0 or ih <= 0:
                    continue
                smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
                if iw * ih > min_overlap * smaller:
                    boxes[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return boxes

