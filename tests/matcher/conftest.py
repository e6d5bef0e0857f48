from __future__ import annotations

import csv
from pathlib import Path

import pytest

from matcher.pipeline.weights import EFFICIENTNET_LITE2, POSE, default_path


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
