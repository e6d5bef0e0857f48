"""Tokens made before scopes existed could do everything: after the upgrade they keep both scopes and
work on both endpoints, and they expire a year later instead of never."""
from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from django.utils import timezone

from matcher.models import ApiToken
from tests.factories import UserFactory

BEFORE = [("matcher", "0008_import_warnings")]
AFTER = [("matcher", "0009_api_token_scopes_expiry")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_a_token_from_before_scopes_keeps_both_and_expires_in_a_year(client):
    try:
        old_apps = _migrate(BEFORE)
        user = UserFactory(username="scraper")
        OldToken = old_apps.get_model("matcher", "ApiToken")
        OldToken.objects.create(name="old", key_hash=hashlib.sha256(b"pm_old").hexdigest(), prefix="pm_old",
                                user_id=user.pk)

        _migrate(AFTER)

        token = ApiToken.objects.get(name="old")
        assert token.scopes == ["ingest", "export"]
        assert timedelta(days=364) < token.expires_at - timezone.now() <= timedelta(days=365)
        # The endpoints run today's models (an import report has grown columns since 0009): the rest of
        # the migrations first, as an upgrade would run them.
        call_command("migrate", verbosity=0)
        assert client.get(reverse("pricing:api_changes"), HTTP_AUTHORIZATION="Bearer pm_old").status_code == 200
        ingest = client.post(reverse("matcher:api_listings"), data=b'{"listings": []}',
                             content_type="application/json", HTTP_AUTHORIZATION="Bearer pm_old")
        assert ingest.status_code == 200
    finally:
        call_command("migrate", verbosity=0)
