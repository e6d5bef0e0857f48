"""The SKU page, the hub from a price to its evidence: header, competitor listings (a reviewer overturns an
automatic match or a rejection there), proposals (admins decide them there), history on a time axis.

An htmx GET of the page returns only its ``#live`` part: the page refreshes it after any decision taken
on it (the ``sku-changed`` event), so the price and history a reprice moved show without a reload.
POSTs redirect back to the page without JavaScript.
"""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event

from config.http import HtmxHttpRequest
from config.roles import forbidden, is_admin, is_merchandiser, reviewer_required
from config.spreadsheet import SafeWriter
from matcher.models import Match
from pricing import selectors, services, sku_page
from pricing.models import PriceProposal
from pricing.views import ADMINS_ONLY
from review import services as review_services
from review.models import RejectReason

SKU_CHANGED_EVENT = "sku-changed"


def _page_url(sku: str) -> str:
    return reverse("pricing:sku_history", args=[sku])


def _context(request: HttpRequest, page: sku_page.SkuPage, **extra: object) -> dict[str, object]:
    return {
        "page": page,
        "product": page.product,
        "can_review": is_merchandiser(request.user),
        "can_decide": is_admin(request.user),
        "reasons": RejectReason.choices,
        "review_url": reverse("review:queue"),
        "runs_url": reverse("pricing:index"),
        **extra,
    }


@require_GET
def sku_history(request: HtmxHttpRequest, sku: str) -> HttpResponse:
    """The SKU page (the URL keeps its old name: every link to a SKU's history lands here)."""
    page = sku_page.sku_page(sku)
    template = "pricing/sku.html#live" if request.htmx else "pricing/sku.html"
    return render(request, template, _context(request, page))


@require_POST
@reviewer_required
def listing_overturn(request: HtmxHttpRequest, match_id: int) -> HttpResponse:
    """Overturn an automatic match (→ rejected, with a reason) or a rejection (→ matched) through the
    review app's decision service; pricing re-prices through its receiver with the reviewer as actor."""
    match = get_object_or_404(Match.objects.select_related("product"), pk=match_id)
    error = ""
    try:
        decision = review_services.decision_overturn(
            user=request.user,
            match_id=match_id,
            action=request.POST.get("action", ""),
            reason=request.POST.get("reason", ""),
            note=request.POST.get("note", ""),
        )
    except review_services.ReviewRefused as refused:
        error = refused.messages[0]
    else:
        done = "매칭으로 확정했습니다" if decision.action == review_services.Action.APPROVE else (
            f"제외했습니다 — {decision.get_reason_display()}"
        )
    sku = match.product.sku
    if not request.htmx:
        if error:
            messages.error(request, error)
        else:
            messages.success(request, f"{done}. 가격을 다시 계산합니다.")
        return HttpResponseRedirect(_page_url(sku) + "#listings")
    rows = sku_page.listing_rows(match.product_id)
    row = next((r for r in rows if r.listing.pk == match.listing_id), None)
    context = {
        "row": row,
        "product": match.product,
        "can_review": True,
        "reasons": RejectReason.choices,
        "row_error": error,
        "row_notice": "" if error else f"{done}. 가격을 다시 계산합니다.",
    }
    response = render(request, "pricing/sku.html#listing-row", context)
    return response if error else trigger_client_event(response, SKU_CHANGED_EVENT)


@require_POST
@reviewer_required(reason=ADMINS_ONLY)
def proposal_decide(request: HtmxHttpRequest, proposal_id: int) -> HttpResponse:
    """Approve or reject one of the SKU's proposals from its page (the same services and rule as /pricing/)."""
    proposal = get_object_or_404(PriceProposal.objects.select_related("product"), pk=proposal_id)
    approve = request.POST.get("action") == "approve"
    error = notice = ""
    try:
        if approve:
            services.proposal_approve(proposal_id=proposal_id, user=request.user)
            notice = f"제안 #{proposal_id}을 적용했습니다."
        else:
            services.proposal_reject(proposal_id=proposal_id, user=request.user, note=request.POST.get("note", "")[:200])
            notice = f"제안 #{proposal_id}을 거절했습니다."
    except PriceProposal.DoesNotExist:
        error = "제안을 찾을 수 없습니다."
    except PermissionDenied as exc:  # not theirs to decide: the 403 page says why and who can
        return forbidden(request, str(exc))
    except ValidationError as exc:
        error = " ".join(exc.messages)
    sku = proposal.product.sku
    if not request.htmx:
        if error:
            messages.error(request, error)
        else:
            messages.success(request, notice)
        return HttpResponseRedirect(_page_url(sku) + "#proposals")
    page = sku_page.sku_page(sku)
    return render(request, "pricing/sku.html#live", _context(request, page, live_error=error, live_notice=notice))


HISTORY_CSV_HEADER = ["time", "event", "our_price", "old_price", "cheapest_competitor", "cheapest_mall", "by", "reason"]


@require_GET
def sku_history_csv(request: HttpRequest, sku: str) -> HttpResponse:
    history = selectors.sku_history(sku)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="price-history-{history.product.pk}.csv"'
    response.write("\ufeff")  # Excel opens UTF-8 Korean correctly only with a BOM
    writer = SafeWriter(response)
    writer.writerow(HISTORY_CSV_HEADER)
    for p in history.points:
        writer.writerow(
            [
                timezone.localtime(p.at).isoformat(),
                p.kind,
                p.our_price,
                p.old_price,
                p.competitor,
                p.mall,
                p.who,
                p.reason.replace("\n", " / "),
            ]
        )
    return response
