"""Which failed calls are worth another attempt, and how long the provider asked us to wait."""
from __future__ import annotations

import email.utils
import time
from typing import Any

from google.genai import errors as genai_errors

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class _GiveUp(Exception):
    pass


def _http_modules() -> list[Any]:
    # The SDK talks through httpx or its fork httpx2, whichever is installed; their errors share no class.
    mods = []
    for name in ("httpx2", "httpx"):
        try:
            mods.append(__import__(name))
        except ImportError:
            pass
    return mods


def _is_timeout(e: BaseException) -> bool:
    return isinstance(e, TimeoutError) or any(isinstance(e, m.TimeoutException) for m in _http_modules())


def _is_transient(e: BaseException) -> bool:
    return (
        _is_timeout(e)
        or isinstance(e, ConnectionError)
        or any(isinstance(e, m.TransportError) for m in _http_modules())
    )


def _duration_s(text: str) -> float | None:
    """google.protobuf.Duration JSON ("2s", "1.500s") as seconds."""
    text = (text or "").strip()
    if not text.endswith("s"):
        return None
    try:
        return max(0.0, float(text[:-1]))
    except ValueError:
        return None


def retry_hint_s(e: genai_errors.APIError) -> float | None:
    """The provider's requested wait: RetryInfo.retryDelay in the error details, else a Retry-After header."""
    details = e.details if isinstance(e.details, dict) else {}
    error = details.get("error", details) if isinstance(details, dict) else {}
    for item in (error.get("details") or []) if isinstance(error, dict) else []:
        if isinstance(item, dict) and str(item.get("@type", "")).endswith("google.rpc.RetryInfo"):
            delay = _duration_s(str(item.get("retryDelay", "")))
            if delay is not None:
                return delay
    headers = getattr(getattr(e, "response", None), "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value)
            if parsed is not None:
                return max(0.0, parsed.timestamp() - time.time())
    return None

