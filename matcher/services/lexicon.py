"""The attribute lexicon (colour, fit, material … terms) kept in AttributeTerm rows."""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from matcher.models import AttributeTerm


@transaction.atomic
def lexicon_load(*, rows: list[dict[str, str]]) -> int:
    """Add the lexicon file's terms; rows an admin deactivated stay deactivated."""
    groups = {g for g, _ in AttributeTerm.GROUPS}
    created = 0
    for i, row in enumerate(rows, start=2):
        group, value, term = (row.get(k, "").strip() for k in ("group", "value", "term"))
        if group not in groups or not value or not term:
            raise ValidationError(f"lexicon line {i}: need group in {sorted(groups)}, value and term")
        _, was_created = AttributeTerm.objects.get_or_create(group=group, value=value, term=term)
        created += was_created
    return created
