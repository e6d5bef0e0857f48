"""cascade.py: the one rule for whether an optional stage (cut-out, number OCR, LLM) can still change the bucket."""
from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from matcher.pipeline.cascade import (
    Stage,
    can_change_bucket,
    could_change_bucket,
    could_reach_auto,
    verdict_could_change_bucket,
)
from matcher.pipeline.policy import DecisionPolicy, decide
from matcher.pipeline.types import LlmVerdict, PairEvidence

POLICY = DecisionPolicy()

unit = st.floats(0.0, 1.0, allow_nan=False)
maybe = lambda s: st.none() | s  # noqa: E731
verdicts = st.builds(
    LlmVerdict,
    is_match=st.none() | st.booleans(),
    confidence=maybe(unit),
    error=st.none() | st.just("timeout"),
)
evidence = st.builds(
    PairEvidence,
    cosine=maybe(st.floats(-1.0, 1.0, allow_nan=False)),
    inliers=maybe(st.integers(0, 300)),
    inlier_colour_agreement=maybe(unit),
    colour_distance=maybe(unit),
    colour_distance_in_place=maybe(unit),
    product_number=st.sampled_from(["match", "mismatch", "absent"]),
    conflicts=st.lists(st.sampled_from(["대상/audience: listing only — kids (목록에만 표기)"]), max_size=1),
    llm=st.none() | verdicts,
)
policies = st.builds(
    DecisionPolicy,
    auto_threshold=st.floats(0.75, 0.99),
    review_threshold=st.floats(0.3, 0.75),
    llm_weight=st.floats(0.0, 6.0),
    min_agreeing_kinds=st.integers(1, 3),
)


@settings(max_examples=400, deadline=None)
@given(evidence, policies)
def test_the_llm_gate_reads_the_decision_made_before_any_verdict(ev, policy):
    assert can_change_bucket(ev, policy, Stage.LLM) == verdict_could_change_bucket(
        decide(replace(ev, llm=None), policy), policy
    )


@settings(max_examples=400, deadline=None)
@given(evidence, policies, verdicts)
def test_a_pair_the_llm_gate_skips_is_one_no_verdict_could_lift(ev, policy, verdict):
    # Skipping is only safe when no answer, however confident, moves a pair out of reject; an automatic
    # match is never sent (certain by the rules), so only pairs below auto are judged here.
    before = decide(replace(ev, llm=None), policy)
    if before.bucket == "auto" or verdict_could_change_bucket(before, policy):
        return
    assert decide(replace(ev, llm=verdict), policy).bucket == "reject"


@settings(max_examples=200, deadline=None)
@given(evidence)
def test_a_stage_that_would_report_what_is_already_known_never_changes_the_bucket(ev):
    assert not could_change_bucket(ev, POLICY, replace(ev))


@settings(max_examples=200, deadline=None)
@given(evidence)
def test_the_number_ocr_gate_is_whether_a_confirmed_number_moves_the_pair(ev):
    moved = can_change_bucket(ev, POLICY, Stage.NUMBER_OCR)
    assert moved == could_change_bucket(ev, POLICY, replace(ev, product_number="match"))
    if ev.product_number == "match":
        assert not moved


def test_a_cut_out_cannot_move_a_pair_whose_in_place_colour_already_decides_and_whose_cosine_is_no_matter():
    reused = PairEvidence(cosine=0.9, inliers=90, inlier_colour_agreement=0.97, colour_distance=0.4,
                          colour_distance_in_place=0.1)
    assert not can_change_bucket(reused, POLICY, Stage.CUTOUT)
    # Without the in-place reading the cut-out's region colour could block it.
    assert can_change_bucket(replace(reused, colour_distance_in_place=None, colour_distance=0.1), POLICY, Stage.CUTOUT)
    # No cosine yet: nothing bounds what a cut-out could show.
    assert can_change_bucket(PairEvidence(), POLICY, Stage.CUTOUT)


def test_an_agreeing_verdict_could_lift_a_pair_with_one_kind_of_agreement_to_auto():
    one_kind = PairEvidence(cosine=0.9, colour_distance=0.1)
    assert decide(one_kind, POLICY).bucket != "auto"
    assert could_reach_auto(one_kind, POLICY)
    assert not could_reach_auto(replace(one_kind, conflicts=["x"]), POLICY)
