"""The periodic re-match: a run over the SKUs whose competitor listings changed since they were decided.

A listing needs deciding when it never was, or when its content fingerprint (title, price, shipping,
product number, image hashes) is no longer the one its decision was made on (`Match.listing_fingerprint`).
Only listings with a downloaded photo and SKUs with a photo of ours count: the others cannot be decided
yet and would otherwise start a run on every tick. One run at a time: while a match run is queued or
running, the tick does nothing and the next one picks up what is still waiting.
"""
from __future__ import annotations

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q

from matcher.models import Listing, ListingImage, MatchRun, ProductImage
from matcher.runs.start import match_run_start

# A tick decides at most this many SKUs; the rest wait for the next one (an hour at most).
MATCH_CHANGES_MAX_SKUS = 5000


def products_with_changed_listings(*, limit: int = MATCH_CHANGES_MAX_SKUS) -> list[int]:
    """Active SKUs, in id order, with a decidable listing that is undecided or changed since. 1 query."""
    theirs = ListingImage.objects.filter(listing=OuterRef("pk"), image__isnull=False)
    ours = ProductImage.objects.filter(product=OuterRef("product_id"), image__isnull=False)
    changed = (
        Listing.objects.filter(product__active=True)
        .filter(Q(match__isnull=True) | ~Q(match__listing_fingerprint=F("content_fingerprint")))
        .filter(Exists(theirs), Exists(ours))
    )
    return list(changed.order_by("product_id").values_list("product_id", flat=True).distinct()[:limit])


@transaction.atomic
def match_run_for_changes(*, limit: int = MATCH_CHANGES_MAX_SKUS, enqueue: bool = True) -> MatchRun | None:
    """Start a run over the SKUs whose listings changed (None: a run is going, or nothing changed)."""
    active = MatchRun.objects.select_for_update().filter(status__in=[MatchRun.Status.QUEUED, MatchRun.Status.RUNNING])
    if active.exists():
        return None
    product_ids = products_with_changed_listings(limit=limit)
    if not product_ids:
        return None
    return match_run_start(product_ids=product_ids, enqueue=enqueue)
