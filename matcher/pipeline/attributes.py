"""Title attributes: text normalisation, the lexicon, conflicts and product numbers (품번).

Plain Python, no Django. Titles are untrusted text; nothing here evaluates or renders them.

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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from matcher.pipeline.types import RegionKind

DEFAULT_LEXICON_PATH = Path(__file__).resolve().parent.parent / "data" / "lexicon.csv"

Attributes = dict[str, set[str]]
# The words that named each (group, value): lexicon terms as matched (normalised), season and year codes.
AttributeTerms = dict[tuple[str, str], list[str]]
ProductNumberOutcome = Literal["match", "mismatch", "absent"]

IGNORE_VALUE = "-"

# A listing that names one of these while our SKU does not is not our product as we sell it
# (a used item, a parallel import, the kids' version).
DEFAULT_FLAG_GROUPS: frozenset[str] = frozenset({"condition", "shipping"})
DEFAULT_FLAG_VALUES: frozenset[tuple[str, str]] = frozenset({("audience", "kids")})

GROUP_LABELS: dict[str, str] = {
    "material": "소재/material",
    "audience": "대상/audience",
    "garment": "품목/garment",
    "lining": "안감/lining",
    "condition": "상태/condition",
    "shipping": "배송/shipping",
    "colour": "색상/colour",
    "season": "시즌/season",
    "year": "연도/year",
    "sleeve": "소매/sleeve",
}

# Garment values that are kinds of a broader one. A title naming only the broad value ("top",
# "상의") agrees with any of its kinds; a T-shirt and a sweatshirt are different garments even
# though both are tops (the same print on both is a common copy: see the lexicon's garment rows).
GARMENT_FAMILY: dict[str, str] = {
    kind: "top" for kind in ("tshirt", "sweatshirt", "hoodie", "knit", "cardigan", "shirt", "sleeveless")
}

GARMENT_REGION: dict[str, RegionKind] = {
    "top": "upper",
    **{kind: "upper" for kind in GARMENT_FAMILY},
    "jacket": "upper",
    "vest": "upper",
    "bottom": "lower",
    "dress": "outfit",
}


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


@dataclass(frozen=True)
class Conflict:
    """One conflict: its reason for people, the group, and the values each side names that make it."""

    reason: str
    group: str
    ours: frozenset[str]
    theirs: frozenset[str]


def conflicts(ours: Attributes, theirs: Attributes, lexicon: Lexicon | None = None) -> list[str]:
    """Human-readable reasons why the listing cannot be our SKU as titled (see find_conflicts)."""
    return [c.reason for c in find_conflicts(ours, theirs, lexicon)]


def find_conflicts(ours: Attributes, theirs: Attributes, lexicon: Lexicon | None = None) -> list[Conflict]:
    """Why the listing cannot be our SKU as titled.

    A conflict is a group both sides name with no value in common, or a flag (condition,
    shipping, kids) the listing names and our SKU does not (then `theirs` is the flag alone).
    """
    flag_groups = lexicon.flag_groups if lexicon else DEFAULT_FLAG_GROUPS
    flag_values = lexicon.flag_values if lexicon else DEFAULT_FLAG_VALUES
    found: list[Conflict] = []
    reasons: list[str] = []
    for group in sorted(set(ours) & set(theirs)):
        a, b = ours[group], theirs[group]
        if a and b and not _agree(group, a, b):
            reasons.append(f"{GROUP_LABELS.get(group, group)}: ours {_fmt(a)} vs listing {_fmt(b)}")
            found.append(Conflict(reasons[-1], group, frozenset(a), frozenset(b)))
    for group in sorted(theirs):
        for value in sorted(theirs[group]):
            is_flag = group in flag_groups or (group, value) in flag_values
            if is_flag and value not in ours.get(group, set()) and not _already(reasons, group):
                reasons.append(f"{GROUP_LABELS.get(group, group)}: listing only — {value} (목록에만 표기)")
                found.append(Conflict(reasons[-1], group, frozenset(ours.get(group, set())), frozenset({value})))
    return found


def _agree(group: str, a: set[str], b: set[str]) -> bool:
    if group != "garment":
        return bool(a & b)
    # "top" beside "tshirt" in one title says nothing more; alone it agrees with every kind of top.
    a, b = _narrowest(a), _narrowest(b)
    return bool(a & b) or any(GARMENT_FAMILY.get(x) == y or GARMENT_FAMILY.get(y) == x for x in a for y in b)


def _narrowest(values: set[str]) -> set[str]:
    broader = {GARMENT_FAMILY[v] for v in values if v in GARMENT_FAMILY}
    return values - broader


def _already(reasons: list[str], group: str) -> bool:
    prefix = GROUP_LABELS.get(group, group) + ":"
    return any(r.startswith(prefix) for r in reasons)


def _fmt(values: set[str]) -> str:
    return "/".join(sorted(values))


def garment_region_kind(attrs: Attributes) -> RegionKind | None:
    """Where on a person the SKU's garment sits, from its title: 'upper', 'lower', 'outfit' or None."""
    kinds = {GARMENT_REGION[v] for v in attrs.get("garment", set()) if v in GARMENT_REGION}
    return kinds.pop() if len(kinds) == 1 else None


# --- product numbers (품번) -------------------------------------------------------------

