"""Reading a CSV or JSON Lines file into rows with their line numbers: extension, encoding, header."""
from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from matcher.ingest.errors import FileFormatError

__all__ = ["FileKind", "SourceRow", "file_format", "read_rows", "read_rows_data"]

FileKind = Literal["csv", "jsonl"]


@dataclass
class SourceRow:
    """A row as read from the file: its first physical line, and either values or why it is unreadable."""

    line: int
    values: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def file_format(path: Path | str) -> FileKind:
    """The format a file name says (`path` may be a bare upload name; only its extension counts)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    raise FileFormatError(f"지원하지 않는 파일 형식입니다: {path.name} (use .csv, .jsonl or .ndjson)")


def _decode(data: bytes, *, name: str) -> str:
    try:
        # utf-8-sig drops the byte-order mark Excel writes in front of "CSV UTF-8" files.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise FileFormatError(
            f"{name}: UTF-8이 아닙니다 ({line}행). Excel에서는 'CSV UTF-8'로 저장하세요 "
            "(not UTF-8; CP949/EUC-KR files must be re-saved as UTF-8)"
        ) from None


def _header(names: Sequence[str], *, required: Sequence[str]) -> list[str]:
    header = [unicodedata.normalize("NFC", name).strip().lower() for name in names]
    missing = [name for name in required if name not in header]
    if missing:
        raise FileFormatError(f"필수 열이 없습니다 (missing columns): {', '.join(missing)}")
    return header


def read_rows(path: Path, *, required: Sequence[str]) -> list[SourceRow]:
    """Rows of a CSV or JSON Lines file with their line numbers; unreadable rows come back with `error` set.

    Raises FileFormatError when the file as a whole cannot be read (encoding, header). The rows are
    read up front: a 50,000-SKU catalogue is a few megabytes, and the progress bar needs the count.
    """
    return read_rows_data(Path(path).read_bytes(), name=Path(path).name, required=required)


def read_rows_data(data: bytes, *, name: str, required: Sequence[str]) -> list[SourceRow]:
    """`read_rows` for bytes already in hand (a browser upload); `name` gives the format and the messages."""
    kind = file_format(name)
    text = _decode(data, name=Path(name).name)
    if kind == "csv":
        return list(_csv_rows(text, required=required))
    return list(_jsonl_rows(text))


def _csv_rows(text: str, *, required: Sequence[str]) -> Iterator[SourceRow]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        first = next(reader)
    except StopIteration:
        raise FileFormatError("빈 파일입니다 (empty file)") from None
    except csv.Error as exc:
        raise FileFormatError(f"CSV 헤더를 읽을 수 없습니다 (unreadable header: {exc})") from None
    header = _header(first, required=required)
    consumed = reader.line_num
    while True:
        start = consumed + 1  # a quoted field may span lines; report where the record starts
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            consumed = reader.line_num
            yield SourceRow(line=start, error=f"CSV 형식 오류 (malformed CSV: {exc})")
            continue
        consumed = reader.line_num
        if not values or all(not v.strip() for v in values):
            continue
        if len(values) > len(header):
            yield SourceRow(
                line=start,
                error=f"열이 헤더보다 많습니다 ({len(values)} > {len(header)}); 쉼표가 든 값은 따옴표로 감싸세요",
            )
            continue
        yield SourceRow(line=start, values=dict(zip(header, values)))


def _jsonl_rows(text: str) -> Iterator[SourceRow]:
    # Missing fields are per-row errors here: each line carries its own keys.
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            # Decimal for floats: a price written 129000.0 is refused by parse_krw, never rounded.
            values = json.loads(line, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            yield SourceRow(line=number, error=f"JSON 형식 오류 (invalid JSON: {exc.msg}, column {exc.colno})")
            continue
        if not isinstance(values, dict):
            yield SourceRow(line=number, error="한 줄에 JSON 객체 하나여야 합니다 (each line must be one object)")
            continue
        yield SourceRow(line=number, values={str(k).strip().lower(): v for k, v in values.items()})
