"""An offline demo: our catalogue of drawn SKUs and competitor listings with the truth about each.

``generate(out_dir)`` writes catalog.csv and listings.csv in the import formats, truth.csv (for
each listing: is it really our product, and what kind of case it is) and images/*.jpg. True
matches re-use our photos the way competitors do (crops, banners, collages, street
backgrounds, re-photographs); near-misses are what a careless matcher would undercut by
mistake: another colour or quilting, the kids' or vest version, duck down for goose down,
a sibling model's product number, parallel imports and B-grade stock.

``same_product`` in truth.csv means: an offer of our SKU as we sell it (new, domestic, this
colour, this fill) — the offers the shop should price against. A parallel import or a refurb
of the very same style is 0, with kind saying why.

Competitor listings are seen recently, relative to ``now`` (the moment the demo is generated, unless
given): most 1–36 hours before it, so pricing counts them (the default stale cut-off is 48 hours); about
one in fifteen 3–4 days before it, deliberately stale; one in ten with no seen_at (the import's time).
The same seed and ``now`` give the same files.

Run: ``python -m matcher.demo.generate OUT_DIR [--seed 7] [--skus 30] [--listings 10]``.
"""
from __future__ import annotations

import argparse
import csv
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Literal, TypedDict, TypeVar

import cv2
import numpy as np
from PIL import Image

from matcher.demo import transforms as T
from matcher.demo.garments import (
    COLOURS,
    PRINT_KINDS,
    Garment,
    GarmentSpec,
    Pattern,
    View,
    garment_mask,
    render,
)

MALLS: tuple[tuple[str, str], ...] = (
    ("쿠팡", "coupang"),
    ("11번가", "11st"),
    ("G마켓", "gmarket"),
    ("옥션", "auction"),
    ("SSG", "ssg"),
    ("무신사", "musinsa"),
    ("네이버스마트스토어", "smartstore"),
)
SELLERS: tuple[str, ...] = (
    "스타일온", "패딩나라", "정품하우스", "브랜드박스", "데일리핏", "아웃도어마켓", "옷장정리", "트렌드샵",
    "굿바이브", "멀티샵K", "모던클로젯", "하루배송", "빅사이즈몰", "에이스스포츠", "리얼정품관", "시즌오프",
)
SHIPPING_FEES = (0, 0, 0, 2500, 3000)

TRUE_KINDS: tuple[str, ...] = (
    "reused", "reused_crop", "low_jpeg", "banner", "crop_banner", "collage", "background", "rotated", "rephoto",
    "detail_only", "back_only",
)
NEAR_KINDS: tuple[str, ...] = (
    "other_colour", "recoloured", "other_pattern", "kids", "vest", "jacket", "other_garment", "duck_down", "wrong_number",
    "parallel_import", "refurb", "banner_refurb", "banner_overseas", "banner_kids", "unrelated",
)
COLOUR_CODES = {
    "black": "BLK", "navy": "NVY", "charcoal": "CHC", "khaki": "KHK", "ivory": "IVR", "beige": "BEG",
    "light_grey": "GRY", "burgundy": "BUR", "red": "RED", "sky_blue": "SBL", "brown": "BRN", "green": "GRN",
    "mustard": "MUS", "pink": "PNK", "purple": "PUR",
}
AUDIENCE_WORDS = {
    "men": ("남성", "남자", "맨즈", "MEN"),
    "women": ("여성", "여자", "우먼스", "WOMEN"),
    "unisex": ("공용", "남녀공용", "유니섹스", ""),
    "kids": ("키즈", "아동", "주니어", "KIDS"),
}
MATERIAL_WORDS = {
    "goose_down": ("구스다운", "구스 다운", "거위털"),
    "duck_down": ("덕다운", "덕 다운", "오리털"),
    "synthetic": ("웰론", "웰론 패딩", ""),
    "fleece": ("플리스", "보아 플리스", "뽀글이"),
    "cotton": ("코튼", "면", ""),
}


@dataclass(frozen=True)
class Brand:
    korean: str
    english: str
    code: str  # first letters of its product numbers


@dataclass(frozen=True)
class Style:
    key: str
    brand: Brand
    words: tuple[str, ...]  # how titles name it: first is the catalogue's
    spec: GarmentSpec
    material: str
    audience: str
    garment: str  # attribute value: jacket, vest, top
    category: str
    price: int
    colours: tuple[str, ...]
    style_number: str  # the product number without its colour letter
    vest_words: tuple[str, ...] = ("베스트", "패딩 조끼")
    alt_garment: tuple[str, GarmentSpec | None, tuple[str, ...]] | None = None  # kind, spec, words


NORTHRIDGE = Brand("노스릿지", "NORTHRIDGE", "NJ")
COASTLINE = Brand("코스트라인", "COASTLINE", "CL")
HIGHLAND = Brand("하이랜드피크", "HIGHLAND PEAK", "HP")
MOVEON = Brand("무브온", "MOVE ON", "MT")
DEARLY = Brand("디얼리", "DEARLY", "DS")
BRANDS = (NORTHRIDGE, COASTLINE, HIGHLAND, MOVEON, DEARLY)

