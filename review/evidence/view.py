"""The evidence panel of the pair page: the record's figures, conflicts, blocking sentences and LLM verdict.

Figures become short Korean sentences; the English detail stays behind a toggle.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from matcher.evidence import ConflictSource, EvidenceRecord, ImageBox, LlmState
from matcher.pipeline.attributes import GROUP_LABELS
from review.evidence.highlight import Segment, distinct_terms, title_segments
from review.evidence.llm import LlmView, llm_view
from review.evidence.sentences import ReasonLine, reason_lines

__all__ = ["ConflictLine", "EvidenceView", "evidence_view", "record_of"]


def record_of(match: Any) -> EvidenceRecord:
    """The record of a Match row (its reasons matter only for a row written before records had versions)."""
    return EvidenceRecord.from_json(match.evidence, reasons=match.reasons or ())


@dataclass(frozen=True)
class ConflictLine:
    attribute: str  # Korean label
    ours: str
    theirs: str
    from_photo: bool  # read from their photos (OCR), not their title


@dataclass
class EvidenceView:
    record: EvidenceRecord
    cosine: float | None = None
    cosine_regions: str = ""
    inliers: int | None = None
    inlier_colour_agreement: float | None = None
    colour_distance: float | None = None
    colour_distance_in_place: float | None = None
    product_number: str = ""  # match / mismatch / absent / "" when the matcher said nothing
    conflicts: list[ConflictLine] = field(default_factory=list)
    blocked: list[ReasonLine] = field(default_factory=list)
    ocr: list[Segment] = field(default_factory=list)
    llm: LlmView = field(default_factory=lambda: LlmView(state=LlmState.OFF.value))

    @property
    def empty(self) -> bool:
        return self.record.empty

    @property
    def conflict_terms_ours(self) -> list[str]:
        return distinct_terms(t for c in self.record.conflicts for t in c.ours_terms)

    @property
    def conflict_terms_theirs(self) -> list[str]:
        return distinct_terms(t for c in self.record.conflicts for t in c.theirs_terms)

    @property
    def best_ours(self) -> ImageBox | None:
        return self.record.best_pair.ours if self.record.best_pair else None

    @property
    def best_theirs(self) -> ImageBox | None:
        return self.record.best_pair.theirs if self.record.best_pair else None


def _attribute_label(attribute: str) -> str:
    return GROUP_LABELS.get(attribute, attribute).split("/")[0]


def evidence_view(record: EvidenceRecord) -> EvidenceView:
    regions = record.cosine_regions
    return EvidenceView(
        record=record,
        cosine=record.cosine,
        cosine_regions=f"{regions[0]} ↔ {regions[1]}" if regions else "",
        inliers=record.inliers,
        inlier_colour_agreement=record.inlier_colour_agreement,
        colour_distance=record.colour_distance,
        colour_distance_in_place=record.colour_distance_in_place,
        product_number=record.product_number,
        conflicts=[
            ConflictLine(_attribute_label(c.attribute), c.ours, c.theirs, c.source is ConflictSource.OCR)
            for c in record.conflicts
        ],
        blocked=reason_lines(record),
        # Their photos' text carries their words: the terms found there, and those of their title.
        ocr=title_segments(
            record.ocr_text, conflict_terms=distinct_terms(t for c in record.conflicts for t in c.theirs_terms)
        )
        if record.ocr_text else [],
        llm=llm_view(record),
    )
