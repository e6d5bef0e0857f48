"""Catalogue and competitor-listing rows: reading files, parsing and validating one row.

No database access here: every function takes plain values and returns dataclasses or raises
`RowError` with the reasons a merchandiser can act on. The writes live in matcher/services.py
(`product_import_row`, `listing_import_row`), which both the CSV/JSONL commands and the JSON
endpoint call, so the three entry points validate identically.

Documented columns (header names, case-insensitive; extra columns are ignored):

    catalog:  sku,product_number,brand,title,category,colour,price,cost,min_price,attributes,images,active
    listings: sku,mall,seller,title,price,shipping_fee,url,product_number,images,seen_at
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

# The shared 품번 normaliser: matching compares product numbers with the same function.
from matcher.pipeline.attributes import normalise_product_number

__all__ = [
    "CATALOG_COLUMNS",
    "CATALOG_MAX_IMAGES",
    "CatalogRow",
    "FileFormatError",
    "ImageSource",
    "LISTING_COLUMNS",
    "LISTING_MAX_IMAGES",
    "ListingRow",
    "RowError",
    "SourceRow",
    "file_format",
    "listing_fingerprint",
    "normalise_product_number",
    "parse_catalog_row",
    "parse_krw",
    "parse_listing_row",
    "read_rows",
    "resolve_local_image",
]

CATALOG_COLUMNS = (
    "sku", "product_number", "brand", "title", "category", "colour",
    "price", "cost", "min_price", "attributes", "images", "active",
)
CATALOG_REQUIRED = ("sku", "title", "price", "images")
LISTING_COLUMNS = (
    "sku", "mall", "seller", "title", "price", "shipping_fee", "url", "product_number", "images", "seen_at",
)
LISTING_REQUIRED = ("sku", "mall", "title", "price", "url", "images")
CATALOG_MAX_IMAGES = 5
LISTING_MAX_IMAGES = 10
# PositiveIntegerField's upper bound; a price above it is a typo, not a jacket.
MAX_KRW = 2_147_483_647
IMAGE_SEPARATOR = "|"

# Lengths of the model fields, so a row fails with a reason instead of a database error.
_MAX_LEN = {
    "sku": 64, "product_number": 64, "brand": 120, "title": 500, "category": 120, "colour": 60,
    "mall": 60, "seller": 120, "url": 2000, "image": 2000,
}


class RowError(Exception):
    """A row that cannot be imported; `reasons` are shown to the merchandiser as they are."""

    def __init__(self, reasons: str | Sequence[str]) -> None:
        self.reasons = [reasons] if isinstance(reasons, str) else list(reasons)
        super().__init__("; ".join(self.reasons))


class FileFormatError(Exception):
    """The whole file is unusable (encoding, missing columns, unknown extension)."""


# --- values -----------------------------------------------------------------------------------

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


def _text(row: Mapping[str, Any], key: str, errors: list[str], *, required: bool = False) -> str:
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
    limit = _MAX_LEN.get(key)
    if limit and len(value) > limit:
        errors.append(f"{key}: {limit}자를 넘습니다 (longer than {limit} characters)")
    return value


def _money(row: Mapping[str, Any], key: str, errors: list[str], *, required: bool) -> int | None:
    try:
        return parse_krw(row.get(key), name=key, required=required)
    except RowError as exc:
        errors.extend(exc.reasons)
        return None


def _bool(value: Any, *, name: str, default: bool) -> bool:
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


def _attributes(value: Any) -> dict[str, Any]:
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


def _http_url(value: str, *, name: str) -> str:
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise RowError(f"{name}: http(s) URL이어야 합니다 (not an http(s) URL: {value[:200]!r})")
    return value


def _seen_at(value: Any, *, now: datetime, default_tz: tzinfo) -> datetime:
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


# --- images -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageSource:
    """One image reference of a row: an http(s) URL, or a local file already resolved and vetted."""

    source: str  # as stored on the ImageRef row: the URL, or the path relative to the import folder
    url: str | None = None
    path: Path | None = None

    @property
    def is_url(self) -> bool:
        return self.url is not None


def resolve_local_image(raw: str, *, base_dir: Path, allowed_roots: Sequence[Path | str] = ()) -> Path:
    """The real path of a local image, which must lie inside `base_dir` or one of `allowed_roots`.

    Symlinks are resolved before the check, so a link pointing out of the folder is refused too.
    """
    base = Path(base_dir).resolve()
    candidate = Path(raw).expanduser() if raw.startswith("~") else Path(raw)
    resolved = (candidate if candidate.is_absolute() else base / candidate).resolve()
    roots = [base, *(Path(r).resolve() for r in allowed_roots)]
    if not any(resolved.is_relative_to(root) for root in roots):
        raise RowError(
            f"images: 가져오기 폴더 밖의 파일은 읽지 않습니다 (outside the import folder: {raw[:200]!r})"
        )
    if not resolved.is_file():
        raise RowError(f"images: 파일이 없습니다 (file not found: {raw[:200]!r})")
    return resolved


def _image_sources(
    value: Any,
    *,
    base_dir: Path | None,
    allowed_roots: Sequence[Path | str],
    max_images: int,
) -> list[ImageSource]:
    if value is None:
        items: list[Any] = []
    elif isinstance(value, str):
        items = [part.strip() for part in value.split(IMAGE_SEPARATOR)]
        items = [part for part in items if part]
    elif isinstance(value, list):
        items = value
    else:
        raise RowError("images: '|'로 이은 경로/URL 또는 목록이어야 합니다 (expected 'a.jpg|b.jpg' or a list)")
    if not items:
        raise RowError("images: 이미지가 최소 1개 필요합니다 (at least one image)")
    if len(items) > max_images:
        raise RowError(f"images: 최대 {max_images}개입니다 (at most {max_images} images, got {len(items)})")
    sources: list[ImageSource] = []
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise RowError("images: 빈 값이나 문자열이 아닌 항목이 있습니다 (empty or non-text item)")
        item = item.strip()
        if len(item) > _MAX_LEN["image"]:
            raise RowError("images: 경로/URL이 너무 깁니다 (longer than 2000 characters)")
        if item in seen:
            continue  # the same picture twice is one image
        seen.add(item)
        scheme = urlsplit(item).scheme.lower()
        if scheme in ("http", "https"):
            sources.append(ImageSource(source=_http_url(item, name="images"), url=item))
        elif len(scheme) > 1:  # 'C:\…' parses with scheme 'c'; anything longer is a URL scheme
            raise RowError(f"images: http(s)만 받습니다 (scheme not allowed: {scheme!r})")
        elif base_dir is None:
            raise RowError(f"images: 이 경로에서는 http(s) URL만 받습니다 (URLs only here: {item[:200]!r})")
        else:
            path = resolve_local_image(item, base_dir=base_dir, allowed_roots=allowed_roots)
            sources.append(ImageSource(source=item, path=path))
    return sources


# --- rows -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogRow:
    sku: str
    product_number: str
    product_number_norm: str
    brand: str
    title: str
    category: str
    colour: str
    price: int
    cost: int | None
    min_price: int | None
    attributes: dict[str, Any]
    images: list[ImageSource]
    active: bool


@dataclass(frozen=True)
class ListingRow:
    sku: str
    mall: str
    seller: str
    title: str
    price: int
    shipping_fee: int
    url: str
    product_number: str
    images: list[ImageSource]
    seen_at: datetime


def _check_mapping(row: Any) -> Mapping[str, Any]:
    if not isinstance(row, Mapping):
        raise RowError("항목이 JSON 객체가 아닙니다 (item is not an object)")
    return row


def parse_catalog_row(
    row: Mapping[str, Any], *, base_dir: Path | None, allowed_roots: Sequence[Path | str] = ()
) -> CatalogRow:
    """One catalogue row from CSV text values or JSON values; raises RowError with every reason found."""
    row = _check_mapping(row)
    errors: list[str] = []
    sku = _text(row, "sku", errors, required=True)
    product_number = _text(row, "product_number", errors)
    brand = _text(row, "brand", errors)
    title = _text(row, "title", errors, required=True)
    category = _text(row, "category", errors)
    colour = _text(row, "colour", errors)
    price = _money(row, "price", errors, required=True)
    cost = _money(row, "cost", errors, required=False)
    min_price = _money(row, "min_price", errors, required=False)
    attributes: dict[str, Any] = {}
    active = True
    images: list[ImageSource] = []
    try:
        attributes = _attributes(row.get("attributes"))
    except RowError as exc:
        errors.extend(exc.reasons)
    try:
        active = _bool(row.get("active"), name="active", default=True)
    except RowError as exc:
        errors.extend(exc.reasons)
    try:
        images = _image_sources(
            row.get("images"), base_dir=base_dir, allowed_roots=allowed_roots, max_images=CATALOG_MAX_IMAGES
        )
    except RowError as exc:
        errors.extend(exc.reasons)
    if errors:
        raise RowError(errors)
    assert price is not None
    return CatalogRow(
        sku=sku,
        product_number=product_number,
        product_number_norm=normalise_product_number(product_number)[:64],
        brand=brand,
        title=title,
        category=category,
        colour=colour,
        price=price,
        cost=cost,
        min_price=min_price,
        attributes=attributes,
        images=images,
        active=active,
    )


def parse_listing_row(
    row: Mapping[str, Any],
    *,
    now: datetime,
    default_tz: tzinfo = UTC,
    base_dir: Path | None,
    allowed_roots: Sequence[Path | str] = (),
) -> ListingRow:
    """One competitor listing; `base_dir=None` (the JSON endpoint) accepts image URLs only."""
    row = _check_mapping(row)
    errors: list[str] = []
    sku = _text(row, "sku", errors, required=True)
    mall = _text(row, "mall", errors, required=True)
    seller = _text(row, "seller", errors)
    title = _text(row, "title", errors, required=True)
    price = _money(row, "price", errors, required=True)
    shipping_fee = _money(row, "shipping_fee", errors, required=False)
    url = _text(row, "url", errors, required=True)
    product_number = _text(row, "product_number", errors)
    if url:
        try:
            _http_url(url, name="url")
        except RowError as exc:
            errors.extend(exc.reasons)
    images: list[ImageSource] = []
    seen_at = now
    try:
        images = _image_sources(
            row.get("images"), base_dir=base_dir, allowed_roots=allowed_roots, max_images=LISTING_MAX_IMAGES
        )
    except RowError as exc:
        errors.extend(exc.reasons)
    try:
        seen_at = _seen_at(row.get("seen_at"), now=now, default_tz=default_tz)
    except RowError as exc:
        errors.extend(exc.reasons)
    if errors:
        raise RowError(errors)
    assert price is not None
    return ListingRow(
        sku=sku,
        mall=mall,
        seller=seller,
        title=title,
        price=price,
        shipping_fee=shipping_fee or 0,
        url=url,
        product_number=product_number,
        images=images,
        seen_at=seen_at,
    )


def listing_fingerprint(
    *, title: str, price: int, shipping_fee: int, product_number: str, image_keys: Sequence[str]
) -> str:
    """sha256 of what a match decision depends on; `image_keys` are content hashes, or sources not yet fetched.

    Image keys are sorted so that re-ordering the same pictures does not trigger a re-decision.
    """
    payload = json.dumps(
        [title, price, shipping_fee, product_number, sorted(image_keys)], ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


# --- files ------------------------------------------------------------------------------------

FileKind = Literal["csv", "jsonl"]


@dataclass
class SourceRow:
    """A row as read from the file: its first physical line, and either values or why it is unreadable."""

    line: int
    values: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def file_format(path: Path) -> FileKind:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    raise FileFormatError(f"지원하지 않는 파일 형식입니다: {path.name} (use .csv, .jsonl or .ndjson)")


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        # utf-8-sig drops the byte-order mark Excel writes in front of "CSV UTF-8" files.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise FileFormatError(
            f"{path.name}: UTF-8이 아닙니다 ({line}행). Excel에서는 'CSV UTF-8'로 저장하세요 "
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
    kind = file_format(path)
    text = _decode(path)
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

