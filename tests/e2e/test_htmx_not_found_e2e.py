"""In a real browser: when an htmx request meets an id that no longer exists, the page shows the short
Korean 404 notice in its error area instead of a silent failure or a whole page in a fragment."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from matcher.models import MatchRun
from tests.e2e.conftest import login
from tests.review.factories import reviewer

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_polled_run_that_disappears_shows_the_korean_404_notice(new_page):
    reviewer("admin-lee", admin=True)
    run = MatchRun.objects.create(status=MatchRun.Status.RUNNING)
    page = new_page()
    login(page, "admin-lee", next_url=f"/matcher/runs/{run.pk}/")
    expect(page.locator("#run-progress")).to_be_visible()

    MatchRun.objects.filter(pk=run.pk).delete()  # the page polls every 2 s

    expect(page.locator("#htmx-error")).to_contain_text("찾을 수 없습니다 (404)")
    expect(page.locator("#run-progress")).to_be_visible()  # the page itself stays as it was
    assert page.locator("#not-found").count() == 0  # not the full 404 page swapped in
    assert page.js_errors == []
