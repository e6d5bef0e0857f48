"""The evidence of one decision as a typed, versioned record: what `Match.evidence` holds.

The matcher writes it (`EvidenceRecord.from_comparison`, then `with_llm_*` when a verdict arrives);
the review app reads it (`EvidenceRecord.from_json`). Conflicts are term lists, blockers and gates are
enums with their figures, keypoint matches are coordinates, the LLM's state is an enum: nobody reads
a sentence meant for a person.

Rows written before version 2 (the free dict of `matcher.analysis.evidence_json`, with `llm` /
`llm_pending` from `matcher.llm`) load through `from_legacy`, the one place that reads old sentences
(`Match.reasons`, conflict strings); `auto_blocked_q` is its SQL twin for aggregate queries.
"""
from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import Q, TextField
from django.db.models.functions import Cast
from django.db.models.lookups import Contains

from matcher.pipeline.types import AttributeConflict, AutoBlocker, AutoGate, Decision, LlmVerdict
from matcher.pipeline.types import KeypointMatches as PipelineKeypoints

if TYPE_CHECKING:
    from matcher.pipeline.compare import Comparison

VERSION = 2
MAX_KEYPOINT_PAIRS = 200  # the review page draws them all; more only weighs down the row
MAX_TEXT = 4000


def usd_to_krw(usd: Decimal) -> int:
    return int((Decimal(usd) * settings.USD_TO_KRW).quantize(Decimal(1), rounding=ROUND_HALF_UP))


class ConflictSource(StrEnum):
    TITLE = "title"
    OCR = "ocr"  # text printed on their photos


class BlockerCode(StrEnum):
    """Why the decision rules keep a pair out of auto (each one alone is enough)."""

    ATTRIBUTE_CONFLICT = "attribute_conflict"
    COLOUR_MISMATCH = "colour_mismatch"
    PRODUCT_NUMBER_MISMATCH = "product_number_mismatch"
    LLM_NO_MATCH = "llm_says_no"
    LLM_ERROR = "llm_error"
    OTHER = "other"


class GateCode(StrEnum):
    """What auto needs and the pair lacks, without anything speaking against it."""

    FEW_AGREEING_KINDS = "too_few_agreeing_kinds"
    COLOUR_NOT_VERIFIED = "colour_not_verified"
    OTHER = "other"


class LlmState(StrEnum):
    OFF = "off"  # not asked: the verifier is off or the pair's bucket could not change
    AWAITING_BATCH = "awaiting_batch"
    VERDICT = "verdict"
    ERROR = "error"


@dataclass
class ConflictTerms:
    attribute: str  # lexicon group, e.g. "audience"
    ours: str = ""  # the values each side names ("" when only the listing names one)
    theirs: str = ""
    ours_terms: list[str] = field(default_factory=list)  # the words as written, for highlighting
    theirs_terms: list[str] = field(default_factory=list)
    source: ConflictSource = ConflictSource.TITLE


@dataclass
class Blocker:
    code: BlockerCode
    figure: float | None = None  # what was measured (colour distance, the LLM's confidence)
    limit: float | None = None  # the line it crossed
    detail: str = ""  # English detail, shown behind a toggle


@dataclass
class Gate:
    code: GateCode
    figure: float | None = None
    limit: float | None = None
    detail: str = ""


@dataclass
class KeypointMatches:
    """RANSAC inliers between one photo of each side, in original-image pixels: (x_ours, y_ours, x_theirs, y_theirs)."""

    ours_sha: str
    theirs_sha: str
    pairs: list[tuple[float, float, float, float]] = field(default_factory=list)


@dataclass
class ImageBox:
    image_sha: str
    box: list[float] | None = None  # (x0, y0, x1, y1) in original pixels, x1/y1 exclusive


@dataclass
class BestPair:
    ours: ImageBox | None = None
    theirs: ImageBox | None = None


