"""Calibration (admins): reviewer approval per confidence band, the threshold simulator and saving
a new threshold version."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from config.http import HtmxHttpRequest
from config.roles import admin_required
from matcher.models import Match, ThresholdSet
from matcher.services import thresholds_active
from review import selectors, services
from review.forms import ThresholdsForm

ADMINS_ONLY = "기준 보정은 관리자만 볼 수 있습니다."


@require_GET
@admin_required(reason=ADMINS_ONLY)
def calibration(request: HtmxHttpRequest) -> HttpResponse:
    active = thresholds_active()
    bands = selectors.calibration_bands()
    form = ThresholdsForm(
        {
            "auto": request.GET.get("auto", active.auto_threshold),
            "review": request.GET.get("review", active.review_threshold),
        }
    )
    sim, error = None, ""
    if form.is_valid():
        auto, review = form.cleaned_data["auto"], form.cleaned_data["review"]
        sim = selectors.threshold_simulation(auto_threshold=auto, review_threshold=review, bands=bands)
    else:
        # Echo what was typed (the inputs keep it); the simulator shows why it cannot run.
        auto, review, error = form.data["auto"], form.data["review"], form.error
    context = {
        "active": active,
        "bands": [b for b in bands if b.decided or b.pairs],
        "sim": sim,
        "auto": auto,
        "review": review,
        "error": error,
        "buckets": [(b.value, b.label) for b in Match.Bucket],
        # Every version, however saved (this page, the admin): who, when, before → after; the simulation
        # when it was saved here.
        "versions": []
        if request.htmx
        else list(ThresholdSet.objects.select_related("created_by", "review_change")[:10]),
    }
    if request.htmx:
        return render(request, "review/calibration.html#simulation", context)
    return render(request, "review/calibration.html", context)


@require_POST
@admin_required(reason=ADMINS_ONLY)
def thresholds_save(request: HttpRequest) -> HttpResponse:
    form = ThresholdsForm(request.POST)
    if not form.is_valid():
        messages.error(request, form.error)
        return HttpResponseRedirect(reverse("review:calibration"))
    try:
        change = services.thresholds_save(
            user=request.user,
            auto_threshold=form.cleaned_data["auto"],
            review_threshold=form.cleaned_data["review"],
            note=form.cleaned_data["note"],
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
