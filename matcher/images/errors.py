"""Why an image could not be stored or downloaded; `reason` is written to the image row as it is."""
from __future__ import annotations

__all__ = ["FetchRefused", "FetchTransient", "ImageError", "ImageRejected"]


class ImageError(Exception):
    """Why an image could not be stored; `reason` is written to the image row as it is."""

    def __init__(self, reason: str) -> None:
        self.reason = reason[:500]
        super().__init__(self.reason)


class ImageRejected(ImageError):
    """The bytes are not an acceptable image (corrupt, too large, a decompression bomb, another format)."""


class FetchRefused(ImageError):
    """We will not download this URL (scheme, address, 4xx, too many redirects): retrying cannot help."""


class FetchTransient(ImageError):
    """A timeout, a connection error or a 5xx: worth retrying later."""
