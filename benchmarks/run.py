"""`make bench`: measure the pipeline, the end-to-end run, pgvector and the review page.

    python -m benchmarks.run                          # every section, full sizes (hours on 2 cores)
    python -m benchmarks.run --only embed,pgvector --quick
    python -m benchmarks.run --only e2e --e2e-skus 200 --e2e-listings 50

Sections: embed, detect, cutout, keypoints, ocr (the vision stages, one process), pgvector,
e2e (Celery workers on the bench database), review, catalogue, sku (the SKU page). Results are merged into
benchmarks/results.json, so a section run alone keeps the others' figures; each figure is written
as soon as its section ends. Timing targets live here and in benchmarks/README.md, never in tests.
"""
from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

VISION = ("embed", "detect", "cutout", "keypoints", "ocr")
SECTIONS = (*VISION, "pgvector", "review", "catalogue", "sku", "e2e")

# (key, target, higher is better) — shown next to the figures; the targets.
TARGETS: list[tuple[str, float, bool]] = [
    ("embed_flops_fraction", 0.5, True),
    ("e2e_images_per_minute", 300, True),
    ("pgvector_p95_ms_1m", 20, False),
    ("pgvector_recall_1m", 0.95, True),
    ("review_page_ms_p95", 50, False),
    ("catalogue_page_ms_p95", 100, False),
    ("catalogue_worst_ms_p95", 100, False),
    ("policy_preview_global_s", 10, False),
    ("sku_page_ms_p95", 100, False),
    ("e2e_speedup_2_workers", 1.7, True),
]


def _section_runner(name: str) -> Callable[..., dict[str, Any]]:
    if name in VISION:
        from benchmarks import vision

        return lambda quick, options: vision.run(stages=[name], quick=quick, options=options)
    if name == "pgvector":
        from benchmarks import pgvector_search

        return pgvector_search.run
    if name == "review":
        from benchmarks import review_page

        return review_page.run
    if name == "catalogue":
        from benchmarks import catalogue_page

        return catalogue_page.run
    if name == "sku":
        from benchmarks import sku_page

        return sku_page.run
    if name == "e2e":
        from benchmarks import e2e

        return e2e.run
    raise ValueError(name)


def _fmt(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:,.4f}" if abs(value) < 1 else f"{value:,.2f}"
    if isinstance(value, (list, dict)):
        return f"[{len(value)} entries]"
    return str(value)


