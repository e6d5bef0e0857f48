"""Pricing tests get a test database of their own name, so they can run while another package's
tests (another job on the same PostgreSQL server) hold ``test_pricematch``."""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    from django.conf import settings

    name = os.environ.get("PRICING_TEST_DB_NAME", "test_pricematch_pricing")
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = name


@pytest.fixture(autouse=True)
def _quality_control_not_paused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The review app's QC switch reads a shared Redis cache that other test packages also write;
    pricing tests start with it off and turn it on where that is the point of the test."""
    try:
        import review.selectors
    except ImportError:
        return
    if hasattr(review.selectors, "auto_pricing_paused"):
        monkeypatch.setattr(review.selectors, "auto_pricing_paused", lambda: False)


class WebhookReceiver:
    """A local HTTP endpoint standing in for the shop's upload automation; answers with `statuses` in turn."""

    def __init__(self) -> None:
        import threading

        self.received: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        self.lock = threading.Lock()
        self.url = ""

    def next_status(self) -> int:
        with self.lock:
            return self.statuses.pop(0) if self.statuses else 200


@pytest.fixture
def webhook_receiver():
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    receiver = WebhookReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with receiver.lock:
                receiver.received.append(({k: v for k, v in self.headers.items()}, body))
            status = receiver.next_status()
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/prices"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()


@pytest.fixture
def pricing_worker(monkeypatch) -> Iterator[None]:
    """A worker thread consuming a queue of this test's own, with pricing tasks routed to it, so
    another package's worker on the same broker never picks up our messages (nor we theirs)."""
    from celery.app import routes
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun
    from django.db import connections

    from config.celery import app

    queue = f"pricing-test-{uuid.uuid4().hex[:10]}"
    monkeypatch.setattr(app.amqp.router, "routes", routes.prepare({"pricing.tasks.*": {"queue": queue}}))

    def close_connections(**_: object) -> None:
        # The worker thread's connection would otherwise outlive the test and block the test
        # database's teardown.
        connections.close_all()

    task_postrun.connect(close_connections, weak=False)
    try:
        with start_worker(app, pool="solo", concurrency=1, queues=[queue], perform_ping_check=False,
                          shutdown_timeout=30):
            yield
    finally:
        task_postrun.disconnect(close_connections)
        with app.connection() as conn:
            conn.default_channel.queue_delete(queue)
