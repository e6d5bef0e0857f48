"""Colour (evidence/colour/) and keypoint geometry (evidence/geometry.py) on real Luma studio photos (skipped when ../shared/eval is absent)."""
from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from matcher.pipeline import pixels as px
from matcher.pipeline.evidence import geometry
from matcher.pipeline.evidence.colour import garment as garment_colour
from matcher.pipeline.evidence.colour import in_place, signature
from matcher.pipeline.pixels import delta_e_squared
from matcher.pipeline.types import Box, Region


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def crop_rescale(image: Image.Image) -> Image.Image:
    w, h = image.size
    cropped = image.crop((int(0.08 * w), int(0.05 * h), int(0.9 * w), int(0.85 * h)))
    return jpeg(cropped.resize((int(cropped.width * 0.7), int(cropped.height * 0.7))), 60)


def banner(image: Image.Image) -> Image.Image:
    out = image.copy()
    draw = ImageDraw.Draw(out)
    draw.rectangle([0, 0, out.width, int(out.height * 0.14)], fill=(200, 30, 30))
    draw.text((10, 20), "SALE 50% FREE SHIPPING", fill=(255, 255, 255))
    return jpeg(out, 70)


def recolour(image: Image.Image, mask: np.ndarray, hue_shift: int = 60) -> Image.Image:
    """The same photo with the garment's hue turned: what a shop publishes as another colourway."""
    hsv = np.asarray(image.convert("HSV")).copy()
    hsv[..., 0][mask] = (hsv[..., 0][mask].astype(int) + hue_shift) % 256
    hsv[..., 1][mask] = np.maximum(hsv[..., 1][mask], 120)
    return Image.fromarray(hsv, "HSV").convert("RGB")


def garment(regions: list[Region], kind: str) -> Region:
    return next(r for r in regions if r.kind == kind)


# --- colour ------------------------------------------------------------------------------------


def test_colour_tells_the_same_top_from_another_view_apart_from_the_same_top_in_another_colour(luma, pose_finder):
    names = ["mh02-black_main.jpg", "mh02-black_back.jpg", "mh02-purple_main.jpg", "mh02-red_main.jpg"]
    images = [luma(n) for n in names]
    sigs = [signature.colour_signature(im, garment(regs, "upper")) for im, regs in zip(images, pose_finder.find(images))]
    same = signature.colour_distance(sigs[0], sigs[1])
    other_colours = [signature.colour_distance(sigs[0], sigs[2]), signature.colour_distance(sigs[0], sigs[3])]
    assert same < 0.5
    assert min(other_colours) > 0.9


def test_colour_is_read_on_the_garment_not_on_the_studio_background(luma, pose_finder):
    image = luma("wp03-blue_main.jpg")
    sig = signature.colour_signature(image, garment(pose_finder.find([image])[0], "lower"))
    L, a, b = sig.dominant_lab[0]
    assert sig.weights[0] > 0.5
    assert b < -30 and L < 70  # saturated blue trousers, not white


def test_a_close_up_without_a_person_reads_the_garment_that_fills_the_frame(luma):
    image = luma("wp03-blue_alt1.jpg")  # blue cloth edge to edge with a yellow strap
    sig = signature.colour_signature(image, Region("whole", Box(0, 0, *image.size)))
    L, a, b = sig.dominant_lab[0]
    assert b < -30  # blue, although blue is also what touches the border


def test_the_colour_distance_is_a_bounded_symmetric_distance(luma, pose_finder):
    images = [luma("mt01-gray_main.jpg"), luma("mt01-red_main.jpg")]
    a, b = (signature.colour_signature(im, garment(r, "upper")) for im, r in zip(images, pose_finder.find(images)))
    assert signature.colour_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert signature.colour_distance(a, b) == pytest.approx(signature.colour_distance(b, a), abs=1e-6)
    assert 0.0 <= signature.colour_distance(a, b) <= 1.0


# --- geometry ----------------------------------------------------------------------------------


@pytest.mark.parametrize("transform", [crop_rescale, banner], ids=["crop-rescale-jpeg", "banner"])
def test_a_reused_photo_keeps_many_colour_agreeing_inliers(luma, pose_finder, transform):
    ours = luma("mj02-orange_main.jpg")
    theirs = transform(ours)
    match = geometry.match_geometry(geometry.image_keypoints(ours), geometry.image_keypoints(theirs))
    region = garment(pose_finder.find([ours])[0], "upper")
    on_garment = match.within(tuple(region.box.as_list()))
    assert on_garment.inliers >= 20
    assert on_garment.colour_agreement >= 0.9
    mask = garment_colour.garment_mask(np.asarray(ours), region)
    assert in_place.in_place_colour(ours, mask, theirs, match.transform).agreement >= 0.9


