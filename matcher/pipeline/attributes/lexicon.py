"""The lexicon and what it finds in a title: text normalisation, attribute values, seasons and years.

The lexicon (matcher/data/lexicon.csv, columns group,value,term) maps surface terms to
attribute values. A value of "-" consumes the term without producing a value: it stops a
shorter term from matching inside a longer word ("솜털" is down, not the synthetic "솜";
"베스트셀러" is a best-seller, not a vest). Terms match longest first and each character of
a title is used by at most one term, so "women" never also yields "men" and "맨투맨"
(a sweatshirt) never yields the audience "맨". One term may have several rows: "반팔티" is a
T-shirt and short-sleeved, and the match yields both.
"""
from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_LEXICON_PATH = Path(__file__).resolve().parent.parent.parent / "data" / "lexicon.csv"

Attributes = dict[str, set[str]]
# The words that named each (group, value): lexicon terms as matched (normalised), season and year codes.
AttributeTerms = dict[tuple[str, str], list[str]]

IGNORE_VALUE = "-"

# A listing that names one of these while our SKU does not is not our product as we sell it
# (a used item, a parallel import, the kids' version).
DEFAULT_FLAG_GROUPS: frozenset[str] = frozenset({"condition", "shipping"})
DEFAULT_FLAG_VALUES: frozenset[tuple[str, str]] = frozenset({("audience", "kids")})


def normalise(text: str) -> str:
    """NFKC, case-folded, with every character that is not a letter or a digit removed.

    '구스 다운' and '구스다운' normalise alike, as do 'ＫＩＤＳ' and 'kids'.
    """
    # Removing a separator can leave a letter next to a combining mark that NFKC then composes
    # ('A´' → 'a' + U+0301 → 'á'), so repeat until nothing changes: normalising is idempotent.
    out = text
    for _ in range(5):
        folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", out).casefold())
        step = "".join(ch for ch in folded if _is_word_char(ch))
        if step == out:
            break
        out = step
    return out


def _is_word_char(ch: str) -> bool:
    cat = unicodedata.category(ch)
    return cat[0] in ("L", "N") or cat == "Mn" or cat == "Mc"