# In the order the draws index them: reordering changes the demo.
RANDOM_GARMENTS: tuple[Garment, ...] = ("tshirt", "sweatshirt", "hoodie", "jacket", "vest", "fleece")
QUILTS: tuple[Pattern, ...] = ("horizontal", "diamond", "chevron")
FLEECE_POCKETS: tuple[Literal["patch", "none"], ...] = ("patch", "none")


class _ListingRow(TypedDict):
    """A row of listings.csv."""
    sku: str
    mall: str
    seller: str
    title: str
    price: int
    shipping_fee: int
    url: str
    product_number: str
    images: str
    seen_at: str


class _TruthRow(TypedDict):
    """A row of truth.csv."""
    url: str
    sku: str
    same_product: int  # 1: an offer of our SKU as we sell it
    kind: str
    note: str


class _TeeDetails(TypedDict):
    """What the tees and sweatshirts share: GarmentSpec keywords."""
    collar: Literal["crew"]
    zipper: Literal["none"]
    pockets: Literal["none"]
    texture: Literal["cotton"]


def _styles(seed: int) -> list[Style]:
    """The catalogue's styles; ``seed`` moves the fabric grain and the product-number digits."""
    rng = np.random.default_rng(seed * 17 + 1)

    def num(brand: Brand, kind: str) -> str:
        return f"{brand.code}{int(rng.integers(1, 4))}{kind}{int(rng.integers(10, 99))}"

    def style_seed(i: int) -> int:
        """The seed of the catalogue's i-th style."""
        return seed * 100 + i

    tee: _TeeDetails = {"collar": "crew", "zipper": "none", "pockets": "none", "texture": "cotton"}
    styles = [
        Style("short_goose", NORTHRIDGE, ("구스다운 숏패딩 자켓", "숏 패딩 점퍼", "후드 숏패딩", "다운 자켓"),
              GarmentSpec(seed=style_seed(1), garment="jacket", colour="black", pattern="horizontal", hood=True, logo="NORTHRIDGE"),
              "goose_down", "men", "jacket", "아우터 > 패딩", 359000, ("black", "navy", "khaki"), num(NORTHRIDGE, "DP")),
        Style("long_goose", NORTHRIDGE, ("구스다운 롱패딩", "롱 패딩 코트", "후드 롱패딩", "다운 롱코트"),
              GarmentSpec(seed=style_seed(2), garment="jacket", colour="black", pattern="horizontal", period=0.062, hood=True, length=0.68, logo="NORTHRIDGE"),
              "goose_down", "women", "jacket", "아우터 > 롱패딩", 459000, ("black", "ivory"), num(NORTHRIDGE, "DL")),
        Style("down_vest", NORTHRIDGE, ("구스다운 경량 베스트", "경량 패딩 조끼", "다운 베스트", "패딩베스트"),
              GarmentSpec(seed=style_seed(3), garment="vest", colour="black", pattern="horizontal", period=0.055, logo="NORTHRIDGE"),
              "goose_down", "unisex", "vest", "아우터 > 베스트", 159000, ("black", "navy", "beige"), num(NORTHRIDGE, "DV"),
              alt_garment=("jacket", None, ("경량 패딩 자켓", "경량 다운 점퍼"))),
        Style("diamond", COASTLINE, ("다이아몬드 퀼팅 자켓", "퀼팅 점퍼", "깔깔이 퀼팅 자켓", "경량 퀼팅 재킷"),
              GarmentSpec(seed=style_seed(4), garment="jacket", colour="black", pattern="diamond", period=0.07, logo="COASTLINE", length=0.48),
              "synthetic", "women", "jacket", "아우터 > 퀼팅자켓", 189000, ("black", "beige", "khaki"), num(COASTLINE, "QJ")),
        Style("chevron", COASTLINE, ("셰브론 퀼팅 패딩 점퍼", "쉐브론 패딩 자켓", "퀼팅 덕다운 점퍼", "스탠드넥 패딩"),
              GarmentSpec(seed=style_seed(5), garment="jacket", colour="black", pattern="chevron", period=0.07),
              "duck_down", "men", "jacket", "아우터 > 패딩", 259000, ("charcoal", "red"), num(COASTLINE, "CP")),
        Style("boa_fleece", HIGHLAND, ("보아 플리스 집업 자켓", "뽀글이 플리스 자켓", "후리스 집업", "플리스 점퍼"),
              GarmentSpec(seed=style_seed(6), garment="fleece", colour="ivory", texture="fleece", pockets="patch", trim="brown", length=0.52),
              "fleece", "unisex", "jacket", "아우터 > 플리스", 129000, ("ivory", "brown", "black"), num(HIGHLAND, "FJ"),
              alt_garment=("vest", None, ("플리스 베스트", "뽀글이 조끼"))),
        Style("halfzip_fleece", HIGHLAND, ("하프집업 플리스 풀오버", "플리스 하프집업", "후리스 아노락", "반집업 플리스"),
              GarmentSpec(seed=style_seed(7), garment="fleece", colour="navy", texture="fleece", zipper="half", pockets="none", logo="HIGHLAND", length=0.5),
              "fleece", "men", "top", "상의 > 플리스", 119000, ("navy", "light_grey"), num(HIGHLAND, "FP")),
        Style("badge_tee", MOVEON, ("그래픽 반팔 티셔츠", "로고 반팔티", "프린팅 티셔츠", "오버핏 반팔"),
              GarmentSpec(seed=style_seed(8), garment="tshirt", colour="black", print_kind="badge", print_seed=1, print_text="MOVE ON", length=0.46, **tee),
              "cotton", "unisex", "top", "상의 > 반팔티셔츠", 89000, ("black", "light_grey", "sky_blue"), num(MOVEON, "TS"),
              alt_garment=("other_garment", None, ("그래픽 맨투맨", "프린팅 스웨트셔츠"))),
        Style("sunset_tee", MOVEON, ("선셋 프린트 반팔 티셔츠", "선셋 그래픽 반팔티", "레트로 프린팅 티", "오버핏 그래픽 티"),
              GarmentSpec(seed=style_seed(9), garment="tshirt", colour="black", print_kind="sunset", print_seed=2, print_text="SUNDAY CLUB", length=0.46, **tee),
              "cotton", "women", "top", "상의 > 반팔티셔츠", 89000, ("black", "ivory"), num(MOVEON, "TG"),
              alt_garment=("other_garment", None, ("선셋 맨투맨", "그래픽 스웨트셔츠"))),
        Style("varsity_sweat", DEARLY, ("로고 맨투맨 스웨트셔츠", "바시티 맨투맨", "레터링 스웨트셔츠", "기모 맨투맨"),
              GarmentSpec(seed=style_seed(10), garment="sweatshirt", colour="charcoal", print_kind="varsity", print_seed=3, print_text="DEARLY", length=0.5, **tee),
              "cotton", "men", "top", "상의 > 맨투맨", 129000, ("charcoal", "navy", "green"), num(DEARLY, "SW"),
              alt_garment=("other_garment", None, ("로고 후드티", "레터링 후디"))),
        Style("script_hoodie", DEARLY, ("그래픽 후드 스웨트셔츠", "스크립트 로고 후드티", "프린팅 후디", "오버핏 후드티"),
              GarmentSpec(seed=style_seed(11), garment="hoodie", colour="green", hood=True, collar="none", zipper="none", pockets="kangaroo", texture="cotton",
                 print_kind="script", print_seed=4, print_text="dearly", length=0.52),
              "cotton", "women", "top", "상의 > 후드티", 149000, ("green", "black"), num(DEARLY, "HD"),
              alt_garment=("other_garment", None, ("그래픽 맨투맨", "프린팅 맨투맨"))),
        Style("light_duck", NORTHRIDGE, ("덕다운 경량 패딩 자켓", "경량 다운 점퍼", "라이트 다운 자켓", "경량패딩"),
              GarmentSpec(seed=style_seed(12), garment="jacket", colour="black", pattern="horizontal", period=0.05, logo="NORTHRIDGE", length=0.5),
              "duck_down", "men", "jacket", "아우터 > 경량패딩", 199000, ("black", "navy"), num(NORTHRIDGE, "LD")),
    ]
    return styles


