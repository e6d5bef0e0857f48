"""Online verification through the real google-genai SDK against the fake Gemini server."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest

from matcher import llm
from matcher.models import LlmVerdictRecord, MatchRun
from matcher.pipeline.cascade import verdict_could_change_bucket
from matcher.pipeline.policy import DecisionPolicy, decide
from matcher.pipeline.types import Decision, LlmVerdict, PairEvidence
from tests.factories import ProductFactory
from tests.fakes import gemini_server as fg
from tests.llm.pairs import FAST, FLASH_CALL_USD, PRO_CALL_USD, STRONG, pair

pytestmark = pytest.mark.django_db


def one(p: llm.LlmPairRequest | None = None, *, run_id=None, product_id=None) -> LlmVerdict:
    return llm.verify_pairs(pairs=[p or pair()], run_id=run_id, product_id=product_id)[0]


# Appearance, geometry and colour all agree: without an LLM verdict this pair is an automatic match.
STRONG_EVIDENCE = dict(cosine=0.97, inliers=100, inlier_colour_agreement=0.9, colour_distance=0.05)


def bucket_with(verdict: LlmVerdict | None) -> str:
    return decide(PairEvidence(**STRONG_EVIDENCE, llm=verdict), DecisionPolicy()).bucket


def test_a_valid_answer_becomes_a_verdict_with_its_cost_and_is_recorded(fake_gemini):
    v = one(run_id=None, product_id=None)

    assert v.error is None
    assert v.is_match is True and v.confidence == pytest.approx(0.93)
    assert v.candidate_type == "model_shot"
    assert "two-way zipper" in v.matched_features
    assert v.reasoning.startswith("Same logo")
    assert (v.model, v.prompt_version) == (FAST, "verify_v1")
    assert Decimal(v.cost_usd) == FLASH_CALL_USD
    record = LlmVerdictRecord.objects.get()
    assert record.ok and record.cost_usd == FLASH_CALL_USD
    assert (record.input_tokens, record.output_tokens) == (1000, 200)
    assert record.key == llm.cache_key(pair().image_a_hash, pair().image_b_hash, "verify_v1", FAST)


def test_the_request_asks_for_the_schema_blocks_only_high_harm_and_sends_both_sides(fake_gemini, settings):
    settings.GEMINI_MEDIA_RESOLUTION = "MEDIA_RESOLUTION_LOW"
    one()

    body = fake_gemini.requests[-1].body
    gen = body["generationConfig"]
    assert gen["responseMimeType"] == "application/json"
    assert gen["mediaResolution"] == "MEDIA_RESOLUTION_LOW"
    schema = gen["responseSchema"]
    assert set(schema["required"]) == {
        "is_match", "confidence", "candidate_type", "matched_features", "mismatched_features", "reasoning"
    }
    assert schema["properties"]["candidate_type"]["enum"] == [
        "model_shot", "ghost_mannequin", "flat_lay", "collage", "unknown"
    ]
    assert {(s["category"], s["threshold"]) for s in body["safetySettings"]} == {
        ("HARM_CATEGORY_HARASSMENT", "BLOCK_ONLY_HIGH"),
        ("HARM_CATEGORY_HATE_SPEECH", "BLOCK_ONLY_HIGH"),
        ("HARM_CATEGORY_SEXUALLY_EXPLICIT", "BLOCK_ONLY_HIGH"),
        ("HARM_CATEGORY_DANGEROUS_CONTENT", "BLOCK_ONLY_HIGH"),
    }
    parts = body["contents"][0]["parts"]
    assert sum(1 for p in parts if "inlineData" in p) == 3  # two of ours, one of theirs
    # The competitor's title arrives quoted as data, never as a bare instruction line.
    assert any(json.dumps(pair().title_b, ensure_ascii=False) in p.get("text", "") for p in parts)
    assert "strict merchandiser" in body["systemInstruction"]["parts"][0]["text"]
    assert fake_gemini.requests[-1].api_key == "test-key"


def test_a_429_with_a_retry_hint_is_waited_out_then_answered(fake_gemini, sleeps):
    fake_gemini.push(fg.rate_limited(retry_delay_s=0.3))

    v = one()

    assert v.error is None and v.is_match is True
    assert fake_gemini.generate_count() == 2
    assert sleeps and sleeps[0] >= 0.3  # never earlier than the provider asked


def test_a_retry_after_header_is_honoured_too(fake_gemini, sleeps):
    fake_gemini.push(fg.rate_limited(retry_delay_s=1, header=True))

    v = one()

    assert v.error is None
    assert sleeps[0] >= 1.0


def test_a_500_is_retried_then_answered(fake_gemini, sleeps):
    fake_gemini.push(fg.server_error())

    v = one()

    assert v.error is None and v.is_match is True
    assert fake_gemini.generate_count() == 2


def test_retries_stop_after_the_configured_attempts(fake_gemini, sleeps, settings):
    settings.GEMINI_MAX_RETRIES = 2
    fake_gemini.push(fg.server_error(), fg.server_error(), fg.server_error(), fg.ok())

    v = one()

    assert v.error and "500" in v.error
    assert fake_gemini.generate_count() == 3  # the first try and two retries; the scripted ok never comes


def test_a_timeout_ends_in_an_error_verdict(fake_gemini, sleeps, settings):
    settings.GEMINI_TIMEOUT_S = 0.5
    settings.GEMINI_MAX_RETRIES = 1
    fake_gemini.push(fg.slow(2.0), fg.slow(2.0))

    v = one()

    assert v.is_match is None
    assert v.error and "timeout" in v.error
    assert fake_gemini.generate_count() == 2


@pytest.mark.parametrize(
    "behaviour, reason",
    [
        (fg.safety_prompt(), "safety"),
        (fg.safety_finish(), "safety"),
        (fg.malformed(), "malformed JSON"),
        (fg.malformed("Sure! Here is my verdict: it is a match."), "malformed JSON"),
        (fg.schema_violation(), "schema"),
        (fg.schema_violation(confidence=0.9, candidate_type="model_shot", is_match="yes"), "schema"),
        (fg.ok(matched_features=None), "schema"),
    ],
    ids=[
        "prompt-blocked", "answer-blocked", "cut-off-json", "prose", "out-of-range", "string-bool", "null-list"
    ],
)
def test_an_unusable_answer_is_an_error_verdict_that_still_counts_its_cost(fake_gemini, behaviour, reason):
    fake_gemini.push(behaviour)

    v = one()

    assert v.is_match is None and v.confidence is None
    assert reason in v.error
    # The provider billed it, so the ledger keeps it — but not as a cache entry.
    record = LlmVerdictRecord.objects.get()
    assert not record.ok and record.cost_usd > 0
    assert record.key != llm.cache_key(pair().image_a_hash, pair().image_b_hash, "verify_v1", FAST)


FAILURES = {
    "safety": lambda fake, settings: fake.push(fg.safety_finish()),
    "malformed": lambda fake, settings: fake.push(fg.malformed()),
    "schema": lambda fake, settings: fake.push(fg.schema_violation()),
    "timeout": lambda fake, settings: (
        setattr(settings, "GEMINI_TIMEOUT_S", 0.5),
        setattr(settings, "GEMINI_MAX_RETRIES", 0),
        fake.push(fg.slow(2.0)),
    ),
    "5xx-exhausted": lambda fake, settings: (
        setattr(settings, "GEMINI_MAX_RETRIES", 1),
        fake.push(fg.server_error(), fg.server_error()),
    ),
    "spend-cap": lambda fake, settings: setattr(settings, "GEMINI_DAILY_SPEND_CAP_USD", Decimal("0")),
    "escalation-fails": lambda fake, settings: (
        fake.push(fg.ok(confidence=0.95 - 0.3), model=FAST),
        fake.push(fg.malformed(), model=STRONG),
    ),
}


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_every_failure_mode_ends_in_review_never_auto(fake_gemini, sleeps, settings, failure):
    assert bucket_with(None) == "auto"  # the same evidence alone would auto-match
    FAILURES[failure](fake_gemini, settings)

    v = one()

    assert v.error
    assert bucket_with(v) == "review"
    decision = decide(PairEvidence(**STRONG_EVIDENCE, llm=v), DecisionPolicy())
    assert any("LLM" in r for r in decision.reasons)  # the reason is visible


def test_without_an_api_key_the_verifier_is_off_and_calls_nothing(fake_gemini, settings):
    settings.GEMINI_API_KEY = ""

    assert llm.verifier_enabled() is False
    v = one()

    assert v.error and "GEMINI_API_KEY" in v.error
    assert fake_gemini.generate_count() == 0
    assert bucket_with(v) == "review"


def test_a_cached_verdict_is_not_requested_again(fake_gemini):
    first = one(run_id=None)
    second = one(run_id=None)

    assert fake_gemini.generate_count() == 1
    assert second.cached and not first.cached
    assert (second.is_match, second.confidence) == (first.is_match, first.confidence)
    assert second.reasoning == first.reasoning
    assert Decimal(second.cost_usd) == 0  # paid once, by the first call
    assert llm.spend_today().usd == FLASH_CALL_USD


def test_the_cache_is_per_prompt_version_and_model(fake_gemini, settings, tmp_path):
    one()
    prompt = tmp_path / "verify_v2.md"
    prompt.write_text("A stricter rubric.")
    settings.PROMPTS_DIR = tmp_path
    settings.GEMINI_PROMPT_VERSION = "verify_v2"

    v = one()

    assert not v.cached and v.prompt_version == "verify_v2"
    assert fake_gemini.generate_count() == 2


def test_a_failed_answer_is_asked_again_next_time(fake_gemini):
    fake_gemini.push(fg.malformed())
    assert one().error

    v = one()

    assert v.error is None and not v.cached
    assert fake_gemini.generate_count() == 2


def test_the_daily_spend_cap_stops_calls_and_the_pair_goes_to_review(fake_gemini, settings):
    settings.GEMINI_DAILY_SPEND_CAP_USD = Decimal("0.0005")  # less than one call

    first = one(pair(1))
    second = one(pair(2))

    assert first.error is None
    assert second.error and "spend cap" in second.error
    assert fake_gemini.generate_count() == 1
    assert bucket_with(second) == "review"
    assert llm.spend_today().usd == FLASH_CALL_USD


def test_spend_is_summed_per_run_and_per_sku_in_usd_and_krw(fake_gemini, settings):
    settings.USD_TO_KRW = Decimal("1400")
    run, sku_a, sku_b = MatchRun.objects.create(), ProductFactory(), ProductFactory()

    llm.verify_pairs(pairs=[pair(1), pair(2)], run_id=run.id, product_id=sku_a.id)
    llm.verify_pairs(pairs=[pair(3, product_id=sku_b.id)], run_id=run.id, product_id=None)
    llm.verify_pairs(pairs=[pair(1)], run_id=run.id, product_id=sku_a.id)  # cached: free

    assert llm.spend_for_run(run.id) == llm.Spend(usd=3 * FLASH_CALL_USD, krw=3, calls=3)
    assert llm.spend_for_product(sku_a.id).usd == 2 * FLASH_CALL_USD
    assert llm.spend_for_product(sku_b.id).usd == FLASH_CALL_USD


def test_the_escalation_model_is_asked_only_inside_the_uncertain_band(fake_gemini):
    fake_gemini.verdict_by_model[FAST] = {**fg.DEFAULT_VERDICT, "confidence": 0.95}
    sure = one(pair(1, escalate_band=(0.4, 0.8)))
    assert fake_gemini.generate_count(STRONG) == 0
    assert sure.model == FAST

    fake_gemini.verdict_by_model[FAST] = {**fg.DEFAULT_VERDICT, "confidence": 0.6}
    fake_gemini.verdict_by_model[STRONG] = {**fg.DEFAULT_VERDICT, "is_match": False, "confidence": 0.9,
                                            "reasoning": "Logo on the right chest, ours on the left."}
    unsure = one(pair(2, escalate_band=(0.4, 0.8)))
    assert fake_gemini.generate_count(STRONG) == 1
    assert (unsure.model, unsure.is_match) == (STRONG, False)
    assert unsure.reasoning == "Logo on the right chest, ours on the left."
    assert Decimal(unsure.cost_usd) == FLASH_CALL_USD + PRO_CALL_USD

    no_band = one(pair(3, escalate_band=None))
    assert fake_gemini.generate_count(STRONG) == 1
    assert no_band.model == FAST


def test_verdict_to_evidence_keeps_reasoning_and_cost_and_survives_json(fake_gemini, settings):
    settings.USD_TO_KRW = Decimal("1400")
    fake_gemini.output_tokens = 2000  # 0.0003 + 0.005 = 0.0053 USD → 7.42 KRW
    v = one()

    evidence = json.loads(json.dumps(llm.verdict_to_evidence(v)))

    assert evidence["reasoning"] == v.reasoning
    assert evidence["cost_usd"] == "0.005300" and evidence["cost_krw"] == 7
    assert evidence["model"] == FAST and evidence["prompt_version"] == "verify_v1"
    assert llm.verdict_from_evidence(evidence) == v


def test_only_pairs_the_verdict_could_move_are_sent():
    policy = DecisionPolicy()
    assert not verdict_could_change_bucket(Decision(confidence=0.97, bucket="auto", reasons=[]), policy)
    assert verdict_could_change_bucket(Decision(confidence=0.80, bucket="review", reasons=[]), policy)
    # Capped just under auto by a gate (e.g. one kind of evidence): the verdict could be the second kind.
    assert verdict_could_change_bucket(Decision(confidence=0.89, bucket="review", reasons=[]), policy)
    assert verdict_could_change_bucket(Decision(confidence=0.40, bucket="reject", reasons=[]), policy)
    assert not verdict_could_change_bucket(Decision(confidence=0.02, bucket="reject", reasons=[]), policy)
