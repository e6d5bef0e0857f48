"""Where a photo can carry text, cheaply, so Tesseract reads only photos (and parts) that can.

Tesseract costs ~0.3-0.5 CPU s per pass on a listing photo, most of it spent recognising
"lines" it finds in fabric, zips and backgrounds. This finder costs ~10-15 ms: strong edges
(a morphological gradient), their connected pieces of character height, and pieces grouped into
horizontal lines of at least three characters of similar height. It is tuned to miss nothing
Tesseract can read (brand labels 8 px tall, banners, printed slogans); a zip or a quilting seam
that passes for a line only costs the OCR it would have cost anyway.

Plain numpy + OpenCV; no model (none ships in a package registry).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from matcher.pipeline.types import Box


@dataclass(frozen=True)
class TextLineFinder:
    """Boxes of text-like lines in a greyscale photo.

    max_side: the photo is searched at most this size (longer side).
    min_char_px: characters shorter than this (in the full-size photo) are ignored; Tesseract does
        not read them either.
    min_contrast: the smallest edge strength (grey levels across 3 px) that counts as a stroke.
    min_chars: a line needs at least this many characters (a word piece counts as its width over
        0.8 of its height).
    """

    max_side: int = 1200
    min_char_px: int = 5
    min_contrast: int = 40
    min_chars: int = 3

    def find(self, grey: np.ndarray) -> list[Box]:
        import cv2

        full_h, full_w = grey.shape[:2]
        scale = min(1.0, self.max_side / max(full_h, full_w))
        if scale < 1.0:
            grey = cv2.resize(grey, (round(full_w * scale), round(full_h * scale)), interpolation=cv2.INTER_AREA)
        h, w = grey.shape
        gradient = cv2.morphologyEx(grey, cv2.MORPH_GRADIENT, cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3)))
        strokes = (gradient >= self.min_contrast).astype(np.uint8)
        _, _, stats, _ = cv2.connectedComponentsWithStats(strokes, connectivity=8)
        x, y, cw, ch, area = (stats[1:, i] for i in range(5))
        # Character (or, at small sizes, whole-word) pieces: not a speck, not taller than a quarter
        # of the photo (of half its width, for a strip wider than twice its height: a label or a
        # banner cut out on its own has letters of half its height), not a long rule, and not a
        # hollow outline of something large.
        tallest = max(self.min_char_px + 1, 0.25 * max(h, w / 2))
        piece = (
            (ch >= self.min_char_px * scale) & (ch <= tallest)
            & (cw <= 20 * ch) & (cw >= 0.08 * ch) & (area >= 0.12 * cw * ch)
        )
        idx = np.nonzero(piece)[0]
        if len(idx) == 0:
            return []
        # Pieces on one text line: each piece's middle band, widened by 0.6 of its height on both
        # sides, touches its neighbours'. Pieces are grouped within classes of similar height
        # (overlapping, a factor 1.6 either side), so a fold or a seam next to a small label
        # cannot outvote the label's letters.
        out: list[tuple[int, int, int, int]] = []
        centre = float(self.min_char_px * scale)
        while centre <= ch[idx].max() * 1.6:
            members = idx[(ch[idx] >= centre / 1.6) & (ch[idx] <= centre * 1.6)]
            centre *= 1.5
            if len(members):
                out += self._lines(members, x, y, cw, ch, h, w)
        # Overlapping classes find a line more than once.
        boxes = sorted({(int(x0 / scale), int(y0 / scale), min(full_w, int(np.ceil(x1 / scale))),
                         min(full_h, int(np.ceil(y1 / scale)))) for x0, y0, x1, y1 in out})
        return [Box(*b) for b in boxes]

    def _lines(self, idx: np.ndarray, x, y, cw, ch, h: int, w: int) -> list[tuple[int, int, int, int]]:
        """Lines among pieces of similar height: (x0, y0, x1, y1) in the searched image."""
        import cv2

        # The mask covers only the members' reach, at a coarser grid for tall pieces (the bands
        # of 20 px letters need no pixel accuracy to touch): labelling it is what costs here.
        step = max(1, int(np.median(ch[idx]) // 8))
        pad = (0.6 * ch[idx]).astype(np.int64) + 1
        left, right = x[idx] - pad, x[idx] + cw[idx] + pad
        top, bottom = y[idx] + (0.2 * ch[idx]).astype(np.int64), y[idx] + (0.8 * ch[idx]).astype(np.int64)
        ox, oy = max(0, int(left.min())), max(0, int(top.min()))
        lines = np.zeros(((int(bottom.max()) - oy) // step + 2, (int(right.max()) - ox) // step + 2), np.uint8)
        for x0, y0, x1, y1 in zip((left - ox) // step, (top - oy) // step, (right - ox) // step, (bottom - oy) // step):
            cv2.rectangle(lines, (int(x0), int(y0)), (int(x1), int(y1)), 1, -1)
        count, labels = cv2.connectedComponents(lines, connectivity=4)
        cx = np.clip((x[idx] + cw[idx] // 2 - ox) // step, 0, lines.shape[1] - 1)
        cy = np.clip((y[idx] + ch[idx] // 2 - oy) // step, 0, lines.shape[0] - 1)
        line_of = labels[cy, cx]
        out = []
        for line in range(1, count):
            members = idx[line_of == line]
            if len(members) == 0:
                continue
            heights = ch[members]
            median = float(np.median(heights))
            chars = np.maximum(1, np.round(cw[members] / (0.8 * heights)))
            reach = (right[line_of == line].max() - left[line_of == line].min())
            if chars.sum() < self.min_chars or reach < 2.5 * median:
                continue
            out.append((x[members].min(), y[members].min(), (x[members] + cw[members]).max(),
                        (y[members] + ch[members]).max()))
        return out

