"""Metrics for labelled pairs, a PR-curve plot, and a runner over a pairs CSV.

Plain Python, no Django: the `evaluate_pairs` management command wraps `run_pairs_csv`.

Pairs CSV columns: image_a (our SKU's photo set: one path, or several joined by '|'),
image_b (the listing's photo(s), same convention), same_product (1 / 0; any other value,
e.g. -1 for ambiguous, is skipped), and optionally title_a, title_b, product_number_a,
kind. Relative paths are read from the CSV's folder unless `root` is given.
"""
from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from matcher.pipeline.compare import PairComparer
from matcher.pipeline.inputs import ImageInput, ListingSide, SkuSide
from matcher.pipeline.policy import DecisionPolicy, decide
from matcher.pipeline.types import Bucket, PairEvidence

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class ScoredPair:
    label: int  # 1 same product, 0 not
    confidence: float
    bucket: Bucket
    kind: str = ""


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def roc_auc(pairs: Sequence[ScoredPair]) -> float | None:
    """Probability that a random positive has higher confidence than a random negative (ties ½)."""
    pos = sorted(p.confidence for p in pairs if p.label == 1)
    neg = sorted(p.confidence for p in pairs if p.label == 0)
    if not pos or not neg:
        return None
    # Rank-sum with average ranks for ties.
    values = sorted([(c, 1) for c in pos] + [(c, 0) for c in neg])
    rank_sum = 0.0
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1][0] == values[i][0]:
            j += 1
        avg_rank = (i + j) / 2 + 1
        rank_sum += avg_rank * sum(1 for k in range(i, j + 1) if values[k][1] == 1)
        i = j + 1
    n_pos, n_neg = len(pos), len(neg)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def pr_points(pairs: Sequence[ScoredPair]) -> list[tuple[float, float, float]]:
    """(threshold, precision, recall) for every distinct confidence, highest threshold first."""
    n_pos = sum(1 for p in pairs if p.label == 1)
    if not n_pos:
        return []
    ordered = sorted(pairs, key=lambda p: -p.confidence)
    points = []
    tp = fp = 0
    i = 0
    while i < len(ordered):
        threshold = ordered[i].confidence
        while i < len(ordered) and ordered[i].confidence == threshold:
            tp += ordered[i].label == 1
            fp += ordered[i].label == 0
            i += 1
        points.append((threshold, tp / (tp + fp), tp / n_pos))
    return points


def recall_at_precision(pairs: Sequence[ScoredPair], precision: float) -> float | None:
    """Highest recall of any confidence threshold whose precision is at least `precision`."""
    points = pr_points(pairs)
    if not points:
        return None
    return max((r for _, p, r in points if p >= precision), default=0.0)


def metrics(pairs: Sequence[ScoredPair], *, per_kind: bool = True) -> dict:
    pos = [p for p in pairs if p.label == 1]
    neg = [p for p in pairs if p.label == 0]
    auto = [p for p in pairs if p.bucket == "auto"]
    out: dict = {
        "n_pos": len(pos),
        "n_neg": len(neg),
        "n_auto": len(auto),
        "auto_precision": _ratio(sum(p.label == 1 for p in auto), len(auto)),
        "auto_recall": _ratio(sum(p.bucket == "auto" for p in pos), len(pos)),
        "review_or_auto_recall": _ratio(sum(p.bucket in ("auto", "review") for p in pos), len(pos)),
        "negatives_to_review_rate": _ratio(sum(p.bucket == "review" for p in neg), len(neg)),
        "negatives_auto_rate": _ratio(sum(p.bucket == "auto" for p in neg), len(neg)),
        "recall_at_precision_0_99": recall_at_precision(pairs, 0.99),
        "recall_at_precision_0_995": recall_at_precision(pairs, 0.995),
        "roc_auc": roc_auc(pairs),
    }
    if per_kind:
        kinds = sorted({p.kind for p in pairs})
        out["by_kind"] = {k: metrics([p for p in pairs if p.kind == k], per_kind=False) for k in kinds}
    return out


