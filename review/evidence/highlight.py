"""Titles and photo text split into plain and highlighted parts: product numbers and conflicting terms.

Untrusted text (titles, OCR) stays plain: highlighted parts are `Segment`s the template escapes one by one.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Segment", "distinct_terms", "title_segments"]

_PN_SEPARATOR_CLASS = r"[\s\-._/]?"
_TERM_SEPARATOR_CLASS = r"[\W_]{0,3}"


@dataclass(frozen=True)
class Segment:
    text: str
    mark: str = ""  # "" plain, "pn" product number, "conflict" attribute conflict


def distinct_terms(terms: Iterable[str]) -> list[str]:
    """The non-blank terms, each once, in their first order."""
    return list(dict.fromkeys(t for t in terms if t.strip()))


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
