"""Fixtures for the LLM verifier tests: a fake Gemini server on 127.0.0.1 and settings pointing at it."""
from __future__ import annotations

from decimal import Decimal

import pytest

from tests.fakes.gemini_server import FakeGemini
from tests.llm.pairs import FAST, STRONG


@pytest.fixture
def fake_gemini(settings, redis_client):
    """The real SDK talks to this server; the shared limiter runs on the real (test) Redis."""
    fake = FakeGemini(prompt_tokens=1000, output_tokens=200)
    settings.GEMINI_BASE_URL = fake.start()
    settings.GEMINI_API_KEY = "test-key"
    settings.GEMINI_MODEL = FAST
    settings.GEMINI_ESCALATION_MODEL = STRONG
    settings.GEMINI_MAX_RETRIES = 2
    settings.GEMINI_TIMEOUT_S = 5.0
    settings.GEMINI_BACKOFF_BASE_S = 0.05
    settings.GEMINI_RPM = 1000
    settings.GEMINI_TPM = 10_000_000
    settings.GEMINI_DAILY_SPEND_CAP_USD = Decimal("20")
    yield fake
    fake.stop()


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """Every wait the verifier and limiter ask for, in order (the waits still happen: hints are short)."""
    import time

    from matcher import llm

    recorded: list[float] = []

    def sleep(seconds: float) -> None:
        recorded.append(seconds)
        time.sleep(seconds)

    monkeypatch.setattr(llm, "_sleep", sleep)
    return recorded


@pytest.fixture
def reprice_messages(settings):
    """The pricing.tasks.reprice_product_task messages on the real Redis broker, as argument reprs; the
    ones this test read are removed at the end (other suites share the queue)."""
    import json

    import redis

    url = settings.CELERY_BROKER_URL.replace("redis+socket://", "unix://", 1).replace("?virtual_host=", "?db=", 1)
    client = redis.Redis.from_url(url)
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    before = set(client.lrange(queue, 0, -1))
    taken: list[bytes] = []

    def read() -> list[str]:
        found = []
        for raw in client.lrange(queue, 0, -1):
            if raw in before:
                continue
            headers = json.loads(raw).get("headers", {})
            if headers.get("task") == "pricing.tasks.reprice_product_task":
                found.append(headers.get("argsrepr", ""))
                taken.append(raw)
        return found

    yield read
    for raw in taken:
        client.lrem(queue, 0, raw)