def format_metrics(m: dict) -> str:
    def f(v) -> str:
        if v is None:
            return "—"
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    keys = [k for k in m if not isinstance(m[k], (dict, list))]
    lines = [" ".join(f"{k}={f(m[k])}" for k in keys)]
    for kind, km in (m.get("by_kind") or {}).items():
        short = ("n_pos", "n_neg", "review_or_auto_recall", "auto_recall", "negatives_to_review_rate", "negatives_auto_rate")
        lines.append(f"  [{kind or '-'}] " + " ".join(f"{k}={f(km[k])}" for k in short))
    return "\n".join(lines)


def plot_pr_curve(
    pairs: Sequence[ScoredPair],
    path: str | Path,
    *,
    auto_threshold: float,
    review_threshold: float,
    title: str = "",
) -> Path:
    """Precision–recall curve over the confidence, with the two thresholds marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = pr_points(pairs)
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=110)
    if points:
        ax.plot([r for _, _, r in points], [p for _, p, _ in points], color="#1f77b4", lw=1.5, label="PR curve")
        for threshold, colour, name in ((auto_threshold, "#2ca02c", "auto"), (review_threshold, "#ff7f0e", "review")):
            at = [(p, r) for t, p, r in points if t >= threshold]
            if at:
                p, r = at[-1]
                ax.scatter([r], [p], color=colour, zorder=3, s=40, label=f"{name} ≥ {threshold:.2f}: P={p:.3f} R={r:.3f}")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.01)
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    ax.set_title(title or "pairs")
    ax.legend(loc="lower left", fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


# --- the runner --------------------------------------------------------------------


@dataclass
class PairRow:
    images_a: list[str]
    images_b: list[str]
    label: int
    title_a: str = ""
    title_b: str = ""
    product_number_a: str = ""
    kind: str = ""


@dataclass
class PairOutcome:
    row: PairRow
    scored: ScoredPair
    evidence: PairEvidence
    reasons: list[str] = field(default_factory=list)
    error: str | None = None


def read_pairs_csv(path: str | Path, *, root: str | Path | None = None) -> list[PairRow]:
    """Rows with same_product 1 or 0; paths resolved against `root` (default: the CSV's folder)."""
    path = Path(path)
    base = Path(root) if root is not None else path.parent
    rows: list[PairRow] = []
    with open(path, encoding="utf-8", newline="") as fh:
        for rec in csv.DictReader(fh):
            label = (rec.get("same_product") or "").strip()
            if label not in ("0", "1"):
                continue

            def paths(cell: str) -> list[str]:
                return [str(p if Path(p).is_absolute() else base / p) for p in (x.strip() for x in cell.split("|")) if p]

            rows.append(
                PairRow(
                    images_a=paths(rec.get("image_a") or ""),
                    images_b=paths(rec.get("image_b") or ""),
                    label=int(label),
                    title_a=rec.get("title_a") or "",
                    title_b=rec.get("title_b") or "",
                    product_number_a=rec.get("product_number_a") or "",
                    kind=rec.get("kind") or "",
                )
            )
    return rows


# Two files are "the same photo" when their 64×64 thumbnails differ by less than this mean
# absolute difference (0–255): a re-encode or a resize stays well below 1, while the smallest
# real colourway difference in luma_dev (a trim or a logo in another colour) is above 2.
SAME_PHOTO_TOLERANCE = 1.0


class PhotoIdentity:
    """Tells whether two image files show the very same photo (thumbnails cached by path)."""

    def __init__(self, tolerance: float = SAME_PHOTO_TOLERANCE) -> None:
        self.tolerance = tolerance
        self._thumbs: dict[str, tuple[float, np.ndarray]] = {}

    def _thumb(self, path: str):
        import numpy as np
        from PIL import Image

        if path not in self._thumbs:
            with Image.open(path) as im:
                aspect = im.width / im.height
                arr = np.asarray(im.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR), dtype=np.float32)
            self._thumbs[path] = (aspect, arr)
        return self._thumbs[path]

    def same(self, path_a: str, path_b: str) -> bool:
        if path_a == path_b:
            return True
        (asp_a, a), (asp_b, b) = self._thumb(path_a), self._thumb(path_b)
        if abs(asp_a - asp_b) > 0.01 * max(asp_a, asp_b):
            return False
        return float(abs(a - b).mean()) < self.tolerance


