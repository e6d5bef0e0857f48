"""Reverse-search accuracy: index a gallery (a folder, or a CSV listing images), then rank it for each query.

    python manage.py evaluate_retrieval --gallery var/eval/competitor/gallery \
        --queries var/eval/competitor/queries.csv --json var/eval/retrieval.json

queries.csv: `query` (path) and `expected` (gallery paths joined by '|'); paths are relative to the
CSV's folder, or to the gallery's parent. Gallery images are stored like any image (once per content
hash) so their regions are in pgvector; a second run re-uses them.
"""
from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from matcher import search
from matcher.matching import toolkit
from matcher.models import ImageFile
from matcher.pipeline.compare import ImageInput
from matcher.services import image_store

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"}


class Command(BaseCommand):
    help = "Evaluate reverse image search (Recall@1/5/10) on a gallery folder and a queries CSV."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--gallery", required=True, help="folder of images, or a CSV with an `image` column")
        parser.add_argument("--queries", required=True)
        parser.add_argument("--json", dest="json_out")
        parser.add_argument("--limit", type=int)
        parser.add_argument("--batch", type=int, default=32)
        parser.add_argument("--verify-top", type=int, default=None,
                            help="candidates compared by the matching pipeline (default: matcher.search.VERIFY_TOP)")
        parser.add_argument("--embedding-only", action="store_true",
                            help="rank by embedding cosine alone (step 1), for comparison")

    def handle(self, *args, gallery: str, queries: str, json_out: str | None, limit: int | None, batch: int,
               verify_top: int | None, embedding_only: bool, **o):
        gpath, qfile = Path(gallery).resolve(), Path(queries).resolve()
        if not qfile.is_file():
            raise CommandError(f"queries file not found: {qfile}")
        if gpath.is_dir():
            gdir = gpath
            paths = sorted(p for p in gdir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif gpath.is_file() and gpath.suffix.lower() == ".csv":
            # A gallery listed in a CSV (column `image`, paths relative to the CSV's folder).
            gdir = gpath.parent
            with gpath.open(encoding="utf-8-sig", newline="") as fh:
                paths = sorted({(gdir / row["image"]).resolve() for row in csv.DictReader(fh) if row.get("image")})
            absent = [p for p in paths if not p.is_file()]
            if absent:
                raise CommandError(f"{len(absent)} gallery images missing, e.g. {absent[0]}")
        else:
            raise CommandError(f"gallery must be a folder or a CSV with an `image` column: {gpath}")
        if not paths:
            raise CommandError("no images in the gallery folder")

        kit = toolkit(with_ocr=False, with_remover=False)
        verify_top = search.VERIFY_TOP if verify_top is None else verify_top
        sha_to_path: dict[str, Path] = {}
        for start in tqdm(range(0, len(paths), batch), desc="index gallery", unit="batch"):
            chunk = paths[start : start + batch]
            refs = []
            for p in chunk:
                stored = image_store(data=p.read_bytes())
                sha_to_path[stored.sha256] = p.resolve()
                refs.append(ImageInput.from_path(p))
            # Analysed before: read, not recomputed (and indexed for search if it was analysed
            # before it was stored, by an earlier evaluation).
            kit.cache.preload([r.sha256 for r in refs])
            kit.comparer.analyse(refs)
            kit.cache.flush()

        with qfile.open(encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.DictReader(fh))
        if limit:
            rows = rows[:limit]

        def resolve(rel: str) -> Path:
            for base in (qfile.parent, gdir.parent):
                candidate = (base / rel).resolve()
                if candidate.exists():
                    return candidate
            return (qfile.parent / rel).resolve()

        # Only the gallery is searched: other stored images (the catalogue, earlier evaluations'
        # galleries) would otherwise compete with it.
        gallery_ids = list(ImageFile.objects.filter(sha256__in=list(sha_to_path)).values_list("id", flat=True))
        hits: Counter = Counter()  # (kind, k) → queries with an expected image in the top k; kind "" = all
        counts: Counter = Counter()
        misses: list[dict] = []
        for row in tqdm(rows, desc="queries", unit="query"):
            query = resolve(row["query"])
            expected = {resolve(e) for e in (row.get("expected") or "").split("|") if e.strip()}
            if not query.is_file() or not expected:
                continue
            ref = ImageInput.from_path(query)
            analysis = kit.comparer.analyse([ref])[0]
            if embedding_only:
                ranked = search.embedding_candidates(analysis, embedder=kit.cache.embedder, k=10, among=gallery_ids)
            else:
                ranked = search.rank(ref, analysis, comparer=kit.comparer, embedder=kit.cache.embedder, k=10,
                                     verify_top=verify_top, among=gallery_ids)
            found = [sha_to_path.get(c.sha256) for c in ranked]
            kinds = ("", row["kind"]) if row.get("kind") else ("",)
            for kind in kinds:
                counts[kind] += 1
                for k in (1, 5, 10):
                    if any(f in expected for f in found[:k]):
                        hits[(kind, k)] += 1
            if not any(f in expected for f in found[:1]):
                misses.append({
                    "query": row["query"], "kind": row.get("kind", ""),
                    "rank": next((i + 1 for i, f in enumerate(found) if f in expected), None),
                    "first": str(found[0].name) if found and found[0] else None,
                })
        n = counts[""]
        if not n:
            raise CommandError("no usable queries (check the paths)")
        report = {
            "n_queries": n,
            "gallery_size": len(paths),
            "recall_at_1": hits[("", 1)] / n,
            "recall_at_5": hits[("", 5)] / n,
            "recall_at_10": hits[("", 10)] / n,
            "embedder": kit.cache.embedder,
            "ranking": "embedding" if embedding_only else f"embedding+colour+pipeline(top {verify_top})",
        }
        per_kind = {
            kind: {"n_queries": c, **{f"recall_at_{k}": hits[(kind, k)] / c for k in (1, 5, 10)}}
            for kind, c in sorted(counts.items()) if kind
        }
        for kind, figures in per_kind.items():
            self.stdout.write(f"  {kind:<14} n={figures['n_queries']:<4} " + " ".join(
                f"R@{k}={figures[f'recall_at_{k}']:.3f}" for k in (1, 5, 10)))
        self.stdout.write(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in report.items()))
        if json_out:
            Path(json_out).parent.mkdir(parents=True, exist_ok=True)
            Path(json_out).write_text(json.dumps({**report, "per_kind": per_kind, "misses_at_1": misses}, indent=2))
