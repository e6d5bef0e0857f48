"""The SKU page as the hub: header (price, floor and why, policy by layer), every competitor listing with its
decision, overturning a pair through the review app's decision service, proposals, history on a time axis."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from matcher.models import Match, Product
from pricing import services
from pricing.models import (
    CompetitorPriceObservation,
    PriceAuditEntry,
    PriceChange,
    PriceProposal,
    PricingPolicy,
)
from review.models import Claim, ReviewDecision
from tests.factories import ListingImageFactory
from tests.pricing import test_catalogue_price
from tests.pricing.factories import (
    PricingListingFactory,
    PricingMatchFactory,
    PricingProductFactory,
    match_for,
    policy_set,
    pricing_admin,
    pricing_merchandiser,
)
from tests.pricing.test_pricing_worker import wait_for

pytestmark = pytest.mark.django_db

catalogue = test_catalogue_price.catalogue  # the fixture importing a one-row catalogue through the command


def price_of(product: Product) -> int:
    return Product.objects.values_list("price", flat=True).get(pk=product.pk)


def page_url(product: Product) -> str:
    return reverse("pricing:sku_history", args=[product.sku])


def chart_of(html: str) -> dict:
    return json.loads(html.split('id="pr-history-data" type="application/json">')[1].split("</script>")[0])


@pytest.fixture
def eager_tasks():
    """Run the reprice the decision enqueues inline, in this test's transaction (no broker message that
    another package's worker could take)."""
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


# --- the header --------------------------------------------------------------------------------------


def test_the_header_shows_the_floor_from_cost_and_margin_and_the_layer_that_set_each_rule(client):
    client.force_login(pricing_merchandiser())
    product = PricingProductFactory(sku="HUB-COST", price=100_000, cost=60_000, category="아우터")
    policy_set(PricingPolicy.Scope.CATEGORY, "아우터", min_margin_percent="15.00")
    policy_set(PricingPolicy.Scope.SKU, "HUB-COST", undercut_amount=500)

    response = client.get(page_url(product))

    page = response.context["page"]
    assert page.floor.amount == 69_000 and page.floor.basis == "cost_margin"
    html = response.content.decode()
    assert "원가 × (1 + 최소 마진 15%) = 69,000원" in html
    sources = {line.name: (line.value, line.source) for line in page.policy_lines}
    assert sources["min_margin_percent"] == ("15%", "카테고리 아우터")
    assert sources["undercut_amount"] == ("500원", "SKU HUB-COST")
    assert sources["stale_after_hours"] == ("48시간", "기본값")
    assert "100,000원" in html and "60,000원" in html


def test_the_header_says_the_minimum_price_sets_the_floor_when_it_is_higher(client):
    client.force_login(pricing_merchandiser())
    product = PricingProductFactory(price=100_000, cost=60_000, min_price=80_000)

    response = client.get(page_url(product))

    assert response.context["page"].floor.amount == 80_000
    assert "설정한 최저가 80,000원; 원가 기준 66,000원보다 높음" in response.content.decode()


# --- the listings ------------------------------------------------------------------------------------


def test_the_listing_table_shows_each_status_whether_it_counts_and_the_one_we_follow(client):
    client.force_login(pricing_merchandiser())
    product = PricingProductFactory(price=100_000)
    auto = match_for(product, price=97_000, shipping_fee=2_500, mall="무신사")
    human = match_for(product, price=99_000, mall="29CM")
    Match.objects.filter(pk=human.pk).update(decided_by_human=True)
    pending = match_for(product, price=90_000, status=Match.Status.PENDING)
    rejected = match_for(product, price=80_000, status=Match.Status.REJECTED)
    stale = match_for(product, price=85_000, last_seen=timezone.now() - timedelta(hours=49))
    zero = match_for(product, price=0)
    undecided = PricingListingFactory(product=product, price=88_000)

    response = client.get(page_url(product))

    rows = {r.listing.pk: r for r in response.context["page"].listings}
    assert {pk: (r.status, r.counts, r.followed) for pk, r in rows.items()} == {
        auto.listing_id: ("auto", True, False),  # 99,500 with its shipping: dearer than 29CM's 99,000
        human.listing_id: ("matched", True, True),
        pending.listing_id: ("review", False, False),
        rejected.listing_id: ("rejected", False, False),
        stale.listing_id: ("auto", False, False),
        zero.listing_id: ("auto", False, False),
        undecided.pk: ("none", False, False),
    }
    assert rows[auto.listing_id].total == 99_500
    assert rows[stale.listing_id].why_not == "48시간 넘게 확인되지 않음"
    assert rows[zero.listing_id].why_not == "0원 (가격 오류)"
    assert rows[pending.listing_id].why_not == "검토 대기"
    # Only automatic matches and rejections can be overturned from here.
    assert [rows[m.listing_id].overturn for m in (auto, human, pending, rejected)] == ["reject", None, None, "approve"]
    html = response.content.decode()
    assert "★ 따름" in html and "판정 전" in html and f'href="/review/?match={auto.pk}"' in html


