"""pgvector HNSW at 100k and 1M region vectors: build time, query latency, recall against exact search.

The vectors are synthetic but not uniform noise, which no embedding looks like: points are drawn
around cluster centres (about 20 photos per product, as in a catalogue with competitor copies) in a
64-dimensional latent space, mapped into the embedder's dimension by a fixed random projection,
plus a shared mean (CNN features are mostly positive, so unrelated photos still have cosine ~0.5)
and small full-dimensional noise. Queries are new draws around existing centres, like a competitor's
photo of one of our products. Real embeddings have structure of their own, so recall here is an
estimate of what the index does on embedding-like data, not a measurement on our photos.

The table mirrors matcher_region (untyped `vector` column, `embedder` column) and the index and
query have exactly the shape of matcher/vectors.py: a partial HNSW index over
`embedding::vector(dim)` WHERE embedder = …, searched inside a transaction with SET LOCAL
hnsw.ef_search.
"""
from __future__ import annotations

import os
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.common import percentile

LATENT = 64
PER_CLUSTER = 20
SEED = 20241122


@dataclass
class Dataset:
    n: int
    dim: int
    seed: int = SEED
    chunk: int = 50_000

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        self.clusters = max(1, self.n // PER_CLUSTER)
        self.centres = rng.standard_normal((self.clusters, LATENT)).astype(np.float32)
        self.projection = (rng.standard_normal((LATENT, self.dim)) / np.sqrt(LATENT)).astype(np.float32)
        self.mean = np.abs(rng.standard_normal(self.dim)).astype(np.float32)

    def _draw(self, rng: np.random.Generator, count: int) -> np.ndarray:
        which = rng.integers(0, self.clusters, size=count)
        z = self.centres[which] + 0.45 * rng.standard_normal((count, LATENT)).astype(np.float32)
        x = z @ self.projection + 0.9 * self.mean + 0.08 * rng.standard_normal((count, self.dim)).astype(np.float32)
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    def chunks(self) -> Iterator[tuple[int, np.ndarray]]:
        for start in range(0, self.n, self.chunk):
            rng = np.random.default_rng([self.seed, 1, start])
            yield start, self._draw(rng, min(self.chunk, self.n - start))

    def queries(self, count: int) -> np.ndarray:
        return self._draw(np.random.default_rng([self.seed, 2]), count)


def _copy_rows(ids: np.ndarray, vectors: np.ndarray) -> bytes:
    """PostgreSQL binary COPY rows (id int8, image_id int8, embedding vector) built with numpy."""
    n, dim = vectors.shape
    row = np.dtype([
        ("nfields", ">i2"), ("l_id", ">i4"), ("id", ">i8"), ("l_img", ">i4"), ("img", ">i8"),
        ("l_vec", ">i4"), ("dim", ">i2"), ("unused", ">i2"), ("vec", ">f4", (dim,)),
    ])
    rows = np.zeros(n, dtype=row)
    rows["nfields"], rows["l_id"], rows["l_img"], rows["l_vec"] = 3, 8, 8, 4 + 4 * dim
    rows["id"] = ids
    rows["img"] = ids  # one region per image: the whole view
    rows["dim"] = dim
    rows["vec"] = vectors
    return rows.tobytes()


COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
COPY_TRAILER = struct.pack(">h", -1)


def _literal(vec: np.ndarray) -> str:
    # The same text form matcher.vectors sends, so parsing cost is part of the latency.
    return "[" + ",".join(f"{float(x):.7g}" for x in vec) + "]"


def _table(tag: str) -> str:
    return f"bench_region_{tag}"


def _index(tag: str, m: int, efc: int) -> str:
    return f"bench_region_{tag}_hnsw_m{m}_efc{efc}"


def _maintenance_work_mem(n: int, dim: int) -> str:
    """Enough for the whole graph in memory (pgvector builds far slower once it spills), within reason."""
    if os.environ.get("BENCH_PG_MAINTENANCE_WORK_MEM"):
        return os.environ["BENCH_PG_MAINTENANCE_WORK_MEM"]
    need_gib = n * (dim * 4 + 400) * 1.25 / 2**30
    avail_gib = 0.0
    for line in open("/proc/meminfo"):
        if line.startswith("MemAvailable"):
            avail_gib = int(line.split()[1]) / 2**20
    gib = max(1, min(int(np.ceil(need_gib)), int(avail_gib * 0.5)))
    return f"{gib}GB"


@contextmanager
def _niced_backend(conn) -> Iterator[None]:
    """Give this connection's server process and its parallel workers our own niceness while it lasts.

    `nice -n 19 make bench` should keep a long index build out of other people's way, but the work
    happens in PostgreSQL processes, which the nice of the client does not reach.
    """
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    if ours <= 0:
        yield
        return
    import psycopg

    leader = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    conn.commit()
    stop = threading.Event()

    def renice() -> None:
        with psycopg.connect(conn.info.dsn, autocommit=True) as watcher:
            while not stop.is_set():
                pids = [leader] + [r[0] for r in watcher.execute(
                    "SELECT pid FROM pg_stat_activity WHERE leader_pid = %s", [leader])]
                for pid in pids:
                    try:
                        if os.getpriority(os.PRIO_PROCESS, pid) < ours:
                            os.setpriority(os.PRIO_PROCESS, pid, ours)
                    except OSError:  # not ours to change (another user), or gone
                        pass
                stop.wait(2)

    thread = threading.Thread(target=renice, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        try:
            os.setpriority(os.PRIO_PROCESS, leader, 0)
        except OSError:
            pass


def load_and_build(conn, *, tag: str, data: Dataset, embedder: str, m: int, efc: int, rebuild: bool,
                   queries: np.ndarray, k: int) -> dict[str, Any]:
    """Load the vectors (if not loaded), build the index (if not built); exact top-k of the queries."""
    table, index = _table(tag), _index(tag, m, efc)
    out: dict[str, Any] = {}
    have = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [table]).fetchone()[0]
    count = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] if have else 0
    fresh = rebuild or count != data.n
    q = queries.T.copy()
    best_sims = np.full((len(queries), k), -np.inf, np.float32)
    best_ids = np.zeros((len(queries), k), np.int64)
    load_s = 0.0
    if fresh:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(
            f"CREATE TABLE {table} (id bigint PRIMARY KEY, image_id bigint NOT NULL, "
            f"embedder varchar(120) NOT NULL DEFAULT '{embedder}', \"index\" smallint NOT NULL DEFAULT 0, "
            f"kind varchar(10) NOT NULL DEFAULT 'whole', box jsonb NOT NULL DEFAULT '[0, 0, 640, 640]', "
            f"needs_cutout boolean NOT NULL DEFAULT false, cutout boolean NOT NULL DEFAULT false, "
            f"embedding vector NOT NULL, colour jsonb, keypoints jsonb)"
        )
        conn.commit()
    # Stream the data once: COPY it in (when fresh) and keep the exact top-k per query as we go.
    t0 = time.perf_counter()
    for start, chunk in data.chunks():
        ids = np.arange(start + 1, start + 1 + len(chunk), dtype=np.int64)
        if fresh:
            t = time.perf_counter()
            with conn.cursor().copy(f"COPY {table} (id, image_id, embedding) FROM STDIN WITH (FORMAT BINARY)") as cp:
                cp.write(COPY_HEADER + _copy_rows(ids, chunk) + COPY_TRAILER)
            conn.commit()
            load_s += time.perf_counter() - t
        sims = (chunk @ q).T  # (queries, chunk)
        part = np.argpartition(-sims, kth=min(k, sims.shape[1] - 1), axis=1)[:, :k]
        cand_sims = np.concatenate([best_sims, np.take_along_axis(sims, part, axis=1)], axis=1)
        cand_ids = np.concatenate([best_ids, ids[part]], axis=1)
        order = np.argsort(-cand_sims, axis=1)[:, :k]
        best_sims = np.take_along_axis(cand_sims, order, axis=1)
        best_ids = np.take_along_axis(cand_ids, order, axis=1)
    out["stream_s"] = round(time.perf_counter() - t0, 1)
    if fresh:
        out["copy_s"] = round(load_s, 1)
        conn.execute(f"ANALYZE {table}")
        conn.commit()
    built = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [index]).fetchone()[0]
    if fresh or not built:
        mwm = _maintenance_work_mem(data.n, data.dim)
        conn.execute(f"DROP INDEX IF EXISTS {index}")
        conn.execute(f"SET maintenance_work_mem = '{mwm}'")
        # Leader plus one worker: both cores of this machine.
        conn.execute("SET max_parallel_maintenance_workers = 1")
        t = time.perf_counter()
        with _niced_backend(conn):
            conn.execute(
                f"CREATE INDEX {index} ON {table} USING hnsw ((embedding::vector({data.dim})) vector_cosine_ops) "
                f"WITH (m = {m}, ef_construction = {efc}) WHERE embedder = '{embedder}'"
            )
        conn.commit()
        out["build_s"] = round(time.perf_counter() - t, 1)
        out["maintenance_work_mem"] = mwm
        out["parallel_maintenance_workers"] = 1
    out["index_mb"] = round(conn.execute("SELECT pg_relation_size(%s)", [index]).fetchone()[0] / 2**20, 1)
    out["table_mb"] = round(conn.execute("SELECT pg_table_size(%s)", [table]).fetchone()[0] / 2**20, 1)
    out["exact_ids"] = best_ids
    return out


