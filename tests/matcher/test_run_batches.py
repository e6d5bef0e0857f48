"""Match runs are cut into batches by listing count, so one batch's work stays inside the task time limit."""
from __future__ import annotations

import pytest

from matcher.models import MatchRunBatch
from matcher.runs import batch_product_ids, match_run_start
from tests.factories import ListingFactory, ProductFactory


def test_skus_are_grouped_until_the_next_would_pass_the_listing_cap():
    listings = {1: 50, 2: 50, 3: 30, 4: 10, 5: 120, 6: 0, 7: 5}
    groups = batch_product_ids([1, 2, 3, 4, 5, 6, 7], listings, max_listings=100, max_skus=8)
    assert groups == [[1, 2], [3, 4], [5], [6, 7]]  # 5 alone is over the cap: a batch of its own
    assert sorted(pid for g in groups for pid in g) == [1, 2, 3, 4, 5, 6, 7]  # nothing lost or repeated


def test_the_sku_cap_still_holds_for_skus_with_few_listings():
    ids = list(range(1, 11))
    groups = batch_product_ids(ids, {pid: 1 for pid in ids}, max_listings=100, max_skus=4)
    assert groups == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]
    assert batch_product_ids([], {}, max_listings=100, max_skus=4) == []


@pytest.mark.django_db
def test_a_run_over_skus_with_many_listings_gets_batches_of_about_the_listing_cap(settings):
    settings.MATCHER_BATCH_SIZE = 8
    settings.MATCHER_BATCH_LISTINGS = 100
    big, big2, small, huge = (ProductFactory() for _ in range(4))
    for product, n in ((big, 50), (big2, 50), (small, 10), (huge, 130)):
        ListingFactory.create_batch(n, product=product)

    run = match_run_start(product_ids=[big.id, big2.id, small.id, huge.id], enqueue=False)

    batches = [b.product_ids for b in MatchRunBatch.objects.filter(run=run).order_by("id")]
    assert batches == [[big.id, big2.id], [small.id], [huge.id]]
    assert run.batches_total == 3 and run.listings_total == 240
