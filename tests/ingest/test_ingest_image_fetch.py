"""Image downloads: SSRF refusals, caps, retries, and the Celery path end to end on the real broker."""
from __future__ import annotations

import io
import time

import pytest
from django.core.management import call_command

from matcher import images
from matcher.models import FetchStatus, ImageFile, Listing, ListingImage
from matcher.services import image_refs_fetch
from tests.factories import ListingImageFactory, ProductFactory, png_bytes
from tests.ingest.conftest import bomb_png, jpeg_bytes


def pending_image(url: str) -> ListingImage:
    return ListingImageFactory(source=url, image=None, fetch_status=FetchStatus.PENDING)


def fetch_once(ref: ListingImage, *, final: bool = False) -> ListingImage:
    image_refs_fetch(owner="listing", owner_id=ref.listing_id, final_attempt=final)
    ref.refresh_from_db()
    return ref


# --- refusals, checked before any connection -------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("10.0.0.1", "private"),
        ("169.254.169.254", "metadata"),
        ("[::1]", "loopback"),
        ("[::ffff:127.0.0.1]", "loopback"),
        ("[::ffff:169.254.169.254]", "metadata"),
        ("[fd00:ec2::254]", "metadata"),
        ("0.0.0.0", "unspecified"),
        ("2130706433", "loopback"),  # 127.0.0.1 written as one number
        ("localhost", "loopback"),
    ],
)
def test_it_refuses_internal_addresses_and_never_connects(fetch_settings, image_server, host, reason):
    url = image_server.serve_image("/a.png", png_bytes())
    ref = fetch_once(pending_image(url.replace("127.0.0.1", host)))
    assert ref.fetch_status == FetchStatus.FAILED
    assert reason in ref.fetch_error
    assert ref.fetch_attempts == 1
    assert ref.image is None
    assert image_server.requests == []


@pytest.mark.parametrize("url", ["ftp://example.com/a.jpg", "file:///etc/passwd", "http://user:pw@example.com/a.jpg"])
def test_it_refuses_other_schemes_and_credentials(url):
    with pytest.raises(images.FetchRefused):
        images.fetch(url, max_bytes=1000, timeout=1, max_redirects=1, resolver=lambda h, p: ["93.184.216.34"])


def test_one_private_answer_among_public_ones_refuses_the_host():
    # What a rebinding attacker's DNS would answer; every address must be public.
    with pytest.raises(images.FetchRefused, match="10.0.0.1"):
        images.fetch(
            "http://cdn.example.com/a.jpg",
            max_bytes=1000,
            timeout=1,
            max_redirects=1,
            resolver=lambda h, p: ["93.184.216.34", "10.0.0.1"],
        )


def test_it_connects_to_the_vetted_address_and_keeps_the_host_name(image_server):
    image_server.serve_image("/a.png", png_bytes())
    fetched = images.fetch(
        f"http://images.test:{image_server.port}/a.png",
        max_bytes=10_000,
        timeout=5,
        max_redirects=1,
        allowed_hosts=["images.test"],
        resolver=lambda host, port: ["127.0.0.1"],  # resolved once; the connection goes to this address
    )
    assert fetched.data == png_bytes()
    assert image_server.requests == [("/a.png", f"images.test:{image_server.port}")]


def test_an_allowed_host_still_may_not_be_a_metadata_address():
    with pytest.raises(images.FetchRefused, match="metadata"):
        images.fetch(
            "http://images.test/a.png",
            max_bytes=1000,
            timeout=1,
            max_redirects=1,
            allowed_hosts=["images.test"],
            resolver=lambda h, p: ["169.254.169.254"],
        )


# --- the local test server, allowed by name ------------------------------------------------------


@pytest.fixture
def allowed(fetch_settings, image_server):
    fetch_settings.IMAGE_FETCH_ALLOWED_HOSTS = ["127.0.0.1"]
    return image_server


