"""Why a pair cannot be auto-matched, as short Korean sentences: blockers first, then gates.

Calibration and QC ask `is_auto_blocked` / `blocked_reasons` (or `auto_blocked_q` in SQL), never the reasons.
"""
from __future__ import annotations

from dataclasses import dataclass

from matcher.evidence import Blocker, BlockerCode, EvidenceRecord, Gate, GateCode

__all__ = ["ReasonLine", "blocked_reasons", "is_auto_blocked", "reason_lines"]


def is_auto_blocked(record: EvidenceRecord) -> bool:
    """The rules held the pair below auto whatever the threshold (a blocker, or a gate auto needs)."""
    return record.capped


def _figure(value: float | None, digits: int = 2) -> str:
    return "?" if value is None else f"{value:.{digits}f}"


def _blocker_text(b: Blocker) -> str:
    match b.code:
        case BlockerCode.ATTRIBUTE_CONFLICT:
            return "제목·사진 글자의 속성이 서로 달라 자동 매칭하지 않음"
        case BlockerCode.COLOUR_MISMATCH:
            limit = f" (기준 {_figure(b.limit)} 초과)" if b.limit is not None else ""
            return f"색상 거리 {_figure(b.figure)}{limit} — 색이 달라 자동 매칭하지 않음"
        case BlockerCode.PRODUCT_NUMBER_MISMATCH:
            return "품번이 서로 달라 자동 매칭하지 않음"
        case BlockerCode.LLM_NO_MATCH:
            conf = f" (확신 {_figure(b.figure)})" if b.figure is not None else ""
            return f"LLM이 다른 상품으로 판정{conf} — 자동 매칭하지 않음"
        case BlockerCode.LLM_ERROR:
            return "LLM 검증에 실패해 자동 매칭하지 않음"
    return "자동 매칭을 막는 근거가 있음"


def _gate_text(g: Gate) -> str:
    match g.code:
        case GateCode.FEW_AGREEING_KINDS:
            need = "" if g.limit is None else f" (자동 매칭에는 {g.limit:.0f}가지 필요)"
            if g.figure is None:
                return f"서로 독립된 일치 근거가 부족함{need}"
            return f"일치하는 근거가 {g.figure:.0f}가지뿐{need}"
        case GateCode.COLOUR_NOT_VERIFIED:
            return "색상이 일치하는지 확인되지 않음 (자동 매칭에는 색상 확인 필요)"
    return "자동 매칭 조건을 채우지 못함"


@dataclass(frozen=True)
class ReasonLine:
    text: str  # Korean, with the figures
    detail: str = ""  # English detail (behind a toggle)


def blocked_reasons(record: EvidenceRecord) -> list[str]:
    """Why the pair cannot be auto-matched, as short Korean sentences: blockers first, then gates."""
    return [line.text for line in reason_lines(record)]


def reason_lines(record: EvidenceRecord) -> list[ReasonLine]:
    """The same sentences, each with its English detail."""
    return [ReasonLine(_blocker_text(b), b.detail) for b in record.auto_blocked] + [
        ReasonLine(_gate_text(g), g.detail) for g in record.gates
    ]
