"""The evidence record: its JSON round trip, rows written before it, and what the matcher builds it from."""
from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

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
    LlmState,
    auto_blocked_q,
    from_legacy,
)
from matcher.pipeline.compare import Comparison, StageCounts
from matcher.pipeline.policy import DecisionPolicy, decide
from matcher.pipeline.types import (
    AttributeConflict,
    AutoBlocker,
    AutoGate,
    Box,
    Decision,
    LlmVerdict,
    PairEvidence,
    RegionRef,
)
from matcher.pipeline.types import KeypointMatches as PipelineKeypoints

OURS, THEIRS = "a" * 64, "b" * 64

# --- the round trip ----------------------------------------------------------------------------------

_text = st.text(min_size=1, max_size=30).filter(str.strip)
_number = st.floats(min_value=0, max_value=5000, allow_nan=False, allow_infinity=False)
_maybe = st.none() | st.floats(min_value=-1, max_value=1, allow_nan=False)
_pixel = st.integers(min_value=0, max_value=40000).map(lambda n: n / 10)  # one decimal, as stored
_sha = st.text(alphabet="0123456789abcdef", min_size=8, max_size=64)

_conflicts = st.builds(
    ConflictTerms, attribute=_text, ours=st.just("") | _text, theirs=_text,
    ours_terms=st.lists(_text, max_size=3), theirs_terms=st.lists(_text, max_size=3),
    source=st.sampled_from(ConflictSource),
)
_blockers = st.builds(Blocker, code=st.sampled_from(BlockerCode), figure=_maybe, limit=_maybe,
                      detail=st.just("") | _text)
_gates = st.builds(Gate, code=st.sampled_from(GateCode), figure=_maybe, limit=_maybe, detail=st.just("") | _text)
_keypoints = st.builds(KeypointMatches, ours_sha=_sha, theirs_sha=_sha,
                       pairs=st.lists(st.tuples(_pixel, _pixel, _pixel, _pixel), max_size=5))
_box = st.none() | st.lists(_number, min_size=4, max_size=4)
_best = st.builds(BestPair, ours=st.builds(ImageBox, _sha, _box), theirs=st.none() | st.builds(ImageBox, _sha, _box))
_json_dict = st.dictionaries(st.sampled_from(["mode", "stage", "model", "since", "image_a"]), _text, max_size=4)
_verdict = st.builds(
    LlmEvidence, answered=st.just(True), is_match=st.none() | st.booleans(), confidence=_maybe,
    candidate_type=_text, matched_features=st.lists(_text, max_size=3), mismatched_features=st.lists(_text, max_size=3),
    reasoning=st.text(max_size=60), model=st.text(max_size=20), prompt_version=st.text(max_size=8),
    error=st.none() | _text, cost_usd=st.decimals(min_value=0, max_value=3, places=6).map(str),
    cost_krw=st.none() | st.integers(0, 5000), cached=st.booleans(), batch_audit=st.none() | _json_dict,
)
_llm = (
    st.just(LlmEvidence())
    | st.builds(LlmEvidence, pending=_json_dict)
    | _verdict
    | st.builds(lambda v, p: replace(v, pending=p), _verdict, _json_dict)  # a verdict, then asked again
)
_records = st.builds(
    EvidenceRecord,
    cosine=_maybe, cosine_regions=st.none() | st.tuples(_text, _text), inliers=st.none() | st.integers(0, 500),
    inlier_colour_agreement=_maybe, colour_distance=_maybe, colour_distance_in_place=_maybe,
    product_number=st.sampled_from(["", "match", "mismatch", "absent"]),
    conflicts=st.lists(_conflicts, max_size=3), auto_blocked=st.lists(_blockers, max_size=3),
    gates=st.lists(_gates, max_size=2), keypoints=st.none() | _keypoints, best_pair=st.none() | _best,
    ocr_text=st.text(max_size=80), llm=_llm, garment_kind=st.none() | st.sampled_from(["upper", "lower"]),
    geometry_pairs=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4), st.integers(0, 99), _maybe), max_size=3),
    stages=st.dictionaries(st.sampled_from(["images", "ocr_images", "geometry_checks"]), st.integers(0, 50)),
)


@hsettings(max_examples=200, deadline=None)
@given(_records)
def test_a_record_survives_its_json_as_the_database_stores_it(record):
    stored = json.loads(json.dumps(record.to_json()))

    assert EvidenceRecord.from_json(stored) == record


