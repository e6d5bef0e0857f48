"""Pages of the pricing app: the catalogue, proposals waiting, recent changes with rollback (the SKU page is
in sku_views.py)."""
from __future__ import annotations

import logging
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event

from config.http import HtmxHttpRequest
from config.roles import admin_required, forbidden, is_admin, reviewer_required
from config.spreadsheet import SafeWriter
from matcher.causes import Cause, CauseKind
from matcher.models import Match
from pricing import catalogue, selectors, services
from pricing.dashboard import dashboard_figures
from pricing.models import PriceChange, PriceProposal, PricingRun

logger = logging.getLogger(__name__)

ADMINS_ONLY = "가격 변경은 관리자만 할 수 있습니다."

CHANGED_EVENT = "pricing-changed"


def _paused() -> bool:
    return services.auto_pricing_paused()


def _back(request: HttpRequest) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("pricing:index"))


@require_GET
def index(request: HtmxHttpRequest) -> HttpResponse:
    page = selectors.pending_proposals(request.GET.get("page"))
    if request.htmx and request.htmx.target == "pr-proposals":
        # After a decision (the "pricing-changed" event): the waiting list and its count, fresh.
        return render(request, "pricing/index.html#proposals", {"page": page, "can_decide": is_admin(request.user)})
    context = {
        "page": page,
        "changes": selectors.recent_changes(),
        "runs": selectors.recent_runs(),
        "can_decide": is_admin(request.user),
        "paused": _paused(),
    }
    return render(request, "pricing/index.html", context)


def _proposal_row(request: HttpRequest, proposal_id: int, error: str = "") -> HttpResponse:
    context = {"p": selectors.proposal_row(proposal_id), "can_decide": is_admin(request.user), "row_error": error}
    response = render(request, "pricing/index.html#proposal-row", context)
    return trigger_client_event(response, CHANGED_EVENT) if not error else response


@require_POST
@reviewer_required(reason=ADMINS_ONLY)
def proposal_approve(request: HtmxHttpRequest, proposal_id: int) -> HttpResponse:
    get_object_or_404(PriceProposal, pk=proposal_id)  # an unknown id is a 404, not a service error
    error = ""
    try:
        services.proposal_approve(proposal_id=proposal_id, user=request.user)
    except PermissionDenied as exc:  # not theirs to decide: the 403 page says why and who can
        return forbidden(request, str(exc))
    except ValidationError as exc:
        error = " ".join(exc.messages)
    if request.htmx:
        return _proposal_row(request, proposal_id, error)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"제안 #{proposal_id}을 적용했습니다.")
    return _back(request)


@require_POST
@reviewer_required(reason=ADMINS_ONLY)
def proposal_reject(request: HtmxHttpRequest, proposal_id: int) -> HttpResponse:
    get_object_or_404(PriceProposal, pk=proposal_id)
    error = ""
    try:
        services.proposal_reject(proposal_id=proposal_id, user=request.user, note=request.POST.get("note", "")[:200])
    except PermissionDenied as exc:
        return forbidden(request, str(exc))
    except ValidationError as exc:
        error = " ".join(exc.messages)
    if request.htmx:
        return _proposal_row(request, proposal_id, error)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"제안 #{proposal_id}을 거절했습니다.")
    return _back(request)


def _ids(values: list[str]) -> list[int]:
    out: list[int] = []
    for value in values:
        if value.isdigit():
            out.append(int(value))
    return out[:500]