@dataclass
class LlmEvidence:
    """The vision LLM's part: a verdict (its fields below), a batch request awaited, or nothing."""

    answered: bool = False
    is_match: bool | None = None
    confidence: float | None = None
    candidate_type: str = "unknown"
    matched_features: list[str] = field(default_factory=list)
    mismatched_features: list[str] = field(default_factory=list)
    reasoning: str = ""
    model: str = ""
    prompt_version: str = ""
    error: str | None = None
    cost_usd: str = "0"  # Decimal as string, exact
    cost_krw: int | None = None
    cached: bool = False
    # matcher.llm's batch marker, kept exactly as written: its owner reads it back from the row.
    pending: dict[str, Any] | None = None
    batch_audit: dict[str, Any] | None = None  # which Batch API job wrote the verdict back, and when

    @property
    def state(self) -> LlmState:
        if self.pending is not None:
            return LlmState.AWAITING_BATCH
        if not self.answered:
            return LlmState.OFF
        return LlmState.ERROR if self.error else LlmState.VERDICT

    @property
    def escalating(self) -> bool:
        return self.pending is not None and self.pending.get("stage") == "escalate"

    @classmethod
    def from_verdict(cls, v: LlmVerdict, *, cost_krw: int | None = None) -> LlmEvidence:
        """cost_krw: None converts the verdict's USD cost at today's `USD_TO_KRW`."""
        if cost_krw is None:
            cost_krw = usd_to_krw(Decimal(v.cost_usd or "0"))
        return cls(
            answered=True, is_match=v.is_match, confidence=v.confidence, candidate_type=v.candidate_type,
            matched_features=list(v.matched_features), mismatched_features=list(v.mismatched_features),
            reasoning=v.reasoning, model=v.model, prompt_version=v.prompt_version, error=v.error,
            cost_usd=str(Decimal(v.cost_usd or "0")), cost_krw=cost_krw, cached=v.cached,
        )

    def verdict_json(self) -> dict[str, Any]:
        """The shape of matcher.llm.verdict_to_evidence, which also writes this key."""
        return {
            "is_match": self.is_match, "confidence": self.confidence, "candidate_type": self.candidate_type,
            "matched_features": list(self.matched_features), "mismatched_features": list(self.mismatched_features),
            "reasoning": self.reasoning, "model": self.model, "prompt_version": self.prompt_version,
            "error": self.error, "cost_usd": self.cost_usd, "cost_krw": self.cost_krw, "cached": self.cached,
        }


