"""Reverse image search: a picture in, the most similar stored images (and their SKUs and listings) out.

Every region of the query (whole view, garments, collage items) is searched in pgvector; an
image's score is its best region-pair cosine, and the pair is returned so the page can outline
where the match is.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from matcher.models import ImageFile, ListingImage, ProductImage
from matcher.pipeline.compare import ImageAnalysis, ImageInput, MemoryAnalysisCache

CANDIDATES_PER_REGION = 60


@dataclass
class SearchHit:
    image: ImageFile
    score: float
    query_box: list[int]
    query_kind: str
    hit_box: list[int]
    hit_kind: str
    products: list = field(default_factory=list)
    listings: list = field(default_factory=list)


@dataclass
class SearchResult:
    query: ImageAnalysis
    hits: list[SearchHit]
    embedder: str


def analyse_query(data: bytes) -> tuple[ImageAnalysis, str]:
    """Regions and embeddings of an uploaded picture, without storing anything."""
    from matcher.analysis import toolkit

    kit = toolkit(with_ocr=False)
    # A query is not catalogue data: keep its analysis out of the database cache.
    kit.comparer.cache = MemoryAnalysisCache()
    ref = ImageInput.from_bytes(data, label="query")
    return kit.comparer.analyse([ref])[0], kit.cache.embedder


def search_analysis(analysis: ImageAnalysis, *, embedder: str, k: int = 10, exclude_sha: str | None = None,
                    ef_search: int = 100) -> list[tuple[int, float, int, dict]]:
    """(image_id, score, query region index, hit region) for the k best distinct images."""
    from matcher.vectors import nearest

    best: dict[int, tuple[float, int, dict]] = {}
    for qi, vector in enumerate(analysis.embeddings):
        for n in nearest(embedder=embedder, vector=vector, k=CANDIDATES_PER_REGION, ef_search=ef_search):
            current = best.get(n.image_id)
            if current is None or n.score > current[0]:
                best[n.image_id] = (n.score, qi, {"kind": n.kind, "box": n.box})
    ranked = sorted(best.items(), key=lambda kv: -kv[1][0])
    if exclude_sha:
        excluded = set(ImageFile.objects.filter(sha256=exclude_sha).values_list("id", flat=True))
        ranked = [r for r in ranked if r[0] not in excluded]
    return [(image_id, score, qi, hit) for image_id, (score, qi, hit) in ranked[:k]]


def search_by_image(data: bytes, *, k: int = 10) -> SearchResult:
    analysis, embedder = analyse_query(data)
    ranked = search_analysis(analysis, embedder=embedder, k=k)
    ids = [r[0] for r in ranked]
    images = ImageFile.objects.in_bulk(ids)
    owners_p: dict[int, list] = defaultdict(list)
    for pi in ProductImage.objects.filter(image_id__in=ids).select_related("product"):
        owners_p[pi.image_id].append(pi.product)
    owners_l: dict[int, list] = defaultdict(list)
    for li in ListingImage.objects.filter(image_id__in=ids).select_related("listing", "listing__product"):
        owners_l[li.image_id].append(li.listing)
    hits = []
    for image_id, score, qi, hit in ranked:
        region = analysis.regions[qi]
        hits.append(
            SearchHit(
                image=images[image_id], score=score, query_box=region.box.as_list(), query_kind=region.kind,
                hit_box=list(hit["box"]), hit_kind=hit["kind"],
                products=owners_p.get(image_id, []), listings=owners_l.get(image_id, []),
            )
        )
    return SearchResult(query=analysis, hits=hits, embedder=embedder)
