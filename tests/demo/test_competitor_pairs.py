from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import pytest

from matcher.demo.competitor_pairs import build, load_shots


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _styles_with_lookalikes(luma: Path) -> list[str]:
    """Two styles of one category sharing a colour label (so 'other style' negatives exist), plus one more."""
    shots = load_shots(luma)
    by_key: dict[tuple[str, str], set[str]] = defaultdict(set)
    for s in shots:
        by_key[(s.category, s.colour)].add(s.style)
    pair = sorted(next(styles for _, styles in sorted(by_key.items()) if len(styles) >= 2))[:2]
    extra = next(s.style for s in shots if s.category != next(x.category for x in shots if x.style == pair[0]))
    return [*pair, extra]


@pytest.fixture(scope="module")
def built(luma_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("competitor")
    return build(luma_dir, out, styles=_styles_with_lookalikes(luma_dir), n_distractors=24, holdout_every=3)


def test_pairs_have_positives_and_both_kinds_of_negative(built):
    rows = _rows(built.pairs_csv)
    kinds = {r["kind"].split(":")[0] for r in rows}

    assert list(rows[0])[:4] == ["image_a", "image_b", "same_product", "kind"]
    assert {"same", "other_colour", "other_style"} <= kinds
    assert all(r["same_product"] == ("1" if r["kind"].startswith("same:") else "0") for r in rows)
    assert any(r["source_in_a"] == "0" for r in rows if r["same_product"] == "1")


def test_every_path_resolves_from_the_csv_folder_and_luma_is_not_copied(built, luma_dir):
    rows = _rows(built.pairs_csv)
    for r in rows:
        for p in r["image_a"].split("|") + [r["image_b"]]:
            assert (built.out / p).is_file(), p
    assert all(Path(built.out / r["image_a"].split("|")[0]).resolve().is_relative_to(luma_dir.resolve()) for r in rows)
    assert not any(p.name in {x.name for x in (luma_dir / "images").iterdir()} for p in (built.out / "images").iterdir())


def test_the_retrieval_set_has_queries_originals_and_distinct_distractors(built):
    queries = _rows(built.queries_csv)
    gallery = _rows(built.gallery_csv)
    gallery_paths = {g["image"] for g in gallery}
    distractors = [g for g in gallery if g["kind"].startswith("distractor:")]

    assert queries and all(set(q["expected"].split("|")) <= gallery_paths for q in queries)
    assert len(distractors) == 24 == built.n_distractors
    assert len({(built.out / d["image"]).read_bytes() for d in distractors}) == 24
    queried = {q["sku_colour"] for q in queries}
    assert not any(d["product"] in queried for d in distractors)


def test_the_same_seed_builds_the_same_set(luma_dir, tmp_path):
    styles = _styles_with_lookalikes(luma_dir)[:1]
    a = build(luma_dir, tmp_path / "a", styles=styles, n_distractors=4, seed=5)
    b = build(luma_dir, tmp_path / "b", styles=styles, n_distractors=4, seed=5)

    assert a.pairs_csv.read_bytes() == b.pairs_csv.read_bytes()
    for row in _rows(a.pairs_csv):
        assert (a.out / row["image_b"]).read_bytes() == (b.out / row["image_b"]).read_bytes()


def test_a_colourway_filed_with_our_very_photo_never_becomes_an_other_colour_negative(luma_dir, tmp_path):
    # luma_dev files one main shot under mp09 black and mp09 blue; red is a real other colour.
    # Several seeds: a random pick among black's and blue's siblings would hit the twin often.
    pairs: set[tuple[str, str]] = set()
    for seed in range(6):
        result = build(luma_dir, tmp_path / str(seed), styles=["mp09"], n_distractors=2, holdout_every=0, seed=seed)
        pairs |= {(r["a_sku_colour"], r["b_sku_colour"]) for r in _rows(result.pairs_csv)
                  if r["kind"].startswith("other_colour:")}
    assert pairs and not pairs & {("mp09-black", "mp09-blue"), ("mp09-blue", "mp09-black")}
    assert all("mp09-red" in pair for pair in pairs)


def test_a_collage_query_keeps_only_drawn_company_so_its_one_right_answer_is_its_own_product(built):
    queries = _rows(built.queries_csv)
    pair_images = {r["image_b"] for r in _rows(built.pairs_csv)}
    collages = [q for q in queries if q["kind"] == "collage"]
    others = [q for q in queries if q["kind"] != "collage"]

    assert all(Path(q["query"]).name.startswith("qry_") and q["query"] not in pair_images for q in collages)
    assert all(q["query"] in pair_images for q in others)
    assert all((built.out / q["query"]).is_file() for q in collages)


@pytest.mark.parametrize("name, label, kept", [
    # The recolour's mask reads a pale yellow tee as skin and leaves it alone: not a negative.
    ("ws07-yellow_main.jpg", "Yellow", False),
    # A greyish brown jacket: only the seams turned; not a negative either.
    ("wj05-brown_main.jpg", "Brown", False),
    # A red tank top on bare arms and shoulders: recoloured, a real negative.
    ("wt06-red_main.jpg", "Red", True),
])
def test_only_a_recolour_that_changed_the_garment_becomes_a_negative(luma_dir, name, label, kept):
    import numpy as np
    from PIL import Image

    from matcher.demo.competitor_pairs import MIN_RECOLOURED_SHARE, recolour_away, recoloured_share

    photo = Image.open(luma_dir / "images" / name).convert("RGB")
    recoloured, _ = recolour_away(photo, [label], np.random.default_rng(0))

    assert (recoloured_share(photo, recoloured, "Women/Tops", label) >= MIN_RECOLOURED_SHARE) is kept



@pytest.mark.parametrize("image, recolours", [("ws07-yellow_main.jpg", False), ("mh12-green_main.jpg", True)])
def test_a_recolour_that_missed_the_garment_is_not_a_distractor(luma_dir, tmp_path, image, recolours):
    """A failed recolour is a copy of the product's own photo: the search is right to find it."""
    import numpy as np
    from PIL import Image

    from matcher.demo.competitor_pairs import _distractors, _Writer

    shot = next(s for s in load_shots(luma_dir) if s.image.endswith(image))
    out = _distractors([shot], set(), {shot.style: {shot.colour}}, lambda s: Image.open(luma_dir / s.image).convert("RGB"),
                       _Writer(tmp_path), np.random.default_rng(0), 3, False)

    assert any(d["kind"] == "distractor:recolour" for d in out) is recolours
