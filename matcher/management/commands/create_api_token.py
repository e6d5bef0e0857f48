"""python manage.py create_api_token NAME --user USERNAME [--scope ingest|export ...] [--days N] — a key,
printed once."""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from matcher.models import ApiToken
from matcher.services import api_token_create


class Command(BaseCommand):
    help = (
        "Create a bearer token: scope 'ingest' posts listings (POST /matcher/api/listings), 'export' reads "
        "changed prices (GET /pricing/api/changes). Only its hash is stored: copy the key now."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="what the token is for, e.g. 'scraper-prod'")
        parser.add_argument("--user", required=True, help="the user the token's imports are recorded under")
        parser.add_argument(
            "--scope", action="append", choices=ApiToken.Scope.values, dest="scopes",
            help="what the token may do; repeat for both (default: ingest, the scraper's)",
        )
        parser.add_argument(
            "--days", type=int, default=settings.API_TOKEN_LIFETIME_DAYS,
            help="days until the token expires (default: API_TOKEN_LIFETIME_DAYS, 365); 0: never",
        )

    def handle(self, *args, name: str, user: str, scopes: list[str] | None, days: int, **options) -> None:
        owner = get_user_model().objects.filter(username=user).first()
        if owner is None:
            raise CommandError(f"사용자가 없습니다 (no such user): {user}")
        if days < 0:
            raise CommandError(f"--days는 0 이상이어야 합니다 (0: never expires): {days}")
        try:
            token, key = api_token_create(
                name=name, user=owner, scopes=scopes or [ApiToken.Scope.INGEST],
                lifetime=timedelta(days=days) if days else None,
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        expiry = timezone.localtime(token.expires_at).strftime("%Y-%m-%d") if token.expires_at else "never"
        self.stderr.write(
            f"token #{token.pk} '{token.name}' for {owner.username}, scopes {', '.join(token.scopes)}, "
            f"expires {expiry}; the key is shown only once:"
        )
        self.stdout.write(key)
