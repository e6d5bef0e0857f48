"""Reading untrusted images: content sniffing, size and pixel caps, and a download that cannot be aimed inside.

No database access here. `services.image_store` turns the bytes into an ImageFile row; the Celery
tasks call `fetch` through `services.image_refs_fetch`.

- content.py    what the bytes are (`sniff`: format, pixel cap before decoding) and `read_local`
- addresses.py  where a download may go (`address_refusal`, resolving once, vetting a URL)
- download.py   `fetch`: connect to the vetted address, redirects one hop at a time, size and time caps
- errors.py     `ImageError` and its kinds: rejected bytes, a refused URL, a transient failure
"""
from __future__ import annotations

from matcher.images.addresses import METADATA_ADDRESSES, Resolver, address_refusal, resolve
from matcher.images.content import ALLOWED_FORMATS, SniffedImage, read_local, sniff
from matcher.images.download import FetchedImage, fetch
from matcher.images.errors import FetchRefused, FetchTransient, ImageError, ImageRejected

__all__ = [
    "ALLOWED_FORMATS",
    "FetchRefused",
    "FetchTransient",
    "FetchedImage",
    "ImageError",
    "ImageRejected",
    "METADATA_ADDRESSES",
    "Resolver",
    "SniffedImage",
    "address_refusal",
    "fetch",
    "read_local",
    "resolve",
    "sniff",
]