def test_an_empty_or_missing_evidence_is_an_empty_record():
    for stored in (None, {}, [], "x"):
        record = EvidenceRecord.from_json(stored)
        assert record.empty and record.llm.state is LlmState.OFF and not record.capped


def test_malformed_values_are_dropped_not_raised():
    record = EvidenceRecord.from_json({
        "version": 2, "cosine": "n/a", "inliers": True, "conflicts": ["x", {"attribute": 3}],
        "auto_blocked": [{"code": "new_kind", "figure": "nan"}], "keypoints": {"ours_sha": "a", "theirs_sha": "b",
                                                                              "pairs": [[1, 2, 3], [1, 2, 3, "x"]]},
        "best_pair": {"ours": {"image_sha": "nope", "box": "bad"}}, "llm": {"cost_usd": "abc", "error": 5},
    })

    assert record.cosine is None and record.inliers is None
    assert record.conflicts == [ConflictTerms(attribute="")]
    assert record.auto_blocked == [Blocker(BlockerCode.OTHER)]
    assert record.keypoints == KeypointMatches("a", "b", [])
    assert record.best_pair == BestPair(ImageBox("nope", None), None)
    assert record.llm.state is LlmState.VERDICT and record.llm.cost_usd == "0"


# --- rows written before version 2 ---------------------------------------------------------------------

LEGACY = {  # as matcher.analysis.evidence_json and matcher.llm.verdict_to_evidence write them
    "cosine": 0.8731, "cosine_regions": ["ours[0].upper", "theirs[1].whole"], "inliers": 14,
    "inlier_colour_agreement": 0.42, "colour_distance": 0.3812, "product_number": "absent",
    "conflicts": ["대상/audience: ours adult vs listing kids",
                  "상태/condition: listing only — refurb (목록에만 표기) (사진 속 글자 OCR)"],
    "garment_kind": "upper", "geometry_pairs": [[0, 1, 14, 0.42]], "stages": {"images": 3, "ocr_images": 1},
    "best_pair": {"ours": {"image_sha": OURS, "box": [10, 20, 200, 300]},
                  "theirs": {"image_sha": THEIRS, "box": None}},
    "ocr": {"theirs": "REFURB 리퍼"},
}
LEGACY_REASONS = [
    "review at confidence 0.612 (policy t3)",
    "blocks auto: colour mismatch 색상 불일치: garment colour distance 0.38 > 0.30",
    "blocks auto: LLM gemini-flash says no match at 0.91 (-2.7)",
    "blocks auto: title conflict 속성 충돌: 대상/audience: ours adult vs listing kids",
    "no auto: only 1 kind(s) of agreeing evidence (appearance); auto needs 2",
    "no auto: colour not verified (no agreeing garment colour or colour-agreeing keypoints)",
    "agrees: embedding cosine 0.873 (+1.2)",
]


def test_a_legacy_row_loads_its_numbers_conflicts_and_photos():
    record = EvidenceRecord.from_json(LEGACY, reasons=LEGACY_REASONS)

    assert (record.cosine, record.inliers, record.colour_distance) == (0.8731, 14, 0.3812)
    assert record.cosine_regions == ("ours[0].upper", "theirs[1].whole")
    assert record.conflicts == [
        ConflictTerms("audience", ours="adult", theirs="kids"),
        ConflictTerms("condition", theirs="refurb", source=ConflictSource.OCR),
    ]
    assert record.best_pair == BestPair(ImageBox(OURS, [10, 20, 200, 300]), ImageBox(THEIRS, None))
    assert record.ocr_text == "REFURB 리퍼" and record.geometry_pairs == [(0, 1, 14, 0.42)]
    assert record.llm.state is LlmState.OFF


def test_a_legacy_rows_blockers_and_gates_come_from_its_reasons_with_their_figures():
    record = from_legacy(LEGACY, LEGACY_REASONS)

    assert [(b.code, b.figure, b.limit) for b in record.auto_blocked] == [
        (BlockerCode.COLOUR_MISMATCH, 0.38, 0.30),
        (BlockerCode.LLM_NO_MATCH, 0.91, None),
        (BlockerCode.ATTRIBUTE_CONFLICT, None, None),
    ]
    assert [(g.code, g.figure, g.limit) for g in record.gates] == [
        (GateCode.FEW_AGREEING_KINDS, 1.0, 2.0), (GateCode.COLOUR_NOT_VERIFIED, None, None)
    ]
    assert record.auto_blocked[0].detail.startswith("colour mismatch")  # the English detail is kept
    assert record.capped
    assert not from_legacy(LEGACY, ["auto at confidence 0.950 (policy t3)"]).capped


