"""Error answers the project shapes itself (settings.DEBUG off; urls.py names them as handlers).

A 404 to an htmx request is a one-line Korean part aimed at the page's `#htmx-error` area (base.html),
not the full 404 page swapped into a table row; static/js/htmx-errors.js lets htmx swap it.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views import defaults
from django_htmx.http import reswap, retarget

HTMX_ERROR_TARGET = "#htmx-error"


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if getattr(request, "htmx", False):
        response = render(request, "404.html#message", status=404)
        return retarget(reswap(response, "innerHTML"), HTMX_ERROR_TARGET)
    return defaults.page_not_found(request, exception)
