"""Product numbers (품번): parsed from our catalogue and from titles, and compared (OCR-tolerant on request)."""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

ProductNumberOutcome = Literal["match", "mismatch", "absent"]

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
