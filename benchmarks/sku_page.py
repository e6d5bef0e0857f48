"""The SKU page for a SKU with 200 competitor listings and a long history: server-side time per request.

The bench database gets (once) one SKU with 200 listings, each with a photo, in every state (automatic
and confirmed matches, pending, rejected, undecided), 500 competitor price observations, 100 price
changes, 50 proposals and 150 audit entries, written with bulk_create. A merchandiser then opens
/pricing/sku/<sku>/ repeatedly — the full page and its htmx part — through django.test.Client in this
process: the whole Django request (middleware, queries, templates), no network.
"""
from __future__ import annotations

import random
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

SKU = "SKB-000200"
LISTINGS = 200


def ensure_sku() -> dict[str, Any]:
    """The bench SKU with its listings and history; returns what was created."""
    from django.db import transaction
    from django.utils import timezone

    from benchmarks.review_page import _images
    from matcher.models import Listing, ListingImage, Match, Product
    from matcher.services import thresholds_active
    from pricing.models import CompetitorPriceObservation, PriceAuditEntry, PriceChange, PriceProposal

    if Product.objects.filter(sku=SKU).exists():
        return {"created": False}
    rng = random.Random(11)
    images = _images()
    thresholds = thresholds_active()
    now = timezone.now()
    t = time.perf_counter()
    with transaction.atomic():
        product = Product.objects.create(sku=SKU, title="벤치 상품 구스다운 롱패딩 블랙", brand="벤치", category="패딩",
                                         price=189_000, cost=120_000, product_number="SKB200")
        listings = Listing.objects.bulk_create([
            Listing(product=product, mall=["무신사", "29CM", "W컨셉", "SSG", "쿠팡"][i % 5], seller=f"셀러{i}",
                    title=f"{product.title} 정품 {i}", price=rng.randrange(150_000, 260_000, 100),
                    shipping_fee=rng.choice([0, 0, 2_500, 3_000]), url=f"https://example-mall.test/skb/{i}",
                    first_seen=now - timedelta(days=30), last_seen=now - timedelta(hours=rng.randrange(0, 96)))
            for i in range(LISTINGS)
        ])
        ListingImage.objects.bulk_create([
            ListingImage(listing=lst, source=f"bench/skb/{lst.pk}.jpg", position=0, image=images[i % len(images)],
                         fetch_status="ok")
            for i, lst in enumerate(listings)
        ])
        states = [(Match.Bucket.AUTO, Match.Status.MATCHED, False)] * 10 + [
            (Match.Bucket.REVIEW, Match.Status.MATCHED, True)] * 5 + [
            (Match.Bucket.REVIEW, Match.Status.PENDING, False)] * 100 + [
            (Match.Bucket.REJECT, Match.Status.REJECTED, False)] * 80
        Match.objects.bulk_create([
            Match(product=product, listing=lst, bucket=bucket, status=status, decided_by_human=human,
                  confidence=Decimal(rng.randrange(5000, 9900)) / 10000, reasons=["bench"], evidence={},
                  embedder="efficientnet_lite2@bench", thresholds=thresholds, fingerprint="bench", decided_at=now)
            for lst, (bucket, status, human) in zip(listings, states)  # the last 5 listings stay undecided
        ])
        CompetitorPriceObservation.objects.bulk_create([
            CompetitorPriceObservation(product=product, observed_at=now - timedelta(hours=500 - i),
                                       cheapest_total=rng.randrange(170_000, 200_000, 100), cheapest_mall="무신사",
                                       counted_listings=15, our_price=189_000, cause="match_run")
            for i in range(500)
        ])
        proposals = PriceProposal.objects.bulk_create([
            PriceProposal(product=product, status=PriceProposal.Status.APPLIED, cause="match_run", old_price=190_000,
                          new_price=189_000, floor=132_000, notes=["bench"])
            for _ in range(50)
        ])
        changes = PriceChange.objects.bulk_create([
            PriceChange(product=product, kind=PriceChange.Kind.APPLY, old_price=190_000, new_price=189_000,
                        reason="bench", proposal=proposals[i % 50], automatic=True)
            for i in range(100)
        ])
        PriceAuditEntry.objects.bulk_create([
            PriceAuditEntry(action=PriceAuditEntry.Action.APPLIED, product=product, sku=SKU, old_price=190_000,
                            new_price=189_000, reason="bench", cause=f"review:approve:match={i}",
                            change=changes[i % 100], automatic=True)
            for i in range(150)
        ])
    return {"created": True, "create_s": round(time.perf_counter() - t, 1)}


def run(*, quick: bool, options: dict[str, Any]) -> dict[str, Any]:
    from benchmarks.common import django_setup

    django_setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment
    from django.urls import reverse

    from benchmarks.common import bench_merchandiser
    from benchmarks.review_page import _summary, _time

    requests = int(options.get("sku_requests") or (30 if quick else 200))
    made = ensure_sku()
    try:
        setup_test_environment()  # the test client's host; the review section may have done it already
    except RuntimeError:
        pass
    client = Client()
    client.force_login(bench_merchandiser())
    url = reverse("pricing:sku_history", args=[SKU])
    _time(client, url)  # warm-up: imports, template compilation, connection
    full = [_time(client, url)[0] for _ in range(requests)]
    part = [_time(client, url, HTTP_HX_REQUEST="true")[0] for _ in range(requests)]
    with CaptureQueriesContext(connection) as queries:
        _time(client, url)
    results = {
        "sku_page_listings": LISTINGS,
        "sku_page_setup": made,
        **_summary("sku_page", full),
        **_summary("sku_page_htmx", part),
        "sku_page_queries": len(queries.captured_queries),
        "sku_page_notes": f"GET /pricing/sku/{SKU}/ as a merchandiser: {LISTINGS} listings with photos, 500 "
                          "observations, 100 changes, 50 proposals; server-side time through django.test.Client",
    }
    print(f"  SKU page p50 {results['sku_page_ms_p50']} ms, p95 {results['sku_page_ms_p95']} ms "
          f"({requests} requests, {results['sku_page_queries']} queries)", flush=True)
    return results
