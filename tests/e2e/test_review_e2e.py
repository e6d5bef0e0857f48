"""The review queue in a real browser: login, keyboard-only review, undo, two reviewers, bulk reject,
a threshold change through the simulator. Screenshots of the main screens land in tests/e2e/screenshots/."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from matcher.evidence import ConflictTerms, EvidenceRecord
from matcher.models import Match, ThresholdSet
from review import services
from review.models import Claim, ReviewDecision, ThresholdChange
from tests.e2e.conftest import login
from tests.factories import ProductFactory
from tests.review.factories import make_pair, reviewer

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

COLOURS = [(28, 36, 58), (120, 30, 40), (30, 90, 60), (200, 170, 40), (90, 90, 95), (160, 110, 70)]


def _pairs(n: int) -> list[Match]:
    """n pending pairs with photos and evidence, in queue order (money at risk descending)."""
    pairs = []
    for i in range(n):
        product = ProductFactory(title=f"노스페이스 눕시 숏패딩 자켓 {i}", product_number=f"NJ1DN{55 + i}A")
        their_colour = COLOURS[(i + 1) % len(COLOURS)] if i == 1 else COLOURS[i % len(COLOURS)]
        pair = make_pair(
            product=product,
            images=True,
            colour=COLOURS[i % len(COLOURS)],
            their_colour=their_colour,
            money_at_risk=9_000 - i * 1_000,
            confidence=Decimal("0.8") + Decimal(i) / 100,
            listing_kwargs={
                "mall": ["무신사", "29CM", "W컨셉", "SSG"][i % 4],
                "price": 170_000 + i * 1000,
                "shipping_fee": 3000 if i % 2 else 0,
                "title": f"[정품] 눕시 숏패딩 nj1dn{55 + i}a {'키즈' if i == 1 else '블랙'}",
            },
        )
        if i == 1:
            record = EvidenceRecord.from_json(pair.evidence)
            record.conflicts = [ConflictTerms("audience", ours="adult", theirs="kids", theirs_terms=["키즈"])]
            record.product_number, record.colour_distance = "match", 0.41
            record.llm = replace(record.llm, is_match=False, reasoning="아동용(키즈) 표기, 색상도 다름.")
            Match.objects.filter(pk=pair.pk).update(evidence=record.to_json())
        pairs.append(pair)
    return pairs


def _current(page) -> int:
    return int(page.locator("#pair").get_attribute("data-match-id"))


def _expect_pair(page, match_id: int) -> None:
    expect(page.locator("#pair")).to_have_attribute("data-match-id", str(match_id))


def test_a_reviewer_logs_in_and_clears_pairs_with_the_keyboard_only(new_page, shot):
    reviewer("kim")
    pairs = _pairs(5)
    page = new_page()

    login(page, "kim")
    _expect_pair(page, pairs[0].pk)
    expect(page.locator(".rv-box")).to_have_count(2)
    expect(page.locator("#rv-price-preview")).not_to_contain_text("계산")
    shot(page, "01-queue-pair")

    page.keyboard.press("?")
    expect(page.locator("#rv-help")).to_be_visible()
    shot(page, "02-queue-help")
    page.keyboard.press("Escape")
    expect(page.locator("#rv-help")).to_be_hidden()

    page.keyboard.press("a")  # approve → the next pair, without a page load
    _expect_pair(page, pairs[1].pk)
    expect(page.locator(".rv-notice")).to_contain_text("승인했습니다")
    expect(page.locator("mark.conflict")).to_contain_text("키즈")
    shot(page, "03-queue-conflict")

    page.keyboard.press("r")
    page.keyboard.press("3")  # reject: kids
    _expect_pair(page, pairs[2].pk)

    page.keyboard.press("s")  # skip
    _expect_pair(page, pairs[3].pk)
    page.keyboard.press("j")  # next
    _expect_pair(page, pairs[4].pk)
    page.keyboard.press("k")  # previous
    _expect_pair(page, pairs[3].pk)

    page.mouse.move(300, 300)  # hover zoom: both sides zoom together
    page.mouse.move(320, 330)
    expect(page.locator(".rv-zoom.zoomed")).to_have_count(2)
    shot(page, "04-queue-synced-zoom")

    statuses = dict(Match.objects.filter(pk__in=[p.pk for p in pairs]).values_list("pk", "status"))
    assert statuses[pairs[0].pk] == "matched" and statuses[pairs[1].pk] == "rejected"
    assert statuses[pairs[2].pk] == "pending"
    assert ReviewDecision.objects.get(match=pairs[1]).reason == "kids"
    assert ReviewDecision.objects.filter(match=pairs[2], action="skip").exists()
    assert page.js_errors == []

    page.goto("/review/stats/")  # a merchandiser sees their own figures
    expect(page.locator("#rv-stats tbody tr")).to_have_count(1)
    expect(page.locator("#rv-stats tbody tr td").first).to_have_text("kim")
    shot(page, "13-reviewer-stats")


def test_undo_with_the_keyboard_brings_the_last_decision_back(new_page, shot):
    reviewer("lee")
    pairs = _pairs(3)
    page = new_page()
    login(page, "lee")
    _expect_pair(page, pairs[0].pk)

    page.keyboard.press("r")
    page.keyboard.press("1")  # other colour
    _expect_pair(page, pairs[1].pk)
    page.keyboard.press("u")

    _expect_pair(page, pairs[0].pk)
    expect(page.locator(".rv-notice")).to_contain_text("되돌렸습니다")
    shot(page, "05-queue-after-undo")
    pair = Match.objects.get(pk=pairs[0].pk)
    assert (pair.status, pair.decided_by_human) == ("pending", False)
    undo = ReviewDecision.objects.get(action="undo")
    assert undo.undoes.reason == "other_colour"

    page.keyboard.press("a")  # decide it again after the undo
    _expect_pair(page, pairs[1].pk)
    assert Match.objects.get(pk=pairs[0].pk).status == "matched"


def test_a_part_of_the_page_loading_between_r_and_the_reason_does_not_drop_the_rejection(new_page):
    # The queue summary reloads after every decision and the price preview on every pair; a key
    # sequence R, digit must survive such a swap landing in between.
    reviewer("park")
    pairs = _pairs(2)
    page = new_page()
    login(page, "park")
    _expect_pair(page, pairs[0].pk)

    page.evaluate(
        "window.summarySwapped = false; document.body.addEventListener('htmx:afterSwap', function (e) {"
        " if (e.detail.target.classList.contains('rv-summary-slot')) window.summarySwapped = true; })"
    )
    page.keyboard.press("r")
    page.evaluate("htmx.trigger(document.body, 'review:decided')")  # the summary reloads
    page.wait_for_function("window.summarySwapped")
    page.keyboard.press("1")  # other colour

    _expect_pair(page, pairs[1].pk)
    assert Match.objects.get(pk=pairs[0].pk).status == "rejected"


def test_two_reviewers_in_two_browsers_never_see_the_same_pair(new_page, shot):
    reviewer("park")
    reviewer("choi")
    _pairs(4)
    one, two = new_page(), new_page()
    login(one, "park")
    login(two, "choi")

    seen_one, seen_two = [_current(one)], [_current(two)]
    assert seen_one[0] != seen_two[0]
    shot(one, "06-two-reviewers-a")
    shot(two, "07-two-reviewers-b")

    one.keyboard.press("a")
    expect(one.locator("#pair")).not_to_have_attribute("data-match-id", str(seen_one[0]))
    seen_one.append(_current(one))
    two.keyboard.press("a")
    expect(two.locator("#pair")).not_to_have_attribute("data-match-id", str(seen_two[0]))
    seen_two.append(_current(two))
    two.reload()  # a reload keeps the same lease
    assert _current(two) == seen_two[-1]

    assert not set(seen_one) & set(seen_two)
    assert len(set(seen_one + seen_two)) == 4
    open_claims = Claim.objects.filter(released_at__isnull=True)
    assert open_claims.count() == 2 and len({c.match_id for c in open_claims}) == 2


def test_bulk_reject_from_the_list_after_a_confirmation(new_page, shot):
    reviewer("jung")
    pairs = _pairs(4)
    page = new_page()
    login(page, "jung", next_url="/review/list/")
    expect(page.locator("tr[data-match-id]")).to_have_count(4)

    page.check(f'input.rv-select[value="{pairs[1].pk}"]')
    page.check(f'input.rv-select[value="{pairs[2].pk}"]')
    expect(page.locator("#rv-selected-count")).to_have_text("2건 선택")
    page.select_option("select[name=action]", "reject")
    page.select_option("select[name=reason]", "counterfeit")
    page.fill("input[name=note]", "같은 셀러 카피 의심")
    shot(page, "08-list-selected")
    page.click("#rv-bulk-submit")

    expect(page.locator("#rv-bulk-confirm")).to_contain_text("2건 제외")
    shot(page, "09-list-confirm")
    assert not ReviewDecision.objects.exists()  # nothing until confirmed
    page.click("#rv-bulk-confirm")

    expect(page.locator(".messages")).to_contain_text("2건을 제외 처리했습니다")
    expect(page.locator("tr[data-match-id]")).to_have_count(2)
    shot(page, "10-list-after-bulk")
    rejected = set(Match.objects.filter(status="rejected").values_list("pk", flat=True))
    assert rejected == {pairs[1].pk, pairs[2].pk}
    rows = ReviewDecision.objects.filter(bulk=True)
    assert {r.reason for r in rows} == {"counterfeit"} and {r.note for r in rows} == {"같은 셀러 카피 의심"}


def _history() -> None:
    """What reviewers decided before: queue decisions over several bands and QC samples of auto-matches."""
    merch = reviewer("history")
    decisions = [
        ("0.8600", "approve"),
        ("0.8700", "approve"),
        ("0.8800", "approve"),
        ("0.8900", "reject"),
        ("0.7200", "reject"),
        ("0.7400", "approve"),
        ("0.7700", "reject"),
        ("0.8100", "approve"),
    ]
    for conf, action in decisions:
        m = make_pair(confidence=Decimal(conf))
        held = services.claim_pair(user=merch, match_id=m.pk)
        services.decision_record(
            user=merch,
            match_id=m.pk,
            action=action,
            claim_id=held.claim_id,
            reason="other_model" if action == "reject" else "",
        )
    for i in range(12):
        m = make_pair(
            confidence=Decimal("0.9500"),
            bucket=Match.Bucket.AUTO,
            status=Match.Status.MATCHED,
            audit_sample=True,
        )
        held = services.claim_pair(user=merch, match_id=m.pk)
        action = "reject" if i == 0 else "approve"
        services.decision_record(
            user=merch,
            match_id=m.pk,
            action=action,
            claim_id=held.claim_id,
            reason="other_colour" if action == "reject" else "",
        )


def test_an_admin_changes_the_thresholds_through_the_simulator(new_page, shot):
    reviewer("admin-kang", admin=True)
    _pairs(3)
    for conf in ("0.9300", "0.9600", "0.8800", "0.8600"):
        make_pair(
            confidence=Decimal(conf),
            bucket=Match.Bucket.AUTO if conf > "0.9" else Match.Bucket.REVIEW,
            status=Match.Status.MATCHED if conf > "0.9" else Match.Status.PENDING,
        )
    _history()
    before = ThresholdSet.objects.order_by("-version").first()
    page = new_page()
    login(page, "admin-kang", next_url="/review/calibration/")
    summary = page.locator("#rv-sim-summary")
    expect(summary).to_contain_text("버킷이 바뀌는 쌍 0건")

    page.fill("#rv-auto", "0.85")  # live preview through htmx
    expect(summary).not_to_contain_text("버킷이 바뀌는 쌍 0건")
    expect(page.locator("td.rv-move").first).to_be_visible()
    page.fill("input[name=note]", "0.85–0.90 구간 승인률 확인")
    shot(page, "11-calibration-simulator")
    page.click("#rv-save")

    expect(page.locator(".messages")).to_contain_text("새 기준 v")
    new = ThresholdSet.objects.order_by("-version").first()
    assert new.version == before.version + 1
    assert (new.auto_threshold, new.review_threshold) == (Decimal("0.850"), before.review_threshold)
    change = ThresholdChange.objects.get()
    assert change.threshold_set == new and change.user.username == "admin-kang"
    assert change.simulation["moved"] > 0

    page.goto("/review/quality/")
    expect(page.locator("#rv-qc-precision")).to_have_text("0.917")  # 11 of 12 audited auto-matches approved
    expect(page.locator("#rv-qc-state")).to_be_visible()
    shot(page, "12-quality-control")
