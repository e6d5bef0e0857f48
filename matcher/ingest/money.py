"""Amounts of won as merchandisers and scrapers write them: '129,000', '129000원', '₩129,000', 'KRW 129000'."""
from __future__ import annotations

import re
import unicodedata
from typing import Any

from matcher.ingest.errors import RowError

__all__ = ["MAX_KRW", "parse_krw"]

# PositiveIntegerField's upper bound; a price above it is a typo, not a jacket.
MAX_KRW = 2_147_483_647

_KRW_GROUPED = re.compile(r"\d{1,3}(?:,\d{3})+")
_KRW_PLAIN = re.compile(r"\d+")


def parse_krw(value: Any, *, name: str, required: bool = True) -> int | None:
    """An integer amount of won from '129,000', '129000원', '₩129,000', 'KRW 129000' or a JSON integer.

    Decimals, negatives and anything else are refused: a price we misread becomes a price we set.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise RowError(f"{name}: 값이 없습니다 (required)")
        return None
    if isinstance(value, bool):
        raise RowError(f"{name}: 숫자가 아닙니다 (not a number: {value!r})")
    if isinstance(value, int):
        amount = value
    elif isinstance(value, str):
        text = unicodedata.normalize("NFKC", value).strip()  # full-width digits and ￦ → ASCII / ₩
        text = re.sub(r"^(?:₩|KRW)\s*", "", text, flags=re.IGNORECASE)
        text = re.sub(r"\s*(?:원|KRW)$", "", text, flags=re.IGNORECASE)
        if text.startswith("-"):
            raise RowError(f"{name}: 음수는 안 됩니다 (negative: {value!r})")
        if "." in text:
            raise RowError(f"{name}: 소수는 안 됩니다, 원 단위 정수만 (decimal not allowed: {value!r})")
        if not (_KRW_PLAIN.fullmatch(text) or _KRW_GROUPED.fullmatch(text)):
            raise RowError(f"{name}: 금액 형식이 아닙니다 (not a KRW amount: {value!r})")
        amount = int(text.replace(",", ""))
    else:
        # JSON floats included: 129000.0 and 129000.5 are both refused, not rounded.
        raise RowError(f"{name}: 원 단위 정수만 (integer KRW only: {value!r})")
    if amount < 0:
        raise RowError(f"{name}: 음수는 안 됩니다 (negative: {value!r})")
    if amount > MAX_KRW:
        raise RowError(f"{name}: 금액이 너무 큽니다 (too large: {value!r})")
    return amount
