"""Tolerant readers of a stored `Match.evidence`: a malformed value is dropped, never raised."""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from matcher.evidence.types import (
    MAX_KEYPOINT_PAIRS,
    MAX_TEXT,
    BestPair,
    ConflictSource,
    ConflictTerms,
    ImageBox,
    KeypointMatches,
    LlmEvidence,
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


def _point_pair(p: Any) -> tuple[float, float, float, float] | None:
    """A stored point pair (x_ours, y_ours, x_theirs, y_theirs); None when malformed."""
    try:
        flat = [float(v) for v in p]
    except (TypeError, ValueError):
        return None
    if len(flat) != 4 or any(not math.isfinite(v) or v < 0 for v in flat):
        return None
    return (round(flat[0], 1), round(flat[1], 1), round(flat[2], 1), round(flat[3], 1))
