"""Run the production pipeline and decision rules over labelled pairs and report accuracy.

    python manage.py evaluate_pairs ../shared/eval/luma_dev/pairs.csv --root ../shared/eval/luma_dev \
        --json var/eval/luma.json --plot var/eval/luma_pr.png

Same stages, lexicon and active thresholds as the match runs; the analysis cache lives in the
database (by image content hash), so a second run over the same photos is fast.
"""
from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from matcher.matching import toolkit
from matcher.pipeline import evaluation


class Command(BaseCommand):
    help = "Evaluate the matcher on a pairs CSV (image_a, image_b, same_product[, title_a, title_b, kind])."

    def add_arguments(self, parser) -> None:
        parser.add_argument("pairs", help="pairs CSV")
        parser.add_argument("--root", help="folder the image paths are relative to (default: the CSV's folder)")
        parser.add_argument("--json", dest="json_out", help="write the metrics here")
        parser.add_argument("--plot", help="write a precision-recall curve PNG here")
        parser.add_argument("--outcomes", help="write per-pair outcomes (evidence, bucket) as CSV here")
        parser.add_argument("--limit", type=int)
        parser.add_argument("--no-ocr", action="store_true")

    def handle(self, *args, pairs: str, root: str | None, json_out: str | None, plot: str | None,
               outcomes: str | None, limit: int | None, no_ocr: bool, **options) -> None:
        path = Path(pairs)
        if not path.is_file():
            raise CommandError(f"pairs file not found: {path}")
        rows = evaluation.read_pairs_csv(path, root=root)
        if limit:
            rows = rows[:limit]
        if not rows:
            raise CommandError("no labelled rows (same_product 1 or 0) in the file")
        missing = [p for r in rows for p in r.images_a + r.images_b if not Path(p).is_file()]
        if missing:
            raise CommandError(f"{len(missing)} image paths do not exist, e.g. {missing[0]} (check --root)")

        kit = toolkit(with_ocr=not no_ocr)
        bar = tqdm(total=len(rows), unit="pair", desc="evaluate")

        def progress(n: int, total: int) -> None:
            bar.update(1)
            if n % 50 == 0:
                kit.cache.flush()

        results = evaluation.run_pairs(rows, kit.comparer, progress=progress)
        kit.cache.flush()
        bar.close()
        errors = [o for o in results if o.error]
        scored = [o.scored for o in results]
        report = evaluation.metrics(scored)
        report["thresholds_version"] = kit.thresholds.version
        report["auto_threshold"] = kit.policy.auto_threshold
        report["review_threshold"] = kit.policy.review_threshold
        report["embedder"] = kit.cache.embedder
        report["errors"] = len(errors)
        report["stages"] = kit.comparer.totals.as_dict()
        # Label noise the pipeline cannot see: a negative whose two sides are the same photo.
        noise = {id(r) for r in evaluation.same_photo_negatives(rows)}
        report["same_photo_negatives"] = [
            {"image_a": "|".join(o.row.images_a), "image_b": "|".join(o.row.images_b), "kind": o.row.kind,
             "bucket": o.scored.bucket}
            for o in results if id(o.row) in noise
        ]
        report["excluding_same_photo_negatives"] = (
            evaluation.metrics([o.scored for o in results if id(o.row) not in noise], per_kind=False) if noise else None
        )
        self.stdout.write(evaluation.format_metrics(report))
        if noise:
            self.stdout.write(
                f"{len(noise)} negative pair(s) show the very same photo on both sides (the data files one picture "
                "under two products; only a title can separate them). Without them:\n  "
                + evaluation.format_metrics(report["excluding_same_photo_negatives"])
            )
        for o in errors[:5]:
            self.stderr.write(f"error: {o.row.images_a} vs {o.row.images_b}: {o.error}")
        if json_out:
            Path(json_out).parent.mkdir(parents=True, exist_ok=True)
            Path(json_out).write_text(json.dumps(report, indent=2, ensure_ascii=False))
            self.stdout.write(f"metrics written to {json_out}")
        if plot:
            Path(plot).parent.mkdir(parents=True, exist_ok=True)
            evaluation.plot_pr_curve(scored, plot, auto_threshold=kit.policy.auto_threshold,
                                     review_threshold=kit.policy.review_threshold, title=path.name)
            self.stdout.write(f"precision-recall curve written to {plot}")
        if outcomes:
            evaluation.write_outcomes_csv(results, outcomes)
