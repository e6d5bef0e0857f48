from __future__ import annotations

import pytest


@pytest.fixture
def vision_worker(settings):
    """A real Celery worker thread on the real Redis broker for the match queue."""
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    with app.connection() as conn:
        for queue in ("vision", "default"):
            conn.default_channel.queue_purge(queue)
    with start_worker(app, pool="solo", concurrency=1, queues=["vision"], perform_ping_check=False) as worker:
        yield worker
