"""Imports from the browser: /matcher/imports/ takes a file (admins), a real worker imports it, the
report page follows its progress into the report by line."""
from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from django.core.files.storage import storages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections, transaction
from django.test import Client
from django.utils import timezone

from matcher.models import ImportReport, Listing, Product
from matcher.services import ImportBusy, import_upload_process
from matcher.tasks import import_upload_run
from pricing.models import PriceChange
from tests.factories import ProductFactory, UserFactory

HEADER = "sku,product_number,brand,title,category,colour,price,cost,min_price,attributes,images,active"
LISTING_HEADER = "sku,mall,seller,title,price,shipping_fee,url,images,seen_at"
URL = "/matcher/imports/"


@pytest.fixture(autouse=True)
def _imports_in_tmp(settings, tmp_path) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "imports": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                    "OPTIONS": {"location": tmp_path / "imports"}},
    }


def stored_files() -> list[str]:
    storage = storages["imports"]
    return storage.listdir("")[1] if storage.exists("") else []


def catalogue(lines: list[str]) -> bytes:
    return ("\n".join([HEADER, *lines]) + "\n").encode("utf-8")


def upload(client: Client, data: bytes, *, name: str = "catalog.csv", kind: str = "catalog"):
    # The kind first, the file last: the order a browser sends the form in.
    return client.post(URL, {"kind": kind, "file": SimpleUploadedFile(name, data, content_type="text/csv")})


def admin_client(client: Client, username: str = "import-admin"):
    user = UserFactory(username=username, groups=["admin"])
    client.force_login(user)
    return user


@pytest.fixture
def private_queue(monkeypatch) -> Iterator[str]:
    """Every task this test enqueues (the import, image downloads, repricing) goes to a queue of its own,
    so no other package's worker on the same broker runs it against another database."""
    from celery.app import routes

    from config.celery import app

    queue = f"upload-test-{uuid.uuid4().hex[:10]}"
    monkeypatch.setattr(app.amqp.router, "routes", routes.prepare({"*": {"queue": queue}}))
    try:
        yield queue
    finally:
        with app.connection() as conn:
            conn.default_channel.queue_delete(queue)


@pytest.fixture
def upload_worker(private_queue, fetch_settings, image_server) -> Iterator[None]:
    """A real Celery worker thread consuming the test's own queue; images come from a local server."""
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun

    from config.celery import app

    fetch_settings.IMAGE_FETCH_ALLOWED_HOSTS = ["127.0.0.1"]

    def close_connections(**_: object) -> None:
        connections.close_all()  # the worker thread's connection must not block the test database's teardown

    task_postrun.connect(close_connections, weak=False)
    try:
        with start_worker(app, pool="solo", concurrency=1, queues=[private_queue], perform_ping_check=False,
                          shutdown_timeout=30):
            yield
    finally:
        task_postrun.disconnect(close_connections)


@pytest.fixture
def image_url(image_server) -> Callable[[str], str]:
    from tests.factories import png_bytes

    def make(name: str) -> str:
        return image_server.serve_image(f"/{name}.png", png_bytes((hash(name) % 200, 40, 90)))

    return make


