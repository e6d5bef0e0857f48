"""The scraper's JSON ingest endpoint: POST /matcher/api/listings with a bearer token of the ``ingest`` scope.

Not a page: no session, no CSRF token, no login redirect. The token is the only credential,
so the view is CSRF-exempt and skips LoginRequiredMiddleware, and nothing is read or written
before the token checks out.
"""
from __future__ import annotations

import json
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from matcher.models import ApiToken
from matcher.services import ApiTokenRefused, api_token_authenticate, listings_import_items


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status, json_dumps_params={"ensure_ascii": False})


def _bearer(request: HttpRequest) -> str:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


def bearer_token(request: HttpRequest, *, scope: str, realm: str) -> ApiToken | JsonResponse:
    """The request's bearer token if it may do `scope`, else the JSON refusal to return: 401 (with
    WWW-Authenticate) for a missing, wrong or expired key, 403 naming the scope the token lacks."""
    try:
        return api_token_authenticate(key=_bearer(request), scope=scope)
    except ApiTokenRefused as refused:
        body = {"error": refused.message}
        if refused.missing_scope is not None:
            body["missing_scope"] = refused.missing_scope
        response = JsonResponse(body, status=refused.status, json_dumps_params={"ensure_ascii": False})
        if refused.status == 401:
            response["WWW-Authenticate"] = f'Bearer realm="{realm}"'
        return response


@csrf_exempt
@login_not_required
@require_POST
def listings_ingest(request: HttpRequest) -> JsonResponse:
    token = bearer_token(request, scope=ApiToken.Scope.INGEST, realm="matcher")
    if isinstance(token, JsonResponse):
        return token

    limit = settings.INGEST_API_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _error(400, "잘못된 Content-Length")
    if declared > limit:
        return _error(413, f"요청이 너무 큽니다 (body larger than {limit} bytes)")
    # Read at most one byte past the limit: a body without an honest Content-Length is capped too.
    body = request.read(limit + 1)
    if len(body) > limit:
        return _error(413, f"요청이 너무 큽니다 (body larger than {limit} bytes)")

    try:
        # Decimal for floats so that a price sent as 129000.5 is refused rather than rounded.
        payload = json.loads(body.decode("utf-8"), parse_float=Decimal)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _error(400, "JSON 형식 오류 (body is not valid UTF-8 JSON)")
    except RecursionError:  # [[[[…]]]] nested deeper than the parser's stack; no listing is that deep
        return _error(400, "JSON이 너무 깊게 중첩되어 있습니다 (JSON nested too deeply)")
    if not isinstance(payload, dict) or not isinstance(payload.get("listings"), list):
        return _error(400, 'JSON 형식 오류 (expected {"listings": [ ... ]})')
    items = payload["listings"]
    max_items = settings.INGEST_API_MAX_ITEMS
    if len(items) > max_items:
        return _error(400, f"한 번에 최대 {max_items}개입니다 (at most {max_items} listings per request, got {len(items)})")

    report, outcomes = listings_import_items(items=items, user=token.user, source=f"api:{token.name}")
    results = []
    for index, outcome in enumerate(outcomes):
        result: dict[str, object] = {"index": index, "status": outcome.status}
        if outcome.object_id is not None:
            result["listing_id"] = outcome.object_id
        if outcome.errors:
            result["errors"] = outcome.errors
        if outcome.warnings:
            result["warnings"] = outcome.warnings
        results.append(result)
    return JsonResponse(
        {
            "report_id": report.pk,
            "created": report.created,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "failed": report.failed,
            "warned": report.warned,
            "results": results,
        },
        json_dumps_params={"ensure_ascii": False},
    )