def test_our_photo_is_found_inside_a_collage(luma, compose):
    ours = luma("ws04-red_main.jpg")
    collage, _ = compose([luma("mp02-blue_main.jpg"), ours, luma("wj07-purple_main.jpg")], (1500, 700))
    match = geometry.match_geometry(geometry.image_keypoints(ours), geometry.image_keypoints(jpeg(collage, 75)))
    assert match.inliers >= 20
    assert match.colour_agreement >= 0.9


def test_another_style_gives_no_geometry(luma):
    match = geometry.match_geometry(geometry.image_keypoints(luma("mj02-orange_main.jpg")), geometry.image_keypoints(luma("ms03-gray_main.jpg")))
    assert match.inliers < 10


def test_a_recoloured_copy_matches_in_shape_but_not_in_colour(luma, pose_finder):
    ours = luma("wj09-blue_main.jpg")
    region = garment(pose_finder.find([ours])[0], "upper")
    mask = garment_colour.garment_mask(np.asarray(ours), region)
    theirs = jpeg(recolour(ours, mask), 85)
    match = geometry.match_geometry(geometry.image_keypoints(ours), geometry.image_keypoints(theirs))
    assert match.inliers >= 30  # the same photo, keypoint for keypoint
    assert in_place.in_place_colour(ours, mask, theirs, match.transform).agreement < 0.3


def _opencv_ratio_test(a: np.ndarray, b: np.ndarray, ratio: float = geometry.RATIO_TEST) -> list[tuple[int, int]]:
    import cv2

    knn = cv2.BFMatcher(cv2.NORM_L2).knnMatch(a, b, k=2)
    return [(m[0].queryIdx, m[0].trainIdx) for m in knn if len(m) == 2 and m[0].distance < ratio * m[1].distance]


def test_the_ratio_test_keeps_exactly_the_pairs_of_opencvs_brute_force_matcher_on_real_photos(luma, compose):
    ours = luma("ws04-red_main.jpg")
    collage, _ = compose([luma("mp02-blue_main.jpg"), ours, luma("wj07-purple_main.jpg")], (1500, 700))
    photos = [ours, crop_rescale(ours), banner(ours), jpeg(collage, 75), luma("ms03-gray_main.jpg")]
    kps = [geometry.image_keypoints(p) for p in photos]
    kept = 0
    for kb in kps[1:]:
        query, train = geometry.ratio_test_matches(kps[0].descriptors, kb.descriptors)
        assert list(zip(query.tolist(), train.tolist())) == _opencv_ratio_test(kps[0].descriptors, kb.descriptors)
        kept += len(query)
    assert kept > 100  # the re-used photos do match: the comparison is not of empty lists


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 40),
    st.integers(0, 40),
    st.integers(1, 256),
    st.integers(0, 2**32 - 1),
)
def test_the_ratio_test_equals_opencvs_on_byte_descriptors_with_ties_and_duplicates(n, m, levels, seed):
    rng = np.random.default_rng(seed)
    # Few levels make equal distances (ties) and duplicate descriptors common.
    step = 255 // (levels - 1) if levels > 1 else 0
    a = (rng.integers(0, levels, (n, 128)) * step).astype(np.float32)
    b = (rng.integers(0, levels, (m, 128)) * step).astype(np.float32)
    if m and n > 1:
        a[0] = b[0]  # an exact hit
    query, train = geometry.ratio_test_matches(a, b)
    expected = _opencv_ratio_test(a, b) if m else []
    assert list(zip(query.tolist(), train.tolist())) == expected


def test_keypoints_survive_a_round_trip_through_bytes(luma):
    kp = geometry.image_keypoints(luma("mh02-black_main.jpg"))
    restored = geometry.ImageKeypoints.from_bytes(kp.to_bytes())
    assert restored.size == kp.size and len(restored) == len(kp)
    assert geometry.match_geometry(kp, restored).inliers >= 0.8 * len(kp)
    # SIFT descriptors are whole bytes: stored exactly, points too.
    assert np.array_equal(restored.descriptors, kp.descriptors) and np.array_equal(restored.points, kp.points)


def test_keypoint_blobs_of_the_earlier_format_still_load(luma):
    import io

    kp = geometry.image_keypoints(luma("mh02-black_main.jpg"))
    buf = io.BytesIO()  # what to_bytes wrote before: float16 descriptors, compressed
    np.savez_compressed(buf, points=kp.points, descriptors=kp.descriptors.astype(np.float16),
                        patch_lab=kp.patch_lab.astype(np.float16), size=np.array(kp.size, np.int32))
    old = geometry.ImageKeypoints.from_bytes(buf.getvalue())
    assert np.array_equal(old.descriptors, kp.descriptors) and old.size == kp.size
    # Descriptors that are not whole bytes (another extractor) keep their fractions, to float16.
    odd = geometry.ImageKeypoints(kp.points[:3], kp.descriptors[:3] / 7, kp.patch_lab[:3], kp.size)
    assert np.allclose(geometry.ImageKeypoints.from_bytes(odd.to_bytes()).descriptors, odd.descriptors, atol=0.02)


