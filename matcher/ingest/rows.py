"""One catalogue row or competitor listing, parsed and validated with every reason found; its fingerprint.

Documented columns (header names, case-insensitive; extra columns are ignored):

    catalog:  sku,product_number,brand,title,category,colour,price,cost,min_price,attributes,images,active
    listings: sku,mall,seller,title,price,shipping_fee,url,product_number,images,seen_at
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from matcher.ingest import fields
from matcher.ingest.errors import RowError
from matcher.ingest.image_sources import ImageSource, image_sources

# The shared 품번 normaliser: matching compares product numbers with the same function.
from matcher.pipeline.attributes import normalise_product_number

__all__ = [
    "CATALOG_COLUMNS",
    "CATALOG_MAX_IMAGES",
    "CATALOG_REQUIRED",
    "CatalogRow",
    "LISTING_COLUMNS",
    "LISTING_MAX_IMAGES",
    "LISTING_REQUIRED",
    "ListingRow",
    "NO_FLOOR_WARNING",
    "SEEN_AT_MAX_AGE",
    "SEEN_AT_MAX_SKEW",
    "ZERO_LISTING_WARNING",
    "listing_fingerprint",
    "parse_catalog_row",
    "parse_listing_row",
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
# A scraper's clock may run a little ahead of ours; a listing "seen" further in the future would never
# go stale, and one seen before this many days is a broken clock or a wrong column, not a sighting.
SEEN_AT_MAX_SKEW = timedelta(minutes=10)
SEEN_AT_MAX_AGE = timedelta(days=3 * 365)
NO_FLOOR_WARNING = (
    "하한가 없음: cost와 min_price가 모두 비어 있어 가격 변경은 관리자 승인이 필요합니다 "
    "(no floor: neither cost nor min_price)"
)
ZERO_LISTING_WARNING = "price: 0원 — 저장하지만 가격 산정에는 쓰지 않습니다 (0 KRW listing: stored, never followed)"


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
    warnings: tuple[str, ...] = ()  # imported anyway; reported on the import's summary


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
    warnings: tuple[str, ...] = ()


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
    sku = fields.text_field(row, "sku", errors, required=True)
    product_number = fields.text_field(row, "product_number", errors)
    brand = fields.text_field(row, "brand", errors)
    title = fields.text_field(row, "title", errors, required=True)
    category = fields.text_field(row, "category", errors)
    colour = fields.text_field(row, "colour", errors)
    price = fields.money_field(row, "price", errors, required=True)
    cost = fields.money_field(row, "cost", errors, required=False)
    min_price = fields.money_field(row, "min_price", errors, required=False)
    attributes: dict[str, Any] = {}
    active = True
    images: list[ImageSource] = []
    try:
        attributes = fields.attributes(row.get("attributes"))
    except RowError as exc:
        errors.extend(exc.reasons)
    try:
        active = fields.flag(row.get("active"), name="active", default=True)
    except RowError as exc:
        errors.extend(exc.reasons)
    try:
        images = image_sources(
            row.get("images"), base_dir=base_dir, allowed_roots=allowed_roots, max_images=CATALOG_MAX_IMAGES
        )
    except RowError as exc:
        errors.extend(exc.reasons)
    errors.extend(_catalog_money_problems(price=price, cost=cost, min_price=min_price))
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
        warnings=(NO_FLOOR_WARNING,) if cost is None and min_price is None else (),
    )


def _catalog_money_problems(*, price: int | None, cost: int | None, min_price: int | None) -> list[str]:
    """Amounts that parse but cannot be right: a free jacket, a zero cost, a minimum above the price."""
    problems = []
    if price == 0:
        problems.append("price: 0원은 판매가가 될 수 없습니다 (price must be more than 0)")
    for name, amount in (("cost", cost), ("min_price", min_price)):
        if amount == 0:
            problems.append(f"{name}: 0원은 안 됩니다 — 모르면 비워 두세요 (0 is not allowed; leave it empty when unknown)")
    if price and min_price and min_price > price:
        problems.append(
            f"min_price: 최저가 {min_price:,}원이 판매가 {price:,}원보다 높습니다 (min_price above price)"
        )
    return problems


def _seen_at_problem(seen_at: datetime, now: datetime) -> str | None:
    if seen_at > now + SEEN_AT_MAX_SKEW:
        return f"seen_at: 미래 시각입니다 (in the future: {seen_at.isoformat()})"
    if seen_at < now - SEEN_AT_MAX_AGE:
        return f"seen_at: {SEEN_AT_MAX_AGE.days}일보다 오래된 시각입니다 (older than {SEEN_AT_MAX_AGE.days} days: {seen_at.isoformat()})"
    return None


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
    sku = fields.text_field(row, "sku", errors, required=True)
    mall = fields.text_field(row, "mall", errors, required=True)
    seller = fields.text_field(row, "seller", errors)
    title = fields.text_field(row, "title", errors, required=True)
    price = fields.money_field(row, "price", errors, required=True)
    shipping_fee = fields.money_field(row, "shipping_fee", errors, required=False)
    url = fields.text_field(row, "url", errors, required=True)
    product_number = fields.text_field(row, "product_number", errors)
    if url:
        try:
            fields.http_url(url, name="url")
        except RowError as exc:
            errors.extend(exc.reasons)
    images: list[ImageSource] = []
    seen_at = now
    try:
        images = image_sources(
            row.get("images"), base_dir=base_dir, allowed_roots=allowed_roots, max_images=LISTING_MAX_IMAGES
        )
    except RowError as exc:
        errors.extend(exc.reasons)
    try:
        seen_at = fields.seen_at(row.get("seen_at"), now=now, default_tz=default_tz)
    except RowError as exc:
        errors.extend(exc.reasons)
    else:
        problem = _seen_at_problem(seen_at, now)
        if problem:
            errors.append(problem)
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
        warnings=(ZERO_LISTING_WARNING,) if price == 0 else (),
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
