"""Catalogue and listing ingest: one imported row, a whole file or API batch with its report.

The CSV/JSONL commands and the scraper's JSON endpoint share these writes: one row, one transaction,
the row's image references written with it. Parsing and validation live in the matcher/ingest/ package;
reading and vetting image bytes in the matcher/images/ package; storing them and a row's image
references in matcher/services/image_refs.py.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Now
from django.utils import timezone
from tqdm import tqdm

from matcher import causes, ingest
from matcher.models import ImportReport, Listing, ListingImage, Product, ProductImage
from matcher.services.image_refs import image_refs_sync, local_images
from matcher.signals import catalogue_changed_on_commit, catalogue_price_import
from matcher.tasks import image_fetch_listing_images as image_fetch_listing_images_task
from matcher.tasks import image_fetch_product_images as image_fetch_product_images_task

IMPORT_REPORT_MAX_ERRORS = 200
RowStatus = Literal["created", "updated", "unchanged", "error"]


@dataclass
class RowOutcome:
    """What one imported row did; `errors` are shown to the merchandiser or returned to the scraper."""

    status: RowStatus
    object_id: int | None = None  # the product or listing
    product_id: int | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # imported, but someone should look


# What our price depends on besides matches: when one of these changes, the SKU is re-priced.
PRICE_INPUTS = ("cost", "min_price", "active")


@transaction.atomic
def product_import_row(*, row: ingest.CatalogRow, report: ImportReport | None = None) -> RowOutcome:
    """Create or update one SKU with its images; raises ingest.RowError and writes nothing then.

    The price of an existing SKU is not written here: it goes through the pricing app's door
    (`signals.catalogue_price_import`), which checks it against the floor and audits it, or refuses
    the row. A new SKU starts at the imported price, checked against its floor the same way.
    """
    local = local_images(row.images)
    fields = {
        "product_number": row.product_number,
        "product_number_norm": row.product_number_norm,
        "brand": row.brand,
        "title": row.title,
        "category": row.category,
        "colour": row.colour,
        "cost": row.cost,
        "min_price": row.min_price,
        "attributes": row.attributes,
        "active": row.active,
    }
    product = Product.objects.select_for_update().filter(sku=row.sku).first()
    created = product is None
    if product is None:
        product = Product.objects.create(sku=row.sku, price=row.price, **fields)
        status: RowStatus = "created"
        changed_fields: list[str] = []
    else:
        changed_fields = [name for name, value in fields.items() if getattr(product, name) != value]
        for name in changed_fields:
            setattr(product, name, fields[name])
        if changed_fields:
            product.save(update_fields=[*changed_fields, "updated_at"])
        status = "updated" if changed_fields else "unchanged"
    price_changed = created or product.price != row.price
    if price_changed:
        catalogue_price_import(
            product_id=product.pk,
            price=row.price,
            created=created,
            report_id=report.pk if report else None,
            actor_id=report.user_id if report else None,
        )
        status = "created" if created else "updated"
    if not created and (price_changed or any(name in PRICE_INPUTS for name in changed_fields)):
        cause = causes.catalogue_import(report.pk if report else None).text
        catalogue_changed_on_commit(
            product_ids=[product.pk], cause=cause, actor_id=report.user_id if report else None
        )
    images_changed, needs_fetch = image_refs_sync(
        ProductImage,
        owner_field="product_id",
        owner_id=product.pk,
        sources=row.images,
        local=local,
        order_matters=True,
    )
    if images_changed and status == "unchanged":
        status = "updated"
    if needs_fetch:
        product_id = product.pk
        transaction.on_commit(lambda: image_fetch_product_images_task.delay(product_id))
    return RowOutcome(status=status, object_id=product.pk, product_id=product.pk, warnings=list(row.warnings))


def listing_fingerprint_compute(*, listing: Listing) -> str:
    """The listing's content fingerprint from its current fields and image rows (hash once fetched)."""
    keys = [
        sha or f"src:{source}"
        for source, sha in ListingImage.objects.filter(listing=listing).values_list("source", "image__sha256")
    ]
    return ingest.listing_fingerprint(
        title=listing.title,
        price=listing.price,
        shipping_fee=listing.shipping_fee,
        product_number=listing.product_number,
        image_keys=keys,
    )


