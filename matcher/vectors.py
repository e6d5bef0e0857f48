"""Region vectors in pgvector: one partial HNSW index per embedder, and nearest-neighbour search.

The embedding column has no fixed dimension because embedders differ (EfficientNet 1280-d,
CLIP ViT-B-32 512-d). Each embedder gets a partial expression index over the column cast to its
dimension; queries use the same cast and WHERE clause so the planner picks that index.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import connection, transaction

_ensured: set[tuple[str, int]] = set()
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64
DEFAULT_EF_SEARCH = 100


def index_name(embedder: str, dim: int) -> str:
    digest = hashlib.sha1(embedder.encode()).hexdigest()[:10]
    return f"region_hnsw_{dim}_{digest}"


def _check_dim(dim: int) -> int:
    dim = int(dim)
    if not 1 <= dim <= 2000:  # pgvector's HNSW limit for vector
        raise ValueError(f"unsupported embedding dimension {dim}")
    return dim


def ensure_index(embedder: str, dim: int) -> None:
    """Create the embedder's HNSW index if missing (once per process)."""
    dim = _check_dim(dim)
    if (embedder, dim) in _ensured:
        return
    name = index_name(embedder, dim)
    with connection.cursor() as cur:
        cur.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON matcher_region "
            f"USING hnsw ((embedding::vector({dim})) vector_cosine_ops) "
            f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION}) "
            f"WHERE embedder = %s",
            [embedder],
        )
    _ensured.add((embedder, dim))


@dataclass
class Neighbour:
    region_id: int
    image_id: int
    kind: str
    box: list[int]
    score: float  # cosine similarity


def _literal(vec: np.ndarray) -> str:
    return "[" + ",".join(f"{float(x):.7g}" for x in np.asarray(vec, dtype=np.float32).ravel()) + "]"


def nearest(
    *, embedder: str, vector: np.ndarray, k: int = 10, ef_search: int = DEFAULT_EF_SEARCH, exact: bool = False,
    image_ids: list[int] | None = None,
) -> list[Neighbour]:
    """The k regions closest by cosine among those of `embedder`. `exact` bypasses the index (recall checks).

    `image_ids` limits the search to those images' regions (an evaluation's gallery); that search
    is exact: an index scan with a selective filter would return fewer than k rows.
    """
    dim = _check_dim(len(vector))
    if not re.fullmatch(r"[\w:.@/\-]+", embedder):
        raise ValueError("unexpected embedder name")
    lit = _literal(vector)
    among = " AND image_id = ANY(%s)" if image_ids is not None else ""
    sql = (
        f"SELECT id, image_id, kind, box, 1 - (embedding::vector({dim}) <=> %s::vector({dim})) AS score "
        f"FROM matcher_region WHERE embedder = %s{among} "
        f"ORDER BY embedding::vector({dim}) <=> %s::vector({dim}) LIMIT %s"
    )
    params: list[Any] = [lit, embedder] + ([list(image_ids)] if image_ids is not None else []) + [lit, int(k)]
    # SET LOCAL only lasts inside a transaction, so the search runs in one.
    with transaction.atomic(), connection.cursor() as cur:
        if exact or image_ids is not None:
            cur.execute("SET LOCAL enable_indexscan = off")
        else:
            cur.execute(f"SET LOCAL hnsw.ef_search = {int(ef_search)}")
        cur.execute(sql, params)
        rows = cur.fetchall()
    # Django's psycopg setup hands jsonb back as text on raw cursors.
    return [
        Neighbour(region_id=r[0], image_id=r[1], kind=r[2], box=json.loads(r[3]) if isinstance(r[3], str) else r[3],
                  score=float(r[4]))
        for r in rows
    ]
