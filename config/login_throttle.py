"""The page a login locked by django-axes answers with (settings.AXES_LOCKOUT_CALLABLE).

Axes counts failed logins per username and address (settings.AXES_LOCKOUT_PARAMETERS); once
AXES_FAILURE_LIMIT is reached, every further attempt from there, right password or not, gets this page
until AXES_COOLOFF_TIME has passed since the last one. The app's login and the Django admin's both use it.
"""
from __future__ import annotations

import math
from typing import Any

from axes.helpers import get_cool_off, get_failure_limit
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict[str, Any] | None = None
) -> HttpResponse:
    cool_off = get_cool_off(request)
    minutes = math.ceil(cool_off.total_seconds() / 60) if cool_off else None
    context = {"failure_limit": get_failure_limit(request, credentials), "minutes": minutes}
    return render(request, "registration/lockout.html", context, status=settings.AXES_HTTP_RESPONSE_CODE)