@transaction.atomic
def listing_import_row(*, row: ingest.ListingRow, report: ImportReport | None = None) -> RowOutcome:
    """Create or update one competitor listing, keyed by (SKU, URL); raises ingest.RowError and writes nothing then.

    Only seeing a listing again (a newer seen_at) moves last_seen and counts as unchanged.
    """
    product_id = Product.objects.filter(sku=row.sku).values_list("pk", flat=True).first()
    if product_id is None:
        raise ingest.RowError(f"sku: 카탈로그에 없는 SKU입니다 (unknown SKU {row.sku!r}; import the catalogue first)")
    local = local_images(row.images)
    fields = {
        "mall": row.mall,
        "seller": row.seller,
        "title": row.title,
        "price": row.price,
        "shipping_fee": row.shipping_fee,
        "product_number": row.product_number,
    }
    listing = Listing.objects.select_for_update().filter(product_id=product_id, url=row.url).first()
    if listing is None:
        listing = Listing.objects.create(
            product_id=product_id, url=row.url, first_seen=row.seen_at, last_seen=row.seen_at, **fields
        )
        status: RowStatus = "created"
        update_fields: list[str] = []
    else:
        update_fields = [name for name, value in fields.items() if getattr(listing, name) != value]
        for name in update_fields:
            setattr(listing, name, fields[name])
        status = "updated" if update_fields else "unchanged"
        if row.seen_at > listing.last_seen:
            listing.last_seen = row.seen_at
            update_fields.append("last_seen")
        if row.seen_at < listing.first_seen:
            listing.first_seen = row.seen_at
            update_fields.append("first_seen")
    images_changed, needs_fetch = image_refs_sync(
        ListingImage,
        owner_field="listing_id",
        owner_id=listing.pk,
        sources=row.images,
        local=local,
        order_matters=False,
    )
    if images_changed and status == "unchanged":
        status = "updated"
    fingerprint = listing_fingerprint_compute(listing=listing)
    if fingerprint != listing.content_fingerprint:
        listing.content_fingerprint = fingerprint
        update_fields.append("content_fingerprint")
    if update_fields:
        listing.save(update_fields=update_fields)
    if needs_fetch:
        listing_id = listing.pk
        transaction.on_commit(lambda: image_fetch_listing_images_task.delay(listing_id))
    return RowOutcome(status=status, object_id=listing.pk, product_id=product_id, warnings=list(row.warnings))


def _import_rows(
    *,
    report: ImportReport,
    rows: Sequence[tuple[int, dict | None, str | None]],
    parse: Callable[[dict], object],
    write: Callable[..., RowOutcome],
    progress: bool,
) -> list[RowOutcome]:
    """Run every row in its own transaction, counting it on the report in that same transaction."""
    outcomes: list[RowOutcome] = []
    errors: list[dict] = []
    warnings: list[dict] = []
    warned = 0
    touched: set[int] = set()
    for line, values, read_error in tqdm(rows, total=len(rows), disable=not progress, unit="row", leave=False):
        try:
            if read_error is not None:
                raise ingest.RowError(read_error)
            parsed = parse(values or {})
            with transaction.atomic():
                outcome = write(row=parsed, report=report)
                ImportReport.objects.filter(pk=report.pk).update(
                    **{outcome.status: F(outcome.status) + 1}, rows_done=F("rows_done") + 1, heartbeat_at=Now()
                )
        except ingest.RowError as exc:
            outcome = RowOutcome(status="error", errors=exc.reasons)
        except IntegrityError:
            # Another import wrote the same SKU/URL at the same moment; this row is safe to import again.
            outcome = RowOutcome(status="error", errors=["동시에 같은 행을 다른 가져오기가 썼습니다 (concurrent write; retry)"])
        except DatabaseError as exc:
            outcome = RowOutcome(status="error", errors=[f"데이터베이스 오류 (database error: {type(exc).__name__})"])
        if outcome.status == "error":
            ImportReport.objects.filter(pk=report.pk).update(
                failed=F("failed") + 1, rows_done=F("rows_done") + 1, heartbeat_at=Now()
            )
            if len(errors) < IMPORT_REPORT_MAX_ERRORS:
                errors.append({"line": line, "sku": _row_sku(values), "errors": outcome.errors})
        else:
            if outcome.status in ("created", "updated") and outcome.product_id:
                touched.add(outcome.product_id)
            if outcome.warnings:
                warned += 1
                if len(warnings) < IMPORT_REPORT_MAX_ERRORS:
                    warnings.append({"line": line, "sku": _row_sku(values), "warnings": outcome.warnings})
        outcomes.append(outcome)
    ImportReport.objects.filter(pk=report.pk).update(
        errors=errors,
        warnings=warnings,
        warned=warned,
        product_ids=sorted(touched),
        status=ImportReport.Status.DONE,
        finished_at=Now(),
    )
    report.refresh_from_db()
    return outcomes


