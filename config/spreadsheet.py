"""CSV cells a spreadsheet will not run: the one helper every CSV export writes its cells through.

Excel, LibreOffice and Google Sheets run a cell that starts with = + - @ (or a tab / carriage return
before one) as a formula. SKUs, product numbers, malls and reasons can carry text a competitor or an
import wrote, so a text cell starting with one of those is prefixed with an apostrophe, which the
spreadsheet shows as plain text. Numbers stay numbers (a negative price move is not a formula).
"""
from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any, Protocol

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def formula_safe(value: Any) -> Any:
    """The cell to write for `value`: None → "", numbers as they are, text neutralised."""
    if value is None:
        return ""
    if isinstance(value, bool | int | float):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class _Writable(Protocol):
    def write(self, s: str, /) -> Any: ...


class SafeWriter:
    """csv.writer whose every cell goes through `formula_safe`."""

    def __init__(self, out: _Writable, **kwargs: Any) -> None:
        self._writer = csv.writer(out, **kwargs)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([formula_safe(v) for v in row])
