"""The catalogue page with a large catalogue: server-side time per request at p50/p95 and its queries.

The bench database gets (once) ``skus`` SKUs with ``listings`` competitor listings spread over them,
each listing with a decision: 5 % matched (confirmed), 10 % pending, the rest rejected; listings are
seen within the last 60 hours, so some confirmed ones are stale under the 48-hour default. A few
policy layers (a brand with a 12-hour cut-off, a category without shipping, SKU layers) make the
per-SKU resolution do real work, and a fifth of the SKUs have a price change. Rows go in by COPY.

A merchandiser (django.test.Client, logged in) then opens the page in the ways the page is used:
the default order, the htmx part, sorted by gap, filtered by position, "competitor below our
floor", a text search, a later page. Times are taken around the Client call in this process: the
whole Django request (middleware, queries, template), no network.

The issue's target is 50,000 SKUs with 2.5M listings; generating 2.5M listings with their matches
takes long on two shared cores, so the default here is 50,000 × 500,000 and the figures say the
scale they were measured at (``--catalogue-listings 2500000`` runs the full size).
"""
from __future__ import annotations

import random
import time
from datetime import timedelta
from typing import Any

from benchmarks.common import bench_merchandiser, percentile

PREFIX = "CTB-"
BRANDS = ("노스페이스", "파타고니아", "아크테릭스", "디스커버리", "코오롱스포츠", "K2", "블랙야크", "네파")
CATEGORIES = ("패딩", "플리스", "자켓", "베스트", "티셔츠", "맨투맨", "후드")
MALLS = ("쿠팡", "11번가", "G마켓", "옥션", "SSG", "무신사", "네이버스마트스토어")


def _copy(table: str, columns: list[str], rows: Any) -> int:
    """COPY rows (tuples) into ``table``; returns how many."""
    from django.db import connection

    n = 0
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg's own cursor: COPY is not in the DB-API
        with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                n += 1
    return n


