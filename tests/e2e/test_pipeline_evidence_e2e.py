"""The pair page on decisions the real pipeline made: no hand-made evidence anywhere in this file.

The demo catalogue (drawn by the real generator, imported by the real commands) is matched by a real
run with the real models; the review page then shows, from the evidence record that run wrote, the
conflicting title words highlighted and the matched keypoints drawn between the two photos.
"""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from matcher.evidence import EvidenceRecord
from matcher.models import Match
from matcher.runs import match_run_batch_process, match_run_start
from tests.e2e.conftest import login
from tests.review.factories import reviewer

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _run_the_matcher() -> list[Match]:
    run = match_run_start(product_ids=None, enqueue=False)
    for batch in run.batches.all():
        match_run_batch_process(batch_id=batch.id)
    return list(Match.objects.select_related("product", "listing").order_by("id"))


def _open(page, match: Match) -> None:
    page.goto(f"/review/?match={match.pk}")
    expect(page.locator("#pair")).to_have_attribute("data-match-id", str(match.pk))


def test_a_real_run_writes_the_record_the_pair_page_highlights_and_draws(imported_demo, new_page, shot):
    matches = _run_the_matcher()
    records = {m.pk: EvidenceRecord.from_json(m.evidence) for m in matches}
    assert matches and all(m.evidence.get("version") == 2 for m in matches)

    # A near miss whose title names another audience, condition or kind: the run found the words.
    conflicted = next(
        m for m in matches
        if any(c.source == "title" and c.theirs_terms for c in records[m.pk].conflicts)
        and m.bucket != Match.Bucket.AUTO
    )
    terms = [t for c in records[conflicted.pk].conflicts for t in c.theirs_terms]
    # A copy of our photo: the geometry check's inliers, as coordinates.
    reused = max(matches, key=lambda m: len(records[m.pk].keypoints.pairs) if records[m.pk].keypoints else 0)
    lines = len(records[reused.pk].keypoints.pairs) if records[reused.pk].keypoints else 0
    assert lines >= 8, "the demo re-uses our photos; the run must have matched their keypoints"

    Match.objects.filter(pk__in=[conflicted.pk, reused.pk]).update(status=Match.Status.PENDING)
    reviewer("merch")
    page = new_page()
    login(page, "merch")

    _open(page, conflicted)
    marked = page.locator(".rv-title-text mark.conflict")
    expect(marked.first).to_be_visible()
    shown = "".join(marked.all_inner_texts()).lower().replace(" ", "")
    assert any(term in shown for term in terms), (terms, marked.all_inner_texts(), conflicted.listing.title)
    shot(page, "pipeline_conflict_highlighted")

    _open(page, reused)
    drawing = page.locator("#rv-kp")
    expect(drawing).to_be_attached()
    page.keyboard.press("p")
    expect(drawing).to_have_attribute("open", "")
    expect(drawing.locator("line")).to_have_count(lines)
    expect(drawing.locator("svg")).to_be_visible()
    shot(page, "pipeline_keypoints_drawn")
    assert not page.js_errors
