"""factory_boy factories shared by every test package: `from tests.factories import ProductFactory`.

Images are real: each ImageFileFactory row carries a small PNG of its own colour, stored in
MEDIA_ROOT (a temporary folder in tests), so code that opens the file sees a decodable image.
"""
from __future__ import annotations

import hashlib
import io

import factory
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.utils import timezone
from factory.django import DjangoModelFactory

from matcher.models import (
    ApiToken,
    FetchStatus,
    ImageFile,
    ImportReport,
    Listing,
    ListingImage,
    Product,
    ProductImage,
)
from matcher.pipeline.attributes import normalise_product_number


def png_bytes(colour: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (32, 32)) -> bytes:
    """A real PNG of one colour."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def _colour(n: int) -> tuple[int, int, int]:
    # Distinct colours per sequence number, so every factory image has its own content hash.
    return ((n >> 16) & 255, (n >> 8) & 255, n & 255)


class UserFactory(DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests")

    @factory.post_generation
    def groups(self, create: bool, extracted, **kwargs) -> None:
        """UserFactory(groups=["merchandiser"]) puts the user in those groups (created if missing)."""
        from django.contrib.auth.models import Group

        if create and extracted:
            for name in extracted:
                group, _ = Group.objects.get_or_create(name=name)
                self.groups.add(group)
        if create:
            self.save()


class ImageFileFactory(DjangoModelFactory):
    class Meta:
        model = ImageFile
        exclude = ("data",)

    data = factory.Sequence(lambda n: png_bytes(_colour(n + 1)))
    sha256 = factory.LazyAttribute(lambda o: hashlib.sha256(o.data).hexdigest())
    file = factory.LazyAttribute(lambda o: ContentFile(o.data, name=f"{o.sha256}.png"))
    width = 32
    height = 32
    format = "PNG"
    bytes = factory.LazyAttribute(lambda o: len(o.data))


class ProductFactory(DjangoModelFactory):
    class Meta:
        model = Product
        django_get_or_create = ("sku",)

    sku = factory.Sequence(lambda n: f"SKU-{n:05d}")
    product_number = factory.Sequence(lambda n: f"NJ1DN{n:02d}A")
    product_number_norm = factory.LazyAttribute(lambda o: normalise_product_number(o.product_number))
    brand = "노스페이스"
    title = factory.Sequence(lambda n: f"눕시 구스다운 숏패딩 자켓 {n}")
    category = "outerwear"
    colour = "black"
    attributes = factory.LazyFunction(dict)
    price = 189_000
    cost = 95_000
    min_price = 159_000
    active = True


class ProductImageFactory(DjangoModelFactory):
    class Meta:
        model = ProductImage

    product = factory.SubFactory(ProductFactory)
    image = factory.SubFactory(ImageFileFactory)
    source = factory.LazyAttribute(lambda o: f"images/{o.image.sha256[:12]}.png")
    position = 0
    fetch_status = FetchStatus.OK


class ListingFactory(DjangoModelFactory):
    class Meta:
        model = Listing

    product = factory.SubFactory(ProductFactory)
    mall = "무신사"
    seller = factory.Sequence(lambda n: f"셀러{n}")
    title = factory.LazyAttribute(lambda o: f"[정품] {o.product.title}")
    price = 179_000
    shipping_fee = 0
    url = factory.Sequence(lambda n: f"https://shop.example.com/goods/{n}")
    product_number = ""
    first_seen = factory.LazyFunction(timezone.now)
    last_seen = factory.LazyAttribute(lambda o: o.first_seen)


class ListingImageFactory(DjangoModelFactory):
    class Meta:
        model = ListingImage

    listing = factory.SubFactory(ListingFactory)
    image = factory.SubFactory(ImageFileFactory)
    source = factory.Sequence(lambda n: f"https://img.example.com/{n}.jpg")
    position = 0
    fetch_status = FetchStatus.OK


class ApiTokenFactory(DjangoModelFactory):
    """ApiTokenFactory(key="pm_test") stores the hash of that key; the key itself is not a field."""

    class Meta:
        model = ApiToken
        exclude = ("key",)

    key = factory.Sequence(lambda n: f"pm_test_key_{n}")
    name = factory.Sequence(lambda n: f"scraper-{n}")
    key_hash = factory.LazyAttribute(lambda o: hashlib.sha256(o.key.encode()).hexdigest())
    prefix = factory.LazyAttribute(lambda o: o.key[:8])
    user = factory.SubFactory(UserFactory)
    active = True
    scopes = factory.LazyFunction(lambda: list(ApiToken.Scope.values))  # ApiTokenFactory(scopes=["ingest"])


class ImportReportFactory(DjangoModelFactory):
    class Meta:
        model = ImportReport

    kind = "catalog"
    source = "catalog.csv"
