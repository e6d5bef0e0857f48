"""A competitor-style evaluation set built from the Luma studio photos.

The Luma photos are all clean studio shots; competitors' are not. For each product
(``sku_colour``) our side is its photo set, and the other side is one photo after what a
competitor does to it (crop, JPEG, banner, collage, street background, rotation,
re-photograph). Negatives get the same treatment, so the transform never gives the answer:
the same style in another colour, another style of the same category and colour label, and
our own photo with the garment recoloured.

Writes under ``out`` (paths in the CSVs are relative to ``out``; Luma photos are referenced
where they are, never copied):

- ``pairs.csv``: image_a ('|'-joined photo set), image_b, same_product (1/0), kind
  ("same:banner", "other_colour:crop_banner", "other_style:background", "recoloured:reused"),
  then a_sku_colour, b_sku_colour, source_in_a (1 when the transformed shot is also in image_a).
- ``queries.csv`` (query, expected, kind, sku_colour) and ``gallery.csv`` (image, product, kind):
  a reverse-image-search set. The gallery holds the original photos of the queried products
  plus distractors: recoloured Luma photos, transformed photos of held-out Luma styles (never
  queried), and drawn garments. ``expected`` is the '|'-joined gallery photos of the product. A
  collage query keeps drawn garments company (the pair's collage shows other gallery photos).
- ``images/`` with every transformed image.

Run: ``python -m matcher.demo.competitor_pairs --luma ../shared/eval/luma_dev --out var/eval/competitor``.
"""
from __future__ import annotations

import argparse
import csv
import os
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from PIL import Image

from matcher.demo import transforms as T
from matcher.demo.garments import COLOURS, PRINT_KINDS, VIEWS, Garment, GarmentSpec, Pattern, one_of, render
from matcher.pipeline.evaluation import PhotoIdentity

POSITIVE_TRANSFORMS: tuple[str, ...] = (
    "reused_crop", "low_jpeg", "banner", "crop_banner", "collage", "background", "rotated", "rephoto",
)
NEGATIVE_TRANSFORMS: tuple[str, ...] = ("reused", "reused_crop", "banner", "collage", "background", "rephoto")
# Nominal hues of the Luma colour labels, to keep a recolour away from a colourway the style really has.
LABEL_HUES: dict[str, float] = {
    "Red": 0, "Orange": 28, "Brown": 25, "Yellow": 55, "Green": 125, "Blue": 215, "Purple": 275,
}
ACHROMATIC_LABELS = frozenset({"Black", "Gray", "White"})
# In the order the draws index them: reordering changes the set.
RANDOM_GARMENTS: tuple[Garment, ...] = ("tshirt", "sweatshirt", "hoodie", "jacket", "vest", "fleece")
QUILTS: tuple[Pattern, ...] = ("horizontal", "diamond", "chevron")
FLEECE_POCKETS: tuple[Literal["patch", "none"], ...] = ("patch", "none")
FLEECE_ZIPPERS: tuple[Literal["full", "half"], ...] = ("full", "half")


@dataclass(frozen=True)
class Shot:
    image: str  # path relative to the Luma folder, e.g. images/mh02-black_main.jpg
    sku_colour: str
    style: str
    colour: str
    category: str
    view: str


@dataclass
class BuildResult:
    out: Path
    pairs_csv: Path
    queries_csv: Path
    gallery_csv: Path
    pairs: dict[str, int]  # rows per kind prefix (same, other_colour, other_style, recoloured)
    n_queries: int
    n_gallery_originals: int
    n_distractors: int
    seconds: float
    skipped_recolours: int = 0  # recolours that did not visibly change the garment (no row written)