@dataclass
class EvidenceRecord:
    version: int = VERSION
    cosine: float | None = None
    cosine_regions: tuple[str, str] | None = None  # labels such as "ours[0].upper"
    inliers: int | None = None
    inlier_colour_agreement: float | None = None
    colour_distance: float | None = None
    colour_distance_in_place: float | None = None
    product_number: str = ""  # "match" / "mismatch" / "absent"; "" when unknown
    conflicts: list[ConflictTerms] = field(default_factory=list)
    auto_blocked: list[Blocker] = field(default_factory=list)
    gates: list[Gate] = field(default_factory=list)
    keypoints: KeypointMatches | None = None
    best_pair: BestPair | None = None
    ocr_text: str = ""  # text read from their photos
    llm: LlmEvidence = field(default_factory=LlmEvidence)
    garment_kind: str | None = None
    geometry_pairs: list[tuple[int, int, int, float | None]] = field(default_factory=list)
    stages: dict[str, int] = field(default_factory=dict)

    @property
    def capped(self) -> bool:
        """The rules held the confidence below auto: a blocker, or a gate auto needs and the pair lacks."""
        return bool(self.auto_blocked or self.gates)

    @property
    def empty(self) -> bool:
        return (self.cosine is None and self.inliers is None and self.colour_distance is None
                and self.llm.state is LlmState.OFF and not self.conflicts)

    # --- JSON ---------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "version": self.version,
            "cosine": self.cosine,
            "cosine_regions": list(self.cosine_regions) if self.cosine_regions else None,
            "inliers": self.inliers,
            "inlier_colour_agreement": self.inlier_colour_agreement,
            "colour_distance": self.colour_distance,
            "colour_distance_in_place": self.colour_distance_in_place,
            "product_number": self.product_number,
            "conflicts": [dataclasses.asdict(c) for c in self.conflicts],
            "auto_blocked": [dataclasses.asdict(b) for b in self.auto_blocked],
            "gates": [dataclasses.asdict(g) for g in self.gates],
            # Derived, for SQL (auto_blocked_q); from_json ignores it.
            "capped": self.capped,
            "keypoints": None if self.keypoints is None else {
                "ours_sha": self.keypoints.ours_sha, "theirs_sha": self.keypoints.theirs_sha,
                "pairs": [list(p) for p in self.keypoints.pairs],
            },
            "ocr_text": self.ocr_text,
            "garment_kind": self.garment_kind,
            "geometry_pairs": [list(p) for p in self.geometry_pairs],
            "stages": dict(self.stages),
        }
        if self.best_pair is not None:
            data["best_pair"] = {
                side: None if box is None else {"image_sha": box.image_sha, "box": box.box}
                for side, box in (("ours", self.best_pair.ours), ("theirs", self.best_pair.theirs))
            }
        # The LLM keys keep the names matcher.llm reads and writes on the raw row.
        if self.llm.answered:
            data["llm"] = self.llm.verdict_json()
        if self.llm.pending is not None:
            data["llm_pending"] = self.llm.pending
        if self.llm.batch_audit is not None:
            data["llm_batch"] = self.llm.batch_audit
        return data

    @classmethod
    def from_json(cls, data: Any, *, reasons: Sequence[str] = ()) -> EvidenceRecord:
        """Any stored `Match.evidence` (None, {}, a legacy dict, a version-2 record); never raises.

        reasons: the row's `Match.reasons`, read only for a legacy row (its blockers were sentences)."""
        if not isinstance(data, Mapping):
            return cls()
        if _int(data.get("version")) is None or (_int(data.get("version")) or 0) < VERSION:
            return from_legacy(data, reasons)
        record = _common(data)
        record.conflicts = [_conflict_json(c) for c in _list(data.get("conflicts")) if isinstance(c, Mapping)]
        record.auto_blocked = [
            Blocker(_enum(BlockerCode, b.get("code")), _float(b.get("figure")), _float(b.get("limit")),
                    _str(b.get("detail"), 500))
            for b in _list(data.get("auto_blocked")) if isinstance(b, Mapping)
        ]
        record.gates = [
            Gate(_enum(GateCode, g.get("code")), _float(g.get("figure")), _float(g.get("limit")),
                 _str(g.get("detail"), 500))
            for g in _list(data.get("gates")) if isinstance(g, Mapping)
        ]
        record.keypoints = _keypoints_json(data.get("keypoints"))
        record.ocr_text = _str(data.get("ocr_text"), MAX_TEXT)
        return record

    # --- the matcher's writes -----------------------------------------------------------------------

    @classmethod
    def from_comparison(
        cls,
        comp: Comparison,
        *,
        our_shas: Sequence[str],
        their_shas: Sequence[str],
        ocr_text: str = "",
        llm_pending: Mapping[str, Any] | None = None,
    ) -> EvidenceRecord:
        """The record of one compared pair. our_shas/their_shas: the photos compared, in the comparer's order.

        Everything is read from the Comparison's typed fields (conflict_details, the decision's blockers and
        gates, keypoint_matches, best_boxes); nothing here reads a reason sentence."""
        ev = comp.evidence
        record = cls(
            cosine=_round(ev.cosine, 4), cosine_regions=(ev.cosine_regions[0], ev.cosine_regions[1]) if ev.cosine_regions else None,
            inliers=ev.inliers, inlier_colour_agreement=_round(ev.inlier_colour_agreement, 3),
            colour_distance=_round(ev.colour_distance, 4),
            colour_distance_in_place=_round(getattr(ev, "colour_distance_in_place", None), 4),
            product_number=ev.product_number or "", ocr_text=(ocr_text or "")[:MAX_TEXT],
            garment_kind=comp.garment_kind,
            geometry_pairs=[(int(i), int(j), int(n), _float(a)) for i, j, n, a in comp.geometry_pairs],
            stages=dict(comp.stats.as_dict()),
        )
        record.conflicts = [_conflict_of(c) for c in comp.conflict_details]
        record.auto_blocked = [blocker_of(b, record) for b in comp.blockers]
        record.gates = [gate_of(g, comp.decision) for g in comp.gates]
        if comp.best_images:
            i, j = comp.best_images
            box_ours, box_theirs = comp.best_boxes
            record.best_pair = BestPair(
                ours=ImageBox(our_shas[min(i, len(our_shas) - 1)], _box(box_ours)) if our_shas else None,
                theirs=ImageBox(their_shas[min(j, len(their_shas) - 1)], _box(box_theirs)) if their_shas else None,
            )
        record.keypoints = _keypoints_of(comp.keypoint_matches, our_shas, their_shas)
        if ev.llm is not None:
            record.llm = LlmEvidence.from_verdict(ev.llm)
        if llm_pending is not None:
            record.llm = dataclasses.replace(record.llm, pending=dict(llm_pending))
        return record

    def with_llm_verdict(
        self,
        verdict: LlmVerdict,
        *,
        cost_krw: int | None = None,
        decision: Decision | None = None,
        batch_audit: Mapping[str, Any] | None = None,
    ) -> EvidenceRecord:
        """The record once a verdict is in (online, or written back from a batch): no longer awaiting.

        decision: the decision taken again with the verdict; its blockers and gates replace the record's
        (the verdict may add or lift one)."""
        out = dataclasses.replace(
            self, llm=dataclasses.replace(LlmEvidence.from_verdict(verdict, cost_krw=cost_krw),
                                          batch_audit=dict(batch_audit) if batch_audit is not None else None)
        )
        if decision is not None:
            out.auto_blocked = [blocker_of(b, out) for b in decision.blockers]
            out.gates = [gate_of(g, decision) for g in decision.gates]
        return out

    def with_llm_awaiting(self, marker: Mapping[str, Any]) -> EvidenceRecord:
        """The record of a pair whose verdict a Batch API request will bring (marker: matcher.llm's)."""
        return dataclasses.replace(self, llm=LlmEvidence(pending=dict(marker)))


