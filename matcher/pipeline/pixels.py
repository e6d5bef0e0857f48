"""Pixel helpers shared by the vision stages: RGB normalisation, colour distances, a photo prepared once."""
from __future__ import annotations

from functools import cached_property

import numpy as np
from PIL import Image

WHITE = (255, 255, 255)

# OpenCV's 8-bit CIELAB (L scaled to 0..255, a and b offset by 128) → L 0..100, a and b signed, as
# float32. A lookup table gives the same values as converting and rescaling the array (float32
# multiply and subtract), in one pass instead of three.
_LAB_LUT = np.stack(
    [np.arange(256, dtype=np.float32) * np.float32(100.0 / 255.0)] + [np.arange(256, dtype=np.float32) - 128.0] * 2,
    axis=1,
).reshape(256, 1, 3)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB ((h, w, 3) or (n, 1, 3)) → float32 CIELAB with L in 0..100 and a, b centred on 0."""
    import cv2

    return cv2.LUT(cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.uint8), cv2.COLOR_RGB2LAB), _LAB_LUT)


def as_rgb(image: Image.Image, background: tuple[int, int, int] = WHITE) -> Image.Image:
    """RGB with any transparency laid on `background`.

    Shops often publish cut-outs as transparent PNGs; a plain convert("RGB") would show
    whatever colour sits under the transparent pixels (often black) instead of the
    studio white such a cut-out is meant to be seen on.
    """
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, background)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")


def delta_e_squared(lab: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Squared CIELAB distance (CIE76) of every pixel of `lab` ((h, w, 3) or (n, 3)) to `ref`.

    For threshold tests on whole photos (`delta_e_squared(lab, ref) < t ** 2`), where a square root
    and numpy's strided per-channel reads cost more than the comparison; OpenCV does it in two
    vectorised passes (the same booleans as numpy's sum of squares on 317 evaluation photos).
    """
    import cv2

    lab = np.asarray(lab, np.float32)
    if lab.ndim == 2:  # (n, 3) pixels: OpenCV sees them as a column of 3-channel pixels
        return delta_e_squared(lab.reshape(-1, 1, 3), ref).reshape(-1)
    if lab.size == 0:
        return np.zeros(lab.shape[:-1], np.float32)
    # OpenCV takes a Scalar (a 4-tuple) as the second operand; its stubs list arrays only.
    d = cv2.subtract(lab, tuple(float(v) for v in ref) + (0.0,))  # type: ignore[call-overload]
    return cv2.transform(cv2.multiply(d, d), np.ones((1, 3), np.float32))


def to_rgb_array(image: Image.Image | np.ndarray) -> np.ndarray:
    if isinstance(image, np.ndarray):
        return image
    return np.asarray(image.convert("RGB"))


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


def pixels_of(image: Image.Image | np.ndarray | PreparedImage) -> np.ndarray:
    return image.rgb if isinstance(image, PreparedImage) else to_rgb_array(image)
