"""Load the attribute lexicon file into the admin-editable table (adds new terms; keeps admin edits)."""
from __future__ import annotations

import csv
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from matcher.services import lexicon_load

DEFAULT = Path(__file__).resolve().parents[2] / "data" / "lexicon.csv"


class Command(BaseCommand):
    help = "Load matcher/data/lexicon.csv (group,value,term) into the AttributeTerm table."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", nargs="?", default=str(DEFAULT))

    def handle(self, *args, file: str, **options) -> None:
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"lexicon file not found: {path}")
        with path.open(encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.DictReader(fh))
        created = lexicon_load(rows=rows)
        self.stdout.write(f"lexicon: {created} new terms ({len(rows)} in file)")
