"""GET /pricing/api/changes?since=24h: changed prices as JSON for the shop's upload automation.

Not a page: a bearer token with the ``export`` scope (matcher.models.ApiToken, stored as the SHA-256 of
the key) is the only credential, so the view skips LoginRequiredMiddleware and reads nothing before the
token checks out (matcher.api.bearer_token).
"""
from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from matcher.api import bearer_token
from matcher.models import ApiToken
from pricing import export, selectors


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status, json_dumps_params={"ensure_ascii": False})


@login_not_required
@require_GET
def changed_prices(request: HttpRequest) -> JsonResponse:
    token = bearer_token(request, scope=ApiToken.Scope.EXPORT, realm="pricing")
    if isinstance(token, JsonResponse):
        return token
    try:
        since = export.parse_since(request.GET.get("since", "24h"))
    except ValueError as exc:
        return _error(400, str(exc))
    rows = selectors.changed_prices_since(since)
    return JsonResponse(
        {"since": since.isoformat(), "count": len(rows), "prices": rows}, json_dumps_params={"ensure_ascii": False}
    )