@dataclass
class Sku:
    sku: str
    product_number: str
    style: Style
    colour: str
    title: str
    price: int
    cost: int
    min_price: int
    active: bool
    views: list[View]
    images: list[str] = field(default_factory=list)
    photos: dict[str, Image.Image] = field(default_factory=dict)

    @property
    def spec(self) -> GarmentSpec:
        return self.style.spec.in_colour(self.colour)


@dataclass
class GeneratedDemo:
    out_dir: Path
    catalog_csv: Path
    listings_csv: Path
    truth_csv: Path
    n_skus: int
    n_listings: int
    n_images: int
    kinds: dict[str, int]  # listings per truth kind
    same_product: int  # listings that are true matches
    seconds: float


_T = TypeVar("_T")


def _krw(value: float, rng: np.random.Generator) -> int:
    """A shop price: whole hundreds, often ending in 900."""
    p = int(round(value / 100.0)) * 100
    if p % 1000 == 0 and rng.random() < 0.5:
        p -= 100
    return max(1000, p)


def _pick(rng: np.random.Generator, seq: Sequence[_T]) -> _T:
    return seq[int(rng.integers(len(seq)))]


def _colour_word(colour: str, rng: np.random.Generator) -> str:
    korean = COLOURS[colour][0]
    english = colour.replace("_", " ").upper()
    return korean if rng.random() < 0.75 else english


def _catalogue_title(style: Style, colour: str, product_number: str) -> str:
    aud = {"men": "남성", "women": "여성", "unisex": "공용", "kids": "키즈"}[style.audience]
    return f"[{style.brand.korean}] {aud} {style.words[0]} {COLOURS[colour][0]} {product_number}"


