"""One field of a row: text with its length limit, money, a flag, attributes JSON, an http(s) URL, a time.

Each takes the raw CSV text or JSON value. The `*_field` readers append their reasons to the row's
error list so a row reports every problem at once; the others raise RowError.
"""
from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import Any
from urllib.parse import urlsplit

from matcher.ingest.errors import RowError
from matcher.ingest.money import parse_krw

__all__ = ["MAX_LEN", "attributes", "flag", "http_url", "money_field", "seen_at", "text_field"]

# Lengths of the model fields, so a row fails with a reason instead of a database error.
MAX_LEN = {
    "sku": 64, "product_number": 64, "brand": 120, "title": 500, "category": 120, "colour": 60,
    "mall": 60, "seller": 120, "url": 2000, "image": 2000,
}


def text_field(row: Mapping[str, Any], key: str, errors: list[str], *, required: bool = False) -> str:
    value = row.get(key)
    if value is None:
        value = ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)  # a JSON product number like 12345
    if not isinstance(value, str):
        errors.append(f"{key}: 문자열이어야 합니다 (expected text)")
        return ""
    value = unicodedata.normalize("NFC", value).strip()
    if required and not value:
        errors.append(f"{key}: 값이 없습니다 (required)")
    limit = MAX_LEN.get(key)
    if limit and len(value) > limit:
        errors.append(f"{key}: {limit}자를 넘습니다 (longer than {limit} characters)")
    return value


def money_field(row: Mapping[str, Any], key: str, errors: list[str], *, required: bool) -> int | None:
    try:
        return parse_krw(row.get(key), name=key, required=required)
    except RowError as exc:
        errors.extend(exc.reasons)
        return None


def flag(value: Any, *, name: str, default: bool) -> bool:
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        folded = value.strip().lower()
        if folded in ("1", "true"):
            return True
        if folded in ("0", "false"):
            return False
    raise RowError(f"{name}: 1/0/true/false 중 하나여야 합니다 (got {value!r})")


def attributes(value: Any) -> dict[str, Any]:
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise RowError(f"attributes: JSON이 아닙니다 (invalid JSON: {exc.msg})") from None
    if not isinstance(value, dict):
        raise RowError("attributes: JSON 객체여야 합니다 (expected a JSON object like {\"소재\": \"구스다운\"})")
    return value


def http_url(value: str, *, name: str) -> str:
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise RowError(f"{name}: http(s) URL이어야 합니다 (not an http(s) URL: {value[:200]!r})")
    return value


def seen_at(value: Any, *, now: datetime, default_tz: tzinfo) -> datetime:
    if value is None or (isinstance(value, str) and not value.strip()):
        return now
    if not isinstance(value, str):
        raise RowError("seen_at: ISO 8601 문자열이어야 합니다 (expected ISO 8601 text)")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise RowError(f"seen_at: ISO 8601 형식이 아닙니다 (not ISO 8601: {value[:40]!r})") from None
    if parsed.tzinfo is None:
        # A scraper's local time: the shop's time zone, not UTC.
        parsed = parsed.replace(tzinfo=default_tz)
    return parsed
