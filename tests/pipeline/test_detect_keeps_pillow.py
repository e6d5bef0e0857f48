"""Loading the detector must not change how the rest of the process reads images."""
from __future__ import annotations

import pytest
from PIL import Image, UnidentifiedImageError

from matcher.pipeline.weights import POSE, default_path


def test_loading_the_pose_model_leaves_pillow_open_unpatched():
    if not default_path(POSE).is_file():
        pytest.fail("pose weights missing: run `make models`")
    from matcher.pipeline.detect import PoseRegionFinder

    PoseRegionFinder()
    import io

    with pytest.raises(UnidentifiedImageError):
        Image.open(io.BytesIO(b"<html>not an image</html>"))
