"""What competitors do to a product photo before listing it.

Every transform takes a PIL image and a seed (an int or a ``numpy.random.Generator``) and
returns a new RGB image; the same seed gives the same pixels. True matches re-use our photo
(crop, rescale, JPEG, banner, collage, pasted on a street photo, slight rotation, a
re-photograph with colour jitter that keeps the hue); ``recolour`` makes the near-miss "same
style, another colour" by shifting the hue of the garment pixels only.
"""
from __future__ import annotations

import functools
import importlib.util
import io
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFilter, ImageFont

Seed = int | np.random.Generator
F32Array = npt.NDArray[np.float32]
U8Array = npt.NDArray[np.uint8]
BoolArray = npt.NDArray[np.bool_]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont  # Pillow's built-in font when FreeType is missing

# Neutral sales copy seen on Korean marketplace thumbnails: it does not change what is sold.
BANNER_TEXTS: tuple[str, ...] = (
    "무료배송 ★ 정품 ★ 23FW 신상",
    "오늘출발 ★ 100% 정품",
    "특가 SALE ★ 당일발송",
    "24FW 신상 입고 ★ 무료배송",
    "정품보증 ★ 빠른배송",
    "BEST ★ 인기상품 ★ 무료반품",
)
# Copy that says the offer is not our new, domestic product: an attribute conflict read from the image.
NEAR_MISS_BANNER_TEXTS: dict[str, tuple[str, ...]] = {
    "parallel_import": ("해외배송 ★ 병행수입 정품", "병행수입 ★ 해외직구 최저가"),
    "refurb": ("리퍼 B급 ★ 특가 판매", "B급 리퍼상품 ★ 반품불가"),
    "kids": ("키즈 ★ 아동용 ★ 130~160", "아동 키즈 패딩 ★ 무료배송"),
}
BANNER_COLOURS: tuple[tuple[tuple[int, int, int], tuple[int, int, int]], ...] = (
    ((210, 30, 40), (255, 255, 255)),  # red bar, white text
    ((20, 20, 20), (255, 220, 60)),  # black bar, yellow text
    ((25, 45, 110), (255, 255, 255)),  # navy bar, white text
    ((255, 214, 0), (20, 20, 20)),  # yellow bar, black text
    ((0, 150, 110), (255, 255, 255)),  # green bar, white text
)
# Photographs shipped inside installed packages, used as "street" backgrounds. None shows a person,
# so a person detector finding one on a composite is a false positive worth seeing.
BACKGROUND_FILES: tuple[tuple[str, str], ...] = (
    ("skimage", "data/brick.png"),
    ("skimage", "data/grass.png"),
    ("skimage", "data/gravel.png"),
    ("skimage", "data/coffee.png"),
    ("skimage", "data/rocket.jpg"),
    ("skimage", "data/motorcycle_left.png"),
)


def rng_of(seed: Seed) -> np.random.Generator:
    """A generator from a seed; a generator passed in is used as it is (so callers can chain)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def _rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "P"):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.split()[3])
        return canvas
    return img.convert("RGB")


# --- fonts and package files -------------------------------------------------------------------


def package_file(package: str, relative: str) -> Path | None:
    """A data file shipped inside an installed package, or None when the package is absent."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    return path if path.exists() else None


@functools.lru_cache(maxsize=64)
def korean_font(size: int, weight: str = "Bold") -> Font:
    """NanumGothic from koreanize-matplotlib; Pillow's default font (no Hangul) when it is missing."""
    name = {"Regular": "NanumGothic.ttf"}.get(weight, f"NanumGothic{weight}.ttf")
    path = package_file("koreanize_matplotlib", f"fonts/{name}")
    if path is None:
        return ImageFont.load_default(size=size)
    return ImageFont.truetype(str(path), size=size)


@functools.lru_cache(maxsize=16)
def _background_photo(index: int) -> Image.Image | None:
    package, relative = BACKGROUND_FILES[index % len(BACKGROUND_FILES)]
    path = package_file(package, relative)
    if path is None:
        return None
    return _rgb(Image.open(path)).copy()


