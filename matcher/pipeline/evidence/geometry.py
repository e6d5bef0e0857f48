"""Keypoint geometry between two photos: SIFT keypoints, Lowe's ratio test, a RANSAC similarity.

Plain Python (numpy, OpenCV), no Django.

The inliers are matched points consistent with one transform, which a crop, rescale,
re-encode, banner or collage of the same photo keeps and another photo of the same model
does not. Each inlier's local patch is also compared in colour, so the same print in
another colour does not count. `check_geometry` runs this on a pair's best-ranked photo
pairs and reads the garment's colour through each transform it finds.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
from PIL import Image

from matcher.pipeline.evidence.colour.garment import garment_mask, garment_region
from matcher.pipeline.evidence.colour.in_place import GarmentPixels, in_place_colour, mapped_colour_distance
from matcher.pipeline.evidence.colour.signature import LIGHTNESS_WEIGHT
from matcher.pipeline.inputs import ImageInput
from matcher.pipeline.pixels import PreparedImage, rgb_to_lab, to_rgb_array
from matcher.pipeline.types import KeypointMatches, Region

_T = TypeVar("_T")
# At most this many inliers are kept for drawing (evenly spread over the inliers found).
MAX_DRAWN_MATCHES = 60

# --- keypoints and RANSAC -----------------------------------------------------------

# Keypoints are found on a copy no larger than this (a 640 px photo and its 1600 px
# original then give comparable keypoints; cost stays bounded).
KEYPOINT_MAX_SIDE = 800


KEYPOINT_MAX_FEATURES = 1500


RATIO_TEST = 0.75


# RANSAC reprojection threshold, as a share of the larger side of the smaller image.
RANSAC_THRESHOLD_SHARE = 0.012


# Inlier patches agree in colour when their (lightness-weighted) ΔE is below this.
PATCH_COLOUR_TOLERANCE = 15.0


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
    def from_bytes(cls, data: bytes) -> ImageKeypoints:
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
    sift = cv2.SIFT.create(nfeatures=max_features)  # what cv2.SIFT_create returns; typed in the stubs
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

    def within(self, box_a: tuple[int, int, int, int] | None) -> GeometryMatch:
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


# --- a pair's geometry check ---------------------------------------------------------


@dataclass
class GeometryEvidence:
    """What the geometry check found over the photo pairs it checked."""

    # (our photo, their photo, inliers on our garment, their colour agreement), in the order checked.
    checked: list[tuple[int, int, int, float | None]] = field(default_factory=list)
    # Of the best-scoring photo pair (inliers × agreement): PairEvidence.inliers / inlier_colour_agreement.
    inliers: int | None = None
    agreement: float | None = None
    matches: KeypointMatches | None = None
    # The smallest region-style colour distance read through a transform (None if no pair had enough inliers).
    mapped_colour: float | None = None
    # (in-place colour distance, inliers) of the best-supported transform.
    in_place: tuple[float, int] | None = None


def drawn_matches(i: int, j: int, match: GeometryMatch, limit: int = MAX_DRAWN_MATCHES) -> KeypointMatches:
    """Up to `limit` of the match's inliers, evenly spread, as plain coordinates (original-image pixels)."""
    n = match.inliers
    picks = sorted({int(k) for k in np.linspace(0, n - 1, min(n, limit)).round()}) if n else []
    return KeypointMatches(
        ours_image=i,
        theirs_image=j,
        points=[
            ((float(match.points_a[k, 0]), float(match.points_a[k, 1])),
             (float(match.points_b[k, 0]), float(match.points_b[k, 1])))
            for k in picks
        ],
        colour_agrees=[bool(match.colour_agrees[k]) for k in picks],
    )


def _kept(items: OrderedDict, key: Hashable, make: Callable[[], _T], limit: int) -> _T:
    """items[key], made by make() when missing; the least recently used are dropped past `limit`."""
    found = items.get(key)
    if found is None:
        found = items[key] = make()
        while len(items) > limit:
            items.popitem(last=False)
    items.move_to_end(key)
    return found


