"""What both embedders feed their networks: each image letterboxed onto a white square, normalised.

Letterboxed rather than stretched or centre-cropped: garment proportions (cropped vs long, wide vs
slim) are part of what we match, a centre crop would cut off hems and sleeves, and white is what our
catalogue is shot on.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from matcher.pipeline.pixels import WHITE, as_rgb


def _placement(width: int, height: int, size: int) -> tuple[int, int, int, int]:
    """(w, h, x0, y0): the size an image takes when scaled to fit a size×size square, and where it
    sits in it, centred."""
    scale = size / max(width, height)
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    return w, h, (size - w) // 2, (size - h) // 2


def _fitted(image: Image.Image, size: int, fill: tuple[int, int, int]) -> tuple[Image.Image, int, int]:
    """The image scaled to fit a size×size square, and where it sits in it (x0, y0), centred."""
    image = as_rgb(image, fill)
    w, h, x0, y0 = _placement(image.width, image.height, size)
    return image.resize((w, h), Image.Resampling.BICUBIC), x0, y0


def letterbox(image: Image.Image, size: int, fill: tuple[int, int, int] = WHITE) -> Image.Image:
    """The image scaled to fit a size×size square, centred, the rest filled with `fill`."""
    fitted, x0, y0 = _fitted(image, size, fill)
    canvas = Image.new("RGB", (size, size), fill)
    canvas.paste(fitted, (x0, y0))
    return canvas


def _to_array(images: Sequence[Image.Image], size: int, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Letterboxed, normalised images as one (n, 3, size, size) float32 array.

    The same values `letterbox()` then (x / 255 − mean) / std give, to float32 rounding, without the
    canvas or three full-size temporaries: Pillow's bicubic resize is reproduced byte for byte by
    `resample` (over channel planes, where it vectorises: ~3x faster than Pillow here), each 8-bit
    result written straight into the channels-first batch as one multiply-add per channel."""
    # Imported here, not at module level: numba's import costs ~1 s, and the system checks and
    # settings read this module in every manage.py command and web process.
    from matcher.pipeline.resample import resize_normalised_into

    scale = 1.0 / (255.0 * np.asarray(std, np.float64))
    offset = -np.asarray(mean, np.float64) / np.asarray(std, np.float64)
    scale32, offset32 = scale.astype(np.float32), offset.astype(np.float32)
    margin = [np.float32(WHITE[c] * scale[c] + offset[c]) for c in range(3)]
    out = np.empty((len(images), 3, size, size), np.float32)
    for i, im in enumerate(images):
        pixels = np.asarray(as_rgb(im, WHITE))
        w, h, x0, y0 = _placement(pixels.shape[1], pixels.shape[0], size)
        for c in range(3):  # the margin is the fill colour, normalised once
            out[i, c] = margin[c]
        resize_normalised_into(pixels, (w, h), out[i], x0, y0, scale32, offset32)
    return out


def _to_batch(images: Sequence[Image.Image], size: int, mean: Sequence[float], std: Sequence[float]):
    import torch

    return torch.from_numpy(_to_array(images, size, mean, std))


def _l2_normalised(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length the way torch.nn.functional.normalize does (eps 1e-12)."""
    features = features.astype(np.float32, copy=False)
    norms = np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    return (features / norms).astype(np.float32)


def _normalised(features) -> np.ndarray:
    import torch

    return torch.nn.functional.normalize(features.float(), dim=1).cpu().numpy().astype(np.float32)

