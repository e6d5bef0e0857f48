"""The review queue page with a large backlog: server-side time per request at p50/p95.

The bench database gets (once) enough extra SKUs, listings and pending matches to reach the
wanted backlog, written with bulk_create; each pair has a photo on both sides and, when the
bench database holds a real review-bucket decision (from the e2e section), that decision's
evidence and reasons, so the page renders what a reviewer really sees.

A merchandiser then walks the queue as with the J key: GET /review/?after=<cursor of the pair
shown>, which claims the next pair and renders it — a full page, and the htmx part. The list
view is timed too. Times are taken around django.test.Client calls in this process: the whole
Django request (middleware, claim transaction, queries, templates), no network.
"""
from __future__ import annotations

import random
import time
from decimal import Decimal
from typing import Any

from benchmarks.common import bench_merchandiser, percentile

PREFIX = "RVB-"
PER_SKU = 50


def _images():
    """A few stored photos to hang on the bench pairs (existing ones, else demo images stored now)."""
    from matcher.models import ImageFile
    from matcher.services import image_store

    found = list(ImageFile.objects.order_by("id")[:40])
    if len(found) >= 2:
        return found
    from benchmarks.images import demo_dir

    paths = sorted((demo_dir(quick=True) / "images").glob("*.jpg"))[:40]
    return [image_store(data=p.read_bytes()) for p in paths]


def _real_evidence() -> tuple[dict, list, str]:
    from matcher.models import Match

    real = (Match.objects.filter(bucket=Match.Bucket.REVIEW).exclude(product__sku__startswith=PREFIX)
            .order_by("-id").values("evidence", "reasons", "embedder").first())
    if real:
        return real["evidence"], real["reasons"], real["embedder"]
    return {}, ["bench pair"], "efficientnet_lite2@bench"


