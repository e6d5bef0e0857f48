"""What every page shows about pricing: whether an admin has stopped automatic price changes."""
from __future__ import annotations

from django.http import HttpRequest

from pricing.services import auto_pricing_halt_current


def auto_pricing_halt(request: HttpRequest) -> dict:
    """1 query for a signed-in user; nothing for the login page."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    return {"pricing_halt": auto_pricing_halt_current()}
