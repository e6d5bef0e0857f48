"""Every URL of the apps, asked with ids that do not exist and with junk parameters, never answers 500.

The patterns come from the URL resolver itself, so a new page is swept without a line here. Each is asked
as an admin (who may reach everything), by GET and by POST, with int ids that do not exist and query or
form values a careless or hostile client sends (NaN, Infinity, huge numbers, text where numbers go)."""
from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tests.pricing.factories import pricing_admin

pytestmark = pytest.mark.django_db

JUNK = {
    "auto": "NaN", "review": "Infinity", "since": "99999999999d", "cursor": "%%%", "band": "9e999",
    "page": "-1", "match": "99999999", "q": "'\"<script>", "sku": "=1+2", "days": "1e400", "ids": "x",
    "action": "approve", "reason": "nope", "next": "//evil.example/",
}


def _patterns(resolver: URLResolver, prefix: str = "") -> list[tuple[str, URLPattern]]:
    out: list[tuple[str, URLPattern]] = []
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            if route.startswith("admin/"):  # Django's own admin, tested by Django
                continue
            out.extend(_patterns(entry, route))
        else:
            out.append((route, entry))
    return out


def _concrete(route: str) -> str:
    return "/" + (route.replace("<int:", "<").replace("<path:", "<")
                  .replace("<match_id>", "99999999").replace("<claim_id>", "99999999")
                  .replace("<proposal_id>", "99999999").replace("<change_id>", "99999999")
                  .replace("<run_id>", "99999999").replace("<report_id>", "99999999")
                  .replace("<alert_id>", "99999999")
                  .replace("<sku>", "NO-SUCH-SKU")
                  .replace("<path>", "no/such/file.jpg"))


ROUTES = sorted({_concrete(route) for route, _ in _patterns(get_resolver())})


def test_the_sweep_reaches_every_app():
    assert any(r.startswith("/review/") for r in ROUTES)
    assert any(r.startswith("/pricing/") for r in ROUTES)
    assert any(r.startswith("/matcher/") for r in ROUTES)
    assert not [r for r in ROUTES if "<" in r], "every path parameter has a stand-in"


@pytest.mark.parametrize("url", ROUTES)
def test_no_url_answers_500_to_missing_ids_or_junk(client, url):
    client.raise_request_exception = False
    client.force_login(pricing_admin())
    for response in (
        client.get(url),
        client.get(url, JUNK),
        client.post(url, JUNK),
        client.post(url, JUNK, HTTP_HX_REQUEST="true"),
    ):
        assert response.status_code < 500, (url, response.status_code)
