"""The keypoint overlay: both photos side by side in one SVG drawing, matched keypoints joined by lines.

Drawn by the server, so it works without JavaScript.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from matcher.evidence import EvidenceRecord
from review.evidence.photos import ImageView

__all__ = ["KeypointOverlay", "OverlayImage", "OverlayLine", "keypoint_overlay"]


@dataclass(frozen=True)
class OverlayImage:
    url: str
    x: str
    width: str
    height: str
    box: tuple[str, str, str, str] | None  # x, y, width, height in the drawing's units


@dataclass(frozen=True)
class OverlayLine:
    x1: str
    y1: str
    x2: str
    y2: str
    colour: str


@dataclass(frozen=True)
class KeypointOverlay:
    """Both photos side by side in one SVG drawing, each matched keypoint pair joined by a line."""

    width: str
    height: str
    ours: OverlayImage
    theirs: OverlayImage
    lines: list[OverlayLine]

    @property
    def count(self) -> int:
        return len(self.lines)


_OVERLAY_HEIGHT = 1000.0  # both photos drawn this tall; the SVG scales to the space it has
_OVERLAY_GAP = 40.0


def _n(value: float) -> str:
    return f"{value:.1f}"


def keypoint_overlay(
    record: EvidenceRecord, ours: Sequence[ImageView], theirs: Sequence[ImageView]
) -> KeypointOverlay | None:
    """The record's keypoint matches drawn between the two photos they join (None without both photos)."""
    kp = record.keypoints
    if kp is None or not kp.pairs:
        return None
    a = next((v for v in ours if v.sha == kp.ours_sha and v.width and v.height), None)
    b = next((v for v in theirs if v.sha == kp.theirs_sha and v.width and v.height), None)
    if a is None or b is None:
        return None
    sa, sb = _OVERLAY_HEIGHT / a.height, _OVERLAY_HEIGHT / b.height
    wa, wb = a.width * sa, b.width * sb
    offset = wa + _OVERLAY_GAP

    def image(view: ImageView, x: float, scale: float) -> OverlayImage:
        box = None
        if view.pixel_box:
            x0, y0, x1, y1 = view.pixel_box
            box = (_n(x + x0 * scale), _n(y0 * scale), _n((x1 - x0) * scale), _n((y1 - y0) * scale))
        return OverlayImage(view.url, _n(x), _n(view.width * scale), _n(_OVERLAY_HEIGHT), box)

    lines = [
        OverlayLine(_n(xa * sa), _n(ya * sa), _n(offset + xb * sb), _n(yb * sb), f"hsl({(i * 47) % 360},85%,45%)")
        for i, (xa, ya, xb, yb) in enumerate(kp.pairs)
        if xa <= a.width and ya <= a.height and xb <= b.width and yb <= b.height
    ]
    if not lines:
        return None
    return KeypointOverlay(
        width=_n(offset + wb), height=_n(_OVERLAY_HEIGHT), ours=image(a, 0.0, sa), theirs=image(b, offset, sb),
        lines=lines,
    )
