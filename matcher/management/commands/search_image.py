"""python manage.py search_image FILE [-k 10]: the stored images most like a picture, with their SKUs/listings."""
from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from matcher import images
from matcher.search import search_by_image


class Command(BaseCommand):
    help = "Reverse image search from the command line."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file")
        parser.add_argument("-k", type=int, default=10)

    def handle(self, *args, file: str, k: int, **options) -> None:
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"not a file: {path}")
        try:
            data = images.read_local(path, max_bytes=settings.IMAGE_MAX_BYTES)
            images.sniff(data, max_pixels=settings.IMAGE_MAX_PIXELS)
        except images.ImageRejected as exc:
            raise CommandError(str(exc)) from exc
        result = search_by_image(data, k=k)
        self.stdout.write(f"query regions: {', '.join(r.kind for r in result.query.regions)} ({result.embedder})")
        for rank, hit in enumerate(result.hits, 1):
            owners = [f"SKU {p.sku}" for p in hit.products] + [
                f"{li.mall}/{li.seller} {li.url} (SKU {li.product.sku})" for li in hit.listings
            ]
            verdict = (
                f"  {hit.bucket} {hit.confidence:.2f} ({hit.inliers or 0} inliers)" if hit.confidence is not None else ""
            )
            self.stdout.write(
                f"{rank:>2}. {hit.score:.3f}{verdict}  {hit.image.sha256[:12]}  {hit.query_kind}↔{hit.hit_kind}  "
                + ("; ".join(owners) or "(not linked)")
            )
