"""Deciding a batch of SKUs: SKUs and listings in, Match rows out.

`decide_products` is what a match-run batch calls. It loads the batch's SKUs with their listings
and images in a fixed number of queries, analyses every image the cache lacks in one batched pass
(regions, embeddings, colours), compares each listing with its SKU, asks the vision LLM only about
pairs whose bucket it could change, writes one Match per listing (`matcher.decisions`), and says
"matches changed" for the SKUs it wrote.
"""
from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db.models import Count, Prefetch, Q

from matcher import llm, pipeline_config
from matcher.analysis_cache import DbAnalysisCache, image_input
from matcher.causes import Cause, CauseKind
from matcher.decisions import (
    Row,
    our_images,
    our_shas,
    pair_fingerprint,
    policy_for,
    their_images,
    write_decisions,
)
from matcher.models import (
    AttributeTerm,
    FetchStatus,
    ImageFile,
    Listing,
    ListingImage,
    Product,
    ProductImage,
    ThresholdSet,
)
from matcher.pipeline.attributes import Lexicon
from matcher.pipeline.cascade import verdict_could_change_bucket
from matcher.pipeline.compare import ImageInput, ListingSide, PairComparer, SkuSide, StageCounts
from matcher.pipeline.ocr import TesseractOcr
from matcher.pipeline.policy import DecisionPolicy
from matcher.services.thresholds import thresholds_active
from matcher.signals import matches_changed_on_commit

log = logging.getLogger(__name__)

MATCH_RUN_CAUSE = Cause(CauseKind.MATCH_RUN).text


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
                self._timings[self._key] += self._clock() - t  # type: ignore[assignment]  # Counter sums float seconds; typeshed says int

        return timed


# --- building the comparer -----------------------------------------------------------------------


def lexicon() -> Lexicon:
    rows = list(AttributeTerm.objects.filter(active=True).values("group", "value", "term"))
    return Lexicon.from_rows(rows) if rows else Lexicon.load()


def _ocr() -> TesseractOcr | None:
    if not settings.MATCHER_OCR_ENABLED:
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