def test_the_cheapest_counted_total_is_the_one_we_follow(client):
    client.force_login(pricing_merchandiser())
    product = PricingProductFactory(price=100_000)
    dearer_with_shipping = match_for(product, price=96_000, shipping_fee=3_000)  # 99,000
    cheaper = match_for(product, price=98_000)

    page = client.get(page_url(product)).context["page"]

    followed = {r.listing.pk for r in page.listings if r.followed}
    assert followed == {cheaper.listing_id}
    assert page.followed.total == 98_000 and page.gap == 2_000
    assert [r.listing.pk for r in page.listings] == [cheaper.listing_id, dearer_with_shipping.listing_id]


def test_a_hostile_title_and_seller_are_escaped(client):
    client.force_login(pricing_merchandiser())
    product = PricingProductFactory()
    listing = PricingListingFactory(
        product=product, title='<img src=x onerror="alert(1)">패딩', seller="<script>steal()</script>"
    )
    PricingMatchFactory(listing=listing, product=product)

    html = client.get(page_url(product)).content.decode()

    assert "<img src=x" not in html and "<script>steal()" not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;패딩" in html
    assert "&lt;script&gt;steal()&lt;/script&gt;" in html


def test_the_thumbnail_is_the_listings_first_fetched_photo(client):
    client.force_login(pricing_merchandiser())
    product = PricingProductFactory()
    match = match_for(product, price=97_000)
    photo = ListingImageFactory(listing=match.listing, position=0)

    html = client.get(page_url(product)).content.decode()

    assert f'src="/media/{photo.image.file.name}"' in html


# --- overturning a pair --------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_merchandiser_overturns_an_automatic_match_and_the_worker_reprices_naming_them(client, pricing_worker):
    product = PricingProductFactory(sku="HUB-FLOW", price=100_000, cost=60_000)
    wrong = match_for(product, price=97_000, mall="무신사")
    match_for(product, price=99_000, mall="29CM")
    services.reprice_product(product_id=product.pk, cause="match_run")
    assert price_of(product) == 96_900
    merchandiser = pricing_merchandiser(username="kim")
    client.force_login(merchandiser)

    response = client.post(
        reverse("pricing:listing_overturn", args=[wrong.pk]),
        {"action": "reject", "reason": "other_model", "note": "다른 모델"},
        HTTP_HX_REQUEST="true",
    )

    # The row comes back rejected; the page is told to refresh the rest.
    assert response.status_code == 200
    assert 'data-status="rejected"' in response.content.decode()
    assert "sku-changed" in response["HX-Trigger"]
    wrong.refresh_from_db()
    assert (wrong.status, wrong.decided_by_human) == (Match.Status.REJECTED, True)
    decision = ReviewDecision.objects.get(match=wrong)
    assert (decision.user, decision.action, decision.reason, decision.note) == (
        merchandiser, "reject", "other_model", "다른 모델"
    )
    assert (decision.status_before, decision.status_after, decision.bucket) == ("matched", "rejected", "auto")
    assert decision.snapshot["theirs"]["listing_id"] == wrong.listing_id

    # The review app's signal → pricing's receiver → the worker: back up to just under 29CM, by the reviewer.
    wait_for(lambda: price_of(product) == 98_900, "re-price after the overturn")
    change = PriceChange.objects.filter(product=product).latest("created_at", "id")
    assert change.user == merchandiser
    entry = PriceAuditEntry.objects.get(change=change)
    assert entry.cause == f"review:reject:match={wrong.pk}" and entry.user == merchandiser

    html = client.get(page_url(product)).content.decode()
    assert "98,900원" in html
    history = client.get(page_url(product)).context["page"].history
    newest_change = next(h for h in history if h.point.is_change)
    assert newest_change.point.who == "kim" and newest_change.point.our_price == 98_900
    assert f'<a href="/review/?match={wrong.pk}" class="sku-cause">검토 제외 · 매칭 #{wrong.pk}</a>' in html


def test_a_merchandiser_overturns_a_rejection_without_javascript_and_the_price_follows_it(
    client, eager_tasks, django_capture_on_commit_callbacks
):
    product = PricingProductFactory(price=100_000, cost=60_000)
    rejected = match_for(product, price=97_000, status=Match.Status.REJECTED)
    merchandiser = pricing_merchandiser()
    client.force_login(merchandiser)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("pricing:listing_overturn", args=[rejected.pk]), {"action": "approve"})

    assert response.status_code == 302 and response["Location"] == page_url(product) + "#listings"
    rejected.refresh_from_db()
    assert (rejected.status, rejected.decided_by_human) == (Match.Status.MATCHED, True)
    decision = ReviewDecision.objects.get(match=rejected)
    assert (decision.action, decision.status_before, decision.status_after) == ("approve", "rejected", "matched")
    assert price_of(product) == 96_900
    assert PriceChange.objects.get(product=product).user == merchandiser