def test_a_legacy_rows_llm_state_follows_its_keys():
    verdict = {"is_match": True, "confidence": 0.86, "reasoning": "같은 상품", "model": "gemini-flash",
               "prompt_version": "v3", "error": None, "cost_usd": "0.000412", "cost_krw": 1, "cached": False,
               "candidate_type": "same_photo", "matched_features": ["로고"], "mismatched_features": []}
    marker = {"mode": "batch", "stage": "escalate", "model": "flash", "escalation_model": "pro", "since": "x"}

    said = EvidenceRecord.from_json({**LEGACY, "llm": verdict}).llm
    failed = EvidenceRecord.from_json({**LEGACY, "llm": {**verdict, "error": "timeout"}}).llm
    awaiting = EvidenceRecord.from_json({**LEGACY, "llm_pending": marker}).llm

    assert said.state is LlmState.VERDICT and said.is_match and said.cost_usd == "0.000412"
    assert said.matched_features == ["로고"] and said.candidate_type == "same_photo"
    assert failed.state is LlmState.ERROR and failed.error == "timeout"
    assert awaiting.state is LlmState.AWAITING_BATCH and awaiting.escalating and awaiting.pending == marker


def test_a_loaded_legacy_row_written_again_keeps_the_keys_matcher_llm_reads():
    marker = {"mode": "batch", "stage": "fast", "image_a": OURS, "pair_evidence": {"cosine": 0.8}}
    again = EvidenceRecord.from_json({**LEGACY, "llm_pending": marker}, reasons=LEGACY_REASONS).to_json()

    assert again["version"] == 2 and again["llm_pending"] == marker and "llm" not in again
    assert again["capped"] is True
    assert EvidenceRecord.from_json(again) == EvidenceRecord.from_json({**LEGACY, "llm_pending": marker},
                                                                       reasons=LEGACY_REASONS)


# --- built by the matcher ------------------------------------------------------------------------------


def _comparison(evidence: PairEvidence, **kwargs) -> Comparison:
    return Comparison(evidence=evidence, decision=decide(evidence, DecisionPolicy()), stats=StageCounts(images=2),
                      best_images=(0, 0), **kwargs)


def test_a_comparison_gives_its_numbers_terms_and_the_blockers_decide_found():
    evidence = PairEvidence(cosine=0.91234, inliers=3, colour_distance=0.62, product_number="mismatch",
                            conflicts=["audience: adult vs kids"])
    conflict = AttributeConflict("audience", "adult", "kids", ["성인"], ["키즈"], "title")
    comp = _comparison(evidence, garment_kind="upper", geometry_pairs=[(0, 0, 3, None)], conflict_details=[conflict])

    record = EvidenceRecord.from_comparison(comp, our_shas=[OURS], their_shas=[THEIRS], ocr_text="KIDS")

    assert record.cosine == 0.9123 and record.product_number == "mismatch" and record.ocr_text == "KIDS"
    assert record.conflicts == [ConflictTerms("audience", "adult", "kids", ["성인"], ["키즈"], ConflictSource.TITLE)]
    assert [b.code for b in record.auto_blocked] == [BlockerCode(b.value) for b in comp.decision.blockers]
    assert {b.code for b in record.auto_blocked} == {
        BlockerCode.COLOUR_MISMATCH, BlockerCode.PRODUCT_NUMBER_MISMATCH, BlockerCode.ATTRIBUTE_CONFLICT
    }
    colour = next(b for b in record.auto_blocked if b.code is BlockerCode.COLOUR_MISMATCH)
    assert colour.figure == pytest.approx(0.62)
    assert record.best_pair == BestPair(ImageBox(OURS), ImageBox(THEIRS))
    assert record.stages["images"] == 2 and record.llm.state is LlmState.OFF
    assert record.capped and comp.decision.bucket != "auto"
    # The gate carries how many kinds agreed and how many auto needs, as decide() counted them.
    few = [g for g in record.gates if g.code is GateCode.FEW_AGREEING_KINDS]
    assert few == [Gate(GateCode.FEW_AGREEING_KINDS, float(len(comp.decision.agreeing)), 2.0,
                        ", ".join(comp.decision.agreeing))]


