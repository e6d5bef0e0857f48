"""The LLM's part of the pair page: its verdict, reasoning and cost, or that it is awaited or failed."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.utils.dateparse import parse_datetime

from matcher.evidence import EvidenceRecord, LlmState

__all__ = ["LlmView", "llm_view"]


@dataclass
class LlmView:
    state: str  # LlmState value: off / awaiting_batch / verdict / error
    is_match: bool | None = None
    confidence: float | None = None
    reasoning: str = ""
    model: str = ""
    prompt_version: str = ""
    cost_usd: Decimal | None = None
    cost_krw: int | None = None
    error: str = ""
    matched_features: list[str] = field(default_factory=list)
    mismatched_features: list[str] = field(default_factory=list)
    cached: bool = False
    escalating: bool = False  # awaiting the stronger model's verdict
    since: datetime | None = None  # awaiting since


def llm_view(record: EvidenceRecord) -> LlmView:
    llm = record.llm
    view = LlmView(state=llm.state.value)
    if llm.state is LlmState.AWAITING_BATCH:
        pending = llm.pending or {}
        view.escalating = llm.escalating
        view.model = str(pending.get("escalation_model" if llm.escalating else "model") or "")[:80]
        view.since = parse_datetime(str(pending.get("since") or "")) if pending.get("since") else None
        return view
    if llm.state is LlmState.OFF:
        return view
    try:
        cost: Decimal | None = Decimal(llm.cost_usd)
    except (InvalidOperation, ValueError):
        cost = None
    view.is_match, view.confidence, view.reasoning = llm.is_match, llm.confidence, llm.reasoning
    view.model, view.prompt_version, view.cached = llm.model, llm.prompt_version, llm.cached
    view.error = llm.error or ""
    view.matched_features, view.mismatched_features = llm.matched_features, llm.mismatched_features
    view.cost_usd = cost
    if cost is not None:
        view.cost_krw = llm.cost_krw if llm.cost_krw is not None else int(
            (cost * settings.USD_TO_KRW).to_integral_value()
        )
    return view
