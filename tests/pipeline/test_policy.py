"""Decision rules: evidence → confidence and bucket. Plain Python, no database."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matcher.pipeline.policy import DecisionPolicy, decide
from matcher.pipeline.types import LlmVerdict, PairEvidence

POLICY = DecisionPolicy()
BUCKET_RANK = {"reject": 0, "review": 1, "auto": 2}

# Our photo re-used by a competitor: appearance, geometry and colour all agree.
REUSED = PairEvidence(cosine=0.96, inliers=80, inlier_colour_agreement=0.99, colour_distance=0.08)


def test_a_reused_photo_is_an_automatic_match():
    d = decide(REUSED, POLICY)
    assert d.bucket == "auto" and d.confidence >= POLICY.auto_threshold
    assert any("embedding" in r for r in d.reasons) and any("inliers" in r for r in d.reasons)


def test_an_attribute_conflict_blocks_an_automatic_match():
    d = decide(replace(REUSED, conflicts=["대상/audience: ours men vs listing kids"]), POLICY)
    assert d.bucket == "review"
    assert d.confidence < POLICY.auto_threshold
    assert any("kids" in r and r.startswith("blocks auto") for r in d.reasons)


@pytest.mark.parametrize(
    "alone",
    [
        PairEvidence(cosine=0.999, colour_distance=0.0),
        PairEvidence(inliers=500, inlier_colour_agreement=1.0, colour_distance=0.0),
        PairEvidence(product_number="match", colour_distance=0.0),
        PairEvidence(llm=LlmVerdict(is_match=True, confidence=1.0), colour_distance=0.0),
    ],
    ids=["embedding", "geometry", "product-number", "llm"],
)
def test_one_kind_of_evidence_alone_never_auto_matches(alone):
    d = decide(alone, POLICY)
    assert d.bucket != "auto"
    assert any("only 1 kind" in r for r in d.reasons)


def test_two_kinds_with_colour_verified_auto_match():
    assert decide(PairEvidence(cosine=0.95, product_number="match", colour_distance=0.1), POLICY).bucket == "auto"
    assert decide(
        PairEvidence(cosine=0.95, llm=LlmVerdict(is_match=True, confidence=0.95), colour_distance=0.1), POLICY
    ).bucket == "auto"


def test_another_print_on_the_same_garment_template_is_not_an_automatic_match():
    # Our tee against the same tee with another print, shot on the same template (the 200 x 50
    # benchmark's false automatic matches): the garment's own keypoints agree, colour agrees,
    # and the cosine, 0.85, is below what counts as the same look.
    other_print = PairEvidence(cosine=0.85, inliers=107, inlier_colour_agreement=0.93, colour_distance=0.13)
    d = decide(other_print, POLICY)
    assert d.bucket == "review"
    assert any("only 1 kind" in r for r in d.reasons)
    # The same photo as ours scores far higher; with the product number the pair is matched.
    assert decide(replace(other_print, cosine=0.9), POLICY).bucket == "auto"
    assert decide(replace(other_print, product_number="match"), POLICY).bucket == "auto"


def test_two_kinds_without_colour_do_not_auto_match():
    # Same model by number and by look, but nothing shows it is the same colour.
    d = decide(PairEvidence(cosine=0.95, product_number="match"), POLICY)
    assert d.bucket != "auto"
    assert any("colour not verified" in r for r in d.reasons)


def test_another_colour_of_the_same_photo_is_rejected():
    # A recoloured copy: every keypoint in place, the garment's colour not.
    recoloured = PairEvidence(cosine=0.97, inliers=300, inlier_colour_agreement=0.1, colour_distance=0.95)
    d = decide(recoloured, POLICY)
    assert d.bucket == "reject"
    assert any("colour mismatch" in r for r in d.reasons)


def test_a_product_number_mismatch_is_strong_negative_evidence():
    d = decide(replace(REUSED, product_number="mismatch"), POLICY)
    assert d.bucket != "auto"
    assert any("품번" in r for r in d.reasons)
    # A look-alike in the same colour is worth a human look, unless the numbers disagree.
    look_alike = PairEvidence(cosine=0.9, colour_distance=0.15)
    assert decide(look_alike, POLICY).bucket == "review"
    assert decide(replace(look_alike, product_number="mismatch"), POLICY).bucket == "reject"


def test_an_llm_error_never_enables_an_automatic_match():
    failed = LlmVerdict(is_match=True, confidence=0.99, error="timeout")
    one_kind = PairEvidence(cosine=0.97, colour_distance=0.05, llm=failed)
    assert decide(one_kind, POLICY).bucket != "auto"
    assert decide(replace(REUSED, llm=failed), POLICY).bucket != "auto"
    assert any("LLM" in r for r in decide(one_kind, POLICY).reasons)


def test_an_llm_no_blocks_an_automatic_match():
    d = decide(replace(REUSED, llm=LlmVerdict(is_match=False, confidence=0.9)), POLICY)
    assert d.bucket != "auto"


def test_no_evidence_is_a_reject():
    assert decide(PairEvidence(), POLICY).bucket == "reject"


def test_the_policy_round_trips_through_json():
    policy = DecisionPolicy(auto_threshold=0.93, cosine_knots=[(0.5, -1.0), (0.9, 2.0)], version="t7")
    again = DecisionPolicy.from_dict(json.loads(json.dumps(policy.to_dict())))
    assert again == policy
    assert DecisionPolicy.from_dict({"auto_threshold": 0.95, "unknown_future_key": 1}).auto_threshold == 0.95


@pytest.mark.parametrize(
    "bad",
    [
        {"cosine_knots": [(0.5, 1.0), (0.9, 0.0)]},  # more alike would lower confidence
        {"colour_knots": [(0.5, 0.0), (0.5, 1.0)]},
        {"review_threshold": 0.95, "auto_threshold": 0.9},
        {"product_number_mismatch": 1.0},
    ],
)
def test_a_policy_that_breaks_the_rules_is_refused(bad):
    with pytest.raises(ValueError):
        DecisionPolicy(**bad)


# --- monotonicity ------------------------------------------------------------------------------

PN_ORDER = ["mismatch", "absent", "match"]
maybe = lambda s: st.one_of(st.none(), s)  # noqa: E731


@st.composite
def evidence_pairs(draw):
    """(evidence, the same evidence made at least as alike in every respect)."""
    cos = draw(maybe(st.floats(0, 1)))
    inl = draw(maybe(st.integers(0, 600)))
    agr = draw(maybe(st.floats(0, 1))) if inl is not None else None
    col = draw(maybe(st.floats(0, 1)))
    in_place = draw(maybe(st.floats(0, 1)))
    pn = draw(st.sampled_from(PN_ORDER))
    conflicts = draw(st.lists(st.sampled_from(["a", "b", "c"]), unique=True))
    llm_match = draw(maybe(st.booleans()))
    llm_conf = draw(st.floats(0, 1))
    llm_error = draw(st.booleans())

    def llm(is_match, conf, err):
        if is_match is None:
            return None
        return LlmVerdict(is_match=is_match, confidence=conf, error="boom" if err else None)

    base = PairEvidence(
        cosine=cos, inliers=inl, inlier_colour_agreement=agr, colour_distance=col,
        colour_distance_in_place=in_place, product_number=pn,
        conflicts=conflicts, llm=llm(llm_match, llm_conf, llm_error),
    )
    up = lambda x, hi: None if x is None else draw(st.floats(x, hi))  # noqa: E731
    more_conf = llm_conf
    more_match = llm_match
    if llm_match is True:
        more_conf = draw(st.floats(llm_conf, 1))
    elif llm_match is False:
        if draw(st.booleans()):
            more_match, more_conf = True, draw(st.floats(0, 1))
        else:
            more_conf = draw(st.floats(0, llm_conf))
    alike = PairEvidence(
        cosine=up(cos, 1.0),
        inliers=None if inl is None else draw(st.integers(inl, 700)),
        inlier_colour_agreement=up(agr, 1.0),
        colour_distance=None if col is None else draw(st.floats(0, col)),
        colour_distance_in_place=None if in_place is None else draw(st.floats(0, in_place)),
        product_number=PN_ORDER[draw(st.integers(PN_ORDER.index(pn), 2))],
        conflicts=[c for c in conflicts if draw(st.booleans())],
        # A failed call is no verdict at all, neither more nor less alike than a "no".
        llm=llm(more_match, more_conf, llm_error),
    )
    return base, alike


@given(evidence_pairs())
@settings(max_examples=400, deadline=None)
def test_more_alike_never_lowers_the_confidence_or_the_bucket(pair):
    base, alike = pair
    a, b = decide(base, POLICY), decide(alike, POLICY)
    assert b.confidence >= a.confidence - 1e-12
    assert BUCKET_RANK[b.bucket] >= BUCKET_RANK[a.bucket]
    assert 0.0 <= a.confidence <= 1.0


def test_colour_read_in_place_overrides_the_region_reading():
    # The region colour looked close (a dark garment recoloured black to navy), but compared
    # pixel for pixel through the keypoint transform the garment is another colour.
    recolour = PairEvidence(
        cosine=0.96, inliers=60, inlier_colour_agreement=0.05, colour_distance=0.15, colour_distance_in_place=0.9
    )
    d = decide(recolour, POLICY)
    assert d.bucket == "reject"
    assert any("in place" in r for r in d.reasons)
    reused = replace(recolour, inlier_colour_agreement=0.98, colour_distance=0.6, colour_distance_in_place=0.1)
    assert decide(reused, POLICY).bucket == "auto"


def test_blockers_and_gates_repeat_the_reasons_as_enums_in_order():
    from matcher.pipeline.types import AutoBlocker, AutoGate

    d = decide(replace(REUSED, conflicts=["a", "b"], product_number="mismatch"), POLICY)
    assert d.blockers == [AutoBlocker.PRODUCT_NUMBER_MISMATCH, AutoBlocker.ATTRIBUTE_CONFLICT, AutoBlocker.ATTRIBUTE_CONFLICT]
    assert len(d.blockers) == sum(r.startswith("blocks auto:") for r in d.reasons)
    assert d.gates == []
    weak = decide(PairEvidence(cosine=0.8), POLICY)
    assert weak.blockers == [] and weak.gates == [AutoGate.TOO_FEW_AGREEING_KINDS, AutoGate.COLOUR_NOT_VERIFIED]
    assert len(weak.gates) == sum(r.startswith("no auto:") for r in weak.reasons)
    failed = decide(replace(REUSED, llm=LlmVerdict(is_match=None, confidence=None, error="timeout")), POLICY)
    assert failed.blockers == [AutoBlocker.LLM_ERROR]
    said_no = decide(replace(REUSED, llm=LlmVerdict(is_match=False, confidence=0.9)), POLICY)
    assert said_no.blockers == [AutoBlocker.LLM_SAYS_NO]
    mismatch = decide(replace(REUSED, colour_distance=0.9), POLICY)
    assert mismatch.blockers == [AutoBlocker.COLOUR_MISMATCH]