def wait_for(predicate: Callable[[], bool], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


def report_done(report_id: int) -> Callable[[], bool]:
    return lambda: ImportReport.objects.get(pk=report_id).status in ("done", "failed")


def poll(client: Client, report_id: int) -> str:
    response = client.get(f"{URL}{report_id}/", headers={"HX-Request": "true"})
    assert response.status_code == 200
    return response.content.decode()


# --- Who may upload ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_merchandiser_is_refused_the_upload_page_with_the_korean_page_and_nothing_is_kept(client):
    client.force_login(UserFactory(groups=["merchandiser"]))

    page = client.get(URL)
    posted = upload(client, catalogue(["A-1,,,제목,,,1000,,,,https://img.example.com/a.jpg,1"]))
    report = client.get(f"{URL}{ImportReport.objects.create(kind='catalog', source='x.csv').pk}/")

    for response in (page, posted, report):
        assert response.status_code == 403
        assert "파일 가져오기는 관리자만 할 수 있습니다." in response.content.decode()
    assert ImportReport.objects.filter(stored_name__gt="").count() == 0
    assert stored_files() == []
    assert 'href="/matcher/imports/"' not in client.get("/").content.decode()


@pytest.mark.django_db
def test_an_admin_gets_the_upload_page_linked_from_the_dashboard_and_the_nav(client):
    admin_client(client)

    page = client.get(URL)
    home = client.get("/").content.decode()

    assert page.status_code == 200
    body = page.content.decode()
    assert "파일 가져오기" in body and 'enctype="multipart/form-data"' in body and "최대 20MB" in body
    assert 'data-testid="imports-link"' in home and home.count('href="/matcher/imports/"') == 2


@pytest.mark.django_db
def test_the_upload_still_checks_the_csrf_token():
    client = Client(enforce_csrf_checks=True)
    admin_client(client)

    response = upload(client, catalogue(["A-1,,,제목,,,1000,,,,https://img.example.com/a.jpg,1"]))

    assert response.status_code == 403
    assert not ImportReport.objects.exists() and stored_files() == []


# --- Refused before anything is written -------------------------------------------------------


@pytest.mark.django_db
def test_a_file_not_in_utf8_is_refused_in_korean_before_anything_is_written(client):
    admin_client(client)
    cp949 = "\n".join([HEADER, "A-1,,,울 가디건,,,1000,,,,https://img.example.com/a.jpg,1"]).encode("cp949")

    response = upload(client, cp949)

    assert response.status_code == 400
    assert "UTF-8이 아닙니다 (2행)" in response.content.decode()
    assert not ImportReport.objects.exists() and not Product.objects.exists() and stored_files() == []


@pytest.mark.django_db
def test_a_file_missing_a_required_column_or_of_another_format_is_refused(client):
    admin_client(client)

    missing = upload(client, b"sku,title\nA-1,x\n")
    listings_as_catalogue = upload(client, catalogue(["A-1,,,제목,,,1000,,,,https://img.example.com/a.jpg,1"]),
                                   kind="listings")
    excel = upload(client, b"PK\x03\x04...", name="catalog.xlsx")

    assert "필수 열이 없습니다 (missing columns): price, images" in missing.content.decode()
    assert "필수 열이 없습니다 (missing columns): mall, url" in listings_as_catalogue.content.decode()
    assert "지원하지 않는 파일 형식입니다: catalog.xlsx" in excel.content.decode()
    assert {missing.status_code, listings_as_catalogue.status_code, excel.status_code} == {400}
    assert not ImportReport.objects.exists() and stored_files() == []


@pytest.mark.django_db
def test_a_file_over_the_size_limit_is_refused_in_korean_and_never_stored(client, settings):
    settings.IMPORT_UPLOAD_MAX_BYTES = 2048
    admin_client(client)
    rows = [f"BIG-{n},,,큰 파일 {n},,,1000,,,,https://img.example.com/{n}.jpg,1" for n in range(100)]

    response = upload(client, catalogue(rows))

    assert response.status_code == 400
    body = response.content.decode()
    assert "파일이 너무 큽니다. 최대 2KB까지 올릴 수 있습니다 (larger than 2048 bytes)" in body
    assert re.search(r'value="catalog"[^>]*checked', body)  # the form keeps the kind chosen
    assert not ImportReport.objects.exists() and not Product.objects.exists() and stored_files() == []


# --- Imported by the worker -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_uploaded_catalogue_is_imported_by_a_worker_the_page_following_it_to_the_report(
    client, upload_worker, image_url
):
    admin = admin_client(client)
    ProductFactory(sku="HELD-1", title="잠긴 SKU", price=50_000, cost=None, min_price=None)
    data = catalogue([
        f"NEW-1,,노스페이스,눕시 자켓,outerwear,black,329000,150000,279000,,{image_url('n1')},1",  # line 2
        f"NEW-2,,노스페이스,눕시 베스트,outerwear,black,199000,,,,{image_url('n2')},1",  # 3: no floor
        f"HELD-1,,,잠긴 SKU,,,50000,,,,{image_url('h1')},1",  # line 4: held below; no floor either
        f"BAD-1,,,소수 가격,,,12.5,,,,{image_url('b1')},1",  # line 5
        "LOCAL-1,,,로컬 사진,,,1000,,,,shots/a.png,1",  # line 6
    ])
    held, release = threading.Event(), threading.Event()

    def hold_row() -> None:
        # Another transaction holding HELD-1's row stops the worker at line 4, mid-file, for as long as
        # the test needs to see the progress.
        try:
            with transaction.atomic():
                Product.objects.select_for_update().get(sku="HELD-1")
                held.set()
                release.wait(60)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_row)
    holder.start()
    assert held.wait(10)
    try:
        response = upload(client, data)
        assert response.status_code == 302
        report_id = int(response["Location"].rstrip("/").rsplit("/", 1)[1])
        page = client.get(response["Location"]).content.decode()
        assert 'hx-trigger="every 1s"' in page and "가져오기 #" in page

        wait_for(lambda: ImportReport.objects.get(pk=report_id).rows_done == 2)
        running = poll(client, report_id)
        assert 'data-status="running"' in running and 'hx-trigger="every 1s"' in running
        assert "2 / 5" in running and 'aria-valuenow="2"' in running and "width:40%" in running
    finally:
        release.set()
        holder.join(30)

    wait_for(report_done(report_id))
    done = poll(client, report_id)
    report = ImportReport.objects.get(pk=report_id)
    assert (report.status, report.rows_total, report.rows_done) == ("done", 5, 5)
    assert (report.created, report.updated, report.unchanged, report.failed, report.warned) == (2, 1, 0, 2, 2)
    assert report.user == admin and report.attempts == 1 and report.finished_at is not None
    assert 'data-status="done"' in done and "hx-trigger" not in done
    assert "5행 [BAD-1]: price: " in done
    assert "6행 [LOCAL-1]: images: 업로드한 파일과 API에서는 로컬 이미지 경로를 읽을 수 없습니다" in done
    assert "3행 [NEW-2]: 하한가 없음" in done and "4행 [HELD-1]: 하한가 없음" in done
    assert set(Product.objects.values_list("sku", flat=True)) == {"NEW-1", "NEW-2", "HELD-1"}
    # Imported: the untrusted file is not kept.
    assert report.stored_name == "" and stored_files() == []


