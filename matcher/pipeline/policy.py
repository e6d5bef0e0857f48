"""The decision policy: evidence → one confidence and a bucket (auto / review / reject), with reasons.

Plain Python, no Django. The policy is a dataclass the Django side stores versioned in the
database (`DecisionPolicy.to_dict()` / `DecisionPolicy.from_dict()`).

How the confidence is built
- Each kind of evidence adds log-odds through a non-decreasing piecewise-linear curve of its
  similarity (embedding cosine, colour-agreeing keypoint inliers, colour similarity = 1 −
  distance), or a fixed amount (product number, LLM verdict). Missing evidence adds nothing.
  confidence = sigmoid(bias + Σ contributions). So more alike never lowers the confidence:
  competitors re-use our photos, and there "alike" is the strongest sign of all.
- Auto-matching then needs, besides confidence ≥ auto_threshold:
  * at least `min_agreeing_kinds` independent kinds that agree (appearance, geometry,
    product number, LLM);
  * the colour verified: garment colours agree, or matched keypoints agree in colour;
  * no blocker: a title attribute conflict, a colour mismatch, a product-number mismatch, an
    LLM that says "no" or failed.
  Otherwise the confidence is capped just below auto_threshold, which sends the pair to
  review at most. Every gate only opens as evidence gets more alike, so the capped
  confidence stays monotonic.
- A colour mismatch or a product-number mismatch does more than block: their log-odds are
  strongly negative, which is what rejects "same model, another colour".

The defaults (version "v1") were chosen on the Luma dev pairs (one studio photo a side:
positives are other views of the same product, most negatives the same style in another
colour) and on our own photos re-used by a competitor (crops, banners, collages, canvases):
the colour curve turns steeply negative past a distance of ~0.84, which keeps ~94% of
cross-view positives in review and sends ~80% of negatives to reject; the cosine curve only
penalises low cosines, because in that set "more alike" means "another colour of the same
shot"; inliers count only with colour agreement ≥ 0.8 (full at 0.92). Auto-matching on Luma
needs geometry (no titles), so it is rare there; on re-used photos it is the rule.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from matcher.pipeline.types import AutoBlocker, AutoGate, Bucket, Decision, PairEvidence

Knots = list[tuple[float, float]]

KIND_APPEARANCE = "appearance"
KIND_GEOMETRY = "geometry"
KIND_PRODUCT_NUMBER = "product_number"
KIND_LLM = "llm"
KIND_COLOUR = "colour"
KNOT_FIELDS = ("cosine_knots", "inlier_knots", "colour_knots", "colour_in_place_knots")


@dataclass
class DecisionPolicy:
    version: str = "v1"
    auto_threshold: float = 0.9
    review_threshold: float = 0.7
    # Confidence with no evidence at all, as log-odds: a reject.
    bias: float = -1.0
    # (cosine, log-odds), non-decreasing. EfficientNet-Lite2 region embeddings: a back
    # view or close-up of the same garment scores 0.5–0.9 against its front view, so only
    # low cosines count against a pair.
    cosine_knots: Knots = field(
        default_factory=lambda: [(0.40, -0.5), (0.55, 0.5), (0.70, 1.0), (0.85, 1.7), (0.92, 2.5), (0.97, 3.5)]
    )
    # (colour-agreeing inliers, log-odds), non-decreasing.
    inlier_knots: Knots = field(default_factory=lambda: [(8.0, 0.0), (15.0, 1.5), (40.0, 3.5), (100.0, 5.0)])
    # (colour similarity = 1 − colour distance, log-odds), non-decreasing. Steep around a
    # distance of 0.84–0.9, where "same colour from another view" ends and "another colour"
    # begins on the Luma studio photos.
    colour_knots: Knots = field(
        default_factory=lambda: [(0.0, -7.0), (0.10, -3.0), (0.16, 1.0), (0.26, 1.5), (0.6, 2.0), (0.85, 2.5)]
    )
    # (in-place colour similarity = 1 − colour_distance_in_place, log-odds), non-decreasing.
    # Read through a reliable transform, pixel against pixel: a re-used photo mostly stays
    # below 0.35, a recolour of it mostly lands above 0.8; re-photographed copies with a
    # strong cast reach 0.75, hence the crossing near 0.7. When present it replaces the
    # region colour curve (the same property, measured more directly).
    colour_in_place_knots: Knots = field(
        default_factory=lambda: [(0.0, -5.0), (0.25, -1.5), (0.40, 1.0), (0.60, 2.0), (0.85, 2.5)]
    )
    product_number_match: float = 2.5
    product_number_mismatch: float = -4.0
    # LLM: ± weight × its confidence.
    llm_weight: float = 3.0
    # When does a kind count as agreeing? Appearance from a cosine of 0.87 (was 0.82): the same
    # tee or sweatshirt with another print, photographed on the same template, scores 0.84–0.86
    # and shares the garment's keypoints (collar, hem, seams), so appearance and geometry agreed
    # and 18 such pairs were matched automatically in the 200 × 50 benchmark run. Re-deciding
    # that run's evidence at 0.87 leaves none of them, for 2.6 % of the true automatic matches
    # (to review); on the competitor-style evaluation pairs 264 of 268 automatic matches remain.
    cosine_agree: float = 0.87
    inliers_agree: float = 15.0
    # Inliers count in proportion to their colour agreement, ramping from none at
    # agreement_zero to all at agreement_full: a recoloured copy of the photo matches
    # everywhere in shape and nowhere in colour.
    inlier_colour_agreement_zero: float = 0.8
    inlier_colour_agreement_full: float = 0.92
    # Colour counts as verified by the keypoints from this agreement on.
    inlier_colour_agreement_min: float = 0.9
    colour_agree_max_distance: float = 0.2
    colour_block_distance: float = 0.45
    colour_in_place_agree_max_distance: float = 0.35
    colour_in_place_block_distance: float = 0.45
    llm_agree_confidence: float = 0.7
    min_agreeing_kinds: int = 2
    auto_requires_colour: bool = True
    llm_error_blocks_auto: bool = True
    # Cap for a blocked pair: below auto_threshold by this much.
    block_margin: float = 0.01

    def __post_init__(self) -> None:
        self.cosine_knots = _as_knots(self.cosine_knots)
        self.inlier_knots = _as_knots(self.inlier_knots)
        self.colour_knots = _as_knots(self.colour_knots)
        self.colour_in_place_knots = _as_knots(self.colour_in_place_knots)
        for name in KNOT_FIELDS:
            knots = getattr(self, name)
            xs = [x for x, _ in knots]
            ys = [y for _, y in knots]
            if not knots or xs != sorted(xs) or len(set(xs)) != len(xs) or ys != sorted(ys):
                raise ValueError(f"{name} must have strictly increasing x and non-decreasing log-odds")
        if not 0.0 <= self.review_threshold <= self.auto_threshold <= 1.0:
            raise ValueError("need 0 ≤ review_threshold ≤ auto_threshold ≤ 1")
        if self.product_number_match < 0 or self.product_number_mismatch > 0 or self.llm_weight < 0:
            raise ValueError("a match must not lower confidence, nor a mismatch raise it")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for name in KNOT_FIELDS:
            d[name] = [[float(x), float(y)] for x, y in d[name]]
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DecisionPolicy:
        """Unknown keys are ignored (a newer policy read by older code); missing keys take defaults."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def _as_knots(knots: Sequence[Sequence[float]]) -> Knots:
    return [(float(x), float(y)) for x, y in knots]


