"""The alerts' pages: the bell's count (loaded by htmx into the top bar) and the list, with acknowledging.

Merchandisers and admins see and acknowledge alerts; admins also get a link to the rules in the admin.
"""
from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event

from config.http import HtmxHttpRequest
from config.roles import is_admin, reviewer_required
from pricing.alerts import selectors, services
from pricing.alerts.models import Alert

CHANGED_EVENT = "alerts-changed"


def _list_url(state: str, page: int | None = None) -> str:
    query = {k: v for k, v in (("state", state if state == selectors.ALL else ""), ("page", page or "")) if v}
    base = reverse("pricing:alerts")
    return f"{base}?{urlencode(query)}" if query else base


@require_GET
@reviewer_required
def alerts_page(request: HtmxHttpRequest) -> HttpResponse:
    """Open alerts (or all, newest first) with who acknowledged them; htmx swaps only the list."""
    state = selectors.ALL if request.GET.get("state") == selectors.ALL else selectors.OPEN
    page = selectors.alerts_page(state, request.GET.get("page"))
    context = {
        "page": page,
        "state": state,
        "open_url": _list_url(selectors.OPEN),
        "all_url": _list_url(selectors.ALL),
        "prev_url": _list_url(state, page.previous_page_number()) if page.has_previous() else "",
        "next_url": _list_url(state, page.next_page_number()) if page.has_next() else "",
        "rules": list(selectors.alert_rules().values()),
        "can_edit_rules": is_admin(request.user),
        "unacknowledged": selectors.alerts_unacknowledged_count(),
    }
    template = "pricing/alerts.html#list" if request.htmx else "pricing/alerts.html"
    return render(request, template, context)


@require_GET
@reviewer_required
def alerts_bell(request: HtmxHttpRequest) -> HttpResponse:
    """The top bar's bell: the number of open alerts nobody acknowledged. Without htmx, the list page."""
    if not request.htmx:
        return HttpResponseRedirect(reverse("pricing:alerts"))
    return render(request, "pricing/alerts.html#bell", {"unacknowledged": selectors.alerts_unacknowledged_count()})


@require_POST
@reviewer_required
def alert_acknowledge(request: HtmxHttpRequest, alert_id: int) -> HttpResponse:
    get_object_or_404(Alert, pk=alert_id)
    services.alert_acknowledge(alert_id=alert_id, user=request.user)
    if request.htmx:
        response = render(request, "pricing/alerts.html#row", {"alert": selectors.alert_row(alert_id)})
        return trigger_client_event(response, CHANGED_EVENT)
    messages.success(request, f"알림 #{alert_id}을 확인했습니다.")
    return HttpResponseRedirect(reverse("pricing:alerts"))
