"""The comparer alone, in this process: CPU per competitor image and where it goes, with the truth.

The e2e section measures the whole system (Celery, PostgreSQL, the LLM client); this one runs the
same `PairComparer` with the production stages (pose regions, the active embedder, ISNet cut-out,
Tesseract) over the e2e section's generated catalogue straight from its files, the way a match-run
batch does: every image of one SKU and its listings analysed in one batched pass, then each listing
compared. No LLM (its verdict comes after the comparer), no database. It answers two questions
quickly and steadily on a shared machine:

- how many CPU seconds a competitor image costs in the comparer, and in which stage;
- whether a cascade change moved any pair to another bucket (per-pair buckets against the
  generator's truth, so "no new false auto-match" can be checked pair by pair).

    .venv/bin/python -m benchmarks.cascade --skus 2 --listings 50 --out var/bench/cascade_after.json
    .venv/bin/python -m benchmarks.cascade --skus 2 --profile var/bench/cascade.prof
    .venv/bin/python -m benchmarks.cascade --compare var/bench/cascade_before.json var/bench/cascade_after.json
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.common import BENCH_VAR, _cpu_seconds, cpu_speed


def _rows(folder: Path, name: str) -> list[dict[str, str]]:
    with (folder / name).open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def load_dataset(folder: Path, *, skus: int | None, listings: int | None, only: list[str] | None = None):
    """[(sku row, [(listing row, truth row)])] from an e2e dataset folder (catalog, listings, truth).

    `only`: these SKU codes (in the catalogue's order) instead of the first `skus`."""
    catalogue = _rows(folder, "catalog.csv")
    if only:
        unknown = set(only) - {row["sku"] for row in catalogue}
        if unknown:
            raise SystemExit(f"not in {folder / 'catalog.csv'}: {', '.join(sorted(unknown))}")
        catalogue = [row for row in catalogue if row["sku"] in only]
    else:
        catalogue = catalogue[: skus or None]
    truth_folder = folder
    if not (folder / "truth.csv").is_file():
        # Replica datasets keep the base catalogue's truth (same URLs up to ?r=).
        bases = sorted(BENCH_VAR.glob("e2e_base_*"))
        truth_folder = next((b for b in bases if (b / "truth.csv").is_file() and b.name.endswith(folder.name.split("x")[-1])), folder)
    truth = {r["url"]: r for r in _rows(truth_folder, "truth.csv")} if (truth_folder / "truth.csv").is_file() else {}
    by_sku: dict[str, list[dict[str, str]]] = {}
    for row in _rows(folder, "listings.csv"):
        by_sku.setdefault(row["sku"], []).append(row)
    out = []
    for sku in catalogue:
        rows = by_sku.get(sku["sku"], [])[: listings or None]
        out.append((sku, [(r, truth.get(r["url"].split("?r=")[0], {})) for r in rows]))
    return out


def build_comparer(threads: int, *, ocr: bool = True, remover: bool = True, gates: bool = True):
    import django
    from django.conf import settings

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from matcher import pipeline_config
    from matcher.pipeline.attributes import Lexicon
    from matcher.pipeline.compare import PairComparer
    from matcher.pipeline.ocr import TesseractOcr
    from matcher.pipeline.policy import DecisionPolicy

    os.environ["MATCHER_THREADS"] = str(threads)
    settings.MATCHER_TORCH_THREADS = threads
    return PairComparer(
        finder=pipeline_config.region_finder(),
        embedder=pipeline_config.embedder(),
        remover=pipeline_config.background_remover() if remover else None,
        ocr=TesseractOcr() if ocr else None,
        lexicon=Lexicon.load(),
        policy=DecisionPolicy(),
        outcome_gates=gates,
    )


def run_pairs(comparer, data) -> dict[str, Any]:
    from matcher.matching import StageTimer
    from matcher.pipeline.compare import ImageInput, ListingSide, SkuSide, StageCounts

    # CPU seconds inside each stage (children included: Tesseract), by the match run's own timer.
    clock: Counter = Counter()
    comparer.finder = StageTimer(comparer.finder, "find", "detect", clock, clock=_cpu_seconds)
    comparer.embedder = StageTimer(comparer.embedder, "embed", "embed", clock, clock=_cpu_seconds)
    if comparer.ocr is not None:
        comparer.ocr = StageTimer(comparer.ocr, "read", "ocr", clock, clock=_cpu_seconds)
    if comparer.remover is not None:
        comparer.remover = StageTimer(comparer.remover, ("masks", "cutout"), "cutout", clock, clock=_cpu_seconds)
    pairs: list[dict[str, Any]] = []
    images_decided = 0
    speed_before = cpu_speed()
    cpu0, wall0 = _cpu_seconds(), time.perf_counter()
    for sku, listings in data:
        folder = Path(sku["_folder"])
        cache: dict[str, ImageInput] = {}

        def image(rel: str, cache: dict[str, ImageInput] = cache, folder: Path = folder) -> ImageInput:
            if rel not in cache:
                cache[rel] = ImageInput.from_path(folder / rel)
            return cache[rel]

        ours = SkuSide(images=[image(p) for p in sku["images"].split("|") if p][:5], title=sku["title"],
                       product_number=sku.get("product_number") or None)
        theirs_all = [ListingSide(images=[image(p) for p in row["images"].split("|") if p], title=row["title"])
                      for row, _ in listings]
        # One batched analysis pass per SKU, as decide_products does.
        t = _cpu_seconds()
        batch = StageCounts()
        comparer.analyse(list(cache.values()), batch)
        comparer.totals.add(batch)
        # typeshed types Counter values as int; a Counter adds float seconds as well (StageTimer relies on it).
        clock["analyse"] += _cpu_seconds() - t  # type: ignore[assignment]
        for (row, truth), theirs in zip(listings, theirs_all):
            t = _cpu_seconds()
            comp = comparer.compare(ours, theirs)
            clock["compare"] += _cpu_seconds() - t  # type: ignore[assignment]  # float seconds, see above
            images_decided += len(theirs.images)
            ev = comp.evidence
            pairs.append({
                "url": row["url"], "sku": sku["sku"], "truth": int(truth.get("same_product") or -1),
                "kind": truth.get("kind", ""), "bucket": comp.decision.bucket,
                "confidence": round(comp.decision.confidence, 4), "cosine": ev.cosine, "inliers": ev.inliers,
                "colour_distance": ev.colour_distance, "colour_distance_in_place": ev.colour_distance_in_place,
                "product_number": ev.product_number, "conflicts": list(ev.conflicts),
                "stages": comp.stats.as_dict(),
            })
        for ref in cache.values():
            ref.image = None
    cpu, wall = _cpu_seconds() - cpu0, time.perf_counter() - wall0
    stages = comparer.totals.as_dict()
    inner = sum(clock[k] for k in ("detect", "embed", "ocr", "cutout"))
    return {
        "pairs": pairs,
        "listings": len(pairs),
        "images_decided": images_decided,
        "cpu_s": round(cpu, 2),
        "wall_s": round(wall, 2),
        "cpu_s_per_image": round(cpu / max(1, images_decided), 4),
        "cpu_s_by_stage": {**{k: round(v, 2) for k, v in clock.items()},
                           "evidence (colour, keypoints, geometry)": round(cpu - inner, 2)},
        "stages": stages,
        "fraction_images_ocr": round(stages["ocr_images"] / max(1, stages["region_images"]), 4),
        "fraction_images_keypoints": round(stages["keypoint_images"] / max(1, stages["region_images"]), 4),
        "fraction_images_cutout": round(stages["cutout_images"] / max(1, stages["region_images"]), 4),
        "geometry_checks_per_pair": round(stages["geometry_checks"] / max(1, len(pairs)), 3),
        "buckets": dict(Counter(p["bucket"] for p in pairs)),
        "buckets_by_truth": {
            str(t): dict(Counter(p["bucket"] for p in pairs if p["truth"] == t)) for t in (1, 0)
        },
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpu_speed_gflops_before_after": [speed_before, cpu_speed()],
    }


def compare_runs(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Pairs whose bucket changed, and the two headline figures."""
    old = {p["url"] + p["sku"]: p for p in before["pairs"]}
    moved = []
    for p in after["pairs"]:
        q = old.get(p["url"] + p["sku"])
        if q is not None and q["bucket"] != p["bucket"]:
            moved.append({"url": p["url"], "truth": p["truth"], "kind": p["kind"], "before": q["bucket"],
                          "after": p["bucket"], "confidence": [q["confidence"], p["confidence"]]})
    new_false_auto = [m for m in moved if m["after"] == "auto" and m["truth"] == 0]
    # A speed change that should not alter what stages return must leave every reading as it was.
    changed = []
    for p in after["pairs"]:
        q = old.get(p["url"] + p["sku"])
        if q is None:
            continue
        diff = {k: [q.get(k), p.get(k)] for k in EVIDENCE_KEYS if k in p and not _same_reading(q.get(k), p.get(k))}
        if diff:
            changed.append({"url": p["url"], "sku": p["sku"], **diff})
    return {
        "cpu_s_per_image": [before["cpu_s_per_image"], after["cpu_s_per_image"]],
        "buckets_by_truth": [before["buckets_by_truth"], after["buckets_by_truth"]],
        "moved": moved,
        "new_false_auto": new_false_auto,
        "pairs_compared": sum(1 for p in after["pairs"] if p["url"] + p["sku"] in old),
        "evidence_changed": changed,
    }


# The per-pair readings compare_runs checks (besides the bucket).
EVIDENCE_KEYS = ("confidence", "cosine", "inliers", "colour_distance", "colour_distance_in_place", "product_number",
                 "conflicts")


def _same_reading(a: Any, b: Any, tol: float = 1e-6) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= tol
    return a == b


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="e2e_6x50", help="folder under var/bench/ (made by the e2e section)")
    parser.add_argument("--skus", type=int, default=2)
    parser.add_argument("--sku", action="append", dest="only", metavar="CODE",
                        help="this SKU (repeatable) instead of the first --skus")
    parser.add_argument("--listings", type=int, default=50)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-ocr", action="store_true")
    parser.add_argument("--no-gates", action="store_true",
                        help="cut-out and number OCR whenever near a threshold (the cascade before the outcome gates)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--profile", type=Path, help="write a cProfile of the run here")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    args = parser.parse_args(argv)

    if args.compare:
        report = compare_runs(*(json.loads(p.read_text()) for p in args.compare))
        print(json.dumps(report, indent=1, ensure_ascii=False))
        return 1 if report["new_false_auto"] else 0

    folder = BENCH_VAR / args.dataset
    if not (folder / "catalog.csv").is_file():
        print(f"no dataset in {folder}: run `python -m benchmarks.run --only e2e` once to generate it", file=sys.stderr)
        return 2
    data = load_dataset(folder, skus=args.skus, listings=args.listings, only=args.only)
    for sku, _ in data:
        sku["_folder"] = str(folder)
    comparer = build_comparer(args.threads, ocr=not args.no_ocr, gates=not args.no_gates)
    if args.profile:
        import cProfile

        args.profile.parent.mkdir(parents=True, exist_ok=True)

        prof = cProfile.Profile()
        result = prof.runcall(run_pairs, comparer, data)
        prof.dump_stats(args.profile)
    else:
        result = run_pairs(comparer, data)
    result["settings"] = {"dataset": args.dataset, "skus": args.only or args.skus, "listings": args.listings,
                          "threads": args.threads, "ocr": not args.no_ocr, "gates": not args.no_gates,
                          "embedder_runtime": getattr(comparer.embedder._inner, "runtime", "torch")}
    summary = {k: v for k, v in result.items() if k != "pairs"}
    print(json.dumps(summary, indent=1, ensure_ascii=False))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
