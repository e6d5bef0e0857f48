"""The pgvector bench's own parts on the real server: load, HNSW build, search, recall against exact.

No timing assertions. The tables go into the test database through a separate connection (the
bench commits), and are dropped afterwards.
"""
from __future__ import annotations

import numpy as np
import psycopg
import pytest
from django.db import connection

from benchmarks import pgvector_search as pg


@pytest.fixture
def raw_conn(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        params = connection.get_connection_params()
        params.pop("cursor_factory", None)
        params.pop("context", None)
        with psycopg.connect(**params) as conn:
            yield conn
            conn.rollback()
            conn.execute(f"DROP TABLE IF EXISTS {pg._table('t2k')}")
            conn.commit()


def test_the_index_search_finds_the_exact_top_ten_and_the_build_is_kept_for_the_next_run(raw_conn):
    data = pg.Dataset(n=2_000, dim=64, chunk=700)  # several COPY chunks
    queries = data.queries(25)

    built = pg.load_and_build(raw_conn, tag="t2k", data=data, embedder="bench", m=16, efc=64,
                              rebuild=False, queries=queries, k=10)

    assert raw_conn.execute(f"SELECT count(*) FROM {pg._table('t2k')}").fetchone()[0] == 2_000
    assert "build_s" in built and "copy_s" in built
    # Exact top-10 from the streamed chunks equals a brute-force search over all vectors at once.
    everything = np.concatenate([chunk for _, chunk in data.chunks()])
    brute = np.argsort(-(queries @ everything.T), axis=1)[:, :10] + 1
    assert [set(r) for r in built["exact_ids"].tolist()] == [set(r) for r in brute.tolist()]

    wide = pg.search(raw_conn, tag="t2k", dim=64, embedder="bench", queries=queries,
                     exact_ids=built["exact_ids"], k=10, ef_search=200, warmup=2)
    assert wide["index_used"] is True
    assert wide["recall"] >= 0.95
    assert 0 < wide["p50_ms"] <= wide["p95_ms"]
    # Wrong truth gives recall 0: the figure is computed, not assumed.
    wrong = pg.search(raw_conn, tag="t2k", dim=64, embedder="bench", queries=queries,
                      exact_ids=built["exact_ids"] + 10_000, k=10, ef_search=40, warmup=0)
    assert wrong["recall"] == 0

    again = pg.load_and_build(raw_conn, tag="t2k", data=data, embedder="bench", m=16, efc=64,
                              rebuild=False, queries=queries, k=10)
    assert "build_s" not in again and "copy_s" not in again  # a second run reuses table and index