# --- mapping the pipeline's types -------------------------------------------------------------------
# The codes are the pipeline's own values (tests/matcher/test_evidence_record.py checks every member), so
# a pipeline blocker maps by value; OTHER exists only for rows written before the record.


def blocker_of(value: AutoBlocker | Blocker, record: EvidenceRecord | None = None) -> Blocker:
    """A pipeline blocker as a Blocker, with the figure the record measured (colour distance, LLM confidence)."""
    if isinstance(value, Blocker):
        return value
    code = BlockerCode(value.value)
    figure: float | None = None
    if record is not None:
        if code is BlockerCode.COLOUR_MISMATCH:
            figure = record.colour_distance_in_place if record.colour_distance_in_place is not None \
                else record.colour_distance
        elif code is BlockerCode.LLM_NO_MATCH:
            figure = record.llm.confidence
    return Blocker(code, figure)


def gate_of(value: AutoGate | Gate, decision: Decision | None = None) -> Gate:
    """A pipeline gate as a Gate; too few agreeing kinds carries how many agreed and how many auto needs."""
    if isinstance(value, Gate):
        return value
    code = GateCode(value.value)
    if code is GateCode.FEW_AGREEING_KINDS and decision is not None and decision.agreeing_needed:
        return Gate(code, float(len(decision.agreeing)), float(decision.agreeing_needed), ", ".join(decision.agreeing))
    return Gate(code)


def _conflict_of(c: AttributeConflict) -> ConflictTerms:
    return ConflictTerms(
        attribute=_str(c.attribute, 80), ours=_value(c.ours), theirs=_value(c.theirs),
        ours_terms=_strings(c.ours_terms), theirs_terms=_strings(c.theirs_terms),
        source=ConflictSource(c.source),
    )


