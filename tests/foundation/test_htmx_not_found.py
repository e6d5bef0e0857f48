"""An htmx request for an id that does not exist gets a one-line Korean part aimed at the page's error
area, with status 404; a normal request still gets the full Korean 404 page (issue 29, item 5)."""
from __future__ import annotations

import pytest

from tests.pricing.factories import pricing_admin

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def admin_client(client, settings):
    settings.DEBUG = False
    client.force_login(pricing_admin())
    return client


def assert_partial(response) -> None:
    assert response.status_code == 404
    html = response.content.decode()
    assert "찾을 수 없습니다 (404)" in html and 'id="not-found-part"' in html
    assert "<html" not in html and "<body" not in html
    assert response["HX-Retarget"] == "#htmx-error" and response["HX-Reswap"] == "innerHTML"


def test_an_htmx_poll_of_a_run_that_does_not_exist_gets_the_404_part(admin_client):
    assert_partial(admin_client.get("/matcher/runs/99999999/", **HTMX))


@pytest.mark.parametrize("url", ["/pricing/proposals/99999999/approve/", "/pricing/changes/99999999/rollback/"])
def test_an_htmx_action_on_a_proposal_or_change_that_does_not_exist_gets_the_404_part(admin_client, url):
    assert_partial(admin_client.post(url, **HTMX))


def test_a_normal_request_still_gets_the_full_korean_404_page(admin_client):
    response = admin_client.get("/matcher/runs/99999999/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "<html" in html and 'id="not-found"' in html and 'href="/"' in html
    assert "HX-Retarget" not in response


def test_every_page_has_the_area_the_part_lands_in_and_the_script_that_swaps_it(admin_client):
    html = admin_client.get("/pricing/").content.decode()
    assert 'id="htmx-error"' in html and "js/htmx-errors.js" in html
