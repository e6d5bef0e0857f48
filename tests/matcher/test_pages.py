"""Dashboard and match-run pages: behind a login, live progress as an htmx partial, LLM spend shown."""
from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User

from matcher.models import LlmVerdictRecord, MatchRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    user = User.objects.create_user("boss", password="x")
    user.groups.add(Group.objects.get(name="admin"))
    client.force_login(user)
    return client


def test_pages_need_a_login(client):
    for url in ("/", "/matcher/runs/", "/matcher/search/"):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_run_page_shows_progress_timings_and_llm_spend(admin_client):
    run = MatchRun.objects.create(status=MatchRun.Status.RUNNING, batches_total=4, batches_done=1,
                                  listings_total=40, listings_done=10, counts={"auto": 3, "review": 5, "reject": 2},
                                  timings={"embed": 1.5, "regions": 0.7})
    LlmVerdictRecord.objects.create(key="k" * 64, image_a="a", image_b="b", model="m", prompt_version="v1",
                                    verdict={}, cost_usd=Decimal("0.0125"), run=run)
    page = admin_client.get(f"/matcher/runs/{run.id}/")
    body = page.content.decode()
    assert page.status_code == 200
    assert "10 / 40" in body and "임베딩" in body
    assert "$0.0125" in body
    assert 'hx-trigger="every 2s"' in body  # keeps polling while running

    partial = admin_client.get(f"/matcher/runs/{run.id}/", HTTP_HX_REQUEST="true")
    assert "<html" not in partial.content.decode() and "10 / 40" in partial.content.decode()


def test_a_run_in_llm_batch_mode_says_how_many_pairs_wait_for_the_batch(admin_client):
    run = MatchRun.objects.create(status=MatchRun.Status.RUNNING, batches_total=1, listings_total=40,
                                  counts={"review": 12, "llm_batch_awaiting": 9, "llm_batch_escalated": 2})
    body = admin_client.get(f"/matcher/runs/{run.id}/").content.decode()
    assert "일괄(Batch API) 제출 9쌍" in body and "상위 모델 재검증 2쌍" in body


def test_starting_a_run_for_an_unknown_sku_says_so(admin_client):
    response = admin_client.post("/matcher/runs/start/", {"sku": "<script>x</script>"}, follow=True)
    body = response.content.decode()
    assert "SKU를 찾을 수 없습니다" in body and "<script>x</script>" not in body
    assert not MatchRun.objects.exists()


def test_a_merchandiser_cannot_start_a_run(client):
    user = User.objects.create_user("m", password="x")
    user.groups.add(Group.objects.get(name="merchandiser"))
    client.force_login(user)
    response = client.post("/matcher/runs/start/", {})
    assert response.status_code in (302, 403)
    assert not MatchRun.objects.exists()
