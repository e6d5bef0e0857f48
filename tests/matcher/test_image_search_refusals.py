"""The image search says why an uploaded file was refused, and a huge image is "too many pixels: W×H"
from its header, never "corrupt" (issue 29, item 6)."""
from __future__ import annotations

import struct
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from matcher import images
from tests.factories import UserFactory, png_bytes

pytestmark = pytest.mark.django_db

NOTHING_GIVEN = "사진을 올리거나 이미지 URL을 입력하세요."


def huge_png(width: int, height: int) -> bytes:
    """A real, decodable 1-bit PNG of width × height (all black): about 50 KB for 20,000 × 20,000."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    row = b"\x00" * (1 + (width + 7) // 8)
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture
def merchandiser_client(client):
    client.force_login(UserFactory(groups=["merchandiser"]))
    return client


def search(client, data: bytes, name: str = "photo.png") -> str:
    response = client.post("/matcher/search/", {"image": SimpleUploadedFile(name, data, "image/png")})
    assert response.status_code == 200
    return response.content.decode()


def test_a_20000_by_20000_png_is_too_many_pixels_not_corrupt():
    with pytest.raises(images.ImageRejected) as refused:
        images.sniff(huge_png(20_000, 20_000), max_pixels=40_000_000)
    assert refused.value.reason.startswith("이미지 픽셀 수가 너무 많습니다 (too many pixels: 20000×20000")
    assert "corrupt" not in refused.value.reason


def test_the_pixel_count_is_named_even_above_our_cap_where_pillow_would_refuse_first():
    # Between our cap and Pillow's, Pillow's own check used to answer first, without the dimensions.
    assert 20_000 * 20_000 > 2 * Image.MAX_IMAGE_PIXELS
    with pytest.raises(images.ImageRejected, match="too many pixels: 20000×20000"):
        images.sniff(huge_png(20_000, 20_000), max_pixels=10**12)


def test_an_uploaded_huge_image_says_too_many_pixels_and_not_give_a_photo(merchandiser_client):
    page = search(merchandiser_client, huge_png(20_000, 20_000))
    assert "이미지 픽셀 수가 너무 많습니다 (too many pixels: 20000×20000" in page
    assert NOTHING_GIVEN not in page and "깨져" not in page


def test_an_uploaded_file_that_is_no_image_says_so(merchandiser_client):
    page = search(merchandiser_client, b"%PDF-1.4 not a photo", name="invoice.png")
    assert "이미지가 아닙니다 (not a recognisable image)" in page
    assert NOTHING_GIVEN not in page


def test_an_uploaded_file_over_the_size_cap_says_it_is_too_large(merchandiser_client, settings):
    settings.IMAGE_MAX_BYTES = 50
    page = search(merchandiser_client, png_bytes(size=(64, 64)))
    assert "파일이 너무 큽니다 (file too large" in page
    assert NOTHING_GIVEN not in page


def test_neither_a_photo_nor_a_url_asks_for_one(merchandiser_client):
    page = merchandiser_client.post("/matcher/search/", {"url": ""}).content.decode()
    assert NOTHING_GIVEN in page