def tint(image: Image.Image, rgb_gain=(1.06, 1.0, 0.9)) -> Image.Image:
    """A whole-photo colour cast, as a re-photographed or re-graded copy has."""
    arr = np.asarray(image, np.float32) * np.array(rgb_gain, np.float32)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def test_in_place_colour_forgives_a_whole_photo_tint_but_not_a_dark_recolour(luma, pose_finder):
    ours = luma("ms08-black_main.jpg")
    region = garment(pose_finder.find([ours])[0], "upper")
    mask = garment_colour.garment_mask(np.asarray(ours), region)
    kp = geometry.image_keypoints(ours)

    tinted = jpeg(tint(ours), 80)
    same = in_place.in_place_colour(ours, mask, tinted, geometry.match_geometry(kp, geometry.image_keypoints(tinted)).transform)
    # Black to navy: the hue turns, lightness hardly moves.
    hsv = np.asarray(ours.convert("HSV")).copy()
    hsv[..., 0][mask], hsv[..., 1][mask] = 170, np.maximum(hsv[..., 1][mask], 140)
    navy = jpeg(Image.fromarray(hsv, "HSV").convert("RGB"), 85)
    other = in_place.in_place_colour(ours, mask, navy, geometry.match_geometry(kp, geometry.image_keypoints(navy)).transform)

    assert same.agreement >= 0.9 and same.distance < 0.3
    assert other.agreement < 0.5 and other.distance > same.distance


# --- prepared photos: the same readings, converted once ------------------------------------------


