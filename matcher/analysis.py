"""Django side of the pipeline: SKUs and listings in, Match rows out.

`decide_products` is what a match-run batch calls. It loads the batch's SKUs with their
listings and images in a fixed number of queries, analyses every image the cache lacks in
one batched pass (regions, embeddings, colours), compares each listing with its SKU, asks the
vision LLM only about pairs whose bucket it could change, and writes one Match per listing.
"""
from __future__ import annotations

import hashlib
import io
import logging
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np
from celery.exceptions import SoftTimeLimitExceeded
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Count, Prefetch, Q
from django.utils import timezone
from PIL import Image

from matcher import pipeline_config
from matcher.models import (
    AttributeTerm,
    FetchStatus,
    ImageAnalysisRecord,
    ImageFile,
    Listing,
    ListingImage,
    Match,
    Product,
    ProductImage,
    Region,
    ThresholdSet,
)
from matcher.pipeline.compare import Comparison, ImageAnalysis, ImageInput, ListingSide, PairComparer, SkuSide
from matcher.pipeline.policy import DecisionPolicy, decide

log = logging.getLogger(__name__)

STATUS_FOR_BUCKET = {"auto": Match.Status.MATCHED, "review": Match.Status.PENDING, "reject": Match.Status.REJECTED}


# --- the analysis cache in PostgreSQL --------------------------------------------------------------


class DbAnalysisCache:
    """AnalysisCache over ImageAnalysisRecord: preload a batch's images in one query, write back in one.

    Region rows (the vectors reverse search uses) are written for every newly analysed image.
    """

    def __init__(self, embedder: str) -> None:
        self.embedder = embedder
        self._mem: dict[str, ImageAnalysis] = {}
        self._dirty: dict[str, ImageAnalysis] = {}
        # Stored images whose cached analysis has no search rows yet (analysed before they were
        # stored, e.g. by an evaluation): flush() writes their Region rows.
        self._unindexed: set[str] = set()

    def preload(self, shas: Iterable[str]) -> None:
        wanted = [s for s in set(shas) if s not in self._mem]
        if not wanted:
            return
        loaded = []
        for sha, data in ImageAnalysisRecord.objects.filter(sha256__in=wanted, embedder=self.embedder).values_list(
            "sha256", "data"
        ):
            try:
                self._mem[sha] = ImageAnalysis.from_bytes(bytes(data))
                loaded.append(sha)
            except Exception:  # a blob from an older format is recomputed, not trusted
                log.warning("unreadable analysis for %s; recomputing", sha[:12])
        if loaded:
            stored = dict(ImageFile.objects.filter(sha256__in=loaded).values_list("id", "sha256"))
            indexed = set(
                Region.objects.filter(image_id__in=list(stored), embedder=self.embedder)
                .values_list("image_id", flat=True)
                .distinct()
            )
            self._unindexed.update(sha for image_id, sha in stored.items() if image_id not in indexed)

    def get(self, sha256: str) -> ImageAnalysis | None:
        return self._mem.get(sha256)

    def put(self, analysis: ImageAnalysis) -> None:
        self._mem[analysis.sha256] = analysis
        self._dirty[analysis.sha256] = analysis

    def flush(self) -> int:
        """Write new analyses, and search rows for them and for the stored images that lacked them."""
        dirty, self._dirty = self._dirty, {}
        unindexed, self._unindexed = self._unindexed, set()
        if not dirty and not unindexed:
            return 0
        now = timezone.now()
        records = [
            ImageAnalysisRecord(sha256=sha, embedder=self.embedder, data=a.to_bytes(), updated_at=now)
            for sha, a in dirty.items()
        ]
        if records:
            ImageAnalysisRecord.objects.bulk_create(
                records, update_conflicts=True, unique_fields=["sha256", "embedder"], update_fields=["data", "updated_at"]
            )
        to_index = {sha: self._mem[sha] for sha in unindexed if sha in self._mem} | dirty
        ids = dict(ImageFile.objects.filter(sha256__in=list(to_index)).values_list("sha256", "id"))
        regions = []
        for sha, a in to_index.items():
            if sha not in ids:
                continue  # an image that is not stored (an evaluation file, a search query)
            for index, (region, vector) in enumerate(zip(a.regions, a.embeddings)):
                regions.append(
                    Region(
                        image_id=ids[sha], embedder=self.embedder, index=index, kind=region.kind,
                        box=region.box.as_list(), needs_cutout=region.needs_cutout, cutout=False,
                        embedding=np.asarray(vector, dtype=np.float32),
                    )
                )
        if regions:
            from matcher.vectors import ensure_index

            ensure_index(self.embedder, len(regions[0].embedding))
            Region.objects.bulk_create(regions, ignore_conflicts=True, batch_size=500)
        ImageFile.objects.filter(sha256__in=list(ids)).update(analysed_with=self.embedder)
        return len(records)


