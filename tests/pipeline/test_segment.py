from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from matcher.pipeline.types import BackgroundRemover

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model_on_bricks(luma, brick):
    """A studio shot with its white background swapped for a brick wall, and where the wall is."""
    photo = luma("mj08-green_main.jpg")
    rgb = np.asarray(photo)
    wall = np.asarray(brick.resize(photo.size))
    is_background = rgb.min(axis=2) >= 245
    return Image.fromarray(np.where(is_background[..., None], wall, rgb)), is_background


def test_it_is_a_background_remover_named_after_its_model(remover):
    assert isinstance(remover, BackgroundRemover)
    assert remover.name == "rembg:isnet-medium-fp16"
    assert len(remover.checkpoint_hash) == 12


def test_the_wall_behind_a_model_becomes_studio_white_and_the_jacket_stays(remover, model_on_bricks):
    composite, is_background = model_on_bricks
    (out,) = remover.cutout([composite])

    assert out.size == composite.size and out.mode == "RGB"
    result, before = np.asarray(out).astype(int), np.asarray(composite).astype(int)
    # Background well away from the model (the left and right fifths) is white now.
    w = composite.width
    sides = np.zeros_like(is_background)
    sides[:, : w // 5] = sides[:, -w // 5 :] = True
    assert (result[sides & is_background].min(axis=1) >= 235).mean() > 0.97
    # The green fleece in the middle of the torso keeps its colour.
    torso = (slice(250, 450), slice(200, 320))
    assert np.abs(result[torso] - before[torso]).mean() < 8


def test_a_street_photo_keeps_its_people_on_white(remover, zidane):
    (out,) = remover.cutout([zidane])
    result = np.asarray(out).astype(int)
    # The crowd in the top-left corner is gone; the suit of the man on the left is not.
    assert (result[:120, :120].min(axis=2) >= 235).mean() > 0.95
    suit = (slice(450, 600), slice(300, 420))
    assert np.abs(result[suit] - np.asarray(zidane).astype(int)[suit]).mean() < 10


def test_masks_are_grey_images_of_the_input_size(remover, zidane):
    (mask,) = remover.masks([zidane])
    assert mask.mode == "L" and mask.size == zidane.size
    assert remover.cutout([]) == []
