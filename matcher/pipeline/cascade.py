"""The cascade's one rule: run an optional stage only when its answer could still change the bucket.

Plain Python, no Django. Shared by the cut-out, the product-number OCR and the LLM verifier gates.

"Another bucket" is judged with the LLM verdict the pair has or, before the verifier has been
asked, with none and with an agreeing one at the weakest and the strongest confidence that counts
as agreement (the verdict that could still come), so a skipped stage never hides a bucket the
verifier could have reached. The bucket is monotonic in every kind of evidence (policy.decide), so
variants at the extremes of what a stage can report bound everything in between.
"""
from __future__ import annotations

import math
from dataclasses import replace
from enum import StrEnum

from matcher.pipeline.policy import DecisionPolicy, decide
from matcher.pipeline.types import Decision, LlmVerdict, PairEvidence


class Stage(StrEnum):
    """The optional stages whose gate this module decides."""

    CUTOUT = "cutout"  # background removal: a higher cosine, other region colours
    NUMBER_OCR = "number_ocr"  # reading their photos for our product number: a confirmed number at most
    LLM = "llm"  # the vision LLM verifier


def near_threshold(confidence: float, policy: DecisionPolicy, margin: float) -> bool:
    """Whether the confidence is within `margin` of the auto or the review threshold."""
    return any(abs(confidence - t) <= margin for t in (policy.auto_threshold, policy.review_threshold))


def llm_scenarios(evidence: PairEvidence, policy: DecisionPolicy) -> list[LlmVerdict | None]:
    """The verdicts to judge a gate under: the pair's own, or (none asked yet) none and an
    agreeing one at the weakest and the strongest confidence that counts as agreement."""
    if evidence.llm is not None:
        return [evidence.llm]
    return [None] + [
        LlmVerdict(is_match=True, confidence=c, model="(hypothetical)") for c in (policy.llm_agree_confidence, 1.0)
    ]


def could_change_bucket(evidence: PairEvidence, policy: DecisionPolicy, *variants: PairEvidence) -> bool:
    """True if any variant of the evidence could end in another bucket than the evidence itself,
    under each verdict of llm_scenarios(evidence)."""
    for llm in llm_scenarios(evidence, policy):
        now = decide(replace(evidence, llm=llm), policy).bucket
        for variant in variants:
            if decide(replace(variant, llm=llm), policy).bucket != now:
                return True
    return False


def verdict_could_change_bucket(decision: Decision, policy: DecisionPolicy) -> bool:
    """Whether an LLM verdict could change the bucket of `decision` (made without a verdict).

    Already auto means certain (the gates all passed); a pair so unlikely that even a confident
    "match" (+llm_weight log-odds) cannot lift it into review is not worth a call either.
    """
    if decision.bucket == "auto":
        return False
    c = min(max(decision.confidence, 1e-9), 1 - 1e-9)
    lifted = math.log(c / (1 - c)) + policy.llm_weight
    return 1 / (1 + math.exp(-lifted)) >= policy.review_threshold


def can_change_bucket(
    evidence: PairEvidence, policy: DecisionPolicy, stage: Stage, *, mapped_colour: float | None = None
) -> bool:
    """Whether running `stage` could move the pair to another bucket.

    - CUTOUT: a cut-out only adds embeddings (the cosine can only rise, to 1 at most) and replaces
      region colours (the colour distance can land anywhere from 0 to `mapped_colour`, the colour read
      through the keypoint transform, or 1 without one). When the in-place colour is known, decide()
      does not use the region colour at all, so only the cosine is left to move. No cosine yet: True.
    - NUMBER_OCR: OCR may only confirm our product number (never count against it).
    - LLM: judged from the evidence without its verdict (verdict_could_change_bucket).
    """
    if stage is Stage.LLM:
        return verdict_could_change_bucket(decide(replace(evidence, llm=None), policy), policy)
    if stage is Stage.NUMBER_OCR:
        return could_change_bucket(evidence, policy, replace(evidence, product_number="match"))
    if evidence.cosine is None:
        return True
    best = replace(evidence, cosine=1.0)
    worst = replace(evidence)
    if evidence.colour_distance_in_place is None:
        best.colour_distance = 0.0
        worst.colour_distance = mapped_colour if mapped_colour is not None else 1.0
    return could_change_bucket(evidence, policy, best, worst)


def could_reach_auto(evidence: PairEvidence, policy: DecisionPolicy) -> bool:
    """Whether an agreeing LLM verdict could make this pair an automatic match."""
    return any(
        decide(replace(evidence, llm=llm), policy).bucket == "auto"
        for llm in llm_scenarios(replace(evidence, llm=None), policy)
    )
