"""Fixtures for the LLM verifier tests: a fake Gemini server on 127.0.0.1 and settings pointing at it."""
from __future__ import annotations

import time
from decimal import Decimal

import pytest

from matcher.llm import config as llm_config
from matcher.signals import matches_changed
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
    recorded: list[float] = []

    def sleep(seconds: float) -> None:
        recorded.append(seconds)
        time.sleep(seconds)

    monkeypatch.setattr(llm_config, "_sleep", sleep)
    return recorded


@pytest.fixture
def matches_changed_sent():
    """Every `matches_changed` signal sent while the test runs, as its keyword arguments."""
    sent: list[dict] = []

    def receiver(sender, signal, **kwargs) -> None:
        sent.append(kwargs)

    matches_changed.connect(receiver, weak=False, dispatch_uid="tests.llm.matches_changed_sent")
    yield sent
    matches_changed.disconnect(dispatch_uid="tests.llm.matches_changed_sent")