def search(conn, *, tag: str, dim: int, embedder: str, queries: np.ndarray, exact_ids: np.ndarray, k: int,
           ef_search: int, warmup: int = 20) -> dict[str, Any]:
    table = _table(tag)
    sql = (
        f"SELECT id, image_id, kind, box, 1 - (embedding::vector({dim}) <=> %s::vector({dim})) AS score "
        f"FROM {table} WHERE embedder = %s "
        f"ORDER BY embedding::vector({dim}) <=> %s::vector({dim}) LIMIT %s"
    )
    literals = [_literal(v) for v in queries]
    with conn.transaction():
        conn.execute(f"SET LOCAL hnsw.ef_search = {int(ef_search)}")
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + sql, [literals[0], embedder, literals[0], k]))
    latencies: list[float] = []
    recalls: list[float] = []
    for i, lit in enumerate(literals[:warmup] + literals):
        t = time.perf_counter()
        with conn.transaction():
            conn.execute(f"SET LOCAL hnsw.ef_search = {int(ef_search)}")
            rows = conn.execute(sql, [lit, embedder, lit, k]).fetchall()
        elapsed = (time.perf_counter() - t) * 1000
        if i < warmup:
            continue
        latencies.append(elapsed)
        got = {r[0] for r in rows}
        recalls.append(len(got & set(exact_ids[i - warmup].tolist())) / k)
    return {
        "ef_search": ef_search,
        "p50_ms": round(percentile(latencies, 50), 2),
        "p95_ms": round(percentile(latencies, 95), 2),
        "recall": round(float(np.mean(recalls)), 4),
        "index_used": "Index Scan" in plan and "hnsw" in plan,
    }