class GeometryChecker:
    """Keypoint geometry on a pair's best-ranked photo pairs, with our garment's colour read through each
    transform. Keeps the last few decoded photos and garment masks: our SKU's photos are checked
    against every listing of a batch.

    max_checks: photo pairs checked, best cosine first.
    mapped_colour_min_inliers: inliers on our garment needed to read its colour through the transform.
    """

    def __init__(self, *, max_checks: int = 3, mapped_colour_min_inliers: int = 12, max_prepared: int = 8) -> None:
        self.max_checks = max_checks
        self.mapped_colour_min_inliers = mapped_colour_min_inliers
        # Decoded photos with their colour conversions, by sha256: our SKU's few photos are
        # compared with every listing of the batch, so they stay at the front.
        self._prepared: OrderedDict[str, PreparedImage] = OrderedDict()
        self.max_prepared = max_prepared
        # Our garment's mask in each of our photos, read once for every listing it is checked against. Each
        # holds its photo's PreparedImage (tens of MB for a large photo), so no more of them than photos.
        self._garments: OrderedDict[tuple, GarmentPixels] = OrderedDict()
        self.max_garments = max_prepared

    def prepared_image(self, ref: ImageInput) -> PreparedImage:
        return _kept(self._prepared, ref.sha256, lambda: PreparedImage(np.asarray(ref.load())), self.max_prepared)

    def garment_pixels(self, ref: ImageInput, image: PreparedImage, region: Region) -> GarmentPixels:
        key = (ref.sha256, region.kind, tuple(region.box.as_list()), tuple(map(tuple, region.keypoints or ())))
        return _kept(
            self._garments, key, lambda: GarmentPixels(image, garment_mask(image.rgb, region, lab=image.lab)),
            self.max_garments,
        )

    def check(
        self,
        ranked: Sequence[tuple[int, int]],
        our_images: Sequence[ImageInput],
        their_images: Sequence[ImageInput],
        our_regions: Sequence[Sequence[Region]],
        keypoints: Callable[[str, int], ImageKeypoints],
        garment: str | None,
    ) -> GeometryEvidence:
        """Check the first max_checks photo pairs of `ranked` (best first).

        our_regions[i]: the regions of our photo i (non-empty); keypoints(side, index) gives the keypoints of
        a photo ("ours"/"theirs"), computing and caching them when needed.
        """
        found = GeometryEvidence()
        best_score = -1.0
        for i, j in list(ranked)[: self.max_checks]:
            ka = keypoints("ours", i)
            kb = keypoints("theirs", j)
            match = match_geometry(ka, kb)
            region = garment_region(our_regions[i], garment)
            on_garment = match.within(region.box.as_tuple())
            agreement = on_garment.colour_agreement
            if on_garment.inliers >= 4 and match.transform is not None:
                image_a = self.prepared_image(our_images[i])
                image_b = self.prepared_image(their_images[j])
                garment_a = self.garment_pixels(our_images[i], image_a, region)
                in_place = in_place_colour(image_a, garment_a.mask, image_b, match.transform)
                if in_place is not None:
                    agreement = in_place.agreement
                if on_garment.inliers >= self.mapped_colour_min_inliers:
                    # Our garment found in their photo: read its colour there, whatever regions
                    # their photo was split into (a collage tile the pose model missed, a crop).
                    d = mapped_colour_distance(garment_a, image_b, match.transform)
                    if d is not None and (found.mapped_colour is None or d < found.mapped_colour):
                        found.mapped_colour = d
                    if in_place is not None and (found.in_place is None or on_garment.inliers > found.in_place[1]):
                        found.in_place = (in_place.distance, on_garment.inliers)
            found.checked.append((i, j, on_garment.inliers, agreement))
            score = on_garment.inliers * (agreement if agreement is not None else 1.0)
            if score > best_score:
                best_score = score
                found.inliers = on_garment.inliers
                found.agreement = agreement
                found.matches = drawn_matches(i, j, on_garment)
        return found
