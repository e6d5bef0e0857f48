"""Storing image bytes: once per content hash, only real images of the allowed formats, no bombs."""
from __future__ import annotations

import io

import pytest

from matcher import images
from matcher.models import ImageFile
from matcher.services import image_store
from tests.factories import png_bytes
from tests.ingest.conftest import bomb_png, jpeg_bytes


def test_the_same_bytes_are_stored_once(db):
    data = jpeg_bytes()
    first = image_store(data=data)
    second = image_store(data=data)
    assert first.pk == second.pk
    assert ImageFile.objects.count() == 1
    assert (first.format, first.width, first.height, first.bytes) == ("JPEG", 48, 64, len(data))
    assert first.file.name == f"images/{first.sha256[:2]}/{first.sha256}.jpg"
    with first.file.open("rb") as fh:
        assert fh.read() == data


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "BMP", "GIF"])
def test_the_allowed_formats_are_recognised_by_content(fmt):
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (20, 10), (1, 2, 3)).save(buffer, format=fmt)
    assert images.sniff(buffer.getvalue(), max_pixels=10_000) == images.SniffedImage(fmt, 20, 10)


def test_an_animated_gif_is_accepted_by_its_first_frame():
    from PIL import Image

    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 255, 0))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    assert images.sniff(buffer.getvalue(), max_pixels=10_000).format == "GIF"


def test_other_formats_are_refused_even_when_pillow_reads_them():
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="TIFF")
    with pytest.raises(images.ImageRejected, match="TIFF"):
        images.sniff(buffer.getvalue(), max_pixels=10_000)


def test_a_truncated_image_is_refused_as_corrupt(db):
    data = jpeg_bytes(size=(200, 200))
    with pytest.raises(images.ImageRejected, match="corrupt"):
        image_store(data=data[: len(data) // 2])
    assert not ImageFile.objects.exists()


def test_bytes_that_are_no_image_are_refused():
    with pytest.raises(images.ImageRejected, match="not a recognisable image"):
        images.sniff(b"<html>not found</html>", max_pixels=10_000)


def test_a_tiny_file_declaring_huge_dimensions_is_refused_before_decoding(db, settings):
    data = bomb_png(100_000, 100_000)
    assert len(data) < 100
    with pytest.raises(images.ImageRejected, match="decompression bomb"):
        image_store(data=data)
    assert not ImageFile.objects.exists()


def test_pillows_own_bomb_check_is_an_error_too():
    # Above Pillow's limit but below ours: Pillow's warning must still refuse, never pass silently.
    from PIL import Image

    with pytest.raises(images.ImageRejected, match="decompression bomb"):
        images.sniff(bomb_png(20_000, 20_000), max_pixels=10**12)
    assert Image.MAX_IMAGE_PIXELS < 20_000 * 20_000


def test_the_pixel_cap_comes_from_settings(db, settings):
    settings.IMAGE_MAX_PIXELS = 100
    with pytest.raises(images.ImageRejected, match="32×32 > 100"):
        image_store(data=png_bytes(size=(32, 32)))


def test_bytes_over_the_size_cap_are_refused(db, settings):
    settings.IMAGE_MAX_BYTES = 100
    with pytest.raises(images.ImageRejected, match="larger than 100 bytes"):
        image_store(data=jpeg_bytes())


def test_reading_a_local_file_stops_past_the_cap(tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(b"\0" * 10_000)
    with pytest.raises(images.ImageRejected, match="larger than 1000 bytes"):
        images.read_local(path, max_bytes=1000)
