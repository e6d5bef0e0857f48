"""Match.evidence → what the review page shows. Tolerant: every key may be absent or malformed.

The keys read here are documented in review/README-evidence.md; the matcher writes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable, Mapping, Sequence

from django.conf import settings
from django.core.files.storage import default_storage

_PN_SEPARATOR_CLASS = r"[\s\-._/]?"


@dataclass(frozen=True)
class BoxView:
    """A region as percentages of the image, for an absolutely positioned outline."""

    left: str
    top: str
    width: str
    height: str

    # x/y of the box centre and size, in 0..1, for the synced zoom (mapping one region onto the other).
    rel: tuple[str, str, str, str] = ("0", "0", "1", "1")


@dataclass
class ImageView:
    url: str
    sha: str
    width: int
    height: int
    ocr_text: str = ""
    box: BoxView | None = None


@dataclass
class LlmView:
    is_match: bool | None
    confidence: float | None
    reasoning: str
    model: str
    cost_usd: Decimal | None
    cost_krw: int | None
    error: str
    matched_features: list[str]
    mismatched_features: list[str]
    prompt_version: str


@dataclass
class EvidenceView:
    cosine: float | None = None
    cosine_regions: str = ""
    inliers: int | None = None
    inlier_colour_agreement: float | None = None
    colour_distance: float | None = None
    product_number: str = ""  # match / mismatch / absent / "" when the matcher said nothing
    conflicts: list[str] = field(default_factory=list)
    conflict_terms_ours: list[str] = field(default_factory=list)
    conflict_terms_theirs: list[str] = field(default_factory=list)
    ocr_ours: str = ""
    ocr_theirs: str = ""
    llm: LlmView | None = None
    best_ours: tuple[str, list[Any]] | None = None  # (image sha, box)
    best_theirs: tuple[str, list[Any]] | None = None

    @property
    def empty(self) -> bool:
        return (
            self.cosine is None and self.inliers is None and self.colour_distance is None and self.llm is None
        )


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    f = _float(value)
    return None if f is None else int(f)


def _strings(value: Any, limit: int = 20) -> list[str]:
    if isinstance(value, str):
        return [value[:300]] if value else []
    if not isinstance(value, (list, tuple)):
        return []
    return [str(v)[:300] for v in value[:limit] if v not in (None, "")]


def _best(value: Any) -> tuple[str, list[Any]] | None:
    if not isinstance(value, Mapping):
        return None
    sha = value.get("image_sha") or value.get("sha256") or ""
    box = value.get("box")
    if not isinstance(sha, str) or not sha:
        return None
    if not (isinstance(box, (list, tuple)) and len(box) == 4 and all(_float(v) is not None for v in box)):
        box = []
    return sha, list(box)


def _llm(value: Any) -> LlmView | None:
    if not isinstance(value, Mapping):
        return None
    cost: Decimal | None
    try:
        raw_cost = value.get("cost_usd")
        cost = Decimal(str(raw_cost)) if raw_cost not in (None, "") else None
    except (InvalidOperation, ValueError):
        cost = None
    is_match = value.get("is_match")
    if is_match is None and isinstance(value.get("verdict"), str):
        is_match = {"same": True, "match": True, "different": False, "no_match": False}.get(value["verdict"])
    return LlmView(
        is_match=is_match if isinstance(is_match, bool) else None,
        confidence=_float(value.get("confidence")),
        reasoning=str(value.get("reasoning") or "")[:4000],
        model=str(value.get("model") or "")[:80],
        cost_usd=cost,
        cost_krw=int((cost * settings.USD_TO_KRW).to_integral_value()) if cost is not None else None,
        error=str(value.get("error") or "")[:500],
        matched_features=_strings(value.get("matched_features")),
        mismatched_features=_strings(value.get("mismatched_features")),
        prompt_version=str(value.get("prompt_version") or "")[:40],
    )


def evidence_view(evidence: Any) -> EvidenceView:
    ev = evidence if isinstance(evidence, Mapping) else {}
    view = EvidenceView(
        cosine=_float(ev.get("cosine")),
        inliers=_int(ev.get("inliers", ev.get("keypoint_inliers"))),
        inlier_colour_agreement=_float(ev.get("inlier_colour_agreement")),
        colour_distance=_float(ev.get("colour_distance")),
        conflicts=_strings(ev.get("conflicts")),
        llm=_llm(ev.get("llm")),
    )
    regions = ev.get("cosine_regions")
    if isinstance(regions, (list, tuple)) and len(regions) == 2:
        view.cosine_regions = f"{regions[0]} ↔ {regions[1]}"
    pn = ev.get("product_number")
    view.product_number = pn if pn in ("match", "mismatch", "absent") else ""
    terms = ev.get("conflict_terms")
    if isinstance(terms, Mapping):
        view.conflict_terms_ours = _strings(terms.get("ours"))
        view.conflict_terms_theirs = _strings(terms.get("theirs"))
    ocr = ev.get("ocr")
    if isinstance(ocr, Mapping):
        view.ocr_ours = str(ocr.get("ours") or "")[:2000]
        view.ocr_theirs = str(ocr.get("theirs") or "")[:2000]
    elif isinstance(ocr, str):
        view.ocr_theirs = ocr[:2000]
    best = ev.get("best_pair")
    if isinstance(best, Mapping):
        view.best_ours = _best(best.get("ours"))
        view.best_theirs = _best(best.get("theirs"))
    return view


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


def image_views(
    rows: Iterable[Mapping[str, Any]] | None, best: tuple[str, list[Any]] | None
) -> list[ImageView]:
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
        sha, box = best
        for i, view in enumerate(views):
            if view.sha == sha:
                view.box = box_view(box, view.width, view.height) if box else None
                views.insert(0, views.pop(i))
                break
    return views


@dataclass(frozen=True)
class Segment:
    text: str
    mark: str = ""  # "" plain, "pn" product number, "conflict" attribute conflict


def _term_pattern(term: str, product_number: bool) -> str:
    if product_number:
        chars = [c for c in term if c.isalnum()]
        return _PN_SEPARATOR_CLASS.join(re.escape(c) for c in chars)
    return re.escape(term)


def title_segments(
    title: str, *, product_numbers: Iterable[str] = (), conflict_terms: Iterable[str] = ()
) -> list[Segment]:
    """Split a (possibly untrusted) title into plain and highlighted parts; the template escapes each part."""
    patterns: list[tuple[str, str]] = []
    for pn in product_numbers:
        if pn and sum(c.isalnum() for c in pn) >= 4:
            patterns.append((_term_pattern(pn, True), "pn"))
    for term in conflict_terms:
        if term and len(term.strip()) >= 1:
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
