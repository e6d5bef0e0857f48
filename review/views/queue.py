"""The pair queue: one pair at a time under a lease, decide / skip / undo, heartbeats, the toolbar counts.

Renders whole on a normal request and as the ``#pair`` part when htmx asks; POSTs redirect without
JavaScript and otherwise return the next pair with an event (django-htmx's trigger_client_event).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import push_url, trigger_client_event

from config.http import HtmxHttpRequest
from config.roles import is_admin, reviewer_required
from matcher.models import Match
from review import selectors, services
from review.evidence import evidence_view, image_views, keypoint_overlay, record_of, title_segments
from review.models import Claim, RejectReason, ReviewDecision
from review.queue import BAND_CHOICES, Cursor, Direction, QueueFilters


def queue_url(filters: QueueFilters, **extra: Any) -> str:
    params = {**filters.as_dict(), **{k: v for k, v in extra.items() if v not in (None, "")}}
    return reverse("review:queue") + (f"?{urlencode(params)}" if params else "")


@dataclass
class PairView:
    """What the pair part renders; built from one Match row of selectors.pair_queryset."""

    match: Match
    claim_id: int
    claim_expires_at: Any
    evidence: Any
    ours: list
    theirs: list
    our_title: list
    their_title: list
    cursor: Cursor
    becomes_cheapest: bool
    cheapest_other_total: int | None
    keypoints: Any = None  # review.evidence.KeypointOverlay


def _pair_view(match: Match) -> PairView:
    ev = evidence_view(record_of(match))
    product, listing = match.product, match.listing
    pns = [p for p in (product.product_number, listing.product_number) if p]
    cheapest = getattr(match, "cheapest_other_total", None)
    ours = image_views(getattr(match, "our_images", None), ev.best_ours)
    theirs = image_views(getattr(match, "their_images", None), ev.best_theirs)
    return PairView(
        match=match,
        claim_id=getattr(match, "claim_id", 0),
        claim_expires_at=getattr(match, "claim_expires_at", None),
        evidence=ev,
        ours=ours,
        theirs=theirs,
        keypoints=keypoint_overlay(ev.record, ours, theirs),
        our_title=title_segments(product.title, product_numbers=pns, conflict_terms=ev.conflict_terms_ours),
        their_title=title_segments(
            listing.title, product_numbers=pns, conflict_terms=ev.conflict_terms_theirs
        ),
        cursor=Cursor.of(match),
        becomes_cheapest=cheapest is None or listing.total_price < cheapest,
        cheapest_other_total=cheapest,
    )


def _pair_context(
    request: HttpRequest,
    match: Match | None,
    filters: QueueFilters,
    notice: str = "",
    notice_level: str = "info",
) -> dict[str, Any]:
    return {
        "pair": _pair_view(match) if match is not None else None,
        "filters": filters,
        "filter_query": filters.as_query(),
        "band_choices": BAND_CHOICES,
        "reasons": list(enumerate(RejectReason, start=1)),
        "notice": notice,
        "notice_level": notice_level,
        "queue_url": queue_url(filters),
        "is_admin": is_admin(request.user),
    }


def _render_pair(
    request: HtmxHttpRequest,
    match: Match | None,
    filters: QueueFilters,
    *,
    notice: str = "",
    notice_level: str = "info",
    trigger: dict[str, Any] | None = None,
) -> HttpResponse:
    context = _pair_context(request, match, filters, notice, notice_level)
    if request.htmx:
        response = render(request, "review/queue.html#pair", context)
        # Keep the address bar on a URL that reopens this very pair (a reload keeps the reviewer's lease).
        push_url(response, queue_url(filters, match=match.pk if match else None))
        for event, params in (trigger or {}).items():
            trigger_client_event(response, event, params)
        return response
    if notice:
        context["page_notice"] = notice
    return render(request, "review/queue.html", context)


@require_GET
@reviewer_required
def queue(request: HtmxHttpRequest) -> HttpResponse:
    """The pair queue: the pair this reviewer holds, a given pair (?match=), or the next/previous (J/K)."""
    filters = QueueFilters.from_data(request.GET)
    cursor = Cursor.parse(request.GET.get("after"))
    direction: Direction = "prev" if request.GET.get("dir") == "prev" else "next"
    notice = ""
    match_id = None
    try:
        match_id = int(request.GET["match"]) if request.GET.get("match") else None
    except ValueError:
        match_id = None
    match = services.claim_pair(
        user=request.user, filters=filters, cursor=cursor, direction=direction, match_id=match_id
    )
    if match is None and match_id is not None:
        notice = "그 항목은 다른 검토자가 검토 중이거나 이미 처리되었습니다. 다음 항목을 불러왔습니다."
        match = services.claim_pair(user=request.user, filters=filters)
    elif match is None and cursor is not None:
        notice = "더 이상 다음 항목이 없습니다." if direction == "next" else "처음 항목입니다."
        match = services.claim_pair(user=request.user, filters=filters, match_id=cursor.match_id)
    return _render_pair(request, match, filters, notice=notice)


def post_filters(request: HttpRequest) -> QueueFilters:
    """The queue filters a POST carries (a ``filters`` query string, or the fields themselves)."""
    return QueueFilters.from_data(
        request.POST if "filters" not in request.POST else dict(parse_qsl(request.POST["filters"]))
    )


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _after_post(
    request: HtmxHttpRequest,
    filters: QueueFilters,
    *,
    notice: str,
    level: str,
    trigger: dict,
    match: Match | None = None,
    cursor: Cursor | None = None,
) -> HttpResponse:
    """Show the next pair (auto-advance) or, without htmx, redirect to the queue."""
    if not request.htmx:
        getattr(messages, level if level in ("success", "error", "info", "warning") else "info")(
            request, notice
        )
        return HttpResponseRedirect(queue_url(filters, match=match.pk if match else None))
    if match is None:
        # Auto-advance: the pair after the one just decided, then from the top; never one skipped today.
        match = (
            services.claim_pair(user=request.user, filters=filters, cursor=cursor, exclude_skipped=True)
            if cursor
            else None
        )
        if match is None:
            match = services.claim_pair(user=request.user, filters=filters)
    return _render_pair(request, match, filters, notice=notice, notice_level=level, trigger=trigger)


@require_POST
@reviewer_required
def decide(request: HtmxHttpRequest, match_id: int) -> HttpResponse:
    """Approve, reject (with reason) or skip one pair, then advance to the next."""
    filters = post_filters(request)
    action = request.POST.get("action", "")
    claim_id = _int(request.POST.get("claim"))
    cursor = Cursor.parse(request.POST.get("cursor"))
    if action == ReviewDecision.Action.SKIP:
        services.decision_skip(user=request.user, match_id=match_id, claim_id=claim_id)
        return _after_post(
            request,
            filters,
            notice="건너뛰었습니다.",
            level="info",
            trigger={"review:skipped": {"match": match_id}},
            cursor=cursor,
        )
    try:
        decision = services.decision_record(
            user=request.user,
            match_id=match_id,
            action=action,
            claim_id=claim_id,
            reason=request.POST.get("reason", ""),
            note=request.POST.get("note", ""),
        )
    except services.ReviewRefused as refused:
        if claim_id:
            services.claim_release(user=request.user, claim_id=claim_id)
        return _after_post(
            request,
            filters,
            notice=refused.messages[0],
            level="error",
            trigger={"review:refused": {"match": match_id}},
            cursor=cursor,
        )
    if decision.action == ReviewDecision.Action.APPROVE:
        notice = "승인했습니다 (같은 상품). U 키로 되돌릴 수 있습니다."
    else:
        notice = f"제외했습니다 — {decision.get_reason_display()}. U 키로 되돌릴 수 있습니다."
    return _after_post(
        request,
        filters,
        notice=notice,
        level="success",
        cursor=cursor,
        trigger={"review:decided": {"match": match_id, "action": decision.action}},
    )


@require_POST
@reviewer_required
def undo(request: HtmxHttpRequest) -> HttpResponse:
    filters = post_filters(request)
    try:
        row = services.decision_undo(user=request.user)
    except services.ReviewRefused as refused:
        return _after_post(
            request, filters, notice=refused.messages[0], level="error", trigger={"review:refused": {}}
        )
    # decision_undo returns the undo row with its pair and the reviewer's new lease on it.
    assert row.match_id is not None and row.claim is not None
    match = selectors.pair_for_display(match_id=row.match_id)
    if match is not None:
        services.claim_attach(match, claim_id=row.claim.pk, expires_at=row.claim.expires_at)
    return _after_post(
        request,
        filters,
        notice="마지막 결정을 되돌렸습니다. 다시 결정해 주세요.",
        level="info",
        trigger={"review:undone": {"match": row.match_id}},
        match=match,
    )


@require_POST
@reviewer_required
def claim_renew(request: HttpRequest, claim_id: int) -> HttpResponse:
    """Heartbeat of an open pair page; idle tabs stop renewing so their pair frees itself."""
    ok = services.claim_renew(user=request.user, claim_id=claim_id)
    if ok:
        return HttpResponse(status=204)
    return trigger_client_event(HttpResponse(), "review:claimLost", {"claim": claim_id})


@require_POST
@reviewer_required
def claim_release(request: HtmxHttpRequest, claim_id: int) -> HttpResponse:
    services.claim_release(user=request.user, claim_id=claim_id, reason=Claim.Release.CLOSED)
    if request.htmx:
        return HttpResponse(status=204)
    return HttpResponseRedirect(reverse("review:list"))


@require_GET
@reviewer_required
def summary(request: HtmxHttpRequest) -> HttpResponse:
    filters = QueueFilters.from_data(request.GET)
    context = {
        "summary": selectors.queue_summary(user=request.user, filters=filters),
        "paused": selectors.auto_pricing_paused(),
        "filters": filters,
    }
    return render(
        request, "review/queue.html#summary" if request.htmx else "review/summary_page.html", context
    )
