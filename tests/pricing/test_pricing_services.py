"""pricing.services against the real database: proposals, auto-apply, approvals, rollbacks, the audit log."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from matcher.models import Match, Product
from pricing import services
from pricing.models import (
    CompetitorPriceObservation,
    PriceAuditEntry,
    PriceChange,
    PriceProposal,
    PricingRun,
)
from tests.pricing.factories import PricingProductFactory, match_for, policy_set, pricing_admin

pytestmark = pytest.mark.django_db


def reprice(product: Product, cause: str = "test"):
    return services.reprice_product(product_id=product.pk, cause=cause)


def price_of(product: Product) -> int:
    return Product.objects.values_list("price", flat=True).get(pk=product.pk)


def row_counts() -> tuple[int, int, int, int]:
    return (
        PriceProposal.objects.count(),
        PriceChange.objects.count(),
        PriceAuditEntry.objects.count(),
        CompetitorPriceObservation.objects.count(),
    )


def test_a_small_cut_under_the_cheapest_confirmed_listing_applies_automatically_with_its_audit_entry():
    product = PricingProductFactory(price=100_000, cost=60_000)
    cheapest = match_for(product, price=97_000, mall="무신사")
    match_for(product, price=99_000)

    proposal = reprice(product, cause="review decision")

    assert proposal.status == PriceProposal.Status.APPLIED
    assert price_of(product) == 96_900
    assert proposal.followed_listing_id == cheapest.listing_id
    assert proposal.followed_price == 97_000
    assert any("무신사" in n and "97,000원" in n for n in proposal.notes)
    change = PriceChange.objects.get(proposal=proposal)
    assert (change.old_price, change.new_price, change.automatic) == (100_000, 96_900, True)
    entry = PriceAuditEntry.objects.get(change=change)
    assert entry.action == PriceAuditEntry.Action.APPLIED
    assert (entry.old_price, entry.new_price, entry.user, entry.automatic) == (100_000, 96_900, None, True)
    assert entry.match_id == cheapest.pk
    assert entry.match_snapshot["status"] == "matched"
    assert entry.cause == "review decision"
    assert "하한가 66,000원" in entry.reason


def test_re_running_with_nothing_changed_creates_nothing():
    product = PricingProductFactory()
    match_for(product, price=97_000)
    assert reprice(product) is not None
    before = row_counts()

    assert reprice(product) is None
    assert reprice(product) is None
    assert row_counts() == before


def test_a_price_change_of_the_competitor_creates_a_new_proposal():
    product = PricingProductFactory()
    match = match_for(product, price=97_000)
    reprice(product)
    match.listing.price = 96_000
    match.listing.save()

    proposal = reprice(product)

    assert proposal.new_price == 95_900
    assert price_of(product) == 95_900


def test_a_move_beyond_the_auto_apply_limit_waits_for_an_admin():
    product = PricingProductFactory(price=100_000)
    match_for(product, price=92_000)  # 91,900 is an 8.1 % cut; auto-apply allows 5 %

    proposal = reprice(product)

    assert proposal.status == PriceProposal.Status.PENDING
    assert proposal.new_price == 91_900
    assert "자동 적용 한도" in proposal.held_reason
    assert price_of(product) == 100_000
    assert not PriceChange.objects.exists()


def test_pending_and_rejected_matches_never_move_the_price():
    product = PricingProductFactory()
    match_for(product, price=80_000, status=Match.Status.PENDING)
    match_for(product, price=70_000, status=Match.Status.REJECTED)

    assert reprice(product) is None
    assert price_of(product) == 100_000
    assert not PriceProposal.objects.exists()


def test_a_listing_not_seen_within_the_stale_cut_off_no_longer_counts():
    product = PricingProductFactory()
    match_for(product, price=97_000, last_seen=timezone.now() - timedelta(hours=49))  # default cut-off 48 h
    fresh = match_for(product, price=99_000)

    proposal = reprice(product)

    assert proposal.followed_listing_id == fresh.listing_id
    assert price_of(product) == 98_900


def test_the_floor_stops_the_cut_and_says_so():
    product = PricingProductFactory(price=70_000, cost=60_000)  # floor 66,000
    match_for(product, price=65_000)

    proposal = reprice(product)

    assert proposal.new_price == 66_000
    assert "floor" in proposal.limits_hit
    assert any("하한가에 걸려" in n for n in proposal.notes)


def test_while_quality_control_pauses_automatic_changes_a_proposal_waits(monkeypatch):
    import review.selectors

    monkeypatch.setattr(review.selectors, "auto_pricing_paused", lambda: True, raising=False)
    product = PricingProductFactory()
    match_for(product, price=97_000)

    proposal = reprice(product)

    assert proposal.status == PriceProposal.Status.PENDING
    assert proposal.held_reason == services.PAUSED_REASON
    assert price_of(product) == 100_000


def test_a_failing_pause_switch_holds_automatic_changes(monkeypatch):
    import review.selectors

    def broken() -> bool:
        raise RuntimeError("cache down")

    monkeypatch.setattr(review.selectors, "auto_pricing_paused", broken, raising=False)
    assert services.auto_pricing_paused() is True


def test_policies_override_field_by_field_sku_over_brand_over_category_over_global():
    product = PricingProductFactory(sku="LAYER-1", brand="아크테릭스", category="아우터", price=100_000, cost=60_000)
    policy_set(scope="global", key="", undercut_amount=500, rounding=100)
    policy_set(scope="category", key="아우터", undercut_amount=1_000, min_margin_percent=Decimal("20"))
    policy_set(scope="brand", key="아크테릭스", undercut_amount=2_000)
    policy_set(scope="sku", key="LAYER-1", min_margin_percent=Decimal("50"))
    match_for(product, price=97_050)

    proposal = reprice(product)

    # undercut 2,000 (brand), 100-won rounding (global), margin 50 % (SKU): floor 90,000.
    assert proposal.new_price == 95_000
    assert proposal.floor == 90_000
    assert proposal.policy["sources"]["undercut_amount"] == "브랜드 아크테릭스"
    assert proposal.policy["sources"]["min_margin_percent"] == "SKU LAYER-1"
    assert proposal.policy["sources"]["rounding"] == "전체"


def test_an_admin_approval_applies_the_waiting_proposal_and_audits_the_user():
    admin = pricing_admin()
    product = PricingProductFactory()
    match_for(product, price=92_000)
    proposal = reprice(product)

    services.proposal_approve(proposal_id=proposal.pk, user=admin)

    assert price_of(product) == 91_900
    entry = PriceAuditEntry.objects.get(proposal=proposal)
    assert (entry.action, entry.user, entry.automatic) == (PriceAuditEntry.Action.APPLIED, admin, False)
    assert reprice(product) is None  # the approval is what the inputs now say: nothing new


def test_an_approval_is_refused_once_the_followed_match_is_no_longer_confirmed():
    admin = pricing_admin()
    product = PricingProductFactory()
    match = match_for(product, price=92_000)
    proposal = reprice(product)
    Match.objects.filter(pk=match.pk).update(status=Match.Status.REJECTED)

    with pytest.raises(ValidationError):
        services.proposal_approve(proposal_id=proposal.pk, user=admin)
    assert price_of(product) == 100_000


def test_a_rejected_proposal_is_audited_and_not_proposed_again_while_nothing_changes():
    admin = pricing_admin()
    product = PricingProductFactory()
    match_for(product, price=92_000)
    proposal = reprice(product)

    services.proposal_reject(proposal_id=proposal.pk, user=admin, note="시즌오프")

    assert PriceAuditEntry.objects.filter(action=PriceAuditEntry.Action.REJECTED, user=admin).count() == 1
    assert reprice(product) is None
    assert price_of(product) == 100_000


def test_rejecting_the_match_that_set_the_price_re_prices_from_the_remaining_matches():
    product = PricingProductFactory(price=100_000)
    bad = match_for(product, price=97_000)
    match_for(product, price=99_000)
    reprice(product)
    assert price_of(product) == 96_900

    Match.objects.filter(pk=bad.pk).update(status=Match.Status.REJECTED, decided_by_human=True)
    proposal = reprice(product, cause="review: rejected")

    assert proposal.status == PriceProposal.Status.APPLIED
    assert price_of(product) == 98_900  # under the remaining 99,000, though raising is off by default
    assert any("더 이상 확정" in n for n in proposal.notes)
    assert reprice(product) is None


def test_rejecting_the_only_match_restores_the_price_before_it():
    product = PricingProductFactory(price=100_000)
    bad = match_for(product, price=97_000)
    reprice(product)

    Match.objects.filter(pk=bad.pk).update(status=Match.Status.REJECTED)
    reprice(product)

    assert price_of(product) == 100_000


def test_a_rise_of_the_cheapest_does_not_raise_our_price_by_default():
    product = PricingProductFactory()
    match = match_for(product, price=97_000)
    reprice(product)
    match.listing.price = 99_500
    match.listing.save()

    assert reprice(product) is None
    assert price_of(product) == 96_900


def test_a_rise_follows_the_cheapest_up_to_the_ceiling_when_raising_is_on():
    policy_set(scope="global", key="", raise_when_cheapest_rises=True, raise_ceiling_price=98_000)
    product = PricingProductFactory(price=95_000)
    match_for(product, price=120_000)

    proposal = reprice(product)

    assert proposal.new_price == 98_000
    assert "ceiling" in proposal.limits_hit


def test_a_rollback_restores_the_old_price_is_audited_and_is_not_undone_by_a_re_run():
    admin = pricing_admin()
    product = PricingProductFactory()
    match_for(product, price=97_000)
    change = PriceChange.objects.get(proposal=reprice(product))

    rollback = services.change_rollback(change_id=change.pk, user=admin)

    assert price_of(product) == 100_000
    assert (rollback.kind, rollback.old_price, rollback.new_price) == ("rollback", 96_900, 100_000)
    entry = PriceAuditEntry.objects.get(change=rollback)
    assert (entry.action, entry.user, entry.old_price, entry.new_price) == ("rolled_back", admin, 96_900, 100_000)
    assert PriceProposal.objects.get(pk=change.proposal_id).status == PriceProposal.Status.ROLLED_BACK
    assert reprice(product) is None
    assert price_of(product) == 100_000
    with pytest.raises(ValidationError):
        services.change_rollback(change_id=change.pk, user=admin)


def test_a_rollback_is_refused_when_a_later_change_moved_the_price_again():
    admin = pricing_admin()
    product = PricingProductFactory()
    match = match_for(product, price=97_000)
    first = PriceChange.objects.get(proposal=reprice(product))
    match.listing.price = 96_000
    match.listing.save()
    reprice(product)

    with pytest.raises(ValidationError):
        services.change_rollback(change_id=first.pk, user=admin)
    assert price_of(product) == 95_900


def test_rolling_back_a_run_restores_every_price_it_changed():
    admin = pricing_admin()
    products = [PricingProductFactory() for _ in range(3)]
    for p in products[:2]:
        match_for(p, price=97_000)
    run = PricingRun.objects.create(cause="전체 재계산", product_ids=[p.pk for p in products])
    assert services.pricing_run_execute(run_id=run.pk, start=0, batch=2) == 2
    assert services.pricing_run_execute(run_id=run.pk, start=2, batch=2) is None
    run.refresh_from_db()
    assert run.finished_at is not None
    assert (run.evaluated, run.proposed, run.applied) == (3, 2, 2)
    assert [price_of(p) for p in products] == [96_900, 96_900, 100_000]

    result = services.run_rollback(run_id=run.pk, user=admin)

    assert sorted(result.restored) == sorted(p.pk for p in products[:2])
    assert [price_of(p) for p in products] == [100_000, 100_000, 100_000]
    assert PriceAuditEntry.objects.filter(action="run_rolled_back", run=run).count() == 2
    with pytest.raises(ValidationError):
        services.run_rollback(run_id=run.pk, user=admin)


def test_the_audit_log_refuses_updates_and_deletes_in_the_model_and_in_the_database():
    product = PricingProductFactory()
    match_for(product, price=97_000)
    reprice(product)
    entry = PriceAuditEntry.objects.get()

    with pytest.raises(ValidationError):
        entry.save()
    with pytest.raises(ValidationError):
        PriceAuditEntry.objects.all().delete()
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE pricing_priceauditentry SET new_price = 1 WHERE id = %s", [entry.pk])
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM pricing_priceauditentry WHERE id = %s", [entry.pk])
    assert PriceAuditEntry.objects.get().new_price == 96_900


def test_deleting_a_product_keeps_its_audit_entries_readable():
    product = PricingProductFactory(sku="GONE-1")
    match_for(product, price=97_000)
    reprice(product)

    product.delete()

    entry = PriceAuditEntry.objects.get()
    assert (entry.product_id, entry.sku, entry.new_price) == (None, "GONE-1", 96_900)


def test_price_preview_says_what_we_would_set_without_writing():
    product = PricingProductFactory()
    match_for(product, price=99_000)
    candidate = match_for(product, price=96_000, status=Match.Status.PENDING)
    before = row_counts()

    preview = services.price_preview(product=product, listing=candidate.listing)

    assert (preview.price, preview.floor, preview.follows_listing) == (95_900, 66_000, True)
    assert preview.notes
    assert row_counts() == before
    assert price_of(product) == 100_000


# --- Property: the database path creates nothing when nothing changed, and follows only what counts ---

listing_specs = st.lists(
    st.tuples(
        st.integers(min_value=50_000, max_value=150_000),  # price
        st.sampled_from([0, 2_500]),  # shipping
        st.sampled_from(["matched", "pending", "rejected"]),
        st.booleans(),  # stale
    ),
    min_size=0,
    max_size=5,
)


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=listing_specs, price=st.integers(min_value=60_000, max_value=140_000))
def test_property_reprice_follows_only_confirmed_fresh_listings_and_a_re_run_creates_nothing(specs, price):
    with transaction.atomic():
        product = PricingProductFactory(price=price, cost=50_000)
        now = timezone.now()
        for listing_price, shipping, status, stale in specs:
            match_for(product, price=listing_price, shipping_fee=shipping, status=status,
                      last_seen=now - timedelta(hours=100 if stale else 1))

        proposal = reprice(product)

        if proposal is not None:
            followed = Match.objects.get(pk=proposal.followed_match_id)
            assert followed.status == "matched"
            assert followed.listing.last_seen > now - timedelta(hours=48)
            assert proposal.new_price >= proposal.floor
        counts = row_counts()
        assert reprice(product) is None
        assert row_counts() == counts
        transaction.set_rollback(True)
