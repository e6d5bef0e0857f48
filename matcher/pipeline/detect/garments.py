"""Garment regions on a person from the pose model's 17 COCO keypoints: 'upper' and 'lower' boxes."""
from __future__ import annotations

from typing import Literal

import numpy as np

from matcher.pipeline.types import Box

# COCO keypoint indices used for garment regions.
L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST = 5, 6, 7, 8, 9, 10
L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE = 11, 12, 13, 14, 15, 16
FACE = (0, 1, 2, 3, 4)  # nose, eyes, ears
LEGS = (L_KNEE, R_KNEE, L_ANKLE, R_ANKLE)


def _clamp(x0: float, y0: float, x1: float, y1: float, limit: Box) -> Box | None:
    box = Box(
        max(limit.x0, int(round(x0))),
        max(limit.y0, int(round(y0))),
        min(limit.x1, int(round(x1))),
        min(limit.y1, int(round(y1))),
    )
    if box.x1 - box.x0 < 16 or box.y1 - box.y0 < 16:
        return None
    return box


def garment_boxes(
    person: Box, keypoints: np.ndarray, *, min_conf: float = 0.5
) -> dict[Literal["upper", "lower"], Box]:
    """'upper' and 'lower' boxes from COCO keypoints (x, y, conf), within the person box.

    Upper: shoulders (less a collar/hood margin) to a little below the hips, as wide as
    the arms reach. Lower: a waistband margin above the hips down to the ankles, or to
    the bottom of the person box when the ankles are out of view.
    """
    seen = keypoints[:, 2] >= min_conf

    def pts(*idx: int) -> np.ndarray:
        return keypoints[[i for i in idx if seen[i]], :2]

    shoulders, hips = pts(L_SHOULDER, R_SHOULDER), pts(L_HIP, R_HIP)
    knees, ankles = pts(L_KNEE, R_KNEE), pts(L_ANKLE, R_ANKLE)
    arms = pts(L_ELBOW, R_ELBOW, L_WRIST, R_WRIST)
    box_w, box_h = person.x1 - person.x0, person.y1 - person.y0
    torso = float(hips[:, 1].mean() - shoulders[:, 1].mean()) if len(shoulders) and len(hips) else 0.0
    if torso <= 0:
        torso = 0.3 * box_h
    out: dict[Literal["upper", "lower"], Box] = {}

    if len(shoulders):
        xs = np.concatenate([shoulders[:, 0], arms[:, 0], hips[:, 0]])
        margin = 0.1 * (np.ptp(shoulders[:, 0]) if len(shoulders) == 2 else 0.25 * box_w)
        y0 = shoulders[:, 1].min() - 0.2 * torso
        y1 = hips[:, 1].max() + 0.15 * torso if len(hips) else person.y1
        box = _clamp(xs.min() - margin, y0, xs.max() + margin, y1, person)
        if box is not None:
            out["upper"] = box

    if len(hips) and (len(knees) or len(ankles)):
        xs = np.concatenate([hips[:, 0], knees[:, 0], ankles[:, 0]])
        margin = 0.2 * (np.ptp(hips[:, 0]) if len(hips) == 2 else 0.15 * box_w)
        y0 = hips[:, 1].min() - 0.2 * torso
        y1 = ankles[:, 1].max() + 0.05 * box_h if len(ankles) else person.y1
        box = _clamp(xs.min() - margin, y0, xs.max() + margin, y1, person)
        if box is not None:
            out["lower"] = box
    return out


def shows_a_body(keypoints: np.ndarray, *, min_conf: float = 0.5, sure_conf: float = 0.8) -> bool:
    """True when a face or a leg is visible.

    A top on a ghost mannequin or laid flat is detected as a headless torso with
    confident shoulders, elbows and hips, and sometimes a guessed nose at the neckline
    (seen at 0.67); on a plain background such a "person" is treated as an item instead.
    A face therefore needs one sure keypoint (a model seen from the back shows one ear
    at ~0.99) or two likely ones. Models cropped at the neck still show their legs, and
    torso-only crops lose little by becoming one item region.
    """
    face, legs = keypoints[list(FACE), 2], keypoints[list(LEGS), 2]
    return bool(face.max() >= sure_conf or (face >= min_conf).sum() >= 2 or (legs >= min_conf).any())
