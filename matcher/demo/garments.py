"""Procedurally drawn product photos of outerwear and tops, for demo data that can be shipped.

A ``GarmentSpec`` describes a style (garment, quilting, hood, zipper, pockets, logo patch,
print) in one colour; ``render(spec, view)`` draws it as a studio photo on white: a flat-lay
front or back, a detail close-up, or a ghost-mannequin front. Shading (puffed baffles,
edge roll-off, folds), fabric texture and prints give the vision pipeline what it looks at in
real photos: a silhouette, Lab colour, and enough texture and print detail for keypoints.
The fabric noise and folds come from ``spec.seed``, so the same style drawn in another colour is
the same drawing in another colour.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, TypeVar, cast

import cv2
import numpy as np
import numpy.typing as npt
from cv2.typing import MatLike
from PIL import Image, ImageDraw, ImageFilter

from matcher.demo.transforms import BoolArray, F32Array, U8Array, korean_font

RGB = tuple[int, int, int]
Garment = Literal["jacket", "vest", "fleece", "tshirt", "sweatshirt", "hoodie"]
Pattern = Literal["horizontal", "diamond", "chevron", "none"]
View = Literal["front", "back", "detail", "ghost"]
Texture = Literal["nylon", "fleece", "cotton"]
VIEWS: tuple[View, ...] = ("front", "back", "detail", "ghost")

L = TypeVar("L", bound=str)


def one_of(value: str, options: Sequence[L]) -> L:
    """``value`` as the member of ``options`` it equals: narrows a drawn str to a Literal type, checked."""
    for option in options:
        if option == value:
            return option
    raise ValueError(f"{value!r} is not one of {list(options)}")


# Colour names as Korean listings write them, with a plausible dyed-fabric RGB.
COLOURS: dict[str, tuple[str, RGB]] = {
    "black": ("블랙", (28, 28, 31)),
    "navy": ("네이비", (32, 42, 78)),
    "charcoal": ("차콜", (64, 66, 70)),
    "khaki": ("카키", (98, 102, 66)),
    "ivory": ("아이보리", (232, 224, 206)),
    "beige": ("베이지", (196, 174, 142)),
    "light_grey": ("라이트그레이", (176, 178, 182)),
    "burgundy": ("버건디", (112, 30, 46)),
    "red": ("레드", (186, 36, 40)),
    "sky_blue": ("스카이블루", (124, 170, 212)),
    "brown": ("브라운", (112, 76, 52)),
    "green": ("그린", (38, 98, 68)),
    "mustard": ("머스타드", (202, 160, 48)),
    "pink": ("핑크", (226, 150, 170)),
    "purple": ("퍼플", (96, 70, 140)),
}
PRINT_KINDS = ("badge", "varsity", "sunset", "geometric", "script")


@dataclass(frozen=True)
class GarmentSpec:
    garment: Garment
    colour: str  # a key of COLOURS
    pattern: Pattern = "none"
    period: float = 0.075  # baffle spacing, as a share of the image height
    hood: bool = False
    collar: Literal["stand", "crew", "none"] = "stand"
    zipper: Literal["full", "half", "none"] = "full"
    pockets: Literal["welt", "patch", "kangaroo", "none"] = "welt"
    length: float = 0.5  # shoulder to hem, share of image height
    logo: str | None = None  # text on the chest patch
    logo_colours: tuple[RGB, RGB] = ((245, 245, 240), (30, 30, 30))
    print_kind: str | None = None  # one of PRINT_KINDS
    print_seed: int = 0
    print_text: str = ""
    texture: Texture = "nylon"
    trim: str | None = None  # colour key for cuffs, zipper, pocket; None = a darker shade of the body
    kids: bool = False
    seed: int = 0  # folds and fabric grain: shared by all colourways of one style

    @property
    def rgb(self) -> RGB:
        return COLOURS[self.colour][1]

    def in_colour(self, colour: str) -> GarmentSpec:
        return replace(self, colour=colour)


# --- geometry ------------------------------------------------------------------------------------


@dataclass
class _Part:
    name: str
    points: list[tuple[float, float]]
    frame: tuple[tuple[float, float], tuple[float, float]]  # origin, unit axis along which baffles repeat
    material: Literal["fabric", "rib", "lining", "trim"] = "fabric"
    quilted: bool = True
    puff: float | None = None  # edge roll-off radius; None = from the garment


def _same_dtype(a: MatLike) -> F32Array:
    # cv2's stubs type every result as MatLike; resize and GaussianBlur keep the float32 input's dtype.
    return cast(F32Array, a)


def _ellipse(cx: float, cy: float, rx: float, ry: float, a0: float = 0, a1: float = 360, n: int = 40) -> list[tuple[float, float]]:
    return [
        (cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
        for a in np.linspace(a0, a1, n)
    ]


@dataclass
class _Anchors:
    """Where decorations go, as shares of the image side."""
    cx: float
    y_sh: float  # shoulder line
    y_hem: float
    bw: float  # half the body width at the armpit
    nw: float  # half the neck width
    collar_top: float = 0.0
    cuffs: dict[int, tuple[float, float]] = field(default_factory=dict)  # sleeve end by side (-1, 1)


def _layout(spec: GarmentSpec, view: View) -> tuple[list[_Part], _Anchors]:
    """Parts in drawing order (back to front) and the anchor points decorations need."""
    ghost = view == "ghost"
    back = view == "back"
    cx = 0.5
    k = 0.88 if spec.kids else 1.0
    puffer = spec.pattern != "none" and spec.garment in ("jacket", "vest")
    y_sh = 0.25 if spec.hood else 0.2
    nw = 0.07
    sw = 0.205 if puffer else 0.19
    bw = (0.19 if puffer else 0.178) * (1.04 if spec.kids else 1.0)
    if ghost:
        sw *= 0.92
        bw *= 0.95
    length = min(spec.length * k, 0.96 - y_sh)
    y_arm = y_sh + 0.17 * k
    y_hem = y_sh + length
    hw = bw - (0.008 if puffer else -0.004)
    parts: list[_Part] = []
    anchors = _Anchors(cx=cx, y_sh=y_sh, y_hem=y_hem, bw=bw, nw=nw)
    collar_top: float | None = None

    # Hood behind the body (front) or lying on the back (back view, drawn after the body).
    if spec.hood and not back:
        parts.append(_Part("hood", _ellipse(cx, y_sh - 0.05, 0.13, 0.12, 180, 360) + [(cx + 0.13, y_sh + 0.03), (cx - 0.13, y_sh + 0.03)],
                           ((cx, y_sh - 0.17), (0.0, 1.0))))

    # Sleeves (under the body so the armhole seam is the body's edge).
    if spec.garment != "vest":
        short = spec.garment == "tshirt"
        theta = math.radians((26 if short else 8) if ghost else (42 if short else 22))
        sl = (0.15 if short else 0.5) * k
        cw = 0.072 if short else (0.052 if puffer else 0.045)
        for side in (-1, 1):
            a = (cx + side * sw, y_sh + 0.02)
            b = (cx + side * bw, y_arm)
            d = (side * math.sin(theta), math.cos(theta))
            p = (math.cos(theta), -side * math.sin(theta))  # across the sleeve
            mid = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
            c = (mid[0] + d[0] * sl, mid[1] + d[1] * sl)
            outer = (c[0] + side * p[0] * cw, c[1] + side * p[1] * cw)
            inner = (c[0] - side * p[0] * cw, c[1] - side * p[1] * cw)
            bulge = 0.012 if puffer else 0.004
            mo = (a[0] + (outer[0] - a[0]) * 0.5 + side * bulge, a[1] + (outer[1] - a[1]) * 0.5)
            parts.append(_Part(f"sleeve{side}", [a, mo, outer, inner, b], (mid, d)))
            if spec.garment in ("fleece", "sweatshirt", "hoodie") or (spec.garment == "jacket"):
                rib = 0.028 if spec.garment != "jacket" else 0.018
                o2 = (outer[0] - d[0] * rib, outer[1] - d[1] * rib)
                i2 = (inner[0] - d[0] * rib, inner[1] - d[1] * rib)
                parts.append(_Part(f"cuff{side}", [o2, outer, inner, i2], (mid, d), material="rib", quilted=False, puff=0.008))
            anchors.cuffs[side] = c

    # Body.
    if spec.garment == "vest":
        left = [(cx - nw, y_sh - 0.01), (cx - 0.15, y_sh + 0.015), (cx - 0.132, y_sh + 0.07), (cx - 0.14, y_sh + 0.13),
                (cx - bw, y_arm + 0.03), (cx - hw, y_hem)]
    else:
        left = [(cx - nw, y_sh - 0.01), (cx - sw, y_sh + 0.02), (cx - bw, y_arm), (cx - hw, y_hem)]
    right = [(2 * cx - x, y) for x, y in reversed(left)]
    dip = 0.012 if back else (0.055 if spec.collar == "crew" and not spec.hood else 0.02)
    neck = [(cx + nw * math.cos(math.radians(a)), y_sh - 0.01 + dip * math.sin(math.radians(a))) for a in np.linspace(0, 180, 12)]
    parts.append(_Part("body", left + right + neck, ((cx, y_sh), (0.0, 1.0))))
    if spec.garment in ("fleece", "sweatshirt", "hoodie"):
        parts.append(_Part("hem", [(cx - hw, y_hem - 0.035), (cx + hw, y_hem - 0.035), (cx + hw, y_hem), (cx - hw, y_hem)],
                           ((cx, y_hem), (0.0, 1.0)), material="rib", quilted=False, puff=0.008))
    if spec.garment == "vest":
        for side in (-1, 1):
            arm = [(cx + side * 0.15, y_sh + 0.015), (cx + side * 0.132, y_sh + 0.07), (cx + side * 0.14, y_sh + 0.13), (cx + side * bw, y_arm + 0.03)]
            band = arm + [(x - side * 0.012, y) for x, y in reversed(arm)]
            parts.append(_Part(f"binding{side}", band, ((cx, y_sh), (0.0, 1.0)), material="trim", quilted=False, puff=0.004))

    if ghost:
        # The inside of the back neck shows above the front neckline.
        parts.insert(0, _Part("inside", _ellipse(cx, y_sh - 0.005, nw + 0.012, 0.05, 180, 360) + [(cx + nw, y_sh + 0.03), (cx - nw, y_sh + 0.03)],
                              ((cx, y_sh), (0.0, 1.0)), material="lining", quilted=False, puff=0.01))

    # Collar or hood opening on top.
    if spec.hood and not back:
        parts.append(_Part("opening", _ellipse(cx, y_sh - 0.045, 0.085, 0.085, 180, 360) + [(cx + 0.07, y_sh + 0.0), (cx - 0.07, y_sh + 0.0)],
                           ((cx, y_sh), (0.0, 1.0)), material="lining", quilted=False, puff=0.02))
    elif spec.hood and back:
        parts.append(_Part("hood", [(cx - 0.125, y_sh - 0.04), (cx + 0.125, y_sh - 0.04), (cx + 0.135, y_sh + 0.07),
                                    (cx + 0.06, y_sh + 0.17), (cx, y_sh + 0.185), (cx - 0.06, y_sh + 0.17), (cx - 0.135, y_sh + 0.07)],
                           ((cx, y_sh - 0.04), (0.0, 1.0))))
    elif spec.collar == "stand":
        h = 0.07 if spec.garment != "fleece" else 0.08
        parts.append(_Part("collar", [(cx - nw - 0.004, y_sh - h), (cx + nw + 0.004, y_sh - h), (cx + nw + 0.002, y_sh + 0.0),
                                      (cx, y_sh + (0.012 if not back else 0.0)), (cx - nw - 0.002, y_sh + 0.0)],
                           ((cx, y_sh - h), (0.0, 1.0)), quilted=spec.pattern == "horizontal", puff=0.012))
        collar_top = y_sh - h
    elif spec.collar == "crew":
        ring = _ellipse(cx, y_sh - 0.01, nw, 0.012 if back else 0.055, 0, 180, 16)
        inner_ring = _ellipse(cx, y_sh - 0.01 + 0.016, nw - 0.012, 0.001 if back else 0.04, 180, 0, 16)
        parts.append(_Part("neckband", ring + inner_ring, ((cx, y_sh), (0.0, 1.0)), material="rib", quilted=False, puff=0.004))
    anchors.collar_top = collar_top if collar_top is not None else y_sh - (0.06 if spec.hood else 0.01)
    return parts, anchors


# --- shading ---------------------------------------------------------------------------------------


def _quilt(u: F32Array, v: F32Array, pattern: Pattern, period: float) -> tuple[F32Array, F32Array, F32Array]:
    """(shade multiplier, specular weight, seam darkness) for baffle coordinates u (along), v (across)."""
    if pattern == "none":
        one = np.ones_like(u)
        return one, np.zeros_like(u), np.zeros_like(u)
    if pattern == "diamond":
        p = period * 0.8
        a = np.mod((u + v) / p, 1.0)
        b = np.mod((u - v) / p, 1.0)
        puff = np.sin(np.pi * a) * np.sin(np.pi * b)
        edge = np.minimum(np.minimum(a, 1 - a), np.minimum(b, 1 - b)) * p
    else:
        if pattern == "chevron":
            w = period * 2.2
            tri = np.abs(np.mod(v / w, 1.0) - 0.5) * 2  # 0..1 zigzag
            u = u + tri * period * 0.9
        s = np.mod(u / period, 1.0)
        puff = np.sin(np.pi * s)
        edge = np.minimum(s, 1 - s) * period
    puff = np.clip(puff, 0, 1)
    seam = np.exp(-((edge / 0.003) ** 2))
    # Light from above: the upper slope of each baffle is brighter, the highlight sits above its crest.
    if pattern == "diamond":
        slope = np.cos(np.pi * a) * 0.5 + np.cos(np.pi * b) * 0.5
        crest = np.exp(-(((a - 0.38) / 0.16) ** 2)) * np.exp(-(((b - 0.38) / 0.16) ** 2))
    else:
        slope = np.cos(np.pi * s)
        crest = np.exp(-(((s - 0.36) / 0.13) ** 2))
    shade = 0.52 + 0.4 * np.sqrt(puff) + 0.12 * slope
    return shade.astype(np.float32), crest.astype(np.float32), seam.astype(np.float32)


def _lowfreq(rng: np.random.Generator, n: int, cells: int, amp: float) -> F32Array:
    small = rng.normal(0, 1, (cells, cells)).astype(np.float32)
    big = _same_dtype(cv2.resize(small, (n, n), interpolation=cv2.INTER_CUBIC))
    return 1 + amp * big / max(1e-6, float(np.abs(big).max()))


def _texture(spec: GarmentSpec, n: int, scale: float) -> F32Array:
    """Per-pixel fabric grain (multiplier around 1), the same for every colourway of the style."""
    rng = np.random.default_rng(spec.seed * 7919 + 13)
    if spec.texture == "fleece":
        g = rng.normal(0, 1, (n, n)).astype(np.float32)
        g = _same_dtype(cv2.GaussianBlur(g, (0, 0), 0.9 * scale))
        blobs = cv2.GaussianBlur((rng.random((n, n)) < 0.02).astype(np.float32), (0, 0), 2.2 * scale)
        t = 1 + 0.22 * g / (g.std() + 1e-6) * 0.5 + 0.9 * blobs / (blobs.max() + 1e-6) * 0.25
    elif spec.texture == "cotton":
        g = rng.normal(0, 1, (n, n)).astype(np.float32)
        g = _same_dtype(cv2.GaussianBlur(g, (0, 0), 0.6 * scale))
        heather = cv2.GaussianBlur(rng.normal(0, 1, (n, n)).astype(np.float32), (0, 0), 1.5 * scale)
        t = 1 + 0.05 * g / (g.std() + 1e-6) + 0.035 * heather / (heather.std() + 1e-6)
    else:
        g = rng.normal(0, 1, (n, n)).astype(np.float32)
        g = _same_dtype(cv2.GaussianBlur(g, (0, 0), 0.5 * scale))
        t = 1 + 0.03 * g / (g.std() + 1e-6)
        step = max(3, int(round(7 * scale)))
        yy, xx = np.mgrid[0:n, 0:n]
        ripstop = ((yy % step == 0) | (xx % step == 0)).astype(np.float32)
        t = t * (1 - 0.025 * ripstop)
    return t.astype(np.float32)


def _poly_mask(points: Sequence[tuple[float, float]], n: int, ss: int = 2,
               window: tuple[int, int, int, int] | None = None) -> F32Array:
    """Anti-aliased polygon coverage (0..1) on an n×n grid, or on ``window`` (x0, y0, x1, y1) of it."""
    x0, y0, x1, y1 = window or (0, 0, n, n)
    img = Image.new("L", ((x1 - x0) * ss, (y1 - y0) * ss), 0)
    ImageDraw.Draw(img).polygon([((x * n - x0) * ss, (y * n - y0) * ss) for x, y in points], fill=255)
    return cv2.resize(np.asarray(img), (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def _window(points: Sequence[tuple[float, float]], n: int, pad: int = 3) -> tuple[int, int, int, int]:
    pts = np.asarray(points, np.float32) * n
    return (max(0, int(pts[:, 0].min()) - pad), max(0, int(pts[:, 1].min()) - pad),
            min(n, int(math.ceil(pts[:, 0].max())) + pad), min(n, int(math.ceil(pts[:, 1].max())) + pad))


@functools.lru_cache(maxsize=8)
def _grid(n: int) -> tuple[F32Array, F32Array]:
    # float32 scalars: the same float32 result as with Python numbers, which numpy's stubs widen to float64
    g = (np.arange(n, dtype=np.float32) + np.float32(0.5)) / np.float32(n)
    X, Y = np.meshgrid(g, g)
    X.setflags(write=False)
    Y.setflags(write=False)
    return X, Y


@functools.lru_cache(maxsize=24)
def _fabric(seed: int, texture: Texture, n: int, s: float) -> tuple[F32Array, F32Array]:
    """(grain, folds × key light) for a style: cached, since every colourway and view shares them."""
    spec = GarmentSpec("jacket", "black", texture=texture, seed=seed)
    tex = _texture(spec, n, s)
    rng = np.random.default_rng(seed * 104729 + 3)
    X, Y = _grid(n)
    folds = _lowfreq(rng, n, 5, 0.07) * _lowfreq(rng, n, 11, 0.03) * (1.06 - 0.12 * (X * 0.4 + Y * 0.6))
    tex.setflags(write=False)
    folds.setflags(write=False)
    return tex, folds.astype(np.float32)


def _darker(rgb: RGB, f: float) -> RGB:
    r, g, b = rgb
    return int(r * f), int(g * f), int(b * f)


def _trim_rgb(spec: GarmentSpec) -> RGB:
    if spec.trim:
        return COLOURS[spec.trim][1]
    r, g, b = spec.rgb
    lum = 0.3 * r + 0.59 * g + 0.11 * b
    return _darker(spec.rgb, 0.72) if lum > 60 else (min(255, r + 18), min(255, g + 18), min(255, b + 18))


# --- prints and patches ----------------------------------------------------------------------------

_PRINT_PALETTES: tuple[tuple[RGB, ...], ...] = (
    ((238, 200, 60), (220, 80, 50), (40, 120, 170), (245, 240, 225)),
    ((240, 110, 90), (250, 190, 90), (120, 60, 140), (250, 250, 240)),
    ((30, 30, 30), (200, 40, 40), (240, 240, 230), (60, 140, 90)),
    ((80, 180, 200), (250, 230, 120), (230, 90, 120), (30, 40, 70)),
)


def _contrast_palette(seed: int, base: RGB) -> list[RGB]:
    pal = list(_PRINT_PALETTES[seed % len(_PRINT_PALETTES)])
    base_l = 0.3 * base[0] + 0.59 * base[1] + 0.11 * base[2]
    pal.sort(key=lambda c: -abs((0.3 * c[0] + 0.59 * c[1] + 0.11 * c[2]) - base_l))
    return pal


def _print_image(kind: str, seed: int, text: str, w: int, h: int, base: RGB) -> Image.Image:
    """A chest print as RGBA: distinct shapes and lettering, so keypoint matchers have corners to hold on to."""
    rng = np.random.default_rng(seed * 31 + 7)
    pal = _contrast_palette(seed, base)
    img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    word = (text or "NORTH").upper()
    if kind == "badge":
        r = min(w, h) * 0.46
        cx, cy = w / 2, h / 2
        d.ellipse((cx - r, cy - r, cx + r, cy + r), outline=pal[0], width=max(2, int(r * 0.09)))
        d.ellipse((cx - r * 0.72, cy - r * 0.72, cx + r * 0.72, cy + r * 0.72), fill=pal[1])
        font = korean_font(max(8, int(r * 0.2)), "ExtraBold")
        letters = f"{word} · EST {1980 + seed % 40} · "
        for i, letter in enumerate(letters):
            ang = -90 + 360 * i / len(letters)
            tile = Image.new("RGBA", (int(r * 0.3), int(r * 0.3)), (0, 0, 0, 0))
            ImageDraw.Draw(tile).text((tile.width / 2, tile.height / 2), letter, font=font, fill=pal[0], anchor="mm")
            tile = tile.rotate(-ang - 90, resample=Image.Resampling.BICUBIC)
            px = cx + r * 0.86 * math.cos(math.radians(ang)) - tile.width / 2
            py = cy + r * 0.86 * math.sin(math.radians(ang)) - tile.height / 2
            img.alpha_composite(tile, (int(px), int(py)))
        star = [(cx + r * 0.45 * (0.45 if j % 2 else 1) * math.cos(math.radians(-90 + 36 * j)),
                 cy + r * 0.45 * (0.45 if j % 2 else 1) * math.sin(math.radians(-90 + 36 * j))) for j in range(10)]
        d.polygon(star, fill=pal[2])
    elif kind == "varsity":
        font = korean_font(max(10, int(h * 0.3)), "ExtraBold")
        d.text((w / 2, h * 0.3), word[:8], font=font, fill=pal[0], anchor="mm", stroke_width=max(1, h // 40), stroke_fill=pal[1])
        num = f"{int(rng.integers(10, 99))}"
        font2 = korean_font(max(10, int(h * 0.42)), "ExtraBold")
        d.text((w / 2, h * 0.7), num, font=font2, fill=pal[1], anchor="mm", stroke_width=max(1, h // 30), stroke_fill=pal[0])
        d.rectangle((w * 0.08, h * 0.5, w * 0.92, h * 0.52), fill=pal[2])
    elif kind == "sunset":
        r = min(w, h) * 0.36
        cx, cy = w / 2, h * 0.45
        bands = 7
        for i in range(bands):
            y0 = cy - r + 2 * r * i / bands
            y1 = y0 + 2 * r / bands * (0.85 - 0.08 * i)
            col = tuple(int(pal[0][j] + (pal[1][j] - pal[0][j]) * i / bands) for j in range(3))
            clip = Image.new("L", (w, h), 0)
            ImageDraw.Draw(clip).ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
            band = Image.new("L", (w, h), 0)
            ImageDraw.Draw(band).rectangle((0, y0, w, y1), fill=255)
            from PIL import ImageChops

            img.paste(Image.new("RGBA", (w, h), col + (255,)), (0, 0), ImageChops.multiply(clip, band))
        for j in range(3):
            bx = w * (0.15 + 0.3 * j + rng.uniform(-0.05, 0.05))
            d.polygon([(bx - w * 0.16, cy + r * 0.75), (bx, cy + r * rng.uniform(-0.1, 0.3)), (bx + w * 0.16, cy + r * 0.75)], fill=pal[2])
        font = korean_font(max(8, int(h * 0.12)), "ExtraBold")
        d.text((w / 2, h * 0.9), word, font=font, fill=pal[0], anchor="mm")
    elif kind == "geometric":
        cells = 4
        cw, ch = w / cells, h / cells
        for i in range(cells):
            for j in range(cells):
                x0, y0 = i * cw, j * ch
                col = pal[int(rng.integers(len(pal) - 1))]
                shape = int(rng.integers(3))
                if shape == 0:
                    d.polygon([(x0, y0 + ch), (x0 + cw / 2, y0), (x0 + cw, y0 + ch)], fill=col)
                elif shape == 1:
                    d.ellipse((x0 + cw * 0.1, y0 + ch * 0.1, x0 + cw * 0.9, y0 + ch * 0.9), fill=col)
                else:
                    d.rectangle((x0 + cw * 0.15, y0 + ch * 0.15, x0 + cw * 0.85, y0 + ch * 0.85), outline=col, width=max(2, int(cw * 0.12)))
    else:  # script
        font = korean_font(max(10, int(h * 0.24)), "ExtraBold")
        font_small = korean_font(max(8, int(h * 0.1)), "Bold")
        d.text((w / 2, h * 0.32), word.title(), font=font, fill=pal[0], anchor="mm")
        d.arc((w * 0.1, h * 0.35, w * 0.9, h * 0.75), 200, 340, fill=pal[1], width=max(2, h // 30))
        d.text((w / 2, h * 0.68), f"ORIGINAL GOODS · {1990 + seed % 30}", font=font_small, fill=pal[1], anchor="mm")
        for j in range(5):
            sx, sy = w * (0.1 + 0.2 * j), h * 0.86
            d.regular_polygon((sx, sy, h * 0.04), 5, rotation=int(rng.integers(0, 72)), fill=pal[2])
    return img


def _patch_image(text: str, w: int, h: int, colours: tuple[RGB, RGB]) -> Image.Image:
    bg, fg = colours
    img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((0, 0, w - 1, h - 1), radius=max(1, h // 6), fill=bg + (255,), outline=fg + (255,), width=max(1, h // 14))
    size = max(6, int(h * 0.5))
    font = korean_font(size, "ExtraBold")
    while size > 6 and d.textlength(text, font=font) > w * 0.86:
        size -= 1
        font = korean_font(size, "ExtraBold")
    d.text((w / 2, h / 2), text, font=font, fill=fg + (255,), anchor="mm")
    return img


# --- render ------------------------------------------------------------------------------------------


def _detail_focus(spec: GarmentSpec, anchors: _Anchors) -> tuple[float, float]:
    cx, y_sh = anchors.cx, anchors.y_sh
    if spec.print_kind:
        return cx, y_sh + 0.17
    if spec.logo:
        return cx + 0.095, y_sh + 0.1
    return cx, y_sh + 0.05


def render(spec: GarmentSpec, view: View = "front", size: int = 640) -> Image.Image:
    """One studio photo of the garment on white, ``size`` pixels square.

    "detail" is a 2× close-up of the chest print, the logo patch or the collar and zipper pull.
    """
    scale = 2.0 if view == "detail" else 1.0
    n = int(size * scale)
    s = scale * size / 640
    layout_view: View = "front" if view == "detail" else view
    parts, anchors = _layout(spec, layout_view)
    if view == "detail":
        fx, fy = _detail_focus(spec, anchors)
        cx0 = int(np.clip(fx * n - size / 2, 0, n - size))
        cy0 = int(np.clip(fy * n - size / 2, 0, n - size))
    else:
        cx0 = cy0 = 0
    clip = (cx0, cy0, cx0 + size, cy0 + size)
    base = np.array(spec.rgb, np.float32) / 255.0
    trim = np.array(_trim_rgb(spec), np.float32) / 255.0
    lining = np.array(_darker(spec.rgb, 0.45), np.float32) / 255.0
    X, Y = _grid(n)
    tex, lit = _fabric(spec.seed, spec.texture, n, s)
    puffer = spec.pattern != "none"
    gloss = 0.28 if spec.texture == "nylon" else 0.05

    out = np.ones((size, size, 3), np.float32)
    covered = np.zeros((size, size), np.float32)
    shade_top = np.ones((size, size), np.float32)
    for part in parts:
        px0, py0, px1, py1 = _window(part.points, n)
        x0, y0, x1, y1 = max(px0, clip[0]), max(py0, clip[1]), min(px1, clip[2]), min(py1, clip[3])
        if x1 <= x0 or y1 <= y0:
            continue
        win = (slice(y0, y1), slice(x0, x1))  # in the n×n frame
        loc = (slice(y0 - cy0, y1 - cy0), slice(x0 - cx0, x1 - cx0))  # in the output
        m = _poly_mask(part.points, n, window=(x0, y0, x1, y1))
        Xw, Yw = X[win], Y[win]
        (ox, oy), (ax, ay) = part.frame
        shade: npt.NDArray[np.floating]
        spec_w: F32Array | None
        seam: F32Array | None
        if part.quilted and part.material == "fabric" and puffer:
            u = (Xw - ox) * ax + (Yw - oy) * ay
            v = (Xw - ox) * -ay + (Yw - oy) * ax
            shade, spec_w, seam = _quilt(u, v, spec.pattern, spec.period)
        else:
            shade, spec_w, seam = np.ones_like(Xw), None, None
        radius = part.puff if part.puff is not None else (0.035 if puffer else 0.018)
        dist = cv2.distanceTransform((m > 0.5).astype(np.uint8), cv2.DIST_L2, 5) / n
        rim = np.clip(dist / radius, 0, 1) ** 0.6
        edge_floor = 0.5 if puffer else 0.75
        shade = shade * (edge_floor + (1 - edge_floor) * rim) * lit[win]
        if view == "ghost":
            shade = shade * (1 - 0.28 * np.clip(np.abs(Xw - 0.5) / 0.26, 0, 1) ** 2)
        if part.material == "rib":
            across = (Xw - ox) * -ay + (Yw - oy) * ax
            shade = shade * (0.9 + 0.1 * np.cos(2 * np.pi * across * n / (5 * s)))
        colour = {"fabric": base, "rib": trim if spec.garment == "jacket" else base * 0.92, "lining": lining, "trim": trim}[part.material]
        if part.material == "lining":
            shade = shade * 0.6
        pix = colour[None, None, :] * (shade * tex[win])[..., None]
        if spec_w is not None and seam is not None:  # both come from _quilt, or neither
            pix = pix + (gloss * spec_w * lit[win])[..., None] * (1 - colour[None, None, :] * 0.6)
            pix = pix * (1 - 0.6 * seam)[..., None]
        m3 = m[..., None]
        out[loc] = out[loc] * (1 - m3) + pix * m3
        covered[loc] = np.maximum(covered[loc], m)
        shade_top[loc] = shade_top[loc] * (1 - m) + shade * m

    img = _compose_on_white(out, covered, s, _paper(n)[clip[1]:clip[3], clip[0]:clip[2]])
    _decorate(img, spec, layout_view, anchors, n, s, shade_top, (cx0, cy0))
    a = np.asarray(img).astype(np.float32)
    a += np.random.default_rng(spec.seed * 11 + VIEWS.index(view)).normal(0, 1.6, a.shape[:2] + (1,)).astype(np.float32)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


@functools.lru_cache(maxsize=4)
def _paper(n: int) -> F32Array:
    """Studio white with a faint fall-off."""
    X, Y = _grid(n)
    paper = (0.975 - 0.015 * Y - 0.01 * (X - 0.5) ** 2)[..., None] * np.array([1.0, 0.998, 0.99], np.float32)
    paper.setflags(write=False)
    return paper.astype(np.float32)


def _compose_on_white(garment: F32Array, covered: F32Array, s: float, paper: F32Array) -> Image.Image:
    h, w = covered.shape
    shadow = np.zeros_like(covered)
    off = int(round(6 * s))
    shadow[off:, off // 2:] = covered[: h - off, : w - off // 2]
    soft = cv2.GaussianBlur(shadow, (0, 0), 9 * s)
    bg = paper * (1 - 0.06 * soft)[..., None]
    out = bg * (1 - covered[..., None]) + garment * covered[..., None]
    return Image.fromarray((np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8))


def _paste_shaded(img: Image.Image, piece: Image.Image, xy: tuple[int, int], shade: F32Array) -> None:
    """Paste an RGBA decoration, darkened where the fabric under it is in shadow."""
    x, y = xy
    w, h = piece.size
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(img.width, x + w), min(img.height, y + h)
    if x1 <= x0 or y1 <= y0:
        return
    p = np.asarray(piece.crop((x0 - x, y0 - y, x1 - x, y1 - y))).astype(np.float32) / 255.0
    sh = np.clip(shade[y0:y1, x0:x1], 0.4, 1.15)[..., None]
    base = np.asarray(img.crop((x0, y0, x1, y1))).astype(np.float32) / 255.0
    alpha = p[..., 3:4]
    mixed = base * (1 - alpha) + np.clip(p[..., :3] * sh, 0, 1) * alpha
    img.paste(Image.fromarray((mixed * 255 + 0.5).astype(np.uint8)), (x0, y0))


def _decorate(img: Image.Image, spec: GarmentSpec, view: View, anchors: _Anchors, n: int, s: float, shade: F32Array,
              offset: tuple[int, int] = (0, 0)) -> None:
    """Zipper, pockets, cords, seams, patches and prints; ``img`` is the window of the n×n frame at ``offset``."""
    ox, oy = offset
    cx, y_sh, y_hem = anchors.cx, anchors.y_sh, anchors.y_hem
    collar_top = anchors.collar_top
    trim = _trim_rgb(spec)
    overlay = Image.new("RGBA", (n, n), (0, 0, 0, 0))
    d = ImageDraw.Draw(overlay)
    P = lambda x, y: (x * n, y * n)  # noqa: E731
    back = view == "back"

    if not back and spec.zipper != "none":
        top = collar_top + 0.004
        bottom = y_hem - 0.004 if spec.zipper == "full" else y_sh + 0.2
        zw = 0.006
        d.rectangle((*P(cx - zw, top), *P(cx + zw, bottom)), fill=trim + (255,))
        step = max(2, int(3 * s))
        metal = (150, 150, 152, 255) if sum(spec.rgb) < 300 else (90, 90, 92, 255)
        for i, yy in enumerate(range(int(top * n), int(bottom * n), step)):
            xo = -zw * 0.7 if i % 2 else 0.0
            d.rectangle((*P(cx + xo, yy / n), *P(cx + xo + zw * 0.7, (yy + step * 0.6) / n)), fill=metal)
        d.rounded_rectangle((*P(cx - 0.008, top + 0.006), *P(cx + 0.008, top + 0.04)), radius=int(3 * s), fill=(120, 120, 124, 255),
                            outline=(60, 60, 62, 255), width=max(1, int(s)))
        d.ellipse((*P(cx - 0.003, top + 0.03), *P(cx + 0.003, top + 0.036)), fill=(40, 40, 40, 255))
        if spec.garment in ("jacket", "vest") and spec.pattern != "none":
            d.line((*P(cx - 0.018, top + 0.02), *P(cx - 0.018, bottom)), fill=_darker(spec.rgb, 0.6) + (200,), width=max(1, int(2 * s)))

    if not back and spec.pockets == "welt":
        for side in (-1, 1):
            a = P(cx + side * 0.075, y_hem - 0.19)
            b = P(cx + side * 0.145, y_hem - 0.085)
            d.line((*a, *b), fill=_darker(spec.rgb, 0.45) + (255,), width=max(2, int(5 * s)))
            d.line((*a, *b), fill=trim + (255,), width=max(1, int(2 * s)))
            d.rectangle((b[0] - 3 * s, b[1] - 6 * s, b[0] + 3 * s, b[1] + 4 * s), fill=(130, 130, 134, 255))
    elif not back and spec.pockets == "kangaroo":
        poly = [P(cx - 0.11, y_hem - 0.2), P(cx + 0.11, y_hem - 0.2), P(cx + 0.15, y_hem - 0.05), P(cx - 0.15, y_hem - 0.05)]
        d.line(poly + [poly[0]], fill=_darker(spec.rgb, 0.6) + (255,), width=max(1, int(2 * s)))
        for side in (-1, 1):
            d.line((*P(cx + side * 0.11, y_hem - 0.2), *P(cx + side * 0.15, y_hem - 0.05)), fill=_darker(spec.rgb, 0.45) + (255,), width=max(2, int(4 * s)))
    elif not back and spec.pockets == "patch":
        x0, y0, x1, y1 = cx - 0.16, y_sh + 0.07, cx - 0.06, y_sh + 0.17
        d.rectangle((*P(x0, y0), *P(x1, y1)), fill=trim + (255,))
        d.line((*P(x0 + 0.01, y0 + 0.015), *P(x1 - 0.01, y0 + 0.015)), fill=(150, 150, 152, 255), width=max(1, int(3 * s)))

    if spec.hood and not back:
        for side in (-1, 1):  # drawcords
            d.line((*P(cx + side * 0.045, y_sh - 0.005), *P(cx + side * 0.05, y_sh + 0.11)), fill=(235, 235, 230, 255), width=max(1, int(3 * s)))
            d.ellipse((*P(cx + side * 0.05 - 0.005, y_sh + 0.107), *P(cx + side * 0.05 + 0.005, y_sh + 0.122)), fill=(60, 60, 60, 255))

    # Seams where sleeves meet the body, and the hem stitch.
    if spec.garment != "vest" and not (view == "ghost"):
        for side in (-1, 1):
            d.line((*P(cx + side * (0.205 if spec.pattern != "none" else 0.19), y_sh + 0.02), *P(cx + side * anchors.bw, y_sh + 0.17)),
                   fill=_darker(spec.rgb, 0.55) + (160,), width=max(1, int(2 * s)))
    hem_stitch = y_hem - (0.04 if spec.garment in ("fleece", "sweatshirt", "hoodie") else 0.015)
    d.line((*P(cx - anchors.bw + 0.01, hem_stitch), *P(cx + anchors.bw - 0.01, hem_stitch)),
           fill=_darker(spec.rgb, 0.62) + (140,), width=max(1, int(s)))

    overlay_np = np.asarray(overlay.crop((ox, oy, ox + img.width, oy + img.height)))
    img.paste(Image.fromarray(_shaded_overlay(np.asarray(img), overlay_np, shade)))

    if spec.logo and not back:
        pw, ph = int(0.085 * n), int(0.032 * n)
        patch = _patch_image(spec.logo, pw, ph, spec.logo_colours)
        _paste_shaded(img, patch, (int((cx + 0.095) * n - pw / 2) - ox, int((y_sh + 0.1) * n - ph / 2) - oy), shade)
    if spec.logo and back:
        pw, ph = int(0.12 * n), int(0.03 * n)
        patch = _patch_image(spec.logo, pw, ph, (spec.logo_colours[0], spec.logo_colours[1]))
        _paste_shaded(img, patch, (int(cx * n - pw / 2) - ox, int((y_sh + (0.22 if spec.hood else 0.06)) * n) - oy), shade)
    if spec.print_kind and (not back or spec.garment == "tshirt"):
        big = back and spec.garment == "tshirt"
        pw = int((0.26 if big else 0.2) * (0.9 if spec.kids else 1.0) * n)
        ph = int(pw * (1.0 if spec.print_kind in ("badge", "geometric") else 0.8))
        art = _print_image(spec.print_kind, spec.print_seed + (101 if big else 0), spec.print_text, pw, ph, spec.rgb)
        art = art.filter(ImageFilter.GaussianBlur(0.4 * s))
        _paste_shaded(img, art, (int(cx * n - pw / 2) - ox, int((y_sh + (0.2 if big else 0.17)) * n - ph / 2) - oy), shade)


def _shaded_overlay(base: U8Array, overlay: U8Array, shade: F32Array) -> U8Array:
    box = Image.fromarray(overlay[..., 3]).getbbox()
    if box is None:
        return base
    x0, y0, x1, y1 = box
    out = base.copy()
    a = overlay[y0:y1, x0:x1, 3:4].astype(np.float32) / 255.0
    col = overlay[y0:y1, x0:x1, :3].astype(np.float32) * np.clip(shade[y0:y1, x0:x1], 0.45, 1.15)[..., None]
    out[y0:y1, x0:x1] = np.clip(base[y0:y1, x0:x1].astype(np.float32) * (1 - a) + col * a, 0, 255).astype(np.uint8)
    return out


def garment_mask(spec: GarmentSpec, view: View = "front", size: int = 640) -> BoolArray:
    """Exact garment pixels of ``render(spec, view, size)`` (bool), for recolouring without guessing."""
    if view == "detail":
        raise ValueError("no exact mask for the detail crop")
    parts, _ = _layout(spec, view)
    m = np.zeros((size, size), np.float32)
    for part in parts:
        m = np.maximum(m, _poly_mask(part.points, size, 1))
    return m > 0.5