def same_photo_negatives(rows: Sequence[PairRow], identity: PhotoIdentity | None = None) -> list[PairRow]:
    """Negatives whose two sides share one photo: the source filed the very same picture under
    two products (luma_dev re-uses some main shots across colourways). No photo-only matcher
    can tell such a pair apart — in production the listing's title (its colour word) does —
    so the evaluation reports them and the metrics without them, next to the raw figures."""
    identity = identity or PhotoIdentity()
    out = []
    for row in rows:
        if row.label == 0 and any(identity.same(a, b) for a in row.images_a for b in row.images_b):
            out.append(row)
    return out


def run_pairs(
    rows: Sequence[PairRow],
    comparer: PairComparer,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> list[PairOutcome]:
    """Compare each row with `comparer`; a failing row is recorded, not raised."""
    inputs: dict[str, ImageInput] = {}

    def image(p: str) -> ImageInput:
        if p not in inputs:
            inputs[p] = ImageInput.from_path(p)
        return inputs[p]

    # A cache that keeps its analyses elsewhere (the database) reads them in bulk up front, so a
    # second run over the same photos recomputes nothing.
    preload = getattr(getattr(comparer, "cache", None), "preload", None)
    if preload is not None:
        shas = []
        for p in dict.fromkeys(p for row in rows for p in row.images_a + row.images_b):
            try:
                shas.append(image(p).sha256)
            except OSError:  # unreadable: its row fails below, with the reason recorded
                continue
        for start in range(0, len(shas), 500):
            preload(shas[start : start + 500])

    outcomes: list[PairOutcome] = []
    for n, row in enumerate(rows, 1):
        try:
            result = comparer.compare(
                SkuSide(
                    images=[image(p) for p in row.images_a],
                    title=row.title_a,
                    product_number=row.product_number_a or None,
                ),
                ListingSide(images=[image(p) for p in row.images_b], title=row.title_b),
            )
            outcomes.append(
                PairOutcome(
                    row=row,
                    scored=ScoredPair(row.label, result.decision.confidence, result.decision.bucket, row.kind),
                    evidence=result.evidence,
                    reasons=result.decision.reasons,
                )
            )
        except Exception as exc:  # one unreadable image must not end a long run
            outcomes.append(
                PairOutcome(row=row, scored=ScoredPair(row.label, 0.0, "reject", row.kind), evidence=PairEvidence(), error=repr(exc))
            )
        if progress:
            progress(n, len(rows))
        # Images are re-read from disk when needed; keep memory bounded on long runs.
        for ref in inputs.values():
            ref.image = None
    return outcomes


def run_pairs_csv(
    path: str | Path,
    comparer: PairComparer,
    *,
    root: str | Path | None = None,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[PairOutcome]:
    rows = read_pairs_csv(path, root=root)
    return run_pairs(rows[:limit] if limit else rows, comparer, progress=progress)


def rescore(outcomes: Iterable[PairOutcome], policy: DecisionPolicy) -> list[ScoredPair]:
    """Decide again from stored evidence under another policy (no image work)."""
    out = []
    for o in outcomes:
        d = decide(o.evidence, policy)
        out.append(ScoredPair(o.row.label, d.confidence, d.bucket, o.row.kind))
    return out


def write_outcomes_csv(outcomes: Sequence[PairOutcome], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "image_a", "image_b", "same_product", "kind", "confidence", "bucket", "cosine", "cosine_regions",
                "inliers", "inlier_colour_agreement", "colour_distance", "colour_distance_in_place", "product_number", "conflicts", "error", "reasons",
            ]
        )
        for o in outcomes:
            e = o.evidence
            w.writerow(
                [
                    "|".join(o.row.images_a), "|".join(o.row.images_b), o.row.label, o.row.kind,
                    f"{o.scored.confidence:.4f}", o.scored.bucket, _num(e.cosine),
                    "↔".join(e.cosine_regions) if e.cosine_regions else "", e.inliers if e.inliers is not None else "",
                    _num(e.inlier_colour_agreement), _num(e.colour_distance), _num(e.colour_distance_in_place),
                    e.product_number, "; ".join(e.conflicts),
                    o.error or "", " | ".join(o.reasons),
                ]
            )
    return path


def _num(v: float | None) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"
