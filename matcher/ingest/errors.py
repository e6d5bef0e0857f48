"""Why a row or a whole file cannot be imported; the reasons are shown to the merchandiser as they are."""
from __future__ import annotations

from collections.abc import Sequence

__all__ = ["FileFormatError", "RowError"]


class RowError(Exception):
    """A row that cannot be imported; `reasons` are shown to the merchandiser as they are."""

    def __init__(self, reasons: str | Sequence[str]) -> None:
        self.reasons = [reasons] if isinstance(reasons, str) else list(reasons)
        super().__init__("; ".join(self.reasons))


class FileFormatError(Exception):
    """The whole file is unusable (encoding, missing columns, unknown extension)."""
