"""Pages of the matcher app."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from matcher import selectors


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "matcher/home.html", {"summary": selectors.dashboard_summary()})
