"""Shared by import_catalog and import_listings: run one import and print its summary."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from matcher.ingest import FileFormatError
from matcher.models import ImportReport

SHOW_ERRORS = 20


class ImportCommand(BaseCommand):
    kind = ""
    columns: tuple[str, ...] = ()

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="CSV (UTF-8, with or without BOM) or JSON Lines (.jsonl / .ndjson)")
        parser.add_argument("--user", help="username recorded on the import report")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (for logs and cron)")
        parser.add_argument("--errors", type=int, default=SHOW_ERRORS, help="how many row errors to print")

    def run_import(self, importer: Callable[..., ImportReport], *, file: str, options: dict) -> None:
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"파일이 없습니다 (file not found): {path}")
        user = None
        if options.get("user"):
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"사용자가 없습니다 (no such user): {options['user']}")
        try:
            report = importer(path=path, user=user, progress=not options["no_progress"])
        except FileFormatError as exc:
            raise CommandError(str(exc)) from None
        self.print_summary(report, show=options["errors"])

    def print_summary(self, report: ImportReport, *, show: int) -> None:
        self.stdout.write(
            f"{self.kind} import #{report.pk} {report.source}: "
            f"created {report.created}, updated {report.updated}, unchanged {report.unchanged}, failed {report.failed}"
            + (f", with warnings {report.warned}" if report.warned else "")
        )
        for error in report.errors[:show]:
            sku = f" [{error['sku']}]" if error.get("sku") else ""
            self.stdout.write(self.style.WARNING(f"  line {error['line']}{sku}: " + "; ".join(error["errors"])))
        if report.failed > min(show, len(report.errors)):
            self.stdout.write(f"  … {report.failed - min(show, len(report.errors))} more (ImportReport #{report.pk} in the admin)")
        for warning in report.warnings[:show]:
            sku = f" [{warning['sku']}]" if warning.get("sku") else ""
            self.stdout.write(f"  line {warning['line']}{sku} (경고 warning): " + "; ".join(warning["warnings"]))
        if report.warned > min(show, len(report.warnings)):
            self.stdout.write(f"  … {report.warned - min(show, len(report.warnings))} more warnings (ImportReport #{report.pk})")