def ensure_catalogue(skus: int, listings: int) -> dict[str, Any]:
    """At least ``skus`` bench SKUs and ``listings`` listings in the bench database; returns what was made."""
    from django.db import connection, transaction
    from django.utils import timezone

    from matcher.models import Listing, Match, Product
    from matcher.services import thresholds_active
    from pricing.models import PriceChange, PricingPolicy

    have_skus = Product.objects.filter(sku__startswith=PREFIX).count()
    have_listings = Listing.objects.filter(product__sku__startswith=PREFIX).count() if have_skus else 0
    if have_skus >= skus and have_listings >= listings:
        return {"skus": have_skus, "listings": have_listings, "created": False}
    if have_skus:
        # A different size: start this dataset again rather than mix two.
        # (Django cascades in Python; the bench rows have only these dependants.)
        with connection.cursor() as cursor:
            for table in ("matcher_match", "pricing_pricechange", "matcher_listing"):
                cursor.execute(f"DELETE FROM {table} WHERE product_id IN "
                               "(SELECT id FROM matcher_product WHERE sku LIKE %s)", [PREFIX + "%"])
            cursor.execute("DELETE FROM matcher_product WHERE sku LIKE %s", [PREFIX + "%"])
    rng = random.Random(30)
    now = timezone.now()
    thresholds = thresholds_active()
    started = time.perf_counter()
    with transaction.atomic():
        products = [
            (f"{PREFIX}{i:06d}", f"CT{i:06d}A", f"ct{i:06d}a", BRANDS[i % len(BRANDS)],
             f"{BRANDS[i % len(BRANDS)]} 벤치 상품 {i} {CATEGORIES[i % len(CATEGORIES)]}", CATEGORIES[i % len(CATEGORIES)],
             "black", "{}", price, int(price * 0.5), None if i % 3 else int(price * 0.8), True, now, now)
            for i in range(skus) for price in [rng.randrange(50_000, 400_000, 100)]
        ]
        _copy(Product._meta.db_table,
              ["sku", "product_number", "product_number_norm", "brand", "title", "category", "colour", "attributes",
               "price", "cost", "min_price", "active", "created_at", "updated_at"], products)
        ids = dict(Product.objects.filter(sku__startswith=PREFIX).values_list("sku", "id"))
        prices = {ids[p[0]]: p[8] for p in products}
        product_ids = sorted(prices)

        def listing_rows():  # noqa: ANN202
            for n in range(listings):
                pid = product_ids[n % len(product_ids)]
                seen = now - timedelta(minutes=rng.randrange(0, 60 * 60))
                yield (pid, MALLS[n % len(MALLS)], "벤치셀러", f"벤치 경쟁 상품 {n}",
                       max(0, int(prices[pid] * rng.uniform(0.7, 1.2)) // 10 * 10), rng.choice((0, 0, 2500, 3000)),
                       f"https://example-mall.test/ct/{n}", "", seen, seen, "")

        _copy(Listing._meta.db_table,
              ["product_id", "mall", "seller", "title", "price", "shipping_fee", "url", "product_number", "first_seen",
               "last_seen", "content_fingerprint"], listing_rows())
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT l.id, l.product_id FROM matcher_listing l JOIN matcher_product p ON p.id = l.product_id "
                "WHERE p.sku LIKE %s", [PREFIX + "%"])
            pairs = cursor.fetchall()

        def match_rows():  # noqa: ANN202
            for listing_id, product_id in pairs:
                r = rng.random()
                status, bucket = (("matched", "auto") if r < 0.05 else ("pending", "review") if r < 0.15
                                  else ("rejected", "reject"))
                yield (product_id, listing_id, bucket, status, False, "0.9000", "[]", "{}", "bench", "",
                       thresholds.pk, "bench", "", 0, False, "0", now, now)

        _copy(Match._meta.db_table,
              ["product_id", "listing_id", "bucket", "status", "decided_by_human", "confidence", "reasons", "evidence",
               "embedder", "prompt_version", "thresholds_id", "fingerprint", "listing_fingerprint", "money_at_risk",
               "audit_sample",
               "llm_cost_usd", "decided_at", "updated_at"], match_rows())
        _copy(PriceChange._meta.db_table,
              ["product_id", "kind", "old_price", "new_price", "reason", "automatic", "created_at"],
              ((pid, "import", prices[pid] + 1000, prices[pid], "벤치", False, now) for pid in product_ids[::5]))
        PricingPolicy.objects.update_or_create(scope="brand", key=BRANDS[1], defaults={"stale_after_hours": 12})
        PricingPolicy.objects.update_or_create(scope="category", key=CATEGORIES[2], defaults={"include_shipping": False})
        for sku in sorted(ids)[:50]:
            PricingPolicy.objects.update_or_create(scope="sku", key=sku, defaults={"rounding": 1000})
    # VACUUM (outside a transaction) sets the visibility map, so index-only scans work as in production.
    with connection.cursor() as cursor:
        for table in ("matcher_product", "matcher_listing", "matcher_match", "pricing_pricechange"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    return {"skus": skus, "listings": listings, "created": True, "create_s": round(time.perf_counter() - started, 1)}


VIEWS = {  # figure name → query string (and whether htmx asked)
    "default": ("", False),
    "htmx": ("", True),
    "page_200": ("?page=200", False),
    "sort_gap": ("?sort=-gap", False),
    "position_dearer": ("?position=dearer", False),
    "below_floor": ("?below_floor=1", False),
    "search": ("?q=벤치 상품 1234", False),
    "brand_sort_cheapest": (f"?brand={BRANDS[1]}&sort=cheapest", False),
}


def run(*, quick: bool, options: dict[str, Any]) -> dict[str, Any]:
    from benchmarks.common import django_setup

    django_setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment
    from django.urls import reverse

    skus = int(options.get("catalogue_skus") or (2_000 if quick else 50_000))
    listings = int(options.get("catalogue_listings") or (20_000 if quick else 500_000))
    requests = int(options.get("catalogue_requests") or (10 if quick else 60))
    print(f"  catalogue: ensuring {skus:,} SKUs and {listings:,} listings …", flush=True)
    made = ensure_catalogue(skus, listings)
    setup_test_environment()  # lets the test client in (ALLOWED_HOSTS gains "testserver")
    client = Client()
    client.force_login(bench_merchandiser())
    base = reverse("pricing:catalogue")
    results: dict[str, Any] = {"catalogue_dataset": made, "catalogue_skus": skus, "catalogue_listings": listings}
    for name, (query, htmx) in VIEWS.items():
        headers: dict[str, Any] = {"HTTP_HX_REQUEST": "true"} if htmx else {}
        client.get(base + query, **headers)  # warm-up
        times = []
        for _ in range(requests):
            t = time.perf_counter()
            response = client.get(base + query, **headers)
            times.append((time.perf_counter() - t) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"GET {base + query} → {response.status_code}")
        with CaptureQueriesContext(connection) as queries:
            client.get(base + query, **headers)
        results[f"catalogue_{name}_ms_p50"] = round(percentile(times, 50), 1)
        results[f"catalogue_{name}_ms_p95"] = round(percentile(times, 95), 1)
        results[f"catalogue_{name}_queries"] = len(queries.captured_queries)
        print(f"  {name:22s} p50 {results[f'catalogue_{name}_ms_p50']:7.1f} ms  "
              f"p95 {results[f'catalogue_{name}_ms_p95']:7.1f} ms  {len(queries.captured_queries)} queries", flush=True)
    t = time.perf_counter()
    csv_bytes = len(client.get(reverse("pricing:catalogue_csv") + f"?brand={BRANDS[0]}").content)
    results["catalogue_csv_one_brand_s"] = round(time.perf_counter() - t, 2)
    results["catalogue_csv_one_brand_bytes"] = csv_bytes
    results["catalogue_page_ms_p95"] = results["catalogue_default_ms_p95"]
    results["catalogue_worst_ms_p95"] = max(v for k, v in results.items() if k.endswith("_ms_p95"))
    results.update(_policy_preview())
    results["catalogue_notes"] = (
        f"{skus:,} SKUs × {listings:,} listings (5 % matched), GET /pricing/catalogue/ as a merchandiser, "
        "server-side through django.test.Client in one process; catalogue_page_ms_p95 is the default view"
    )
    return results


def _policy_preview() -> dict[str, Any]:
    """A global policy edit previewed over the whole catalogue (issue 27: within 10 s on 2 cores). Reads only."""
    from decimal import Decimal

    from pricing.models import PricingPolicy
    from pricing.policy_preview import policy_preview

    edited = PricingPolicy.objects.get(scope=PricingPolicy.Scope.GLOBAL, key="")
    edited.min_margin_percent = Decimal("25")
    edited.undercut_amount = (edited.undercut_amount or 0) + 500
    times = []
    for _ in range(2):
        t = time.perf_counter()
        preview = policy_preview(policy=edited)
        times.append(time.perf_counter() - t)
    print(f"  policy preview (global) {max(times):6.2f} s over {preview.skus:,} SKUs "
          f"({preview.moved_down:,} down, {preview.moved_up:,} up, {preview.held_at_floor:,} at the floor)", flush=True)
    return {"policy_preview_global_s": round(max(times), 2), "policy_preview_skus": preview.skus}