def ensure_backlog(pending: int) -> dict[str, Any]:
    """At least `pending` pending matches in the bench database; returns what was created."""
    from django.db import transaction
    from django.utils import timezone

    from matcher.models import Listing, ListingImage, Match, Product, ProductImage
    from matcher.services import thresholds_active

    have = Match.objects.filter(status=Match.Status.PENDING).count()
    if have >= pending:
        return {"pending": have, "created": 0}
    missing = pending - have
    rng = random.Random(7)
    images = _images()
    evidence, reasons, embedder = _real_evidence()
    thresholds = thresholds_active()
    now = timezone.now()
    start = Product.objects.filter(sku__startswith=PREFIX).count()
    n_products = -(-missing // PER_SKU)
    t = time.perf_counter()
    with transaction.atomic():
        products = Product.objects.bulk_create(
            [Product(sku=f"{PREFIX}{start + i:06d}", title=f"벤치 상품 {start + i} 구스다운 롱패딩 블랙",
                     brand="벤치", category="패딩", price=rng.randrange(50_000, 400_000, 100),
                     min_price=40_000, product_number=f"RB{start + i:06d}")
             for i in range(n_products)],
            batch_size=2000,
        )
        ProductImage.objects.bulk_create(
            [ProductImage(product=p, source=f"bench/{p.sku}.jpg", position=0, image=images[i % len(images)],
                          fetch_status="ok") for i, p in enumerate(products)],
            batch_size=5000,
        )
        listings: list[Listing] = []
        for p in products:
            for j in range(PER_SKU):
                if len(listings) >= missing:
                    break
                listings.append(Listing(
                    product=p, mall="쿠팡", seller="벤치셀러", title=f"{p.title} 정품 {j}",
                    price=rng.randrange(30_000, 400_000, 10), url=f"https://example-mall.test/bench/{p.sku}/{j}",
                    first_seen=now, last_seen=now,
                ))
        listings = Listing.objects.bulk_create(listings, batch_size=5000)
        ListingImage.objects.bulk_create(
            [ListingImage(listing=lst, source=f"bench/{lst.pk}.jpg", position=0,
                          image=images[(i * 7 + 1) % len(images)], fetch_status="ok")
             for i, lst in enumerate(listings)],
            batch_size=5000,
        )
        Match.objects.bulk_create(
            [Match(product_id=lst.product_id, listing=lst, bucket=Match.Bucket.REVIEW, status=Match.Status.PENDING,
                   confidence=Decimal(rng.randrange(7000, 9000)) / 10000, reasons=reasons, evidence=evidence,
                   embedder=embedder, thresholds=thresholds, fingerprint="bench", decided_at=now,
                   money_at_risk=rng.randrange(0, 200_000, 10))
             for lst in listings],
            batch_size=5000,
        )
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("ANALYZE matcher_match; ANALYZE matcher_listing; ANALYZE matcher_product")
    return {"pending": have + len(listings), "created": len(listings), "create_s": round(time.perf_counter() - t, 1),
            "real_evidence": bool(evidence)}


def _time(client, url: str, **headers: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    response = client.get(url, **headers)
    elapsed = (time.perf_counter() - t) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"GET {url} → {response.status_code}")
    return elapsed, response


def _summary(name: str, times: list[float]) -> dict[str, Any]:
    return {f"{name}_ms_p50": round(percentile(times, 50), 1), f"{name}_ms_p95": round(percentile(times, 95), 1),
            f"{name}_requests": len(times)}


def walk_queue(client, requests: int, *, htmx: bool) -> list[float]:
    from django.urls import reverse

    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    url = reverse("review:queue")
    _, response = _time(client, url, **headers)
    times = []
    for _ in range(requests):
        pair = response.context["pair"] if response.context else None
        next_url = f"{url}?after={pair.cursor}" if pair is not None else url
        elapsed, response = _time(client, next_url, **headers)
        times.append(elapsed)
    return times


def run(*, quick: bool, options: dict[str, Any]) -> dict[str, Any]:
    from benchmarks.common import django_setup

    django_setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment
    from django.urls import reverse

    from matcher.models import Match

    pending = int(options.get("review_pending") or (2_000 if quick else 100_000))
    requests = int(options.get("review_requests") or (30 if quick else 300))
    print(f"  backlog: ensuring {pending:,} pending pairs …", flush=True)
    backlog = ensure_backlog(pending)
    # Lets the test client hand back each response's template context (the cursor of the pair shown).
    setup_test_environment()
    client = Client()
    client.force_login(bench_merchandiser())
    _time(client, reverse("review:queue"))  # warm-up: imports, template compilation, connection

    cpu = time.process_time()
    full = walk_queue(client, requests, htmx=False)
    # Django's own CPU per request (PostgreSQL's is in its processes): steadier than wall time on a busy machine.
    cpu_ms = (time.process_time() - cpu) * 1000 / (requests + 1)
    part = walk_queue(client, requests, htmx=True)
    listing = [_time(client, reverse("review:list"))[0] for _ in range(max(10, requests // 3))]
    with CaptureQueriesContext(connection) as queries:
        walk_queue(client, 1, htmx=False)
    results = {
        "review_pending_pairs": Match.objects.filter(status=Match.Status.PENDING).count(),
        "review_backlog": backlog,
        "review_page_ms_p95": round(percentile(full, 95), 1),
        "review_page_ms_p50": round(percentile(full, 50), 1),
        "review_page_queries": len(queries.captured_queries) // 2,
        "review_page_python_cpu_ms_mean": round(cpu_ms, 1),
        # Of one request walked under capture: time inside SQL, as Django's cursor wrapper saw it.
        "review_page_sql_ms_sample": round(sum(float(q["time"]) for q in queries.captured_queries) * 1000 / 2, 1),
        "review_page_slowest_sql_ms_sample": round(max((float(q["time"]) for q in queries.captured_queries),
                                                       default=0) * 1000, 1),
        **_summary("review_page_htmx", part),
        **_summary("review_list", listing),
        "review_notes": "GET /review/?after=<cursor> as a merchandiser walking the queue (claims the next pair); "
                        "server-side time through django.test.Client in one process",
    }
    print(f"  queue page p50 {results['review_page_ms_p50']} ms, p95 {results['review_page_ms_p95']} ms "
          f"({requests} requests, {results['review_pending_pairs']:,} pending)", flush=True)
    return results