_PN_SEPARATORS = re.compile(r"[\s\-_.·/]+")
_PN_TOKEN = re.compile(r"[A-Z0-9]+(?:[\-_.][A-Z0-9]+)*")
_COLOUR_SUFFIXES: dict[str, str] = {
    "BLK": "black", "BK": "black", "BLACK": "black",
    "WHT": "white", "WH": "white", "WHITE": "white",
    "NVY": "navy", "NV": "navy", "NAVY": "navy",
    "GRY": "grey", "GREY": "grey", "GRAY": "grey", "GY": "grey",
    "BEG": "beige", "BGE": "beige", "BEIGE": "beige",
    "IVR": "ivory", "IVORY": "ivory", "IV": "ivory",
    "KHK": "khaki", "KHAKI": "khaki", "KH": "khaki",
    "RED": "red", "RD": "red",
    "BLU": "blue", "BLUE": "blue", "BL": "blue",
    "GRN": "green", "GREEN": "green", "GN": "green",
    "BRN": "brown", "BROWN": "brown", "BR": "brown",
    "PNK": "pink", "PINK": "pink", "PK": "pink",
    "CHA": "charcoal", "CHARCOAL": "charcoal", "CC": "charcoal",
}
# Tokens that look like codes but are specs or sizes: 800FP, 90CM, 2XL, 23FW, 100L, 1.5KG.
_NOT_A_PRODUCT_NUMBER = re.compile(
    r"^(?:\d+(?:FP|CM|MM|ML|KG|G|L|XL|XXL|XS|S|M|P|EA|D|GSM|HZ|W|V)|\d*X{0,3}L|(?:20)?\d{2}(?:SS|FW|AW)|(?:SS|FW|AW)(?:20)?\d{2})$"
)
PRODUCT_NUMBER_MIN_LENGTH = 5
# A suffix of up to this many characters on one side only (a colour or size letter) still matches.
PRODUCT_NUMBER_SUFFIX_TOLERANCE = 3


@dataclass(frozen=True)
class ProductNumber:
    code: str  # upper-case, no separators, colour suffix removed
    colour: str | None = None  # canonical colour of a recognised suffix ("-BLK" -> "black")


def normalise_product_number(raw: str) -> str:
    """Upper-case without spaces, hyphens, dots, underscores or slashes: 'nj1-dn.55a' -> 'NJ1DN55A'."""
    return _PN_SEPARATORS.sub("", unicodedata.normalize("NFKC", raw).upper())


def parse_product_number(raw: str) -> ProductNumber | None:
    """One product number as typed in our catalogue, tolerating a colour suffix ('NJ1DN55A-BLK')."""
    upper = unicodedata.normalize("NFKC", raw).upper().strip()
    segments = [s for s in _PN_SEPARATORS.split(upper) if s]
    if not segments:
        return None
    colour = None
    if len(segments) > 1 and segments[-1] in _COLOUR_SUFFIXES:
        colour = _COLOUR_SUFFIXES[segments[-1]]
        segments = segments[:-1]
    code = "".join(segments)
    return ProductNumber(code=code, colour=colour) if code else None


def _looks_like_product_number(code: str) -> bool:
    if len(code) < PRODUCT_NUMBER_MIN_LENGTH or not code.isascii():
        return False
    letters = sum(c.isalpha() for c in code)
    digits = sum(c.isdigit() for c in code)
    return letters >= 1 and digits >= 2 and not _NOT_A_PRODUCT_NUMBER.match(code)


def extract_product_numbers(title: str) -> list[ProductNumber]:
    """Codes in a title that look like product numbers: letters and digits, at least five long."""
    upper = unicodedata.normalize("NFKC", title or "").upper()
    found: list[ProductNumber] = []
    seen: set[ProductNumber] = set()
    for m in _PN_TOKEN.finditer(upper):
        # Korean titles often glue a code to Hangul ("노스페이스NJ1DN55A"): the token pattern
        # already stops at the first non-ASCII character, so no word-boundary check here.
        pn = parse_product_number(m.group(0))
        if pn and _looks_like_product_number(pn.code) and pn not in seen:
            seen.add(pn)
            found.append(pn)
    return found


def _codes_equivalent(a: str, b: str) -> bool:
    if a == b:
        return True
    short, long_ = sorted((a, b), key=len)
    return (
        len(short) >= PRODUCT_NUMBER_MIN_LENGTH
        and long_.startswith(short)
        and len(long_) - len(short) <= PRODUCT_NUMBER_SUFFIX_TOLERANCE
    )


# Characters OCR confuses with each other, folded to one form when comparing OCR text.
_OCR_FOLD = str.maketrans({"O": "0", "Q": "0", "D": "0", "I": "1", "L": "1", "T": "1", "S": "5", "B": "8", "Z": "2", "G": "6"})


def ocr_fold(code: str) -> str:
    """A product number with OCR look-alikes folded together ('NJIDN55A' ≈ 'NJ1DN55A')."""
    return code.translate(_OCR_FOLD)


def compare_product_numbers(
    ours: Sequence[ProductNumber], theirs: Sequence[ProductNumber], *, ocr_tolerant: bool = False
) -> ProductNumberOutcome:
    """'match' when a code agrees (colour suffixes, when both have one, must agree too);
    'mismatch' when the listing shows a code of comparable length and none agrees;
    'absent' when either side has none. ocr_tolerant folds look-alike characters (for
    numbers read from photos)."""
    if not ours or not theirs:
        return "absent"
    fold = ocr_fold if ocr_tolerant else (lambda c: c)
    comparable = False
    for a in ours:
        for b in theirs:
            if _codes_equivalent(fold(a.code), fold(b.code)):
                if a.colour and b.colour and a.colour != b.colour:
                    comparable = True  # same model, another colourway: exactly not our product
                    continue
                return "match"
            if abs(len(a.code) - len(b.code)) <= PRODUCT_NUMBER_SUFFIX_TOLERANCE:
                comparable = True
    return "mismatch" if comparable else "absent"
