"""Test set-up: the real embedded PostgreSQL+pgvector and Redis (or DATABASE_URL/REDIS_URL when set)."""
from __future__ import annotations

import csv
import os
from pathlib import Path

os.environ.setdefault("REDIS_DB_OFFSET", "8")  # tests never touch the demo's broker, cache or limiter

import pytest

from matcher.pipeline.weights import EFFICIENTNET_LITE2, POSE, default_path


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


# A small demo catalogue drawn by the real generator, imported through the real commands: the matcher's
# run tests and the browser tests of decisions the real pipeline made share it.
@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    """A small demo catalogue drawn by the real generator: 2 SKUs with 5 listings each, with truth."""
    from matcher.demo.generate import generate

    out = tmp_path_factory.mktemp("demo")
    generate(out, seed=11, n_skus=2, listings_per_sku=5)
    return out


@pytest.fixture
def models_present():
    for model in (POSE, EFFICIENTNET_LITE2):
        if not default_path(model).is_file():
            pytest.fail(f"{default_path(model)} missing: run `make models` (make test does)")


@pytest.fixture
def imported_demo(demo_dir, models_present, db):
    from django.core.management import call_command

    call_command("load_lexicon", verbosity=0)
    call_command("import_catalog", str(demo_dir / "catalog.csv"), "--no-progress", verbosity=0)
    call_command("import_listings", str(demo_dir / "listings.csv"), "--no-progress", verbosity=0)
    with (demo_dir / "truth.csv").open(encoding="utf-8") as fh:
        truth = {row["url"]: row for row in csv.DictReader(fh)}
    return truth