def test_overturning_is_refused_while_another_reviewer_holds_the_pair(client):
    product = PricingProductFactory()
    auto = match_for(product, price=97_000)
    other = pricing_merchandiser(username="lee")
    now = timezone.now()
    Claim.objects.create(match=auto, user=other, claimed_at=now, expires_at=now + timedelta(minutes=5))
    client.force_login(pricing_merchandiser())

    response = client.post(
        reverse("pricing:listing_overturn", args=[auto.pk]),
        {"action": "reject", "reason": "kids"},
        HTTP_HX_REQUEST="true",
    )

    assert "lee 님이 검토 중인 항목입니다" in response.content.decode()
    assert "HX-Trigger" not in response
    auto.refresh_from_db()
    assert auto.status == Match.Status.MATCHED and not ReviewDecision.objects.exists()


def test_a_reviewers_match_and_a_reject_without_reason_cannot_be_overturned_here(client):
    product = PricingProductFactory()
    human = match_for(product, price=97_000)
    Match.objects.filter(pk=human.pk).update(decided_by_human=True)
    auto = match_for(product, price=98_000)
    client.force_login(pricing_merchandiser())

    refused = client.post(reverse("pricing:listing_overturn", args=[human.pk]), {"action": "reject", "reason": "kids"},
                          HTTP_HX_REQUEST="true")
    no_reason = client.post(reverse("pricing:listing_overturn", args=[auto.pk]), {"action": "reject"},
                            HTTP_HX_REQUEST="true")

    assert "뒤집을 수 없습니다" in refused.content.decode()
    assert "제외 사유를 골라 주세요" in no_reason.content.decode()
    assert not ReviewDecision.objects.exists()
    assert set(Match.objects.values_list("status", flat=True)) == {Match.Status.MATCHED}


def test_someone_without_a_review_role_cannot_overturn(client):
    from tests.factories import UserFactory

    auto = match_for(PricingProductFactory(), price=97_000)
    client.force_login(UserFactory())

    response = client.post(reverse("pricing:listing_overturn", args=[auto.pk]), {"action": "reject", "reason": "kids"})

    assert response.status_code == 403
    assert Match.objects.get(pk=auto.pk).status == Match.Status.MATCHED


# --- proposals -------------------------------------------------------------------------------------------


def waiting(product: Product) -> PriceProposal:
    match_for(product, price=92_000)  # an 8 % cut: beyond the 5 % auto-apply limit
    proposal = services.reprice_product(product_id=product.pk, cause="match_run")
    assert proposal is not None and proposal.status == PriceProposal.Status.PENDING
    return proposal


def test_an_admin_approves_a_proposal_from_the_sku_page_and_the_page_part_shows_the_new_price(client):
    product = PricingProductFactory(price=100_000)
    proposal = waiting(product)
    client.force_login(pricing_admin())

    response = client.post(reverse("pricing:sku_proposal_decide", args=[proposal.pk]), {"action": "approve"},
                           HTTP_HX_REQUEST="true")

    html = response.content.decode()
    assert response.status_code == 200 and 'id="sku-live"' in html and "<html" not in html
    assert f"제안 #{proposal.pk}을 적용했습니다." in html
    assert price_of(product) == 91_900 and "91,900원" in html


def test_a_merchandiser_sees_proposals_but_cannot_decide_them(client):
    product = PricingProductFactory(price=100_000)
    proposal = waiting(product)
    client.force_login(pricing_merchandiser())

    html = client.get(page_url(product)).content.decode()
    refused = client.post(reverse("pricing:sku_proposal_decide", args=[proposal.pk]), {"action": "approve"})

    assert f'id="proposal-{proposal.pk}"' in html and "가격 제안은 관리자만 승인·거절합니다" in html
    assert reverse("pricing:sku_proposal_decide", args=[proposal.pk]) not in html
    assert refused.status_code == 403 and price_of(product) == 100_000


def test_an_admin_rejects_a_proposal_without_javascript(client):
    product = PricingProductFactory(price=100_000)
    proposal = waiting(product)
    client.force_login(pricing_admin())

    response = client.post(reverse("pricing:sku_proposal_decide", args=[proposal.pk]), {"action": "reject"})

    assert response.status_code == 302 and response["Location"] == page_url(product) + "#proposals"
    assert PriceProposal.objects.get(pk=proposal.pk).status == PriceProposal.Status.REJECTED


# --- history ---------------------------------------------------------------------------------------------