@pytest.mark.django_db
def test_a_download_from_an_allowed_host_is_stored(allowed):
    data = jpeg_bytes()
    ref = fetch_once(pending_image(allowed.serve_image("/goods/1.jpg", data, "image/jpeg")))
    assert (ref.fetch_status, ref.fetch_error, ref.fetch_attempts) == (FetchStatus.OK, "", 1)
    assert ref.image.format == "JPEG"
    with ref.image.file.open("rb") as fh:
        assert fh.read() == data


@pytest.mark.django_db
def test_a_finished_download_changes_the_listing_fingerprint(allowed):
    ref = pending_image(allowed.serve_image("/a.png", png_bytes()))
    before = Listing.objects.get(pk=ref.listing_id).content_fingerprint
    fetch_once(ref)
    assert Listing.objects.get(pk=ref.listing_id).content_fingerprint not in ("", before)


@pytest.mark.django_db
@pytest.mark.parametrize("target", ["http://10.0.0.1/a.png", "http://localhost:{port}/a.png", "http://[::1]:{port}/a.png"])
def test_a_redirect_to_an_internal_address_is_refused(allowed, target):
    allowed.serve_image("/a.png", png_bytes())
    url = allowed.serve("/r", (302, {"Location": target.format(port=allowed.port)}, b""))
    ref = fetch_once(pending_image(url))
    assert ref.fetch_status == FetchStatus.FAILED
    assert "address" in ref.fetch_error
    assert allowed.hits("/a.png") == 0


@pytest.mark.django_db
def test_redirects_within_the_limit_are_followed_and_beyond_it_refused(allowed, settings):
    settings.IMAGE_FETCH_MAX_REDIRECTS = 2
    allowed.serve_image("/a.png", png_bytes())
    allowed.serve("/r1", (301, {"Location": "/r2"}, b""))
    allowed.serve("/r2", (302, {"Location": allowed.url("/a.png")}, b""))
    assert fetch_once(pending_image(allowed.url("/r2"))).fetch_status == FetchStatus.OK
    allowed.serve("/r0", (302, {"Location": "/r1"}, b""))
    ref = fetch_once(pending_image(allowed.url("/r0")))
    assert (ref.fetch_status, "redirects" in ref.fetch_error) == (FetchStatus.FAILED, True)


@pytest.mark.django_db
@pytest.mark.parametrize("declare_length", [True, False])
def test_an_oversized_download_is_refused(allowed, settings, declare_length):
    settings.IMAGE_MAX_BYTES = 2_000
    body = jpeg_bytes(size=(400, 400)) + b"\0" * 50_000
    headers = {"Content-Type": "image/jpeg"} if declare_length else {"X-No-Length": "1"}
    ref = fetch_once(pending_image(allowed.serve("/big.jpg", (200, headers, body))))
    assert ref.fetch_status == FetchStatus.FAILED
    assert "2000 bytes" in ref.fetch_error
    assert not ImageFile.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (jpeg_bytes(size=(300, 300))[:400], "corrupt"),
        (b"<html>blocked</html>", "not a recognisable image"),
        (bomb_png(), "decompression bomb"),
    ],
)
def test_downloads_that_are_not_acceptable_images_fail_without_retry(allowed, body, reason):
    ref = fetch_once(pending_image(allowed.serve("/x", (200, {"Content-Type": "image/png"}, body))))
    assert (ref.fetch_status, ref.fetch_attempts) == (FetchStatus.FAILED, 1)
    assert reason in ref.fetch_error


@pytest.mark.django_db
def test_a_404_fails_at_once_but_a_503_stays_pending_until_the_last_attempt(allowed):
    gone = fetch_once(pending_image(allowed.serve("/gone", (404, {}, b""))))
    assert (gone.fetch_status, gone.fetch_error) == (FetchStatus.FAILED, "HTTP 404")

    busy = pending_image(allowed.serve("/busy", (503, {}, b"")))
    busy = fetch_once(busy)
    assert (busy.fetch_status, busy.fetch_error, busy.fetch_attempts) == (FetchStatus.PENDING, "HTTP 503", 1)
    busy = fetch_once(busy, final=True)
    assert (busy.fetch_status, busy.fetch_error, busy.fetch_attempts) == (FetchStatus.FAILED, "HTTP 503", 2)


