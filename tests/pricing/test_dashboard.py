"""The dashboard says where we stand: positions over the whole catalogue, today's moves, what waits, QC
and the LLM against its cap — each figure linked to the list behind it, in a fixed number of queries."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from matcher.models import Match
from pricing import services
from pricing.dashboard import dashboard_figures
from pricing.models import PriceProposal
from tests.pricing.factories import PricingProductFactory, match_for, pricing_admin, pricing_merchandiser

pytestmark = pytest.mark.django_db


def catalogue(extra: int = 0) -> None:
    """One SKU at each position, plus `extra` SKUs without competitors."""
    cheapest = PricingProductFactory(price=90_000)
    match_for(cheapest, price=95_000)
    dearer = PricingProductFactory(price=100_000)
    match_for(dearer, price=80_000)
    at_floor = PricingProductFactory(price=66_000)  # floor: 60,000 × 1.1
    match_for(at_floor, price=50_000)  # a competitor under our floor
    PricingProductFactory()
    for _ in range(extra):
        PricingProductFactory()


def test_positions_and_the_competitor_below_our_floor_count_the_whole_catalogue():
    catalogue()
    d = dashboard_figures()
    assert {bar.key: bar.count for bar in d.positions} == {"cheapest": 1, "dearer": 1, "floor": 1, "none": 1}
    assert d.below_floor == 1 and d.products == 4


def test_todays_moves_waiting_proposals_and_price_moving_pairs():
    catalogue()
    product = PricingProductFactory(price=100_000)
    match_for(product, price=97_000)
    services.reprice_product(product_id=product.pk, cause="test")  # applied: a 3 % cut
    PriceProposal.objects.create(product=product, old_price=97_000, new_price=90_000, floor=66_000,
                                 status=PriceProposal.Status.PENDING)
    pending = match_for(PricingProductFactory(), price=1_000, status=Match.Status.PENDING)
    Match.objects.filter(pk=pending.pk).update(money_at_risk=12_000)

    d = dashboard_figures()

    assert d.changes_today == 1 and d.won_moved_today < 0
    assert d.proposals_waiting == 1 and d.oldest_proposal_at > timezone.now() - timedelta(minutes=1)
    assert (d.pending_pairs, d.price_moving_pairs, d.money_at_risk) == (1, 1, 12_000)


def test_the_page_links_each_figure_and_says_when_automatic_changes_are_stopped(client):
    catalogue()
    services.auto_pricing_halt_set(halted=True, user=pricing_admin(), reason="점검")
    client.force_login(pricing_merchandiser())
    page = client.get(reverse("home")).content.decode()
    for link in ("?position=cheapest", "?position=dearer", "?position=floor", "?position=none", "?below_floor=1",
                 reverse("review:queue"), reverse("review:quality"), reverse("pricing:index")):
        assert link in page, link
    assert "자동 가격 변경이 중지되어 있습니다" in page


@pytest.mark.parametrize("extra", [0, 40])
def test_the_page_runs_a_fixed_number_of_queries(client, django_assert_num_queries, extra):
    catalogue(extra)
    client.force_login(pricing_merchandiser())
    client.get(reverse("home"))  # warm the session
    # session, user, groups, kill switch banner + the dashboard's 12 (of which 3 are QC's, with the
    # QC settings row) — the same with 4 SKUs or 44
    with django_assert_num_queries(17):
        assert client.get(reverse("home")).status_code == 200
