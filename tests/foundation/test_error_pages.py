"""With DEBUG off, a missing page and a crash answer with the Korean pages and a way back."""
from __future__ import annotations

import pytest
from django.test import Client

from tests.pricing.factories import pricing_admin

pytestmark = pytest.mark.django_db


def test_a_missing_page_is_the_korean_404_with_a_way_back(client, settings):
    settings.DEBUG = False
    client.force_login(pricing_admin())
    response = client.get("/pricing/sku/NO-SUCH-SKU/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "찾을 수 없습니다" in html and 'href="/"' in html and "Traceback" not in html


def test_a_crash_is_the_korean_500_page_not_a_debug_page(settings, monkeypatch):
    settings.DEBUG = False
    from matcher import views

    def boom(*args, **kwargs):
        raise RuntimeError("secret detail /etc/passwd")

    monkeypatch.setattr(views, "match_run_start", boom)
    client = Client(raise_request_exception=False)
    client.force_login(pricing_admin())
    response = client.post("/matcher/runs/start/")
    assert response.status_code == 500
    html = response.content.decode()
    assert "일시적인 오류" in html and 'href="/"' in html
    assert "secret detail" not in html and "Traceback" not in html
