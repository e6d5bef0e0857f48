"""Fixtures for ingest tests: real images on disk, a local image server, a real Celery worker."""
from __future__ import annotations

import io
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.factories import png_bytes


def jpeg_bytes(colour: tuple[int, int, int] = (20, 120, 200), size: tuple[int, int] = (48, 64)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid-looking PNG of a few dozen bytes that declares width × height pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


@pytest.fixture
def write_image(tmp_path: Path) -> Callable[..., Path]:
    """write_image("shots/a.png", colour=(…)) writes a real PNG (or given bytes) under tmp_path."""

    def write(relative: str, *, colour: tuple[int, int, int] = (200, 30, 30), data: bytes | None = None) -> Path:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if data is not None else png_bytes(colour))
        return path

    return write


@dataclass
class Route:
    """Responses served in turn for one path; the last one repeats."""

    responses: list[tuple[int, dict[str, str], bytes]]
    calls: int = 0


@dataclass
class ImageServer:
    host: str
    port: int
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (path, Host header)

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def serve(self, path: str, *responses: tuple[int, dict[str, str], bytes]) -> str:
        self.routes[path] = Route(list(responses))
        return self.url(path)

    def serve_image(self, path: str, data: bytes, content_type: str = "image/png") -> str:
        return self.serve(path, (200, {"Content-Type": content_type}, data))

    def hits(self, path: str) -> int:
        return sum(1 for p, _ in self.requests if p == path)


@pytest.fixture
def image_server() -> Iterator[ImageServer]:
    """An HTTP server on 127.0.0.1 in a thread, answering from `routes`; it records every request."""
    state = ImageServer(host="127.0.0.1", port=0)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 — http.server's naming
            with lock:
                state.requests.append((self.path, self.headers.get("Host", "")))
                route = state.routes.get(self.path)
                if route is None:
                    status, headers, body = 404, {}, b"not found"
                else:
                    status, headers, body = route.responses[min(route.calls, len(route.responses) - 1)]
                    route.calls += 1
            self.send_response(status)
            headers = dict(headers)
            if "Content-Length" not in headers and not headers.pop("X-No-Length", None):
                headers["Content-Length"] = str(len(body))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client stopped reading, as it should past the size cap

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def fetch_settings(settings):
    """Short timeouts and retries for tests; nothing allowed beyond the public internet by default."""
    settings.IMAGE_FETCH_TIMEOUT_S = 5.0
    settings.IMAGE_FETCH_RETRY_BASE_S = 0.05
    settings.IMAGE_FETCH_RETRY_MAX_S = 0.2
    settings.IMAGE_FETCH_ALLOWED_HOSTS = []
    return settings


@pytest.fixture
def celery_worker(fetch_settings):
    """A real Celery worker thread on the real Redis broker, consuming the `ingest` queue.

    Only for `django_db(transaction=True)` tests: the worker uses its own database connection
    and must see committed rows.
    """
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    with app.connection() as conn:
        # Messages left by an earlier interrupted run would point at rows that no longer exist.
        conn.default_channel.queue_purge("ingest")
    with start_worker(app, pool="solo", concurrency=1, queues=["ingest"], perform_ping_check=False) as worker:
        yield worker
