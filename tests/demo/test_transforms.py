from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from matcher.demo import transforms as T
from matcher.demo.garments import garment_mask


def _garment_hue(img: Image.Image, mask: np.ndarray) -> float:
    """Circular mean hue (degrees) of the saturated garment pixels."""
    hsv = cv2.cvtColor(np.asarray(img).astype(np.float32) / 255.0, cv2.COLOR_RGB2HSV)
    h, s = hsv[..., 0][mask], hsv[..., 1][mask]
    ang = np.deg2rad(h)
    return float(np.rad2deg(np.arctan2((s * np.sin(ang)).sum(), (s * np.cos(ang)).sum())) % 360)


def _hue_distance(a: float, b: float) -> float:
    d = abs(a - b) % 360
    return min(d, 360 - d)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


@pytest.mark.parametrize("kind", sorted(T.COPIES))
def test_each_competitor_copy_is_a_sane_rgb_image_and_repeats_for_a_seed(kind, navy_jacket, black_tee):
    first = T.competitor_copy(navy_jacket, kind, 11, others=[black_tee])
    again = T.competitor_copy(navy_jacket, kind, 11, others=[black_tee])
    other_seed = T.competitor_copy(navy_jacket, kind, 12, others=[black_tee])

    assert first.mode == "RGB"
    assert 120 <= min(first.size) and max(first.size) <= 2 * max(navy_jacket.size)
    assert np.array_equal(np.asarray(first), np.asarray(again))
    assert not np.array_equal(np.asarray(first), np.asarray(other_seed)) or first.size != other_seed.size


def test_the_mask_of_a_flat_lay_on_white_is_the_garment(navy_jacket, navy_jacket_spec):
    assert _iou(T.product_mask(navy_jacket), garment_mask(navy_jacket_spec)) > 0.93


def test_a_crop_keeps_most_of_the_garment(navy_jacket):
    for seed in range(5):
        cropped = T.crop(navy_jacket, seed)
        x0, y0, x1, y1 = T.bbox_of(T.product_mask(navy_jacket))
        cx0, cy0, cx1, cy1 = T.bbox_of(T.product_mask(cropped))
        assert (cx1 - cx0) >= 0.75 * (x1 - x0) and (cy1 - cy0) >= 0.75 * (y1 - y0)


def test_a_banner_writes_over_one_edge_or_extends_the_canvas(navy_jacket):
    overlaid = T.banner(navy_jacket, 1, text="무료배송 ★ 정품", position="top", extend=False)
    extended = T.banner(navy_jacket, 1, text="무료배송 ★ 정품", position="bottom", extend=True)

    assert overlaid.size == navy_jacket.size
    top = np.asarray(overlaid)[:20].astype(int) - np.asarray(navy_jacket)[:20].astype(int)
    assert np.abs(top).mean() > 30
    assert extended.width == navy_jacket.width and extended.height > navy_jacket.height


def test_a_street_background_replaces_the_studio_white(navy_jacket):
    if not T.available_backgrounds():
        pytest.skip("no background photos shipped by installed packages (scikit-image)")
    composite = T.on_background(navy_jacket, 5)
    border = np.concatenate([np.asarray(composite)[:8].reshape(-1, 3), np.asarray(composite)[-8:].reshape(-1, 3)])

    assert composite.size == navy_jacket.size
    assert border.mean() < 235 or border.std() > 12


def test_colour_jitter_keeps_the_hue(navy_jacket, navy_jacket_spec):
    mask = garment_mask(navy_jacket_spec)
    before = _garment_hue(navy_jacket, mask)
    for seed in range(5):
        assert _hue_distance(_garment_hue(T.colour_jitter(navy_jacket, seed), mask), before) < 8


def test_recolour_moves_the_hue_and_keeps_the_shape(navy_jacket, navy_jacket_spec):
    mask = garment_mask(navy_jacket_spec)
    recoloured = T.recolour(navy_jacket, 120, mask=mask)

    assert _hue_distance(_garment_hue(recoloured, mask), (_garment_hue(navy_jacket, mask) + 120) % 360) < 10
    assert _iou(T.product_mask(recoloured), T.product_mask(navy_jacket)) > 0.97
    outside = ~mask
    assert np.abs(np.asarray(recoloured)[outside].astype(int) - np.asarray(navy_jacket)[outside].astype(int)).max() <= 1


def test_recolour_tints_a_black_garment_that_has_no_hue(black_tee):
    mask = T.garment_mask(black_tee)
    tinted = T.recolour(black_tee, 0)  # towards red
    hsv = cv2.cvtColor(np.asarray(tinted).astype(np.float32) / 255.0, cv2.COLOR_RGB2HSV)
    before = cv2.cvtColor(np.asarray(black_tee).astype(np.float32) / 255.0, cv2.COLOR_RGB2HSV)

    assert hsv[..., 1][mask].mean() > before[..., 1][mask].mean() + 0.2
    assert _iou(T.product_mask(tinted), T.product_mask(black_tee)) > 0.97


def test_a_collage_holds_our_product_and_others(navy_jacket, black_tee):
    grid = T.collage(navy_jacket, [black_tee, black_tee], 3, layout="grid")
    scattered = T.collage(navy_jacket, [black_tee], 3, layout="scattered")

    for img in (grid, scattered):
        n, _, stats, _ = cv2.connectedComponentsWithStats(T.product_mask(img).astype(np.uint8))
        assert n - 1 >= 2  # at least two separate products on white