def _listing_title(
    style: Style,
    colour: str,
    number_shown: str,
    rng: np.random.Generator,
    *,
    audience: str | None = None,
    material: str | None = None,
    words: Sequence[str] | None = None,
    prefix: str = "",
    suffix: str = "",
) -> str:
    """A competitor's title: brand in Korean and/or English, reordered words, promotional noise."""
    brand = _pick(rng, (f"[{style.brand.korean}]", style.brand.korean, style.brand.english, f"{style.brand.english} {style.brand.korean}"))
    aud = _pick(rng, AUDIENCE_WORDS[audience or style.audience])
    mat = material or style.material
    mat_word = _pick(rng, MATERIAL_WORDS[mat]) if mat in MATERIAL_WORDS else ""
    name = _pick(rng, words or style.words)
    compact = name.replace(" ", "")
    if any(w and w.replace(" ", "") in compact for w in MATERIAL_WORDS.get(mat, ())):
        mat_word = ""
    elif mat_word.endswith("다운") and "다운" in compact:
        mat_word = mat_word[:-2].strip()  # "구스 다운 자켓", not "구스다운 다운 자켓"
    if material and material != style.material:
        # The listing says another fill: drop our material words from the name.
        for w in MATERIAL_WORDS.get(style.material, ()):
            if w:
                name = name.replace(w, "").strip()
        mat_word = _pick(rng, MATERIAL_WORDS[material][:2])
        if mat_word.endswith("다운") and "다운" in name.replace(" ", ""):
            mat_word = mat_word[:-2].strip()
    col = _colour_word(colour, rng)
    season = _pick(rng, ("", "", "23FW", "24FW", "신상"))
    promo = _pick(rng, ("", "", "", "★정품★", "[무료배송]", "[당일출고]", "(정품)"))
    core = [w for w in (aud, mat_word, name) if w]
    pn = f" {number_shown}" if number_shown else ""
    layouts = (
        f"{brand} {' '.join(core)} {col}{pn}",
        f"{brand}{pn} {' '.join(core)} {col}",
        f"{brand} {season} {' '.join(core)} {col}{(' (' + number_shown + ')') if number_shown else ''}",
        f"{promo} {brand} {' '.join(core)} {col} / {number_shown or season}",
    )
    title = _pick(rng, layouts)
    title = " ".join(f"{prefix} {title} {suffix}".split())
    return title.replace(" / ", " / ").strip(" /")


def _typo(number: str, rng: np.random.Generator) -> str:
    """A product number as mistyped by a seller: two digits swapped or the colour letter changed."""
    chars = list(number)
    digits = [i for i, c in enumerate(chars) if c.isdigit()]
    if len(digits) >= 2 and rng.random() < 0.6:
        i = digits[-2]
        j = digits[-1]
        if chars[i] != chars[j]:
            chars[i], chars[j] = chars[j], chars[i]
            return "".join(chars)
    chars[-1] = "Z" if chars[-1] != "Z" else "Y"
    return "".join(chars)


def _sibling_number(style_number: str, rng: np.random.Generator) -> str:
    head, tail = style_number[:-2], int(style_number[-2:])
    return f"{head}{(tail + int(rng.integers(1, 9))) % 100:02d}"


def _save(img: Image.Image, path: Path, quality: int = 90) -> None:
    img.convert("RGB").save(path, "JPEG", quality=quality)


def _random_spec(rng: np.random.Generator, seed: int) -> GarmentSpec:
    """A garment that is nobody's SKU here: collage company and unrelated listings."""
    garment = _pick(rng, RANDOM_GARMENTS)
    colour = _pick(rng, tuple(COLOURS))
    if garment in ("tshirt", "sweatshirt", "hoodie"):
        return GarmentSpec(
            garment=garment, colour=colour, collar="none" if garment == "hoodie" else "crew", hood=garment == "hoodie",
            zipper="none", pockets="kangaroo" if garment == "hoodie" else "none", texture="cotton",
            print_kind=_pick(rng, PRINT_KINDS) if rng.random() < 0.8 else None, print_seed=int(rng.integers(1000)),
            print_text=_pick(rng, ("URBAN", "WEEKEND", "SEOUL 88", "ROOKIE", "CAMP")), length=float(rng.uniform(0.44, 0.54)), seed=seed,
        )
    if garment == "fleece":
        return GarmentSpec("fleece", colour, texture="fleece", pockets=_pick(rng, FLEECE_POCKETS), seed=seed)
    return GarmentSpec(
        garment=garment, colour=colour, pattern=_pick(rng, QUILTS),
        period=float(rng.uniform(0.05, 0.08)), hood=bool(rng.random() < 0.4), length=float(rng.uniform(0.45, 0.62)), seed=seed,
    )


