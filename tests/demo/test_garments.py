from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from matcher.demo.garments import GarmentSpec, garment_mask, render


def test_a_render_is_a_square_rgb_photo_and_repeats(navy_jacket_spec):
    a = render(navy_jacket_spec, "back")
    b = render(navy_jacket_spec, "back")

    assert a.mode == "RGB" and a.size == (640, 640)
    assert np.array_equal(np.asarray(a), np.asarray(b))


def test_another_colourway_is_the_same_drawing(navy_jacket_spec):
    navy = garment_mask(navy_jacket_spec)
    khaki = garment_mask(navy_jacket_spec.in_colour("khaki"))
    a = np.asarray(render(navy_jacket_spec)).astype(float)[navy]
    b = np.asarray(render(navy_jacket_spec.in_colour("khaki"))).astype(float)[navy]

    assert np.array_equal(navy, khaki)
    assert np.abs(a.mean(axis=0) - b.mean(axis=0)).max() > 25


def test_views_differ_and_the_detail_is_a_close_up(navy_jacket_spec):
    front = np.asarray(render(navy_jacket_spec, "front"))
    back = np.asarray(render(navy_jacket_spec, "back"))
    detail = np.asarray(render(navy_jacket_spec, "detail"))
    white = lambda a: (a.min(axis=2) > 225).mean()  # noqa: E731

    assert np.abs(front.astype(int) - back.astype(int)).mean() > 3
    assert white(detail) < white(front) / 2


def test_a_print_gives_a_keypoint_detector_something_to_hold(black_tee):
    plain = render(GarmentSpec("tshirt", "black", collar="crew", zipper="none", pockets="none", texture="cotton", seed=4))
    sift = cv2.SIFT_create()
    grey = lambda im: cv2.cvtColor(np.asarray(im), cv2.COLOR_RGB2GRAY)  # noqa: E731

    assert len(sift.detect(grey(black_tee), None)) > len(sift.detect(grey(plain), None)) + 30


def test_kids_and_vest_versions_change_the_silhouette(navy_jacket_spec):
    adult = garment_mask(navy_jacket_spec)
    kids = garment_mask(replace(navy_jacket_spec, kids=True))
    vest = garment_mask(replace(navy_jacket_spec, garment="vest"))

    assert kids.sum() < adult.sum() * 0.95
    assert vest.sum() < adult.sum() * 0.8