def load_shots(luma: Path) -> list[Shot]:
    """Usable Luma shots: those whose colour agrees with their label.

    The source re-used one colourway's back/detail photos for another colour; pairs.csv marks
    those pairs (qc_colour_consistent 0 or 'uncertain'), and their non-main shot is left out here.
    """
    bad: set[str] = set()
    pairs = luma / "pairs.csv"
    if pairs.is_file():
        with pairs.open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                if row.get("qc_colour_consistent") in ("0", "uncertain"):
                    for view_key, image_key in (("a_view", "image_a"), ("b_view", "image_b")):
                        if row.get(view_key) != "main":
                            bad.add(row[image_key])
    shots = []
    with (luma / "images_meta.csv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            image = f"images/{row['image']}"
            if image in bad or not (luma / image).is_file():
                continue
            shots.append(Shot(image, row["sku_colour"], row["style"], row["colour"], row["category"], row["view"]))
    return shots


def _hue_of(img: Image.Image, mask: np.ndarray) -> float | None:
    """Saturation-weighted circular mean hue of the masked pixels; None when they are near grey."""
    hsv = cv2.cvtColor(np.asarray(img).astype(np.float32) / 255.0, cv2.COLOR_RGB2HSV)
    h, s = hsv[..., 0][mask], hsv[..., 1][mask]
    if h.size == 0 or float(np.median(s)) < 0.15:
        return None
    ang = np.deg2rad(h)
    return float(np.rad2deg(np.arctan2((s * np.sin(ang)).sum(), (s * np.cos(ang)).sum())) % 360)


def _circular(a: float, b: float) -> float:
    d = abs(a - b) % 360
    return min(d, 360 - d)


def recolour_away(img: Image.Image, taken_labels: Sequence[str], rng: np.random.Generator) -> tuple[Image.Image, float]:
    """The garment recoloured to a hue that is not one of the style's real colourways: (image, target hue)."""
    mask = T.garment_mask(img)
    current = _hue_of(img, mask)
    taken = [LABEL_HUES[c] for c in taken_labels if c in LABEL_HUES] + ([current] if current is not None else [])
    for _ in range(50):
        target = float(rng.uniform(0, 360))
        if all(_circular(target, t) >= 40 for t in taken):
            break
    shift = target if current is None else (target - current) % 360
    return T.recolour(img, shift, mask=mask), target


# A recoloured negative must have changed at least this share of the product's garment band by
# more than RECOLOUR_MIN_DELTA_E (CIELAB).
MIN_RECOLOURED_SHARE = 0.5
RECOLOUR_MIN_DELTA_E = 12.0
# Catalogue colour labels inside the skin test's YCrCb box (T.skin_mask).
SKIN_LIKE_COLOURS = frozenset({"yellow", "orange", "brown", "beige", "tan", "khaki"})


def recoloured_share(original: Image.Image, recoloured: Image.Image, category: str, colour: str = "") -> float:
    """Share of the garment's pixels the recolour changed visibly.

    The garment is read from the category, not from the mask the recolour used (that mask is
    what can be wrong): on these studio shots a top fills the band from 20 % to 55 % of the
    model's height and trousers or shorts the band from 55 % to 90 %; the studio background in
    the band does not count, and neither does skin (arms, legs). Except for a garment whose own
    colour is skin-like (``colour``, the catalogue's label: yellow, orange, brown): the
    recolour's mask leaves its pixels alone as "skin", so they count here, or a recolour that
    only touched the seams would pass.
    """
    product = T.product_mask(original)
    fg = product if colour.strip().lower() in SKIN_LIKE_COLOURS else product & ~T.skin_mask(original)
    x0, y0, x1, y1 = T.bbox_of(product)
    lo, hi = (0.55, 0.90) if "bottom" in category.lower() else (0.20, 0.55)
    band = np.zeros_like(fg)
    band[y0 + int((y1 - y0) * lo): y0 + int((y1 - y0) * hi), x0:x1] = True
    area = fg & band
    if area.sum() < 100:
        return 0.0
    lab_a = cv2.cvtColor(np.asarray(T._rgb(original)), cv2.COLOR_RGB2LAB).astype(np.float32)
    lab_b = cv2.cvtColor(np.asarray(T._rgb(recoloured)), cv2.COLOR_RGB2LAB).astype(np.float32)
    # OpenCV's 8-bit Lab: L scaled by 255/100, a and b offset by 128.
    lab_a[..., 0] *= 100 / 255
    lab_b[..., 0] *= 100 / 255
    delta = np.sqrt(((lab_a - lab_b) ** 2).sum(axis=2))
    return float((delta[area] > RECOLOUR_MIN_DELTA_E).mean())


def _dhash(img: Image.Image) -> int:
    small = np.asarray(img.convert("L").resize((17, 16), Image.Resampling.BILINEAR)).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    return int("".join("1" if b else "0" for b in bits), 2)


class _Writer:
    """Saves transformed images under out/images with unique names, refusing exact perceptual duplicates."""

    def __init__(self, out: Path) -> None:
        self.out = out
        (out / "images").mkdir(parents=True, exist_ok=True)
        self.hashes: set[int] = set()
        self.n = 0

    def save(self, img: Image.Image, stem: str, *, unique: bool = False) -> str | None:
        if unique:
            h = _dhash(img)
            if h in self.hashes:
                return None
            self.hashes.add(h)
        self.n += 1
        rel = f"images/{stem}_{self.n:05d}.jpg"
        img.convert("RGB").save(self.out / rel, "JPEG", quality=90)
        return rel


def _choose(counter: Counter[str], options: Sequence[str], rng: np.random.Generator) -> str:
    low = min(counter[o] for o in options)
    best = [o for o in options if counter[o] == low]
    pick = best[int(rng.integers(len(best)))]
    counter[pick] += 1
    return pick


def _drawn_fronts(rng: np.random.Generator, n: int) -> list[Image.Image]:
    """n drawn garments seen from the front: collage company that is in no gallery."""
    return [render(_random_spec(rng, int(rng.integers(1_000_000))), "front", size=512) for _ in range(n)]


def _random_spec(rng: np.random.Generator, seed: int) -> GarmentSpec:
    garment = one_of(str(rng.choice(RANDOM_GARMENTS)), RANDOM_GARMENTS)
    colour = str(rng.choice(list(COLOURS)))
    if garment in ("tshirt", "sweatshirt", "hoodie"):
        return GarmentSpec(
            garment=garment, colour=colour, collar="none" if garment == "hoodie" else "crew", hood=garment == "hoodie",
            zipper="none", pockets="kangaroo" if garment == "hoodie" else "none", texture="cotton",
            print_kind=str(rng.choice(PRINT_KINDS)) if rng.random() < 0.8 else None, print_seed=int(rng.integers(10_000)),
            print_text=str(rng.choice(["URBAN", "WEEKEND", "SEOUL 88", "ROOKIE", "CAMP", "LUMA", "TRAIL"])),
            length=float(rng.uniform(0.44, 0.56)), seed=seed,
        )
    if garment == "fleece":
        pockets = one_of(str(rng.choice(FLEECE_POCKETS)), FLEECE_POCKETS)
        zipper = one_of(str(rng.choice(FLEECE_ZIPPERS)), FLEECE_ZIPPERS)
        return GarmentSpec("fleece", colour, texture="fleece", pockets=pockets, zipper=zipper, seed=seed)
    return GarmentSpec(
        garment=garment, colour=colour, pattern=one_of(str(rng.choice(QUILTS)), QUILTS),
        period=float(rng.uniform(0.05, 0.08)), hood=bool(rng.random() < 0.4), length=float(rng.uniform(0.45, 0.64)),
        logo=str(rng.choice(["NORTHRIDGE", "PEAK", "TRAIL", ""])) or None, seed=seed,
    )


def build(
    luma: Path,
    out: Path,
    *,
    seed: int = 7,
    positives_per_product: int = 2,
    n_distractors: int = 2000,
    styles: Sequence[str] | None = None,
    holdout_every: int = 4,
    log: bool = False,
) -> BuildResult:
    """Write the pair set and the retrieval set for the Luma photos in ``luma`` under ``out``.

    ``styles`` restricts the products (for tests); every ``holdout_every``-th style is held out
    of the retrieval queries and gallery and used only for distractors.
    """
    started = time.perf_counter()
    luma, out = Path(luma).resolve(), Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shots = load_shots(luma)
    if styles is not None:
        wanted = set(styles)
        shots = [s for s in shots if s.style in wanted]
    if not shots:
        raise ValueError(f"no usable photos under {luma}")

    def rel(shot: Shot) -> str:
        return Path(os.path.relpath(luma / shot.image, out)).as_posix()

    cache: dict[str, Image.Image] = {}

    def photo(shot: Shot) -> Image.Image:
        if shot.image not in cache:
            cache[shot.image] = T._rgb(Image.open(luma / shot.image))
        return cache[shot.image]

    by_product: dict[str, list[Shot]] = defaultdict(list)
    for s in shots:
        by_product[s.sku_colour].append(s)
    products = sorted(by_product)
    style_colours: dict[str, set[str]] = defaultdict(set)
    for s in shots:
        style_colours[s.style].add(s.colour)
    all_styles = sorted(style_colours)
    held_out = {st for i, st in enumerate(all_styles) if holdout_every and i % holdout_every == holdout_every - 1} if len(all_styles) >= holdout_every else set()
    mains = [s for s in shots if s.view == "main"] or shots

    def others_for(style: str) -> list[Image.Image]:
        """Company for a collage: main shots of three other styles."""
        pool = [s for s in mains if s.style != style]
        if not pool:  # a one-style run: drawn garments keep it company
            return _drawn_fronts(rng, 2)
        picks = rng.choice(len(pool), size=min(3, len(pool)), replace=False)
        return [photo(pool[int(i)]) for i in picks]

    identity = PhotoIdentity()

    def main_of(product: str) -> Shot:
        """A product's main shot when it has one: that is its true colour."""
        return next((s for s in by_product[product] if s.view == "main"), by_product[product][0])

    writer = _Writer(out)
    query_writer = _Writer(out)
    query_rng = np.random.default_rng(seed + 1)

    skipped_recolours = 0
    used: dict[str, Counter[str]] = defaultdict(Counter)  # transforms so far, per pair type
    rows: list[dict[str, object]] = []
    queries: list[dict[str, object]] = []

    def transformed(img: Image.Image, kind: str, style: str) -> Image.Image:
        return T.competitor_copy(img, kind, rng, others=others_for(style) if kind == "collage" else ())

    for product in products:
        own = by_product[product]
        first = own[0]
        for _ in range(positives_per_product):
            src = own[int(rng.integers(len(own)))]
            kind = _choose(used["same"], POSITIVE_TRANSFORMS, rng)
            img_b = writer.save(transformed(photo(src), kind, first.style), f"pos_{product}")
            side_a = list(own)
            if len(own) > 1 and rng.random() < 0.5:
                side_a = [s for s in own if s is not src]  # the competitor's shot is not in our set
            rows.append({"image_a": "|".join(rel(s) for s in side_a), "image_b": img_b, "same_product": 1,
                         "kind": f"same:{kind}", "a_sku_colour": product, "b_sku_colour": product,
                         "source_in_a": int(src in side_a)})
            if first.style not in held_out:
                query = img_b
                if kind == "collage":
                    # The pair's collage keeps other styles' photos company, and those are in the
                    # gallery too: finding them is right, yet would count as a miss. The query gets
                    # a collage of its own with drawn garments (own generator and names, so the
                    # pairs and every other file stay as they were).
                    query = query_writer.save(
                        T.competitor_copy(photo(src), "collage", query_rng, others=_drawn_fronts(query_rng, 3)),
                        f"qry_{product}",
                    )
                queries.append({"query": query, "expected": "|".join(rel(s) for s in own), "kind": kind, "sku_colour": product})
        image_a = "|".join(rel(s) for s in own)

        # The same style in another colour.
        # A sibling whose photo is the very same picture as one of ours (the source filed one
        # shot under two colourways) would be a negative no photo can tell apart: skip it.
        siblings = [p for p in products if p != product and by_product[p][0].style == first.style
                    and not any(identity.same(str(luma / main_of(p).image), str(luma / s.image)) for s in own)]
        if siblings:
            shot = main_of(siblings[int(rng.integers(len(siblings)))])
            kind = _choose(used["other_colour"], NEGATIVE_TRANSFORMS, rng)
            rows.append({"image_a": image_a, "image_b": writer.save(transformed(photo(shot), kind, first.style), f"neg_colour_{shot.sku_colour}"),
                         "same_product": 0, "kind": f"other_colour:{kind}", "a_sku_colour": product,
                         "b_sku_colour": shot.sku_colour, "source_in_a": 0})
        # Another style of the same category and colour label.
        lookalikes = [p for p in products if by_product[p][0].style != first.style
                      and by_product[p][0].category == first.category and by_product[p][0].colour == first.colour]
        if lookalikes:
            other = by_product[lookalikes[int(rng.integers(len(lookalikes)))]]
            shot = other[int(rng.integers(len(other)))]
            kind = _choose(used["other_style"], NEGATIVE_TRANSFORMS, rng)
            rows.append({"image_a": image_a, "image_b": writer.save(transformed(photo(shot), kind, first.style), f"neg_style_{shot.sku_colour}"),
                         "same_product": 0, "kind": f"other_style:{kind}", "a_sku_colour": product,
                         "b_sku_colour": shot.sku_colour, "source_in_a": 0})
        # Our own photo with the garment recoloured away from every real colourway of the style.
        src = own[int(rng.integers(len(own)))]
        recoloured, hue = recolour_away(photo(src), sorted(style_colours[first.style]), rng)
        kind = _choose(used["recoloured"], ("reused", "reused_crop", "banner", "rephoto"), rng)
        img_b = writer.save(transformed(recoloured, kind, first.style), f"neg_recolour_{product}")
        # Only a recolour that really changed our garment is a negative: the garment mask can
        # catch the trousers instead of the shirt, and a hue turn barely moves a greyish brown.
        # (The photo is still drawn and saved, so the rest of the set stays the same.)
        if recoloured_share(photo(src), recoloured, first.category, first.colour) >= MIN_RECOLOURED_SHARE:
            rows.append({"image_a": image_a, "image_b": img_b,
                         "same_product": 0, "kind": f"recoloured:{kind}", "a_sku_colour": product,
                         "b_sku_colour": f"{product}~hue{hue:.0f}", "source_in_a": 1})
        else:
            skipped_recolours += 1
        if log:
            print(f"\r{len(rows)} pairs", end="", flush=True)

    pairs_csv = out / "pairs.csv"
    with pairs_csv.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["image_a", "image_b", "same_product", "kind", "a_sku_colour", "b_sku_colour", "source_in_a"])
        w.writeheader()
        w.writerows(rows)

    # Retrieval gallery: originals of the queried products, then distractors.
    gallery: list[dict[str, object]] = [
        {"image": rel(s), "product": s.sku_colour, "kind": "original"} for s in shots if s.style not in held_out
    ]
    n_originals = len(gallery)
    distractors = _distractors(shots, held_out, style_colours, photo, writer, rng, n_distractors, log)
    gallery.extend(distractors)
    gallery_csv = out / "gallery.csv"
    with gallery_csv.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["image", "product", "kind"])
        w.writeheader()
        w.writerows(gallery)
    queries_csv = out / "queries.csv"
    with queries_csv.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["query", "expected", "kind", "sku_colour"])
        w.writeheader()
        w.writerows(queries)
    if log:
        print()
    return BuildResult(out, pairs_csv, queries_csv, gallery_csv, dict(Counter(str(r["kind"]).split(":")[0] for r in rows)),
                       len(queries), n_originals, len(distractors), time.perf_counter() - started,
                       skipped_recolours)


