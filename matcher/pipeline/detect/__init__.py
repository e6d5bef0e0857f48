"""Where to look in a photo: the whole view, garments on people, items of a collage.

No clothing detector ships in any package registry, so garment regions come from two
plain sources:
- on-model shots: a YOLO pose model's person box and 17 COCO keypoints (shoulders,
  hips, knees, ankles) give 'outfit', 'upper' and 'lower' regions;
- no person: if the background is plain (studio white, a flat colour), the foreground
  is split into items by colour distance to the background plus edges, morphology and
  connected components; a busy background without a person gives only the whole view,
  flagged for background removal.

Modules:
- background.py: plain or busy (`background_of`), and the items on a plain one (`split_items`);
- garments.py: 'upper' and 'lower' boxes from keypoints, and whether a "person" shows a body;
- pose_model.py: the YOLO pose model, loaded once per process in PyTorch or OpenVINO (RUNTIMES);
- finder.py: PoseRegionFinder, the stage settings name ("matcher.pipeline.detect.PoseRegionFinder").
"""
from matcher.pipeline.detect.background import (
    ANALYSIS_SIDE,
    Background,
    WorkingCopy,
    background_of,
    border_texture_of,
    split_items,
)
from matcher.pipeline.detect.finder import PoseRegionFinder
from matcher.pipeline.detect.garments import garment_boxes, shows_a_body
from matcher.pipeline.detect.pose_model import RUNTIMES, compiled_precision, export_openvino, openvino_dir_for

__all__ = [
    "ANALYSIS_SIDE",
    "RUNTIMES",
    "Background",
    "PoseRegionFinder",
    "WorkingCopy",
    "background_of",
    "border_texture_of",
    "compiled_precision",
    "export_openvino",
    "garment_boxes",
    "openvino_dir_for",
    "shows_a_body",
    "split_items",
]
