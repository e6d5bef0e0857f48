"""What the pair page shows of a decision's evidence, built from `matcher.evidence.EvidenceRecord` only.

Untrusted text (titles, OCR, LLM reasoning) stays plain: highlighted parts are `Segment`s the template
escapes one by one. Figures become short Korean sentences; the English detail stays behind a toggle.
Calibration and QC ask `is_auto_blocked` / `blocked_reasons` (or `auto_blocked_q` in SQL), never the reasons.

- view.py       `record_of(match)`, `evidence_view(record)`: the evidence panel
- sentences.py  blockers and gates as Korean sentences (`blocked_reasons`, `is_auto_blocked`)
- highlight.py  `title_segments`: product numbers and conflicting terms marked in a title or OCR text
- photos.py     `image_views`, `box_view`: each side's photos with the best region's box
- keypoints.py  `keypoint_overlay`: the matched keypoints drawn between the two photos
- llm.py        the LLM's verdict, cost, or that it is awaited
"""
from __future__ import annotations

from matcher.evidence import auto_blocked_q
from review.evidence.highlight import Segment, title_segments
from review.evidence.keypoints import KeypointOverlay, keypoint_overlay
from review.evidence.llm import LlmView
from review.evidence.photos import BoxView, ImageView, box_view, image_views
from review.evidence.sentences import ReasonLine, blocked_reasons, is_auto_blocked
from review.evidence.view import ConflictLine, EvidenceView, evidence_view, record_of

__all__ = [
    "BoxView", "ConflictLine", "EvidenceView", "ImageView", "KeypointOverlay", "LlmView", "ReasonLine", "Segment",
    "auto_blocked_q", "blocked_reasons", "box_view", "evidence_view", "image_views", "is_auto_blocked",
    "keypoint_overlay", "record_of", "title_segments",
]