def _distractors(
    shots: Sequence[Shot],
    held_out: set[str],
    style_colours: dict[str, set[str]],
    photo,  # noqa: ANN001 - Callable[[Shot], Image.Image]
    writer: _Writer,
    rng: np.random.Generator,
    n: int,
    log: bool,
) -> list[dict[str, object]]:
    """``n`` distinct images that are none of the queried products.

    About a third are queried products' photos recoloured away from every real colourway (a
    product that does not exist; only recolours that visibly changed the garment), a sixth are
    held-out styles transformed, the rest drawn garments.
    """
    out: list[dict[str, object]] = []
    queried = [s for s in shots if s.style not in held_out]
    held = [s for s in shots if s.style in held_out]
    quotas = {"recolour": n // 3 if queried else 0, "held_out": n // 6 if held else 0}
    quotas["drawn"] = n - quotas["recolour"] - quotas["held_out"]
    light = ("reused", "reused_crop", "low_jpeg", "rotated", "rephoto", "banner", "background")
    attempts = 0
    while len(out) < n and attempts < n * 5:
        attempts += 1
        source = "recolour" if sum(1 for d in out if d["kind"] == "distractor:recolour") < quotas["recolour"] else (
            "held_out" if sum(1 for d in out if d["kind"] == "distractor:held_out") < quotas["held_out"] else "drawn")
        if source == "recolour":
            s = queried[int(rng.integers(len(queried)))]
            recoloured, hue = recolour_away(photo(s), sorted(style_colours[s.style]), rng)
            img = T.competitor_copy(recoloured, str(rng.choice(light)), rng)
            product = f"{s.sku_colour}~hue{hue:.0f}"
            if recoloured_share(photo(s), recoloured, s.category, s.colour) < MIN_RECOLOURED_SHARE:
                # The recolour missed the garment: a copy of the product's own photo, which the
                # search is right to find. Not a distractor.
                continue
        elif source == "held_out":
            s = held[int(rng.integers(len(held)))]
            img = T.competitor_copy(photo(s), str(rng.choice(light)), rng)
            product = s.sku_colour
        else:
            spec = _random_spec(rng, int(rng.integers(1_000_000)))
            view = one_of(str(rng.choice(["front", "front", "back", "ghost"])), VIEWS)
            img = T.competitor_copy(render(spec, view, size=512), str(rng.choice(light)), rng)
            product = f"drawn:{spec.garment}:{spec.colour}:{spec.seed}"
        path = writer.save(img, f"dis_{source}", unique=True)
        if path is None:
            continue
        out.append({"image": path, "product": product, "kind": f"distractor:{source}"})
        if log and len(out) % 100 == 0:
            print(f"\r{len(out)}/{n} distractors", end="", flush=True)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build the competitor-style evaluation set from the Luma photos.")
    parser.add_argument("--luma", type=Path, required=True, help="folder with images_meta.csv and images/")
    parser.add_argument("--out", type=Path, required=True, help="output folder, e.g. var/eval/competitor")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--distractors", type=int, default=2000)
    parser.add_argument("--positives", type=int, default=2, help="positives per product")
    args = parser.parse_args(argv)
    result = build(args.luma, args.out, seed=args.seed, n_distractors=args.distractors,
                   positives_per_product=args.positives, log=True)
    print(f"pairs: {sum(result.pairs.values())} {dict(sorted(result.pairs.items()))}"
          f" ({result.skipped_recolours} recolours left out: the garment did not visibly change)")
    print(f"retrieval: {result.n_queries} queries, gallery {result.n_gallery_originals} originals + {result.n_distractors} distractors")
    print(f"{result.seconds:.0f} s -> {result.out}")


if __name__ == "__main__":
    main()