def _other_colour(style: Style, colour: str, rng: np.random.Generator, chromatic: bool = False) -> str:
    """A colour of the style that is not in our catalogue, so the listing matches none of our SKUs."""
    options = [c for c in COLOURS if c not in style.colours and c != colour and (not chromatic or c not in ACHROMATIC)]
    return _pick(rng, options)


ACHROMATIC = frozenset({"black", "charcoal", "light_grey", "ivory"})


def _hue(colour: str) -> float:
    r, g, b = (c / 255.0 for c in COLOURS[colour][1])
    return float(cv2.cvtColor(np.array([[[r, g, b]]], np.float32), cv2.COLOR_RGB2HSV)[0, 0, 0])


def _hue_shift(source: str, target: str) -> float:
    """The ``recolour`` argument that turns a garment of colour ``source`` towards ``target``'s hue."""
    if source in ACHROMATIC:
        return _hue(target)  # recolour tints achromatic garments to this absolute hue
    return (_hue(target) - _hue(source)) % 360


def _other_pattern(spec: GarmentSpec, rng: np.random.Generator) -> tuple[GarmentSpec, str]:
    if spec.pattern != "none":
        pattern = _pick(rng, [p for p in QUILTS if p != spec.pattern])
        word = {"horizontal": "가로 퀼팅", "diamond": "다이아몬드 퀼팅", "chevron": "셰브론 퀼팅"}[pattern]
        return replace(spec, pattern=pattern), word
    if spec.print_kind:
        kind = _pick(rng, [k for k in PRINT_KINDS if k != spec.print_kind])
        word = {"badge": "뱃지 프린트", "varsity": "레터링 프린트", "sunset": "선셋 프린트", "geometric": "패턴 프린트", "script": "스크립트 로고"}[kind]
        return replace(spec, print_kind=kind, print_seed=spec.print_seed + 50), word
    # A plain fleece: the other model has another pocket and no patch.
    return replace(spec, pockets="none" if spec.pockets != "none" else "patch", logo=None if spec.logo else "PEAK", zipper="full"), "집업"


def _lookalike(spec: GarmentSpec) -> GarmentSpec:
    """The brand's sibling model: same family look, a few details different."""
    if spec.garment in ("jacket", "vest"):
        return replace(spec, hood=not spec.hood if spec.garment == "jacket" else False, period=spec.period * 1.25,
                       logo=None if spec.logo else "NORTHRIDGE")
    if spec.print_kind:
        return replace(spec, print_seed=spec.print_seed + 7, print_text=(spec.print_text or "LOGO") + " 2")
    return replace(spec, pockets="none" if spec.pockets != "none" else "patch", length=spec.length * 1.1)


def _choose(counter: Counter[str], options: Sequence[str], rng: np.random.Generator) -> str:
    """The least used option so far (ties broken at random), so a small demo still has every kind."""
    low = min(counter[o] for o in options)
    best = [o for o in options if counter[o] == low]
    pick = best[int(rng.integers(len(best)))]
    counter[pick] += 1
    return pick


def _applicable_near(s: Sku) -> list[str]:
    st = s.style
    kinds = ["other_colour", "recoloured", "other_pattern", "kids", "wrong_number", "parallel_import", "refurb",
             "banner_refurb", "banner_overseas", "banner_kids", "unrelated"]
    if st.garment == "jacket" and st.spec.garment == "jacket":
        kinds.append("vest")
    if st.alt_garment:
        kinds.append(st.alt_garment[0])
    if st.material == "goose_down":
        kinds.append("duck_down")
    return kinds


KST = timezone(timedelta(hours=9))


def _seen_at(rng: np.random.Generator, now: datetime) -> str:
    """When a competitor listing was last seen, before ``now``: blank (one in ten: the import's time), a few
    deliberately stale, the rest within the last 1–36 hours; in Korean time, to the minute."""
    if rng.random() < 0.1:
        return ""
    # Three draws, as many as every listing has always taken, so the draws after them stay put.
    day, hour, minute = int(rng.integers(1, 29)), int(rng.integers(0, 24)), int(rng.integers(0, 60))
    if day >= 27:  # 2 in 28: seen 3–4 days ago, beyond the stale cut-off
        ago = timedelta(hours=72 + hour, minutes=minute)
    else:
        ago = timedelta(minutes=60 + ((day - 1) * 24 * 60 + hour * 60 + minute) % (35 * 60))
    return (now - ago).astimezone(KST).replace(second=0, microsecond=0).isoformat()


