"""Review ↔ the apps around it through matcher.signals: what a decision and a finished run set off."""

from __future__ import annotations

import pytest
from django.urls import reverse

from matcher.models import Match
from matcher.signals import run_finished_on_commit
from pricing import tasks as pricing_tasks
from review import services
from tests.factories import ProductFactory
from tests.review.factories import make_pair, reviewer

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def test_a_finished_match_run_puts_the_qc_sample_draw_on_the_broker_after_commit(
    django_capture_on_commit_callbacks, broker_messages
):
    before = len(broker_messages("review.tasks.audit_sample_draw_task"))

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run_finished_on_commit(run_id=7)
    assert len(broker_messages("review.tasks.audit_sample_draw_task")) == before  # not before the commit
    for callback in callbacks:
        callback()

    assert len(broker_messages("review.tasks.audit_sample_draw_task")) == before + 1


def test_a_broker_outage_neither_undoes_the_decision_nor_stops_the_other_messages(
    django_capture_on_commit_callbacks, broker_messages, monkeypatch
):
    def broker_down(*args: object) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(pricing_tasks.reprice_product_task, "delay", broker_down)
    a = reviewer("a")
    pair = make_pair()
    held = services.claim_pair(user=a)

    with django_capture_on_commit_callbacks(execute=True):
        services.decision_record(user=a, match_id=pair.pk, action="approve", claim_id=held.claim_id)

    pair.refresh_from_db()
    assert pair.status == Match.Status.MATCHED and pair.decided_by_human
    assert f"({pair.product_id},)" in broker_messages("pricing.tasks.money_at_risk_refresh_task")


def test_undo_and_bulk_decisions_reprice_with_their_own_causes(
    django_capture_on_commit_callbacks, broker_messages
):
    a = reviewer("a")
    single, first, second = make_pair(), make_pair(product=ProductFactory()), make_pair()
    held = services.claim_pair(user=a, match_id=single.pk)
    services.decision_record(user=a, match_id=single.pk, action="approve", claim_id=held.claim_id)

    with django_capture_on_commit_callbacks(execute=True):
        services.decision_undo(user=a)
        services.decisions_bulk(user=a, match_ids=[first.pk, second.pk], action="approve")

    sent = broker_messages("pricing.tasks.reprice_product_task")
    assert f"({single.product_id}, 'review:undo:match={single.pk}', {a.pk})" in sent
    assert f"({first.product_id}, 'review:bulk_approve', {a.pk})" in sent
    assert f"({second.product_id}, 'review:bulk_approve', {a.pk})" in sent


def test_the_pair_page_loads_its_price_preview_from_pricing_with_a_plain_link_too(client):
    client.force_login(reviewer("merch"))
    pair = make_pair(listing_kwargs={"price": 168_000})
    url = reverse("pricing:pair_price_preview", args=[pair.pk])

    page = client.get(reverse("review:queue")).content.decode()
    part = client.get(url, **HTMX)
    plain = client.get(url)

    assert f'hx-get="{url}"' in page and f'href="{url}"' in page
    assert part.status_code == 200 and "<html" not in part.content.decode()
    assert 'id="rv-price-preview"' in part.content.decode() and "원" in part.content.decode()
    assert plain.status_code == 200 and "<html" in plain.content.decode()
    assert f"{reverse('review:queue')}?match={pair.pk}" in plain.content.decode()
