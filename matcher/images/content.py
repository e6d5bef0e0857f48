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
    """What the bytes are, whatever the URL or file name says; raises ImageRejected.

    The dimensions the header declares are checked first, before any pixel is decoded and before
    Pillow's own bomb check, so a tiny file declaring 100,000 × 100,000 pixels never allocates them
    and is refused as "too many pixels: W×H", not as corrupt.
    """
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ImageRejected("빈 파일입니다 (empty file)")
    # Pillow refuses past its own limit (a warning between it and twice it): the lower cap wins, in our words.
    cap = min(max_pixels, Image.MAX_IMAGE_PIXELS) if Image.MAX_IMAGE_PIXELS else max_pixels
    declared = _declared_size(data)
    if declared is not None:
        _check_pixels(*declared, cap=cap)
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
                _check_pixels(width, height, cap=cap)
                im.verify()
            # verify() leaves the image unusable; decoding the (first frame's) pixels catches truncation.
            with Image.open(io.BytesIO(data)) as im:
                im.load()
        except ImageRejected:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            # A frame larger than the image (GIF) can still trip Pillow's check while decoding.
            raise ImageRejected(f"{TOO_MANY_PIXELS} (decompression bomb guard: {exc})") from None
        except UnidentifiedImageError:
            raise ImageRejected("이미지가 아닙니다 (not a recognisable image)") from None
        except Exception as exc:  # noqa: BLE001 — Pillow raises many types on hostile input; all mean "corrupt"
            raise ImageRejected(f"손상된 이미지 (corrupt image: {type(exc).__name__}: {exc})") from None
    return SniffedImage(format=fmt, width=width, height=height)


TOO_MANY_PIXELS = "이미지 픽셀 수가 너무 많습니다"


def _check_pixels(width: int, height: int, *, cap: int) -> None:
    if width <= 0 or height <= 0:
        raise ImageRejected("이미지 크기가 0입니다 (zero-sized image)")
    if width * height > cap:
        raise ImageRejected(
            f"{TOO_MANY_PIXELS} (too many pixels: {width}×{height} > {cap}; decompression bomb guard)"
        )


def _declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) as the header of an allowed format declares them, read by that format's Pillow
    parser without decoding pixels and without Pillow's bomb check (Image.open runs it and would refuse
    with its own words first); None when no allowed format's parser takes the bytes (sniff then says why)."""
    from PIL import Image

    Image.init()
    prefix = data[:16]
    for fmt in ALLOWED_FORMATS:
        factory, accept = Image.OPEN[fmt]
        accepted = accept(prefix) if accept is not None else True
        if not accepted or isinstance(accepted, str):
            continue
        try:
            with factory(io.BytesIO(data)) as im:  # type: ignore[call-arg]
                return im.size
        except Exception:  # noqa: BLE001 — not this format, or a broken header: Image.open below decides
            continue
    return None


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