def toolkit(*, thresholds: ThresholdSet | None = None, with_ocr: bool = True, with_remover: bool = True) -> Toolkit:
    """A comparer over this process's loaded stages with a fresh DB-backed cache and timers."""
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
        ours = our_shas(product)
        if not ours:
            out.errors.append(f"{product.sku}: 상품 이미지 없음 (no usable photos of ours)")
            out.skipped += len(product.listings.all())
            out.counts["no_sku_images"] += 1
            continue
        for listing in product.listings.all():
            existing = getattr(listing, "match", None)
            fp = pair_fingerprint(product, listing, ours)
            if existing is not None and existing.fingerprint == fp:
                # Unchanged: keep it, unless a re-run was asked for; a reviewer's decision on the
                # same content is never overridden by the pipeline.
                if not force or existing.decided_by_human:
                    out.skipped += 1
                    continue
            theirs = their_images(listing)
            if not theirs:
                out.skipped += 1
                pending = listing.pending_images  # type: ignore[attr-defined]  # annotate() in _products
                out.counts["waiting_for_images" if pending else "no_listing_images"] += 1
                continue
            todo.append((product, listing, fp))
            shas.update(ours)
            shas.update(im.sha256 for im in theirs)

    # One batched pass over every image the cache lacks.
    kit.cache.preload(shas)
    inputs: dict[str, ImageInput] = {}
    for product, listing, _ in todo:
        for im in our_images(product) + their_images(listing):
            inputs.setdefault(im.sha256, image_input(im, kit.timings))
    t = time.perf_counter()
    unreadable: dict[str, str] = {}
    if inputs:

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
    results: list[Row] = []
    t = time.perf_counter()
    for product, listing, fp in todo:
        ours_side, theirs_side = _sides(product, listing, lambda im: inputs[im.sha256])
        try:
            results.append((product, listing, fp, kit.comparer.compare(ours_side, theirs_side)))
        except SoftTimeLimitExceeded:
            raise  # the task's time is up: stop the batch, do not count it as one bad pair
        except Exception as exc:  # one bad pair must not sink the batch
            log.exception("comparing listing %s failed", listing.id)
            out.failed += 1
            out.errors.append(f"listing {listing.id}: {exc!r}"[:300])
    compare_s = time.perf_counter() - t

    # The vision LLM, only where it can change the bucket.
    t = time.perf_counter()
    stage = _verify_uncertain(results, kit, run_id=run_id, counts=out.counts)
    kit.timings["llm"] += time.perf_counter() - t  # type: ignore[assignment]  # float seconds

    kit.cache.flush()

    # Write the decisions, one transaction per SKU.
    t = time.perf_counter()
    by_product: dict[int, list[Row]] = defaultdict(list)
    for row in results:
        by_product[row[0].id].append(row)
    for product_id, rows in by_product.items():
        if write_decisions(rows, cache=kit.cache, thresholds=kit.thresholds,
                           pending_markers=stage.markers if stage is not None else {},
                           run_id=run_id, counts=out.counts):
            out.changed_product_ids.add(product_id)
        out.decided += len(rows)
    matches_changed_on_commit(
        product_ids=list(by_product), reprice_ids=out.changed_product_ids, cause=MATCH_RUN_CAUSE
    )
    write_s = time.perf_counter() - t

    # Bulk mode: the pairs just written as awaiting go to the Batch API (or get their cached verdicts).
    t = time.perf_counter()
    if stage is not None:
        stage.after_write(counts=out.counts)
    kit.timings["llm"] += time.perf_counter() - t  # type: ignore[assignment]  # float seconds

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
        # The prefetched lists (Prefetch to_attr="ok_images") are shared by every pair of the SKU, so this
        # filters them once for all.
        ours_ok = [pi for pi in product.ok_images if pi.image.sha256 not in unreadable]  # type: ignore[attr-defined]
        theirs_ok = [li for li in listing.ok_images if li.image.sha256 not in unreadable]  # type: ignore[attr-defined]
        product.ok_images, listing.ok_images = ours_ok, theirs_ok  # type: ignore[attr-defined]
        if not ours_ok:
            out.skipped += 1
            if product.id not in without_photos:
                without_photos.add(product.id)
                out.counts["no_sku_images"] += 1
                out.errors.append(f"{product.sku}: 상품 이미지 없음 (no usable photos of ours)")
            continue
        if not theirs_ok:
            out.skipped += 1
            out.counts["no_listing_images"] += 1
            continue
        # What the decision depends on has changed with the photos it is made from.
        kept.append((product, listing, pair_fingerprint(product, listing, our_shas(product))))
    return kept


def _sides(product: Product, listing: Listing, input_of: Callable[[ImageFile], ImageInput]) -> tuple[SkuSide, ListingSide]:
    """The two sides of a pair as the comparer sees them: our photos (`our_images`), all of theirs."""
    ours = SkuSide(
        images=[input_of(im) for im in our_images(product)],
        title=product.title,
        product_number=product.product_number or None,
    )
    return ours, ListingSide(images=[input_of(im) for im in their_images(listing)], title=listing.title)


def _verify_uncertain(
    results: list[Row], kit: Toolkit, *, run_id: int | None, counts: Counter
) -> llm.LlmStage | None:
    """Ask the run's LLM stage about the pairs whose bucket a verdict could still change; the stage, or
    None when the verifier is off or no pair is worth asking.

    First, for every pair an agreeing verdict could lift to auto, the text printed on their photos is
    read (the comparer's check before an automatic match): a batch verdict is written back without
    the comparer, and an online one must not lift a 리퍼 banner either. The rule lives here once."""
    wanted = [r for r in results if verdict_could_change_bucket(r[3].decision, kit.policy)]
    if not wanted:
        return None
    stage = llm.llm_stage_for_run(run_id=run_id, policy=kit.policy, timings=kit.timings)
    if stage is None:
        return None
    for product, listing, _, comp in wanted:
        if kit.comparer.could_reach_auto(comp.evidence):
            ours, theirs = _sides(product, listing, lambda im: image_input(im, kit.timings))
            if kit.comparer.check_printed_text(ours, theirs, comp):
                counts["ocr_conflicts_before_llm"] += 1
    stage.ask([llm.PairToVerify(product, listing, comp) for product, listing, _, comp in wanted], counts=counts)
    return stage
