"""Test set-up: the real embedded PostgreSQL+pgvector and Redis (or DATABASE_URL/REDIS_URL when set)."""
from __future__ import annotations

import os

os.environ.setdefault("REDIS_DB_OFFSET", "8")  # tests never touch the demo's broker, cache or limiter

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if not os.environ.get("DATABASE_URL"):
        from config import embedded

        embedded.start()


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def redis_client(settings):
    import redis

    client = redis.Redis.from_url(settings.RATE_LIMIT_REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