@pytest.mark.django_db(transaction=True)
def test_a_lower_price_uploaded_above_the_floor_is_a_price_change_of_kind_import_naming_the_uploader(
    client, upload_worker, image_url
):
    admin = admin_client(client)
    ProductFactory(sku="NP-001", title="눕시 자켓", price=189_000, cost=95_000, min_price=159_000)

    response = upload(client, catalogue([f"NP-001,,노스페이스,눕시 자켓,outerwear,black,169000,95000,159000,,"
                                         f"{image_url('np')},1"]))
    report_id = int(response["Location"].rstrip("/").rsplit("/", 1)[1])
    wait_for(report_done(report_id))

    change = PriceChange.objects.get(product__sku="NP-001")
    assert (change.kind, change.old_price, change.new_price, change.user) == ("import", 189_000, 169_000, admin)
    assert f"카탈로그 가져오기 #{report_id}" in change.reason
    assert Product.objects.get(sku="NP-001").price == 169_000


@pytest.mark.django_db(transaction=True)
def test_uploading_the_same_file_again_changes_nothing(client, upload_worker, image_url):
    admin_client(client)
    ProductFactory(sku="NP-001", title="눕시 자켓", price=189_000, cost=95_000, min_price=159_000)
    catalogue_rows = catalogue([f"NP-001,,노스페이스,눕시 자켓,outerwear,black,189000,95000,159000,,{image_url('np')},1"])
    listings = (
        f"{LISTING_HEADER}\n"
        f"NP-001,무신사,노스공식,[정품] 눕시 자켓,179000,0,https://shop.example.com/1,{image_url('l1')},\n"
        f"NP-001,29CM,셀러,눕시 자켓 정품,185000,3000,https://shop.example.com/2,{image_url('l2')},\n"
    ).encode()

    counts = []
    for _ in range(2):
        for kind, data, name in (("catalog", catalogue_rows, "catalog.csv"), ("listings", listings, "listings.csv")):
            response = upload(client, data, kind=kind, name=name)
            report_id = int(response["Location"].rstrip("/").rsplit("/", 1)[1])
            wait_for(report_done(report_id))
            r = ImportReport.objects.get(pk=report_id)
            counts.append((r.kind, r.status, r.created, r.updated, r.unchanged, r.failed))

    assert counts[2:] == [("catalog", "done", 0, 0, 1, 0), ("listings", "done", 0, 0, 2, 0)]
    assert counts[1] == ("listings", "done", 2, 0, 0, 0)
    assert Listing.objects.count() == 2 and not PriceChange.objects.exists()


# --- The worker's task: re-runnable, failures reported -----------------------------------------


def accepted(client: Client, data: bytes, **kwargs: str) -> ImportReport:
    response = upload(client, data, **kwargs)
    assert response.status_code == 302, response.content.decode()
    return ImportReport.objects.get(pk=int(response["Location"].rstrip("/").rsplit("/", 1)[1]))


