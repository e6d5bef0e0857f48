"""What the pair page shows of a decision's evidence, built from `matcher.evidence.EvidenceRecord` only.

Untrusted text (titles, OCR, LLM reasoning) stays plain: highlighted parts are `Segment`s the template
escapes one by one. Figures become short Korean sentences; the English detail stays behind a toggle.
Calibration and QC ask `is_auto_blocked` / `blocked_reasons` (or `auto_blocked_q` in SQL), never the reasons.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils.dateparse import parse_datetime

from matcher.evidence import (
    Blocker,
    BlockerCode,
    ConflictSource,
    EvidenceRecord,
    Gate,
    GateCode,
    ImageBox,
    LlmState,
    auto_blocked_q,
)
from matcher.pipeline.attributes import GROUP_LABELS

__all__ = [
    "BoxView", "EvidenceView", "ImageView", "KeypointOverlay", "Segment", "auto_blocked_q", "blocked_reasons",
    "box_view", "evidence_view", "image_views", "is_auto_blocked", "keypoint_overlay", "record_of",
    "title_segments",
]

_PN_SEPARATOR_CLASS = r"[\s\-._/]?"
_TERM_SEPARATOR_CLASS = r"[\W_]{0,3}"


def record_of(match: Any) -> EvidenceRecord:
    """The record of a Match row (its reasons matter only for a row written before records had versions)."""
    return EvidenceRecord.from_json(match.evidence, reasons=match.reasons or ())


# --- blockers and gates ----------------------------------------------------------------------------


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
    return [line.text for line in _reason_lines(record)]


def _reason_lines(record: EvidenceRecord) -> list[ReasonLine]:
    return [ReasonLine(_blocker_text(b), b.detail) for b in record.auto_blocked] + [
        ReasonLine(_gate_text(g), g.detail) for g in record.gates
    ]


# --- the view ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BoxView:
    """A region as percentages of the image, for an absolutely positioned outline."""

    left: str
    top: str
    width: str
    height: str

    # x/y of the box corner and its size, in 0..1, for the synced zoom (mapping one region onto the other).
    rel: tuple[str, str, str, str] = ("0", "0", "1", "1")


@dataclass
class ImageView:
    url: str
    sha: str
    width: int
    height: int
    ocr_text: str = ""
    box: BoxView | None = None
    pixel_box: list[float] | None = None  # the same region in original pixels


@dataclass(frozen=True)
class Segment:
    text: str
    mark: str = ""  # "" plain, "pn" product number, "conflict" attribute conflict


@dataclass(frozen=True)
class ConflictLine:
    attribute: str  # Korean label
    ours: str
    theirs: str
    from_photo: bool  # read from their photos (OCR), not their title


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
        return _terms(t for c in self.record.conflicts for t in c.ours_terms)

    @property
    def conflict_terms_theirs(self) -> list[str]:
        return _terms(t for c in self.record.conflicts for t in c.theirs_terms)

    @property
    def best_ours(self) -> ImageBox | None:
        return self.record.best_pair.ours if self.record.best_pair else None

    @property
    def best_theirs(self) -> ImageBox | None:
        return self.record.best_pair.theirs if self.record.best_pair else None


def _terms(terms: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(t for t in terms if t.strip()))


def _attribute_label(attribute: str) -> str:
    return GROUP_LABELS.get(attribute, attribute).split("/")[0]


def _llm_view(record: EvidenceRecord) -> LlmView:
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
        blocked=_reason_lines(record),
        # Their photos' text carries their words: the terms found there, and those of their title.
        ocr=title_segments(record.ocr_text, conflict_terms=_terms(t for c in record.conflicts for t in c.theirs_terms))
        if record.ocr_text else [],
        llm=_llm_view(record),
    )


# --- photos, regions, keypoints -------------------------------------------------------------------


def _pct(value: float) -> str:
    return f"{max(0.0, min(100.0, value * 100)):.2f}"


def box_view(box: Sequence[Any], width: int, height: int) -> BoxView | None:
    """Pixel box (x0, y0, x1, y1) in the original image; a box with every value ≤ 1 is taken as relative."""
    if len(box) != 4 or not width or not height:
        return None
    x0, y0, x1, y1 = (float(v) for v in box)
    if max(x0, y0, x1, y1) > 1.0:
        x0, x1, y0, y1 = x0 / width, x1 / width, y0 / height, y1 / height
    x0, x1 = sorted((max(0.0, min(1.0, x0)), max(0.0, min(1.0, x1))))
    y0, y1 = sorted((max(0.0, min(1.0, y0)), max(0.0, min(1.0, y1))))
    if x1 - x0 <= 0 or y1 - y0 <= 0:
        return None
    return BoxView(
        left=_pct(x0),
        top=_pct(y0),
        width=_pct(x1 - x0),
        height=_pct(y1 - y0),
        rel=(f"{x0:.4f}", f"{y0:.4f}", f"{x1 - x0:.4f}", f"{y1 - y0:.4f}"),
    )


def image_views(rows: Iterable[Mapping[str, Any]] | None, best: ImageBox | None) -> list[ImageView]:
    """Images of one side, the one holding the best region first with its box."""
    views: list[ImageView] = []
    for row in rows or []:
        if not row or not row.get("file"):
            continue
        views.append(
            ImageView(
                url=default_storage.url(row["file"]),
                sha=row.get("sha") or "",
                width=int(row.get("w") or 0),
                height=int(row.get("h") or 0),
                ocr_text=(row.get("ocr") or "")[:2000],
            )
        )
    if best:
        for i, view in enumerate(views):
            if view.sha == best.image_sha:
                if best.box:
                    view.box = box_view(best.box, view.width, view.height)
                    view.pixel_box = _pixels(best.box, view.width, view.height) if view.box else None
                views.insert(0, views.pop(i))
                break
    return views


def _pixels(box: Sequence[float], width: int, height: int) -> list[float]:
    if max(box) <= 1.0:  # relative (see box_view)
        return [box[0] * width, box[1] * height, box[2] * width, box[3] * height]
    return list(box)


@dataclass(frozen=True)
class OverlayImage:
    url: str
    x: str
    width: str
    height: str
    box: tuple[str, str, str, str] | None  # x, y, width, height in the drawing's units


@dataclass(frozen=True)
class OverlayLine:
    x1: str
    y1: str
    x2: str
    y2: str
    colour: str


@dataclass(frozen=True)
class KeypointOverlay:
    """Both photos side by side in one SVG drawing, each matched keypoint pair joined by a line."""

    width: str
    height: str
    ours: OverlayImage
    theirs: OverlayImage
    lines: list[OverlayLine]

    @property
    def count(self) -> int:
        return len(self.lines)


_OVERLAY_HEIGHT = 1000.0  # both photos drawn this tall; the SVG scales to the space it has
_OVERLAY_GAP = 40.0


def _n(value: float) -> str:
    return f"{value:.1f}"


def keypoint_overlay(
    record: EvidenceRecord, ours: Sequence[ImageView], theirs: Sequence[ImageView]
) -> KeypointOverlay | None:
    """The record's keypoint matches drawn between the two photos they join (None without both photos)."""
    kp = record.keypoints
    if kp is None or not kp.pairs:
        return None
    a = next((v for v in ours if v.sha == kp.ours_sha and v.width and v.height), None)
    b = next((v for v in theirs if v.sha == kp.theirs_sha and v.width and v.height), None)
    if a is None or b is None:
        return None
    sa, sb = _OVERLAY_HEIGHT / a.height, _OVERLAY_HEIGHT / b.height
    wa, wb = a.width * sa, b.width * sb
    offset = wa + _OVERLAY_GAP

    def image(view: ImageView, x: float, scale: float) -> OverlayImage:
        box = None
        if view.pixel_box:
            x0, y0, x1, y1 = view.pixel_box
            box = (_n(x + x0 * scale), _n(y0 * scale), _n((x1 - x0) * scale), _n((y1 - y0) * scale))
        return OverlayImage(view.url, _n(x), _n(view.width * scale), _n(_OVERLAY_HEIGHT), box)

    lines = [
        OverlayLine(_n(xa * sa), _n(ya * sa), _n(offset + xb * sb), _n(yb * sb), f"hsl({(i * 47) % 360},85%,45%)")
        for i, (xa, ya, xb, yb) in enumerate(kp.pairs)
        if xa <= a.width and ya <= a.height and xb <= b.width and yb <= b.height
    ]
    if not lines:
        return None
    return KeypointOverlay(
        width=_n(offset + wb), height=_n(_OVERLAY_HEIGHT), ours=image(a, 0.0, sa), theirs=image(b, offset, sb),
        lines=lines,
    )


