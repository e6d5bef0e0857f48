"""Pricing tests get a test database of their own name, so they can run while another package's
tests (another job on the same PostgreSQL server) hold ``test_pricematch``."""
from __future__ import annotations

import os

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
