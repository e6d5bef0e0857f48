"""The SKU page's history: causes in Korean with links, the table's rows and the chart on a time axis."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.urls import reverse

from matcher.causes import Cause, CauseKind
from matcher.models import Product
from pricing import selectors
from pricing.models import (
    PriceAuditEntry,
    PriceChange,
    PriceProposal,
)
from pricing.sku_page.listings import pair_url


@dataclass(frozen=True)
class CauseView:
    label: str
    url: str = ""


_REVIEW = {CauseKind.REVIEW_APPROVE, CauseKind.REVIEW_REJECT, CauseKind.REVIEW_UNDO}


class CauseViews(dict[str, "CauseView | None"]):
    """cause_view per distinct text, for one page (a history repeats a handful of causes)."""

    def __missing__(self, text: str) -> CauseView | None:
        view = self[text] = cause_view(text)
        return view


def cause_view(text: str) -> CauseView | None:
    """A stored cause in Korean with a link to what it names; a string our code did not write is shown
    as it is (matcher.causes reads only its own strings)."""
    if not text:
        return None
    cause = Cause.read(text)
    if cause is None:
        return CauseView(label=text)
    url = ""
    if cause.kind in _REVIEW and cause.ref is not None:
        url = pair_url(cause.ref)
    elif cause.kind in (CauseKind.REVIEW_BULK_APPROVE, CauseKind.REVIEW_BULK_REJECT):
        url = reverse("review:stats")
    elif cause.kind == CauseKind.MATCH_RUN:
        url = reverse("matcher:runs")
    elif cause.kind == CauseKind.CATALOGUE_IMPORT and cause.ref is not None:
        url = reverse("admin:matcher_importreport_change", args=[cause.ref])
    elif cause.kind == CauseKind.PRODUCT_ADMIN and cause.ref is not None:
        url = reverse("admin:matcher_product_change", args=[cause.ref])
    elif cause.kind == CauseKind.POLICY_CHANGE and cause.ref is not None:
        url = reverse("admin:pricing_policyauditentry_change", args=[cause.ref])
    return CauseView(label=cause.label, url=url)


KIND_LABELS = {
    "observation": "경쟁가 관측",
    PriceChange.Kind.APPLY: "가격 적용",
    PriceChange.Kind.ROLLBACK: "되돌림",
    PriceChange.Kind.IMPORT: "카탈로그 가져오기",
}


@dataclass
class HistoryRow:
    point: selectors.HistoryPoint
    kind_label: str
    cause_text: str  # as stored
    cause: CauseView | None
    run_id: int | None = None
    proposal_id: int | None = None


@dataclass
class ProposalRow:
    proposal: PriceProposal
    cause: CauseView | None


@dataclass
class AuditRow:
    entry: PriceAuditEntry
    cause: CauseView | None


HISTORY_ROWS_SHOWN = 100  # the table; the chart draws every point and the CSV has every row


def telling(points: list[selectors.HistoryPoint]) -> list[selectors.HistoryPoint]:
    """The points that say something: every change, and each observation whose cheapest competitor
    (price or mall) or our price differs from the point before (a re-evaluation that found the same
    is left to the chart and the CSV)."""
    kept: list[selectors.HistoryPoint] = []
    seen: tuple[object, ...] | None = None
    for p in points:
        state = (p.competitor, p.mall, p.our_price)
        if p.is_change or state != seen:
            kept.append(p)
        if not p.is_change:
            seen = state
        else:
            seen = (p.competitor, seen[1] if seen else "", p.our_price)
    return kept


def history_rows(points: list[selectors.HistoryPoint], causes: CauseViews) -> list[HistoryRow]:
    """The newest HISTORY_ROWS_SHOWN telling points, newest first; a change's cause (``cause`` annotated on
    the change, see sku_page) is its proposal's, or its audit row's for a change without one (an import)."""
    rows: list[HistoryRow] = []
    for p in list(reversed(telling(points)))[:HISTORY_ROWS_SHOWN]:
        cause_text = ""
        run_id = proposal_id = None
        if p.change is not None:
            change = p.change
            run_id, proposal_id = change.run_id, change.proposal_id
            cause_text = getattr(change, "cause", "") or ""
        elif p.observation is not None:
            cause_text = p.observation.cause
        rows.append(HistoryRow(point=p, kind_label=KIND_LABELS.get(p.kind, p.kind), cause_text=cause_text,
                               cause=causes[cause_text], run_id=run_id, proposal_id=proposal_id))
    return rows


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def chart_data(
    product: Product,
    points: list[selectors.HistoryPoint],
    proposals: list[PriceProposal],
    floor: int,
    now: datetime,
) -> dict[str, Any]:
    """Series on a true time axis (x: epoch milliseconds), oldest first, each held until its next point
    and carried to ``now``: our price, the cheapest confirmed competitor, the floor (as each proposal
    recorded it, then today's); the changes and the proposals as markers."""
    ours = [{"x": _ms(p.at), "y": p.our_price} for p in points]
    competitor = [{"x": _ms(p.at), "y": p.competitor} for p in points if p.kind == "observation"]
    changes = [
        {"x": _ms(p.at), "y": p.our_price, "kind": KIND_LABELS.get(p.kind, p.kind), "old": p.old_price}
        for p in points if p.is_change
    ]
    oldest_first = sorted(proposals, key=lambda pr: (pr.created_at, pr.pk))
    floors = [{"x": _ms(pr.created_at), "y": pr.floor} for pr in oldest_first if pr.floor]
    marks = [
        {"x": _ms(pr.created_at), "y": pr.new_price, "status": pr.status, "label": pr.get_status_display(),
         "id": pr.pk}
        for pr in oldest_first
    ]
    end = _ms(now)
    ours.append({"x": end, "y": product.price})
    if competitor:
        competitor.append({"x": end, "y": competitor[-1]["y"]})
    if floor:
        if not floors:
            start = min([pt["x"] for pt in ours] + [end])
            floors.append({"x": start, "y": floor})
        floors.append({"x": end, "y": floor})
    return {"ours": ours, "competitor": competitor, "floor": floors, "changes": changes, "proposals": marks}
