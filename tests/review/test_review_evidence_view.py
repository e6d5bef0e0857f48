"""The pair page reads the evidence record: highlighted words, blockers in Korean, the LLM's state, keypoint lines."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from matcher.evidence import (
    BestPair,
    Blocker,
    BlockerCode,
    ConflictSource,
    ConflictTerms,
    EvidenceRecord,
    Gate,
    GateCode,
    ImageBox,
    KeypointMatches,
    LlmEvidence,
)
from matcher.models import ImageFile
from review.evidence import blocked_reasons, is_auto_blocked, title_segments
from tests.factories import ProductFactory
from tests.review.factories import make_pair, reviewer

pytestmark = pytest.mark.django_db


@pytest.fixture
def merch(client):
    client.force_login(reviewer("merch"))


def _page(client) -> str:
    response = client.get(reverse("review:queue"))
    assert response.status_code == 200
    return response.content.decode()


def _photos(pair) -> tuple[ImageFile, ImageFile]:
    return pair.product.images.get().image, pair.listing.images.get().image


def _with_record(pair, record: EvidenceRecord) -> None:
    type(pair).objects.filter(pk=pair.pk).update(evidence=record.to_json())


KIDS = ConflictTerms("audience", ours="adult", theirs="kids", ours_terms=["성인"], theirs_terms=["키즈"])


def test_conflicting_words_are_marked_in_both_titles_and_in_the_text_on_their_photos(client, merch):
    product = ProductFactory(title="노스페이스 눕시 성인 패딩")
    make_pair(
        product=product,
        listing_kwargs={"title": "눕시 키즈 패딩 리퍼"},
        evidence=EvidenceRecord(
            conflicts=[KIDS, ConflictTerms("condition", theirs="refurb", theirs_terms=["REFURB"],
                                           source=ConflictSource.OCR)],
            ocr_text="NUPTSE refurb 키즈",
        ).to_json(),
    )

    html = _page(client)

    assert '성인 <mark class="conflict">성인</mark>' not in html  # our term once, in our title
    assert '눕시 <mark class="conflict">성인</mark> 패딩' in html
    assert '눕시 <mark class="conflict">키즈</mark> 패딩' in html
    assert 'NUPTSE <mark class="conflict">refurb</mark> <mark class="conflict">키즈</mark>' in html
    assert "대상: 우리 <b>adult</b> · 경쟁 <b>kids</b>" in html
    assert "경쟁 <b>refurb</b> <small class=\"muted\">(사진 속 글자)</small>" in html


def test_a_malicious_title_and_photo_text_stay_escaped_inside_highlighted_words(client, merch):
    make_pair(
        listing_kwargs={"title": "<script>alert(1)</script> 키즈 패딩"},
        evidence=EvidenceRecord(
            conflicts=[ConflictTerms("audience", theirs="kids", theirs_terms=["<script>", "키즈"])],
            ocr_text="<img src=x onerror=alert(2)> 키즈",
            llm=LlmEvidence(answered=True, is_match=False, reasoning="<b>bold</b>", matched_features=["<i>"]),
        ).to_json(),
    )

    html = _page(client)

    assert "<script>alert(1)" not in html and "<img src=x" not in html and "<b>bold</b>" not in html
    # Terms are letters and digits (the lexicon's normalised form): the word inside the tags is marked, escaped.
    assert ('&lt;<mark class="conflict">script</mark>&gt;alert(1)&lt;/<mark class="conflict">script</mark>&gt; '
            '<mark class="conflict">키즈</mark>') in html
    assert "&lt;img src=x onerror=alert(2)&gt; <mark class=\"conflict\">키즈</mark>" in html
    assert "&lt;i&gt;" in html


def test_blockers_and_gates_read_as_korean_sentences_with_their_figures_and_the_english_behind_a_toggle(
    client, merch
):
    record = EvidenceRecord(
        auto_blocked=[Blocker(BlockerCode.COLOUR_MISMATCH, 0.41, 0.3, "colour mismatch: distance 0.41 > 0.30"),
                      Blocker(BlockerCode.LLM_NO_MATCH, 0.92)],
        gates=[Gate(GateCode.FEW_AGREEING_KINDS, 1, 2, "only 1 kind(s) of agreeing evidence")],
    )
    make_pair(evidence=record.to_json())

    html = _page(client)

    assert is_auto_blocked(record) and not is_auto_blocked(EvidenceRecord(cosine=0.9))
    assert blocked_reasons(record) == [
        "색상 거리 0.41 (기준 0.30 초과) — 색이 달라 자동 매칭하지 않음",
        "LLM이 다른 상품으로 판정 (확신 0.92) — 자동 매칭하지 않음",
        "일치하는 근거가 1가지뿐 (자동 매칭에는 2가지 필요)",
    ]
    assert ('<details class="rv-detail"><summary>색상 거리 0.41 (기준 0.30 초과) — 색이 달라 자동 매칭하지 않음'
            '</summary><small lang="en">colour mismatch: distance 0.41 &gt; 0.30</small></details>') in html
    assert "LLM이 다른 상품으로 판정 (확신 0.92)" in html


def test_a_legacy_row_shows_the_blockers_its_reasons_named(client, merch):
    make_pair(evidence={"cosine": 0.8, "product_number": "mismatch"},
              reasons=["review at confidence 0.700 (policy t1)",
                       "blocks auto: product number mismatch 품번 불일치 (-4.0)"])

    assert "품번이 서로 달라 자동 매칭하지 않음" in _page(client)


@pytest.mark.parametrize(
    ("llm", "shown"),
    [
        (LlmEvidence(), ["꺼짐"]),
        (LlmEvidence(pending={"mode": "batch", "stage": "fast", "model": "gemini-flash",
                              "since": "2025-01-02T03:04:05+00:00"}), ["일괄 검증 대기", "gemini-flash"]),
        (LlmEvidence(pending={"stage": "escalate", "model": "flash", "escalation_model": "gemini-pro"}),
         ["상위 모델 일괄 검증 대기", "gemini-pro"]),
        (LlmEvidence(answered=True, is_match=True, confidence=0.86, reasoning="로고 위치 일치",
                     matched_features=["로고", "배색"], mismatched_features=["지퍼"], model="gemini-flash",
                     cost_usd="0.000412"),
         ["같은 상품", "0.86", "로고 위치 일치", "일치: 로고, 배색", "불일치: 지퍼", "$0.0004"]),
        (LlmEvidence(answered=True, error="일일 LLM 비용 한도 도달"), ["오류: 일일 LLM 비용 한도 도달"]),
    ],
    ids=["off", "awaiting", "escalating", "verdict", "error"],
)
def test_the_llm_row_states_what_the_llm_did(client, merch, llm, shown):
    make_pair(evidence=EvidenceRecord(cosine=0.8, llm=llm).to_json())

    html = _page(client)

    row = re.search(r'<tr class="rv-llm" data-llm-state="(\w+)">(.*?)</tr>', html, re.DOTALL)
    assert row and row.group(1) == llm.state.value
    for text in shown:
        assert text in row.group(2)


def test_matched_keypoints_are_drawn_as_lines_between_the_two_photos_without_javascript(client, merch):
    pair = make_pair(images=True)
    ours, theirs = _photos(pair)
    _with_record(pair, EvidenceRecord(
        inliers=3,
        keypoints=KeypointMatches(ours.sha256, theirs.sha256, [(30, 40, 36, 42), (150, 200, 180, 210),
                                                              (299, 399, 359, 419)]),
        best_pair=BestPair(ImageBox(ours.sha256, [75, 72, 225, 344]), ImageBox(theirs.sha256, [72, 63, 288, 378])),
    ))

    html = _page(client)

    svg = re.search(r'<svg class="rv-kp-svg" viewBox="0 0 ([\d.]+) 1000.0".*?</svg>', html, re.DOTALL)
    assert svg, "the drawing is in the page itself"
    # ours 300×400 → 750 wide at height 1000; a 40 gap; theirs 360×420 → 857.1 wide.
    assert svg.group(1) == "1647.1"
    lines = re.findall(r'<line x1="([\d.]+)" y1="([\d.]+)" x2="([\d.]+)" y2="([\d.]+)"', svg.group(0))
    assert len(lines) == 3
    assert lines[0] == ("75.0", "100.0", f"{790 + 36 * 1000 / 420:.1f}", f"{42 * 1000 / 420:.1f}")
    assert svg.group(0).count('class="rv-kp-box"') == 2  # the compared regions outlined in the drawing too
    assert html.count('class="rv-box"') == 2
    assert 'id="rv-kp"' in html and "특징점 연결 3개" in html and "data-kp-toggle" in html


def test_no_keypoint_drawing_when_the_matches_are_on_photos_the_page_does_not_show(client, merch):
    pair = make_pair(images=True)
    ours, _ = _photos(pair)
    _with_record(pair, EvidenceRecord(keypoints=KeypointMatches(ours.sha256, "f" * 64, [(1, 2, 3, 4)])))

    html = _page(client)

    assert "rv-kp-svg" not in html and "data-kp-toggle" not in html


def test_latin_conflict_terms_are_marked_only_as_whole_words():
    assert title_segments("women jacket", conflict_terms=["men"]) == title_segments("women jacket")
    marked = [s.text for s in title_segments("Men's jacket", conflict_terms=["men"]) if s.mark]
    assert marked == ["Men"]


def test_a_term_the_pipeline_reports_without_its_spaces_is_marked_where_the_title_spaces_it():
    # The lexicon matches normalised text ('패딩 조끼' → '패딩조끼') and reports the term that way.
    segments = title_segments("[무료배송] 거위털 패딩 조끼 블랙", conflict_terms=["패딩조끼"])
    assert [s.text for s in segments if s.mark == "conflict"] == ["패딩 조끼"]
    # A Latin term still stands as a word.
    assert not [s for s in title_segments("WOMEN 패딩", conflict_terms=["men"]) if s.mark]
