"""Downloading the images an import left pending (URL references), with retries and backoff."""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from django.conf import settings
from django.db import transaction
from django.db.models import F

from matcher import images as image_io
from matcher.models import FetchStatus, ListingImage, ProductImage
from matcher.services.image_refs import image_store
from matcher.services.ingest import listing_fingerprint_refresh


@dataclass
class ImageFetchSummary:
    ok: int = 0
    failed: int = 0
    retry: int = 0  # transient failures left pending for another attempt


def image_fetch_backoff(retries: int) -> float:
    """Seconds before attempt `retries + 1`: exponential with full jitter, so a burst of failures spreads out."""
    base = settings.IMAGE_FETCH_RETRY_BASE_S
    ceiling = min(base * (2**retries), settings.IMAGE_FETCH_RETRY_MAX_S)
    return random.uniform(ceiling / 2, ceiling)


def image_refs_fetch(*, owner: Literal["product", "listing"], owner_id: int, final_attempt: bool) -> ImageFetchSummary:
    """Download the owner's pending URL images; each result is written to its image row as it arrives.

    Network I/O happens outside any transaction. Safe to run twice: a row already fetched is no
    longer pending, and the write only lands while the row still points at the same source.
    On `final_attempt` a transient failure is recorded as failed instead of left pending.
    """
    model: type[ProductImage | ListingImage] = ProductImage if owner == "product" else ListingImage
    owner_field = f"{owner}_id"
    summary = ImageFetchSummary()
    refs = list(model.objects.filter(**{owner_field: owner_id}, fetch_status=FetchStatus.PENDING))
    for ref in refs:
        if not ref.source.lower().startswith(("http://", "https://")):
            continue  # local files are stored during the import, never fetched
        same_ref = model.objects.filter(pk=ref.pk, source=ref.source, fetch_status=FetchStatus.PENDING)
        try:
            fetched = image_io.fetch(
                ref.source,
                max_bytes=settings.IMAGE_MAX_BYTES,
                timeout=settings.IMAGE_FETCH_TIMEOUT_S,
                max_redirects=settings.IMAGE_FETCH_MAX_REDIRECTS,
                allowed_hosts=settings.IMAGE_FETCH_ALLOWED_HOSTS,
            )
            with transaction.atomic():
                image = image_store(data=fetched.data)
                same_ref.update(
                    image=image, fetch_status=FetchStatus.OK, fetch_error="", fetch_attempts=F("fetch_attempts") + 1
                )
            summary.ok += 1
        except image_io.FetchTransient as exc:
            status = FetchStatus.FAILED if final_attempt else FetchStatus.PENDING
            same_ref.update(fetch_status=status, fetch_error=exc.reason, fetch_attempts=F("fetch_attempts") + 1)
            if final_attempt:
                summary.failed += 1
            else:
                summary.retry += 1
        except image_io.ImageError as exc:  # refused or not an image: another try cannot help
            same_ref.update(
                fetch_status=FetchStatus.FAILED, fetch_error=exc.reason, fetch_attempts=F("fetch_attempts") + 1
            )
            summary.failed += 1
    if owner == "listing" and summary.ok:
        listing_fingerprint_refresh(listing_id=owner_id)
    return summary
