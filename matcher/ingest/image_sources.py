"""A row's image references: http(s) URLs, or local files that must lie inside the import folder."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from matcher.ingest.errors import RowError
from matcher.ingest.fields import MAX_LEN, http_url

__all__ = ["IMAGE_SEPARATOR", "ImageSource", "image_sources", "resolve_local_image"]

IMAGE_SEPARATOR = "|"


@dataclass(frozen=True)
class ImageSource:
    """One image reference of a row: an http(s) URL, or a local file already resolved and vetted."""

    source: str  # as stored on the ImageRef row: the URL, or the path relative to the import folder
    url: str | None = None
    path: Path | None = None

    @property
    def is_url(self) -> bool:
        return self.url is not None


def resolve_local_image(raw: str, *, base_dir: Path, allowed_roots: Sequence[Path | str] = ()) -> Path:
    """The real path of a local image, which must lie inside `base_dir` or one of `allowed_roots`.

    Symlinks are resolved before the check, so a link pointing out of the folder is refused too.
    """
    base = Path(base_dir).resolve()
    candidate = Path(raw).expanduser() if raw.startswith("~") else Path(raw)
    resolved = (candidate if candidate.is_absolute() else base / candidate).resolve()
    roots = [base, *(Path(r).resolve() for r in allowed_roots)]
    if not any(resolved.is_relative_to(root) for root in roots):
        raise RowError(
            f"images: 가져오기 폴더 밖의 파일은 읽지 않습니다 (outside the import folder: {raw[:200]!r})"
        )
    if not resolved.is_file():
        raise RowError(f"images: 파일이 없습니다 (file not found: {raw[:200]!r})")
    return resolved


def image_sources(
    value: Any,
    *,
    base_dir: Path | None,
    allowed_roots: Sequence[Path | str],
    max_images: int,
) -> list[ImageSource]:
    """The `images` field ('a.jpg|b.jpg' or a list), de-duplicated; `base_dir=None` accepts URLs only."""
    if value is None:
        items: list[Any] = []
    elif isinstance(value, str):
        items = [part.strip() for part in value.split(IMAGE_SEPARATOR)]
        items = [part for part in items if part]
    elif isinstance(value, list):
        items = value
    else:
        raise RowError("images: '|'로 이은 경로/URL 또는 목록이어야 합니다 (expected 'a.jpg|b.jpg' or a list)")
    if not items:
        raise RowError("images: 이미지가 최소 1개 필요합니다 (at least one image)")
    if len(items) > max_images:
        raise RowError(f"images: 최대 {max_images}개입니다 (at most {max_images} images, got {len(items)})")
    sources: list[ImageSource] = []
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise RowError("images: 빈 값이나 문자열이 아닌 항목이 있습니다 (empty or non-text item)")
        item = item.strip()
        if len(item) > MAX_LEN["image"]:
            raise RowError("images: 경로/URL이 너무 깁니다 (longer than 2000 characters)")
        if item in seen:
            continue  # the same picture twice is one image
        seen.add(item)
        scheme = urlsplit(item).scheme.lower()
        if scheme in ("http", "https"):
            sources.append(ImageSource(source=http_url(item, name="images"), url=item))
        elif len(scheme) > 1:  # 'C:\…' parses with scheme 'c'; anything longer is a URL scheme
            raise RowError(f"images: http(s)만 받습니다 (scheme not allowed: {scheme!r})")
        elif base_dir is None:
            # A browser upload or an API batch has no folder its paths could be relative to.
            raise RowError(
                "images: 업로드한 파일과 API에서는 로컬 이미지 경로를 읽을 수 없습니다. http(s) 이미지 URL을 쓰세요 "
                f"(local image paths cannot be read here; image URLs only: {item[:200]!r})"
            )
        else:
            path = resolve_local_image(item, base_dir=base_dir, allowed_roots=allowed_roots)
            sources.append(ImageSource(source=item, path=path))
    return sources