def _interp(x: float, knots: Knots) -> float:
    if x <= knots[0][0]:
        return knots[0][1]
    for (x0, y0), (x1, y1) in zip(knots, knots[1:]):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return knots[-1][1]


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def effective_inliers(evidence: PairEvidence, policy: DecisionPolicy) -> float | None:
    """Inliers that count: scaled by the share whose local colour agrees (same print, other
    colour must not count). Unknown agreement counts the inliers as they are but does not
    verify colour."""
    if evidence.inliers is None:
        return None
    agreement = evidence.inlier_colour_agreement
    if agreement is None:
        return float(evidence.inliers)
    lo, hi = policy.inlier_colour_agreement_zero, policy.inlier_colour_agreement_full
    weight = 1.0 if hi <= lo else (agreement - lo) / (hi - lo)
    return float(evidence.inliers) * max(0.0, min(1.0, weight))


def decide(evidence: PairEvidence, policy: DecisionPolicy) -> Decision:
    """The bucket, confidence and reasons for this evidence under this policy (pure; no side effects).

    Decision.blockers / .gates repeat the "blocks auto:" / "no auto:" reasons as enums, in the same order.
    """
    logit = policy.bias
    agreed: list[str] = []
    notes: list[str] = []
    blockers: list[str] = []
    blocker_kinds: list[AutoBlocker] = []
    colour_verified = False

    if evidence.cosine is not None:
        c = _interp(evidence.cosine, policy.cosine_knots)
        logit += c
        where = f" ({evidence.cosine_regions[0]}↔{evidence.cosine_regions[1]})" if evidence.cosine_regions else ""
        text = f"embedding cosine {evidence.cosine:.3f}{where} ({c:+.1f})"
        if evidence.cosine >= policy.cosine_agree:
            agreed.append(KIND_APPEARANCE)
            notes.append("agrees: " + text)
        else:
            notes.append("weak: " + text)

    eff = effective_inliers(evidence, policy)
    if eff is not None:
        g = _interp(eff, policy.inlier_knots)
        logit += g
        agreement = evidence.inlier_colour_agreement
        agree_txt = "" if agreement is None else f", colour agreement {agreement:.0%}"
        text = f"keypoint inliers {evidence.inliers}{agree_txt} ({g:+.1f})"
        if eff >= policy.inliers_agree:
            agreed.append(KIND_GEOMETRY)
            notes.append("agrees: " + text)
            if agreement is not None and agreement >= policy.inlier_colour_agreement_min:
                colour_verified = True
        else:
            notes.append("weak: " + text)

    if evidence.colour_distance_in_place is not None:
        colour = (evidence.colour_distance_in_place, policy.colour_in_place_knots,
                  policy.colour_in_place_agree_max_distance, policy.colour_in_place_block_distance,
                  "garment colour in place (through the keypoint transform)")
        if evidence.colour_distance is not None:
            notes.append(f"not used: garment colour distance by region {evidence.colour_distance:.2f}")
    elif evidence.colour_distance is not None:
        colour = (evidence.colour_distance, policy.colour_knots, policy.colour_agree_max_distance,
                  policy.colour_block_distance, "garment colour distance")
    else:
        colour = None
    if colour is not None:
        raw, knots, agree_max, block, label = colour
        d = max(0.0, min(1.0, raw))
        k = _interp(1.0 - d, knots)
        logit += k
        text = f"{label} {d:.2f} ({k:+.1f})"
        if d <= agree_max:
            colour_verified = True
            notes.append("agrees: " + text)
        elif d > block:
            blockers.append(f"colour mismatch 색상 불일치: {label} {d:.2f} > {block:.2f}")
            blocker_kinds.append(AutoBlocker.COLOUR_MISMATCH)
            notes.append("disagrees: " + text)
        else:
            notes.append("uncertain: " + text)

    if evidence.product_number == "match":
        logit += policy.product_number_match
        agreed.append(KIND_PRODUCT_NUMBER)
        notes.append(f"agrees: product number 품번 ({policy.product_number_match:+.1f})")
    elif evidence.product_number == "mismatch":
        logit += policy.product_number_mismatch
        blockers.append(f"product number mismatch 품번 불일치 ({policy.product_number_mismatch:+.1f})")
        blocker_kinds.append(AutoBlocker.PRODUCT_NUMBER_MISMATCH)

    llm = evidence.llm
    if llm is not None:
        if llm.error:
            notes.append(f"LLM failed, not used: {llm.error}")
            if policy.llm_error_blocks_auto:
                blockers.append("LLM call failed: no automatic match")
                blocker_kinds.append(AutoBlocker.LLM_ERROR)
        elif llm.is_match is not None:
            conf = max(0.0, min(1.0, llm.confidence if llm.confidence is not None else 0.5))
            contribution = policy.llm_weight * (conf if llm.is_match else -conf)
            logit += contribution
            label = f"LLM {llm.model or ''} says {'match' if llm.is_match else 'no match'} at {conf:.2f} ({contribution:+.1f})"
            if llm.is_match and conf >= policy.llm_agree_confidence:
                agreed.append(KIND_LLM)
                notes.append("agrees: " + label)
            elif not llm.is_match:
                blockers.append(label)
                blocker_kinds.append(AutoBlocker.LLM_SAYS_NO)
            else:
                notes.append("weak: " + label)

    for conflict in evidence.conflicts:
        blockers.append(f"title conflict 속성 충돌: {conflict}")
        blocker_kinds.append(AutoBlocker.ATTRIBUTE_CONFLICT)

    confidence = _sigmoid(logit)
    cap = policy.auto_threshold - policy.block_margin
    gates: list[str] = []
    gate_kinds: list[AutoGate] = []
    if blockers:
        gates.append("blocked")
    if len(agreed) < policy.min_agreeing_kinds:
        gates.append(
            f"only {len(agreed)} kind(s) of agreeing evidence ({', '.join(agreed) or 'none'}); "
            f"auto needs {policy.min_agreeing_kinds}"
        )
        gate_kinds.append(AutoGate.TOO_FEW_AGREEING_KINDS)
    if policy.auto_requires_colour and not colour_verified:
        gates.append("colour not verified (no agreeing garment colour or colour-agreeing keypoints)")
        gate_kinds.append(AutoGate.COLOUR_NOT_VERIFIED)
    if gates and confidence > cap:
        confidence = cap

    bucket: Bucket
    if confidence >= policy.auto_threshold:
        bucket = "auto"
    elif confidence >= policy.review_threshold:
        bucket = "review"
    else:
        bucket = "reject"

    reasons = [f"{bucket} at confidence {confidence:.3f} (policy {policy.version})"]
    reasons += [f"blocks auto: {b}" for b in blockers]
    reasons += [f"no auto: {g}" for g in gates if g != "blocked"]
    reasons += notes
    return Decision(
        confidence=confidence, bucket=bucket, reasons=reasons, blockers=blocker_kinds, gates=gate_kinds,
        agreeing=tuple(agreed), agreeing_needed=policy.min_agreeing_kinds,
    )
