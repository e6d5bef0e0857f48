"""Changed prices for the shop's upload automation: parsing "since", and CSV/JSON rendering.

Used by ``manage.py export_prices`` and the token-authenticated JSON endpoint (pricing/api.py).
"""
from __future__ import annotations

import io
import json
import re
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from config.spreadsheet import SafeWriter

FIELDS = ["sku", "product_number", "previous_price", "price", "changed_at", "change_ids"]
DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """"24h", "30m", "7d" (ago) or an ISO date/datetime (local time zone when it has none).

    Raises ValueError with a message fit for a user.
    """
    now = now or timezone.now()
    text = (text or "").strip()
    match = DURATION.match(text)
    if match:
        amount, unit = int(match.group(1)), match.group(2).lower()
        try:
            return now - timedelta(**{UNITS[unit]: amount})
        except OverflowError:  # "99999999999d": further back than any date
            raise ValueError(f"since 기간이 너무 깁니다: {text!r} (예: 24h, 7d)") from None
    try:
        moment = parse_datetime(text)
    except ValueError:
        moment = None
    if moment is None:
        day = parse_date(text) if text else None
        if day is None:
            raise ValueError(f"since 형식 오류: {text!r} (예: 24h, 7d, 2025-06-01T09:00:00+09:00)")
        moment = datetime(day.year, day.month, day.day)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def to_csv(rows: list[dict[str, object]]) -> str:
    out = io.StringIO()
    writer = SafeWriter(out, lineterminator="\n")
    writer.writerow(FIELDS)
    for row in rows:
        writer.writerow(
            [" ".join(str(i) for i in v) if isinstance(v, list) else v for v in (row[f] for f in FIELDS)]
        )
    return out.getvalue()


def to_json(rows: list[dict[str, object]], since: datetime) -> str:
    return json.dumps({"since": since.isoformat(), "count": len(rows), "prices": rows}, ensure_ascii=False, indent=2)