def _keypoints_of(matches: PipelineKeypoints | None, our_shas: Sequence[str],
                  their_shas: Sequence[str]) -> KeypointMatches | None:
    """The geometry check's inliers between one photo of each side, for drawing."""
    if matches is None or not matches.points:
        return None
    if not (0 <= matches.ours_image < len(our_shas) and 0 <= matches.theirs_image < len(their_shas)):
        return None
    pairs = [(round(float(a[0]), 1), round(float(a[1]), 1), round(float(b[0]), 1), round(float(b[1]), 1))
             for a, b in matches.points[:MAX_KEYPOINT_PAIRS]]
    return KeypointMatches(our_shas[matches.ours_image], their_shas[matches.theirs_image], pairs)


def _point_pair(p: Any) -> tuple[float, float, float, float] | None:
    """A stored point pair (x_ours, y_ours, x_theirs, y_theirs); None when malformed."""
    try:
        flat = [float(v) for v in p]
    except (TypeError, ValueError):
        return None
    if len(flat) != 4 or any(not math.isfinite(v) or v < 0 for v in flat):
        return None
    return (round(flat[0], 1), round(flat[1], 1), round(flat[2], 1), round(flat[3], 1))


# --- legacy rows (before version 2) ------------------------------------------------------------------

# The sentences pipeline.decide writes for a capped pair (behind them, the blocker or the gate).
LEGACY_BLOCKS_PREFIX = "blocks auto: "
LEGACY_GATE_PREFIX = "no auto: "
_OCR_SUFFIX = " (사진 속 글자 OCR)"  # matcher.pipeline.compare.OCR_CONFLICT_SUFFIX
_CONFLICT_BOTH = re.compile(r"^(?P<attr>[^:]+):\s*(?:ours\s+)?(?P<ours>.+?)\s+vs\.?\s+(?:listing\s+)?(?P<theirs>.+)$")
_CONFLICT_ONLY = re.compile(r"^(?P<attr>[^:]+):\s*listing only\s*[—-]\s*(?P<theirs>.+?)(?:\s*\(목록에만 표기\))?$")
_NUMBER = r"(\d+(?:\.\d+)?)"


def from_legacy(evidence: Mapping[str, Any], reasons: Sequence[str] = ()) -> EvidenceRecord:
    """A row written before version 2: the dict of evidence_json and matcher.llm, blockers from `reasons`.

    The only function that reads sentences: the conflict strings and the "blocks auto:" / "no auto:"
    reasons pipeline.decide wrote. Conflict terms are unknown for such rows (nothing to highlight)."""
    record = _common(evidence)
    record.conflicts = [_legacy_conflict(c) for c in _strings(evidence.get("conflicts"))]
    ocr = evidence.get("ocr")
    record.ocr_text = _str(ocr.get("theirs") if isinstance(ocr, Mapping) else ocr, MAX_TEXT)
    for reason in reasons if isinstance(reasons, (list, tuple)) else ():
        if not isinstance(reason, str):
            continue
        if reason.startswith(LEGACY_BLOCKS_PREFIX):
            record.auto_blocked.append(_legacy_blocker(reason.removeprefix(LEGACY_BLOCKS_PREFIX)))
        elif reason.startswith(LEGACY_GATE_PREFIX):
            record.gates.append(_legacy_gate(reason.removeprefix(LEGACY_GATE_PREFIX)))
    return record


def _legacy_conflict(text: str) -> ConflictTerms:
    source = ConflictSource.OCR if text.endswith(_OCR_SUFFIX) else ConflictSource.TITLE
    body = text.removesuffix(_OCR_SUFFIX).strip()
    for pattern in (_CONFLICT_ONLY, _CONFLICT_BOTH):
        m = pattern.match(body)
        if m:
            return ConflictTerms(attribute=_attribute(m.group("attr")), ours=m.groupdict().get("ours") or "",
                                 theirs=m.group("theirs").strip(), source=source)
    return ConflictTerms(attribute=_attribute(body.split(":")[0]), theirs=body, source=source)