def test_every_blocker_and_gate_the_pipeline_names_has_a_code_in_the_record():
    assert {b.value for b in AutoBlocker} <= {c.value for c in BlockerCode}
    assert {g.value for g in AutoGate} <= {c.value for c in GateCode}


def test_a_comparison_that_says_nothing_against_auto_is_not_capped():
    evidence = PairEvidence(cosine=0.95, inliers=80, inlier_colour_agreement=0.97, colour_distance=0.05,
                            product_number="match")
    comp = _comparison(evidence)

    record = EvidenceRecord.from_comparison(comp, our_shas=[OURS], their_shas=[THEIRS])

    assert comp.decision.bucket == "auto" and not record.capped


def test_the_keypoints_and_boxes_are_taken_from_the_comparisons_typed_fields():
    evidence = PairEvidence(cosine=0.9, colour_distance=0.5)
    ours_region = RegionRef("ours", 1, 0, "upper", Box(0, 0, 100, 200))
    theirs_region = RegionRef("theirs", 0, 2, "item", Box(5, 5, 50, 50))
    comp = _comparison(
        evidence,
        keypoint_matches=PipelineKeypoints(1, 0, [((10.04, 20.0), (30.0, 40.06)), ((5, 6), (7, 8))], [True, False]),
        best_regions=(ours_region, theirs_region),
    )
    comp.best_images = (1, 0)

    record = EvidenceRecord.from_comparison(comp, our_shas=[OURS, "c" * 64], their_shas=[THEIRS])

    assert record.keypoints == KeypointMatches("c" * 64, THEIRS, [(10.0, 20.0, 30.0, 40.1), (5, 6, 7, 8)])
    assert record.best_pair == BestPair(ImageBox("c" * 64, [0, 0, 100, 200]), ImageBox(THEIRS, [5, 5, 50, 50]))


def test_the_llm_write_back_helpers_set_the_state():
    record = EvidenceRecord(cosine=0.8)
    marker = {"mode": "batch", "stage": "fast", "model": "flash"}

    awaiting = record.with_llm_awaiting(marker)
    said = awaiting.with_llm_verdict(LlmVerdict(is_match=False, confidence=0.9, cost_usd="0.0004"),
                                     decision=Decision(0.3, "reject", [], blockers=[AutoBlocker.LLM_SAYS_NO]),
                                     batch_audit={"job_id": 7})
    failed = awaiting.with_llm_verdict(LlmVerdict(is_match=None, confidence=None, error="timeout"))

    assert awaiting.llm.state is LlmState.AWAITING_BATCH and awaiting.to_json()["llm_pending"] == marker
    assert said.llm.state is LlmState.VERDICT and said.llm.pending is None
    assert said.auto_blocked == [Blocker(BlockerCode.LLM_NO_MATCH, 0.9)] and said.capped
    assert said.to_json()["llm_batch"] == {"job_id": 7} and "llm_pending" not in said.to_json()
    assert Decimal(said.to_json()["llm"]["cost_usd"]) == Decimal("0.0004")
    assert failed.llm.state is LlmState.ERROR and record.llm.state is LlmState.OFF  # the original is untouched


# --- in SQL ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_sql_twin_agrees_with_the_record_on_legacy_and_version_2_rows():
    from matcher.models import Match
    from tests.review.factories import make_pair

    rows = {
        "legacy capped": make_pair(evidence=LEGACY, reasons=LEGACY_REASONS),
        "legacy free": make_pair(evidence=LEGACY, reasons=["auto at confidence 0.950 (policy t3)"]),
        "v2 capped": make_pair(evidence=EvidenceRecord(gates=[Gate(GateCode.OTHER)]).to_json(),
                               reasons=["auto at confidence 0.950"]),
        # A version-2 row answers from its record, whatever its sentences say.
        "v2 free": make_pair(evidence=EvidenceRecord(cosine=0.9).to_json(), reasons=["blocks auto: old words"]),
        "empty": make_pair(evidence={}, reasons=[]),
    }

    in_sql = set(Match.objects.filter(auto_blocked_q()).values_list("id", flat=True))

    for name, match in rows.items():
        capped = EvidenceRecord.from_json(match.evidence, reasons=match.reasons).capped
        assert (match.id in in_sql) == capped, name
    assert {n for n, m in rows.items() if m.id in in_sql} == {"legacy capped", "v2 capped"}
