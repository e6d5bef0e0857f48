"""Nearest-neighbour search over region vectors in pgvector."""
from __future__ import annotations

import numpy as np
import pytest

from matcher.analysis_cache import DbAnalysisCache
from matcher.services import image_store
from matcher.vectors import nearest
from tests.matcher.test_analysis_cache import EMBEDDER, _analysis, _png

pytestmark = pytest.mark.django_db


def _stored(colour):
    data = _png(colour)
    image = image_store(data=data)
    cache = DbAnalysisCache(EMBEDDER)
    cache.put(_analysis(data))
    cache.flush()
    return image


def test_nearest_finds_the_closest_regions_and_can_be_limited_to_some_images():
    a, b, c = _stored((10, 10, 10)), _stored((20, 20, 20)), _stored((30, 30, 30))
    query = np.eye(2, 8, dtype=np.float32)[0]  # every image's "whole" region has exactly this vector

    everywhere = nearest(embedder=EMBEDDER, vector=query, k=10)
    assert {n.image_id for n in everywhere if n.score > 0.999} == {a.id, b.id, c.id}

    limited = nearest(embedder=EMBEDDER, vector=query, k=10, image_ids=[a.id, c.id])
    assert {n.image_id for n in limited} == {a.id, c.id}
    assert len(limited) == 4  # both regions of each, even with k larger than what is there
    assert limited[0].score == pytest.approx(1.0, abs=1e-5) and limited[0].kind == "whole"
