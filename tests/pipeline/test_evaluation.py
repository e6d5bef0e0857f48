"""Metrics, the PR plot and the pairs-CSV runner. Plain Python, no database."""
from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from matcher.pipeline import evaluation as ev
from matcher.pipeline.types import Decision, PairEvidence


def sp(label: int, confidence: float, bucket: str, kind: str = "k") -> ev.ScoredPair:
    return ev.ScoredPair(label, confidence, bucket, kind)


PAIRS = [
    sp(1, 0.97, "auto", "reuse"),
    sp(1, 0.95, "auto", "reuse"),
    sp(0, 0.93, "auto", "variant"),
    sp(1, 0.80, "review", "view"),
    sp(0, 0.75, "review", "variant"),
    sp(1, 0.40, "reject", "view"),
    sp(0, 0.10, "reject", "variant"),
    sp(0, 0.05, "reject", "other"),
]


def test_bucket_metrics():
    m = ev.metrics(PAIRS)
    assert (m["n_pos"], m["n_neg"], m["n_auto"]) == (4, 4, 3)
    assert m["auto_precision"] == pytest.approx(2 / 3)
    assert m["auto_recall"] == pytest.approx(0.5)
    assert m["review_or_auto_recall"] == pytest.approx(0.75)
    assert m["negatives_to_review_rate"] == pytest.approx(0.25)
    assert m["negatives_auto_rate"] == pytest.approx(0.25)


def test_ranking_metrics():
    m = ev.metrics(PAIRS)
    # Only the top two are pure: recall 0.5 at precision 1.
    assert m["recall_at_precision_0_99"] == pytest.approx(0.5)
    assert m["recall_at_precision_0_995"] == pytest.approx(0.5)
    # 13 of the 16 positive-negative pairs are ordered right.
    assert m["roc_auc"] == pytest.approx(13 / 16)


def test_ties_count_half_and_no_auto_means_no_auto_precision():
    tied = [sp(1, 0.5, "reject"), sp(0, 0.5, "reject")]
    m = ev.metrics(tied, per_kind=False)
    assert m["roc_auc"] == pytest.approx(0.5)
    assert m["auto_precision"] is None
    assert ev.metrics([sp(0, 0.2, "reject")], per_kind=False)["roc_auc"] is None


def test_metrics_per_kind():
    by_kind = ev.metrics(PAIRS)["by_kind"]
    assert set(by_kind) == {"reuse", "variant", "view", "other"}
    assert by_kind["variant"]["negatives_auto_rate"] == pytest.approx(1 / 3)
    assert by_kind["reuse"]["auto_recall"] == 1.0
    assert by_kind["other"]["n_pos"] == 0 and by_kind["other"]["review_or_auto_recall"] is None


def test_the_pr_plot_is_written(tmp_path):
    path = ev.plot_pr_curve(PAIRS, tmp_path / "pr.png", auto_threshold=0.9, review_threshold=0.7, title="t")
    with Image.open(path) as im:
        assert im.format == "PNG" and im.width > 300


class StubComparer:
    """Returns a decision from the file names: orchestration only, no accuracy claim."""

    def __init__(self) -> None:
        self.calls = []

    def compare(self, ours, theirs):
        self.calls.append(([r.label for r in ours.images], [r.label for r in theirs.images], ours.title, theirs.title))
        if "broken" in theirs.images[0].label:
            raise OSError("cannot read image")
        same = ours.images[0].label.split("_")[0] == theirs.images[0].label.split("_")[0]

        class Result:
            evidence = PairEvidence(cosine=0.9 if same else 0.3)
            decision = Decision(confidence=0.95 if same else 0.1, bucket="auto" if same else "reject", reasons=["stub"])

        return Result()


def test_the_runner_reads_photo_sets_skips_unlabelled_rows_and_records_failures(tmp_path):
    for name in ("a_1.jpg", "a_2.jpg", "a_3.jpg", "b_1.jpg", "broken.jpg"):
        Image.new("RGB", (8, 8), (len(name) * 10, 0, 0)).save(tmp_path / name)
    with open(tmp_path / "pairs.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image_a", "image_b", "same_product", "title_a", "title_b", "kind"])
        w.writerow(["a_1.jpg|a_2.jpg", "a_3.jpg", "1", "우리 자켓", "그들의 자켓", "same"])
        w.writerow(["a_1.jpg", "b_1.jpg", "0", "", "", "other"])
        w.writerow(["a_1.jpg", "b_1.jpg", "-1", "", "", "ambiguous"])
        w.writerow(["a_1.jpg", "broken.jpg", "0", "", "", "other"])
    comparer = StubComparer()
    outcomes = ev.run_pairs_csv(tmp_path / "pairs.csv", comparer)

    assert len(outcomes) == 3
    assert comparer.calls[0] == (["a_1.jpg", "a_2.jpg"], ["a_3.jpg"], "우리 자켓", "그들의 자켓")
    assert [o.scored.bucket for o in outcomes] == ["auto", "reject", "reject"]
    assert outcomes[2].error and "cannot read" in outcomes[2].error
    out = ev.write_outcomes_csv(outcomes, tmp_path / "out.csv")
    assert len(list(csv.DictReader(open(out)))) == 3


def test_rescoring_stored_evidence_under_another_policy():
    from matcher.pipeline.policy import DecisionPolicy

    row = ev.PairRow(images_a=["a"], images_b=["b"], label=1)
    outcome = ev.PairOutcome(
        row=row, scored=sp(1, 0.0, "reject"), evidence=PairEvidence(cosine=0.9, colour_distance=0.1)
    )
    strict = DecisionPolicy(review_threshold=0.99, auto_threshold=0.995)
    assert ev.rescore([outcome], DecisionPolicy())[0].bucket == "review"
    assert ev.rescore([outcome], strict)[0].bucket == "reject"


def test_same_photo_negatives_are_found_but_a_colourway_that_differs_only_in_its_trim_is_not(tmp_path, luma):
    # luma_dev files the very same main shot under mp09 black and mp09 blue; ws03's colourways
    # are different photos. A re-encode at lower quality is still the same photo.
    black, blue = luma("mp09-black_main.jpg"), luma("mp09-blue_main.jpg")
    paths = {}
    for name, img, quality in (("black", black, 95), ("blue", blue, 70)):
        paths[name] = str(tmp_path / f"{name}.jpg")
        img.save(paths[name], quality=quality)
    # Our photo with only a small patch (a logo, 3 % of the picture) in another colour.
    trim = np.asarray(black).copy()
    h, w = trim.shape[:2]
    trim[int(h * 0.3): int(h * 0.3) + int(h * 0.17), int(w * 0.4): int(w * 0.4) + int(w * 0.17)] = (200, 30, 30)
    paths["trim"] = str(tmp_path / "trim.jpg")
    Image.fromarray(trim).save(paths["trim"], quality=95)
    rows = [
        ev.PairRow(images_a=[paths["black"]], images_b=[paths["blue"]], label=0, kind="colour-variant"),
        ev.PairRow(images_a=[paths["black"]], images_b=[paths["trim"]], label=0, kind="colour-variant"),
        ev.PairRow(images_a=[paths["black"]], images_b=[paths["blue"]], label=1, kind="same"),
    ]
    assert ev.same_photo_negatives(rows) == [rows[0]]
