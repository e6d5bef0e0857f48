"""Reverse image search: a picture in, the most similar stored images (and their SKUs and listings) out.

Three steps, each cheaper than the next is precise:
1. every region of the query (whole view, garments, collage items) is searched in pgvector, and
   an image's embedding score is its best region-pair cosine (the pair is kept so the page can
   outline where the match is);
2. the best CANDIDATES images are re-ordered with the garment colour read from their cached
   analyses: embeddings barely see colour, and the nearest neighbours of a photo are the same
   shot in other colourways;
3. the first VERIFY_TOP of those are compared with the query by the matching pipeline itself
   (keypoint geometry, colour where the keypoints land, the decision policy), as if the query
   were a competitor's photo of the candidate: those it takes for the same product (the photo
   re-used, cropped, bannered or collaged) come first, the same shot recoloured does not.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from matcher.analysis_cache import image_input
from matcher.matching import Toolkit, toolkit
from matcher.models import ImageFile, ListingImage, ProductImage
from matcher.pipeline.compare import ImageAnalysis, ImageInput, ListingSide, PairComparer, SkuSide
from matcher.vectors import nearest

CANDIDATES_PER_REGION = 60
CANDIDATES = 60  # distinct images re-ordered by colour
VERIFY_TOP = 8  # of those, compared by the matching pipeline
# Step 2: cosine − COLOUR_WEIGHT × garment colour distance (0..1). Cosines of near neighbours
# differ by hundredths, colour distances of another colourway are 0.6–1: this is enough to put
# the right colour first without letting colour outvote a clearly better look.
COLOUR_WEIGHT = 0.1
UNKNOWN_COLOUR_DISTANCE = 0.5
# Step 3: candidates the matching pipeline puts in these buckets come first.
SAME_PRODUCT = ("auto", "review")


@dataclass
class Candidate:
    image_id: int
    sha256: str
    cosine: float
    query_region: int  # index into the query's regions
    hit: dict  # {"kind", "box"} of the stored region that matched
    colour_distance: float | None = None
    confidence: float | None = None  # from the matching pipeline, for the verified ones
    bucket: str | None = None
    inliers: int | None = None

    @property
    def colour_score(self) -> float:
        d = self.colour_distance if self.colour_distance is not None else UNKNOWN_COLOUR_DISTANCE
        return self.cosine - COLOUR_WEIGHT * d


@dataclass
class SearchHit:
    image: ImageFile
    score: float  # embedding cosine of the best region pair
    query_box: list[int]
    query_kind: str
    hit_box: list[int]
    hit_kind: str
    confidence: float | None = None  # "same product" confidence of the matching pipeline, when compared
    bucket: str | None = None
    colour_distance: float | None = None
    inliers: int | None = None
    products: list = field(default_factory=list)
    listings: list = field(default_factory=list)


@dataclass
class SearchResult:
    query: ImageAnalysis
    hits: list[SearchHit]
    embedder: str


class QueryCache:
    """The stored images' analyses from the database cache (keypoints computed for them on the way
    are written back); the query's own analysis stays in memory: a query is not catalogue data."""

    def __init__(self, db, query_sha: str) -> None:
        self.db = db
        self.query_sha = query_sha
        self._query: ImageAnalysis | None = None

    def preload(self, shas) -> None:
        self.db.preload([s for s in shas if s != self.query_sha])

    def get(self, sha256: str) -> ImageAnalysis | None:
        return self._query if sha256 == self.query_sha else self.db.get(sha256)

    def put(self, analysis: ImageAnalysis) -> None:
        if analysis.sha256 == self.query_sha:
            self._query = analysis
        else:
            self.db.put(analysis)

    def flush(self) -> int:
        return self.db.flush()


def embedding_candidates(
    analysis: ImageAnalysis, *, embedder: str, k: int = CANDIDATES, exclude_sha: str | None = None,
    ef_search: int = 100, among: list[int] | None = None,
) -> list[Candidate]:
    """Step 1: the k images whose best region pair with the query has the highest cosine
    (among the given image ids only, when `among` is given: an evaluation's gallery)."""
    best: dict[int, tuple[float, int, dict]] = {}
    for qi, vector in enumerate(analysis.embeddings):
        for n in nearest(embedder=embedder, vector=vector, k=CANDIDATES_PER_REGION, ef_search=ef_search,
                         image_ids=among):
            current = best.get(n.image_id)
            if current is None or n.score > current[0]:
                best[n.image_id] = (n.score, qi, {"kind": n.kind, "box": n.box})
    ranked = sorted(best.items(), key=lambda kv: -kv[1][0])
    shas = dict(ImageFile.objects.filter(id__in=[i for i, _ in ranked]).values_list("id", "sha256"))
    out = [
        Candidate(image_id=i, sha256=shas[i], cosine=score, query_region=qi, hit=hit)
        for i, (score, qi, hit) in ranked
        if i in shas and shas[i] != exclude_sha
    ]
    return out[:k]


