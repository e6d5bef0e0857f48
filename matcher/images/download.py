"""Downloading a competitor image: one vetted hop at a time, size- and time-capped.

Why the download is hand-rolled on urllib3 rather than `requests.get(url)`: competitor URLs come
from scraped pages, so a URL (or a redirect, or a DNS answer that changes between check and
connect) could point at our own network or a cloud metadata service. We resolve the name once,
vet every address (addresses.py), connect to the vetted address ourselves while sending the
original Host header and TLS server name, ignore proxy environment variables, and follow
redirects one hop at a time through the same checks.
"""
from __future__ import annotations

import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from matcher.images.addresses import Resolver, VettedUrl, resolve, vet_url
from matcher.images.errors import FetchRefused, FetchTransient, ImageRejected

if TYPE_CHECKING:
    from urllib3 import BaseHTTPResponse, HTTPConnectionPool

__all__ = ["REDIRECT_STATUSES", "TRANSIENT_STATUSES", "USER_AGENT", "FetchedImage", "fetch"]

USER_AGENT = "pricematch-image-fetch/1 (+competitor image download)"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Worth another try later: the server is busy or broken, not refusing us.
TRANSIENT_STATUSES = frozenset({408, 425, 429})


@dataclass(frozen=True)
class FetchedImage:
    data: bytes
    url: str  # after redirects
    content_type: str


def fetch(
    url: str,
    *,
    max_bytes: int,
    timeout: float,
    max_redirects: int,
    allowed_hosts: Iterable[str] = (),
    resolver: Resolver = resolve,
) -> FetchedImage:
    """The body of an http(s) URL, at most max_bytes; raises FetchRefused, FetchTransient or ImageRejected.

    `timeout` bounds connecting and each read; the whole download must also finish within three
    times that, so a server trickling one byte a second cannot hold a worker.
    """
    allowed_hosts = tuple(allowed_hosts)
    deadline = time.monotonic() + 3 * timeout
    current = url
    for _hop in range(max_redirects + 1):
        target = vet_url(current, allowed_hosts=allowed_hosts, resolver=resolver)
        response, pool = _open(target, timeout=timeout)
        try:
            status = response.status
            if status in REDIRECT_STATUSES:
                location = response.headers.get("Location")
                if not location:
                    raise FetchRefused(f"HTTP {status} without Location")
                current = urljoin(current, location.strip())
                continue
            if 200 <= status < 300:
                data = _read_capped(response, max_bytes=max_bytes, deadline=deadline)
                return FetchedImage(data=data, url=current, content_type=response.headers.get("Content-Type", ""))
            if status >= 500 or status in TRANSIENT_STATUSES:
                raise FetchTransient(f"HTTP {status}")
            raise FetchRefused(f"HTTP {status}")
        finally:
            response.release_conn()
            pool.close()
    raise FetchRefused(f"리디렉션이 너무 많습니다 (more than {max_redirects} redirects)")


def _open(target: VettedUrl, *, timeout: float) -> tuple[BaseHTTPResponse, HTTPConnectionPool]:
    """A response from the first vetted address that accepts a connection."""
    import certifi
    import urllib3
    from urllib3.exceptions import HTTPError, NewConnectionError, SSLError
    from urllib3.exceptions import TimeoutError as UrllibTimeout

    last: Exception | None = None
    for address in target.addresses:
        kwargs: dict[str, Any] = {
            "host": address,
            "port": target.port,
            "timeout": urllib3.Timeout(connect=timeout, read=timeout),
            "retries": False,
            "maxsize": 1,
        }
        if target.scheme == "https":
            # Connect to the vetted IP, but present and verify the certificate for the real name.
            kwargs.update(
                server_hostname=target.host,
                assert_hostname=target.host,
                cert_reqs="CERT_REQUIRED",
                ca_certs=certifi.where(),
            )
            pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(**kwargs)
        else:
            pool = urllib3.HTTPConnectionPool(**kwargs)
        try:
            response = pool.urlopen(
                "GET",
                target.path,
                headers={
                    "Host": target.host_header,
                    "User-Agent": USER_AGENT,
                    "Accept": "image/*",
                    # Compressed bodies would let a small download inflate past the size cap.
                    "Accept-Encoding": "identity",
                },
                redirect=False,
                retries=False,
                preload_content=False,
                decode_content=False,
                assert_same_host=False,
            )
            return response, pool
        except SSLError as exc:
            pool.close()
            raise FetchRefused(f"TLS 인증서 오류 (TLS error: {exc})") from None
        except NewConnectionError as exc:
            # Checked first: urllib3 still derives it from ConnectTimeoutError.
            pool.close()
            last = FetchTransient(f"연결 실패 (connection error to {target.host}: {type(exc).__name__})")
        except (TimeoutError, UrllibTimeout) as exc:
            pool.close()
            last = FetchTransient(f"시간 초과 (timeout connecting to {target.host}: {type(exc).__name__})")
        except (HTTPError, OSError, ssl.SSLError) as exc:
            pool.close()
            last = FetchTransient(f"연결 실패 (connection error to {target.host}: {type(exc).__name__})")
    assert last is not None
    raise last


def _read_capped(response: BaseHTTPResponse, *, max_bytes: int, deadline: float) -> bytes:
    from urllib3.exceptions import HTTPError
    from urllib3.exceptions import TimeoutError as UrllibTimeout

    declared = response.headers.get("Content-Length")
    if declared and declared.strip().isdigit() and int(declared) > max_bytes:
        raise ImageRejected(f"파일이 너무 큽니다 (Content-Length {declared} > {max_bytes} bytes)")
    received = 0
    chunks: list[bytes] = []
    try:
        for chunk in response.stream(64 * 1024, decode_content=False):
            received += len(chunk)
            if received > max_bytes:
                # Stop reading: the rest of a huge body is never pulled off the socket.
                raise ImageRejected(f"파일이 너무 큽니다 (more than {max_bytes} bytes)")
            if time.monotonic() > deadline:
                raise FetchTransient("다운로드가 너무 느립니다 (download exceeded its time budget)")
            chunks.append(chunk)
    except (TimeoutError, UrllibTimeout):
        raise FetchTransient("시간 초과 (read timeout)") from None
    except (HTTPError, OSError) as exc:
        raise FetchTransient(f"연결 끊김 (connection error while reading: {type(exc).__name__})") from None
    return b"".join(chunks)
