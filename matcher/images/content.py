"""What untrusted image bytes really are: the format by content, the pixel cap before decoding, size caps."""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

from matcher.images.errors import ImageRejected

__all__ = ["ALLOWED_FORMATS", "SniffedImage", "read_local", "sniff"]

# Pillow format name → file extension of the stored copy. GIFs are accepted; matching uses the first frame.
ALLOWED_FORMATS: dict[str, str] = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp"}
# Camera JPEGs with embedded previews open as MPO; they are JPEG files.
_FORMAT_ALIASES = {"MPO": "JPEG"}


@dataclass(frozen=True)
class SniffedImage:
    format: str  # a key of ALLOWED_FORMATS
    width: int
    height: int

    @property
    def extension(self) -> str:
        return ALLOWED_FORMATS[self.format]


def sniff(data: bytes, *, max_pixels: int) -> SniffedImage:
    """What the bytes really are, whatever the URL or file name says; raises ImageRejected.

    The declared dimensions are checked before any pixel is decoded, so a tiny file declaring
    100,000 × 100,000 pixels never allocates them.
    """
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ImageRejected("빈 파일입니다 (empty file)")
    with warnings.catch_warnings():
        # Pillow only warns between its limit and twice its limit; a warning is a refusal here.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as im:
                fmt = _FORMAT_ALIASES.get(im.format or "", im.format or "")
                if fmt not in ALLOWED_FORMATS:
                    raise ImageRejected(
                        f"지원하지 않는 이미지 형식 (format {im.format!r} not allowed; JPEG/PNG/WEBP/GIF/BMP)"
                    )
                width, height = im.size
                if width <= 0 or height <= 0:
                    raise ImageRejected("이미지 크기가 0입니다 (zero-sized image)")
                if width * height > max_pixels:
                    raise ImageRejected(
                        f"픽셀 수가 너무 많습니다 (decompression bomb guard: {width}×{height} > {max_pixels} pixels)"
                    )
                im.verify()
            # verify() leaves the image unusable; decoding the (first frame's) pixels catches truncation.
            with Image.open(io.BytesIO(data)) as im:
                im.load()
        except ImageRejected:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageRejected(f"픽셀 수가 너무 많습니다 (decompression bomb: {exc})") from None
        except UnidentifiedImageError:
            raise ImageRejected("이미지가 아닙니다 (not a recognisable image)") from None
        except Exception as exc:  # noqa: BLE001 — Pillow raises many types on hostile input; all mean "corrupt"
            raise ImageRejected(f"손상된 이미지 (corrupt image: {type(exc).__name__}: {exc})") from None
    return SniffedImage(format=fmt, width=width, height=height)


def read_local(path: Path, *, max_bytes: int) -> bytes:
    """A local file's bytes, reading no more than max_bytes + 1 of them; raises ImageRejected."""
    try:
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise ImageRejected(f"파일을 읽을 수 없습니다 (cannot read {path.name}: {exc.strerror})") from None
    if len(data) > max_bytes:
        raise ImageRejected(f"파일이 너무 큽니다 (larger than {max_bytes} bytes)")
    return data
