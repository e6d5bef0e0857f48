"""Image normalisation shared by the vision stages."""
from __future__ import annotations

from PIL import Image

WHITE = (255, 255, 255)


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
