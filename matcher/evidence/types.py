"""The typed parts of an evidence record: enums for conflicts, blockers, gates and the LLM's state, the
small dataclasses they travel in, and the LLM's part of the record."""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

from django.conf import settings

from matcher.pipeline.types import LlmVerdict

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
