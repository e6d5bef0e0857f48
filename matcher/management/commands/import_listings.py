"""python manage.py import_listings FILE — competitor listings from CSV or JSON Lines; keyed by (sku, url)."""
from __future__ import annotations

from matcher.ingest import LISTING_COLUMNS
from matcher.management.commands._import_common import ImportCommand
from matcher.services import listings_import


class Command(ImportCommand):
    kind = "listings"
    help = (
        "Import competitor listings. Columns: " + ",".join(LISTING_COLUMNS) + ". The SKU must already be in "
        "the catalogue; seen_at is ISO 8601 (default: now). URL images are downloaded by the ingest workers."
    )

    def handle(self, *args, file: str, **options) -> None:
        self.run_import(listings_import, file=file, options=options)
