"""python manage.py import_catalog FILE — our SKUs from CSV or JSON Lines; re-running updates them."""
from __future__ import annotations

from matcher.ingest import CATALOG_COLUMNS
from matcher.management.commands._import_common import ImportCommand
from matcher.services import catalog_import


class Command(ImportCommand):
    kind = "catalog"
    help = (
        "Import the catalogue. Columns: " + ",".join(CATALOG_COLUMNS) + ". Images: local paths (relative to the "
        "file's folder) or http(s) URLs joined by '|', 1–5 per SKU. Rows are matched by sku."
    )

    def handle(self, *args, file: str, **options) -> None:
        self.run_import(catalog_import, file=file, options=options)
