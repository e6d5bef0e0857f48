"""Match runs through the real stages, a real Celery worker and the real database."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from matcher.models import Listing, Match, MatchRun, MatchRunBatch, Region
from matcher.runs import BATCH_MAX_ATTEMPTS, match_run_batch_process, match_run_resume, match_run_start

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _wait_done(run: MatchRun, timeout: float = 1200) -> MatchRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status in (MatchRun.Status.DONE, MatchRun.Status.FAILED):
            return run
        time.sleep(0.5)
    raise AssertionError(f"run {run.id} not finished: {run.batches_done}/{run.batches_total}")


def test_a_run_through_the_worker_decides_every_listing_and_never_auto_matches_a_near_miss(
    imported_demo, vision_worker, settings
):
    settings.MATCHER_BATCH_SIZE = 2
    run = _wait_done(match_run_start(product_ids=None))

    assert run.status == MatchRun.Status.DONE
    active = Listing.objects.filter(product__active=True)
    assert run.batches_total >= 1 and run.batches_done == run.batches_total
    decided = {m.listing.url: m for m in Match.objects.select_related("listing")}
    with_images = active.filter(images__fetch_status="ok").distinct().count()
    assert len(decided) == with_images == run.listings_done
    for url, match in decided.items():
        assert match.embedder.startswith("efficientnet_lite2")  # ":bf16@…" with the default runtime
        assert match.thresholds.version >= 1
        assert match.reasons, "every decision says why"
        if imported_demo[url]["same_product"] == "0":
            assert match.bucket != Match.Bucket.AUTO, (imported_demo[url]["kind"], match.reasons)
    # Region vectors are stored for reverse search, one set per image.
    assert Region.objects.filter(embedder=decided[next(iter(decided))].embedder).exists()
    assert set(run.timings) >= {"regions", "embed", "decide_total"}


def test_a_second_run_decides_nothing_unchanged_and_force_re_decides(imported_demo, settings):
    first = match_run_start(product_ids=None, enqueue=False)
    for batch in first.batches.all():
        match_run_batch_process(batch_id=batch.id)
    first.refresh_from_db()
    rows_before = Match.objects.count()
    decided_at = dict(Match.objects.values_list("id", "decided_at"))

    again = match_run_start(product_ids=None, enqueue=False)
    for batch in again.batches.all():
        match_run_batch_process(batch_id=batch.id)
    again.refresh_from_db()
    assert again.listings_done == 0
    assert again.listings_skipped == first.listings_done + first.listings_skipped
    assert Match.objects.count() == rows_before
    assert dict(Match.objects.values_list("id", "decided_at")) == decided_at

    forced = match_run_start(product_ids=None, force=True, enqueue=False)
    for batch in forced.batches.all():
        match_run_batch_process(batch_id=batch.id)
    forced.refresh_from_db()
    assert forced.listings_done == first.listings_done
    assert Match.objects.count() == rows_before  # re-decided in place, never duplicated


def test_a_changed_listing_is_decided_again(imported_demo):
    run = match_run_start(product_ids=None, enqueue=False)
    for batch in run.batches.all():
        match_run_batch_process(batch_id=batch.id)
    listing = Match.objects.select_related("listing").first().listing
    from matcher.services import listing_fingerprint_refresh

    Listing.objects.filter(id=listing.id).update(price=listing.price + 1000)
    listing_fingerprint_refresh(listing_id=listing.id)

    again = match_run_start(product_ids=[listing.product_id], enqueue=False)
    for batch in again.batches.all():
        match_run_batch_process(batch_id=batch.id)
    again.refresh_from_db()
    assert again.listings_done == 1


def test_a_batch_left_running_by_a_dead_worker_is_resumed_without_duplicates(imported_demo, settings):
    settings.MATCHER_BATCH_SIZE = 10
    settings.MATCHER_BATCH_LEASE_S = 60
    run = match_run_start(product_ids=None, enqueue=False)
    batch = run.batches.get()
    # What a worker killed mid-batch leaves behind: the batch claimed, nothing written, its heartbeat stopped.
    stopped = timezone.now() - timedelta(minutes=5)
    MatchRunBatch.objects.filter(id=batch.id).update(
        state=MatchRunBatch.State.RUNNING, claimed_at=stopped, heartbeat_at=stopped, attempts=1
    )
    # A live claim is respected...
    MatchRunBatch.objects.filter(id=batch.id).update(heartbeat_at=timezone.now())
    assert match_run_batch_process(batch_id=batch.id) is False
    # ...an expired one is taken over.
    MatchRunBatch.objects.filter(id=batch.id).update(heartbeat_at=stopped)
    resumed = match_run_resume(run_id=run.id, enqueue=False)
    assert resumed.requeued_ids == (batch.id,) and resumed.held == ()
    assert match_run_batch_process(batch_id=batch.id) is True
    run.refresh_from_db()
    assert run.status == MatchRun.Status.DONE
    assert Match.objects.count() == run.listings_done
    # Running the same message again (a redelivery) changes nothing.
    assert match_run_batch_process(batch_id=batch.id) is False
    assert Match.objects.count() == run.listings_done


@pytest.mark.django_db  # not transactional: the re-send waits for the commit, where it is captured
def test_a_batch_out_of_time_is_sent_again_and_failed_after_the_last_attempt(
    imported_demo, settings, django_capture_on_commit_callbacks
):
    from unittest import mock

    from celery.exceptions import SoftTimeLimitExceeded

    run = match_run_start(product_ids=None, enqueue=False)
    batch = run.batches.first()
    with mock.patch("matcher.runs.batch.decide_products", side_effect=SoftTimeLimitExceeded()):
        for attempt in range(1, BATCH_MAX_ATTEMPTS + 1):
            with django_capture_on_commit_callbacks(execute=False) as sent, pytest.raises(SoftTimeLimitExceeded):
                match_run_batch_process(batch_id=batch.id)
            batch.refresh_from_db()
            run.refresh_from_db()
            if attempt < BATCH_MAX_ATTEMPTS:
                # Handed back and sent again at once: the run does not wait for anyone's Resume.
                assert batch.state == MatchRunBatch.State.PENDING and len(sent) == 1
                assert run.failures == 0 and run.batches_done == 0
    assert batch.state == MatchRunBatch.State.FAILED and "soft time limit" in batch.error
    assert run.failures == 1 and run.batches_done == 1


def test_an_unreadable_photo_fails_that_photo_not_the_batch(imported_demo):
    from django.core.files.storage import default_storage
    from django.db.models import Count

    from matcher.models import FetchStatus, ImageFile, ListingImage, ProductImage

    # Two competitor photos used nowhere else: one file gone from storage, one overwritten with junk.
    used_once = [
        row["image"]
        for row in ListingImage.objects.filter(fetch_status=FetchStatus.OK)
        .values("image")
        .annotate(n=Count("id"))
        .filter(n=1)
        .order_by("image")
    ]
    ours = set(ProductImage.objects.values_list("image", flat=True))
    gone, junk = ImageFile.objects.filter(id__in=[i for i in used_once if i not in ours]).order_by("id")[:2]
    default_storage.delete(gone.file.name)
    with default_storage.open(junk.file.name, "wb") as fh:
        fh.write(b"not an image at all")
    listings_hit = set(ListingImage.objects.filter(image__in=[gone, junk]).values_list("listing", flat=True))
    expected = Listing.objects.filter(images__fetch_status=FetchStatus.OK).distinct().count()

    run = match_run_start(product_ids=None, enqueue=False)
    for batch in run.batches.all():
        assert match_run_batch_process(batch_id=batch.id) is True
    run.refresh_from_db()

    assert run.status == MatchRun.Status.DONE
    assert run.failures == 0
    assert set(run.batches.values_list("state", flat=True)) == {MatchRunBatch.State.DONE}
    for image in (gone, junk):
        ref = ListingImage.objects.get(image=image)
        assert ref.fetch_status == FetchStatus.FAILED
        assert "unreadable" in ref.fetch_error
        assert any(image.sha256[:12] in e for e in run.errors)
    assert run.counts["unreadable_images"] == 2
    # Every other listing is decided; a hit listing is decided on the photos it has left, or
    # skipped when none are left.
    for listing in Listing.objects.filter(id__in=listings_hit):
        left = listing.images.filter(fetch_status=FetchStatus.OK).exists()
        assert Match.objects.filter(listing=listing).exists() == left
    left_without = [
        lid for lid in listings_hit if not ListingImage.objects.filter(listing=lid, fetch_status=FetchStatus.OK).exists()
    ]
    assert run.listings_done == expected - len(left_without)
    assert Match.objects.count() == run.listings_done
