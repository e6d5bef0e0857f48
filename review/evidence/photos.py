"""Each side's photos for the pair page, the one holding the best-matching region first with its box."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.files.storage import default_storage

from matcher.evidence import ImageBox

__all__ = ["BoxView", "ImageView", "box_view", "image_views"]


@dataclass(frozen=True)
class BoxView:
    """A region as percentages of the image, for an absolutely positioned outline."""

    left: str
    top: str
    width: str
    height: str

    # x/y of the box corner and its size, in 0..1, for the synced zoom (mapping one region onto the other).
    rel: tuple[str, str, str, str] = ("0", "0", "1", "1")


@dataclass
class ImageView:
    url: str
    sha: str
    width: int
    height: int
    ocr_text: str = ""
    box: BoxView | None = None
    pixel_box: list[float] | None = None  # the same region in original pixels


def _pct(value: float) -> str:
    return f"{max(0.0, min(100.0, value * 100)):.2f}"


def box_view(box: Sequence[Any], width: int, height: int) -> BoxView | None:
    """Pixel box (x0, y0, x1, y1) in the original image; a box with every value ≤ 1 is taken as relative."""
    if len(box) != 4 or not width or not height:
        return None
    x0, y0, x1, y1 = (float(v) for v in box)
    if max(x0, y0, x1, y1) > 1.0:
        x0, x1, y0, y1 = x0 / width, x1 / width, y0 / height, y1 / height
    x0, x1 = sorted((max(0.0, min(1.0, x0)), max(0.0, min(1.0, x1))))
    y0, y1 = sorted((max(0.0, min(1.0, y0)), max(0.0, min(1.0, y1))))
    if x1 - x0 <= 0 or y1 - y0 <= 0:
        return None
    return BoxView(
        left=_pct(x0),
        top=_pct(y0),
        width=_pct(x1 - x0),
        height=_pct(y1 - y0),
        rel=(f"{x0:.4f}", f"{y0:.4f}", f"{x1 - x0:.4f}", f"{y1 - y0:.4f}"),
    )


def image_views(rows: Iterable[Mapping[str, Any]] | None, best: ImageBox | None) -> list[ImageView]:
    """Images of one side, the one holding the best region first with its box."""
    views: list[ImageView] = []
    for row in rows or []:
        if not row or not row.get("file"):
            continue
        views.append(
            ImageView(
                url=default_storage.url(row["file"]),
                sha=row.get("sha") or "",
                width=int(row.get("w") or 0),
                height=int(row.get("h") or 0),
                ocr_text=(row.get("ocr") or "")[:2000],
            )
        )
    if best:
        for i, view in enumerate(views):
            if view.sha == best.image_sha:
                if best.box:
                    view.box = box_view(best.box, view.width, view.height)
                    view.pixel_box = _pixels(best.box, view.width, view.height) if view.box else None
                views.insert(0, views.pop(i))
                break
    return views


def _pixels(box: Sequence[float], width: int, height: int) -> list[float]:
    if max(box) <= 1.0:  # relative (see box_view)
        return [box[0] * width, box[1] * height, box[2] * width, box[3] * height]
    return list(box)
