"""Quality control (admins): the QC estimate and settings, drawing a sample; reviewer stats."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from config.roles import admin_required, is_admin, reviewer_required
from review import selectors, services
from review.models import AuditSampleDraw

ADMINS_ONLY = "품질 관리는 관리자만 볼 수 있습니다."


@admin_required(reason=ADMINS_ONLY)
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
@admin_required(reason=ADMINS_ONLY)
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
    admin = is_admin(request.user)
    only = None if admin else request.user.pk
    return render(
        request,
        "review/stats.html",
        {
            "rows": selectors.reviewer_stats(days=days, user_id=only),
            "days": days,
            "is_admin": admin,
        },
    )
