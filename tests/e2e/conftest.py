"""Browser tests: Debian's headless Chromium driven by Playwright against pytest-django's live_server."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make around it are
# ordinary synchronous code, so Django's async-safety guard would only get in the way here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

SCREENSHOTS = Path(__file__).parent / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1366, "height": 768}  # the merchandisers' laptops
PASSWORD = "pw-for-tests"


def _wait_for_chromium(timeout_s: float = 600) -> None:
    # The Debian package may still be installing when the suite starts (make system-deps).
    deadline = time.monotonic() + timeout_s
    while not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        if time.monotonic() > deadline:
            pytest.fail(f"{CHROMIUM} is missing: install the Debian package 'chromium' (make system-deps)")
        time.sleep(5)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import expect, sync_playwright

    # A shared two-core machine: give assertions room, they still return as soon as they hold.
    expect.set_options(timeout=15_000)

    _wait_for_chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium"),
            args=CHROMIUM_ARGS,
        )
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def _tasks_run_inline():
    """Decisions enqueue repricing on commit. These tests are not about the queueing, and a message left
    on the shared test broker would be run by another suite's worker against its own database."""
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def _e2e_urls(settings):
    settings.ROOT_URLCONF = "tests.e2e.urls"
    settings.DEBUG = False


@pytest.fixture
def new_page(browser, live_server):
    """new_page() → a page in a fresh browser context (its own cookies: another reviewer)."""
    contexts = []

    def make():
        context = browser.new_context(viewport=VIEWPORT, locale="ko-KR", base_url=live_server.url)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.js_errors = errors  # type: ignore[attr-defined]
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def shot():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path))
        return path

    return take


def login(page, username: str, password: str = PASSWORD, next_url: str = "/review/") -> None:
    page.goto(f"/login/?next={next_url}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    # Match the path exactly: a glob on next_url would already match the login page's own ?next=.
    page.wait_for_url(lambda url: urlparse(url).path == next_url)
    page.wait_for_load_state("load")
