"""The shared factories make rows other tests can rely on: real, distinct, decodable images."""
from __future__ import annotations

import pytest

from matcher import images
from tests.factories import ImageFileFactory, ListingImageFactory, ProductImageFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_factory_images_are_distinct_real_pngs_matching_their_hash():
    import hashlib

    first, second = ImageFileFactory(), ImageFileFactory()
    assert first.sha256 != second.sha256
    with first.file.open("rb") as fh:
        data = fh.read()
    assert hashlib.sha256(data).hexdigest() == first.sha256
    assert images.sniff(data, max_pixels=10_000) == images.SniffedImage("PNG", first.width, first.height)


def test_image_ref_factories_build_their_owners():
    product_image = ProductImageFactory()
    listing_image = ListingImageFactory(listing__product=product_image.product)
    assert listing_image.listing.product == product_image.product
    assert listing_image.image.pk != product_image.image.pk


def test_user_factory_sets_a_usable_password_and_groups():
    user = UserFactory(groups=["merchandiser"])
    assert user.check_password("pw-for-tests")
    assert list(user.groups.values_list("name", flat=True)) == ["merchandiser"]