SIZES = {"quick": [("10k", 10_000)], "full": [("100k", 100_000), ("1m", 1_000_000)]}


def run(*, quick: bool, options: dict[str, Any]) -> dict[str, Any]:
    import psycopg

    from benchmarks.common import bench_database_url, django_setup

    django_setup()
    from django.conf import settings

    from matcher import pipeline_config
    from matcher.pipeline.embed import EfficientNetLiteEmbedder

    dim = EfficientNetLiteEmbedder.dim if settings.MATCHER_EMBEDDER == "efficientnet" else pipeline_config.embedder().dim
    embedder = pipeline_config.active_embedder_label()
    m = int(options.get("pg_m") or 16)
    efc = int(options.get("pg_ef_construction") or 64)
    sweep = [int(x) for x in (options.get("pg_ef_search") or "16,24,40,64,100,160").split(",")]
    k = 10
    sizes = SIZES["quick" if quick else "full"]
    if options.get("pg_sizes"):
        wanted = set(options["pg_sizes"].split(","))
        sizes = [s for s in SIZES["quick"] + SIZES["full"] if s[0] in wanted]
    results: dict[str, Any] = {"pgvector_dim": dim}
    with psycopg.connect(bench_database_url()) as conn:
        installed = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
        if installed is None:
            raise RuntimeError("the pgvector extension is not installed in the benchmark database")
        version = installed[0]
        results["pgvector_version"] = version
        results["pgvector_halfvec"] = False
        results["pgvector_notes"] = (
            f"pgvector {version} on the server: float32 `vector` (halfvec needs pgvector >= 0.7); "
            "HNSW (m and ef_construction per size in pgvector_m_*, pgvector_ef_construction_*), cosine; "
            "synthetic clustered vectors "
            "(benchmarks/pgvector_search.py); latency client-side over the Unix socket, one query at a time, "
            "warm cache (every query once at the widest ef_search before the sweep); the reported ef_search is the fastest of the sweep with recall >= 0.95"
        )
        for tag, n in sizes:
            data = Dataset(n=n, dim=dim)
            queries = data.queries(300 if n <= 100_000 else 200)
            print(f"  pgvector {tag}: loading/building ({n:,} × {dim}) …", flush=True)
            built = load_and_build(conn, tag=tag, data=data, embedder=embedder, m=m, efc=efc,
                                   rebuild=bool(options.get("pg_rebuild")), queries=queries, k=k)
            exact = built.pop("exact_ids")
            # One pass of every query at the widest setting first: it reads the graph pages the whole
            # sweep will visit, so the first setting measured does not pay for a cache the later ones
            # find full (right after a build the index was mostly not in memory; the narrowest setting,
            # measured first, read slower than the next one).
            warm = search(conn, tag=tag, dim=dim, embedder=embedder, queries=queries, exact_ids=exact, k=k,
                          ef_search=max(sweep), warmup=0)
            print(f"    warm pass (ef_search={max(sweep)}): p95 {warm['p95_ms']:.2f} ms, not reported", flush=True)
            rows = []
            for ef in sweep:
                row = search(conn, tag=tag, dim=dim, embedder=embedder, queries=queries, exact_ids=exact, k=k,
                             ef_search=ef)
                print(f"    ef_search={ef:<4} p50 {row['p50_ms']:7.2f} ms  p95 {row['p95_ms']:7.2f} ms  "
                      f"recall@10 {row['recall']:.3f}", flush=True)
                rows.append(row)
            # The reported point: the fastest ef_search that reaches recall 0.95, else the most accurate.
            good = [r for r in rows if r["recall"] >= 0.95]
            chosen = min(good, key=lambda r: r["p95_ms"]) if good else max(rows, key=lambda r: r["recall"])
            results.update({
                f"pgvector_p50_ms_{tag}": chosen["p50_ms"],
                f"pgvector_p95_ms_{tag}": chosen["p95_ms"],
                f"pgvector_recall_{tag}": chosen["recall"],
                f"pgvector_ef_search_{tag}": chosen["ef_search"],
                f"pgvector_m_{tag}": m,
                f"pgvector_ef_construction_{tag}": efc,
                f"pgvector_sweep_{tag}": rows,
                f"pgvector_index_mb_{tag}": built["index_mb"],
                f"pgvector_table_mb_{tag}": built["table_mb"],
            })
            if "build_s" in built:
                results[f"pgvector_build_s_{tag}"] = built["build_s"]
                results[f"pgvector_build_maintenance_work_mem_{tag}"] = built["maintenance_work_mem"]
            if "copy_s" in built:
                results[f"pgvector_copy_s_{tag}"] = built["copy_s"]
    return results
