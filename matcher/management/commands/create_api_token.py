"""python manage.py create_api_token NAME --user USERNAME — a key for the scraper, printed once."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from matcher.services import api_token_create


class Command(BaseCommand):
    help = "Create a bearer token for POST /matcher/api/listings. Only its hash is stored: copy the key now."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="what the token is for, e.g. 'scraper-prod'")
        parser.add_argument("--user", required=True, help="the user the scraper's imports are recorded under")

    def handle(self, *args, name: str, user: str, **options) -> None:
        owner = get_user_model().objects.filter(username=user).first()
        if owner is None:
            raise CommandError(f"사용자가 없습니다 (no such user): {user}")
        token, key = api_token_create(name=name, user=owner)
        self.stderr.write(f"token #{token.pk} '{token.name}' for {owner.username}; the key is shown only once:")
        self.stdout.write(key)