def generate(out_dir: Path, seed: int = 7, n_skus: int = 30, listings_per_sku: int = 10,
             now: datetime | None = None) -> GeneratedDemo:
    """Write catalog.csv, listings.csv, truth.csv and images/ under ``out_dir``; the same seed and ``now``
    (default: this moment) give the same files."""
    started = time.perf_counter()
    # To the minute, so listings seen "an hour ago" are never in the future of an import a second later.
    now = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    out_dir = Path(out_dir)
    img_dir = out_dir / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    styles = _styles(seed)

    # SKUs: styles interleaved so a small demo still spans garments and fills.
    by_style = [[(st, c) for c in st.colours] for st in styles]
    order: list[tuple[Style, str]] = []
    for i in range(max(len(x) for x in by_style)):
        order.extend(x[i] for x in by_style if i < len(x))
    order = order[:n_skus]
    letters = "ABCDEFGH"
    inactive = set(rng.choice(len(order), size=min(2, max(0, len(order) - 8)), replace=False).tolist()) if len(order) > 8 else set()
    skus: list[Sku] = []
    for i, (st, colour) in enumerate(order):
        pn = st.style_number + letters[st.colours.index(colour)]
        price = st.price
        cost = int(round(price * rng.uniform(0.42, 0.52), -3))
        # The floor: what the shop will not go under, well above cost.
        min_price = int(round(max(cost * 1.3, price * rng.uniform(0.76, 0.84)), -2))
        views: list[View] = ["front"]
        if rng.random() < 0.85:
            views.append("back")
        if st.spec.logo or st.spec.print_kind or rng.random() < 0.4:
            views.append("detail")
        if rng.random() < 0.3 or len(views) == 1:
            views.append("ghost")
        skus.append(Sku(f"DEMO-{i + 1:03d}", pn, st, colour, _catalogue_title(st, colour, pn), price, cost, min_price,
                        i not in inactive, views))

    n_images = 0
    for s in skus:
        for v in s.views:
            photo = render(s.spec, v)
            s.photos[v] = photo
            name = f"{s.sku.lower()}_{v}.jpg"
            _save(photo, img_dir / name, 92)
            s.images.append(f"images/{name}")
            n_images += 1

    # Photos of garments that are nobody's SKU: collage company and unrelated listings.
    strangers = [render(_random_spec(rng, 9000 + seed * 50 + i), "front") for i in range(12)]

    true_count: Counter[str] = Counter()
    near_count: Counter[str] = Counter()
    listings: list[_ListingRow] = []
    truth: list[_TruthRow] = []
    listing_no = 0
    for s in skus:
        n_true = int(round(listings_per_sku * rng.uniform(0.5, 0.6)))
        plan = [("true", None)] * n_true + [("near", None)] * (listings_per_sku - n_true)
        for side, _ in plan:
            listing_no += 1
            lrng = np.random.default_rng([seed, listing_no])
            if side == "true":
                options = [k for k in TRUE_KINDS if not (k == "detail_only" and "detail" not in s.photos)
                           and not (k == "back_only" and "back" not in s.photos)]
                kind = _choose(true_count, options, lrng)
                images, title, price, number, note = _true_listing(s, kind, lrng, strangers)
                same = 1
            else:
                kind = _choose(near_count, _applicable_near(s), lrng)
                images, title, price, number, note = _near_listing(s, kind, lrng, strangers, skus)
                same = 0
            mall, slug = MALLS[int(lrng.integers(len(MALLS)))]
            url = f"https://example-mall.test/{slug}/products/{100000 + listing_no * 37 + int(lrng.integers(30))}"
            paths = []
            for j, im in enumerate(images):
                name = f"l{listing_no:04d}_{j}.jpg"
                _save(im, img_dir / name, 90)
                paths.append(f"images/{name}")
                n_images += 1
            seen_at = _seen_at(lrng, now)
            listings.append({
                "sku": s.sku, "mall": mall, "seller": _pick(lrng, SELLERS), "title": title, "price": price,
                "shipping_fee": int(SHIPPING_FEES[int(lrng.integers(len(SHIPPING_FEES)))]), "url": url,
                "product_number": number, "images": "|".join(paths), "seen_at": seen_at,
            })
            truth.append({"url": url, "sku": s.sku, "same_product": same, "kind": kind, "note": note})

    catalog_csv = out_dir / "catalog.csv"
    with catalog_csv.open("w", newline="", encoding="utf-8") as f:
        catalog_writer = csv.writer(f)
        catalog_writer.writerow(["sku", "product_number", "brand", "title", "category", "colour", "price", "cost", "min_price",
                    "attributes", "images", "active"])
        for s in skus:
            attrs = {"material": s.style.material, "audience": s.style.audience, "garment": s.style.garment}
            if s.style.spec.pattern != "none":
                attrs["pattern"] = f"{s.style.spec.pattern}_quilt"
            elif s.style.spec.print_kind:
                attrs["pattern"] = "print"
            catalog_writer.writerow([s.sku, s.product_number, s.style.brand.korean, s.title, s.style.category, COLOURS[s.colour][0],
                        s.price, s.cost, s.min_price, json.dumps(attrs, ensure_ascii=False), "|".join(s.images), int(s.active)])
    listings_csv = out_dir / "listings.csv"
    with listings_csv.open("w", newline="", encoding="utf-8") as f:
        listing_writer: csv.DictWriter[str] = csv.DictWriter(
            f, fieldnames=["sku", "mall", "seller", "title", "price", "shipping_fee", "url", "product_number", "images",
                           "seen_at"])
        listing_writer.writeheader()
        listing_writer.writerows(listings)
    truth_csv = out_dir / "truth.csv"
    with truth_csv.open("w", newline="", encoding="utf-8") as f:
        truth_writer: csv.DictWriter[str] = csv.DictWriter(f, fieldnames=["url", "sku", "same_product", "kind", "note"])
        truth_writer.writeheader()
        truth_writer.writerows(truth)
    kinds = Counter(t["kind"] for t in truth)
    return GeneratedDemo(out_dir, catalog_csv, listings_csv, truth_csv, len(skus), len(listings), n_images,
                         dict(sorted(kinds.items())), sum(t["same_product"] for t in truth), time.perf_counter() - started)