@pytest.mark.django_db
def test_a_connection_refused_is_transient(fetch_settings):
    import socket

    fetch_settings.IMAGE_FETCH_ALLOWED_HOSTS = ["127.0.0.1"]
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ref = fetch_once(pending_image(f"http://127.0.0.1:{port}/a.png"))
    assert (ref.fetch_status, "connection error" in ref.fetch_error) == (FetchStatus.PENDING, True)


def test_backoff_grows_exponentially_with_jitter_and_a_ceiling(settings):
    from matcher.services import image_fetch_backoff

    settings.IMAGE_FETCH_RETRY_BASE_S = 10
    settings.IMAGE_FETCH_RETRY_MAX_S = 60
    for retries, (low, high) in enumerate([(5, 10), (10, 20), (20, 40), (30, 60), (30, 60)]):
        delays = {image_fetch_backoff(retries) for _ in range(20)}
        assert all(low <= d <= high for d in delays)
        assert len(delays) > 1  # jittered


# --- through Celery on the real Redis broker ------------------------------------------------------


def test_image_fetch_tasks_are_routed_to_the_ingest_queue():
    from config.celery import app

    for name in ("matcher.tasks.image_fetch_listing_images", "matcher.tasks.image_fetch_product_images"):
        assert app.amqp.router.route({}, name, args=(1,), kwargs={})["queue"].name == "ingest"


def wait_for(predicate, *, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.django_db(transaction=True)
def test_the_worker_retries_a_503_and_then_stores_the_image(celery_worker, allowed):
    from matcher.tasks import image_fetch_listing_images

    data = png_bytes((0, 128, 255))
    url = allowed.serve("/flaky.png", (503, {}, b""), (503, {}, b""), (200, {"Content-Type": "image/png"}, data))
    ref = pending_image(url)

    image_fetch_listing_images.delay(ref.listing_id)

    assert wait_for(lambda: ListingImage.objects.get(pk=ref.pk).fetch_status != FetchStatus.PENDING)
    ref.refresh_from_db()
    assert (ref.fetch_status, ref.fetch_error, ref.fetch_attempts) == (FetchStatus.OK, "", 3)
    assert ref.image.sha256 == ImageFile.objects.get().sha256
    assert allowed.hits("/flaky.png") == 3


@pytest.mark.django_db(transaction=True)
def test_importing_listings_queues_downloads_that_the_worker_completes(celery_worker, allowed, tmp_path):
    ProductFactory(sku="NP-001")
    good = allowed.serve_image("/m/1.png", png_bytes((9, 99, 199)))
    path = tmp_path / "listings.csv"
    path.write_text(
        "sku,mall,title,price,url,images\n"
        f"NP-001,무신사,눕시 패딩,\"299,000\",https://www.musinsa.com/goods/1,{good}|http://10.0.0.1/internal.png\n",
        encoding="utf-8",
    )
    call_command("import_listings", str(path), "--no-progress", stdout=io.StringIO())
    listing = Listing.objects.get()

    assert wait_for(lambda: not listing.images.filter(fetch_status=FetchStatus.PENDING).exists())
    stored, refused = listing.images.order_by("position")
    assert (stored.fetch_status, stored.image.width) == (FetchStatus.OK, 32)
    assert (refused.fetch_status, "private" in refused.fetch_error) == (FetchStatus.FAILED, True)


@pytest.mark.django_db(transaction=True)
def test_product_url_images_are_downloaded_by_the_worker(celery_worker, allowed, tmp_path):
    url = allowed.serve_image("/p/1.png", png_bytes((1, 1, 1)))
    path = tmp_path / "catalog.csv"
    path.write_text(f"sku,title,price,images\nNP-9,패딩,1000,{url}\n", encoding="utf-8")
    call_command("import_catalog", str(path), "--no-progress", stdout=io.StringIO())
    product_ref = ProductFactory._meta.model.objects.get(sku="NP-9").images.get()

    assert wait_for(lambda: type(product_ref).objects.get(pk=product_ref.pk).fetch_status == FetchStatus.OK)
