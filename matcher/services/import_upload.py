"""Imports uploaded in the browser: the file checked and kept privately, then imported by a worker.

- `import_upload_accept` (the page): the same checks as the commands (format, encoding, header) and a
  size limit, all before anything is written; then the file is stored under a random name in the
  private `imports` storage (never served), a queued ImportReport names the uploader, and the
  worker task is enqueued on commit.
- `import_upload_process` (the worker): imports the stored file's rows onto the report, which counts
  them as they land. Rows are idempotent, so a run a dead worker left is simply run again: the task
  is acks_late, and a redelivery that finds the report running with a stale heartbeat takes it over
  from the first row. An exception marks the report failed with the error and keeps the file.
"""
from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from pathlib import PurePath
from typing import IO

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import transaction
from django.db.models.functions import Now
from django.utils import timezone

from matcher import ingest
from matcher.models import ImportReport
from matcher.services.ingest import import_required_columns, rows_import
from matcher.tasks import import_upload_run as import_upload_run_task

log = logging.getLogger(__name__)

UPLOAD_KINDS = (ImportReport.Kind.CATALOG, ImportReport.Kind.LISTINGS)
DISPLAY_NAME_MAX = 200


def size_label(size: int) -> str:
    """20 MB as '20MB', 2,048 bytes as '2KB': the limit as an admin would have set it."""
    mb = 1024 * 1024
    return f"{size / mb:g}MB" if size >= mb else f"{-(-size // 1024)}KB"


class UploadTooLarge(ingest.FileFormatError):
    """The upload is over IMPORT_UPLOAD_MAX_BYTES; refused before anything is written."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        super().__init__(
            f"파일이 너무 큽니다. 최대 {size_label(max_bytes)}까지 올릴 수 있습니다 (larger than {max_bytes} bytes)"
        )


class ImportBusy(Exception):
    """Another worker is importing this report right now (its heartbeat is fresh): try again later."""


def imports_storage():  # noqa: ANN201 - a Storage; typed loosely as django-stubs does for storages[...]
    return storages["imports"]


def upload_display_name(name: str) -> str:
    """The uploader's file name for display only: no folders, no control characters, bounded."""
    base = PurePath(name.replace("\\", "/")).name
    cleaned = "".join(ch for ch in base if ch.isprintable()).strip()
    return cleaned[:DISPLAY_NAME_MAX] or "upload"


def import_upload_accept(*, kind: str, file: IO[bytes], name: str, size: int, user) -> ImportReport:
    """Check an uploaded file and queue its import; raises ingest.FileFormatError (UploadTooLarge too)
    with a Korean message, and then nothing is written.

    `size` is the upload's size as received; the file is read at most one byte past the limit.
    """
    if kind not in UPLOAD_KINDS:
        raise ingest.FileFormatError("가져올 종류를 고르세요: 카탈로그 또는 경쟁 상품 (kind must be catalog or listings)")
    max_bytes = settings.IMPORT_UPLOAD_MAX_BYTES
    if size > max_bytes:
        raise UploadTooLarge(max_bytes)
    data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise UploadTooLarge(max_bytes)
    display = upload_display_name(name)
    fmt = ingest.file_format(display)  # the extension decides, as for the commands
    rows = ingest.read_rows_data(data, name=display, required=import_required_columns(kind))
    if not rows:
        raise ingest.FileFormatError("가져올 행이 없습니다 (no rows)")
    storage = imports_storage()
    # A random name: the uploader's name never reaches the file system.
    stored = storage.save(f"{uuid.uuid4().hex}.{fmt}", ContentFile(data))
    try:
        with transaction.atomic(durable=True):
            report = ImportReport.objects.create(
                kind=kind,
                source=display,
                stored_name=stored,
                status=ImportReport.Status.QUEUED,
                rows_total=len(rows),
                user=user,
            )
            report_id = report.pk
            transaction.on_commit(lambda: import_upload_run_task.delay(report_id))
    except BaseException:
        storage.delete(stored)
        raise
    return report


def _claim(report_id: int) -> ImportReport | None:
    """Mark the report running for this worker; None when there is nothing left to do."""
    with transaction.atomic(durable=True):
        report = ImportReport.objects.select_for_update().filter(pk=report_id).first()
        if report is None or report.status in (ImportReport.Status.DONE, ImportReport.Status.FAILED):
            return None  # a redelivery of a finished import
        if report.status == ImportReport.Status.RUNNING:
            lease = timedelta(seconds=settings.IMPORT_UPLOAD_LEASE_S)
            if report.heartbeat_at and report.heartbeat_at > timezone.now() - lease:
                raise ImportBusy(report_id)
            log.warning("import report %s: taking over a run whose worker stopped; importing again", report_id)
        # From the first row: rows are idempotent, so rows the stopped run wrote come out unchanged.
        report.status = ImportReport.Status.RUNNING
        report.attempts += 1
        report.created = report.updated = report.unchanged = report.failed = report.warned = 0
        report.rows_done = 0
        report.errors, report.warnings, report.product_ids = [], [], []
        report.error = ""
        report.heartbeat_at = timezone.now()
        report.save()
        return report


def import_upload_process(*, report_id: int) -> ImportReport | None:
    """Import an uploaded file onto its report (in the worker). Safe to run twice: a finished report
    is left alone; raises ImportBusy while another worker's run is alive.

    Each row is its own transaction, so this runs outside any.
    """
    report = _claim(report_id)
    if report is None:
        return None
    storage = imports_storage()
    try:
        with storage.open(report.stored_name, "rb") as fh:
            data = fh.read()
        rows = ingest.read_rows_data(data, name=report.source, required=import_required_columns(report.kind))
        ImportReport.objects.filter(pk=report.pk).update(rows_total=len(rows))
        rows_import(report=report, source_rows=rows, base_dir=None)
    except Exception as exc:
        # The file stays: the report says why, and the import can be run again from it.
        ImportReport.objects.filter(pk=report.pk).update(
            status=ImportReport.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000], finished_at=Now()
        )
        raise
    # Imported: the report keeps the counts and the rows by line; the untrusted file is not kept.
    storage.delete(report.stored_name)
    ImportReport.objects.filter(pk=report.pk).update(stored_name="")
    report.refresh_from_db()
    return report