def _number_as_listed(s: Sku, rng: np.random.Generator) -> tuple[str, str]:
    """(product number as the seller typed it, how it differs): exact, with a colour suffix, absent, or mistyped."""
    r = rng.random()
    if r < 0.45:
        return s.product_number, "number exact"
    if r < 0.65:
        sep = _pick(rng, ("-", "_", " "))
        return f"{s.product_number}{sep}{COLOUR_CODES[s.colour]}", "number with colour suffix"
    if r < 0.9:
        return "", "number absent"
    return _typo(s.product_number, rng), "number mistyped"


def _true_price(s: Sku, rng: np.random.Generator) -> int:
    r = rng.random()
    if r < 0.12:
        factor = rng.uniform(0.7, 0.8)  # below our floor: pricing must not follow it blindly
    elif r < 0.6:
        factor = rng.uniform(0.86, 0.99)
    else:
        factor = rng.uniform(1.0, 1.15)
    return _krw(s.price * factor, rng)


def _true_listing(s: Sku, kind: str, rng: np.random.Generator, strangers: Sequence[Image.Image]
                  ) -> tuple[list[Image.Image], str, int, str, str]:
    number, note = _number_as_listed(s, rng)
    front = s.photos["front"]
    if kind == "detail_only":
        images = [T.competitor_copy(s.photos["detail"], "reused", rng)]
    elif kind == "back_only":
        images = [T.competitor_copy(s.photos["back"], _pick(rng, ("reused", "banner", "reused_crop")), rng)]
    else:
        src = front if kind in ("collage", "background", "banner") or rng.random() < 0.8 else s.photos.get("ghost", front)
        images = [T.competitor_copy(src, kind, rng, others=strangers)]
        # Many listings add our other shots after their own thumbnail.
        extra = [v for v in s.views if v != "front"]
        if extra and rng.random() < 0.5:
            images.append(T.competitor_copy(s.photos[_pick(rng, extra)], "reused", rng))
    title = _listing_title(s.style, s.colour, number if rng.random() < 0.7 else "", rng)
    return images, title, _true_price(s, rng), number, note


def _present(img: Image.Image, rng: np.random.Generator, strangers: Sequence[Image.Image]) -> Image.Image:
    """A near-miss photo dressed the way any listing is, so the presentation does not give the answer away."""
    kind = _pick(rng, ("reused", "reused_crop", "banner", "background", "rephoto", "collage", "reused"))
    return T.competitor_copy(img, kind, rng, others=strangers)