def available_backgrounds() -> list[int]:
    return [i for i in range(len(BACKGROUND_FILES)) if _background_photo(i) is not None]


# --- masks ---------------------------------------------------------------------------------------


def background_colour(img: Image.Image) -> tuple[int, int, int]:
    """Median colour of the image border: the studio white (or grey) a product was shot on."""
    a = np.asarray(_rgb(img))
    border = np.concatenate([a[:4].reshape(-1, 3), a[-4:].reshape(-1, 3), a[:, :4].reshape(-1, 3), a[:, -4:].reshape(-1, 3)])
    r, g, b = (int(v) for v in np.median(border, axis=0))
    return r, g, b


def product_mask(img: Image.Image, threshold: int = 22) -> BoolArray:
    """Foreground of a photo shot on a plain background: bool (h, w).

    Precondition: the border is mostly background. Pixels far from the border colour, closed,
    with holes filled and specks dropped. On a model shot this includes the model; see
    ``garment_mask`` for the garment alone.
    """
    a = np.asarray(_rgb(img)).astype(np.int16)
    bg = np.array(background_colour(img), dtype=np.int16)
    diff = np.abs(a - bg).max(axis=2)
    fg = (diff > threshold).astype(np.uint8)
    k = max(3, (min(fg.shape) // 120) | 1)
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, np.ones((k, k), np.uint8))
    # Holes: background reachable from the border stays background, everything else is product.
    padded = np.pad(fg, 1)
    flood = padded.copy()
    ff_mask = np.zeros((flood.shape[0] + 2, flood.shape[1] + 2), np.uint8)
    cv2.floodFill(flood, ff_mask, (0, 0), 2)
    filled = (flood[1:-1, 1:-1] != 2)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(filled.astype(np.uint8), connectivity=8)
    if n <= 1:
        return filled
    min_area = 0.004 * filled.size
    keep = np.zeros(n, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area
    if not keep.any():
        keep[1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))] = True
    return keep[labels]


