"""Compare our SKU's photos and title with a competitor listing's: the stages in order, evidence → decision.

Plain Python, no Django. The stages are passed in (region finder, embedder, optional background
remover and OCR), so the caller chooses them (settings, tests). In order:

1. analysis (analysis.py): regions, embeddings and colour for every photo, cached by sha256;
2. text (evidence/text.py): title attribute conflicts and product numbers;
3. appearance (evidence/appearance.py): the best embedding cosine over compatible region pairs;
4. geometry (evidence/geometry.py): keypoints on the few photo pairs the embeddings rank best;
5. colour (evidence/colour/): the garment colour by region, and read through the keypoint transform;
6. decide (policy.py); then the optional stages, each only when cascade.py says its answer could
   still change the bucket and the pair is near a threshold: the cut-out (cutout.py) of the best
   photo pair's busy-background regions, and OCR of the listing's photos for our product number;
7. before every automatic match, OCR of the listing's photos for printed conflicts.

`stats` counts how often each stage ran and how often a gate found it could not change the
outcome; `timings` holds the seconds each stage took.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from matcher.pipeline import cascade
from matcher.pipeline.analysis import Analyser, AnalysisCache, ImageAnalysis, MemoryAnalysisCache
from matcher.pipeline.attributes import AttributeTerms, Lexicon, extract_with_terms
from matcher.pipeline.cutout import cut_out_photos
from matcher.pipeline.evidence.appearance import (
    PhotoPairCosines,
    best_pair,
    best_photos,
    photo_pair_cosines,
    ranked_photo_pairs,
)
from matcher.pipeline.evidence.colour.regions import (
    colour_evidence,
    pair_colour_distance,
    photo_colour_distance,
)
from matcher.pipeline.evidence.geometry import GeometryChecker, GeometryEvidence, ImageKeypoints
from matcher.pipeline.evidence.text import PhotoText, number_in_photos, printed_conflicts, read_titles
from matcher.pipeline.inputs import ImageInput, ListingSide, SkuSide
from matcher.pipeline.policy import DecisionPolicy, decide
from matcher.pipeline.timings import StageCounts, StageTimings
from matcher.pipeline.types import (
    AttributeConflict,
    AutoBlocker,
    AutoGate,
    BackgroundRemover,
    Decision,
    Embedder,
    KeypointMatches,
    LlmVerdict,
    Ocr,
    PairEvidence,
    RegionFinder,
    RegionRef,
)


@dataclass
class Comparison:
    evidence: PairEvidence
    decision: Decision
    stats: StageCounts
    # Where the evidence came from, for the review page.
    best_images: tuple[int, int] | None = None
    garment_kind: str | None = None
    geometry_pairs: list[tuple[int, int, int, float | None]] = field(default_factory=list)  # (i, j, inliers, agreement)
    # evidence.conflicts typed, in the same order (title conflicts, then any read from their photos).
    conflict_details: list[AttributeConflict] = field(default_factory=list)
    # The inliers of the geometry check that gave evidence.inliers (None when no photo pair was checked).
    keypoint_matches: KeypointMatches | None = None
    # The region pair that gave evidence.cosine (ours, theirs).
    best_regions: tuple[RegionRef, RegionRef] | None = None

    @property
    def best_boxes(self) -> tuple[list[int] | None, list[int] | None]:
        """The boxes (x0, y0, x1, y1 in original pixels) of the region pair that gave the best cosine."""
        if self.best_regions is None:
            return None, None
        return self.best_regions[0].box.as_list(), self.best_regions[1].box.as_list()

    @property
    def blockers(self) -> list[AutoBlocker]:
        return self.decision.blockers

    @property
    def gates(self) -> list[AutoGate]:
        return self.decision.gates


class PairComparer:
    """Compare our SKU with a competitor listing.

    finder, embedder: required stages; remover, ocr: optional (None skips them).
    lexicon, policy: title attributes and the decision policy.
    cache: per-image analyses by sha256 (default: in memory for this object's life).
    max_geometry_checks: image pairs checked for keypoint geometry, best cosine first.
    cascade_margin: a pair whose confidence is within this of a threshold is "near" it;
        only near pairs pay for background removal and OCR.
    max_ocr_images: listing images read by OCR at most.
    outcome_gates: skip a cut-out or a product-number OCR that could not change the bucket
        (False: run them whenever the pair is near a threshold, as before the gates; for
        before/after measurements).
    The stages are attributes a caller may replace (e.g. with a timing wrapper) between comparisons.
    """

    def __init__(
        self,
        *,
        finder: RegionFinder,
        embedder: Embedder,
        lexicon: Lexicon,
        policy: DecisionPolicy,
        remover: BackgroundRemover | None = None,
        ocr: Ocr | None = None,
        cache: AnalysisCache | None = None,
        max_geometry_checks: int = 3,
        cascade_margin: float = 0.15,
        max_ocr_images: int = 3,
        mapped_colour_min_inliers: int = 12,
        mapped_colour_trusted_inliers: int = 20,
        outcome_gates: bool = True,
    ) -> None:
        self.finder = finder
        self.embedder = embedder
        self.lexicon = lexicon
        self.policy = policy
        self.remover = remover
        self.ocr = ocr if ocr is not None and ocr.available() else None
        self.cache = cache if cache is not None else MemoryAnalysisCache()
        self.cascade_margin = cascade_margin
        self.max_ocr_images = max_ocr_images
        self.mapped_colour_trusted_inliers = mapped_colour_trusted_inliers
        self.outcome_gates = outcome_gates
        self.geometry = GeometryChecker(
            max_checks=max_geometry_checks, mapped_colour_min_inliers=mapped_colour_min_inliers
        )
        self.totals = StageCounts()
        self.timings = StageTimings()

    @property
    def analyser(self) -> Analyser:
        return Analyser(finder=self.finder, embedder=self.embedder, cache=self.cache, timings=self.timings)

    @property
    def embedder_label(self) -> str:
        return self.analyser.embedder_label

    @property
    def photo_text(self) -> PhotoText:
        return PhotoText(self.ocr, self.cache, self.max_ocr_images)

    def analyse(
        self,
        images: Sequence[ImageInput],
        stats: StageCounts | None = None,
        *,
        on_unreadable: Callable[[ImageInput, BaseException], None] | None = None,
    ) -> list[ImageAnalysis]:
        """Analyses for these images (see Analyser.analyse)."""
        with self.timings.stage("analysis"):
            return self.analyser.analyse(images, stats if stats is not None else StageCounts(), on_unreadable=on_unreadable)

    # -- the comparison --

    def compare(self, ours: SkuSide, theirs: ListingSide, *, llm: LlmVerdict | None = None) -> Comparison:
        """Evidence and decision for one pair. `llm`: a verdict the pair already has (else none is assumed).

        Precondition: every photo of both sides loads (unreadable ones are left out by the caller)."""
        stats = StageCounts()
        a_list = self.analyse(ours.images, stats)
        b_list = self.analyse(theirs.images, stats)
        timings = self.timings

        with timings.stage("text"):
            titles = read_titles(ours, theirs, self.lexicon)
        evidence = PairEvidence(product_number=titles.product_number, conflicts=titles.conflicts, llm=llm)
        with timings.stage("appearance"):
            per_image = photo_pair_cosines(a_list, b_list, use_cutout=False)
            best_regions = _set_appearance(evidence, per_image)
        with timings.stage("geometry"):
            geometry = self.geometry.check(
                ranked_photo_pairs(per_image), ours.images, theirs.images, [a.regions for a in a_list],
                self._keypoints(ours, theirs, a_list, b_list, stats), titles.garment,
            )
            stats.geometry_checks += len(geometry.checked)
            evidence.inliers, evidence.inlier_colour_agreement = geometry.inliers, geometry.agreement
        with timings.stage("colour"):
            self._set_colour(evidence, a_list, b_list, titles.garment, geometry, use_cutout=False)
        with timings.stage("decide"):
            decision = decide(evidence, self.policy)

        if (
            self.remover is not None
            and cascade.near_threshold(decision.confidence, self.policy, self.cascade_margin)
            and self._cutout_could_matter(evidence, geometry.mapped_colour, stats)
        ):
            with timings.stage("cutout"):
                best = best_photos(per_image)
                changed = best is not None and cut_out_photos(
                    [(ours.images[best[0]], a_list[best[0]]), (theirs.images[best[1]], b_list[best[1]])],
                    remover=self.remover, embedder=self.embedder, cache=self.cache, stats=stats,
                )
            if changed:
                with timings.stage("appearance"):
                    per_image = photo_pair_cosines(a_list, b_list, use_cutout=True)
                    best_regions = _set_appearance(evidence, per_image)
                with timings.stage("colour"):
                    self._set_colour(evidence, a_list, b_list, titles.garment, geometry, use_cutout=True)
                with timings.stage("decide"):
                    decision = decide(evidence, self.policy)

        if (
            self.ocr is not None
            and evidence.product_number == "absent"
            and titles.our_numbers
            and cascade.near_threshold(decision.confidence, self.policy, self.cascade_margin)
            and self._number_ocr_could_matter(evidence, b_list, stats)
        ):
            with timings.stage("ocr"):
                texts = self.photo_text.texts(theirs.images, b_list, stats)
            if number_in_photos(titles.our_numbers, texts):
                evidence.product_number = "match"
                decision = decide(evidence, self.policy)
                decision.reasons.append("product number read from the listing's photos (OCR)")

        comparison = Comparison(
            evidence=evidence,
            decision=decision,
            stats=stats,
            best_images=best_photos(per_image),
            garment_kind=titles.garment,
            geometry_pairs=geometry.checked,
            conflict_details=titles.conflict_details,
            keypoint_matches=geometry.matches,
            best_regions=best_regions,
        )
        if decision.bucket == "auto":
            self.check_printed_text(ours, theirs, comparison, _analyses=b_list)
        self.totals.add(stats)
        return comparison

    def check_printed_text(
        self, ours: SkuSide, theirs: ListingSide, comparison: Comparison, *, _analyses: list[ImageAnalysis] | None = None
    ) -> bool:
        """Precision first: before an automatic match, read the text printed on their photos.

        A banner saying 리퍼 / 해외배송 / 키즈 on our own re-used photo is a different offer.
        Conflicts found are added to the evidence and the pair is decided again (a conflict blocks
        auto-match). Whoever lifts a pair to auto later (the LLM verdict, online or collected from
        a batch) calls this too. Returns True when new conflicts were found. The text is cached
        with the analysis, so a second call costs nothing.
        """
        if self.ocr is None:
            return False
        our_terms: AttributeTerms
        if ours.attributes is not None:
            our_attrs, our_terms = ours.attributes, {}
        else:
            our_attrs, our_terms = extract_with_terms(ours.title, self.lexicon)
        b_list = _analyses if _analyses is not None else self.analyse(theirs.images)
        with self.timings.stage("ocr"):
            texts = self.photo_text.texts(theirs.images, b_list, comparison.stats)
        reasons, details = printed_conflicts(our_attrs, our_terms, texts, self.lexicon, comparison.evidence.conflicts)
        if not reasons:
            return False
        comparison.evidence.conflicts.extend(reasons)
        comparison.conflict_details.extend(details)
        comparison.decision = decide(comparison.evidence, self.policy)
        return True

    def could_reach_auto(self, evidence: PairEvidence) -> bool:
        """Whether an agreeing LLM verdict could make this pair an automatic match."""
        return cascade.could_reach_auto(evidence, self.policy)

    def garment_colour_distance(self, a: ImageAnalysis, b: ImageAnalysis) -> float | None:
        """The garment colour distance of two photos (0 same .. 1 far apart; None when neither
        shows a region to compare), as compare() reads it without a title to say which garment."""
        return photo_colour_distance(a, b, None, False)

    # -- the steps --

    def _keypoints(
        self, ours: SkuSide, theirs: ListingSide, a_list: list[ImageAnalysis], b_list: list[ImageAnalysis],
        stats: StageCounts,
    ) -> Callable[[str, int], ImageKeypoints]:
        analyser = self.analyser

        def keypoints(side: str, index: int) -> ImageKeypoints:
            if side == "ours":
                return analyser.keypoints(ours.images[index], a_list[index], stats)
            return analyser.keypoints(theirs.images[index], b_list[index], stats)

        return keypoints

    def _set_colour(
        self, evidence: PairEvidence, a_list: list[ImageAnalysis], b_list: list[ImageAnalysis], garment: str | None,
        geometry: GeometryEvidence, *, use_cutout: bool,
    ) -> None:
        by_region = pair_colour_distance(a_list, b_list, garment, use_cutout=use_cutout)
        evidence.colour_distance, evidence.colour_distance_in_place = colour_evidence(
            by_region, geometry.mapped_colour, geometry.in_place, trusted_inliers=self.mapped_colour_trusted_inliers
        )

    # -- cascade gates (cascade.py decides; these add the switch and the counts) --

    def _cutout_could_matter(self, evidence: PairEvidence, mapped_colour: float | None, stats: StageCounts) -> bool:
        """Whether a cut-out could move the pair to another bucket (always, with the gates off)."""
        if not self.outcome_gates:
            return True
        if cascade.can_change_bucket(evidence, self.policy, cascade.Stage.CUTOUT, mapped_colour=mapped_colour):
            return True
        stats.cutout_skipped += 1
        return False

    def _number_ocr_could_matter(self, evidence: PairEvidence, b_list: list[ImageAnalysis], stats: StageCounts) -> bool:
        """Whether reading the listing's photos for our product number is worth it: they have been
        read already (free), or a confirmed number could move the pair to another bucket."""
        if not self.outcome_gates or self.photo_text.all_read(b_list):
            return True
        if cascade.can_change_bucket(evidence, self.policy, cascade.Stage.NUMBER_OCR):
            return True
        stats.ocr_skipped += 1
        return False


def _set_appearance(evidence: PairEvidence, per_image: PhotoPairCosines) -> tuple[RegionRef, RegionRef] | None:
    """Put the best cosine (and its regions' labels) into the evidence; the region pair, or None."""
    best = best_pair(per_image)
    if best is None:
        return None
    cos, ra, rb = best
    evidence.cosine = cos
    evidence.cosine_regions = (ra.label(), rb.label())
    return ra, rb
