"""What the verifier sends and what must come back: the prompt, the request, the verdict schema, and
the reading of a response into an LlmVerdict (or an error verdict saying why there is none)."""
from __future__ import annotations

import enum
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pydantic
from google.genai import types as gt

from matcher.pipeline.types import LlmVerdict


class CandidateType(str, enum.Enum):  # noqa: UP042 (its str() is part of stored verdicts)
    MODEL_SHOT = "model_shot"
    GHOST_MANNEQUIN = "ghost_mannequin"
    FLAT_LAY = "flat_lay"
    COLLAGE = "collage"
    UNKNOWN = "unknown"


class VerdictSchema(pydantic.BaseModel):
    """The answer the model must give; sent as the response schema and checked again on receipt."""

    # Strict: "yes" is not True and "0.9" is not 0.9 — a sloppy answer is an error, not a verdict.
    model_config = pydantic.ConfigDict(strict=True, extra="ignore")

    is_match: bool = pydantic.Field(description="True only if B shows exactly the same product as A.")
    confidence: float = pydantic.Field(
        ge=0.0, le=1.0, allow_inf_nan=False, description="How sure you are of is_match, 0 to 1."
    )
    candidate_type: CandidateType = pydantic.Field(description="What kind of photo B is.")
    matched_features: list[str] = pydantic.Field(description="Features that agree between A and B.")
    mismatched_features: list[str] = pydantic.Field(
        description="Features that differ or cannot be confirmed."
    )
    reasoning: str = pydantic.Field(description="Two or three sentences a merchandiser can check.")


# Finish reasons that mean the answer is not a usable verdict.
BLOCK_FINISH = frozenset(
    {"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT"}
)


@dataclass(frozen=True)
class Prompt:
    version: str  # the file name stem, e.g. "verify_v1"; stored on every verdict
    text: str


def load_prompt(prompts_dir: Path, version: str) -> Prompt:
    path = Path(prompts_dir) / f"{version}.md"
    return Prompt(version=version, text=path.read_text(encoding="utf-8").strip())



@dataclass
class VerifyRequest:
    """One pair: A is our SKU, B the competitor listing. JPEG bytes, the crops first, then originals."""

    images_a: Sequence[bytes]
    images_b: Sequence[bytes]
    title_a: str = ""
    title_b: str = ""


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass
class VerifyResult:
    verdict: LlmVerdict
    usage: Usage
    attempts: int = 0



def needs_escalation(verdict: LlmVerdict, band: tuple[float, float] | None) -> bool:
    """A verdict whose own confidence sits inside [low, high] is unsure enough to ask the stronger model."""
    if band is None or verdict.error or verdict.confidence is None:
        return False
    low, high = band
    return low <= verdict.confidence <= high


def jpeg_bytes(image: Any, *, max_side: int = 1024, quality: int = 85) -> bytes:
    """A PIL image as JPEG bytes, downscaled: pixels the media resolution drops only cost upload time."""
    img = image.convert("RGB")
    if max(img.size) > max_side:
        img = img.copy()
        img.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def error_verdict(
    error: str, *, model: str = "", prompt_version: str = "", cost: Decimal = Decimal(0)
) -> LlmVerdict:
    return LlmVerdict(
        is_match=None,
        confidence=None,
        model=model,
        prompt_version=prompt_version,
        error=error[:500],
        cost_usd=str(cost),
    )


def usage_of(response: gt.GenerateContentResponse) -> Usage:
    meta = response.usage_metadata
    if meta is None:
        return Usage()
    # Thinking tokens are billed as output.
    return Usage(
        input_tokens=meta.prompt_token_count or 0,
        output_tokens=(meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0),
    )


def parse_response(response: gt.GenerateContentResponse, *, model: str, prompt_version: str) -> LlmVerdict:
    """The verdict in a response, or an error verdict saying why there is none."""

    def failed(reason: str) -> LlmVerdict:
        return error_verdict(reason, model=model, prompt_version=prompt_version)

    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason is not None:
        return failed(f"blocked by safety filter (prompt: {_enum_text(feedback.block_reason)})")
    if not response.candidates:
        return failed("no answer (no candidates)")
    candidate = response.candidates[0]
    finish = _enum_text(candidate.finish_reason) if candidate.finish_reason is not None else ""
    if finish in BLOCK_FINISH:
        return failed(f"blocked by safety filter (answer: {finish})")
    if finish == "MAX_TOKENS":
        return failed("answer cut off (MAX_TOKENS)")
    parts = candidate.content.parts if candidate.content and candidate.content.parts else []
    text = "".join(p.text for p in parts if p.text and not p.thought)
    if not text.strip():
        return failed(f"empty answer (finish {finish or 'unknown'})")
    try:
        answer = VerdictSchema.model_validate_json(text)
    except pydantic.ValidationError as e:
        first: Mapping[str, Any] = e.errors()[0] if e.errors() else {}
        if first.get("type") == "json_invalid":
            return failed("malformed JSON answer")
        where = ".".join(str(x) for x in first.get("loc", ()))
        return failed(f"answer violates the schema: {where}: {first.get('msg', '')}")
    return LlmVerdict(
        is_match=answer.is_match,
        confidence=float(answer.confidence),
        candidate_type=answer.candidate_type.value,
        matched_features=[f[:200] for f in answer.matched_features[:20]],
        mismatched_features=[f[:200] for f in answer.mismatched_features[:20]],
        reasoning=answer.reasoning[:2000],
        model=model,
        prompt_version=prompt_version,
    )


def _enum_text(value: Any) -> str:
    return str(getattr(value, "value", value))
