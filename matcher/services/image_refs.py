"""Images of an imported row: each stored once per content hash, and the row's references kept in step.

`image_store` turns bytes into the one ImageFile for their content; `local_images` stores a row's local
files (checked during the import); `image_refs_sync` makes a product's or listing's image rows match the
row's sources, leaving URL images for the download workers.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction

from matcher import images as image_io
from matcher import ingest
from matcher.models import FetchStatus, ImageFile, ListingImage, ProductImage


def image_store(*, data: bytes) -> ImageFile:
    """The ImageFile for these bytes: the existing row when the content hash is known, else a new one.

    Raises images.ImageRejected for anything that is not an acceptable image. The caller caps the
    size while reading. The file is written before the row; a rolled-back caller leaves at most an
    unreferenced, content-named file that the next import of the same bytes reuses.
    """
    if len(data) > settings.IMAGE_MAX_BYTES:
        raise image_io.ImageRejected(f"파일이 너무 큽니다 (larger than {settings.IMAGE_MAX_BYTES} bytes)")
    digest = hashlib.sha256(data).hexdigest()
    existing = ImageFile.objects.filter(sha256=digest).first()
    if existing is not None:
        return existing
    sniffed = image_io.sniff(data, max_pixels=settings.IMAGE_MAX_PIXELS)
    storage = ImageFile._meta.get_field("file").storage
    name = f"images/{digest[:2]}/{digest}.{sniffed.extension}"
    if not storage.exists(name):
        name = storage.save(name, ContentFile(data))
    try:
        # A savepoint: another worker storing the same bytes at the same moment must not
        # abort the caller's transaction.
        with transaction.atomic():
            return ImageFile.objects.create(
                sha256=digest,
                file=name,
                width=sniffed.width,
                height=sniffed.height,
                format=sniffed.format,
                bytes=len(data),
            )
    except IntegrityError:
        return ImageFile.objects.get(sha256=digest)


def local_images(sources: Sequence[ingest.ImageSource]) -> dict[str, ImageFile]:
    """Store a row's local image files now (the fast path); a bad file fails the row before any write."""
    stored: dict[str, ImageFile] = {}
    for src in sources:
        if src.path is None:
            continue
        try:
            data = image_io.read_local(src.path, max_bytes=settings.IMAGE_MAX_BYTES)
            stored[src.source] = image_store(data=data)
        except image_io.ImageError as exc:
            raise ingest.RowError(f"images: {src.source}: {exc.reason}") from None
    return stored


def image_refs_sync(
    model: type[ProductImage | ListingImage],
    *,
    owner_field: str,
    owner_id: int,
    sources: Sequence[ingest.ImageSource],
    local: dict[str, ImageFile],
    order_matters: bool,
) -> tuple[bool, bool]:
    """Make the owner's image references match the row; returns (changed, needs_fetch).

    Positions always follow the row; a new order alone is a change only where order means
    something (our first product photo is the main one; a scraper's order is incidental).

    A URL seen before keeps its downloaded image. A URL whose download failed is tried again:
    a re-import is the natural moment to retry, and does not count as a change of the row.
    """
    existing = {ref.source: ref for ref in model.objects.filter(**{owner_field: owner_id})}
    wanted = {src.source for src in sources}
    changed = needs_fetch = False
    stale = [ref.pk for source, ref in existing.items() if source not in wanted]
    if stale:
        model.objects.filter(pk__in=stale).delete()
        changed = True
    for position, src in enumerate(sources):
        ref = existing.get(src.source)
        if ref is None:
            image = local.get(src.source)
            model.objects.create(
                **{owner_field: owner_id},
                source=src.source,
                position=position,
                image=image,
                fetch_status=FetchStatus.OK if image else FetchStatus.PENDING,
            )
            changed = True
            needs_fetch = needs_fetch or image is None
            continue
        update: dict[str, object] = {}
        if ref.position != position:
            update["position"] = position
            changed = changed or order_matters
        if src.source in local:
            image = local[src.source]
            if ref.image_id != image.pk or ref.fetch_status != FetchStatus.OK:
                update.update(image=image, fetch_status=FetchStatus.OK, fetch_error="")
                changed = True
        elif ref.fetch_status == FetchStatus.FAILED:
            update.update(fetch_status=FetchStatus.PENDING, fetch_error="", fetch_attempts=0)
            needs_fetch = True
        if update:
            model.objects.filter(pk=ref.pk).update(**update)
    return changed, needs_fetch