# --- titles and text with highlighted words ------------------------------------------------------


def _term_pattern(term: str, product_number: bool) -> str:
    if product_number:
        chars = [c for c in term if c.isalnum()]
        return _PN_SEPARATOR_CLASS.join(re.escape(c) for c in chars)
    # The pipeline reports a term as the lexicon matched it: normalised, with every separator removed
    # ('패딩 조끼' is the term '패딩조끼'), so the text may hold separators between any two of its letters.
    # A Latin term stands as a word ("men" is not inside "women"), as the lexicon reads it.
    before = r"(?<![A-Za-z0-9])" if term[0].isascii() and term[0].isalnum() else ""
    after = r"(?![A-Za-z0-9])" if term[-1].isascii() and term[-1].isalnum() else ""
    chars = [c for c in term if c.isalnum()] or list(term)
    return before + _TERM_SEPARATOR_CLASS.join(re.escape(c) for c in chars) + after


def title_segments(
    title: str, *, product_numbers: Iterable[str] = (), conflict_terms: Iterable[str] = ()
) -> list[Segment]:
    """Split a (possibly untrusted) text into plain and highlighted parts; the template escapes each part."""
    patterns: list[tuple[str, str]] = []
    for pn in product_numbers:
        if pn and sum(c.isalnum() for c in pn) >= 4:
            patterns.append((_term_pattern(pn, True), "pn"))
    for term in conflict_terms:
        if term and term.strip():
            patterns.append((_term_pattern(term.strip(), False), "conflict"))
    if not patterns or not title:
        return [Segment(title)]
    patterns.sort(key=lambda p: -len(p[0]))
    combined = re.compile("|".join(f"(?P<g{i}>{p})" for i, (p, _) in enumerate(patterns)), re.IGNORECASE)
    out: list[Segment] = []
    pos = 0
    for m in combined.finditer(title):
        if m.start() == m.end():
            continue
        if m.start() > pos:
            out.append(Segment(title[pos : m.start()]))
        kind = patterns[int(m.lastgroup[1:])][1] if m.lastgroup else ""
        out.append(Segment(m.group(0), kind))
        pos = m.end()
    if pos < len(title):
        out.append(Segment(title[pos:]))
    return out
