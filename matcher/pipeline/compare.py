"""Compare our SKU's photos and title with a competitor listing's: evidence → decision.

Plain Python, no Django. The stages are passed in (region finder, embedder, optional
background remover and OCR), so the caller chooses them (settings, tests).

Per-image work (regions, region embeddings, garment colours, keypoints, cut-outs, OCR
text) is an `ImageAnalysis`, keyed by the image's sha256 and kept in an `AnalysisCache`
(in memory here; the Django side backs it with PostgreSQL through `to_bytes`/`from_bytes`),
so nothing is computed twice across pairs.

The cascade: regions, embeddings and colour for every image; keypoint geometry only on
the few image pairs the embeddings rank best; background removal only for regions on a
busy background, only when the pair is near a threshold, and only when what a cut-out can
change (a higher cosine; the region colour, unless the in-place colour already decides) could
move the pair to another bucket; OCR of the listing's images for a product number only when
we know ours, the listing's title does not show one, the pair is near a threshold and a
confirmed number could move it to another bucket; OCR for printed conflicts before every
automatic match. "Another bucket" is judged with the LLM verdict the pair has, or, before
the verifier has been asked, with none and with an agreeing one (the verdict that could still
come), so a skipped stage never hides a bucket the verifier could have reached. The
decision rules themselves (decide.py) are unchanged. `stats` counts how often each stage
ran, and how often a gate found it could not change the outcome.
"""
from __future__ import annotations

import hashlib
import io
import json
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Callable, Protocol, Sequence, TypeVar

import numpy as np
from PIL import Image

from matcher.pipeline import features as F
from matcher.pipeline.attributes import (
    Attributes,
    Lexicon,
    compare_product_numbers,
    conflicts as attribute_conflicts,
    extract,
    extract_product_numbers,
    garment_region_kind,
    parse_product_number,
)
from matcher.pipeline.decide import DecisionPolicy, decide
from matcher.pipeline.types import (
    BackgroundRemover,
    Box,
    ColourSignature,
    Decision,
    Embedder,
    LlmVerdict,
    PairEvidence,
    Region,
    RegionFinder,
)

# Which region kinds may be compared by embedding: like with like, plus a flat-lay or collage
# item against a garment worn by a person, and a whole photo against a collage item.
COMPATIBLE_KINDS: frozenset[tuple[str, str]] = frozenset(
    {("whole", "whole"), ("outfit", "outfit"), ("upper", "upper"), ("lower", "lower"), ("item", "item")}
    | {(a, b) for a in ("item",) for b in ("upper", "lower", "outfit", "whole")}
    | {(b, a) for a in ("item",) for b in ("upper", "lower", "outfit", "whole")}
)
GARMENT_FALLBACK_ORDER = ("upper", "lower", "item", "outfit", "whole")

# What loading a photo raises when its file is missing, truncated or not an image (PIL raises
# UnidentifiedImageError, an OSError, and for some broken files SyntaxError or EOFError).
UNREADABLE_IMAGE_ERRORS: tuple[type[BaseException], ...] = (
    OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError,
)


_T = TypeVar("_T")


class Ocr(Protocol):
    name: str

    def available(self) -> bool: ...

    def read(self, image: Image.Image) -> str: ...


# --- inputs ------------------------------------------------------------------------


