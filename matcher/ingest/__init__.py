"""Catalogue and competitor-listing rows: reading files, parsing and validating one row.

No database access here: every function takes plain values and returns dataclasses or raises
`RowError` with the reasons a merchandiser can act on. The writes live in matcher/services/ingest.py
(`product_import_row`, `listing_import_row`), which both the CSV/JSONL commands and the JSON
endpoint call, so the three entry points validate identically.

- files.py          a CSV / JSON Lines file → `SourceRow`s (extension, encoding, header)
- rows.py           one row → `CatalogRow` / `ListingRow` (the columns), and a listing's fingerprint
- fields.py         one field of a row (text limits, flags, attributes JSON, URL, seen_at)
- money.py          `parse_krw`, amounts of won
- image_sources.py  a row's image references, local paths kept inside the import folder
- errors.py         `RowError`, `FileFormatError`
"""
from __future__ import annotations

from matcher.ingest.errors import FileFormatError, RowError
from matcher.ingest.files import FileKind, SourceRow, file_format, read_rows, read_rows_data
from matcher.ingest.image_sources import IMAGE_SEPARATOR, ImageSource, resolve_local_image
from matcher.ingest.money import MAX_KRW, parse_krw
from matcher.ingest.rows import (
    CATALOG_COLUMNS,
    CATALOG_MAX_IMAGES,
    CATALOG_REQUIRED,
    LISTING_COLUMNS,
    LISTING_MAX_IMAGES,
    LISTING_REQUIRED,
    NO_FLOOR_WARNING,
    SEEN_AT_MAX_AGE,
    SEEN_AT_MAX_SKEW,
    ZERO_LISTING_WARNING,
    CatalogRow,
    ListingRow,
    listing_fingerprint,
    parse_catalog_row,
    parse_listing_row,
)

# The shared 품번 normaliser: matching compares product numbers with the same function.
from matcher.pipeline.attributes import normalise_product_number

__all__ = [
    "CATALOG_COLUMNS",
    "CATALOG_MAX_IMAGES",
    "CATALOG_REQUIRED",
    "CatalogRow",
    "FileFormatError",
    "FileKind",
    "IMAGE_SEPARATOR",
    "ImageSource",
    "LISTING_COLUMNS",
    "LISTING_MAX_IMAGES",
    "LISTING_REQUIRED",
    "ListingRow",
    "MAX_KRW",
    "NO_FLOOR_WARNING",
    "RowError",
    "SEEN_AT_MAX_AGE",
    "SEEN_AT_MAX_SKEW",
    "SourceRow",
    "ZERO_LISTING_WARNING",
    "file_format",
    "listing_fingerprint",
    "normalise_product_number",
    "parse_catalog_row",
    "parse_krw",
    "parse_listing_row",
    "read_rows",
    "read_rows_data",
    "resolve_local_image",
]