@require_POST
@admin_required(reason=ADMINS_ONLY)
def proposals_bulk(request: HttpRequest) -> HttpResponse:
    """Two steps: the first POST shows what would happen; the second, with confirm=yes, does it."""
    ids = _ids(request.POST.getlist("ids"))
    action = request.POST.get("action")
    if action not in ("approve", "reject") or not ids:
        messages.error(request, "제안을 하나 이상 고르고 승인 또는 거절을 선택하세요.")
        return _back(request)
    if request.POST.get("confirm") != "yes":
        proposals = list(selectors.proposals_by_ids(ids))
        return render(request, "pricing/bulk_confirm.html", {"proposals": proposals, "action": action})
    result = services.proposals_decide_bulk(proposal_ids=ids, approve=action == "approve", user=request.user)
    verb = "적용" if action == "approve" else "거절"
    if result.done:
        messages.success(request, f"제안 {len(result.done)}개를 {verb}했습니다.")
    for pid, why in result.failed.items():
        messages.error(request, f"제안 #{pid}: {why}")
    return _back(request)


def _change_row(request: HttpRequest, change_id: int, error: str = "") -> HttpResponse:
    context = {"c": selectors.change_row(change_id), "can_decide": True, "row_error": error}
    response = render(request, "pricing/index.html#change-row", context)
    return trigger_client_event(response, CHANGED_EVENT) if not error else response


@require_POST
@admin_required(reason=ADMINS_ONLY)
def change_rollback(request: HtmxHttpRequest, change_id: int) -> HttpResponse:
    get_object_or_404(PriceChange, pk=change_id)
    error = ""
    try:
        services.change_rollback(change_id=change_id, user=request.user)
    except ValidationError as exc:
        error = " ".join(exc.messages)
    if request.htmx:
        return _change_row(request, change_id, error)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"변경 #{change_id}을 되돌렸습니다.")
    if _safe_next(request):
        return HttpResponseRedirect(request.POST["next"])
    return _back(request)


def _safe_next(request: HttpRequest) -> bool:
    nxt = request.POST.get("next", "")
    return bool(nxt) and url_has_allowed_host_and_scheme(nxt, allowed_hosts={request.get_host()})


@require_POST
@admin_required(reason=ADMINS_ONLY)
def run_rollback(request: HttpRequest, run_id: int) -> HttpResponse:
    get_object_or_404(PricingRun, pk=run_id)
    try:
        result = services.run_rollback(run_id=run_id, user=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"실행 #{run_id}: SKU {len(result.restored)}개의 가격을 되돌렸습니다.")
        for sku, why in result.skipped.items():
            messages.error(request, f"{sku}: {why}")
    return _back(request)


@require_POST
@admin_required(reason="자동 가격 변경 중지와 재개는 관리자만 할 수 있습니다.")
def halt(request: HttpRequest) -> HttpResponse:
    halted = request.POST.get("halted") == "1"
    try:
        services.auto_pricing_halt_set(halted=halted, user=request.user, reason=request.POST.get("reason", ""))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request,
            "자동 가격 변경을 중지했습니다. 새 변경은 모두 승인을 기다립니다." if halted else "자동 가격 변경을 다시 켰습니다.",
        )
    return HttpResponseRedirect(reverse("pricing:index") + "#pr-halt")


@require_POST
@admin_required(reason=ADMINS_ONLY)
def run_start(request: HttpRequest) -> HttpResponse:
    run = services.pricing_run_create(cause=Cause(CauseKind.FULL_RUN).text, product_ids=None, user=request.user)
    messages.success(request, f"실행 #{run.pk}: SKU {len(run.product_ids):,}개를 다시 계산합니다.")
    return _back(request)


@require_GET
@reviewer_required
def pair_price_preview(request: HtmxHttpRequest, match_id: int) -> HttpResponse:
    """The price we would set if this pair were approved, for the review page (loaded lazily by htmx;
    the same URL is a small page without JavaScript). Advice only: an error shows "—"."""
    match = Match.objects.select_related("product", "listing").filter(pk=match_id).first()
    preview = None
    if match is not None:
        try:
            preview = services.price_preview(product=match.product, listing=match.listing)
        except Exception:  # the reviewer still decides without it
            logger.exception("price preview failed for match %s", match_id)
    template = "pricing/pair_price_preview.html#price" if request.htmx else "pricing/pair_price_preview.html"
    return render(request, template, {"preview": preview, "match": match})


