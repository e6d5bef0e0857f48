"""The per-image analysis cache in PostgreSQL, and the loader that reads a stored image for the pipeline."""
from __future__ import annotations

import io
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable

import numpy as np
from django.core.files.storage import default_storage
from django.utils import timezone
from PIL import Image

from matcher.models import ImageAnalysisRecord, ImageFile, Region
from matcher.pipeline.compare import ImageAnalysis, ImageInput
from matcher.vectors import ensure_index

log = logging.getLogger(__name__)


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
            ensure_index(self.embedder, len(regions[0].embedding))
            Region.objects.bulk_create(regions, ignore_conflicts=True, batch_size=500)
        ImageFile.objects.filter(sha256__in=list(ids)).update(analysed_with=self.embedder)
        return len(records)


def _loader(image: ImageFile, timings: Counter) -> Callable[[], Image.Image]:
    def load() -> Image.Image:
        t = time.perf_counter()
        name = image.file.name
        assert name is not None  # the file column is NOT NULL: a stored ImageFile names its file
        with default_storage.open(name, "rb") as fh:
            img = Image.open(io.BytesIO(fh.read()))
            img.load()
        # The Counter sums float seconds (allowed by its documentation); typeshed types its values int.
        timings["load"] += time.perf_counter() - t  # type: ignore[assignment]
        return img.convert("RGB")

    return load


def image_input(image: ImageFile, timings: Counter | None = None) -> ImageInput:
    """The stored image as the pipeline reads it (lazily); its load time is added to `timings["load"]`."""
    return ImageInput(sha256=image.sha256, loader=_loader(image, timings if timings is not None else Counter()),
                      label=image.sha256[:12])