def print_table(results: dict[str, Any], keys: list[str] | None = None) -> None:
    targets = {k: (t, hi) for k, t, hi in TARGETS}
    shown = [k for k in (keys or sorted(results)) if k in results and not isinstance(results[k], (dict, list))
             and not (isinstance(results[k], str) and len(results[k]) > 40)]
    width = max((len(k) for k in shown), default=10)
    print(f"\n{'figure':<{width}}  {'value':>14}  target")
    print("-" * (width + 30))
    for key in shown:
        value = results[key]
        target = ""
        if key in targets and isinstance(value, (int, float)) and value is not None:
            t, hi = targets[key]
            ok = value >= t if hi else value <= t
            target = f"{'≥' if hi else '≤'} {t:g}  {'met' if ok else 'NOT met'}"
        print(f"{key:<{width}}  {_fmt(value):>14}  {target}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections: " + ",".join(SECTIONS))
    parser.add_argument("--quick", action="store_true", help="small sizes, for development (minutes, not hours)")
    parser.add_argument("--out", type=Path, default=None,
                        help="results file (default benchmarks/results.json; with --quick var/bench/results.quick.json)")
    parser.add_argument("--threads", type=int, default=0, help="vision stages: threads (default: every core)")
    parser.add_argument("--e2e-skus", type=int, default=None)
    parser.add_argument("--e2e-listings", type=int, default=None)
    parser.add_argument("--e2e-speedup-skus", type=int, default=None, help="SKUs in each pinned-worker run")
    parser.add_argument("--e2e-main-workers", type=int, default=None,
                        help="workers in the main run (default 1 with a thread per core; more: pinned, one thread each)")
    parser.add_argument("--e2e-main-skus", type=int, default=None, help="SKUs of the dataset in the main run")
    parser.add_argument("--e2e-skip-main", action="store_true", help="only the 1-vs-2 pinned worker runs")
    parser.add_argument("--e2e-skip-speedup", action="store_true", help="only the main end-to-end run")
    parser.add_argument("--e2e-speedup-llm", choices=("as-main", "online", "batch"), default="as-main",
                        help="how the pinned-worker runs ask the LLM: as the main run over the whole dataset "
                             "would (the Batch API from GEMINI_BATCH_MIN_PAIRS listings), or forced")
    parser.add_argument("--pg-sizes", default="", help="pgvector sizes to run: 10k,100k,1m")
    parser.add_argument("--pg-m", type=int, default=0)
    parser.add_argument("--pg-ef-construction", type=int, default=0)
    parser.add_argument("--pg-ef-search", default="", help="ef_search values to sweep, e.g. 40,100,200")
    parser.add_argument("--pg-rebuild", action="store_true", help="reload vectors and rebuild the index")
    parser.add_argument("--review-pending", type=int, default=None)
    parser.add_argument("--review-requests", type=int, default=None)
    parser.add_argument("--catalogue-skus", type=int, default=None, help="catalogue section: SKUs (default 50,000)")
    parser.add_argument("--catalogue-listings", type=int, default=None,
                        help="catalogue section: listings (default 500,000; the issue's target is 2,500,000)")
    parser.add_argument("--catalogue-requests", type=int, default=None)
    parser.add_argument("--sku-requests", type=int, default=None, help="sku section: requests (default 200)")
    args = parser.parse_args(argv)
    # A bench stopped with `kill` (SIGTERM) unwinds like Ctrl-C: the sections' finally blocks stop the
    # Celery workers and the fake Gemini server they started instead of leaving them running.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    from benchmarks import common

    # Quick figures are for development: they never overwrite the committed full-size results.
    out = args.out or (common.BENCH_VAR / "results.quick.json" if args.quick else common.RESULTS)
    out.parent.mkdir(parents=True, exist_ok=True)
    wanted = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(wanted) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s): {', '.join(unknown)}")
    options = {k: v for k, v in vars(args).items() if k not in ("only", "quick", "out")}

    machine, revision = common.machine(), common.git_revision()
    results: dict[str, Any] = {}
    status = 0
    for name in [s for s in SECTIONS if s in wanted]:
        print(f"== {name}{' (quick)' if args.quick else ''}", flush=True)
        started = time.perf_counter()
        try:
            figures = _section_runner(name)(quick=args.quick, options=options)
            record: dict[str, Any] = {
                "quick": args.quick,
                "seconds": round(time.perf_counter() - started, 1),
                "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "load_average": [round(x, 2) for x in os.getloadavg()],
                # Sections run on different days can land on different hosts of the VM pool, whose
                # CPUs differ (AVX-512 or not): each section says which one it measured.
                "cpu": machine.get("cpu", ""),
                "revision": revision,
            }
        except Exception as exc:  # one broken section must not lose the others' figures
            traceback.print_exc()
            figures, record = {}, {"error": repr(exc)[:500]}
            status = 1
        # Re-read just before writing: a section in another process (the 1M index build runs for an
        # hour) may have written its figures meanwhile, and they must survive this write.
        results = common.load_results(out)
        results.update(machine=machine, revision=revision)
        results.setdefault("sections", {})[name] = record
        results.update(figures)
        common.save_results(results, out)
        print_table(figures)
    print_table(results, [k for k, _, _ in TARGETS] + sorted(k for k in results if k.endswith("_images_per_s")))
    from benchmarks import sizing

    print("\n" + sizing.table(results))
    if out == common.RESULTS:
        for readme in (sizing.README, sizing.PROJECT_README):
            if sizing.update_readme(results, path=readme):
                print(f"\nsizing table updated in {readme}")
    print(f"\nresults: {out}")
    return status


if __name__ == "__main__":
    sys.exit(main())
