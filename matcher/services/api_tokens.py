"""API tokens of the scraper and webhook endpoints: created once, only the hash kept."""
from __future__ import annotations

import hashlib
import secrets

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from matcher.models import ApiToken


def api_token_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@transaction.atomic
def api_token_create(*, name: str, user) -> tuple[ApiToken, str]:
    """A new token for `user`; the key is returned once and only its hash is kept."""
    name = name.strip()
    if not name:
        raise ValidationError("토큰 이름이 필요합니다 (name required)")
    key = "pm_" + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(name=name[:80], key_hash=api_token_hash(key), prefix=key[:8], user=user)
    return token, key


def api_token_authenticate(*, key: str) -> ApiToken | None:
    """The active token with this key (and an active user), stamping its last use; None otherwise."""
    if not key:
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=api_token_hash(key), active=True, user__is_active=True)
        .first()
    )
    if token is not None:
        now = timezone.now()
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