def skin_mask(img: Image.Image) -> BoolArray:
    """Skin-coloured pixels (the classic YCrCb box), so recolouring a model shot leaves the model alone."""
    ycc = cv2.cvtColor(np.asarray(_rgb(img)), cv2.COLOR_RGB2YCrCb)
    cr, cb = ycc[..., 1], ycc[..., 2]
    skin = (cr >= 135) & (cr <= 172) & (cb >= 80) & (cb <= 125) & (ycc[..., 0] > 60)
    opened = cv2.morphologyEx(skin.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    return opened.astype(bool)


def garment_mask(img: Image.Image) -> BoolArray:
    """Product pixels that are not skin: the garment on a flat-lay, garment(s) and hair on a model shot."""
    return product_mask(img) & ~skin_mask(img)


def bbox_of(mask: BoolArray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), exclusive; the whole image when the mask is empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return 0, 0, mask.shape[1], mask.shape[0]
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def cutout(img: Image.Image, mask: BoolArray | None = None, feather: float = 1.2) -> Image.Image:
    """The product cropped to its box as RGBA, alpha from the mask softened at the edge."""
    img = _rgb(img)
    if mask is None:
        mask = product_mask(img)
    x0, y0, x1, y1 = bbox_of(mask)
    alpha = Image.fromarray((mask * 255).astype(np.uint8))
    if feather > 0:
        alpha = alpha.filter(ImageFilter.GaussianBlur(feather))
    rgba = img.copy()
    rgba.putalpha(alpha)
    return rgba.crop((x0, y0, x1, y1))


# --- single-image transforms ---------------------------------------------------------------------


def crop(img: Image.Image, seed: Seed, keep: float = 0.8) -> Image.Image:
    """A random crop that keeps at least ``keep`` of the product's box in each direction."""
    rng = rng_of(seed)
    img = _rgb(img)
    w, h = img.size
    x0, y0, x1, y1 = bbox_of(product_mask(img))
    bw, bh = x1 - x0, y1 - y0
    cut = 1.0 - keep
    # Trim into the product on some sides, leave a random margin on others.
    left = x0 + rng.uniform(-0.6, 1.0) * cut * bw * 0.5
    right = x1 - rng.uniform(-0.6, 1.0) * cut * bw * 0.5
    top = y0 + rng.uniform(-0.6, 1.0) * cut * bh * 0.5
    bottom = y1 - rng.uniform(-0.6, 1.0) * cut * bh * 0.5
    box = (
        int(np.clip(left, 0, w - 2)),
        int(np.clip(top, 0, h - 2)),
        int(np.clip(right, 2, w)),
        int(np.clip(bottom, 2, h)),
    )
    if box[2] - box[0] < 16 or box[3] - box[1] < 16:
        return img.copy()
    return img.crop(box)


def rescale(img: Image.Image, seed: Seed, low: float = 0.45, high: float = 1.25, min_side: int = 160) -> Image.Image:
    rng = rng_of(seed)
    img = _rgb(img)
    f = rng.uniform(low, high)
    w, h = img.size
    f = max(f, min_side / min(w, h))
    return img.resize((max(1, round(w * f)), max(1, round(h * f))), Image.Resampling.BICUBIC if f > 1 else Image.Resampling.LANCZOS)


def jpeg(img: Image.Image, seed: Seed, low: int = 25, high: int = 60) -> Image.Image:
    """Re-encode as JPEG at a random (low) quality and decode again."""
    rng = rng_of(seed)
    q = int(rng.integers(low, high + 1))
    buf = io.BytesIO()
    _rgb(img).save(buf, "JPEG", quality=q)
    buf.seek(0)
    out = Image.open(buf)
    out.load()
    return out.convert("RGB")


def _fit_font(draw: ImageDraw.ImageDraw, text: str, max_w: int, max_h: int) -> Font:
    size = max(8, int(max_h))
    while size > 8:
        font = korean_font(size, "ExtraBold")
        x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
        if x1 - x0 <= max_w and y1 - y0 <= max_h:
            return font
        size = int(size * 0.9)
    return korean_font(8, "ExtraBold")


def banner(
    img: Image.Image,
    seed: Seed,
    text: str | None = None,
    position: str | None = None,
    colours: tuple[tuple[int, int, int], tuple[int, int, int]] | None = None,
    extend: bool | None = None,
) -> Image.Image:
    """A coloured bar with Korean sales copy, top or bottom, laid over the photo or added below/above it."""
    rng = rng_of(seed)
    img = _rgb(img)
    text = text if text is not None else BANNER_TEXTS[int(rng.integers(len(BANNER_TEXTS)))]
    position = position or ("top" if rng.random() < 0.5 else "bottom")
    bar_colour, text_colour = colours or BANNER_COLOURS[int(rng.integers(len(BANNER_COLOURS)))]
    extend = bool(rng.random() < 0.4) if extend is None else extend
    w, h = img.size
    bar_h = max(18, int(h * rng.uniform(0.09, 0.14)))
    if extend:
        canvas = Image.new("RGB", (w, h + bar_h), (255, 255, 255))
        canvas.paste(img, (0, bar_h if position == "top" else 0))
        by = 0 if position == "top" else h
    else:
        canvas = img.copy()
        by = 0 if position == "top" else h - bar_h
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, by, w, by + bar_h), fill=bar_colour)
    font = _fit_font(draw, text, int(w * 0.92), int(bar_h * 0.62))
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
    draw.text(((w - (x1 - x0)) / 2 - x0, by + (bar_h - (y1 - y0)) / 2 - y0), text, font=font, fill=text_colour)
    return canvas


def rotate(img: Image.Image, seed: Seed, max_degrees: float = 6.0) -> Image.Image:
    rng = rng_of(seed)
    img = _rgb(img)
    angle = rng.uniform(1.5, max_degrees) * (1 if rng.random() < 0.5 else -1)
    return img.rotate(angle, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=background_colour(img))


