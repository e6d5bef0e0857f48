"""The database-backed analysis cache: what it writes, and the search rows of images analysed before they were stored."""
from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from PIL import Image

from matcher.analysis_cache import DbAnalysisCache
from matcher.models import ImageAnalysisRecord, Region
from matcher.pipeline.compare import ImageAnalysis
from matcher.pipeline.types import Box
from matcher.pipeline.types import Region as Found
from matcher.services import image_store

pytestmark = pytest.mark.django_db

EMBEDDER = "cache-test@0000"


def _png(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(out, "PNG")
    return out.getvalue()


def _analysis(data: bytes) -> ImageAnalysis:
    return ImageAnalysis(
        sha256=hashlib.sha256(data).hexdigest(), size=(40, 30),
        regions=[Found("whole", Box(0, 0, 40, 30)), Found("item", Box(5, 5, 30, 25))],
        embedder=EMBEDDER, embeddings=np.eye(2, 8, dtype=np.float32), colours=[None, None],
    )


def test_a_stored_image_gets_its_search_rows_with_its_analysis():
    data = _png((200, 30, 30))
    image = image_store(data=data)
    cache = DbAnalysisCache(EMBEDDER)
    cache.put(_analysis(data))

    assert cache.flush() == 1
    assert ImageAnalysisRecord.objects.filter(sha256=image.sha256, embedder=EMBEDDER).exists()
    assert list(Region.objects.filter(image=image, embedder=EMBEDDER).values_list("kind", flat=True)) == ["whole", "item"]


def test_an_image_analysed_before_it_was_stored_is_indexed_when_its_analysis_is_next_read():
    data = _png((30, 200, 30))
    early = DbAnalysisCache(EMBEDDER)
    early.put(_analysis(data))  # e.g. an evaluation file: not a stored image yet
    early.flush()
    assert not Region.objects.filter(embedder=EMBEDDER).exists()

    image = image_store(data=data)  # later imported
    cache = DbAnalysisCache(EMBEDDER)
    cache.preload([image.sha256])
    assert cache.get(image.sha256) is not None  # read, not recomputed

    assert cache.flush() == 0  # no analysis rewritten ...
    assert Region.objects.filter(image=image, embedder=EMBEDDER).count() == 2  # ... but searchable now
    image.refresh_from_db()
    assert image.analysed_with == EMBEDDER

    again = DbAnalysisCache(EMBEDDER)
    again.preload([image.sha256])
    assert again.flush() == 0 and Region.objects.filter(image=image, embedder=EMBEDDER).count() == 2