# --- stage timing --------------------------------------------------------------------------------


class StageTimer:
    """Wraps a stage object and adds the time spent in its work methods to a shared counter.

    clock: wall seconds by default (the match run's timings); the cascade benchmark passes a
    CPU-seconds clock."""

    def __init__(self, inner: Any, methods: str | tuple[str, ...], key: str, timings: Counter,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self._inner, self._key, self._timings, self._clock = inner, key, timings, clock
        self._methods = (methods,) if isinstance(methods, str) else methods

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in self._methods:
            return attr

        def timed(*args: Any, **kwargs: Any) -> Any:
            t = self._clock()
            try:
                return attr(*args, **kwargs)
            finally:
                self._timings[self._key] += self._clock() - t

        return timed


# --- building the comparer -----------------------------------------------------------------------


def lexicon():
    from matcher.pipeline.attributes import Lexicon

    rows = list(AttributeTerm.objects.filter(active=True).values("group", "value", "term"))
    return Lexicon.from_rows(rows) if rows else Lexicon.load()


def policy_for(thresholds: ThresholdSet) -> DecisionPolicy:
    data = {**(thresholds.policy or {})}
    data.update(
        auto_threshold=float(thresholds.auto_threshold),
        review_threshold=float(thresholds.review_threshold),
        version=f"t{thresholds.version}",
    )
    return DecisionPolicy.from_dict(data)


def _ocr():
    from django.conf import settings

    if not settings.MATCHER_OCR_ENABLED:
        return None
    try:
        from matcher.pipeline.ocr import TesseractOcr
    except ImportError:
        return None
    ocr = TesseractOcr(
        engine=settings.MATCHER_OCR_ENGINE, text_gate=settings.MATCHER_OCR_TEXT_GATE, layout=settings.MATCHER_OCR_LAYOUT
    )
    return ocr if ocr.available() else None


@dataclass
class Toolkit:
    comparer: PairComparer
    cache: DbAnalysisCache
    policy: DecisionPolicy
    thresholds: ThresholdSet
    timings: Counter
    # Bulk mode: listing id → the marker of a pair awaiting its Batch API verdict (see matcher.llm).
    llm_pending: dict[int, dict[str, Any]] = field(default_factory=dict)


def toolkit(*, thresholds: ThresholdSet | None = None, with_ocr: bool = True, with_remover: bool = True) -> Toolkit:
    """A comparer over this process's loaded stages with a fresh DB-backed cache and timers."""
    from matcher.services import thresholds_active

    thresholds = thresholds or thresholds_active()
    timings: Counter = Counter()
    emb = pipeline_config.embedder()
    cache = DbAnalysisCache(pipeline_config.embedder_key(emb))
    remover = pipeline_config.background_remover() if with_remover else None
    ocr = _ocr() if with_ocr else None
    policy = policy_for(thresholds)
    comparer = PairComparer(
        finder=StageTimer(pipeline_config.region_finder(), "find", "regions", timings),
        embedder=StageTimer(emb, "embed", "embed", timings),
        remover=StageTimer(remover, ("masks", "cutout"), "cutout", timings) if remover is not None else None,
        ocr=StageTimer(ocr, "read", "ocr", timings) if ocr is not None else None,
        lexicon=lexicon(),
        policy=policy,
        cache=cache,
    )
    return Toolkit(comparer=comparer, cache=cache, policy=policy, thresholds=thresholds, timings=timings)


def _loader(image: ImageFile, timings: Counter):
    def load() -> Image.Image:
        t = time.perf_counter()
        with default_storage.open(image.file.name, "rb") as fh:
            img = Image.open(io.BytesIO(fh.read()))
            img.load()
        timings["load"] += time.perf_counter() - t
        return img.convert("RGB")

    return load


def image_input(image: ImageFile, timings: Counter) -> ImageInput:
    return ImageInput(sha256=image.sha256, loader=_loader(image, timings), label=image.sha256[:12])


# --- deciding a batch of SKUs ----------------------------------------------------------------------


@dataclass
class Outcome:
    decided: int = 0
    skipped: int = 0
    failed: int = 0
    counts: Counter = field(default_factory=Counter)
    timings: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    changed_product_ids: set[int] = field(default_factory=set)


def pair_fingerprint(product: Product, listing: Listing, our_shas: list[str]) -> str:
    """What a decision depends on besides the thresholds: the listing's content and our photos and title."""
    raw = "\x1f".join([listing.content_fingerprint or f"{listing.title}|{listing.price}", product.title,
                       product.product_number, *sorted(our_shas)])
    return hashlib.sha256(raw.encode()).hexdigest()


def _products(product_ids: list[int]) -> list[Product]:
    ok_images = ProductImage.objects.filter(fetch_status="ok").select_related("image").order_by("position", "id")
    ok_listing_images = ListingImage.objects.filter(fetch_status="ok").select_related("image").order_by("position", "id")
    return list(
        Product.objects.filter(id__in=product_ids)
        .prefetch_related(
            Prefetch("images", queryset=ok_images, to_attr="ok_images"),
            Prefetch(
                "listings",
                queryset=Listing.objects.select_related("match").prefetch_related(
                    Prefetch("images", queryset=ok_listing_images, to_attr="ok_images"),
                ).annotate(pending_images=Count("images", filter=Q(images__fetch_status="pending"))),
            ),
        )
        .order_by("id")
    )


def decide_products(*, product_ids: list[int], run_id: int | None, force: bool) -> Outcome:
    out = Outcome()
    kit = toolkit()
    products = _products(product_ids)
    wall = time.perf_counter()

    # Which listings need a decision.
    todo: list[tuple[Product, Listing, str]] = []
    shas: set[str] = set()
    for product in products:
        ours = [pi.image for pi in product.ok_images][:5]
        if not ours:
            out.errors.append(f"{product.sku}: 상품 이미지 없음 (no usable photos of ours)")
            out.skipped += len(product.listings.all())
            out.counts["no_sku_images"] += 1
            continue
        our_shas = [im.sha256 for im in ours]
        for listing in product.listings.all():
            existing = getattr(listing, "match", None)
            fp = pair_fingerprint(product, listing, our_shas)
            if existing is not None and existing.fingerprint == fp:
                # Unchanged: keep it, unless a re-run was asked for; a reviewer's decision on the
                # same content is never overridden by the pipeline.
                if not force or existing.decided_by_human:
                    out.skipped += 1
                    continue
            if not listing.ok_images:
                out.skipped += 1
                out.counts["waiting_for_images" if listing.pending_images else "no_listing_images"] += 1
                continue
            todo.append((product, listing, fp))
            shas.update(our_shas)
            shas.update(li.image.sha256 for li in listing.ok_images)

    # One batched pass over every image the cache lacks.
    kit.cache.preload(shas)
    inputs: dict[str, ImageInput] = {}
    for product, listing, _ in todo:
        for im in [pi.image for pi in product.ok_images][:5] + [li.image for li in listing.ok_images]:
            inputs.setdefault(im.sha256, image_input(im, kit.timings))
    t = time.perf_counter()
    unreadable: dict[str, str] = {}
    if inputs:
        from matcher.pipeline.compare import StageCounts

        def note_unreadable(ref: ImageInput, exc: BaseException) -> None:
            unreadable[ref.sha256] = f"저장된 이미지를 읽을 수 없음 (stored photo unreadable): {exc!r}"[:500]
            log.warning("image %s unreadable: %r", ref.sha256[:12], exc)

        batch_stats = StageCounts()
        kit.comparer.analyse(list(inputs.values()), batch_stats, on_unreadable=note_unreadable)
        kit.comparer.totals.add(batch_stats)
    analyse_s = time.perf_counter() - t
    if unreadable:
        todo = _without_unreadable(todo, unreadable, out)

    # Compare.
    results: list[tuple[Product, Listing, str, Comparison]] = []
    t = time.perf_counter()
    for product, listing, fp in todo:
        ours, theirs = _sides(product, listing, lambda im: inputs[im.sha256])
        try:
            results.append((product, listing, fp, kit.comparer.compare(ours, theirs)))
        except SoftTimeLimitExceeded:
            raise  # the task's time is up: stop the batch, do not count it as one bad pair
        except Exception as exc:  # one bad pair must not sink the batch
            log.exception("comparing listing %s failed", listing.id)
            out.failed += 1
            out.errors.append(f"listing {listing.id}: {exc!r}"[:300])
    compare_s = time.perf_counter() - t

    # The vision LLM, only where it can change the bucket.
    t = time.perf_counter()
    _verify_uncertain(results, kit, run_id=run_id, counts=out.counts)
    kit.timings["llm"] += time.perf_counter() - t

    kit.cache.flush()

    # Write the decisions, one transaction per SKU.
    t = time.perf_counter()
    by_product: dict[int, list[tuple[Product, Listing, str, Comparison]]] = defaultdict(list)
    for row in results:
        by_product[row[0].id].append(row)
    for product_id, rows in by_product.items():
        if _write_decisions(rows, kit, run_id=run_id, counts=out.counts):
            out.changed_product_ids.add(product_id)
        out.decided += len(rows)
    for product_id in by_product:
        _refresh_money_at_risk(product_id)
    write_s = time.perf_counter() - t

    # Bulk mode: the pairs just written as awaiting go to the Batch API (or get their cached verdicts).
    t = time.perf_counter()
    _submit_awaiting(kit, counts=out.counts)
    kit.timings["llm"] += time.perf_counter() - t

    stats = kit.comparer.totals.as_dict()
    for key, value in stats.items():
        out.counts[f"stage:{key}"] += value
    timings = dict(kit.timings)
    inner = sum(timings.get(k, 0.0) for k in ("regions", "embed", "cutout", "ocr", "load"))
    timings["evidence"] = max(0.0, analyse_s + compare_s - inner)
    timings["write"] = write_s
    timings["decide_total"] = time.perf_counter() - wall
    out.timings = timings
    return out


def _without_unreadable(
    todo: list[tuple[Product, Listing, str]], unreadable: dict[str, str], out: Outcome
) -> list[tuple[Product, Listing, str]]:
    """One photo that cannot be read fails that photo, not the batch.

    Its image rows are marked failed with the reason (admin shows it; a later fetch or import
    replaces it), the pairs are compared on the photos that remain, and a side left with none is
    skipped like one that never had any.
    """
    for model in (ProductImage, ListingImage):
        for sha, reason in unreadable.items():
            model.objects.filter(image__sha256=sha, fetch_status=FetchStatus.OK).update(
                fetch_status=FetchStatus.FAILED, fetch_error=reason
            )
    out.counts["unreadable_images"] += len(unreadable)
    out.errors.extend(f"image {sha[:12]}: {reason}"[:300] for sha, reason in unreadable.items())
    kept: list[tuple[Product, Listing, str]] = []
    without_photos: set[int] = set()
    for product, listing, _ in todo:
        # The prefetched lists are shared by every pair of the SKU, so this filters them once for all.
        product.ok_images = [pi for pi in product.ok_images if pi.image.sha256 not in unreadable]
        listing.ok_images = [li for li in listing.ok_images if li.image.sha256 not in unreadable]
        if not product.ok_images:
            out.skipped += 1
            if product.id not in without_photos:
                without_photos.add(product.id)
                out.counts["no_sku_images"] += 1
                out.errors.append(f"{product.sku}: 상품 이미지 없음 (no usable photos of ours)")
            continue
        if not listing.ok_images:
            out.skipped += 1
            out.counts["no_listing_images"] += 1
            continue
        # What the decision depends on has changed with the photos it is made from.
        our_shas = [pi.image.sha256 for pi in product.ok_images[:5]]
        kept.append((product, listing, pair_fingerprint(product, listing, our_shas)))
    return kept


def _sides(product: Product, listing: Listing, input_of: Callable[[ImageFile], ImageInput]) -> tuple[SkuSide, ListingSide]:
    """The two sides of a pair as the comparer sees them: up to 5 of our photos, all of theirs."""
    ours = SkuSide(
        images=[input_of(pi.image) for pi in product.ok_images[:5]],
        title=product.title,
        product_number=product.product_number or None,
    )
    return ours, ListingSide(images=[input_of(li.image) for li in listing.ok_images], title=listing.title)


def _read_printed_text(product: Product, listing: Listing, comp: Comparison, kit: Toolkit, counts: Counter) -> None:
    """The comparer's check before an automatic match (text printed on their photos), for a pair
    the LLM verdict lifts, or may lift once a batch verdict is collected."""
    ours, theirs = _sides(product, listing, lambda im: image_input(im, kit.timings))
    if kit.comparer.check_printed_text(ours, theirs, comp):
        counts["ocr_conflicts_after_llm"] += 1


def _llm_images(product: Product, listing: Listing, comp: Comparison, kit: Toolkit):
    """The photo of each side that gave the best evidence, with the boxes of its best regions."""
    ours = [pi.image for pi in product.ok_images[:5]]
    theirs = [li.image for li in listing.ok_images]
    bi, bj = comp.best_images or (0, 0)
    a, b = ours[min(bi, len(ours) - 1)], theirs[min(bj, len(theirs) - 1)]
    box_a, box_b = _best_boxes(comp, kit, [im.sha256 for im in ours], [im.sha256 for im in theirs])
    return a, b, box_a, box_b


def _verify_uncertain(results, kit: Toolkit, *, run_id: int | None, counts: Counter) -> None:
    from matcher import llm

    if not llm.verifier_enabled():
        return
    from matcher.pipeline.verify import jpeg_bytes

    wanted = [(i, r) for i, r in enumerate(results) if llm.should_verify(r[3].decision, kit.policy)]
    if not wanted:
        return
    if llm.batch_mode_for_run(run_id):
        # Bulk: no online call. The pair is written as review (never auto) with a marker that
        # _submit_awaiting turns into a Batch API request; the verdict is written back when collected.
        for _, (product, listing, _, comp) in wanted:
            if kit.comparer.could_reach_auto(comp.evidence):
                # The verdict is written back without the comparer: what the photos' printed text
                # says must be in the evidence the marker carries, or a verdict could lift a
                # 리퍼 banner to an automatic match.
                _read_printed_text(product, listing, comp, kit, counts)
            a, b, box_a, box_b = _llm_images(product, listing, comp, kit)
            kit.llm_pending[listing.id] = llm.batch_marker(
                image_a=a.sha256, image_b=b.sha256, box_a=box_a, box_b=box_b, evidence=comp.evidence
            )
            comp.decision = llm.awaiting_decision(comp.decision)
        counts["llm_batch_awaiting"] += len(wanted)
        return
    requests = []
    for _, (product, listing, _, comp) in wanted:
        a, b, box_a, box_b = _llm_images(product, listing, comp, kit)
        a_img = image_input(a, kit.timings).load()
        b_img = image_input(b, kit.timings).load()
        images_a = ([jpeg_bytes(a_img.crop(tuple(box_a)))] if box_a else []) + [jpeg_bytes(a_img)]
        images_b = ([jpeg_bytes(b_img.crop(tuple(box_b)))] if box_b else []) + [jpeg_bytes(b_img)]
        requests.append(
            llm.LlmPairRequest(
                image_a_hash=a.sha256, image_b_hash=b.sha256, images_a=images_a, images_b=images_b,
                title_a=product.title, title_b=listing.title, product_id=product.id,
            )
        )
    verdicts = llm.verify_pairs(pairs=requests, run_id=run_id, product_id=None)
    counts["llm_pairs"] += len(verdicts)
    for (_, (product, listing, _, comp)), verdict in zip(wanted, verdicts):
        comp.evidence.llm = verdict
        comp.decision = decide(comp.evidence, kit.policy)
        if verdict.error:
            counts["llm_errors"] += 1
            comp.decision.reasons.append(f"LLM 검증 실패 — 자동 매칭 안 함: {verdict.error}")
        if comp.decision.bucket == "auto":
            _read_printed_text(product, listing, comp, kit, counts)


def _submit_awaiting(kit: Toolkit, *, counts: Counter) -> None:
    """Bulk mode, after the batch's rows are written: send the awaiting pairs no job holds yet.

    A pair whose request is already in flight (a re-processed or forced batch) keeps its job and is
    not sent again. A failure here leaves the rows awaiting; the periodic sweep (llm_batch_resume)
    submits them, so it must not fail the run batch.
    """
    if not kit.llm_pending:
        return
    from matcher import llm

    ids = list(
        Match.objects.filter(listing_id__in=list(kit.llm_pending), llm_batch_job__isnull=True).values_list(
            "id", flat=True
        )
    )
    if not ids:
        return
    try:
        jobs = llm.batch_submit_awaiting(match_ids=ids)
    except SoftTimeLimitExceeded:
        raise
    except Exception:
        log.exception("submitting %d awaiting pairs to the Batch API failed", len(ids))
        counts["llm_batch_submit_errors"] += 1
        return
    counts["llm_batch_jobs"] += len(jobs)
    counts["llm_batch_requests"] += sum(len(j.requests) for j in jobs)


_LABEL = re.compile(r"^(ours|theirs)\[(\d+)\]\.(\w+)")


def _best_boxes(
    comp: Comparison, kit: Toolkit, our_shas: list[str], their_shas: list[str]
) -> tuple[list[int] | None, list[int] | None]:
    """Boxes of the region pair that gave the best cosine (labels look like "ours[0].upper")."""
    boxes: list[list[int] | None] = [None, None]
    for pos, label in enumerate((comp.evidence.cosine_regions or ())[:2]):
        m = _LABEL.match(label or "")
        if not m:
            continue
        shas = our_shas if m.group(1) == "ours" else their_shas
        image, kind = int(m.group(2)), m.group(3)
        analysis = kit.cache.get(shas[image]) if image < len(shas) else None
        if analysis is None:
            continue
        boxes[pos] = next((r.box.as_list() for r in analysis.regions if r.kind == kind), None)
    return boxes[0], boxes[1]


def evidence_json(comp: Comparison, *, our_shas: list[str], their_shas: list[str], kit: Toolkit) -> dict[str, Any]:
    ev = comp.evidence
    data: dict[str, Any] = {
        "cosine": round(ev.cosine, 4) if ev.cosine is not None else None,
        "cosine_regions": list(ev.cosine_regions) if ev.cosine_regions else None,
        "inliers": ev.inliers,
        "inlier_colour_agreement": (
            round(ev.inlier_colour_agreement, 3) if ev.inlier_colour_agreement is not None else None
        ),
        "colour_distance": round(ev.colour_distance, 4) if ev.colour_distance is not None else None,
        "product_number": ev.product_number,
        "conflicts": list(ev.conflicts),
        "garment_kind": comp.garment_kind,
        "geometry_pairs": [list(p) for p in comp.geometry_pairs],
        "stages": comp.stats.as_dict(),
    }
    best = comp.best_images
    if best:
        i, j = best
        box_a, box_b = _best_boxes(comp, kit, our_shas, their_shas)
        data["best_pair"] = {
            "ours": {"image_sha": our_shas[min(i, len(our_shas) - 1)], "box": box_a},
            "theirs": {"image_sha": their_shas[min(j, len(their_shas) - 1)], "box": box_b},
        }
    ocr_texts = []
    for sha in their_shas:
        analysis = kit.cache.get(sha)
        if analysis is not None and analysis.ocr_text:
            ocr_texts.append(analysis.ocr_text)
    if ocr_texts:
        data["ocr"] = {"theirs": "\n".join(ocr_texts)[:2000]}
    if ev.llm is not None:
        from matcher.llm import verdict_to_evidence

        data["llm"] = verdict_to_evidence(ev.llm)
    return data


def _write_decisions(rows, kit: Toolkit, *, run_id: int | None, counts: Counter) -> bool:
    """Write one SKU's decisions; True when what pricing follows (matched listings) may have changed."""
    from decimal import Decimal

    changed = False
    now = timezone.now()
    with transaction.atomic():
        for product, listing, fp, comp in rows:
            our_shas = [pi.image.sha256 for pi in product.ok_images[:5]]
            their_shas = [li.image.sha256 for li in listing.ok_images]
            bucket = comp.decision.bucket
            status = STATUS_FOR_BUCKET[bucket]
            llm_cost = Decimal(comp.evidence.llm.cost_usd) if comp.evidence.llm is not None else Decimal(0)
            previous = Match.objects.select_for_update().filter(listing=listing).first()
            evidence = evidence_json(comp, our_shas=our_shas, their_shas=their_shas, kit=kit)
            llm_batch_job_id = _llm_pending_evidence(evidence, kit.llm_pending.get(listing.id), previous)
            Match.objects.update_or_create(
                listing=listing,
                defaults=dict(
                    product=product,
                    bucket=bucket,
                    status=status,
                    decided_by_human=False,
                    confidence=Decimal(str(round(comp.decision.confidence, 4))),
                    reasons=comp.decision.reasons,
                    evidence=evidence,
                    llm_batch_job_id=llm_batch_job_id,
                    embedder=kit.cache.embedder,
                    prompt_version=comp.evidence.llm.prompt_version if comp.evidence.llm is not None else "",
                    thresholds=kit.thresholds,
                    fingerprint=fp,
                    run_id=run_id,
                    llm_cost_usd=llm_cost,
                    decided_at=now,
                ),
            )
            counts[bucket] += 1
            if previous is None or previous.status != status or status == Match.Status.MATCHED:
                changed = True
    return changed


def _llm_pending_evidence(
    evidence: dict[str, Any], marker: dict[str, Any] | None, previous: Match | None
) -> int | None:
    """Bulk mode: put the awaiting marker into the evidence; returns the Batch API job that keeps holding the
    pair (its request, same photos and prompt, is still in flight), else None — a new request is due."""
    if marker is None:
        return None
    from matcher import llm

    held = (
        previous is not None
        and previous.llm_batch_job_id is not None
        and not previous.decided_by_human
        and llm.batch_job_open(previous.llm_batch_job_id)
    )
    before = (previous.evidence or {}).get("llm_pending") if held else None
    marker, keep = llm.marker_carry(before, marker)
    evidence["llm_pending"] = marker
    return previous.llm_batch_job_id if keep and previous is not None else None


def _refresh_money_at_risk(product_id: int) -> None:
    try:
        from review.services import money_at_risk_refresh
    except ImportError:
        return
    money_at_risk_refresh(product_id=product_id)
