"""Text evidence: attribute conflicts and product numbers (품번), from titles and from text printed on photos.

Plain Python, no Django. The lexicon's rules (what a term means, when two values conflict, what
looks like a product number) are in attributes/; this module applies them to a pair.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from matcher.pipeline.analysis import AnalysisCache, ImageAnalysis
from matcher.pipeline.attributes import (
    Attributes,
    AttributeTerms,
    Conflict,
    Lexicon,
    ProductNumber,
    ProductNumberOutcome,
    compare_product_numbers,
    extract_product_numbers,
    extract_with_terms,
    find_conflicts,
    garment_region_kind,
    parse_product_number,
)
from matcher.pipeline.inputs import ImageInput, ListingSide, SkuSide
from matcher.pipeline.timings import StageCounts
from matcher.pipeline.types import AttributeConflict, Ocr, RegionKind

OCR_CONFLICT_SUFFIX = " (사진 속 글자 OCR)"


@dataclass
class TitleEvidence:
    """What the two titles (and our catalogue's product number) say about a pair."""

    our_attributes: Attributes
    our_terms: AttributeTerms  # empty when our attributes were given rather than read from the title
    garment: RegionKind | None  # where on a person our garment sits, from our title
    our_numbers: list[ProductNumber]
    product_number: ProductNumberOutcome
    conflicts: list[str]  # reasons for people, as PairEvidence.conflicts
    conflict_details: list[AttributeConflict]  # the same conflicts, typed, in the same order


def read_titles(ours: SkuSide, theirs: ListingSide, lexicon: Lexicon) -> TitleEvidence:
    """Attributes, conflicts and product numbers of the two sides' titles.

    Our product number is the catalogue's when it parses, else any in our title."""
    our_terms: AttributeTerms
    if ours.attributes is not None:
        our_attrs, our_terms = ours.attributes, {}
    else:
        our_attrs, our_terms = extract_with_terms(ours.title, lexicon)
    their_attrs, their_terms = extract_with_terms(theirs.title, lexicon)
    our_numbers: list[ProductNumber] = []
    if ours.product_number:
        parsed = parse_product_number(ours.product_number)
        our_numbers = [parsed] if parsed else []
    if not our_numbers:
        our_numbers = extract_product_numbers(ours.title)
    found = find_conflicts(our_attrs, their_attrs, lexicon)
    return TitleEvidence(
        our_attributes=our_attrs,
        our_terms=our_terms,
        garment=garment_region_kind(our_attrs),
        our_numbers=our_numbers,
        product_number=compare_product_numbers(our_numbers, extract_product_numbers(theirs.title)),
        conflicts=[c.reason for c in found],
        conflict_details=[conflict_detail(c, our_terms, their_terms, "title") for c in found],
    )


def conflict_detail(
    conflict: Conflict, our_terms: AttributeTerms, their_terms: AttributeTerms, source: Literal["title", "ocr"]
) -> AttributeConflict:
    """The typed form of a conflict, with the words of each side's text that named its values."""
    return AttributeConflict(
        attribute=conflict.group,
        ours="/".join(sorted(conflict.ours)),
        theirs="/".join(sorted(conflict.theirs)),
        ours_terms=_terms_of(conflict.group, conflict.ours, our_terms),
        theirs_terms=_terms_of(conflict.group, conflict.theirs, their_terms),
        source=source,
    )


def _terms_of(group: str, values: frozenset[str], terms: AttributeTerms) -> list[str]:
    out: list[str] = []
    for value in sorted(values):
        out += [t for t in terms.get((group, value), []) if t not in out]
    return out


def number_in_photos(our_numbers: Sequence[ProductNumber], texts: Sequence[str]) -> bool:
    """Whether the text read from their photos confirms our product number.

    OCR misreads are common: a number read from a photo may confirm ours but never counts against it."""
    found = [pn for text in texts for pn in extract_product_numbers(text)]
    return compare_product_numbers(our_numbers, found, ocr_tolerant=True) == "match"


def printed_conflicts(
    our_attributes: Attributes, our_terms: AttributeTerms, texts: Sequence[str], lexicon: Lexicon,
    known: Sequence[str],
) -> tuple[list[str], list[AttributeConflict]]:
    """Conflicts the text printed on their photos raises that `known` (the pair's conflicts) lacks.

    Returns the reasons (each with OCR_CONFLICT_SUFFIX) and their typed forms, in the same order."""
    printed, printed_terms = extract_with_terms("\n".join(texts), lexicon, ocr=True)
    seen = {c.removesuffix(OCR_CONFLICT_SUFFIX) for c in known}
    found = [c for c in find_conflicts(our_attributes, printed, lexicon) if c.reason not in seen]
    return (
        [f"{c.reason}{OCR_CONFLICT_SUFFIX}" for c in found],
        [conflict_detail(c, our_terms, printed_terms, "ocr") for c in found],
    )


def ocr_signature(ocr: Ocr) -> str:
    """Which OCR (engine and settings) read a text: Ocr.signature, else its name."""
    signature: str | None = getattr(ocr, "signature", None)
    if signature:
        return signature
    name: str = getattr(ocr, "name", type(ocr).__name__)
    return name


class PhotoText:
    """The text printed on a listing's first photos, read by OCR once and kept with each photo's analysis.

    ocr: None reads nothing (texts already cached are still used). max_images: photos read at most.
    """

    def __init__(self, ocr: Ocr | None, cache: AnalysisCache, max_images: int) -> None:
        self.ocr = ocr
        self.cache = cache
        self.max_images = max_images

    def is_read(self, analysis: ImageAnalysis) -> bool:
        """Whether the photo's text is known, read by this OCR (a text read by another is read again)."""
        if analysis.ocr_text is None:
            return False
        return self.ocr is None or analysis.ocr_engine == ocr_signature(self.ocr)

    def all_read(self, analyses: Sequence[ImageAnalysis]) -> bool:
        return all(self.is_read(a) for a in analyses[: self.max_images])

    def texts(self, images: Sequence[ImageInput], analyses: Sequence[ImageAnalysis], stats: StageCounts) -> list[str]:
        """The text of each of the first max_images photos, reading those not read yet.

        Precondition: analyses[k] is the analysis of images[k]."""
        texts = []
        for ref, analysis in list(zip(images, analyses))[: self.max_images]:
            if self.ocr is not None and not self.is_read(analysis):
                analysis.ocr_text = self.ocr.read(ref.load())
                analysis.ocr_engine = ocr_signature(self.ocr)
                stats.ocr_images += 1
                self.cache.put(analysis)
            texts.append(analysis.ocr_text or "")
        return texts
