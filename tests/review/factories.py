"""Factories for the review app's tests: pairs with real images, matches with evidence, decisions."""

from __future__ import annotations

import hashlib
import io
from decimal import Decimal
from typing import Any

import factory
from django.core.files.base import ContentFile
from django.utils import timezone
from factory.django import DjangoModelFactory

from matcher.models import FetchStatus, ImageFile, ListingImage, Match, ProductImage
from tests.factories import ListingFactory, ProductFactory, UserFactory  # noqa: F401  (re-exported)


def jpeg_image(
    colour: tuple[int, int, int],
    *,
    size: tuple[int, int] = (300, 400),
    accent: tuple[int, int, int] | None = None,
    label: str = "",
) -> ImageFile:
    """A small real JPEG stored through ImageFile: a garment-like shape on a light background."""
    from PIL import Image, ImageDraw

    w, h = size
    img = Image.new("RGB", size, (238, 238, 240))
    draw = ImageDraw.Draw(img)
    # body, sleeves, collar: enough shape to see the zoom and the outlined region work
    draw.rectangle([w * 0.28, h * 0.2, w * 0.72, h * 0.85], fill=colour)
    draw.polygon(
        [(w * 0.28, h * 0.2), (w * 0.08, h * 0.55), (w * 0.18, h * 0.6), (w * 0.3, h * 0.35)], fill=colour
    )
    draw.polygon(
        [(w * 0.72, h * 0.2), (w * 0.92, h * 0.55), (w * 0.82, h * 0.6), (w * 0.7, h * 0.35)], fill=colour
    )
    draw.ellipse([w * 0.42, h * 0.15, w * 0.58, h * 0.26], fill=(238, 238, 240))
    if accent:
        draw.rectangle([w * 0.45, h * 0.4, w * 0.55, h * 0.5], fill=accent)
    if label:
        draw.text((8, 8), label, fill=(60, 60, 60))
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=85)
    data = buffer.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    existing = ImageFile.objects.filter(sha256=sha).first()
    if existing:
        return existing
    return ImageFile.objects.create(
        sha256=sha,
        file=ContentFile(data, name=f"{sha}.jpg"),
        width=w,
        height=h,
        format="JPEG",
        bytes=len(data),
    )


def evidence_full(ours: ImageFile | None, theirs: ImageFile | None, **overrides: Any) -> dict[str, Any]:
    """Evidence as matcher.analysis.evidence_json wrote it before the versioned record (a legacy row)."""
    ev: dict[str, Any] = {
        "cosine": 0.912,
        "cosine_regions": ["upper", "whole"],
        "inliers": 34,
        "inlier_colour_agreement": 0.91,
        "colour_distance": 0.08,
        "product_number": "absent",
        "conflicts": [],
        "ocr": {"ours": "", "theirs": "NUPTSE"},
        "llm": {
            "is_match": True,
            "confidence": 0.86,
            "reasoning": "같은 눕시 숏패딩, 로고 위치와 배색 일치.",
            "model": "gemini-flash-latest",
            "prompt_version": "v3",
            "cost_usd": "0.000412",
            "matched_features": ["로고", "배색"],
            "mismatched_features": [],
        },
    }
    if ours is not None and theirs is not None:
        ev["best_pair"] = {
            "ours": {
                "image_sha": ours.sha256,
                "box": [
                    int(ours.width * 0.25),
                    int(ours.height * 0.18),
                    int(ours.width * 0.75),
                    int(ours.height * 0.86),
                ],
            },
            "theirs": {
                "image_sha": theirs.sha256,
                "box": [
                    int(theirs.width * 0.2),
                    int(theirs.height * 0.15),
                    int(theirs.width * 0.8),
                    int(theirs.height * 0.9),
                ],
            },
        }
    ev.update(overrides)
    return ev


def _active_thresholds():
    from matcher.services import thresholds_active

    return thresholds_active()


class MatchFactory(DjangoModelFactory):
    class Meta:
        model = Match

    listing = factory.SubFactory(ListingFactory)
    product = factory.LazyAttribute(lambda o: o.listing.product)
    bucket = Match.Bucket.REVIEW
    status = Match.Status.PENDING
    confidence = Decimal("0.8100")
    reasons = factory.LazyFunction(lambda: ["review at confidence 0.810 (policy 1)"])
    evidence = factory.LazyFunction(dict)
    embedder = "efficientnet_lite2@test"
    thresholds = factory.LazyFunction(lambda: _active_thresholds())
    fingerprint = factory.Sequence(lambda n: f"fp{n}")
    money_at_risk = 0
    decided_at = factory.LazyFunction(timezone.now)


def make_pair(
    *,
    images: bool = False,
    colour: tuple[int, int, int] = (30, 40, 60),
    their_colour: tuple[int, int, int] | None = None,
    product=None,
    **match_kwargs: Any,
) -> Match:
    """A product, a competitor listing and their Match; with images=True real JPEGs and full evidence."""
    product = product or ProductFactory()
    listing_kwargs = match_kwargs.pop("listing_kwargs", {})
    listing = ListingFactory(product=product, **listing_kwargs)
    if images:
        ours = jpeg_image(colour, label=product.sku)
        theirs = jpeg_image(
            their_colour or colour, size=(360, 420), accent=(220, 220, 220), label=f"listing {listing.pk}"
        )
        ProductImage.objects.create(
            product=product, image=ours, source=f"ours/{ours.sha256[:12]}.jpg", fetch_status=FetchStatus.OK
        )
        ListingImage.objects.create(
            listing=listing,
            image=theirs,
            source=f"https://img.example.com/{theirs.sha256[:12]}.jpg",
            fetch_status=FetchStatus.OK,
        )
        match_kwargs.setdefault("evidence", evidence_full(ours, theirs))
    return MatchFactory(listing=listing, product=product, **match_kwargs)


def reviewer(name: str = "reviewer", *, admin: bool = False):
    return UserFactory(username=name, groups=["admin"] if admin else ["merchandiser"])
