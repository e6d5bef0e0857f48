"""Export changed prices for the shop's upload automation.

    python manage.py export_prices --since 24h --format csv --out prices.csv
    python manage.py export_prices --since 2025-06-01T00:00:00+09:00 --format json
"""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from pricing import export, selectors


class Command(BaseCommand):
    help = "Export SKUs whose price changed since a moment (one row per SKU, the current price)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", required=True, help='ISO date/datetime or a duration such as "24h", "7d"')
        parser.add_argument("--format", choices=["csv", "json"], default="csv")
        parser.add_argument("--out", help="file to write (default: standard output)")

    def handle(self, *args, **options) -> None:  # noqa: ANN002, ANN003
        try:
            since = export.parse_since(options["since"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        rows = selectors.changed_prices_since(since)
        text = export.to_csv(rows) if options["format"] == "csv" else export.to_json(rows, since) + "\n"
        if options.get("out"):
            with open(options["out"], "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
            self.stderr.write(f"{len(rows)} SKU → {options['out']}")
        else:
            self.stdout.write(text, ending="")