def _attribute(label: str) -> str:
    # GROUP_LABELS reads "대상/audience": the group is the part after the slash.
    return label.strip().split("/")[-1].strip()[:80]


def _legacy_blocker(text: str) -> Blocker:
    low = text.lower()
    if low.startswith("colour mismatch"):
        m = re.search(_NUMBER + r"\s*>\s*" + _NUMBER, text)
        return Blocker(BlockerCode.COLOUR_MISMATCH, _float(m and m.group(1)), _float(m and m.group(2)), text)
    if low.startswith("product number mismatch"):
        return Blocker(BlockerCode.PRODUCT_NUMBER_MISMATCH, detail=text)
    if low.startswith("llm call failed"):
        return Blocker(BlockerCode.LLM_ERROR, detail=text)
    if low.startswith("llm") and "says no match" in low:
        m = re.search(r"no match at " + _NUMBER, text)
        return Blocker(BlockerCode.LLM_NO_MATCH, _float(m and m.group(1)), detail=text)
    if low.startswith("title conflict"):
        return Blocker(BlockerCode.ATTRIBUTE_CONFLICT, detail=text)
    return Blocker(BlockerCode.OTHER, detail=text)


def _legacy_gate(text: str) -> Gate:
    m = re.match(r"only (\d+) kind\(s\) of agreeing evidence.*auto needs (\d+)", text)
    if m:
        return Gate(GateCode.FEW_AGREEING_KINDS, float(m.group(1)), float(m.group(2)), text)
    if text.lower().startswith("colour not verified"):
        return Gate(GateCode.COLOUR_NOT_VERIFIED, detail=text)
    return Gate(GateCode.OTHER, detail=text)


def auto_blocked_q() -> Q:
    """SQL for "the rules held this pair below auto" (EvidenceRecord.capped) over Match rows.

    Version-2 rows answer from their record; legacy rows from their reasons, as from_legacy reads them."""
    reasons = Cast("reasons", TextField())
    legacy = Q(Contains(reasons, LEGACY_BLOCKS_PREFIX.strip())) | Q(Contains(reasons, LEGACY_GATE_PREFIX.strip()))
    # Containment, not a key lookup: a missing key must read as false, not NULL, under NOT.
    return Q(evidence__contains={"version": VERSION, "capped": True}) | (~Q(evidence__has_key="version") & legacy)


# --- tolerant readers --------------------------------------------------------------------------------


def _common(data: Mapping[str, Any]) -> EvidenceRecord:
    """The keys legacy and version-2 rows share."""
    regions = data.get("cosine_regions")
    pn = data.get("product_number")
    stages = data.get("stages")
    return EvidenceRecord(
        cosine=_float(data.get("cosine")),
        cosine_regions=(str(regions[0])[:80], str(regions[1])[:80])
        if isinstance(regions, (list, tuple)) and len(regions) == 2 else None,
        inliers=_int(data.get("inliers")),
        inlier_colour_agreement=_float(data.get("inlier_colour_agreement")),
        colour_distance=_float(data.get("colour_distance")),
        colour_distance_in_place=_float(data.get("colour_distance_in_place")),
        product_number=pn if pn in ("match", "mismatch", "absent") else "",
        best_pair=_best_pair(data.get("best_pair")),
        llm=_llm(data.get("llm"), data.get("llm_pending"), data.get("llm_batch")),
        garment_kind=data.get("garment_kind") if isinstance(data.get("garment_kind"), str) else None,
        geometry_pairs=[
            (int(p[0]), int(p[1]), int(p[2]), _float(p[3])) for p in _list(data.get("geometry_pairs"))
            if isinstance(p, (list, tuple)) and len(p) == 4 and all(_int(v) is not None for v in p[:3])
        ],
        stages={str(k): int(v) for k, v in stages.items() if _int(v) is not None}
        if isinstance(stages, Mapping) else {},
    )


