"""In a real browser: an admin uploads a catalogue file, watches a real worker's progress, and the page
turns into the report with the refused rows by line."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from django.db import connections, transaction
from playwright.sync_api import expect

from matcher.models import ImportReport, Product
from tests.e2e.conftest import login
from tests.factories import ProductFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

HEADER = "sku,product_number,brand,title,category,colour,price,cost,min_price,attributes,images,active"


@pytest.fixture(autouse=True)
def _tasks_run_inline():
    """Overrides the package's inline tasks: here the import must run in a worker, as it does for real."""
    yield


@pytest.fixture(autouse=True)
def _imports_in_tmp(settings, tmp_path) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "imports": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                    "OPTIONS": {"location": tmp_path / "imports"}},
    }


@pytest.fixture
def import_worker(monkeypatch) -> Iterator[None]:
    """A real worker on a queue of this test's own for the import; everything else the import enqueues
    (image downloads of made-up URLs) goes to a second queue nobody consumes, deleted afterwards."""
    from celery.app import routes
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun

    from config.celery import app

    queue, sink = (f"imports-e2e-{uuid.uuid4().hex[:10]}" for _ in range(2))
    monkeypatch.setattr(
        app.amqp.router, "routes", routes.prepare([{"matcher.tasks.import_*": {"queue": queue}, "*": {"queue": sink}}])
    )

    def close_connections(**_: object) -> None:
        connections.close_all()

    task_postrun.connect(close_connections, weak=False)
    try:
        with start_worker(app, pool="solo", concurrency=1, queues=[queue], perform_ping_check=False,
                          shutdown_timeout=30):
            yield
    finally:
        task_postrun.disconnect(close_connections)
        with app.connection() as conn:
            for name in (queue, sink):
                conn.default_channel.queue_delete(name)


def test_an_admin_uploads_a_catalogue_and_watches_it_finish_into_the_report(
    new_page, import_worker, tmp_path, shot
):
    UserFactory(username="admin-kim", groups=["admin"])
    ProductFactory(sku="HELD-1", title="잠긴 SKU", price=50_000, cost=40_000, min_price=45_000)
    path = tmp_path / "catalog.csv"
    path.write_text("\n".join([
        HEADER,
        "NEW-1,,노스페이스,눕시 자켓,outerwear,black,329000,150000,279000,,https://img.example.com/n1.jpg,1",
        "HELD-1,,,잠긴 SKU,,,50000,40000,45000,,https://img.example.com/h1.jpg,1",
        "BAD-1,,,소수 가격,,,12.5,,,,https://img.example.com/b1.jpg,1",
        "LOCAL-1,,,로컬 사진,,,1000,,,,shots/a.png,1",
    ]) + "\n", encoding="utf-8")
    held, release = threading.Event(), threading.Event()

    def hold_row() -> None:
        # The worker waits at line 3 while another transaction holds HELD-1: progress the page can show.
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
    page = new_page()
    try:
        login(page, "admin-kim", next_url="/")
        page.get_by_test_id("imports-link").click()
        page.get_by_label("카탈로그 (우리 SKU와 가격)").check()
        page.set_input_files("input[name=file]", str(path))
        page.get_by_role("button", name="올리고 가져오기").click()

        progress = page.get_by_test_id("import-progress")
        expect(progress).to_have_attribute("data-status", "running")
        expect(progress).to_contain_text("1 / 4")
        shot(page, "imports-progress")
    finally:
        release.set()
        holder.join(30)

    expect(progress).to_have_attribute("data-status", "done")
    expect(page.get_by_test_id("import-status")).to_have_text("완료")
    errors = page.get_by_test_id("import-errors")
    expect(errors).to_contain_text("4행 [BAD-1]: price:")
    expect(errors).to_contain_text("5행 [LOCAL-1]: images: 업로드한 파일과 API에서는 로컬 이미지 경로를 읽을 수 없습니다")
    shot(page, "imports-report")
    report = ImportReport.objects.get()
    assert (report.created, report.updated, report.failed, report.user.username) == (1, 1, 2, "admin-kim")
    assert page.js_errors == []
