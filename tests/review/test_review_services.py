"""Claims, decisions, undo, skips and bulk decisions: the rows written and the refusals."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from matcher.models import Match
from pricing import money_at_risk
from review import selectors, services
from review.models import Claim, ReviewDecision
from review.queue import Cursor, QueueFilters
from tests.review.factories import make_pair, reviewer

pytestmark = pytest.mark.django_db


def test_two_reviewers_get_different_pairs_and_a_reload_keeps_the_same_one():
    a, b = reviewer("a"), reviewer("b")
    first, second = make_pair(money_at_risk=9000), make_pair(money_at_risk=5000)

    got_a = services.claim_pair(user=a)
    got_b = services.claim_pair(user=b)
    again_a = services.claim_pair(user=a)

    assert got_a.pk == first.pk  # highest money at risk first
    assert got_b.pk == second.pk
    assert again_a.pk == first.pk and again_a.claim_id == got_a.claim_id
    assert Claim.objects.filter(released_at__isnull=True).count() == 2


def test_a_third_reviewer_gets_nothing_while_both_pairs_are_held():
    a, b, c = reviewer("a"), reviewer("b"), reviewer("c")
    make_pair(), make_pair()
    services.claim_pair(user=a)
    services.claim_pair(user=b)

    assert services.claim_pair(user=c) is None


def test_an_expired_lease_frees_the_pair_and_the_old_holder_can_no_longer_decide(settings):
    a, b = reviewer("a"), reviewer("b")
    pair = make_pair()
    held = services.claim_pair(user=a)
    Claim.objects.filter(pk=held.claim_id).update(expires_at=timezone.now() - timedelta(seconds=1))

    taken = services.claim_pair(user=b)

    assert taken.pk == pair.pk
    assert Claim.objects.get(pk=held.claim_id).release_reason == Claim.Release.EXPIRED
    with pytest.raises(services.ReviewRefused, match="b 님이 검토 중"):
        services.decision_record(user=a, match_id=pair.pk, action="approve", claim_id=held.claim_id)
    pair.refresh_from_db()
    assert pair.status == Match.Status.PENDING
    assert not ReviewDecision.objects.exists()


def test_an_expired_lease_nobody_took_over_still_decides():
    a = reviewer("a")
    pair = make_pair()
    held = services.claim_pair(user=a)
    Claim.objects.filter(pk=held.claim_id).update(expires_at=timezone.now() - timedelta(seconds=1))

    services.decision_record(user=a, match_id=pair.pk, action="approve", claim_id=held.claim_id)

    pair.refresh_from_db()
    assert pair.status == Match.Status.MATCHED


def test_approving_sets_matched_by_a_human_and_writes_the_audit_row_with_a_snapshot():
    a = reviewer("a")
    pair = make_pair(images=True, confidence=Decimal("0.8420"))
    held = services.claim_pair(user=a)

    decision = services.decision_record(
        user=a, match_id=pair.pk, action="approve", claim_id=held.claim_id, note="로고 동일"
    )

    pair.refresh_from_db()
    assert (pair.status, pair.decided_by_human) == (Match.Status.MATCHED, True)
    row = ReviewDecision.objects.get()
    assert row.pk == decision.pk
    assert (row.user, row.action, row.note, row.claim_id) == (a, "approve", "로고 동일", held.claim_id)
    assert (row.status_before, row.status_after) == ("pending", "matched")
    assert row.confidence == Decimal("0.8420") and row.thresholds_version == pair.thresholds.version
    assert row.snapshot["evidence"]["cosine"] == 0.912
    assert row.snapshot["theirs"]["price"] == pair.listing.price
    assert Claim.objects.get(pk=held.claim_id).release_reason == Claim.Release.DECIDED


def test_rejecting_needs_a_reason_and_records_it():
    a = reviewer("a")
    pair = make_pair()
    held = services.claim_pair(user=a)

    with pytest.raises(services.ReviewRefused, match="제외 사유"):
        services.decision_record(user=a, match_id=pair.pk, action="reject", claim_id=held.claim_id)
    services.decision_record(user=a, match_id=pair.pk, action="reject", claim_id=held.claim_id, reason="kids")

    pair.refresh_from_db()
    assert pair.status == Match.Status.REJECTED
    assert ReviewDecision.objects.get().reason == "kids"


def test_deciding_an_already_decided_pair_is_refused_with_who_decided_it():
    a, b = reviewer("a"), reviewer("b")
    pair = make_pair()
    held = services.claim_pair(user=a)
    services.decision_record(user=a, match_id=pair.pk, action="approve", claim_id=held.claim_id)

    with pytest.raises(services.ReviewRefused) as refused:
        services.decision_record(user=b, match_id=pair.pk, action="reject", claim_id=None, reason="other")

    assert (
        "이미 a 님이" in refused.value.messages[0] and "다시 결정할 수 없습니다" in refused.value.messages[0]
    )
    assert ReviewDecision.objects.count() == 1
    pair.refresh_from_db()
    assert pair.status == Match.Status.MATCHED


def test_a_decision_without_the_lease_is_refused():
    a, b = reviewer("a"), reviewer("b")
    pair = make_pair()
    services.claim_pair(user=a)

    with pytest.raises(services.ReviewRefused, match="검토 중"):
        services.decision_record(user=b, match_id=pair.pk, action="approve", claim_id=None)


def test_skip_keeps_the_pair_from_that_reviewer_but_not_from_colleagues():
    a, b = reviewer("a"), reviewer("b")
    first, second = make_pair(money_at_risk=9000), make_pair(money_at_risk=100)
    held = services.claim_pair(user=a)

    services.decision_skip(user=a, match_id=first.pk, claim_id=held.claim_id)

    assert services.claim_pair(user=a).pk == second.pk
    assert services.claim_pair(user=b).pk == first.pk
    first.refresh_from_db()
    assert first.status == Match.Status.PENDING
    assert ReviewDecision.objects.get(action="skip").match_id == first.pk


def test_next_and_previous_walk_the_queue_order_and_release_the_pair_left():
    a = reviewer("a")
    p1, p2, p3 = make_pair(money_at_risk=300), make_pair(money_at_risk=200), make_pair(money_at_risk=100)
    held = services.claim_pair(user=a)
    assert held.pk == p1.pk

    nxt = services.claim_pair(user=a, cursor=Cursor.of(held), direction="next")
    nxt2 = services.claim_pair(user=a, cursor=Cursor.of(nxt), direction="next")
    back = services.claim_pair(user=a, cursor=Cursor.of(nxt2), direction="prev")

    assert [nxt.pk, nxt2.pk, back.pk] == [p2.pk, p3.pk, p2.pk]
    assert Claim.objects.filter(user=a, released_at__isnull=True).get().match_id == p2.pk
    assert Claim.objects.get(pk=held.claim_id).release_reason == Claim.Release.NAVIGATED


def test_filters_limit_the_pairs_offered():
    a = reviewer("a")
    make_pair(money_at_risk=900, listing_kwargs={"mall": "무신사"})
    wanted = make_pair(money_at_risk=100, listing_kwargs={"mall": "29CM"}, confidence=Decimal("0.8700"))

    assert services.claim_pair(user=a, filters=QueueFilters(mall="29CM")).pk == wanted.pk
    assert services.claim_pair(user=a, filters=QueueFilters(band="0.85")).pk == wanted.pk
    assert services.claim_pair(user=a, filters=QueueFilters(q=wanted.product.sku)).pk == wanted.pk
    assert (
        services.claim_pair(user=a, filters=QueueFilters(q=wanted.product.product_number.lower())).pk
        == wanted.pk
    )
    assert services.claim_pair(user=a, filters=QueueFilters(band="0.70")) is None


def test_undo_restores_the_pair_records_the_undo_and_gives_the_pair_back():
    a = reviewer("a")
    pair = make_pair()
    held = services.claim_pair(user=a)
    decision = services.decision_record(
        user=a, match_id=pair.pk, action="reject", claim_id=held.claim_id, reason="other_colour"
    )

    undo = services.decision_undo(user=a)

    pair.refresh_from_db()
    assert (pair.status, pair.decided_by_human) == (Match.Status.PENDING, False)
    assert undo.undoes_id == decision.pk and undo.action == "undo"
    assert (undo.status_before, undo.status_after) == ("rejected", "pending")
    assert Claim.objects.get(user=a, released_at__isnull=True).match_id == pair.pk
    assert services.claim_pair(user=a).pk == pair.pk
    with pytest.raises(services.ReviewRefused, match="되돌릴 결정이 없습니다"):
        services.decision_undo(user=a)


def test_undo_is_refused_once_the_pair_was_decided_again():
    a, b = reviewer("a"), reviewer("b")
    pair = make_pair()
    held = services.claim_pair(user=a)
    services.decision_record(user=a, match_id=pair.pk, action="approve", claim_id=held.claim_id)
    Match.objects.filter(pk=pair.pk).update(status=Match.Status.PENDING, decided_by_human=False)  # re-matched
    held_b = services.claim_pair(user=b)
    services.decision_record(
        user=b, match_id=pair.pk, action="reject", claim_id=held_b.claim_id, reason="vest"
    )

    with pytest.raises(services.ReviewRefused, match="되돌릴 수 없습니다"):
        services.decision_undo(user=a)
    pair.refresh_from_db()
    assert pair.status == Match.Status.REJECTED


def test_an_audited_auto_match_keeps_its_status_until_a_reviewer_rejects_it():
    a = reviewer("a")
    audited = make_pair(
        bucket=Match.Bucket.AUTO, status=Match.Status.MATCHED, audit_sample=True, confidence=Decimal("0.9600")
    )

    held = services.claim_pair(user=a)
    assert held.pk == audited.pk
    audited.refresh_from_db()
    assert audited.status == Match.Status.MATCHED  # still priced from while waiting

    services.decision_record(
        user=a, match_id=audited.pk, action="reject", claim_id=held.claim_id, reason="other_model"
    )

    audited.refresh_from_db()
    assert (audited.status, audited.audit_sample, audited.decided_by_human) == ("rejected", False, True)
    row = ReviewDecision.objects.get()
    assert row.audit_item and row.bucket == "auto"
    assert services.claim_pair(user=a) is None


def test_bulk_reject_decides_the_free_pairs_and_reports_the_held_and_decided_ones():
    a, b = reviewer("a"), reviewer("b")
    free1, free2, held_by_b, done = (make_pair(money_at_risk=m) for m in (1, 2, 50, 3))
    services.claim_pair(user=b)  # takes held_by_b (highest money at risk)
    Match.objects.filter(pk=done.pk).update(status=Match.Status.MATCHED)

    result = services.decisions_bulk(
        user=a,
        match_ids=[free1.pk, free2.pk, held_by_b.pk, done.pk],
        action="reject",
        reason="bad_image",
        note="흐린 사진",
    )

    assert sorted(result.done) == sorted([free1.pk, free2.pk])
    assert set(result.refused) == {held_by_b.pk, done.pk}
    assert set(Match.objects.filter(status="rejected").values_list("pk", flat=True)) == {free1.pk, free2.pk}
    rows = ReviewDecision.objects.filter(bulk=True)
    assert rows.count() == 2 and {r.reason for r in rows} == {"bad_image"}


def test_approving_puts_a_reprice_of_the_sku_on_the_broker_after_commit(
    django_capture_on_commit_callbacks, broker_messages
):
    a = reviewer("a")
    pair = make_pair()
    held = services.claim_pair(user=a)
    # Other suites share the broker's queue: look only for this decision's message.
    # The reviewer travels with it: the price change it may cause names them (issue 29, item 5).
    expected = f"({pair.product_id}, 'review:approve:match={pair.pk}', {a.pk})"

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.decision_record(user=a, match_id=pair.pk, action="approve", claim_id=held.claim_id)
    assert expected not in broker_messages("pricing.tasks.reprice_product_task")  # nothing before the commit
    for callback in callbacks:
        callback()

    assert broker_messages("pricing.tasks.reprice_product_task").count(expected) == 1
    assert f"({pair.product_id},)" in broker_messages("pricing.tasks.money_at_risk_refresh_task")


def test_money_at_risk_is_the_price_move_and_zero_when_the_listing_would_not_be_cheapest(monkeypatch):
    monkeypatch.setattr(money_at_risk, "_price_preview_price", lambda product, listing: None)
    from tests.factories import ProductFactory

    product = ProductFactory(price=189_000, min_price=150_000, cost=90_000)
    make_pair(
        product=product,
        status=Match.Status.MATCHED,
        bucket=Match.Bucket.AUTO,
        listing_kwargs={"price": 175_000, "shipping_fee": 0},
    )
    cheaper = make_pair(product=product, listing_kwargs={"price": 168_000, "shipping_fee": 2_500})
    dearer = make_pair(product=product, listing_kwargs={"price": 190_000})
    below_floor = make_pair(product=product, listing_kwargs={"price": 120_000})

    money_at_risk.money_at_risk_refresh(product_id=product.pk)

    for m in (cheaper, dearer, below_floor):
        m.refresh_from_db()
    assert cheaper.money_at_risk == 175_000 - 170_500
    assert dearer.money_at_risk == 0
    assert below_floor.money_at_risk == 175_000 - 150_000  # never below our floor


def test_list_page_is_in_queue_order_and_marks_pairs_held_by_others():
    a, b = reviewer("a"), reviewer("b")
    pairs = [make_pair(money_at_risk=m) for m in (10, 30, 20)]
    services.claim_pair(user=b)

    page = selectors.queue_list(user=a, filters=QueueFilters(), cursor=None, size=2)

    assert [m.money_at_risk for m in page.rows] == [30, 20]
    assert [m.held_by_other for m in page.rows] == [True, False]
    rest = selectors.queue_list(user=a, filters=QueueFilters(), cursor=page.next_cursor, size=2)
    assert [m.pk for m in rest.rows] == [pairs[0].pk] and rest.next_cursor is None


def test_auto_advance_after_a_decision_passes_over_pairs_skipped_today():
    a = reviewer("a")
    first, skipped, third = (
        make_pair(money_at_risk=300),
        make_pair(money_at_risk=200),
        make_pair(money_at_risk=100),
    )
    services.claim_pair(user=a, match_id=skipped.pk)
    services.decision_skip(user=a, match_id=skipped.pk, claim_id=None)
    held = services.claim_pair(user=a)
    assert held.pk == first.pk
    services.decision_record(user=a, match_id=first.pk, action="approve", claim_id=held.claim_id)

    after = services.claim_pair(user=a, cursor=Cursor.of(held), exclude_skipped=True)
    browsing = services.claim_pair(user=a, cursor=Cursor.of(held))  # J still shows it

    assert after.pk == third.pk
    assert browsing.pk == skipped.pk


def test_money_at_risk_follows_the_pricing_preview_when_pricing_offers_one():
    from pricing.services import price_preview
    from tests.factories import ProductFactory

    product = ProductFactory(price=189_000, min_price=150_000)
    make_pair(
        product=product,
        status=Match.Status.MATCHED,
        bucket=Match.Bucket.AUTO,
        listing_kwargs={"price": 175_000},
    )
    pending = make_pair(product=product, listing_kwargs={"price": 168_000})

    money_at_risk.money_at_risk_refresh(product_id=product.pk)

    pending.refresh_from_db()
    expected = abs(price_preview(product=product, listing=pending.listing).price - product.price)
    assert pending.money_at_risk == expected and expected > 0


def test_a_heartbeat_renews_the_lease_and_reports_a_lost_one(client):
    a = reviewer("a")
    make_pair()
    client.force_login(a)
    client.get("/review/")
    claim = Claim.objects.get(released_at__isnull=True)
    Claim.objects.filter(pk=claim.pk).update(expires_at=timezone.now() + timedelta(seconds=5))

    renewed = client.post(f"/review/claims/{claim.pk}/renew/", HTTP_HX_REQUEST="true")
    claim.refresh_from_db()
    assert renewed.status_code == 204 and claim.expires_at > timezone.now() + timedelta(seconds=60)

    services.claim_release(user=a)
    lost = client.post(f"/review/claims/{claim.pk}/renew/", HTTP_HX_REQUEST="true")
    assert "review:claimLost" in lost["HX-Trigger"]