def colour_jitter(img: Image.Image, seed: Seed, strength: float = 1.0) -> Image.Image:
    """Brightness, contrast, saturation, gamma and a slight white-balance cast; the hue stays put."""
    rng = rng_of(seed)
    a = np.asarray(_rgb(img)).astype(np.float32) / 255.0
    s = strength
    brightness = 1 + rng.uniform(-0.1, 0.1) * s
    contrast = 1 + rng.uniform(-0.12, 0.12) * s
    saturation = 1 + rng.uniform(-0.12, 0.1) * s
    gamma = 1 + rng.uniform(-0.08, 0.08) * s
    balance = 1 + rng.uniform(-0.025, 0.025, size=3) * s
    a = a * brightness
    a = (a - 0.5) * contrast + 0.5
    grey = a.mean(axis=2, keepdims=True)
    a = grey + (a - grey) * saturation
    a = np.clip(a * balance, 0, 1) ** gamma
    return Image.fromarray((np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8))


def perspective(img: Image.Image, seed: Seed, amount: float = 0.04) -> Image.Image:
    """A slight keystone, as when the product is photographed again from another angle."""
    rng = rng_of(seed)
    img = _rgb(img)
    w, h = img.size
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    jitter = rng.uniform(-amount, amount, size=(4, 2)) * np.array([w, h], np.float32)
    dst = (src + jitter).astype(np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    out = cv2.warpPerspective(
        np.asarray(img), m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
        borderValue=background_colour(img),
    )
    return Image.fromarray(out)


def rephotograph(img: Image.Image, seed: Seed) -> Image.Image:
    """Re-shot rather than re-used: perspective, colour jitter (same hue), softness, sensor noise."""
    rng = rng_of(seed)
    out = perspective(img, rng)
    out = colour_jitter(out, rng)
    out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.9)))
    a = np.asarray(out).astype(np.float32)
    a += rng.normal(0, rng.uniform(1.5, 4.0), size=a.shape[:2] + (1,)).astype(np.float32)
    out = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    return jpeg(out, rng, 60, 85)


def recolour(
    img: Image.Image,
    hue_shift: float,
    mask: BoolArray | None = None,
    colourise_saturation: float = 0.55,
) -> Image.Image:
    """The same garment in another colour: hue of the garment pixels shifted by ``hue_shift`` degrees.

    Shape, shading and texture are untouched (only H, and S of near-grey pixels, change). A
    near-black/grey/white garment has no hue to shift, so it is tinted: its pixels take hue
    ``hue_shift`` (read as an absolute hue then) at ``colourise_saturation``, darkest pixels
    lifted a little so the colour shows. ``mask`` defaults to ``garment_mask(img)``.
    """
    img = _rgb(img)
    if mask is None:
        mask = garment_mask(img)
    a = np.asarray(img).astype(np.float32) / 255.0
    hsv = cv2.cvtColor(a, cv2.COLOR_RGB2HSV)  # H in degrees 0..360, S and V 0..1
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    m = mask.astype(bool)
    if not m.any():
        return img.copy()
    # The garment's own chroma: the median, so a bright print on a black tee does not count.
    chroma = float(np.median(s[m]))
    if chroma < 0.15:
        # Only the near-grey pixels are tinted; a print keeps its colours.
        grey = np.clip((0.3 - s) / 0.12, 0, 1) * cv2.GaussianBlur(m.astype(np.float32), (0, 0), 1.0)
        new_s = np.maximum(s, colourise_saturation * np.clip(1.2 - v * 0.6, 0.3, 1))
        new_v = 0.18 + v * 0.82
        h = np.where(grey > 0.5, hue_shift % 360, h)
        s = s + (new_s - s) * grey
        v = v + (new_v - v) * grey
    else:
        h = np.where(m, (h + hue_shift) % 360, h)
    out = cv2.cvtColor(np.dstack([h, s, v]).astype(np.float32), cv2.COLOR_HSV2RGB)
    return Image.fromarray((np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8))


# --- compositions --------------------------------------------------------------------------------


