"""API tokens of the JSON endpoints: created once, only the hash kept; each allowed its scopes until it expires.

Scopes: ``ingest`` writes competitor listings (POST /matcher/api/listings), ``export`` reads changed prices
(GET /pricing/api/changes). Both endpoints ask `api_token_authenticate` for their scope, so a scraper's key
cannot read prices and the shop's upload key cannot write listings.
"""
from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from matcher.models import ApiToken

INVALID = "인증 실패 (missing or invalid bearer token)"


class ApiTokenRefused(Exception):
    """The token may not do this. `status`: 401 (no, wrong, inactive or expired key) or 403 (it lacks
    `missing_scope`); `message` is Korean with an English gloss, for the JSON error."""

    def __init__(self, status: int, message: str, *, missing_scope: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.missing_scope = missing_scope


def api_token_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@transaction.atomic
def api_token_create(
    *, name: str, user, scopes: Collection[str], lifetime: timedelta | None
) -> tuple[ApiToken, str]:
    """A new token for `user` allowed `scopes`, expiring after `lifetime` (None: never); the key is
    returned once and only its hash is kept."""
    name = name.strip()
    if not name:
        raise ValidationError("토큰 이름이 필요합니다 (name required)")
    unknown = sorted(set(scopes) - set(ApiToken.Scope.values))
    if unknown or not scopes:
        allowed = ", ".join(ApiToken.Scope.values)
        raise ValidationError(f"권한(scope)은 {allowed} 중에서 하나 이상 고르세요 (unknown or no scope: {unknown})")
    if lifetime is not None and lifetime <= timedelta(0):
        raise ValidationError("유효 기간은 0보다 길어야 합니다 (lifetime must be positive)")
    key = "pm_" + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        name=name[:80], key_hash=api_token_hash(key), prefix=key[:8], user=user,
        scopes=[s for s in ApiToken.Scope.values if s in set(scopes)],
        expires_at=timezone.now() + lifetime if lifetime is not None else None,
    )
    return token, key


def api_token_authenticate(*, key: str, scope: str) -> ApiToken:
    """The active token with this key (of an active user), unexpired and allowed `scope`, stamping its
    last use. Raises ApiTokenRefused otherwise; nothing is stamped then."""
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=api_token_hash(key), active=True, user__is_active=True)
        .first()
        if key
        else None
    )
    if token is None:
        raise ApiTokenRefused(401, INVALID)
    now = timezone.now()
    if token.expires_at is not None and token.expires_at <= now:
        when = timezone.localtime(token.expires_at).strftime("%Y-%m-%d %H:%M")
        raise ApiTokenRefused(
            401, f"토큰이 {when}에 만료되었습니다. 관리자에게 새 토큰을 받으세요 (token expired at {when})"
        )
    if scope not in token.scopes:
        label = ApiToken.Scope(scope).label
        raise ApiTokenRefused(
            403,
            f"이 토큰에는 '{scope}' 권한({label})이 없습니다 (token lacks the '{scope}' scope)",
            missing_scope=scope,
        )
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    token.last_used_at = now
    return token