# --- the catalogue ---------------------------------------------------------------------------------


CATALOGUE_COLUMNS = [  # (sort key, header, numeric)
    ("sku", "SKU", False), ("title", "상품명", False), ("price", "우리 가격", True), ("floor", "하한가", True),
    ("cheapest", "최저 확정 경쟁가", True), ("gap", "차이", True), ("gap_pct", "차이 %", True),
    ("position", "위치", False), ("matched", "매칭·검토·제외", True), ("changed", "최근 변경", False),
]


@require_GET
@reviewer_required
def catalogue_page(request: HtmxHttpRequest) -> HttpResponse:
    """Every active SKU against its cheapest confirmed competitor; htmx swaps only the table."""
    filters = catalogue.CatalogueFilters.from_data(request.GET)
    result = catalogue.catalogue_page(filters, request.GET.get("page"))
    base = reverse("pricing:catalogue")

    def link(**changes: object) -> str:
        query = urlencode(filters.as_dict(**changes))
        return f"{base}?{query}" if query else base

    def page_link(number: int) -> str:
        query = urlencode({**filters.as_dict(), "page": number})
        return f"{base}?{query}"

    # Clicking the column sorted ascending sorts it descending; any other column starts ascending.
    columns = [
        {"key": key, "label": label, "num": num, "url": link(sort=f"-{key}" if filters.sort == key else key)}
        for key, label, num in CATALOGUE_COLUMNS
    ]
    page = result.page
    context = {
        "result": result,
        "filters": filters,
        "position_choices": catalogue.POSITION_CHOICES,
        "columns": columns,
        "sort_key": filters.sort.lstrip("-"),
        "sort_desc": filters.sort.startswith("-"),
        "prev_url": page_link(page.previous_page_number()) if page.has_previous() else "",
        "next_url": page_link(page.next_page_number()) if page.has_next() else "",
        "csv_url": reverse("pricing:catalogue_csv") + (f"?{urlencode(filters.as_dict())}" if filters.as_dict() else ""),
    }
    template = "pricing/catalogue.html#table" if request.htmx else "pricing/catalogue.html"
    return render(request, template, context)


CATALOGUE_CSV_HEADER = [
    "SKU", "품번", "브랜드", "카테고리", "상품명", "우리 가격", "하한가", "최저 확정 경쟁가", "경쟁 쇼핑몰",
    "가격 차이(원)", "가격 차이(%)", "위치", "경쟁가가 하한가 아래", "매칭", "검토 대기", "제외",
    "최근 변경 시각", "최근 변경 전", "최근 변경 후",
]


@require_GET
@reviewer_required
def catalogue_csv(request: HttpRequest) -> HttpResponse:
    """The filtered view, every page, through SafeWriter (a cell starting with = + - @ is neutralised).
    Rows are read 2,000 at a time (catalogue.catalogue_rows)."""
    filters = catalogue.CatalogueFilters.from_data(request.GET)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="catalogue-{stamp}.csv"'
    response.write("\ufeff")  # Excel opens UTF-8 Korean correctly only with a BOM
    writer = SafeWriter(response)
    writer.writerow(CATALOGUE_CSV_HEADER)
    for row in catalogue.catalogue_rows(filters):
        changed = timezone.localtime(row.last_change_at).isoformat() if row.last_change_at else None
        writer.writerow([
            row.sku, row.product_number, row.brand, row.category, row.title, row.price, row.floor,
            row.cheapest_total, row.cheapest_mall, row.gap, row.gap_pct_shown, row.position_label,
            "예" if row.below_floor else "", row.n_matched, row.n_pending, row.n_rejected,
            changed, row.last_change_old, row.last_change_new,
        ])
    return response


@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    """The home page: where our prices stand and what waits (pricing/dashboard.py)."""
    return render(request, "pricing/dashboard.html", {"d": dashboard_figures()})
