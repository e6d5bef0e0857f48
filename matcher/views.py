"""Pages of the matcher app: dashboard, match runs (live progress), reverse image search, imports."""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods, require_POST

from config.http import HtmxHttpRequest
from config.roles import admin_required
from matcher import images, ingest, selectors
from matcher.forms import ImageSearchForm, ImportUploadForm, UploadSizeLimit
from matcher.llm.spend import spend_for_run
from matcher.models import ImportReport, MatchRun, Product
from matcher.runs import match_run_resume, match_run_start
from matcher.search import search_by_image
from matcher.services import UploadTooLarge, import_upload_accept
from matcher.services.import_upload import size_label


def run_list(request: HttpRequest) -> HttpResponse:
    return render(request, "matcher/runs.html", {"runs": selectors.run_list()})


def run_detail(request: HtmxHttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(MatchRun, id=run_id)
    template = "matcher/run_detail.html#progress" if request.htmx else "matcher/run_detail.html"
    return render(
        request, template, {"run": run, "stages": selectors.run_stage_rows(run), "llm_spend": spend_for_run(run.id)}
    )


@require_POST
@admin_required(reason="매칭 실행은 관리자만 시작하거나 재개할 수 있습니다.")
def run_start(request: HttpRequest) -> HttpResponse:
    sku = request.POST.get("sku", "").strip()
    force = request.POST.get("force") == "1"
    product_ids = None
    if sku:
        product = Product.objects.filter(sku=sku).first()
        if product is None:
            messages.error(request, f"SKU를 찾을 수 없습니다: {sku}")
            return redirect("matcher:runs")
        product_ids = [product.id]
    run = match_run_start(product_ids=product_ids, force=force, user=request.user)
    return redirect("matcher:run_detail", run_id=run.id)


@require_POST
@admin_required(reason="매칭 실행은 관리자만 시작하거나 재개할 수 있습니다.")
def run_resume(request: HtmxHttpRequest, run_id: int) -> HttpResponse:
    """Re-enqueue what the run left and say what is still held, by whom, until when (htmx: the part)."""
    run = get_object_or_404(MatchRun, pk=run_id)
    result = match_run_resume(run_id=run_id)
    if request.htmx:
        return render(request, "matcher/run_detail.html#resume", {"run": run, "resume": result})
    first, *held = result.describe()
    # Nothing re-enqueued is not a success: either workers still hold the batches, or nothing was left.
    (messages.success if result.requeued_ids else messages.warning)(request, first)
    for line in held:
        messages.warning(request, line)
    return redirect("matcher:run_detail", run_id=run_id)


def image_search(request: HtmxHttpRequest) -> HttpResponse:
    """Reverse image search: upload a picture or give a URL; the 10 most similar products and listings."""
    form = ImageSearchForm(request.POST or None, request.FILES or None)
    result, error = None, ""
    if request.method == "POST" and form.is_valid():
        try:
            # An upload was checked by the form (size, content); a URL's bytes are checked here.
            data = form.cleaned_data.get("image")
            if not data:
                data = images.fetch(
                    form.cleaned_data["url"],
                    max_bytes=settings.IMAGE_MAX_BYTES,
                    timeout=settings.IMAGE_FETCH_TIMEOUT_S,
                    max_redirects=settings.IMAGE_FETCH_MAX_REDIRECTS,
                    allowed_hosts=settings.IMAGE_FETCH_ALLOWED_HOSTS,
                ).data
                images.sniff(data, max_pixels=settings.IMAGE_MAX_PIXELS)
            result = search_by_image(data, k=10)
        except (images.ImageRejected, images.FetchRefused, images.FetchTransient) as exc:
            error = str(exc)
    template = "matcher/search.html#results" if request.htmx else "matcher/search.html"
    return render(request, template, {"form": form, "result": result, "error": error})


IMPORTS_ADMIN_ONLY = "파일 가져오기는 관리자만 할 수 있습니다."


# CSRF's middleware reads the POST body before the view; the size limit must be in place before
# anything does. So the check is exempted there and done here, after the limit is installed.
@csrf_exempt
@require_http_methods(["GET", "POST"])
@admin_required(reason=IMPORTS_ADMIN_ONLY)
def imports(request: HttpRequest) -> HttpResponse:
    """Upload a catalogue or listings file (admins); the worker imports it, the report page follows it."""
    limit = UploadSizeLimit(request, settings.IMPORT_UPLOAD_MAX_BYTES)
    request.upload_handlers.insert(0, limit)
    return _imports(request, limit)


@csrf_protect
def _imports(request: HttpRequest, limit: UploadSizeLimit) -> HttpResponse:
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    refusal = ""  # why the file itself was refused, in Korean; nothing was written then
    status = 200
    if request.method == "POST":
        status = 400
        if limit.exceeded:
            # The file was dropped while it arrived: ask again rather than say "choose a file".
            form = ImportUploadForm(initial={"kind": request.POST.get("kind")})
            refusal = str(UploadTooLarge(limit.max_bytes))
        elif form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                report = import_upload_accept(
                    kind=form.cleaned_data["kind"],
                    file=upload,
                    name=upload.name or "",
                    size=upload.size or 0,
                    user=request.user,
                )
            except ingest.FileFormatError as refused:
                refusal = str(refused)
            else:
                return redirect("matcher:import_detail", report_id=report.pk)
    context = {
        "form": form,
        "refusal": refusal,
        "reports": selectors.import_reports_recent(),
        "max_size": size_label(settings.IMPORT_UPLOAD_MAX_BYTES),
    }
    return render(request, "matcher/imports.html", context, status=status)


@admin_required(reason=IMPORTS_ADMIN_ONLY)
def import_detail(request: HtmxHttpRequest, report_id: int) -> HttpResponse:
    """An import's progress while the worker runs it (htmx polls the part every second), then its report."""
    report = get_object_or_404(ImportReport.objects.select_related("user"), pk=report_id)
    lease = timedelta(seconds=settings.IMPORT_UPLOAD_LEASE_S)
    stalled = report.status == ImportReport.Status.RUNNING and (
        report.heartbeat_at is None or report.heartbeat_at < timezone.now() - lease
    )
    template = "matcher/import_detail.html#progress" if request.htmx else "matcher/import_detail.html"
    return render(request, template, {"report": report, "stalled": stalled})
