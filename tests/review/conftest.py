from __future__ import annotations

import pytest
from django.core.cache import cache

from review.selectors import PAUSE_CACHE_KEY


@pytest.fixture(autouse=True)
def _fresh_pause_cache():
    # The QC verdict is cached in the shared Redis cache; each test starts without it.
    cache.delete(PAUSE_CACHE_KEY)
    yield
    cache.delete(PAUSE_CACHE_KEY)


# Enqueued by pricing's receiver of the review decision's matches_changed (args carry no "review:").
REVIEW_CAUSED = {"pricing.tasks.money_at_risk_refresh_task"}


@pytest.fixture
def broker_messages(settings):
    """Reads the task messages on the real Redis broker's default queue; removes the review app's at the end.
    Other suites share that queue, so tests look for their own arguments, never for an empty queue."""
    import json

    import redis

    url = settings.CELERY_BROKER_URL.replace("redis+socket://", "unix://", 1).replace(
        "?virtual_host=", "?db=", 1
    )
    client = redis.Redis.from_url(url)
    taken: list[bytes] = []

    def read(task: str) -> list[str]:
        found = []
        for raw in client.lrange(settings.CELERY_TASK_DEFAULT_QUEUE, 0, -1):
            headers = json.loads(raw).get("headers", {})
            if headers.get("task") == task:
                args = headers.get("argsrepr", "")
                found.append(args)
                # Only the messages review decisions cause are cleaned up; other suites' stay where they are.
                if task.startswith("review.") or task in REVIEW_CAUSED or "review:" in args:
                    taken.append(raw)
        return found

    yield read
    for raw in taken:
        client.lrem(settings.CELERY_TASK_DEFAULT_QUEUE, 0, raw)
