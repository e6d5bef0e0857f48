"""What a pair comparison is given: our SKU's side and a competitor listing's, each with its photos.

Plain Python, no Django. A photo is known by its sha256 (the analysis cache's key) and loads its
pixels only when a stage needs them.
"""
from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from matcher.pipeline.attributes import Attributes

# What loading a photo raises when its file is missing, truncated or not an image (PIL raises
# UnidentifiedImageError, an OSError, and for some broken files SyntaxError or EOFError).
UNREADABLE_IMAGE_ERRORS: tuple[type[BaseException], ...] = (
    OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError,
)


@dataclass
class ImageInput:
    """One photo: its sha256 (the cache key) and a way to get its pixels when needed."""

    sha256: str
    image: Image.Image | None = None
    loader: Callable[[], Image.Image] | None = None
    label: str = ""  # shown in reasons, e.g. a file name or URL

    def load(self) -> Image.Image:
        if self.image is None:
            if self.loader is None:
                raise ValueError(f"no pixels for image {self.sha256[:12]} and it is not in the cache")
            self.image = self.loader()
        return self.image.convert("RGB") if self.image.mode != "RGB" else self.image

    @classmethod
    def from_path(cls, path: str | Path) -> ImageInput:
        path = Path(path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        return cls(sha256=digest, loader=lambda: Image.open(path).convert("RGB"), label=path.name)

    @classmethod
    def from_bytes(cls, data: bytes, label: str = "") -> ImageInput:
        return cls(
            sha256=hashlib.sha256(data).hexdigest(),
            loader=lambda: Image.open(io.BytesIO(data)).convert("RGB"),
            label=label,
        )

    @classmethod
    def from_image(cls, image: Image.Image, label: str = "") -> ImageInput:
        rgb = image.convert("RGB")
        h = hashlib.sha256(f"{rgb.size}".encode())
        h.update(rgb.tobytes())
        return cls(sha256=h.hexdigest(), image=rgb, label=label)


@dataclass
class SkuSide:
    """Our SKU: 1–5 photos, its title, and optionally its product number and attributes."""

    images: Sequence[ImageInput]
    title: str = ""
    product_number: str | None = None
    attributes: Attributes | None = None  # when None, extracted from the title


@dataclass
class ListingSide:
    """A competitor listing: its photos and title."""

    images: Sequence[ImageInput]
    title: str = ""