def _row_sku(values: dict | None) -> str:
    sku = values.get("sku") if isinstance(values, dict) else None
    return str(sku)[:64] if sku else ""


def rows_import(
    *, report: ImportReport, source_rows: Sequence[ingest.SourceRow], base_dir: Path | None, progress: bool = False
) -> list[RowOutcome]:
    """Import a file's rows onto its report (kind catalog or listings), which ends done.

    `base_dir` is the folder local image paths are read from; None (a browser upload) takes image
    URLs only and refuses a local path on its row.
    """
    roots = settings.IMPORT_ALLOWED_ROOTS if base_dir is not None else ()
    if report.kind == ImportReport.Kind.CATALOG:

        def parse(values: dict) -> object:
            return ingest.parse_catalog_row(values, base_dir=base_dir, allowed_roots=roots)

        write: Callable[..., RowOutcome] = product_import_row
    else:
        now, tz = timezone.now(), timezone.get_default_timezone()

        def parse(values: dict) -> object:
            return ingest.parse_listing_row(values, now=now, default_tz=tz, base_dir=base_dir, allowed_roots=roots)

        write = listing_import_row
    return _import_rows(
        report=report,
        rows=[(r.line, r.values, r.error) for r in source_rows],
        parse=parse,
        write=write,
        progress=progress,
    )


def import_required_columns(kind: str) -> Sequence[str]:
    return ingest.CATALOG_REQUIRED if kind == ImportReport.Kind.CATALOG else ingest.LISTING_REQUIRED


def _import_file(*, kind: str, path: Path, user, progress: bool) -> ImportReport:
    source_rows = ingest.read_rows(path, required=import_required_columns(kind))  # FileFormatError: no write
    report = ImportReport.objects.create(
        kind=kind, source=str(path)[:500], user=user, status=ImportReport.Status.RUNNING, rows_total=len(source_rows)
    )
    rows_import(report=report, source_rows=source_rows, base_dir=path.resolve().parent, progress=progress)
    return report


def catalog_import(*, path: Path, user=None, progress: bool = False) -> ImportReport:
    """Import a catalogue CSV/JSONL file; raises ingest.FileFormatError when the file itself is unusable."""
    return _import_file(kind="catalog", path=Path(path), user=user, progress=progress)


def listings_import(*, path: Path, user=None, progress: bool = False) -> ImportReport:
    """Import a competitor-listing CSV/JSONL file; raises ingest.FileFormatError when the file itself is unusable."""
    return _import_file(kind="listings", path=Path(path), user=user, progress=progress)


def listings_import_items(*, items: Sequence[object], user, source: str) -> tuple[ImportReport, list[RowOutcome]]:
    """The JSON endpoint's batch: the same validation and writes as a file, image URLs only."""
    now, tz = timezone.now(), timezone.get_default_timezone()

    def parse(values: dict) -> object:
        return ingest.parse_listing_row(values, now=now, default_tz=tz, base_dir=None)

    rows: list[tuple[int, dict | None, str | None]] = []
    for index, item in enumerate(items):
        if isinstance(item, dict):
            rows.append((index, {str(k).strip().lower(): v for k, v in item.items()}, None))
        else:
            rows.append((index, None, "항목이 JSON 객체가 아닙니다 (item is not an object)"))
    report = ImportReport.objects.create(
        kind="api", source=source[:500], user=user, status=ImportReport.Status.RUNNING, rows_total=len(rows)
    )
    outcomes = _import_rows(report=report, rows=rows, parse=parse, write=listing_import_row, progress=False)
    return report, outcomes


@transaction.atomic
def listing_fingerprint_refresh(*, listing_id: int) -> bool:
    """Recompute a listing's fingerprint (after its images arrived); True when it changed."""
    listing = Listing.objects.select_for_update().filter(pk=listing_id).first()
    if listing is None:
        return False
    fingerprint = listing_fingerprint_compute(listing=listing)
    if fingerprint == listing.content_fingerprint:
        return False
    Listing.objects.filter(pk=listing_id).update(content_fingerprint=fingerprint)
    return True
