"""Who may do what. Two roles, as auth groups (created by matcher migration 0002):

- ``admin``: everything a merchandiser may, plus thresholds, QC settings, match runs and price
  decisions. Superusers count as admins.
- ``merchandiser``: reviews pairs, reads runs and prices.

Views take `admin_required` / `reviewer_required`; templates read ``is_admin_user`` (context
processor). Someone without the role gets templates/403.html in Korean with the reason and a link
home (a one-line part when htmx asked), never a redirect to the login page they are already past.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

ADMIN = "admin"
MERCHANDISER = "merchandiser"
ROLE_GROUPS = (ADMIN, MERCHANDISER)

ADMIN_ONLY = "관리자만 할 수 있는 작업입니다."
REVIEWERS_ONLY = "검토 권한이 없습니다. 검토자(머천다이저) 또는 관리자 계정으로 로그인해 주세요."

_CACHE_ATTR = "_pricematch_role"  # one query per request however often a page asks
_NO_ROLE = ""

View = Callable[..., HttpResponse]


def role(user: Any) -> str | None:
    """``"admin"``, ``"merchandiser"`` or None; one query per user object (none for superusers)."""
    if user is None or not user.is_authenticated:
        return None
    if user.is_superuser:
        return ADMIN
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is None:
        names = set(user.groups.filter(name__in=ROLE_GROUPS).values_list("name", flat=True))
        cached = ADMIN if ADMIN in names else MERCHANDISER if MERCHANDISER in names else _NO_ROLE
        setattr(user, _CACHE_ATTR, cached)
    return cached or None


def is_admin(user: Any) -> bool:
    return role(user) == ADMIN


def is_merchandiser(user: Any) -> bool:
    """May review pairs: a merchandiser, or an admin (who may do everything a merchandiser may)."""
    return role(user) is not None


def forbidden(request: HttpRequest, reason: str) -> HttpResponse:
    """The 403 answer: the whole Korean page, or only its message when htmx asked for a part."""
    template = "403.html#message" if getattr(request, "htmx", False) else "403.html"
    return render(request, template, {"reason": reason}, status=403)


def _requiring(allowed: Callable[[Any], bool], reason: str, view: View | None) -> Any:
    def wrap(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not allowed(request.user):
                return forbidden(request, reason)
            return view(request, *args, **kwargs)

        return wrapped

    return wrap(view) if view is not None else wrap


def admin_required(view: View | None = None, *, reason: str = ADMIN_ONLY) -> Any:
    """`@admin_required` or `@admin_required(reason="…")`: admins only, else the 403 page."""
    return _requiring(is_admin, reason, view)


def reviewer_required(view: View | None = None, *, reason: str = REVIEWERS_ONLY) -> Any:
    """`@reviewer_required`: merchandisers and admins, else the 403 page."""
    return _requiring(is_merchandiser, reason, view)