def _numpy_delta_e(lab: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """CIELAB distance written out in numpy: the reference for features' OpenCV version."""
    d = lab - ref
    return np.sqrt(d[..., 0] ** 2 + d[..., 1] ** 2 + d[..., 2] ** 2)


def _garment_mask_over_the_whole_photo(rgb: np.ndarray, region: Region) -> np.ndarray:
    """garment_mask as it was before it worked inside the region's box: the reference."""
    import cv2

    h, w = rgb.shape[:2]
    lab = px.rgb_to_lab(rgb)
    mask = np.zeros((h, w), np.uint8)
    polygon = garment_colour.garment_polygon(region)
    if polygon is not None:
        cv2.fillPoly(mask, [np.round(polygon).astype(np.int32)], 1)
    box = region.box
    region_mask = np.zeros((h, w), np.uint8)
    region_mask[max(0, box.y0) : box.y1, max(0, box.x0) : box.x1] = 1
    if polygon is None or (mask & region_mask).sum() < garment_colour.MIN_POLYGON_SHARE * max(1, box.area):
        mask = region_mask
    else:
        mask &= region_mask
    keep = mask.astype(bool)
    bg = garment_colour.border_background(lab)
    if bg.plain:
        not_bg = keep & (_numpy_delta_e(lab, bg.lab) > bg.tolerance)
        if bg.lab[0] > 80 and np.hypot(bg.lab[1], bg.lab[2]) < 12 or not_bg.sum() >= 0.25 * keep.sum():
            keep = not_bg
    if region.keypoints:
        skin_like = garment_colour._skin_like(lab)
        face = garment_colour._skin_lab(lab, region)
        if face is not None:
            skin_like |= _numpy_delta_e(lab, face) < 12.0
        not_skin = keep & ~skin_like
        if not_skin.sum() >= garment_colour.SKIN_KEEP_SHARE * keep.sum():
            keep = not_skin
    return keep


def _same_signature(a, b) -> bool:
    return a is None and b is None or (
        np.array_equal(a.histogram, b.histogram) and np.array_equal(a.dominant_lab, b.dominant_lab)
        and np.array_equal(a.weights, b.weights)
    )


def test_a_prepared_photo_gives_exactly_the_colour_readings_of_raw_pixels(luma, pose_finder):
    ours = luma("ms08-black_main.jpg")
    theirs = jpeg(banner(crop_rescale(ours)), 80)
    rgb_a, rgb_b = np.asarray(ours), np.asarray(theirs)
    a, b = px.PreparedImage(rgb_a), px.PreparedImage(rgb_b)
    regions = pose_finder.find([ours])[0] + [Region("item", Box(-5, 30, 4000, 500), needs_cutout=False, score=1.0)]
    assert any(r.keypoints for r in regions)  # the skin and torso paths are exercised

    for region in regions:
        mask = garment_colour.garment_mask(rgb_a, region, lab=a.lab)
        assert np.array_equal(mask, _garment_mask_over_the_whole_photo(rgb_a, region)), region.kind
        assert _same_signature(signature.colour_signature(rgb_a, region, lab=a.lab), signature.colour_signature(rgb_a, region))
        assert _same_signature(signature.colour_signature_in_mask(a, mask), signature.colour_signature_in_mask(rgb_a, mask))

    transform = geometry.match_geometry(geometry.image_keypoints(ours), geometry.image_keypoints(theirs)).transform
    mask = garment_colour.garment_mask(rgb_a, garment(regions, "upper"))
    assert in_place.in_place_colour(a, mask, b, transform) == in_place.in_place_colour(rgb_a, mask, rgb_b, transform)
    # Read twice through the same prepared photos: the cached conversions change nothing.
    assert in_place.in_place_colour(a, mask, b, transform) == in_place.in_place_colour(ours, mask, theirs, transform)


def test_in_place_colour_is_not_fooled_by_a_new_background(luma, pose_finder):
    # A competitor cut our model out and put him on a dark blue night scene: the whole-photo
    # colour fit follows the new background, so the reading without it must count.
    from matcher.demo import transforms as T

    ours = luma("ms08-blue_main.jpg")
    region = garment(pose_finder.find([ours])[0], "upper")
    mask = garment_colour.garment_mask(np.asarray(ours), region)
    night = Image.new("RGB", (900, 900), (18, 28, 70))
    theirs = jpeg(T.on_background(ours, 3, background=night), 85)
    match = geometry.match_geometry(geometry.image_keypoints(ours), geometry.image_keypoints(theirs))
    found = in_place.in_place_colour(ours, mask, theirs, match.transform)
    assert found.agreement >= 0.9 and found.distance < 0.3


def test_the_colour_distance_of_whole_photos_equals_the_formula_on_boxes_pixel_lists_and_empty_boxes(luma):
    lab = px.rgb_to_lab(np.asarray(luma("ms08-black_main.jpg")))
    ref = np.array([52.5, -3.25, 7.0], np.float32)
    box = lab[40:-30, 17:-11]  # a window, as garment_mask reads it: not contiguous

    assert np.array_equal(garment_colour._delta_e(box, ref), _numpy_delta_e(box, ref))
    assert np.array_equal(delta_e_squared(box, ref) > np.float32(9.0) ** 2, _numpy_delta_e(box, ref) > 9.0)
    pixels = box.reshape(-1, 3)[::97]
    assert np.allclose(garment_colour._delta_e(pixels, ref), _numpy_delta_e(pixels, ref))
    assert delta_e_squared(lab[0:0, 3:9], ref).shape == (0, 6)


def test_cielab_from_the_lookup_table_equals_the_rescaled_conversion_for_every_colour():
    import cv2

    from matcher.pipeline.pixels import rgb_to_lab

    every = np.stack(np.meshgrid(*[np.arange(256)] * 3, indexing="ij"), -1).reshape(-1, 1, 3).astype(np.uint8)
    plain = cv2.cvtColor(every, cv2.COLOR_RGB2LAB).astype(np.float32)
    plain[..., 0] *= 100.0 / 255.0
    plain[..., 1:] -= 128.0
    lab = rgb_to_lab(every)
    assert lab.dtype == np.float32 and lab.shape == plain.shape
    assert np.array_equal(lab, plain)


@settings(max_examples=40, deadline=None)
@given(
    size=st.tuples(st.integers(1, 160), st.integers(1, 160)),  # up to 25,600 pixels: sampled past 6,000
    share=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**31 - 1),
    min_pixels=st.sampled_from([1, 50, 200]),
)
def test_a_masked_signature_reads_only_its_sample_and_equals_the_signature_of_the_gathered_pixels(
    size, share, seed, min_pixels
):
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    mask = rng.random(size) < share
    lab = px.rgb_to_lab(rgb)
    gathered = signature.signature_of_pixels(lab[mask], min_pixels=min_pixels, seed=seed % 1000)
    assert _same_signature(signature.signature_of_pixels(lab, min_pixels=min_pixels, seed=seed % 1000, mask=mask), gathered)
    assert _same_signature(signature.colour_signature_in_mask(rgb, mask, min_pixels=min_pixels, seed=seed % 1000), gathered)
    assert _same_signature(
        signature.colour_signature_in_mask(px.PreparedImage(rgb), mask, min_pixels=min_pixels, seed=seed % 1000), gathered
    )
