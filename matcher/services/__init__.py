"""Writes of the matcher app: each a keyword-only function, one transaction, validation first.

Split by noun; the names callers use are re-exported here.
"""
from matcher.services.api_tokens import (
    ApiTokenRefused,
    api_token_authenticate,
    api_token_create,
    api_token_hash,
)
from matcher.services.image_fetch import ImageFetchSummary, image_fetch_backoff, image_refs_fetch
from matcher.services.image_refs import image_store
from matcher.services.import_upload import (
    ImportBusy,
    UploadTooLarge,
    import_upload_accept,
    import_upload_process,
)
from matcher.services.ingest import (
    IMPORT_REPORT_MAX_ERRORS,
    RowOutcome,
    catalog_import,
    listing_fingerprint_compute,
    listing_fingerprint_refresh,
    listing_import_row,
    listings_import,
    listings_import_items,
    product_import_row,
    rows_import,
)
from matcher.services.lexicon import lexicon_load
from matcher.services.thresholds import threshold_set_create, thresholds_active, thresholds_validate

__all__ = [
    "ApiTokenRefused",
    "IMPORT_REPORT_MAX_ERRORS",
    "ImageFetchSummary",
    "ImportBusy",
    "RowOutcome",
    "UploadTooLarge",
    "api_token_authenticate",
    "api_token_create",
    "api_token_hash",
    "catalog_import",
    "image_fetch_backoff",
    "image_refs_fetch",
    "image_store",
    "import_upload_accept",
    "import_upload_process",
    "lexicon_load",
    "listing_fingerprint_compute",
    "listing_fingerprint_refresh",
    "listing_import_row",
    "listings_import",
    "listings_import_items",
    "product_import_row",
    "rows_import",
    "threshold_set_create",
    "thresholds_active",
    "thresholds_validate",
]
