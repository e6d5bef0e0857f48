"""What every page shows about pricing: whether an admin has stopped automatic price changes, and the
alerts' bell (its count is loaded by htmx, so pages run no query for it)."""
from __future__ import annotations

from django.http import HttpRequest

from config.roles import is_merchandiser
from pricing.services import auto_pricing_halt_current


def auto_pricing_halt(request: HttpRequest) -> dict:
    """1 query for a signed-in user (the role is read once per request, by the pipeline status already);
    nothing for the login page."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    return {"pricing_halt": auto_pricing_halt_current(), "alerts_visible": is_merchandiser(request.user)}