def rank(
    query: ImageInput,
    analysis: ImageAnalysis,
    *,
    comparer: PairComparer,
    embedder: str,
    k: int = 10,
    candidates: int = CANDIDATES,
    verify_top: int = VERIFY_TOP,
    exclude_sha: str | None = None,
    among: list[int] | None = None,
) -> list[Candidate]:
    """The k stored images most likely to show what the query shows, best first (steps 1–3)."""
    found = embedding_candidates(
        analysis, embedder=embedder, k=max(k, candidates), exclude_sha=exclude_sha, among=among
    )
    if not found:
        return []
    cache = comparer.cache
    if hasattr(cache, "preload"):
        cache.preload([c.sha256 for c in found])
    stored = ImageFile.objects.in_bulk([c.image_id for c in found])
    for c in found:
        theirs = cache.get(c.sha256)
        if theirs is not None:
            c.colour_distance = comparer.garment_colour_distance(theirs, analysis)
    found.sort(key=lambda c: -c.colour_score)
    for c in found[:verify_top]:
        if cache.get(c.sha256) is None:
            continue  # a stored image without an analysis (never decoded): left where colour put it
        comparison = comparer.compare(SkuSide(images=[_stored_input(stored[c.image_id])]), ListingSide(images=[query]))
        c.confidence = comparison.decision.confidence
        c.bucket = comparison.decision.bucket
        c.inliers = comparison.evidence.inliers
    # Those the pipeline takes for the same product first (most confident first); the rest, compared
    # and rejected or not compared, stay in colour order: a rejected near-copy (a crop the keypoints
    # missed, a photo on a busy background) is still the nearest picture, and its verdict is shown.
    same = sorted(
        (c for c in found[:verify_top] if c.bucket in SAME_PRODUCT),
        key=lambda c: (-(c.confidence or 0.0), -c.colour_score),
    )
    ordered = same + [c for c in found if c.bucket not in SAME_PRODUCT]
    if hasattr(cache, "flush"):
        cache.flush()
    return ordered[:k]


def _stored_input(image: ImageFile) -> ImageInput:
    return image_input(image)


def analyse_query(data: bytes) -> tuple[ImageInput, ImageAnalysis, Toolkit]:
    """The query's analysis (not stored) and a comparer that reads the stored images' analyses."""
    # Search ranks by what is cheap and certain: no OCR, no background removal.
    kit = toolkit(with_ocr=False, with_remover=False)
    ref = ImageInput.from_bytes(data, label="query")
    kit.comparer.cache = QueryCache(kit.cache, ref.sha256)
    return ref, kit.comparer.analyse([ref])[0], kit


def search_by_image(data: bytes, *, k: int = 10) -> SearchResult:
    ref, analysis, kit = analyse_query(data)
    ranked = rank(ref, analysis, comparer=kit.comparer, embedder=kit.cache.embedder, k=k)
    ids = [c.image_id for c in ranked]
    images = ImageFile.objects.in_bulk(ids)
    owners_p: dict[int, list] = defaultdict(list)
    for pi in ProductImage.objects.filter(image_id__in=ids).select_related("product"):
        assert pi.image_id is not None  # filtered on image_id__in
        owners_p[pi.image_id].append(pi.product)
    owners_l: dict[int, list] = defaultdict(list)
    for li in ListingImage.objects.filter(image_id__in=ids).select_related("listing", "listing__product"):
        assert li.image_id is not None  # filtered on image_id__in
        owners_l[li.image_id].append(li.listing)
    hits = []
    for c in ranked:
        region = analysis.regions[c.query_region]
        hits.append(
            SearchHit(
                image=images[c.image_id], score=c.cosine, query_box=region.box.as_list(), query_kind=region.kind,
                hit_box=list(c.hit["box"]), hit_kind=c.hit["kind"], confidence=c.confidence, bucket=c.bucket,
                colour_distance=c.colour_distance, inliers=c.inliers,
                products=owners_p.get(c.image_id, []), listings=owners_l.get(c.image_id, []),
            )
        )
    return SearchResult(query=analysis, hits=hits, embedder=kit.cache.embedder)
