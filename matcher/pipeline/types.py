"""The data that flows between pipeline stages.

Plain Python: no Django imports anywhere under matcher/pipeline/. Stages take and
return these dataclasses; the concrete class of each stage is chosen by a dotted
path in settings (see matcher/pipeline/registry.py).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, Protocol, runtime_checkable

import numpy as np
from PIL import Image

RegionKind = Literal["whole", "outfit", "upper", "lower", "item"]
Bucket = Literal["auto", "review", "reject"]


@dataclass(frozen=True)
class Box:
    """Pixel box in the original image, x1/y1 exclusive."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def area(self) -> int:
        return max(0, self.x1 - self.x0) * max(0, self.y1 - self.y0)

    def as_list(self) -> list[int]:
        return [self.x0, self.y0, self.x1, self.y1]

    def as_tuple(self) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1), as PIL's crop and GeometryMatch.within take it."""
        return (self.x0, self.y0, self.x1, self.y1)


@dataclass
class Region:
    """One place in an image worth comparing: the whole view, a garment on a person, or one item of a collage."""

    kind: RegionKind
    box: Box
    # Set by the region finder: True when the region sits on a busy (non-plain) background,
    # so background removal may change what the embedder sees.
    needs_cutout: bool = False
    score: float = 1.0
    # Pose keypoints (x, y, confidence) in original-image pixels, when a person was found.
    keypoints: list[tuple[float, float, float]] | None = None


@dataclass
class ColourSignature:
    """Colour of a garment region: a small Lab histogram plus the dominant Lab colours with weights."""

    histogram: np.ndarray  # float32, L1-normalised
    dominant_lab: np.ndarray  # (k, 3) float32
    weights: np.ndarray  # (k,) float32, sums to 1


@dataclass(frozen=True)
class RegionRef:
    """One region of one photo of a pair: which side, which photo, which region, and where it is."""

    side: Literal["ours", "theirs"]
    image: int  # index among that side's photos
    region: int  # index among that photo's regions
    kind: RegionKind
    box: Box

    def label(self) -> str:
        """How reasons name it, e.g. "ours[0].upper" (for people; code reads the fields)."""
        return f"{self.side}[{self.image}].{self.kind}"


@dataclass(frozen=True)
class AttributeConflict:
    """One attribute the two titles (or their photos' printed text) disagree on, with the words that said so.

    ours / theirs: the values each side names ("kids", "adult"; "/"-joined when several; "" when our side
    names none, as for a flag only the listing shows). ours_terms / theirs_terms: the lexicon terms (or the
    season and year codes) found in each side's text, in the normalised form matching reads them
    (NFKC, case-folded, separators removed), in the order found.
    """

    attribute: str  # the lexicon group, e.g. "audience"
    ours: str
    theirs: str
    ours_terms: list[str]
    theirs_terms: list[str]
    source: Literal["title", "ocr"]


@dataclass(frozen=True)
class KeypointMatches:
    """RANSAC inliers of the geometry check that gave the pair's keypoint evidence (at most ~60 of them).

    points: ((x_ours, y_ours), (x_theirs, y_theirs)) in original-image pixels of our photo `ours_image`
    and their photo `theirs_image`; colour_agrees says, per point, whether the local colours agree.
    """

    ours_image: int
    theirs_image: int
    points: list[tuple[tuple[float, float], tuple[float, float]]]
    colour_agrees: list[bool]


class AutoBlocker(StrEnum):
    """Why an automatic match was blocked: one per "blocks auto:" reason, in the same order."""

    COLOUR_MISMATCH = "colour_mismatch"
    PRODUCT_NUMBER_MISMATCH = "product_number_mismatch"
    LLM_ERROR = "llm_error"
    LLM_SAYS_NO = "llm_says_no"
    ATTRIBUTE_CONFLICT = "attribute_conflict"


class AutoGate(StrEnum):
    """Why there was no automatic match without a blocker: one per "no auto:" reason, in the same order."""

    TOO_FEW_AGREEING_KINDS = "too_few_agreeing_kinds"
    COLOUR_NOT_VERIFIED = "colour_not_verified"


@dataclass
class PairEvidence:
    """Evidence for one (our SKU, competitor listing) pair; the best region pair per kind wins."""

    cosine: float | None = None  # best embedding cosine over region pairs
    cosine_regions: tuple[str, str] | None = None  # which regions (ids or descriptions) gave it
    inliers: int | None = None  # RANSAC-consistent keypoint matches (same photo / print re-used)
    inlier_colour_agreement: float | None = None  # share of inliers whose local colour agrees
    colour_distance: float | None = None  # garment-region colour distance (0 same .. 1 far)
    # The same distance read through a reliable keypoint transform: our garment's pixels
    # against the very same place in their photo. Set only when geometry is trustworthy;
    # a far more precise instrument than colour_distance, so decide() gives it its own curve.
    colour_distance_in_place: float | None = None
    product_number: Literal["match", "mismatch", "absent"] = "absent"
    conflicts: list[str] = field(default_factory=list)  # e.g. ["audience: kids vs adult"]
    llm: LlmVerdict | None = None


@dataclass
class LlmVerdict:
    is_match: bool | None
    confidence: float | None
    candidate_type: str = "unknown"
    matched_features: list[str] = field(default_factory=list)
    mismatched_features: list[str] = field(default_factory=list)
    reasoning: str = ""
    model: str = ""
    prompt_version: str = ""
    error: str | None = None  # set when the call failed: never an automatic decision then
    cost_usd: str = "0"  # Decimal as string, exact; what this decision paid ("0" when cached)
    cached: bool = False  # answered from the verdict cache (paid for by an earlier run)


@dataclass
class Decision:
    confidence: float
    bucket: Bucket
    reasons: list[str]
    # The "blocks auto:" and "no auto:" reasons as enums (set by policy.decide; empty when made elsewhere).
    blockers: list[AutoBlocker] = field(default_factory=list)
    gates: list[AutoGate] = field(default_factory=list)
    # The kinds of evidence that agreed (appearance, geometry, …) and how many auto needs, for the gate's figure.
    agreeing: tuple[str, ...] = ()
    agreeing_needed: int = 0


@runtime_checkable
class RegionFinder(Protocol):
    def find(self, images: Sequence[Image.Image]) -> list[list[Region]]:
        """For each image, its regions; the first is always the whole view."""


@runtime_checkable
class BackgroundRemover(Protocol):
    name: str

    def cutout(self, images: Sequence[Image.Image]) -> list[Image.Image]:
        """Each image with its background replaced by a neutral colour (RembgRemover: studio white), same size, RGB."""


@runtime_checkable
class Embedder(Protocol):
    name: str  # e.g. "open_clip:ViT-B-32" or "efficientnet_lite2"
    checkpoint_hash: str  # sha256 prefix of the weights file
    dim: int

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(n, dim) float32, each row L2-normalised. Batched."""


class Ocr(Protocol):
    name: str

    def available(self) -> bool: ...

    def read(self, image: Image.Image) -> str: ...