def _near_listing(s: Sku, kind: str, rng: np.random.Generator, strangers: Sequence[Image.Image], skus: Sequence[Sku]
                  ) -> tuple[list[Image.Image], str, int, str, str]:
    st, spec, front = s.style, s.spec, s.photos["front"]
    number = s.product_number if rng.random() < 0.4 else ""
    colour = s.colour
    words: Sequence[str] | None = None
    audience = material = None
    prefix = suffix = ""
    price_factor = rng.uniform(0.8, 1.02)
    note = ""
    if kind == "other_colour":
        colour = _other_colour(st, s.colour, rng)
        img = render(spec.in_colour(colour), "front")
        images = [_present(img, rng, strangers)]
        number = st.style_number + "X" if rng.random() < 0.5 else ""
        note = f"redrawn in {colour}"
    elif kind == "recoloured":
        colour = _other_colour(st, s.colour, rng, chromatic=True)
        shift = _hue_shift(s.colour, colour)
        img = T.recolour(front, shift, mask=garment_mask(spec, "front"))
        images = [T.competitor_copy(img, _pick(rng, ("reused", "banner", "reused_crop")), rng)]
        number = ""
        note = f"our photo, garment hue shifted {shift:.0f} deg towards {colour}"
    elif kind == "other_pattern":
        other, word = _other_pattern(spec, rng)
        images = [_present(render(other, "front"), rng, strangers)]
        words = [f"{word} {st.words[0].split()[-1]}"]
        number = _sibling_number(st.style_number, rng) + "A" if rng.random() < 0.5 else ""
        note = f"another quilting/print: {word}"
    elif kind == "kids":
        images = [_present(render(replace(spec, kids=True), "front"), rng, strangers)]
        audience = "kids"
        suffix = _pick(rng, ("130~160", "(아동용)", "", "주니어 사이즈"))
        number = ("K" + s.product_number) if rng.random() < 0.5 else ""
        price_factor = rng.uniform(0.55, 0.72)
        note = "kids' version, kids in the title"
    elif kind in ("vest", "jacket", "other_garment"):
        if st.alt_garment and st.alt_garment[0] in ("vest", "other_garment", "jacket"):
            alt_kind, alt_spec, alt_words = st.alt_garment
        else:
            alt_kind, alt_spec, alt_words = "vest", None, st.vest_words
        if alt_spec is None:
            next_top: dict[Garment, Garment] = {"tshirt": "sweatshirt", "sweatshirt": "hoodie", "hoodie": "sweatshirt"}
            targets: dict[str, Garment] = {"vest": "vest", "jacket": "jacket",
                                           "other_garment": next_top.get(spec.garment, "sweatshirt")}
            target = targets[alt_kind]
            alt_spec = replace(spec, garment=target, hood=target == "hoodie" or (spec.hood and target != "sweatshirt"),
                               collar="none" if target == "hoodie" else spec.collar,
                               pockets="kangaroo" if target == "hoodie" else ("none" if target == "sweatshirt" else spec.pockets))
        images = [_present(render(alt_spec, "front"), rng, strangers)]
        words = alt_words if alt_kind != "vest" or st.alt_garment else st.vest_words
        price_factor = rng.uniform(0.55, 0.8) if alt_kind == "vest" else rng.uniform(0.9, 1.3)
        number = _sibling_number(st.style_number, rng) + s.product_number[-1] if rng.random() < 0.4 else ""
        note = f"{alt_spec.garment} of the same style"
    elif kind == "duck_down":
        images = [T.competitor_copy(front, _pick(rng, ("rephoto", "reused", "banner")), rng)]
        material = "duck_down"
        price_factor = rng.uniform(0.7, 0.88)
        number = ""
        note = "our look, duck down in the title"
    elif kind == "wrong_number":
        sibling = _lookalike(spec)
        images = [_present(render(sibling, "front"), rng, strangers)]
        number = _sibling_number(st.style_number, rng) + s.product_number[-1]
        note = f"sibling model {number}"
    elif kind == "parallel_import":
        images = [T.competitor_copy(front, _pick(rng, ("reused", "reused_crop", "rephoto")), rng)]
        prefix = _pick(rng, ("[해외배송]", "[병행수입]", "해외직구"))
        price_factor = rng.uniform(0.72, 0.9)
        note = "parallel import / overseas shipping in the title"
    elif kind == "refurb":
        images = [T.competitor_copy(front, _pick(rng, ("reused", "rephoto", "rotated")), rng)]
        prefix = _pick(rng, ("[리퍼]", "[B급]", "(반품상품)"))
        suffix = _pick(rng, ("", "전시상품", "미세 스크래치"))
        price_factor = rng.uniform(0.5, 0.72)
        note = "refurb / B-grade in the title"
    elif kind in ("banner_refurb", "banner_overseas", "banner_kids"):
        key = {"banner_refurb": "refurb", "banner_overseas": "parallel_import", "banner_kids": "kids"}[kind]
        text = _pick(rng, T.NEAR_MISS_BANNER_TEXTS[key])
        images = [T.competitor_copy(front, _pick(rng, ("banner", "crop_banner")), rng, text=text)]
        price_factor = rng.uniform(0.55, 0.85)
        note = f"title neutral, image says: {text}"
    else:  # unrelated: something else entirely that the mall's search returned
        other = _random_spec(rng, int(rng.integers(20000, 30000)))
        while other.garment == spec.garment:
            other = _random_spec(rng, int(rng.integers(20000, 30000)))
        images = [_present(render(other, "front"), rng, strangers)]
        colour = other.colour
        brand = BRANDS[int(rng.integers(len(BRANDS)))]
        gw = {"tshirt": "반팔 티셔츠", "sweatshirt": "맨투맨", "hoodie": "후드티", "jacket": "패딩 점퍼", "vest": "패딩 베스트",
              "fleece": "플리스 자켓"}[other.garment]
        title = f"{brand.korean} {_pick(rng, ('남성', '여성', '공용'))} {gw} {COLOURS[colour][0]}"
        return images, title, _krw(s.price * rng.uniform(0.3, 1.2), rng), "", f"unrelated {other.garment}"
    title = _listing_title(st, colour, number, rng, audience=audience, material=material, words=words, prefix=prefix, suffix=suffix)
    return images, title, _krw(s.price * price_factor, rng), number, note


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skus", type=int, default=30)
    parser.add_argument("--listings", type=int, default=10)
    args = parser.parse_args(argv)
    demo = generate(args.out_dir, seed=args.seed, n_skus=args.skus, listings_per_sku=args.listings)
    print(f"{demo.n_skus} SKUs, {demo.n_listings} listings ({demo.same_product} true matches), {demo.n_images} images "
          f"in {demo.seconds:.1f} s -> {demo.out_dir}")
    for kind, n in demo.kinds.items():
        print(f"  {kind:16s} {n}")


if __name__ == "__main__":
    main()