def _is_ascii_alnum(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def _compact_with_breaks(text: str) -> tuple[str, frozenset[int]]:
    """The normalised text plus the positions where a separator (space, punctuation) was removed."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    out: list[str] = []
    breaks: set[int] = set()
    for ch in folded:
        if _is_word_char(ch):
            out.append(ch)
        else:
            breaks.add(len(out))
    return "".join(out), frozenset(breaks)


@dataclass(frozen=True)
class LexiconEntry:
    group: str
    value: str
    term: str  # normalised


@dataclass
class Lexicon:
    entries: list[LexiconEntry]
    flag_groups: frozenset[str] = DEFAULT_FLAG_GROUPS
    flag_values: frozenset[tuple[str, str]] = DEFAULT_FLAG_VALUES
    _ordered: list[tuple[str, list[LexiconEntry]]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Longest term first; ties broken deterministically. A term's rows are applied together.
        by_term: dict[str, list[LexiconEntry]] = {}
        for entry in sorted(self.entries, key=lambda e: (-len(e.term), e.term, e.group, e.value)):
            by_term.setdefault(entry.term, []).append(entry)
        self._ordered = list(by_term.items())

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]], **kwargs: Any) -> Lexicon:
        """From rows with str "group", "value" and "term" (CSV rows, or the database's values() dicts,
        whose typed dicts are Mapping[str, object] to mypy); a row missing one is left out."""
        entries = []
        for row in rows:
            group = (row.get("group") or "").strip()
            value = (row.get("value") or "").strip()
            term = normalise(row.get("term") or "")
            if group and value and term:
                entries.append(LexiconEntry(group=group, value=value, term=term))
        return cls(entries=entries, **kwargs)

    @classmethod
    def load(cls, path: str | Path | None = None, **kwargs) -> Lexicon:
        with open(path or DEFAULT_LEXICON_PATH, encoding="utf-8", newline="") as fh:
            return cls.from_rows(csv.DictReader(fh), **kwargs)

    def is_flag(self, group: str, value: str) -> bool:
        return group in self.flag_groups or (group, value) in self.flag_values


_SEASON_RE = re.compile(
    r"(?<![0-9A-Z])(?:(?P<y1>(?:20)?\d{2})\s*(?P<s1>S/?S|F/?W|A/?W|SS|FW|AW)"
    r"|(?P<s2>S/?S|F/?W|A/?W)\s*(?P<y2>(?:20)?\d{2}))(?![0-9A-Z])"
)
_YEAR_RE = re.compile(r"(?<![0-9])(20[1-3]\d)(?![0-9])")


# OCR of a banner reads a season's year with a letter for a digit ("24FW" as "2AFW"); text read
# from photos gets those letters back as digits, when the other character is a digit and a season
# follows at once.
_OCR_YEAR_RE = re.compile(r"(?<![0-9A-Z])(?=[0-9OILSZBA]{2}\s*(?:S/?S|F/?W|A/?W)(?![0-9A-Z]))(?=.?[0-9])([0-9OILSZBA]{2})")
_OCR_DIGITS = str.maketrans("OILSZBA", "0115284")


def _seasons(text: str, *, ocr: bool = False) -> tuple[set[str], set[str], AttributeTerms]:
    """(seasons, years, the codes that named each) in the text."""
    upper = unicodedata.normalize("NFKC", text).upper()
    if ocr:
        upper = _OCR_YEAR_RE.sub(lambda m: m.group(1).translate(_OCR_DIGITS), upper)
    seasons: set[str] = set()
    years: set[str] = set()
    terms: AttributeTerms = {}
    for m in _SEASON_RE.finditer(upper):
        y = m.group("y1") or m.group("y2")
        s = (m.group("s1") or m.group("s2")).replace("/", "")
        s = "FW" if s in ("FW", "AW") else "SS"
        year = y if len(y) == 4 else "20" + y
        seasons.add(f"{year}{s}")
        years.add(year)
        _add_term(terms, ("season", f"{year}{s}"), m.group(0))
        _add_term(terms, ("year", year), m.group(0))
    for m in _YEAR_RE.finditer(upper):
        years.add(m.group(1))
        _add_term(terms, ("year", m.group(1)), m.group(1))
    return seasons, years, terms


def _add_term(terms: AttributeTerms, key: tuple[str, str], term: str) -> None:
    found = terms.setdefault(key, [])
    if term not in found:
        found.append(term)


def extract(text: str, lexicon: Lexicon, *, ocr: bool = False) -> Attributes:
    """Attribute values named in a title: {group: {value, ...}}. Groups without a value are absent.

    ocr: the text was read from photos; a season's year may have a look-alike letter for a digit."""
    return extract_with_terms(text, lexicon, ocr=ocr)[0]


def extract_with_terms(text: str, lexicon: Lexicon, *, ocr: bool = False) -> tuple[Attributes, AttributeTerms]:
    """extract(), plus the words that named each value (see AttributeTerms)."""
    compact, breaks = _compact_with_breaks(text or "")
    used = [False] * len(compact)
    found: Attributes = {}
    terms: AttributeTerms = {}
    for term, entries in lexicon._ordered:
        ascii_term = all(_is_ascii_alnum(c) for c in term)
        start = compact.find(term)
        while start != -1:
            end = start + len(term)
            if not any(used[start:end]) and (not ascii_term or _ascii_bounded(compact, breaks, start, end)):
                for i in range(start, end):
                    used[i] = True
                for entry in entries:
                    if entry.value != IGNORE_VALUE:
                        found.setdefault(entry.group, set()).add(entry.value)
                        _add_term(terms, (entry.group, entry.value), term)
            start = compact.find(term, start + 1)
    seasons, years, codes = _seasons(text or "", ocr=ocr)
    if seasons:
        found["season"] = seasons
        terms = {k: v for k, v in terms.items() if k[0] != "season"}
    if years:
        found["year"] = years
        terms = {k: v for k, v in terms.items() if k[0] != "year"}
    terms.update({k: v for k, v in codes.items() if (k[0] == "season" and seasons) or (k[0] == "year" and years)})
    return found, terms


def _ascii_bounded(compact: str, breaks: frozenset[int], start: int, end: int) -> bool:
    # Latin terms must stand as words: "men" inside "women" or "jr" inside "NJ1JR55" is not a term.
    left_ok = start == 0 or start in breaks or not _is_ascii_alnum(compact[start - 1])
    right_ok = end == len(compact) or end in breaks or not _is_ascii_alnum(compact[end])
    return left_ok and right_ok