def _llm(verdict: Any, pending: Any, audit: Any) -> LlmEvidence:
    llm = LlmEvidence(pending=dict(pending) if isinstance(pending, Mapping) else None,
                      batch_audit=dict(audit) if isinstance(audit, Mapping) else None)
    if not isinstance(verdict, Mapping):
        return llm
    try:
        cost = str(Decimal(str(verdict.get("cost_usd") or "0")))
    except (InvalidOperation, ValueError):
        cost = "0"
    is_match = verdict.get("is_match")
    return dataclasses.replace(
        llm, answered=True, is_match=is_match if isinstance(is_match, bool) else None,
        confidence=_float(verdict.get("confidence")),
        candidate_type=_str(verdict.get("candidate_type"), 40) or "unknown",
        matched_features=_strings(verdict.get("matched_features")),
        mismatched_features=_strings(verdict.get("mismatched_features")),
        reasoning=_str(verdict.get("reasoning"), MAX_TEXT), model=_str(verdict.get("model"), 80),
        prompt_version=_str(verdict.get("prompt_version"), 40),
        error=_str(verdict.get("error"), 500) or None, cost_usd=cost,
        cost_krw=_int(verdict.get("cost_krw")), cached=verdict.get("cached") is True,
    )


def _conflict_json(c: Mapping[str, Any]) -> ConflictTerms:
    return ConflictTerms(
        attribute=_str(c.get("attribute"), 80), ours=_value(c.get("ours")), theirs=_value(c.get("theirs")),
        ours_terms=_strings(c.get("ours_terms")), theirs_terms=_strings(c.get("theirs_terms")),
        source=_enum(ConflictSource, c.get("source")),
    )


def _keypoints_json(value: Any) -> KeypointMatches | None:
    if not isinstance(value, Mapping) or not isinstance(value.get("ours_sha"), str) \
            or not isinstance(value.get("theirs_sha"), str):
        return None
    pairs = [p for p in (_point_pair(p) for p in _list(value.get("pairs"))[:MAX_KEYPOINT_PAIRS]) if p is not None]
    return KeypointMatches(value["ours_sha"], value["theirs_sha"], pairs)


def _best_pair(value: Any) -> BestPair | None:
    if not isinstance(value, Mapping):
        return None
    ours, theirs = _image_box(value.get("ours")), _image_box(value.get("theirs"))
    return None if ours is None and theirs is None else BestPair(ours, theirs)


def _image_box(value: Any) -> ImageBox | None:
    if not isinstance(value, Mapping):
        return None
    sha = value.get("image_sha")
    return ImageBox(sha, _box(value.get("box"))) if isinstance(sha, str) and sha else None


def _box(value: Any) -> list[float] | None:
    if hasattr(value, "as_list"):
        value = value.as_list()
    if not (isinstance(value, (list, tuple)) and len(value) == 4):
        return None
    numbers = [_float(v) for v in value]
    return None if any(v is None for v in numbers) else [v for v in numbers if v is not None]


def _enum(kind: Any, value: Any) -> Any:
    """A member of kind from its value; an unknown value is the first member ("title" / "other")."""
    try:
        return kind(value)
    except ValueError:
        return kind.OTHER if hasattr(kind, "OTHER") else next(iter(kind))


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _round(value: Any, digits: int) -> float | None:
    f = _float(value)
    return None if f is None else round(f, digits)


def _int(value: Any) -> int | None:
    f = _float(value)
    return None if f is None else int(f)


def _str(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _value(value: Any) -> str:
    """An attribute value: a string, or a set of them (joined as the conflict strings did)."""
    if isinstance(value, (set, frozenset, list, tuple)):
        return "/".join(sorted(str(v) for v in value))[:200]
    return _str(value, 200)


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else []


def _strings(value: Any, limit: int = 20) -> list[str]:
    if isinstance(value, str):
        return [value[:300]] if value else []
    return [str(v)[:300] for v in _list(value)[:limit] if v not in (None, "")]
