"""The photos a verification request carries: online and batch requests send the same ones."""
from __future__ import annotations

from collections import Counter

from matcher.analysis_cache import image_input
from matcher.models import ImageFile
from matcher.pipeline.verify import jpeg_bytes


def verification_jpegs(image: ImageFile, box: list[int] | None, timings: Counter | None = None) -> list[bytes]:
    """The crop the pipeline chose (if any), then the original, as JPEG; reading adds to `timings["load"]`."""
    img = image_input(image, timings).load()
    crop = [jpeg_bytes(img.crop((box[0], box[1], box[2], box[3])))] if box else []
    return crop + [jpeg_bytes(img)]
