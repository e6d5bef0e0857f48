"""The hourly re-match: SKUs whose listings are new or changed since their decision get a match run,
one run at a time; unchanged and not-yet-decidable listings start nothing."""
from __future__ import annotations

import csv
import io

import pytest
from django.core.management import call_command

from matcher.models import FetchStatus, Listing, Match, MatchRun
from matcher.runs import (
    match_run_batch_process,
    match_run_for_changes,
    match_run_start,
    products_with_changed_listings,
)
from matcher.tasks import match_changed_listings
from tests.factories import (
    ImageFileFactory,
    ListingFactory,
    ListingImageFactory,
    ProductFactory,
    ProductImageFactory,
)
from tests.pricing.factories import PricingMatchFactory


def decidable_listing(product=None, **kwargs) -> Listing:  # noqa: ANN001
    product = product or ProductFactory()
    if not product.images.exists():
        ProductImageFactory(product=product, image=ImageFileFactory(), fetch_status=FetchStatus.OK)
    listing = ListingFactory(product=product, content_fingerprint=kwargs.pop("content_fingerprint", "fp-1"), **kwargs)
    ListingImageFactory(listing=listing, image=ImageFileFactory(), fetch_status=FetchStatus.OK)
    return listing


@pytest.mark.django_db
def test_undecided_and_changed_listings_are_found_and_unchanged_or_undecidable_ones_are_not():
    undecided = decidable_listing()
    changed = decidable_listing()
    PricingMatchFactory(listing=changed, product=changed.product, listing_fingerprint="fp-old")
    unchanged = decidable_listing()
    PricingMatchFactory(listing=unchanged, product=unchanged.product, listing_fingerprint="fp-1")
    waiting = ListingFactory(product=ProductFactory())  # no photo downloaded yet: nothing to compare
    ListingImageFactory(listing=waiting, image=None, fetch_status=FetchStatus.PENDING)
    ours_missing = ListingFactory(product=ProductFactory())  # a SKU without a photo of ours
    ListingImageFactory(listing=ours_missing, image=ImageFileFactory(), fetch_status=FetchStatus.OK)
    inactive = decidable_listing(product=ProductFactory(active=False))

    found = products_with_changed_listings()

    assert found == sorted([undecided.product_id, changed.product_id])
    assert {unchanged.product_id, waiting.product_id, ours_missing.product_id, inactive.product_id}.isdisjoint(found)


@pytest.mark.django_db
def test_one_run_at_a_time_and_nothing_when_nothing_changed(django_capture_on_commit_callbacks):
    assert match_run_for_changes(enqueue=False) is None
    listing = decidable_listing()
    MatchRun.objects.create(status=MatchRun.Status.RUNNING)
    assert match_run_for_changes(enqueue=False) is None  # the next tick picks it up
    MatchRun.objects.update(status=MatchRun.Status.DONE)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run_id = match_changed_listings()  # the beat task's body

    run = MatchRun.objects.get(pk=run_id)
    assert (run.scope, run.product_ids, run.batches_total) == (MatchRun.Scope.SKUS, [listing.product_id], 1)
    assert len(callbacks) == 1  # its batch is enqueued after commit


@pytest.mark.django_db
@pytest.mark.slow
def test_a_re_scraped_title_is_re_decided_by_the_next_tick_through_the_real_pipeline(demo_dir, imported_demo):
    first = match_run_start(product_ids=None, enqueue=False)
    for batch in first.batches.all():
        match_run_batch_process(batch_id=batch.id)
    # The real decisions carry the content they were made on: nothing is waiting.
    assert Match.objects.exists() and products_with_changed_listings() == []

    with (demo_dir / "listings.csv").open(encoding="utf-8-sig", newline="") as fh:
        row = next(csv.DictReader(fh))
    listing = Listing.objects.get(url=row["url"], product__sku=row["sku"])
    before = Match.objects.get(listing=listing)
    path = demo_dir / "listings_rescraped.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(row))
        writer.writeheader()
        writer.writerow({**row, "title": row["title"] + " 키즈"})
    call_command("import_listings", str(path), "--no-progress", stdout=io.StringIO())

    assert products_with_changed_listings() == [listing.product_id]
    run = match_run_for_changes(enqueue=False)
    assert run is not None and run.product_ids == [listing.product_id]
    for batch in run.batches.all():
        match_run_batch_process(batch_id=batch.id)

    after = Match.objects.get(listing=listing)
    listing.refresh_from_db()
    assert after.decided_at > before.decided_at and after.run_id == run.pk
    assert after.listing_fingerprint == listing.content_fingerprint != before.listing_fingerprint
    assert products_with_changed_listings() == []
