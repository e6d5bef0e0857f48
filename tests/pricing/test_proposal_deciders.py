"""Who decides price proposals is a setting: admins by default; merchandisers too for moves within
PROPOSAL_MERCHANDISER_MAX_CHANGE_PERCENT. A merchandiser without the right sees why and who can; the
pricing page's waiting list refreshes itself after a decision (issue 30, item 4)."""
from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from pricing import services
from pricing.models import PriceProposal
from tests.pricing.factories import pricing_admin, pricing_merchandiser
from tests.pricing.test_pricing_pages import price_of, waiting_proposal

pytestmark = pytest.mark.django_db


def test_by_default_only_admins_decide_and_a_merchandiser_is_told_who_can(client):
    proposal = waiting_proposal()  # an 8.1 % cut
    merchandiser = pricing_merchandiser()
    client.force_login(merchandiser)

    page = client.get(reverse("pricing:index")).content.decode()
    refused = client.post(reverse("pricing:proposal_approve", args=[proposal.pk]))

    assert "가격 제안은 관리자만 승인·거절합니다" in page and "승인·거절할 수 있는 사람: 관리자" in page
    assert refused.status_code == 403 and "관리자만" in refused.content.decode()
    with pytest.raises(PermissionDenied):
        services.proposal_reject(proposal_id=proposal.pk, user=merchandiser)
    proposal.refresh_from_db()
    assert proposal.status == PriceProposal.Status.PENDING and price_of(proposal.product) == 100_000


def test_merchandisers_decide_moves_within_the_setting_and_not_beyond(client, settings):
    settings.PROPOSAL_MERCHANDISER_MAX_CHANGE_PERCENT = Decimal("10")
    small = waiting_proposal()  # 8.1 %: within 10 %
    other = waiting_proposal()
    large = PriceProposal.objects.create(product=other.product, old_price=100_000, new_price=80_000, floor=66_000)
    merchandiser = pricing_merchandiser(username="md-park")
    client.force_login(merchandiser)

    approved = client.post(reverse("pricing:proposal_approve", args=[small.pk]), HTTP_HX_REQUEST="true")

    small.refresh_from_db()
    assert approved.status_code == 200 and small.status == PriceProposal.Status.APPLIED
    assert small.decided_by == merchandiser and price_of(small.product) == small.new_price
    assert "pricing-changed" in approved["HX-Trigger"]
    assert services.proposal_move_percent(large) == Decimal("20.00")
    refused = client.post(reverse("pricing:proposal_reject", args=[large.pk]))
    assert refused.status_code == 403 and "담당자 승인 한도 10%" in refused.content.decode()
    large.refresh_from_db()
    assert large.status == PriceProposal.Status.PENDING


def test_a_move_beyond_the_merchandisers_limit_names_the_limit(settings):
    settings.PROPOSAL_MERCHANDISER_MAX_CHANGE_PERCENT = Decimal("5")
    proposal = waiting_proposal()  # 8.1 %
    refusal = services.proposal_decide_refusal(pricing_merchandiser(), proposal)
    assert refusal is not None and "담당자 승인 한도 5%" in refusal and "8.10%" in refusal
    assert services.proposal_decide_refusal(pricing_admin(), proposal) is None


def test_the_waiting_list_refreshes_itself_after_a_decision(client):
    first, second = waiting_proposal(), waiting_proposal()
    client.force_login(pricing_admin())
    page = client.get(reverse("pricing:index")).content.decode()
    assert 'hx-trigger="pricing-changed from:body"' in page

    services.proposal_approve(proposal_id=first.pk, user=pricing_admin())
    part = client.get(reverse("pricing:index"), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="pr-proposals").content.decode()

    assert "<html" not in part and "1건" in part
    assert f'id="proposal-{second.pk}"' in part and f'id="proposal-{first.pk}"' not in part