@dataclass
class ImageInput:
    """One photo: its sha256 (the cache key) and a way to get its pixels when needed."""

    sha256: str
    image: Image.Image | None = None
    loader: Callable[[], Image.Image] | None = None
    label: str = ""  # shown in reasons, e.g. a file name or URL

    def load(self) -> Image.Image:
        if self.image is None:
            if self.loader is None:
                raise ValueError(f"no pixels for image {self.sha256[:12]} and it is not in the cache")
            self.image = self.loader()
        return self.image.convert("RGB") if self.image.mode != "RGB" else self.image

    @classmethod
    def from_path(cls, path: str | Path) -> "ImageInput":
        path = Path(path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        return cls(sha256=digest, loader=lambda: Image.open(path).convert("RGB"), label=path.name)

    @classmethod
    def from_bytes(cls, data: bytes, label: str = "") -> "ImageInput":
        return cls(
            sha256=hashlib.sha256(data).hexdigest(),
            loader=lambda: Image.open(io.BytesIO(data)).convert("RGB"),
            label=label,
        )

    @classmethod
    def from_image(cls, image: Image.Image, label: str = "") -> "ImageInput":
        rgb = image.convert("RGB")
        h = hashlib.sha256(f"{rgb.size}".encode())
        h.update(rgb.tobytes())
        return cls(sha256=h.hexdigest(), image=rgb, label=label)


@dataclass
class SkuSide:
    """Our SKU: 1–5 photos, its title, and optionally its product number and attributes."""

    images: Sequence[ImageInput]
    title: str = ""
    product_number: str | None = None
    attributes: Attributes | None = None  # when None, extracted from the title


@dataclass
class ListingSide:
    """A competitor listing: its photos and title."""

    images: Sequence[ImageInput]
    title: str = ""


# --- per-image analysis and its cache ----------------------------------------------


@dataclass
class ImageAnalysis:
    """Everything computed for one image; safe to cache by sha256."""

    sha256: str
    size: tuple[int, int]
    regions: list[Region]
    embedder: str  # "name@checkpoint_hash" the embeddings come from
    embeddings: np.ndarray  # (len(regions), dim) float32
    colours: list[ColourSignature | None]
    keypoints: F.ImageKeypoints | None = None
    # Filled by the cascade, per region index.
    cutout_embeddings: dict[int, np.ndarray] = field(default_factory=dict)
    cutout_colours: dict[int, ColourSignature | None] = field(default_factory=dict)
    ocr_text: str | None = None
    # Which OCR read ocr_text (Ocr.signature): a text read by another engine or with other
    # settings is read again, so an OCR upgrade reaches cached photos as they come up.
    ocr_engine: str | None = None

    def to_bytes(self) -> bytes:
        """A self-contained blob (numpy .npz with JSON metadata): no pickle."""
        arrays: dict[str, np.ndarray] = {"embeddings": self.embeddings.astype(np.float32)}
        meta: dict = {
            "sha256": self.sha256,
            "size": list(self.size),
            "embedder": self.embedder,
            "regions": [_region_to_json(r) for r in self.regions],
            "colours": [],
            "cutout": sorted(self.cutout_embeddings),
            "cutout_colours": [],
            "ocr_text": self.ocr_text,
            "ocr_engine": self.ocr_engine,
            "keypoints": self.keypoints is not None,
        }
        for i, sig in enumerate(self.colours):
            meta["colours"].append(sig is not None)
            if sig is not None:
                _put_signature(arrays, f"colour{i}", sig)
        for i, emb in self.cutout_embeddings.items():
            arrays[f"cutout_emb{i}"] = emb.astype(np.float32)
        for i, sig in self.cutout_colours.items():
            meta["cutout_colours"].append([i, sig is not None])
            if sig is not None:
                _put_signature(arrays, f"cutout_colour{i}", sig)
        if self.keypoints is not None:
            arrays["keypoints"] = np.frombuffer(self.keypoints.to_bytes(), np.uint8)
        arrays["meta"] = np.frombuffer(json.dumps(meta, ensure_ascii=False).encode(), np.uint8)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "ImageAnalysis":
        z = np.load(io.BytesIO(data), allow_pickle=False)
        meta = json.loads(z["meta"].tobytes().decode())
        colours = [_get_signature(z, f"colour{i}") if present else None for i, present in enumerate(meta["colours"])]
        cutout_colours = {
            int(i): (_get_signature(z, f"cutout_colour{i}") if present else None) for i, present in meta["cutout_colours"]
        }
        return cls(
            sha256=meta["sha256"],
            size=(int(meta["size"][0]), int(meta["size"][1])),
            regions=[_region_from_json(r) for r in meta["regions"]],
            embedder=meta["embedder"],
            embeddings=z["embeddings"],
            colours=colours,
            keypoints=F.ImageKeypoints.from_bytes(z["keypoints"].tobytes()) if meta["keypoints"] else None,
            cutout_embeddings={int(i): z[f"cutout_emb{i}"] for i in meta["cutout"]},
            cutout_colours=cutout_colours,
            ocr_text=meta["ocr_text"],
            ocr_engine=meta.get("ocr_engine"),
        )


def _put_signature(arrays: dict[str, np.ndarray], key: str, sig: ColourSignature) -> None:
    arrays[key + "_h"] = sig.histogram.astype(np.float32)
    arrays[key + "_d"] = sig.dominant_lab.astype(np.float32)
    arrays[key + "_w"] = sig.weights.astype(np.float32)


def _get_signature(z, key: str) -> ColourSignature:
    return ColourSignature(histogram=z[key + "_h"], dominant_lab=z[key + "_d"], weights=z[key + "_w"])


def _region_to_json(r: Region) -> dict:
    return {
        "kind": r.kind,
        "box": r.box.as_list(),
        "needs_cutout": r.needs_cutout,
        "score": r.score,
        "keypoints": [list(k) for k in r.keypoints] if r.keypoints else None,
    }


def _region_from_json(d: dict) -> Region:
    return Region(
        kind=d["kind"],
        box=Box(*d["box"]),
        needs_cutout=bool(d["needs_cutout"]),
        score=float(d["score"]),
        keypoints=[tuple(k) for k in d["keypoints"]] if d["keypoints"] else None,
    )


class AnalysisCache(Protocol):
    def get(self, sha256: str) -> ImageAnalysis | None: ...

    def put(self, analysis: ImageAnalysis) -> None: ...


class MemoryAnalysisCache:
    def __init__(self) -> None:
        self._items: dict[str, ImageAnalysis] = {}

    def get(self, sha256: str) -> ImageAnalysis | None:
        return self._items.get(sha256)

    def put(self, analysis: ImageAnalysis) -> None:
        self._items[analysis.sha256] = analysis


class DirectoryAnalysisCache:
    """One file per image under a folder (for command-line evaluation runs)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._memory = MemoryAnalysisCache()

    def _path(self, sha256: str) -> Path:
        return self.folder / f"{sha256}.npz"

    def get(self, sha256: str) -> ImageAnalysis | None:
        found = self._memory.get(sha256)
        if found is None and self._path(sha256).is_file():
            found = ImageAnalysis.from_bytes(self._path(sha256).read_bytes())
            self._memory.put(found)
        return found

    def put(self, analysis: ImageAnalysis) -> None:
        self._memory.put(analysis)
        self._path(analysis.sha256).write_bytes(analysis.to_bytes())


# --- results -----------------------------------------------------------------------


@dataclass
class StageCounts:
    """How often each stage ran (cache hits do not count as runs)."""

    images: int = 0
    cache_hits: int = 0
    region_images: int = 0
    embedded_crops: int = 0
    colour_signatures: int = 0
    keypoint_images: int = 0
    geometry_checks: int = 0
    cutout_images: int = 0
    ocr_images: int = 0
    unreadable_images: int = 0
    # Pairs where a stage was due by the old rule (near a threshold) but could not change the bucket.
    cutout_skipped: int = 0
    ocr_skipped: int = 0

    def add(self, other: "StageCounts") -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass
class Comparison:
    evidence: PairEvidence
    decision: Decision
    stats: StageCounts
    # Where the evidence came from, for the review page.
    best_images: tuple[int, int] | None = None
    garment_kind: str | None = None
    geometry_pairs: list[tuple[int, int, int, float | None]] = field(default_factory=list)  # (i, j, inliers, agreement)


# --- the comparer ------------------------------------------------------------------


@dataclass
class _RegionRef:
    side: str  # "ours" / "theirs"
    image: int
    region: int
    kind: str

    def label(self) -> str:
        return f"{self.side}[{self.image}].{self.kind}"


OCR_CONFLICT_SUFFIX = " (사진 속 글자 OCR)"


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
        self.max_geometry_checks = max_geometry_checks
        self.cascade_margin = cascade_margin
        self.max_ocr_images = max_ocr_images
        self.mapped_colour_min_inliers = mapped_colour_min_inliers
        self.mapped_colour_trusted_inliers = mapped_colour_trusted_inliers
        self.outcome_gates = outcome_gates
        self.embedder_label = f"{embedder.name}@{getattr(embedder, 'checkpoint_hash', '')}"
        self.totals = StageCounts()
        # Decoded photos with their colour conversions, by sha256: our SKU's few photos are
        # compared with every listing of the batch, so they stay at the front.
        self._prepared: OrderedDict[str, F.PreparedImage] = OrderedDict()
        self.max_prepared = 8
        # Our garment's mask in each of our photos, read once for every listing it is checked against. Each
        # holds its photo's PreparedImage (tens of MB for a large photo), so no more of them than photos.
        self._garments: OrderedDict[tuple, _GarmentPixels] = OrderedDict()
        self.max_garments = self.max_prepared

    def _prepared_image(self, ref: ImageInput) -> F.PreparedImage:
        return _kept(self._prepared, ref.sha256, lambda: F.PreparedImage(np.asarray(ref.load())), self.max_prepared)

    def _garment_pixels(self, ref: ImageInput, image: F.PreparedImage, region: Region) -> "_GarmentPixels":
        key = (ref.sha256, region.kind, tuple(region.box.as_list()), tuple(map(tuple, region.keypoints or ())))
        return _kept(
            self._garments, key, lambda: _GarmentPixels(image, F.garment_mask(image.rgb, region, lab=image.lab)),
            self.max_garments,
        )

    # -- per-image analysis --

    def analyse(
        self,
        images: Sequence[ImageInput],
        stats: StageCounts | None = None,
        *,
        on_unreadable: Callable[[ImageInput, BaseException], None] | None = None,
    ) -> list[ImageAnalysis]:
        """Analyses for these images, computing (in one batch) only what the cache lacks.

        A photo whose pixels cannot be loaded (missing file, not an image) raises, unless
        `on_unreadable` is given: then it is reported there, left out of the result, and the
        rest of the batch is analysed as usual.
        """
        stats = stats if stats is not None else StageCounts()
        out: list[ImageAnalysis | None] = []
        missing: list[int] = []
        for idx, ref in enumerate(images):
            stats.images += 1
            found = self.cache.get(ref.sha256)
            if found is not None and found.embedder == self.embedder_label:
                stats.cache_hits += 1
                out.append(found)
            else:
                out.append(found)  # may carry regions from another embedder
                missing.append(idx)
        if missing:
            pixels: dict[int, Image.Image] = {}
            for i in missing:
                try:
                    pixels[i] = images[i].load()
                except UNREADABLE_IMAGE_ERRORS as exc:
                    if on_unreadable is None:
                        raise
                    on_unreadable(images[i], exc)
                    stats.unreadable_images += 1
                    out[i] = None
            missing = [i for i in missing if i in pixels]
            need_regions = [i for i in missing if out[i] is None]
            found_regions: dict[int, list[Region]] = {}
            if need_regions:
                stats.region_images += len(need_regions)
                for i, regions in zip(need_regions, self.finder.find([pixels[i] for i in need_regions])):
                    found_regions[i] = regions
            crops: list[Image.Image] = []
            owners: list[int] = []
            for i in missing:
                regions = found_regions[i] if i in found_regions else out[i].regions  # type: ignore[union-attr]
                found_regions[i] = regions
                for region in regions:
                    crops.append(pixels[i].crop(tuple(region.box.as_list())))
                    owners.append(i)
            embeddings = self.embedder.embed(crops) if crops else np.zeros((0, self.embedder.dim), np.float32)
            stats.embedded_crops += len(crops)
            for i in missing:
                rows = [k for k, owner in enumerate(owners) if owner == i]
                previous = out[i]
                if previous is not None:
                    colours = previous.colours
                else:
                    rgb = np.asarray(pixels[i])
                    lab = F.rgb_to_lab(rgb) if found_regions[i] else None
                    colours = [F.colour_signature(rgb, region, lab=lab) for region in found_regions[i]]
                    stats.colour_signatures += len(colours)
                analysis = ImageAnalysis(
                    sha256=images[i].sha256,
                    size=pixels[i].size,
                    regions=found_regions[i],
                    embedder=self.embedder_label,
                    embeddings=embeddings[rows].astype(np.float32),
                    colours=colours,
                    keypoints=previous.keypoints if previous is not None else None,
                    ocr_text=previous.ocr_text if previous is not None else None,
                    ocr_engine=previous.ocr_engine if previous is not None else None,
                )
                self.cache.put(analysis)
                out[i] = analysis
        return [a for a in out if a is not None]

    def _keypoints(self, ref: ImageInput, analysis: ImageAnalysis, stats: StageCounts) -> F.ImageKeypoints:
        if analysis.keypoints is None:
            analysis.keypoints = F.image_keypoints(ref.load())
            stats.keypoint_images += 1
            self.cache.put(analysis)
        return analysis.keypoints

    # -- the comparison --

    def compare(self, ours: SkuSide, theirs: ListingSide, *, llm: LlmVerdict | None = None) -> Comparison:
        stats = StageCounts()
        a_list = self.analyse(ours.images, stats)
        b_list = self.analyse(theirs.images, stats)

        our_attrs = ours.attributes if ours.attributes is not None else extract(ours.title, self.lexicon)
        their_attrs = extract(theirs.title, self.lexicon)
        garment = garment_region_kind(our_attrs)
        our_numbers = []
        if ours.product_number:
            parsed = parse_product_number(ours.product_number)
            our_numbers = [parsed] if parsed else []
        if not our_numbers:
            our_numbers = extract_product_numbers(ours.title)
        their_numbers = extract_product_numbers(theirs.title)

        evidence = PairEvidence(
            product_number=compare_product_numbers(our_numbers, their_numbers),
            conflicts=attribute_conflicts(our_attrs, their_attrs, self.lexicon),
            llm=llm,
        )
        per_image = self._image_pair_cosines(a_list, b_list, use_cutout=False)
        self._fill_appearance(evidence, per_image)
        best_images = max(per_image, key=lambda k: per_image[k][0]) if per_image else None
        geometry_pairs, mapped_colour, in_place = self._fill_geometry(
            evidence, ours, theirs, a_list, b_list, per_image, garment, stats
        )
        self._set_colour(
            evidence, self._colour_distance(a_list, b_list, garment, use_cutout=False), mapped_colour, in_place
        )
        decision = decide(evidence, self.policy)

        if (
            self.remover is not None
            and self._near_threshold(decision.confidence)
            and self._cutout_could_matter(evidence, mapped_colour, stats)
        ):
            if self._cutout_pass(ours, theirs, a_list, b_list, per_image, stats):
                per_image = self._image_pair_cosines(a_list, b_list, use_cutout=True)
                self._fill_appearance(evidence, per_image)
                best_images = max(per_image, key=lambda k: per_image[k][0]) if per_image else None
                self._set_colour(
                    evidence, self._colour_distance(a_list, b_list, garment, use_cutout=True), mapped_colour,
                    in_place,
                )
                decision = decide(evidence, self.policy)

        if (
            self.ocr is not None
            and evidence.product_number == "absent"
            and our_numbers
            and self._near_threshold(decision.confidence)
            and self._number_ocr_could_matter(evidence, b_list, stats)
        ):
            texts = self._ocr_texts(theirs, b_list, stats)
            found = [pn for text in texts for pn in extract_product_numbers(text)]
            # OCR misreads are common: a number read from a photo may confirm ours but never
            # counts against it.
            if compare_product_numbers(our_numbers, found, ocr_tolerant=True) == "match":
                evidence.product_number = "match"
                decision = decide(evidence, self.policy)
                decision.reasons.append("product number read from the listing's photos (OCR)")

        comparison = Comparison(
            evidence=evidence,
            decision=decision,
            stats=stats,
            best_images=best_images,
            garment_kind=garment,
            geometry_pairs=geometry_pairs,
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
        our_attrs = ours.attributes if ours.attributes is not None else extract(ours.title, self.lexicon)
        b_list = _analyses if _analyses is not None else self.analyse(theirs.images)
        texts = self._ocr_texts(theirs, b_list, comparison.stats)
        printed = extract("\n".join(texts), self.lexicon, ocr=True)
        known = {c.removesuffix(OCR_CONFLICT_SUFFIX) for c in comparison.evidence.conflicts}
        found = [c for c in attribute_conflicts(our_attrs, printed, self.lexicon) if c not in known]
        if not found:
            return False
        comparison.evidence.conflicts.extend(f"{c}{OCR_CONFLICT_SUFFIX}" for c in found)
        comparison.decision = decide(comparison.evidence, self.policy)
        return True

    def could_reach_auto(self, evidence: PairEvidence) -> bool:
        """Whether an agreeing LLM verdict could make this pair an automatic match."""
        return any(
            decide(replace(evidence, llm=llm), self.policy).bucket == "auto"
            for llm in self._llm_scenarios(replace(evidence, llm=None))
        )

    def _set_colour(
        self,
        evidence: PairEvidence,
        by_region: float | None,
        mapped: float | None,
        in_place: tuple[float, int] | None,
    ) -> None:
        """colour_distance: the smaller of the region and the through-the-transform readings
        (a collage tile the pose model missed still counts); colour_distance_in_place: the
        pixel-by-pixel reading, when enough inliers make the transform reliable."""
        evidence.colour_distance = _smaller(by_region, mapped)
        trusted = in_place is not None and in_place[1] >= self.mapped_colour_trusted_inliers
        evidence.colour_distance_in_place = in_place[0] if trusted else None

    # -- cascade gates: would the stage's answer change the bucket? --

    def _llm_scenarios(self, evidence: PairEvidence) -> list[LlmVerdict | None]:
        """The verdicts to judge a gate under: the pair's own, or (none asked yet) none and an
        agreeing one at the weakest and the strongest confidence that counts as agreement."""
        if evidence.llm is not None:
            return [evidence.llm]
        return [None] + [
            LlmVerdict(is_match=True, confidence=c, model="(hypothetical)")
            for c in (self.policy.llm_agree_confidence, 1.0)
        ]

    def _could_change_bucket(self, evidence: PairEvidence, *variants: PairEvidence) -> bool:
        """True if any variant of the evidence could end in another bucket than the evidence itself.

        The bucket is monotonic in every kind of evidence (decide.py), so variants at the
        extremes of what a stage can report bound everything in between.
        """
        for llm in self._llm_scenarios(evidence):
            now = decide(replace(evidence, llm=llm), self.policy).bucket
            for variant in variants:
                if decide(replace(variant, llm=llm), self.policy).bucket != now:
                    return True
        return False

    def _cutout_could_matter(self, evidence: PairEvidence, mapped_colour: float | None, stats: StageCounts) -> bool:
        """Whether a cut-out could move the pair to another bucket.

        A cut-out only adds embeddings (the cosine can only rise, to 1 at most) and replaces
        region colours (the colour distance can land anywhere from 0 to the colour read through
        the transform, or 1). When the in-place colour is known, decide() does not use the region
        colour at all, so only the cosine is left to move.
        """
        if not self.outcome_gates or evidence.cosine is None:
            return True
        best = replace(evidence, cosine=1.0)
        worst = replace(evidence)
        if evidence.colour_distance_in_place is None:
            best.colour_distance = 0.0
            worst.colour_distance = mapped_colour if mapped_colour is not None else 1.0
        if self._could_change_bucket(evidence, best, worst):
            return True
        stats.cutout_skipped += 1
        return False

    def _number_ocr_could_matter(self, evidence: PairEvidence, b_list: list[ImageAnalysis], stats: StageCounts) -> bool:
        """Whether reading the listing's photos for our product number is worth it: they have been
        read already (free), or a confirmed number (the only thing OCR may conclude about it)
        could move the pair to another bucket."""
        if not self.outcome_gates or all(self._ocr_read(a) for a in b_list[: self.max_ocr_images]):
            return True
        if self._could_change_bucket(evidence, replace(evidence, product_number="match")):
            return True
        stats.ocr_skipped += 1
        return False

    def _near_threshold(self, confidence: float) -> bool:
        p = self.policy
        return any(abs(confidence - t) <= self.cascade_margin for t in (p.auto_threshold, p.review_threshold))

    # -- appearance --

    def _embeddings(self, analysis: ImageAnalysis, use_cutout: bool) -> list[list[np.ndarray]]:
        """Per region: the embeddings to try (original, and the cut-out one when there is one)."""
        out = []
        for k in range(len(analysis.regions)):
            options = [analysis.embeddings[k]]
            if use_cutout and k in analysis.cutout_embeddings:
                options.append(analysis.cutout_embeddings[k])
            out.append(options)
        return out

    def _image_pair_cosines(
        self, a_list: list[ImageAnalysis], b_list: list[ImageAnalysis], *, use_cutout: bool
    ) -> dict[tuple[int, int], tuple[float, _RegionRef, _RegionRef]]:
        """For each (our image, their image): the best cosine over compatible region pairs."""
        best: dict[tuple[int, int], tuple[float, _RegionRef, _RegionRef]] = {}
        for i, a in enumerate(a_list):
            ea = self._embeddings(a, use_cutout)
            for j, b in enumerate(b_list):
                eb = self._embeddings(b, use_cutout)
                for ra, region_a in enumerate(a.regions):
                    for rb, region_b in enumerate(b.regions):
                        if (region_a.kind, region_b.kind) not in COMPATIBLE_KINDS:
                            continue
                        cos = max(float(np.dot(x, y)) for x in ea[ra] for y in eb[rb])
                        if (i, j) not in best or cos > best[(i, j)][0]:
                            best[(i, j)] = (
                                cos,
                                _RegionRef("ours", i, ra, region_a.kind),
                                _RegionRef("theirs", j, rb, region_b.kind),
                            )
        return best

    @staticmethod
    def _fill_appearance(evidence: PairEvidence, per_image: dict) -> None:
        if not per_image:
            return
        cos, ra, rb = max(per_image.values(), key=lambda v: v[0])
        evidence.cosine = cos
        evidence.cosine_regions = (ra.label(), rb.label())

    # -- colour --

    @staticmethod
    def _colour_candidates(
        analysis: ImageAnalysis, kind: str, use_cutout: bool
    ) -> list[ColourSignature]:
        out = []
        for k, region in enumerate(analysis.regions):
            if region.kind != kind:
                continue
            sig = analysis.cutout_colours.get(k) if use_cutout and k in analysis.cutout_colours else analysis.colours[k]
            if sig is not None:
                out.append(sig)
        return out

    def _colour_distance(
        self, a_list: list[ImageAnalysis], b_list: list[ImageAnalysis], garment: str | None, *, use_cutout: bool
    ) -> float | None:
        """Smallest garment colour distance over image pairs.

        With the garment's place known from our title (upper/lower/outfit) that region is
        compared; otherwise every garment region both photos show (upper and lower) must
        agree (the larger distance counts), which is what tells a top in another colour
        from the same top over the same trousers. Close-ups and flat-lays fall back to the
        item or the whole view. Several instances on their side (people or collage tiles)
        count as alternatives.
        """
        best: float | None = None
        for a in a_list:
            for b in b_list:
                d = self._colour_distance_one(a, b, garment, use_cutout)
                if d is not None and (best is None or d < best):
                    best = d
        return best

    def garment_colour_distance(self, a: ImageAnalysis, b: ImageAnalysis) -> float | None:
        """The garment colour distance of two photos (0 same .. 1 far apart; None when neither
        shows a region to compare), as compare() reads it without a title to say which garment."""
        return self._colour_distance_one(a, b, None, False)

    def _colour_distance_one(
        self, a: ImageAnalysis, b: ImageAnalysis, garment: str | None, use_cutout: bool
    ) -> float | None:
        def dist(kind_a: str, kind_b: str) -> float | None:
            sa = self._colour_candidates(a, kind_a, use_cutout)
            sb = self._colour_candidates(b, kind_b, use_cutout)
            if not sa or not sb:
                return None
            return min(F.colour_distance(sa[0], y) for y in sb)

        if garment is not None:
            d = dist(garment, garment)
            if d is not None:
                return d
        common = [
            k for k in ("upper", "lower") if self._colour_candidates(a, k, use_cutout) and self._colour_candidates(b, k, use_cutout)
        ]
        if common and garment is None:
            ds = [dist(k, k) for k in common]
            return max(d for d in ds if d is not None)
        order = ((garment,) if garment else ()) + GARMENT_FALLBACK_ORDER
        ka = next((k for k in order if self._colour_candidates(a, k, use_cutout)), None)
        kb = next((k for k in order if self._colour_candidates(b, k, use_cutout)), None)
        if ka is None or kb is None:
            return None
        return dist(ka, kb)

    # -- geometry --

    @staticmethod
    def _garment_region(analysis: ImageAnalysis, garment: str | None) -> Region:
        order = ((garment,) if garment else ()) + GARMENT_FALLBACK_ORDER
        for kind in order:
            for region in analysis.regions:
                if region.kind == kind:
                    return region
        return analysis.regions[0]

    def _fill_geometry(
        self,
        evidence: PairEvidence,
        ours: SkuSide,
        theirs: ListingSide,
        a_list: list[ImageAnalysis],
        b_list: list[ImageAnalysis],
        per_image: dict,
        garment: str | None,
        stats: StageCounts,
    ) -> tuple[list[tuple[int, int, int, float | None]], float | None, tuple[float, int] | None]:
        """Keypoint geometry on the best-ranked image pairs; also the smallest region-style
        colour distance read through a transform (None if no pair had enough inliers) and the
        in-place colour distance of the best-supported transform with its inliers."""
        ranked = sorted(per_image, key=lambda k: -per_image[k][0])[: self.max_geometry_checks]
        checked: list[tuple[int, int, int, float | None]] = []
        best_score = -1.0
        mapped_colour: float | None = None
        in_place_best: tuple[float, int] | None = None  # (distance, inliers) of the best-supported transform
        for i, j in ranked:
            ka = self._keypoints(ours.images[i], a_list[i], stats)
            kb = self._keypoints(theirs.images[j], b_list[j], stats)
            stats.geometry_checks += 1
            match = F.match_geometry(ka, kb)
            region = self._garment_region(a_list[i], garment)
            on_garment = match.within(tuple(region.box.as_list()))
            agreement = on_garment.colour_agreement
            if on_garment.inliers >= 4 and match.transform is not None:
                image_a = self._prepared_image(ours.images[i])
                image_b = self._prepared_image(theirs.images[j])
                garment_a = self._garment_pixels(ours.images[i], image_a, region)
                in_place = F.in_place_colour(image_a, garment_a.mask, image_b, match.transform)
                if in_place is not None:
                    agreement = in_place.agreement
                if on_garment.inliers >= self.mapped_colour_min_inliers:
                    # Our garment found in their photo: read its colour there, whatever regions
                    # their photo was split into (a collage tile the pose model missed, a crop).
                    d = _mapped_colour_distance(garment_a, image_b, match.transform)
                    if d is not None and (mapped_colour is None or d < mapped_colour):
                        mapped_colour = d
                    if in_place is not None and (
                        in_place_best is None or on_garment.inliers > in_place_best[1]
                    ):
                        in_place_best = (in_place.distance, on_garment.inliers)
            checked.append((i, j, on_garment.inliers, agreement))
            score = on_garment.inliers * (agreement if agreement is not None else 1.0)
            if score > best_score:
                best_score = score
                evidence.inliers = on_garment.inliers
                evidence.inlier_colour_agreement = agreement
        return checked, mapped_colour, in_place_best

    # -- cascade: background removal --

    def _cutout_pass(
        self,
        ours: SkuSide,
        theirs: ListingSide,
        a_list: list[ImageAnalysis],
        b_list: list[ImageAnalysis],
        per_image: dict,
        stats: StageCounts,
    ) -> bool:
        """Cut out the images of the best image pair whose regions need it. True if anything changed."""
        if not per_image or self.remover is None:
            return False
        i, j = max(per_image, key=lambda k: per_image[k][0])
        changed = False
        for ref, analysis in ((ours.images[i], a_list[i]), (theirs.images[j], b_list[j])):
            todo = [k for k, r in enumerate(analysis.regions) if r.needs_cutout and k not in analysis.cutout_embeddings]
            if not todo:
                continue
            image = ref.load()
            cut, foreground = self._cut(image)
            stats.cutout_images += 1
            crops = [cut.crop(tuple(analysis.regions[k].box.as_list())) for k in todo]
            embs = self.embedder.embed(crops)
            stats.embedded_crops += len(crops)
            rgb = np.asarray(image)
            for k, emb in zip(todo, embs):
                analysis.cutout_embeddings[k] = emb.astype(np.float32)
                analysis.cutout_colours[k] = F.colour_signature(rgb, analysis.regions[k], foreground=foreground)
                stats.colour_signatures += 1
            self.cache.put(analysis)
            changed = True
        return changed

    def _cut(self, image: Image.Image) -> tuple[Image.Image, np.ndarray]:
        """The cut-out and its foreground mask (from the remover's own mask when it offers one)."""
        masks = getattr(self.remover, "masks", None)
        if callable(masks):
            alpha = np.asarray(masks([image])[0].convert("L").resize(image.size), np.float32)[..., None] / 255.0
            rgb = np.asarray(image, np.float32)
            fill = np.asarray(getattr(self.remover, "background", (255, 255, 255)), np.float32)
            cut = Image.fromarray(np.clip(rgb * alpha + fill * (1 - alpha) + 0.5, 0, 255).astype(np.uint8), "RGB")
            return cut, alpha[..., 0] >= 0.5
        cut = self.remover.cutout([image])[0]  # type: ignore[union-attr]
        return cut, _foreground_from_cutout(image, cut)

    # -- cascade: OCR --

    def _ocr_read(self, analysis: ImageAnalysis) -> bool:
        """Whether the photo's text is known, read by the OCR this comparer uses."""
        if analysis.ocr_text is None:
            return False
        return self.ocr is None or analysis.ocr_engine == _ocr_signature(self.ocr)

    def _ocr_texts(self, theirs: ListingSide, b_list: list[ImageAnalysis], stats: StageCounts) -> list[str]:
        texts = []
        for ref, analysis in list(zip(theirs.images, b_list))[: self.max_ocr_images]:
            if self.ocr is not None and not self._ocr_read(analysis):
                analysis.ocr_text = self.ocr.read(ref.load())
                analysis.ocr_engine = _ocr_signature(self.ocr)
                stats.ocr_images += 1
                self.cache.put(analysis)
            texts.append(analysis.ocr_text or "")
        return texts


def _kept(items: OrderedDict, key, make: Callable[[], _T], limit: int) -> _T:
    """items[key], made by make() when missing; the least recently used are dropped past `limit`."""
    found = items.get(key)
    if found is None:
        found = items[key] = make()
        while len(items) > limit:
            items.popitem(last=False)
    items.move_to_end(key)
    return found


def _ocr_signature(ocr: Ocr) -> str:
    return getattr(ocr, "signature", None) or getattr(ocr, "name", type(ocr).__name__)


def _smaller(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


class _GarmentPixels:
    """Our garment's mask in one of our photos and, read when first asked, the colour signature of all of
    it: our few photos are checked against every listing of a batch, and when the whole garment lands
    inside their photo the signature is the same each time."""

    def __init__(self, image: F.PreparedImage, mask: np.ndarray) -> None:
        self.image = image
        self.mask = mask
        self.pixels = int(np.count_nonzero(mask))

    @cached_property
    def signature(self) -> ColourSignature | None:
        return F.colour_signature_in_mask(self.image, self.mask)

    def signature_within(self, keep: np.ndarray) -> ColourSignature | None:
        """The signature of the garment pixels under `keep` (the whole garment's when none is left out)."""
        inside = self.mask & keep
        return self.signature if np.count_nonzero(inside) == self.pixels else F.colour_signature_in_mask(self.image, inside)


def _mapped_colour_distance(garment_a: _GarmentPixels, image_b: F.PreparedImage, transform: np.ndarray) -> float | None:
    """Colour distance between our garment and the same place in their photo under `transform`,
    both read over the part of the garment that lands inside their photo."""
    import cv2

    hb, wb = image_b.rgb.shape[:2]
    ha, wa = garment_a.image.rgb.shape[:2]
    warped = cv2.warpAffine(
        garment_a.mask.astype(np.uint8), transform.astype(np.float64), (wb, hb), flags=cv2.INTER_NEAREST
    ) > 0
    # The part of our mask that lands inside their photo, back in our coordinates.
    back = cv2.warpAffine(
        np.ones((hb, wb), np.uint8), transform.astype(np.float64), (wa, ha), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP
    ) > 0
    ours = garment_a.signature_within(back)
    theirs = F.colour_signature_in_mask(image_b, warped)
    if ours is None or theirs is None:
        return None
    return F.colour_distance(ours, theirs)


def _foreground_from_cutout(original: Image.Image, cut: Image.Image) -> np.ndarray:
    """Foreground mask from a cut-out alone: pixels the remover left as they were and that
    are not its fill colour (read from the cut-out's corners)."""
    a = np.asarray(original.convert("RGB"), np.int16)
    b = np.asarray(cut.convert("RGB").resize(original.size), np.int16)
    corners = np.stack([b[0, 0], b[0, -1], b[-1, 0], b[-1, -1]])
    fill = np.median(corners, axis=0)
    unchanged = np.abs(a - b).max(axis=2) <= 24
    is_fill = np.abs(b - fill).max(axis=2) <= 6
    return unchanged & ~is_fill
