"""The list of queued pairs (keyset pages) and bulk approve/reject with a confirmation step."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from config.http import HtmxHttpRequest
from config.roles import is_admin, reviewer_required
from review import selectors, services
from review.forms import BulkDecisionForm
from review.models import Claim, RejectReason, ReviewDecision
from review.queue import BAND_CHOICES, Cursor, QueueFilters
from review.views.queue import post_filters


@require_GET
@reviewer_required
def pair_list(request: HtmxHttpRequest) -> HttpResponse:
    filters = QueueFilters.from_data(request.GET)
    # Leaving the single-pair view: free the pair this reviewer held so a colleague can take it.
    services.claim_release(user=request.user, reason=Claim.Release.NAVIGATED)
    page = selectors.queue_list(
        user=request.user, filters=filters, cursor=Cursor.parse(request.GET.get("after"))
    )
    context = {
        "page": page,
        "filters": filters,
        "filter_query": filters.as_query(),
        "band_choices": BAND_CHOICES,
        "reasons": list(enumerate(RejectReason, start=1)),
        "is_admin": is_admin(request.user),
        "next_url": reverse("review:list")
        + "?"
        + urlencode({**filters.as_dict(), "after": str(page.next_cursor)})
        if page.next_cursor
        else "",
    }
    return render(request, "review/list.html#rows" if request.htmx else "review/list.html", context)


@require_POST
@reviewer_required
def bulk(request: HtmxHttpRequest) -> HttpResponse:
    """Bulk approve/reject: first a confirmation, then (confirm=1) the decisions."""
    filters = post_filters(request)
    form = BulkDecisionForm(request.POST)
    valid = form.is_valid()
    sent = form.echo()
    context: dict[str, Any] = {
        "filters": filters,
        "filter_query": filters.as_query(),
        **sent,
        "reason_label": RejectReason(sent["reason"]).label if sent["reason"] in RejectReason.values else "",
        "list_url": reverse("review:list") + (f"?{filters.as_query()}" if filters.active else ""),
    }
    template = "review/bulk.html#confirm" if request.htmx else "review/bulk.html"
    if not valid:
        context["error"] = form.error
        return render(request, template, context, status=200 if request.htmx else 400)
    if not form.cleaned_data["confirm"]:
        return render(request, template, context)
    action = form.cleaned_data["action"]
    try:
        result = services.decisions_bulk(
            user=request.user,
            match_ids=sent["ids"],
            action=action,
            reason=sent["reason"],
            note=sent["note"],
        )
    except services.ReviewRefused as refused:
        context["error"] = refused.messages[0]
        return render(request, template, context)
    label = "승인" if action == ReviewDecision.Action.APPROVE else "제외"
    text = f"{len(result.done)}건을 {label} 처리했습니다."
    if result.refused:
        text += f" {len(result.refused)}건은 처리하지 않았습니다 (다른 검토자 검토 중이거나 이미 결정됨)."
    messages.success(request, text)
    target = context["list_url"]
    if request.htmx:
        return HttpResponseClientRedirect(target)
    return HttpResponseRedirect(target)
