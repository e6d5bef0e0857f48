"""The Django admin site: staff only, and a logged-in user who is not staff is told so in Korean.

Django's own site sends everyone without `is_staff` to its login form, even a merchandiser who is
already logged in and only pressed an admin action: they would sign in again and meet the same form.
Here they get templates/403.html with the reason; anonymous visitors still go to the login form.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import update_wrapper
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers

from config.roles import forbidden

STAFF_ONLY = "관리 화면(Django admin)은 스태프 권한이 있는 관리자만 쓸 수 있습니다 (staff only)."


class AdminSite(admin.AdminSite):
    """Django's site, with `admin_view` refusing a logged-in non-staff user with the 403 page."""

    def admin_view(self, view: Callable[..., Any], cacheable: bool = False) -> Any:
        guarded = super().admin_view(view, cacheable)

        def inner(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            # Logging out stays open to everyone (Django sends a non-staff user to the index, here the 403).
            if (
                request.user.is_authenticated
                and not self.has_permission(request)
                and request.path != reverse("admin:logout", current_app=self.name)
            ):
                response = forbidden(request, STAFF_ONLY)
                add_never_cache_headers(response)
                return response
            return guarded(request, *args, **kwargs)

        return update_wrapper(inner, view)
