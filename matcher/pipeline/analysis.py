"""Per-image analysis: regions, their embeddings and garment colours, and keypoints, cached by sha256.

Plain Python, no Django. An `ImageAnalysis` is everything computed for one photo; the `Analyser`
computes (in one batch) only what the `AnalysisCache` lacks, so nothing is computed twice across
pairs. The Django side backs the cache with PostgreSQL through `to_bytes` / `from_bytes`: a numpy
.npz with JSON metadata (no pickle), whose layout is the cache's binary format — change it only
together with a way to read the blobs already stored.
"""
from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from PIL import Image

from matcher.pipeline.evidence.colour.signature import colour_signature
from matcher.pipeline.evidence.geometry import ImageKeypoints, image_keypoints
from matcher.pipeline.inputs import UNREADABLE_IMAGE_ERRORS, ImageInput
from matcher.pipeline.pixels import rgb_to_lab
from matcher.pipeline.timings import StageCounts, StageTimings
from matcher.pipeline.types import Box, ColourSignature, Embedder, Region, RegionFinder


@dataclass
class ImageAnalysis:
    """Everything computed for one image; safe to cache by sha256."""

    sha256: str
    size: tuple[int, int]
    regions: list[Region]
    embedder: str  # "name@checkpoint_hash" the embeddings come from
    embeddings: np.ndarray  # (len(regions), dim) float32
    colours: list[ColourSignature | None]
    keypoints: ImageKeypoints | None = None
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
        meta: dict[str, Any] = {
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
        # numpy's stubs let the ** mapping fill savez's allow_pickle (a bool); these keys name arrays.
        np.savez(buf, **arrays)  # type: ignore[arg-type]
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> ImageAnalysis:
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
            keypoints=ImageKeypoints.from_bytes(z["keypoints"].tobytes()) if meta["keypoints"] else None,
            cutout_embeddings={int(i): z[f"cutout_emb{i}"] for i in meta["cutout"]},
            cutout_colours=cutout_colours,
            ocr_text=meta["ocr_text"],
            ocr_engine=meta.get("ocr_engine"),
        )


def _put_signature(arrays: dict[str, np.ndarray], key: str, sig: ColourSignature) -> None:
    arrays[key + "_h"] = sig.histogram.astype(np.float32)
    arrays[key + "_d"] = sig.dominant_lab.astype(np.float32)
    arrays[key + "_w"] = sig.weights.astype(np.float32)


def _get_signature(z: Any, key: str) -> ColourSignature:
    return ColourSignature(histogram=z[key + "_h"], dominant_lab=z[key + "_d"], weights=z[key + "_w"])


def _region_to_json(r: Region) -> dict[str, Any]:
    return {
        "kind": r.kind,
        "box": r.box.as_list(),
        "needs_cutout": r.needs_cutout,
        "score": r.score,
        "keypoints": [list(k) for k in r.keypoints] if r.keypoints else None,
    }


def _region_from_json(d: dict[str, Any]) -> Region:
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


class Analyser:
    """Analyses photos with the given region finder and embedder, through `cache`.

    An analysis cached for another embedder keeps its regions, colours, keypoints and OCR text; only
    its embeddings are computed again.
    """

    def __init__(
        self, *, finder: RegionFinder, embedder: Embedder, cache: AnalysisCache, timings: StageTimings
    ) -> None:
        self.finder = finder
        self.embedder = embedder
        self.cache = cache
        self.timings = timings
        self.embedder_label = f"{embedder.name}@{getattr(embedder, 'checkpoint_hash', '')}"

    def analyse(
        self,
        images: Sequence[ImageInput],
        stats: StageCounts,
        *,
        on_unreadable: Callable[[ImageInput, BaseException], None] | None = None,
    ) -> list[ImageAnalysis]:
        """Analyses for these images, computing (in one batch) only what the cache lacks.

        A photo whose pixels cannot be loaded (missing file, not an image) raises, unless
        `on_unreadable` is given: then it is reported there, left out of the result, and the
        rest of the batch is analysed as usual.
        """
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
        if not missing:
            return [a for a in out if a is not None]
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
            with self.timings.stage("regions"):
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
        with self.timings.stage("embed"):
            embeddings = self.embedder.embed(crops) if crops else np.zeros((0, self.embedder.dim), np.float32)
        stats.embedded_crops += len(crops)
        for i in missing:
            rows = [k for k, owner in enumerate(owners) if owner == i]
            previous = out[i]
            if previous is not None:
                colours = previous.colours
            else:
                with self.timings.stage("colour_signatures"):
                    rgb = np.asarray(pixels[i])
                    lab = rgb_to_lab(rgb) if found_regions[i] else None
                    colours = [colour_signature(rgb, region, lab=lab) for region in found_regions[i]]
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

    def keypoints(self, ref: ImageInput, analysis: ImageAnalysis, stats: StageCounts) -> ImageKeypoints:
        """The photo's keypoints, computed (and cached with its analysis) the first time they are asked for."""
        if analysis.keypoints is None:
            with self.timings.stage("keypoints"):
                analysis.keypoints = image_keypoints(ref.load())
            stats.keypoint_images += 1
            self.cache.put(analysis)
        return analysis.keypoints
