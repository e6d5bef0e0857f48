"""Pages of the review app: the pair queue, the list with bulk decisions, calibration, QC and stats.

Every page renders whole on a normal request and as a {% partialdef %} part when htmx asks; POSTs
redirect without JavaScript and return the updated part plus an HX-Trigger event with it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import wraps
from typing import Any, Callable
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from matcher.models import Match
from review import selectors, services
from review.evidence import evidence_view, image_views, keypoint_overlay, record_of, title_segments
from review.models import AuditSampleDraw, Claim, RejectReason, ReviewDecision, ThresholdChange
from review.queue import BAND_CHOICES, Cursor, QueueFilters


def _role_required(admin: bool = False) -> Callable:
    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            role = selectors.review_role(request.user)
            if role is None or (admin and role != "admin"):
                raise PermissionDenied("검토 권한이 없습니다." if not admin else "관리자만 볼 수 있습니다.")
            request.review_role = role  # type: ignore[attr-defined]
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


reviewer_required = _role_required()
admin_required = _role_required(admin=True)


def _queue_url(filters: QueueFilters, **extra: Any) -> str:
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
        "queue_url": _queue_url(filters),
        "is_admin": getattr(request, "review_role", "") == "admin",
    }


def _render_pair(
    request: HttpRequest,
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
        response["HX-Push-Url"] = _queue_url(filters, match=match.pk if match else None)
        if trigger:
            response["HX-Trigger"] = json.dumps(trigger)
        return response
    if notice:
        context["page_notice"] = notice
    return render(request, "review/queue.html", context)


@require_GET
@reviewer_required
def queue(request: HttpRequest) -> HttpResponse:
    """The pair queue: the pair this reviewer holds, a given pair (?match=), or the next/previous (J/K)."""
    filters = QueueFilters.from_data(request.GET)
    cursor = Cursor.parse(request.GET.get("after"))
    direction = "prev" if request.GET.get("dir") == "prev" else "next"
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


def _post_filters(request: HttpRequest) -> QueueFilters:
    return QueueFilters.from_data(
        request.POST if "filters" not in request.POST else _parse_qs(request.POST["filters"])
    )


def _parse_qs(value: str) -> dict[str, str]:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(value))


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _after_post(
    request: HttpRequest,
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
        return HttpResponseRedirect(_queue_url(filters, match=match.pk if match else None))
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
def decide(request: HttpRequest, match_id: int) -> HttpResponse:
    """Approve, reject (with reason) or skip one pair, then advance to the next."""
    filters = _post_filters(request)
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
def undo(request: HttpRequest) -> HttpResponse:
    filters = _post_filters(request)
    try:
        row = services.decision_undo(user=request.user)
    except services.ReviewRefused as refused:
        return _after_post(
            request, filters, notice=refused.messages[0], level="error", trigger={"review:refused": {}}
        )
    match = selectors.pair_for_display(match_id=row.match_id)
    if match is not None:
        match.claim_id, match.claim_expires_at = row.claim_id, row.claim.expires_at
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
    response = HttpResponse(status=204 if ok else 200)
    if not ok:
        response["HX-Trigger"] = json.dumps({"review:claimLost": {"claim": claim_id}})
    return response


@require_POST
@reviewer_required
def claim_release(request: HttpRequest, claim_id: int) -> HttpResponse:
    services.claim_release(user=request.user, claim_id=claim_id, reason=Claim.Release.CLOSED)
    if request.htmx:
        return HttpResponse(status=204)
    return HttpResponseRedirect(reverse("review:list"))


@require_GET
@reviewer_required
def price_preview(request: HttpRequest, match_id: int) -> HttpResponse:
    """The price we would set if this pair were approved (pricing.services.price_preview), loaded lazily."""
    match = Match.objects.select_related("product", "listing").filter(pk=match_id).first()
    preview = None
    if match is not None:
        try:
            from pricing.services import price_preview as pricing_preview
        except ImportError:
            pricing_preview = None
        if pricing_preview is not None:
            try:
                preview = pricing_preview(product=match.product, listing=match.listing)
            except Exception:  # advice only: the reviewer still decides without it
                preview = None
    context = {"preview": preview, "match": match}
    template = "review/queue.html#price" if request.htmx else "review/price_page.html"
    return render(request, template, context)


@require_GET
@reviewer_required
def summary(request: HttpRequest) -> HttpResponse:
    filters = QueueFilters.from_data(request.GET)
    context = {
        "summary": selectors.queue_summary(user=request.user, filters=filters),
        "paused": selectors.auto_pricing_paused(),
        "filters": filters,
    }
    return render(
        request, "review/queue.html#summary" if request.htmx else "review/summary_page.html", context
    )


# --- List view and bulk decisions ----------------------------------------------------------------


@require_GET
@reviewer_required
def pair_list(request: HttpRequest) -> HttpResponse:
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
        "is_admin": request.review_role == "admin",
        "next_url": reverse("review:list")
        + "?"
        + urlencode({**filters.as_dict(), "after": str(page.next_cursor)})
        if page.next_cursor
        else "",
    }
    return render(request, "review/list.html#rows" if request.htmx else "review/list.html", context)


@require_POST
@reviewer_required
def bulk(request: HttpRequest) -> HttpResponse:
    """Bulk approve/reject: first a confirmation, then (confirm=1) the decisions."""
    filters = _post_filters(request)
    ids = [i for i in (_int(v) for v in request.POST.getlist("ids")) if i is not None]
    action = request.POST.get("action", "")
    reason = request.POST.get("reason", "")
    note = request.POST.get("note", "")
    context: dict[str, Any] = {
        "filters": filters,
        "filter_query": filters.as_query(),
        "ids": ids,
        "action": action,
        "reason": reason,
        "note": note,
        "reason_label": RejectReason(reason).label if reason in RejectReason.values else "",
        "list_url": reverse("review:list") + (f"?{filters.as_query()}" if filters.active else ""),
    }
    error = ""
    if not ids:
        error = "처리할 항목을 선택해 주세요."
    elif action not in (ReviewDecision.Action.APPROVE, ReviewDecision.Action.REJECT):
        error = "승인 또는 제외를 골라 주세요."
    elif action == ReviewDecision.Action.REJECT and reason not in RejectReason.values:
        error = "제외 사유를 골라 주세요."
    if error:
        context["error"] = error
        return render(
            request,
            "review/bulk.html#confirm" if request.htmx else "review/bulk.html",
            context,
            status=200 if request.htmx else 400,
        )
    if request.POST.get("confirm") != "1":
        return render(request, "review/bulk.html#confirm" if request.htmx else "review/bulk.html", context)
    try:
        result = services.decisions_bulk(
            user=request.user, match_ids=ids, action=action, reason=reason, note=note
        )
    except services.ReviewRefused as refused:
        context["error"] = refused.messages[0]
        return render(request, "review/bulk.html#confirm" if request.htmx else "review/bulk.html", context)
    label = "승인" if action == ReviewDecision.Action.APPROVE else "제외"
    text = f"{len(result.done)}건을 {label} 처리했습니다."
    if result.refused:
        text += f" {len(result.refused)}건은 처리하지 않았습니다 (다른 검토자 검토 중이거나 이미 결정됨)."
    messages.success(request, text)
    target = context["list_url"]
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = target
        return response
    return HttpResponseRedirect(target)


# --- Calibration, QC, stats (admins) --------------------------------------------------------------


def _threshold_inputs(
    data: Any, default_auto: Decimal, default_review: Decimal
) -> tuple[Decimal, Decimal, str]:
    error = ""
    try:
        auto = Decimal(str(data.get("auto", default_auto)).strip())
        review = Decimal(str(data.get("review", default_review)).strip())
    except (InvalidOperation, ValueError):
        return default_auto, default_review, "기준값은 0과 1 사이의 숫자여야 합니다."
    if not (Decimal("0") < review <= auto <= Decimal("1")):
        error = "0 < 검토 기준 ≤ 자동 매칭 기준 ≤ 1 이어야 합니다."
    return auto, review, error


@require_GET
@admin_required
def calibration(request: HttpRequest) -> HttpResponse:
    from matcher.services import thresholds_active

    active = thresholds_active()
    bands = selectors.calibration_bands()
    auto, review, error = _threshold_inputs(request.GET, active.auto_threshold, active.review_threshold)
    sim = (
        None
        if error
        else selectors.threshold_simulation(auto_threshold=auto, review_threshold=review, bands=bands)
    )
    context = {
        "active": active,
        "bands": [b for b in bands if b.decided or b.pairs],
        "sim": sim,
        "auto": auto,
        "review": review,
        "error": error,
        "buckets": [(b.value, b.label) for b in Match.Bucket],
        "changes": []
        if request.htmx
        else list(ThresholdChange.objects.select_related("threshold_set", "previous", "user")[:10]),
    }
    if request.htmx:
        return render(request, "review/calibration.html#simulation", context)
    return render(request, "review/calibration.html", context)


@require_POST
@admin_required
def thresholds_save(request: HttpRequest) -> HttpResponse:
    try:
        change = services.thresholds_save(
            user=request.user,
            auto_threshold=request.POST.get("auto", ""),
            review_threshold=request.POST.get("review", ""),
            note=request.POST.get("note", ""),
        )
    except ValidationError as refused:  # ours and matcher.services' both carry a Korean message
        messages.error(request, refused.messages[0])
        return HttpResponseRedirect(reverse("review:calibration"))
    messages.success(
        request,
        f"새 기준 v{change.threshold_set.version}을 저장했습니다 "
        f"(자동 ≥ {change.threshold_set.auto_threshold}, "
        f"검토 ≥ {change.threshold_set.review_threshold}). 다음 매칭 실행부터 적용됩니다.",
    )
    return HttpResponseRedirect(reverse("review:calibration"))


@admin_required
def quality(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        try:
            services.review_settings_update(
                user=request.user,
                audit_share=Decimal(request.POST.get("audit_share_pct", "0") or "0") / 100,
                precision_target=request.POST.get("precision_target", ""),
                min_audit_sample=request.POST.get("min_audit_sample", ""),
                confidence_level=request.POST.get("confidence_level", ""),
                qc_window_days=request.POST.get("qc_window_days", ""),
                audit_max_per_draw=request.POST.get("audit_max_per_draw", ""),
            )
            messages.success(request, "품질 관리 설정을 저장했습니다.")
        except (services.ReviewRefused, InvalidOperation) as refused:
            messages.error(request, getattr(refused, "messages", ["숫자를 입력해 주세요."])[0])
        return HttpResponseRedirect(reverse("review:quality"))
    cfg = selectors.review_settings()
    context = {
        "qc": selectors.qc_estimate(),
        "cfg": cfg,
        "audit_share_pct": (cfg.audit_share * 100).normalize(),
        "draws": list(AuditSampleDraw.objects.select_related("user")[:5]),
    }
    return render(request, "review/quality.html", context)


@require_POST
@admin_required
def audit_draw(request: HttpRequest) -> HttpResponse:
    draw = services.audit_sample_draw(user=request.user)
    messages.success(
        request,
        f"감사 표본 {draw.sampled_auto + draw.sampled_reject}건을 대기열에 넣었습니다 "
        f"(자동 매칭 {draw.sampled_auto}, 자동 제외 {draw.sampled_reject} / 후보 {draw.candidates}).",
    )
    return HttpResponseRedirect(reverse("review:quality"))


@require_GET
@reviewer_required
def stats(request: HttpRequest) -> HttpResponse:
    try:
        days = max(1, min(90, int(request.GET.get("days", "7"))))
    except ValueError:
        days = 7
    only = None if request.review_role == "admin" else request.user.pk
    return render(
        request,
        "review/stats.html",
        {
            "rows": selectors.reviewer_stats(days=days, user_id=only),
            "days": days,
            "is_admin": request.review_role == "admin",
        },
    )
