"""The evidence of one decision as a typed, versioned record: what `Match.evidence` holds.

The matcher writes it (`EvidenceRecord.from_comparison`, then `with_llm_*` when a verdict arrives);
the review app reads it (`EvidenceRecord.from_json`). Conflicts are term lists, blockers and gates are
enums with their figures, keypoint matches are coordinates, the LLM's state is an enum: nobody reads
a sentence meant for a person.

Rows written before version 2 (the free dict of `matcher.analysis.evidence_json`, with `llm` /
`llm_pending` from `matcher.llm`) load through `from_legacy` (the sentences are read in `legacy.py` alone)
(`Match.reasons`, conflict strings); `auto_blocked_q` is its SQL twin for aggregate queries.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from matcher.evidence.legacy import legacy_details
from matcher.evidence.reading import (
    _best_pair,
    _box,
    _conflict_json,
    _enum,
    _float,
    _int,
    _keypoints_json,
    _list,
    _llm,
    _round,
    _str,
    _strings,
    _value,
)
from matcher.evidence.types import (
    MAX_KEYPOINT_PAIRS,
    MAX_TEXT,
    VERSION,
    BestPair,
    Blocker,
    BlockerCode,
    ConflictSource,
    ConflictTerms,
    Gate,
    GateCode,
    ImageBox,
    KeypointMatches,
    LlmEvidence,
    LlmState,
)
from matcher.pipeline.compare import Comparison
from matcher.pipeline.types import AttributeConflict, AutoBlocker, AutoGate, Decision, LlmVerdict
from matcher.pipeline.types import KeypointMatches as PipelineKeypoints


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


def from_legacy(evidence: Mapping[str, Any], reasons: Sequence[str] = ()) -> EvidenceRecord:
    """A row written before version 2: its numbers as stored, its conflicts and blockers from sentences."""
    record = _common(evidence)
    record.conflicts, record.auto_blocked, record.gates, record.ocr_text = legacy_details(evidence, reasons)
    return record


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
