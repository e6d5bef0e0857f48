"""The kill switch "자동 가격 변경 중지": an admin stops every automatic price change at once; the rules
still propose, nothing applies by itself, every page says so, and each switch is its own audit row."""
from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from matcher.models import Product
from pricing import services
from pricing.models import AutoPricingHalt, PriceChange, PriceProposal
from pricing.tasks import reprice_product_task
from tests.pricing.factories import PricingProductFactory, match_for, pricing_admin, pricing_merchandiser
from tests.pricing.test_pricing_worker import wait_for


def stop(client, reason: str = "쿠팡 가격 오류 조사 중"):
    return client.post(reverse("pricing:halt"), {"halted": "1", "reason": reason}, follow=True)


@pytest.mark.django_db
def test_an_admin_stops_automatic_changes_and_the_rules_only_propose(client):
    admin = pricing_admin(username="park")
    client.force_login(admin)
    product = PricingProductFactory(price=100_000, cost=60_000)
    match_for(product, price=98_000)  # a 2-3 % cut: within the auto-apply limit

    page = stop(client).content.decode()
    assert "자동 가격 변경을 중지했습니다" in page

    proposal = services.reprice_product(product_id=product.pk, cause="test")
    assert proposal is not None and proposal.status == PriceProposal.Status.PENDING
    assert proposal.held_reason == services.HALTED_REASON
    assert Product.objects.get(pk=product.pk).price == 100_000 and not PriceChange.objects.exists()

    # An admin may still approve by hand: the switch stops the machine, not the people.
    services.proposal_approve(proposal_id=proposal.pk, user=admin)
    assert Product.objects.get(pk=product.pk).price == proposal.new_price

    [row] = AutoPricingHalt.objects.all()
    assert (row.halted, row.user, row.reason) == (True, admin, "쿠팡 가격 오류 조사 중")


@pytest.mark.django_db
def test_while_stopped_every_page_shows_who_stopped_it_and_why(client):
    client.force_login(pricing_admin(username="park"))
    stop(client, reason="<b>점검</b>")
    client.force_login(pricing_merchandiser())
    for url in (reverse("home"), reverse("review:queue"), reverse("pricing:index")):
        page = client.get(url).content.decode()
        assert 'data-testid="halt-banner"' in page and "park" in page, url
        assert "&lt;b&gt;점검&lt;/b&gt;" in page and "<b>점검</b>" not in page  # the reason is escaped


@pytest.mark.django_db
def test_stopping_needs_a_reason_and_an_admin_and_switching_twice_is_refused(client):
    client.force_login(pricing_merchandiser())
    assert client.post(reverse("pricing:halt"), {"halted": "1", "reason": "x"}).status_code == 403
    client.force_login(pricing_admin())
    assert "중지 사유를 적어 주세요" in stop(client, reason=" ").content.decode()
    assert not AutoPricingHalt.objects.exists()
    stop(client)
    assert "이미 중지되어 있습니다" in stop(client).content.decode()
    assert AutoPricingHalt.objects.count() == 1


@pytest.mark.django_db
def test_started_again_the_rules_apply_by_themselves_and_both_switches_are_audited(client):
    admin = pricing_admin()
    client.force_login(admin)
    product = PricingProductFactory(price=100_000, cost=60_000)
    stop(client)
    client.post(reverse("pricing:halt"), {"halted": "0", "reason": "조사 끝"})
    match_for(product, price=98_000)

    proposal = services.reprice_product(product_id=product.pk, cause="test")

    assert proposal is not None and proposal.status == PriceProposal.Status.APPLIED
    assert [(r.halted, r.reason) for r in AutoPricingHalt.objects.order_by("id")] == [
        (True, "쿠팡 가격 오류 조사 중"), (False, "조사 끝")
    ]
    assert 'data-testid="halt-banner"' not in client.get(reverse("home")).content.decode()


@pytest.mark.django_db
def test_switch_rows_cannot_be_changed_or_deleted_even_in_sql():
    row = AutoPricingHalt.objects.create(halted=True, reason="x")
    for sql in ("UPDATE pricing_autopricinghalt SET halted = false", "DELETE FROM pricing_autopricinghalt"):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert AutoPricingHalt.objects.get(pk=row.pk).halted


@pytest.mark.django_db(transaction=True)
def test_the_worker_holds_a_change_while_stopped(pricing_worker):
    services.auto_pricing_halt_set(halted=True, user=pricing_admin(), reason="점검")
    product = PricingProductFactory(price=100_000, cost=60_000)
    match_for(product, price=98_000)

    reprice_product_task.delay(product.pk, "match_run")

    wait_for(lambda: PriceProposal.objects.filter(product=product).exists(), "propose")
    proposal = PriceProposal.objects.get(product=product)
    assert (proposal.status, proposal.held_reason) == (PriceProposal.Status.PENDING, services.HALTED_REASON)
    assert Product.objects.get(pk=product.pk).price == 100_000
