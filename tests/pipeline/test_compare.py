"""PairComparer end to end on real photos and real stages (pose, EfficientNet-Lite2).

Background removal and OCR are doubles here: these tests are about when the cascade calls
them, not about their accuracy (test_segment.py and test_ocr.py cover that).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from matcher.pipeline.attributes import Lexicon
from matcher.pipeline.cascade import could_change_bucket
from matcher.pipeline.compare import (
    ImageAnalysis,
    ImageInput,
    ListingSide,
    MemoryAnalysisCache,
    PairComparer,
    SkuSide,
)
from matcher.pipeline.evidence.colour import garment as garment_colour
from matcher.pipeline.evidence.colour import signature
from matcher.pipeline.policy import DecisionPolicy, decide
from tests.pipeline.test_features import banner, crop_rescale, garment, jpeg, recolour


class CountingRemover:
    """Replaces nothing; counts calls."""

    name = "counting"

    def __init__(self) -> None:
        self.calls = 0

    def cutout(self, images):
        self.calls += len(images)
        return [im.copy() for im in images]


class FixedOcr:
    name = "fixed"

    def __init__(self, text: str, available: bool = True) -> None:
        self.text, self._available, self.calls = text, available, 0

    def available(self) -> bool:
        return self._available

    def read(self, image: Image.Image) -> str:
        self.calls += 1
        return self.text


@pytest.fixture
def make_comparer(pose_finder, efficientnet):
    def make(**kwargs) -> PairComparer:
        kwargs.setdefault("policy", DecisionPolicy())
        return PairComparer(finder=pose_finder, embedder=efficientnet, lexicon=Lexicon.load(), **kwargs)

    return make


def sku(*images: Image.Image, title: str = "", product_number: str | None = None) -> SkuSide:
    return SkuSide(images=[ImageInput.from_image(im) for im in images], title=title, product_number=product_number)


def listing(*images: Image.Image, title: str = "") -> ListingSide:
    return ListingSide(images=[ImageInput.from_image(im) for im in images], title=title)


def test_our_photo_reused_with_a_banner_is_an_automatic_match(luma, make_comparer):
    ours = luma("mj02-orange_main.jpg")
    result = make_comparer().compare(sku(ours, title="남성 경량 자켓 오렌지"), listing(banner(ours), title="경량 자켓"))
    assert result.decision.bucket == "auto"
    assert result.evidence.inliers >= 20 and result.evidence.inlier_colour_agreement >= 0.9
    assert result.evidence.cosine_regions[0].startswith("ours[0].")
    assert result.garment_kind == "upper"


def test_a_title_conflict_stops_the_automatic_match(luma, make_comparer):
    ours = luma("mj02-orange_main.jpg")
    result = make_comparer().compare(
        sku(ours, title="남성 경량 자켓"), listing(crop_rescale(ours), title="[해외배송] 키즈 경량 자켓")
    )
    assert result.decision.bucket == "review"
    assert any("kids" in c for c in result.evidence.conflicts)
    assert any("overseas" in c for c in result.evidence.conflicts)


def test_a_recoloured_copy_of_our_photo_is_rejected(luma, pose_finder, make_comparer):
    ours = luma("wj09-blue_main.jpg")
    mask = garment_colour.garment_mask(np.asarray(ours), garment(pose_finder.find([ours])[0], "upper"))
    result = make_comparer().compare(sku(ours), listing(jpeg(recolour(ours, mask, hue_shift=90), 85)))
    assert result.evidence.inliers >= 30
    assert result.decision.bucket == "reject"


def test_the_same_style_in_another_colour_is_rejected(luma, make_comparer):
    result = make_comparer().compare(sku(luma("mh02-black_main.jpg")), listing(luma("mh02-red_main.jpg")))
    assert result.evidence.cosine > 0.8  # alike in every way but colour
    assert result.decision.bucket == "reject"


def test_another_view_of_our_product_goes_to_review_and_names_the_best_pair(luma, make_comparer):
    ours = [luma("mh02-black_main.jpg"), luma("mh02-black_alt1.jpg")]
    result = make_comparer().compare(sku(*ours, title="Teton Pullover Hoodie"), listing(luma("mh02-black_back.jpg")))
    assert result.decision.bucket == "review"
    assert result.best_images is not None and result.best_images[1] == 0
    assert len(result.geometry_pairs) == 2  # both of our photos were checked against theirs


def test_a_product_number_mismatch_stops_even_a_reused_photo(luma, make_comparer):
    ours = luma("mj02-orange_main.jpg")
    result = make_comparer().compare(
        sku(ours, title="경량 자켓", product_number="MJ02-ORG"), listing(banner(ours), title="경량 자켓 MJ03-ORG")
    )
    assert result.evidence.product_number == "mismatch"
    assert result.decision.bucket != "auto"


def test_nothing_is_computed_twice(luma, make_comparer):
    cache = MemoryAnalysisCache()
    comparer = make_comparer(cache=cache)
    ours, theirs = luma("wt05-purple_main.jpg"), crop_rescale(luma("wt05-purple_main.jpg"))
    first = comparer.compare(sku(ours), listing(theirs))
    second = comparer.compare(sku(ours), listing(theirs))
    assert first.stats.embedded_crops > 0 and first.stats.keypoint_images == 2
    assert second.stats.cache_hits == 2
    assert (second.stats.region_images, second.stats.embedded_crops, second.stats.keypoint_images) == (0, 0, 0)
    assert second.decision.confidence == pytest.approx(first.decision.confidence)


def test_our_garment_is_read_once_per_photo_and_every_listing_gets_the_readings_of_a_fresh_comparer(luma, make_comparer):
    ours = luma("mj02-orange_main.jpg")
    side = sku(ours, title="남성 경량 자켓 오렌지")
    # Whole garment inside their photo (the banner keeps the frame), and only part of it (the crop).
    listings = [listing(banner(ours)), listing(crop_rescale(ours)), listing(jpeg(ours, 70))]
    cache = MemoryAnalysisCache()
    shared = make_comparer(cache=cache)
    reused = [shared.compare(side, one) for one in listings]
    assert len(shared.geometry._garments) == 1
    read = shared.geometry._garments[next(iter(shared.geometry._garments))]
    assert "signature" in read.__dict__  # read once, then served to the later listings
    for one, got in zip(listings, reused):
        fresh = make_comparer(cache=cache).compare(side, one)
        assert got.evidence == fresh.evidence and got.geometry_pairs == fresh.geometry_pairs
    # A part of the garment is read as that part, never as the whole.
    keep = np.zeros_like(read.mask)
    keep[: keep.shape[0] // 2] = True
    part, direct = read.signature_within(keep), signature.colour_signature_in_mask(read.image, read.mask & keep)
    assert np.array_equal(part.dominant_lab, direct.dominant_lab) and np.array_equal(part.histogram, direct.histogram)
    assert not np.array_equal(part.histogram, read.signature.histogram)
    assert read.signature_within(np.ones_like(read.mask)) is read.signature


def test_an_unreadable_photo_is_reported_and_the_others_are_analysed(luma, make_comparer):
    from matcher.pipeline.compare import StageCounts

    def missing():
        raise FileNotFoundError("images/2026/11/gone.jpg")

    good = ImageInput.from_image(luma("mj02-orange_main.jpg"))
    junk = ImageInput.from_bytes(b"not an image", label="junk")
    gone = ImageInput(sha256="0" * 64, loader=missing, label="gone")
    comparer = make_comparer()
    with pytest.raises(FileNotFoundError):
        comparer.analyse([good, gone])  # without a place to report it, the error stands

    reported: dict[str, str] = {}
    stats = StageCounts()
    comparer = make_comparer()
    out = comparer.analyse(
        [junk, good, gone], stats, on_unreadable=lambda ref, exc: reported.update({ref.label: type(exc).__name__})
    )
    assert [a.sha256 for a in out] == [good.sha256]
    assert out[0].regions and out[0].embeddings.shape[0] == len(out[0].regions)
    assert reported == {"junk": "UnidentifiedImageError", "gone": "FileNotFoundError"}
    assert stats.unreadable_images == 2 and stats.region_images == 1


def test_an_analysis_round_trips_through_bytes(luma, make_comparer):
    cache = MemoryAnalysisCache()
    ref = ImageInput.from_image(luma("mh02-black_main.jpg"))
    comparer = make_comparer(cache=cache)
    comparer.compare(sku(ref.image), listing(luma("mh02-black_back.jpg")))
    analysis = cache.get(ref.sha256)
    restored = ImageAnalysis.from_bytes(analysis.to_bytes())
    assert [r.kind for r in restored.regions] == [r.kind for r in analysis.regions]
    np.testing.assert_allclose(np.array(restored.regions[1].keypoints), np.array(analysis.regions[1].keypoints))
    np.testing.assert_allclose(restored.embeddings, analysis.embeddings)
    assert signature.colour_distance(restored.colours[-1], analysis.colours[-1]) == pytest.approx(0.0, abs=1e-6)
    assert len(restored.keypoints) == len(analysis.keypoints)


def test_background_removal_runs_only_near_a_threshold_and_only_on_busy_backgrounds(luma, brick, compose, make_comparer):
    on_brick, _ = compose([luma("mj02-green_main.jpg")], (700, 800), fill=brick)
    studio = luma("mj02-green_back.jpg")

    remover = CountingRemover()
    make_comparer(remover=remover, cascade_margin=1.0).compare(sku(studio), listing(on_brick))
    assert remover.calls >= 1  # the street-like photo's regions need a cut-out

    remover = CountingRemover()
    make_comparer(remover=remover, cascade_margin=1.0).compare(sku(studio), listing(luma("mj02-green_main.jpg")))
    assert remover.calls == 0  # white studio on both sides: nothing to cut out

    remover = CountingRemover()
    result = make_comparer(remover=remover, cascade_margin=0.0).compare(sku(studio), listing(on_brick))
    assert remover.calls == 0 and result.stats.cutout_images == 0  # not near a threshold


def test_background_removal_is_skipped_when_a_cut_out_could_not_change_the_bucket(luma, brick, compose, make_comparer):
    # Our own photo pasted on a brick wall: the keypoint transform reads the colour in place, so a
    # cut-out could only raise the cosine, and the pair is settled without it.
    ours = luma("mj02-green_main.jpg")
    on_brick, _ = compose([ours], (700, 800), fill=brick)
    remover = CountingRemover()
    result = make_comparer(remover=remover, cascade_margin=1.0).compare(sku(ours), listing(on_brick))
    assert result.evidence.colour_distance_in_place is not None
    assert remover.calls == 0 and result.stats.cutout_images == 0 and result.stats.cutout_skipped == 1


# Front and back of one hoodie: cosine 0.82, colour 0.29. Under this policy appearance agrees and
# colour need not be verified, so a confirmed product number (a second agreeing kind) decides
# between review and auto, and OCR is worth running.
NUMBER_DECIDES = DecisionPolicy(cosine_agree=0.8, auto_requires_colour=False)


def test_ocr_can_confirm_a_product_number_the_title_lacks(luma, make_comparer):
    ours = luma("mh02-black_main.jpg")
    theirs = luma("mh02-black_back.jpg")
    ocr = FixedOcr("상품정보\n품번: MH02BLKI5 / 블랙")  # as Tesseract reads it: 1 read as I
    result = make_comparer(ocr=ocr, cascade_margin=1.0, policy=NUMBER_DECIDES).compare(
        sku(ours, product_number="MH02BLK15"), listing(theirs, title="풀오버 후디")
    )
    assert ocr.calls == 1 and result.stats.ocr_images == 1
    assert result.evidence.product_number == "match"

    ocr = FixedOcr("품번 ZZ99999")
    result = make_comparer(ocr=ocr, cascade_margin=1.0, policy=NUMBER_DECIDES).compare(
        sku(ours, product_number="MH02BLK15"), listing(theirs, title="풀오버 후디")
    )
    assert ocr.calls == 1
    assert result.evidence.product_number == "absent"  # a number read from a photo never counts against us

    ocr = FixedOcr("MH02BLK15")
    make_comparer(ocr=ocr, cascade_margin=1.0).compare(
        sku(ours, product_number="MH02BLK15"), listing(theirs, title="풀오버 후디 MH02BLK15")
    )
    assert ocr.calls == 0  # the title already settles it


def test_ocr_for_a_product_number_is_skipped_when_a_confirmed_number_could_not_change_the_bucket(luma, make_comparer):
    # Default policy: the garment colour (0.29) is not verified, so even our number plus an agreeing
    # LLM verdict leave the pair in review; reading the photo would change nothing.
    ocr = FixedOcr("품번: MH02BLK15")
    result = make_comparer(ocr=ocr, cascade_margin=1.0).compare(
        sku(luma("mh02-black_main.jpg"), product_number="MH02BLK15"),
        listing(luma("mh02-black_back.jpg"), title="풀오버 후디"),
    )
    assert ocr.calls == 0 and result.stats.ocr_images == 0 and result.stats.ocr_skipped == 1
    assert result.decision.bucket == "review" and result.evidence.product_number == "absent"


def test_ocr_reads_banners_before_every_automatic_match_even_when_the_number_is_known(luma, make_comparer):
    # The title settles the number and the photo is ours re-used: auto, unless the photo says otherwise.
    ours = luma("wt05-purple_main.jpg")
    theirs = crop_rescale(ours)
    clean = FixedOcr("")
    result = make_comparer(ocr=clean, cascade_margin=1.0).compare(
        sku(ours, product_number="WT05PUR"), listing(theirs, title="WT05PUR 티셔츠")
    )
    assert result.decision.bucket == "auto" and clean.calls == 1

    refurb = FixedOcr("리퍼 상품")
    result = make_comparer(ocr=refurb, cascade_margin=1.0).compare(
        sku(ours, product_number="WT05PUR"), listing(theirs, title="WT05PUR 티셔츠")
    )
    assert refurb.calls == 1 and result.decision.bucket != "auto"
    assert any("OCR" in c for c in result.evidence.conflicts)


def test_a_text_cached_from_another_ocr_is_read_again_and_one_from_the_same_is_not(luma, make_comparer):
    from matcher.pipeline.compare import MemoryAnalysisCache

    ours = luma("wt05-purple_main.jpg")
    theirs = crop_rescale(ours)
    cache = MemoryAnalysisCache()

    def run(ocr):
        return make_comparer(ocr=ocr, cascade_margin=1.0, cache=cache).compare(
            sku(ours, product_number="WT05PUR"), listing(theirs, title="WT05PUR 티셔츠")
        )

    old = FixedOcr("")
    assert run(old).decision.bucket == "auto" and old.calls == 1
    # An upgraded OCR (another signature) reads the cached photo again and finds the banner.
    upgraded = FixedOcr("리퍼 상품")
    upgraded.signature = "fixed:v2"
    assert run(upgraded).decision.bucket != "auto" and upgraded.calls == 1
    again = FixedOcr("never read")
    again.signature = "fixed:v2"
    result = run(again)
    assert again.calls == 0 and any("OCR" in c for c in result.evidence.conflicts)


def test_an_unavailable_ocr_is_skipped(luma, make_comparer):
    ocr = FixedOcr("MH02BLK15", available=False)
    comparer = make_comparer(ocr=ocr, cascade_margin=1.0)
    assert comparer.ocr is None
    comparer.compare(sku(luma("mh02-black_main.jpg"), product_number="MH02BLK15"), listing(luma("mh02-black_back.jpg")))
    assert ocr.calls == 0


# --- the outcome gates, on evidence alone (no models) ----------------------------------------------


class _NoStage:
    name = "none"
    checkpoint_hash = "-"
    dim = 4


def _gate_comparer() -> PairComparer:
    return PairComparer(finder=_NoStage(), embedder=_NoStage(), lexicon=Lexicon.load(), policy=DecisionPolicy())


def test_a_confirmed_number_is_worth_reading_only_where_it_could_move_the_bucket():
    from matcher.pipeline.types import LlmVerdict, PairEvidence

    comparer = _gate_comparer()
    number = lambda ev: replace(ev, product_number="match")  # noqa: E731

    # Appearance agrees and the colour is verified: our number is the second kind auto needs.
    one_kind = PairEvidence(cosine=0.9, colour_distance=0.1)
    assert could_change_bucket(one_kind, comparer.policy, number(one_kind))

    # No agreeing kind at all: the number alone leaves it in review, but with an agreeing LLM
    # verdict (which may still come) it makes two kinds: worth reading.
    no_kind = PairEvidence(cosine=0.75, colour_distance=0.1)
    assert could_change_bucket(no_kind, comparer.policy, number(no_kind))
    # A verifier that already said no keeps it from auto, but the number still decides between
    # reject and review, so the photo is still worth reading.
    said_no = replace(no_kind, llm=LlmVerdict(is_match=False, confidence=0.9))
    assert decide(said_no, DecisionPolicy()).bucket == "reject"
    assert decide(number(said_no), DecisionPolicy()).bucket == "review"
    assert could_change_bucket(said_no, comparer.policy, number(said_no))

    # Already auto with room to spare, or blocked by a title conflict: the number changes nothing.
    certain = PairEvidence(cosine=0.95, inliers=80, inlier_colour_agreement=0.97, colour_distance=0.05)
    assert not could_change_bucket(certain, comparer.policy, number(certain))
    kids = PairEvidence(cosine=0.95, colour_distance=0.05, conflicts=["audience: kids vs adult"])
    assert not could_change_bucket(kids, comparer.policy, number(kids))


def test_a_cut_out_is_skipped_only_when_neither_a_perfect_cosine_nor_any_region_colour_could_move_the_bucket():
    from matcher.pipeline.compare import StageCounts
    from matcher.pipeline.types import PairEvidence

    comparer = _gate_comparer()
    stats = StageCounts()
    # Re-used photo read in place: auto already, a cut-out can only raise the cosine.
    reused = PairEvidence(cosine=0.9, inliers=90, inlier_colour_agreement=0.97, colour_distance=0.4,
                          colour_distance_in_place=0.1)
    assert comparer._cutout_could_matter(reused, None, stats) is False and stats.cutout_skipped == 1
    # The same pair without an in-place reading: the cut-out's region colour could block it.
    by_region = replace(reused, colour_distance_in_place=None, colour_distance=0.1)
    assert comparer._cutout_could_matter(by_region, None, stats) is True and stats.cutout_skipped == 1
    # With the gates off it always runs (the rule before the gates).
    comparer.outcome_gates = False
    assert comparer._cutout_could_matter(reused, None, stats) is True


# --- typed outputs for the evidence record (they never change a decision) ---------------------------


def test_a_reused_photo_names_its_best_regions_boxes_and_drawable_keypoint_matches(luma, make_comparer):
    ours = luma("mj02-orange_main.jpg")
    theirs = banner(ours)
    result = make_comparer().compare(sku(ours, title="남성 경량 자켓 오렌지"), listing(theirs, title="경량 자켓"))
    ref_a, ref_b = result.best_regions
    assert result.evidence.cosine_regions == (ref_a.label(), ref_b.label())
    assert result.best_boxes == (ref_a.box.as_list(), ref_b.box.as_list())
    matches = result.keypoint_matches
    assert (matches.ours_image, matches.theirs_image) == (0, 0)
    assert 20 <= len(matches.points) <= 60 and len(matches.colour_agrees) == len(matches.points)
    for (xa, ya), (xb, yb) in matches.points:
        assert 0 <= xa < ours.width and 0 <= ya < ours.height and 0 <= xb < theirs.width and 0 <= yb < theirs.height
    assert result.blockers == [] and result.gates == []


def test_a_title_conflict_names_the_words_on_each_side(luma, make_comparer):
    ours = luma("mj02-orange_main.jpg")
    result = make_comparer().compare(
        sku(ours, title="남성 경량 자켓"), listing(crop_rescale(ours), title="[해외배송] 키즈 경량 자켓")
    )
    assert len(result.conflict_details) == len(result.evidence.conflicts)
    by_attribute = {c.attribute: c for c in result.conflict_details}
    assert by_attribute["audience"].theirs == "kids" and by_attribute["audience"].theirs_terms == ["키즈"]
    assert all(c.source == "title" for c in result.conflict_details)
    assert "attribute_conflict" in result.blockers


def test_printed_text_conflicts_are_typed_as_read_by_ocr(luma, make_comparer):
    ours = luma("wt05-purple_main.jpg")
    result = make_comparer(ocr=FixedOcr("리퍼 상품"), cascade_margin=1.0).compare(
        sku(ours, product_number="WT05PUR"), listing(crop_rescale(ours), title="WT05PUR 티셔츠")
    )
    assert result.decision.bucket != "auto"
    printed = [c for c in result.conflict_details if c.source == "ocr"]
    assert printed and printed[0].theirs_terms == ["리퍼"] and printed[0].ours_terms == []
    assert len(result.conflict_details) == len(result.evidence.conflicts)