def test_the_chart_places_points_by_time_and_draws_the_floor_and_the_proposals(client):
    client.force_login(pricing_merchandiser())
    product = PricingProductFactory(price=100_000, cost=60_000)
    match = match_for(product, price=97_000)
    services.reprice_product(product_id=product.pk, cause="match_run")
    match.listing.price = 92_000
    match.listing.save()
    services.reprice_product(product_id=product.pk, cause="match_run")  # a pending proposal
    start = timezone.now() - timedelta(days=3)
    for i, at in enumerate((start, start + timedelta(hours=1), start + timedelta(hours=25))):
        obs = CompetitorPriceObservation.objects.filter(product=product).order_by("id")
        if i < obs.count():
            obs.filter(pk=obs[i].pk).update(observed_at=at)
        else:
            CompetitorPriceObservation.objects.create(product=product, observed_at=at, cheapest_total=99_000,
                                                      our_price=100_000)

    chart = chart_of(client.get(page_url(product)).content.decode())

    xs = [p["x"] for p in chart["competitor"]]
    assert xs == sorted(xs)
    assert xs[1] - xs[0] == 3_600_000 and xs[2] - xs[1] == 24 * 3_600_000  # an hour, then a day: by time
    assert {p["y"] for p in chart["floor"]} == {66_000}
    assert [p["status"] for p in chart["proposals"]] == ["applied", "pending"]
    assert [p["y"] for p in chart["changes"]] == [96_900]
    assert chart["ours"][-1]["y"] == 96_900


def test_causes_read_in_korean_with_links_and_free_text_as_it_is(client):
    client.force_login(pricing_merchandiser())
    product = PricingProductFactory(price=100_000)
    match = match_for(product, price=97_000)
    services.reprice_product(product_id=product.pk, cause=f"review:approve:match={match.pk}")
    match.listing.price = 96_000
    match.listing.save()
    services.reprice_product(product_id=product.pk, cause="손으로 쓴 <원인>")

    html = client.get(page_url(product)).content.decode()

    assert f'<a href="/review/?match={match.pk}" class="sku-cause">검토 승인 · 매칭 #{match.pk}</a>' in html
    assert '<span class="sku-cause">손으로 쓴 &lt;원인&gt;</span>' in html
    assert "review:approve:match=" not in html


@pytest.mark.parametrize("n", [5, 50])
def test_the_page_runs_the_same_number_of_queries_whatever_the_listings_and_history(
    client, django_assert_num_queries, n
):
    client.force_login(pricing_admin())
    product = PricingProductFactory(price=100_000, cost=60_000)
    matches = [match_for(product, price=99_000 - i * 100) for i in range(n)]
    for m in matches[: n // 5]:
        ListingImageFactory(listing=m.listing)
    for i in range(n // 5):
        Match.objects.filter(pk=matches[i].pk).update(status=Match.Status.REJECTED)
        services.reprice_product(product_id=product.pk, cause=f"review:reject:match={matches[i].pk}")
    client.get(page_url(product))  # warm the session and the content types

    # session, user, groups (roles), the kill switch banner + product, policy, listings, changes,
    # observations, proposals, audit entries
    with django_assert_num_queries(11):
        response = client.get(page_url(product))

    assert len(response.context["page"].listings) == n


def test_a_catalogue_imports_price_change_reads_as_the_import_with_its_report(client, catalogue):
    # The real producer: the import command writes the change and its audit row's cause.
    admin = pricing_admin(username="importer")
    product = PricingProductFactory(sku="HUB-IMP", price=100_000, cost=60_000)
    _, report = catalogue("HUB-IMP", price="95000", cost="60000", user="importer")
    client.force_login(admin)

    response = client.get(page_url(product))

    newest = response.context["page"].history[0]
    assert newest.point.kind == PriceChange.Kind.IMPORT and newest.point.our_price == 95_000
    assert newest.cause_text == f"catalogue_import:report={report.pk}"
    label = f"카탈로그 가져오기 · 가져오기 보고서 #{report.pk}"
    assert f'<a href="/admin/matcher/importreport/{report.pk}/change/" class="sku-cause">{label}</a>' in (
        response.content.decode()
    )


def test_the_history_table_keeps_changes_and_observations_that_moved_and_the_chart_keeps_all(client):
    client.force_login(pricing_merchandiser())
    product = PricingProductFactory(price=100_000)
    start = timezone.now() - timedelta(hours=10)
    for hour, cheapest in enumerate([99_000, 99_000, 99_000, 98_000, 98_000]):
        CompetitorPriceObservation.objects.create(product=product, observed_at=start + timedelta(hours=hour),
                                                  cheapest_total=cheapest, cheapest_mall="무신사", our_price=100_000)

    response = client.get(page_url(product))

    page = response.context["page"]
    assert [h.point.competitor for h in page.history] == [98_000, 99_000]
    assert len(page.chart["competitor"]) == 5 + 1  # every observation, carried to now