def _fit(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    f = min(box[0] / size[0], box[1] / size[1])
    return max(1, int(size[0] * f)), max(1, int(size[1] * f))


def collage(
    img: Image.Image,
    others: Sequence[Image.Image],
    seed: Seed,
    layout: str | None = None,
    size: int | None = None,
) -> Image.Image:
    """Our product cut out next to 1–3 other products on white: a grid or a scattered arrangement."""
    rng = rng_of(seed)
    n_others = min(len(others), int(rng.integers(1, 4)))
    picks = [others[i] for i in rng.choice(len(others), size=n_others, replace=False)] if n_others else []
    items = [cutout(_rgb(img))] + [cutout(_rgb(o)) for o in picks]
    order = list(rng.permutation(len(items)))
    layout = layout or ("grid" if rng.random() < 0.55 else "scattered")
    side = size or max(img.size)
    canvas = Image.new("RGB", (side, side), (255, 255, 255))
    n = len(items)
    if layout == "grid":
        cols = 2 if n > 1 else 1
        rows = int(np.ceil(n / cols))
        cell_w, cell_h = side // cols, side // rows
        for slot, idx in enumerate(order):
            it = items[idx]
            r, c = divmod(slot, cols)
            tw, th = _fit(it.size, (int(cell_w * 0.9), int(cell_h * 0.9)))
            piece = it.resize((tw, th), Image.Resampling.LANCZOS)
            canvas.paste(piece, (c * cell_w + (cell_w - tw) // 2, r * cell_h + (cell_h - th) // 2), piece)
    else:
        placed: list[tuple[int, int, int, int]] = []
        for idx in order:
            it = items[idx]
            scale = rng.uniform(0.42, 0.58) if n > 2 else rng.uniform(0.5, 0.72)
            tw, th = _fit(it.size, (int(side * scale), int(side * scale)))
            piece = it.resize((tw, th), Image.Resampling.LANCZOS)
            if rng.random() < 0.5:
                piece = piece.rotate(rng.uniform(-12, 12), resample=Image.Resampling.BICUBIC, expand=True)
            # A few tries at a spot that hides little of what is already there (a real collage overlaps a bit).
            best, best_overlap = (0, 0), None
            for _ in range(12):
                x = int(rng.uniform(0, max(1, side - piece.width)))
                y = int(rng.uniform(0, max(1, side - piece.height)))
                overlap = sum(
                    max(0, min(x + piece.width, b[2]) - max(x, b[0])) * max(0, min(y + piece.height, b[3]) - max(y, b[1]))
                    for b in placed
                )
                if best_overlap is None or overlap < best_overlap:
                    best, best_overlap = (x, y), overlap
                if overlap <= 0.08 * piece.width * piece.height:
                    break
            x, y = best
            placed.append((x, y, x + piece.width, y + piece.height))
            canvas.paste(piece, (x, y), piece)
    return canvas


def _shadow(size: tuple[int, int], alpha: Image.Image, offset: tuple[int, int], blur: float, strength: float) -> Image.Image:
    layer = Image.new("L", size, 0)
    layer.paste(alpha.point(lambda p: int(p * strength)), offset)
    return layer.filter(ImageFilter.GaussianBlur(blur))


def on_background(
    img: Image.Image,
    seed: Seed,
    background: int | Image.Image | None = None,
    mask: BoolArray | None = None,
    size: tuple[int, int] | None = None,
) -> Image.Image:
    """The product cut from its plain background and composited on a photograph, with a soft shadow."""
    rng = rng_of(seed)
    img = _rgb(img)
    piece = cutout(img, mask)
    if isinstance(background, Image.Image):
        photo = _rgb(background)
    else:
        choices = available_backgrounds()
        if not choices:
            photo = Image.new("RGB", (640, 640), (120, 110, 100))
        else:
            idx = background if background is not None else choices[int(rng.integers(len(choices)))]
            loaded = _background_photo(int(idx))
            if loaded is None:  # only an index passed in can name a photo whose package is not installed
                raise ValueError(f"background photo {idx} is not available")
            photo = loaded
    out_w, out_h = size or img.size
    # A random window of the photo at the output's aspect ratio, zoomed in a little.
    pw, ph = photo.size
    aspect = out_w / out_h
    zoom = rng.uniform(0.6, 1.0)
    cw = min(pw, int(min(pw, ph * aspect) * zoom))
    ch = min(ph, int(cw / aspect))
    cx = int(rng.uniform(0, pw - cw + 1))
    cy = int(rng.uniform(0, ph - ch + 1))
    bg = photo.crop((cx, cy, cx + cw, cy + ch)).resize((out_w, out_h), Image.Resampling.BICUBIC)
    if rng.random() < 0.5:
        bg = bg.filter(ImageFilter.GaussianBlur(rng.uniform(0.8, 2.5)))  # shallow depth of field
    scale = rng.uniform(0.6, 0.88)
    tw, th = _fit(piece.size, (int(out_w * scale), int(out_h * scale)))
    piece = piece.resize((tw, th), Image.Resampling.LANCZOS)
    x = int(rng.uniform(0.02, 0.98) * (out_w - tw))
    y = int(rng.uniform(0.02, 0.98) * (out_h - th))
    shadow = _shadow((out_w, out_h), piece.split()[3], (x + int(tw * 0.02), y + int(th * 0.03)), max(2, tw / 40), 0.55)
    bg = Image.composite(Image.new("RGB", bg.size, (0, 0, 0)), bg, shadow)
    bg.paste(piece, (x, y), piece)
    return bg


# --- named competitor copies ---------------------------------------------------------------------

Transform = Callable[..., Image.Image]


def _reused(img: Image.Image, rng: np.random.Generator, **_: object) -> Image.Image:
    return jpeg(rescale(img, rng), rng, 55, 85)


def _reused_crop(img: Image.Image, rng: np.random.Generator, **_: object) -> Image.Image:
    return jpeg(rescale(crop(img, rng), rng, 0.6, 1.2), rng, 45, 85)


def _low_jpeg(img: Image.Image, rng: np.random.Generator, **_: object) -> Image.Image:
    return jpeg(rescale(img, rng, 0.4, 0.8), rng, 12, 30)


def _banner(img: Image.Image, rng: np.random.Generator, text: str | None = None, **_: object) -> Image.Image:
    return jpeg(banner(rescale(img, rng, 0.7, 1.2), rng, text=text), rng, 50, 85)


def _collage(img: Image.Image, rng: np.random.Generator, others: Sequence[Image.Image] = (), **_: object) -> Image.Image:
    if not others:
        raise ValueError("collage needs other product photos")
    return jpeg(collage(img, others, rng), rng, 55, 85)


def _background(img: Image.Image, rng: np.random.Generator, **_: object) -> Image.Image:
    return jpeg(on_background(img, rng), rng, 55, 85)


def _rotated(img: Image.Image, rng: np.random.Generator, **_: object) -> Image.Image:
    return jpeg(rotate(rescale(img, rng, 0.6, 1.1), rng), rng, 50, 85)


def _rephoto(img: Image.Image, rng: np.random.Generator, **_: object) -> Image.Image:
    return rephotograph(rescale(img, rng, 0.6, 1.1), rng)


def _crop_banner(img: Image.Image, rng: np.random.Generator, text: str | None = None, **_: object) -> Image.Image:
    return jpeg(banner(crop(img, rng), rng, text=text), rng, 40, 75)


COPIES: dict[str, Transform] = {
    "reused": _reused,
    "reused_crop": _reused_crop,
    "low_jpeg": _low_jpeg,
    "banner": _banner,
    "crop_banner": _crop_banner,
    "collage": _collage,
    "background": _background,
    "rotated": _rotated,
    "rephoto": _rephoto,
}


def competitor_copy(
    img: Image.Image,
    kind: str,
    seed: Seed,
    *,
    others: Sequence[Image.Image] = (),
    text: str | None = None,
) -> Image.Image:
    """Our photo as a competitor would list it; ``kind`` is a key of ``COPIES``.

    ``others`` are other products' photos (needed by "collage"); ``text`` overrides the banner copy.
    """
    if kind not in COPIES:
        raise KeyError(f"unknown competitor copy {kind!r}; known: {sorted(COPIES)}")
    return COPIES[kind](img, rng_of(seed), others=others, text=text)
