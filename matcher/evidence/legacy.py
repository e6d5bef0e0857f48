"""Rows written before version 2 of the record (the free dict of the old `evidence_json`, blockers only in
`Match.reasons`): the one module that reads sentences, and `auto_blocked_q`, its SQL twin for aggregates."""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from django.db.models import Q, TextField
from django.db.models.functions import Cast
from django.db.models.lookups import Contains

from matcher.evidence.reading import _float, _str, _strings
from matcher.evidence.types import (
    MAX_TEXT,
    VERSION,
    Blocker,
    BlockerCode,
    ConflictSource,
    ConflictTerms,
    Gate,
    GateCode,
)

# The sentences pipeline.decide writes for a capped pair (behind them, the blocker or the gate).
LEGACY_BLOCKS_PREFIX = "blocks auto: "
LEGACY_GATE_PREFIX = "no auto: "
_OCR_SUFFIX = " (사진 속 글자 OCR)"  # matcher.pipeline.compare.OCR_CONFLICT_SUFFIX
_CONFLICT_BOTH = re.compile(r"^(?P<attr>[^:]+):\s*(?:ours\s+)?(?P<ours>.+?)\s+vs\.?\s+(?:listing\s+)?(?P<theirs>.+)$")
_CONFLICT_ONLY = re.compile(r"^(?P<attr>[^:]+):\s*listing only\s*[—-]\s*(?P<theirs>.+?)(?:\s*\(목록에만 표기\))?$")
_NUMBER = r"(\d+(?:\.\d+)?)"


def legacy_details(
    evidence: Mapping[str, Any], reasons: Sequence[str] = ()
) -> tuple[list[ConflictTerms], list[Blocker], list[Gate], str]:
    """What a row written before version 2 says in sentences: its conflicts, blockers, gates and OCR text.

    The only function that reads sentences: the conflict strings and the "blocks auto:" / "no auto:"
    reasons pipeline.policy wrote. Conflict terms are unknown for such rows (nothing to highlight)."""
    conflicts = [_legacy_conflict(c) for c in _strings(evidence.get("conflicts"))]
    ocr = evidence.get("ocr")
    ocr_text = _str(ocr.get("theirs") if isinstance(ocr, Mapping) else ocr, MAX_TEXT)
    blockers: list[Blocker] = []
    gates: list[Gate] = []
    for reason in reasons if isinstance(reasons, (list, tuple)) else ():
        if not isinstance(reason, str):
            continue
        if reason.startswith(LEGACY_BLOCKS_PREFIX):
            blockers.append(_legacy_blocker(reason.removeprefix(LEGACY_BLOCKS_PREFIX)))
        elif reason.startswith(LEGACY_GATE_PREFIX):
            gates.append(_legacy_gate(reason.removeprefix(LEGACY_GATE_PREFIX)))
    return conflicts, blockers, gates, ocr_text


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