@pytest.mark.django_db(transaction=True)
def test_a_run_a_dead_worker_left_is_taken_over_from_the_first_row_and_a_live_one_is_not(client, private_queue):
    admin_client(client)
    report = accepted(client, catalogue([f"R-{n},,,행 {n},,,{1000 + n},,,,https://img.example.com/{n}.jpg,1"
                                         for n in range(3)]))
    # A worker died after its first row: the report says running, its heartbeat long gone.
    ImportReport.objects.filter(pk=report.pk).update(
        status="running", attempts=1, rows_done=1, created=1, heartbeat_at=timezone.now() - timedelta(minutes=10)
    )

    done = import_upload_process(report_id=report.pk)

    assert done is not None
    assert (done.status, done.attempts, done.rows_done, done.created, done.failed) == ("done", 2, 3, 3, 0)
    assert Product.objects.count() == 3
    assert import_upload_process(report_id=report.pk) is None  # a redelivery of a finished import: nothing

    live = accepted(client, catalogue(["L-1,,,행,,,1000,,,,https://img.example.com/l.jpg,1"]))
    ImportReport.objects.filter(pk=live.pk).update(status="running", attempts=1, heartbeat_at=timezone.now())
    with pytest.raises(ImportBusy):
        import_upload_process(report_id=live.pk)
    assert ImportReport.objects.get(pk=live.pk).attempts == 1 and not Product.objects.filter(sku="L-1").exists()


def test_the_import_task_is_acknowledged_only_after_it_ran():
    # A worker killed mid-file leaves the message on the broker, to be run again.
    assert import_upload_run.acks_late and import_upload_run.reject_on_worker_lost


@pytest.mark.django_db(transaction=True)
def test_an_import_that_raised_shows_failed_with_the_error_and_keeps_the_file(client, private_queue):
    admin_client(client)
    report = accepted(client, catalogue(["A-1,,,제목,,,1000,,,,https://img.example.com/a.jpg,1"]))
    # The stored file went bad between the upload and the worker (a disk fault, a hand edit).
    storage = storages["imports"]
    with storage.open(report.stored_name, "wb") as fh:
        fh.write("\n".join([HEADER, "A-1,,,울,,,1000,,,,x,1"]).encode("cp949"))

    with pytest.raises(Exception, match="UTF-8"):
        import_upload_process(report_id=report.pk)

    failed = ImportReport.objects.get(pk=report.pk)
    assert failed.status == "failed" and "UTF-8이 아닙니다" in failed.error
    assert storage.exists(failed.stored_name)
    page = poll(client, report.pk)
    assert "가져오기가 실패했습니다: FileFormatError: " in page and "hx-trigger" not in page


# --- Untrusted names and values ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_hostile_file_name_and_sku_are_shown_escaped_and_the_file_is_stored_under_a_random_name(
    client, private_queue
):
    admin_client(client)
    hostile_sku = "<script>alert(1)</script>"
    report = accepted(
        client,
        catalogue([f'"{hostile_sku}",,,제목,,,12.5,,,,https://img.example.com/a.jpg,1']),
        name="..\\..\\<img src=x onerror=alert(1)>.csv",
    )

    assert report.source == "<img src=x onerror=alert(1)>.csv"  # folders dropped, shown as the uploader named it
    assert re.fullmatch(r"[0-9a-f]{32}\.csv", report.stored_name)
    import_upload_process(report_id=report.pk)

    detail = client.get(f"{URL}{report.pk}/").content.decode()
    listing = client.get(URL).content.decode()
    for body in (detail, listing):
        assert "<img src=x" not in body
        assert "&lt;img src=x onerror=alert(1)&gt;.csv" in body
    assert "<script>alert(1)</script>" not in detail
    assert "2행 [&lt;script&gt;alert(1)&lt;/script&gt;]: price: " in detail


@pytest.mark.django_db
def test_a_command_import_writes_its_report_done_with_every_row_counted(tmp_path, write_image):
    from django.core.management import call_command

    write_image("a.png")
    path = tmp_path / "catalog.csv"
    path.write_bytes(catalogue(["A-1,,,제목,,,1000,,,,a.png,1", "A-2,,,제목,,,1.5,,,,a.png,1"]))

    call_command("import_catalog", str(path), "--no-progress", verbosity=0)

    report = ImportReport.objects.get()
    assert (report.status, report.rows_total, report.rows_done, report.created, report.failed) == ("done", 2, 2, 1, 1)


def test_the_size_limit_drops_an_upload_while_it_arrives_and_keeps_the_fields_before_it(rf):
    from matcher.forms import UploadSizeLimit

    request = rf.post(URL, {"kind": "catalog", "file": SimpleUploadedFile("big.csv", b"x" * 10_000)})
    limit = UploadSizeLimit(request, 4096)
    request.upload_handlers.insert(0, limit)

    assert request.POST["kind"] == "catalog"
    assert "file" not in request.FILES and limit.exceeded and limit.received <= 4096 + 64 * 1024
