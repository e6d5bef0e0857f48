"""Reading untrusted images: content sniffing, size and pixel caps, and a download that cannot be aimed inside.

No database access here. `services.image_store` turns the bytes into an ImageFile row; the Celery
tasks call `fetch` through `services.image_refs_fetch`.

Why the download is hand-rolled on urllib3 rather than `requests.get(url)`: competitor URLs come
from scraped pages, so a URL (or a redirect, or a DNS answer that changes between check and
connect) could point at our own network or a cloud metadata service. We resolve the name once,
vet every address, connect to the vetted address ourselves while sending the original Host
header and TLS server name, ignore proxy environment variables, and follow redirects one hop at a
time through the same checks.
"""
from __future__ import annotations

import io
import ipaddress
import socket
import ssl
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

if TYPE_CHECKING:
    from urllib3 import BaseHTTPResponse, HTTPConnectionPool

__all__ = [
    "ALLOWED_FORMATS",
    "FetchRefused",
    "FetchTransient",
    "FetchedImage",
    "ImageError",
    "ImageRejected",
    "SniffedImage",
    "address_refusal",
    "fetch",
    "read_local",
    "sniff",
]

# Pillow format name → file extension of the stored copy. GIFs are accepted; matching uses the first frame.
ALLOWED_FORMATS: dict[str, str] = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp"}
# Camera JPEGs with embedded previews open as MPO; they are JPEG files.
_FORMAT_ALIASES = {"MPO": "JPEG"}

# Cloud metadata endpoints, named in the refusal so an operator recognises the attempt.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")

USER_AGENT = "pricematch-image-fetch/1 (+competitor image download)"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Worth another try later: the server is busy or broken, not refusing us.
TRANSIENT_STATUSES = frozenset({408, 425, 429})


class ImageError(Exception):
    """Why an image could not be stored; `reason` is written to the image row as it is."""

    def __init__(self, reason: str) -> None:
        self.reason = reason[:500]
        super().__init__(self.reason)


class ImageRejected(ImageError):
    """The bytes are not an acceptable image (corrupt, too large, a decompression bomb, another format)."""


class FetchRefused(ImageError):
    """We will not download this URL (scheme, address, 4xx, too many redirects): retrying cannot help."""


class FetchTransient(ImageError):
    """A timeout, a connection error or a 5xx: worth retrying later."""


# --- content -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SniffedImage:
    format: str  # a key of ALLOWED_FORMATS
    width: int
    height: int

    @property
    def extension(self) -> str:
        return ALLOWED_FORMATS[self.format]


def sniff(data: bytes, *, max_pixels: int) -> SniffedImage:
    """What the bytes really are, whatever the URL or file name says; raises ImageRejected.

    The declared dimensions are checked before any pixel is decoded, so a tiny file declaring
    100,000 × 100,000 pixels never allocates them.
    """
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ImageRejected("빈 파일입니다 (empty file)")
    with warnings.catch_warnings():
        # Pillow only warns between its limit and twice its limit; a warning is a refusal here.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as im:
                fmt = _FORMAT_ALIASES.get(im.format or "", im.format or "")
                if fmt not in ALLOWED_FORMATS:
                    raise ImageRejected(
                        f"지원하지 않는 이미지 형식 (format {im.format!r} not allowed; JPEG/PNG/WEBP/GIF/BMP)"
                    )
                width, height = im.size
                if width <= 0 or height <= 0:
                    raise ImageRejected("이미지 크기가 0입니다 (zero-sized image)")
                if width * height > max_pixels:
                    raise ImageRejected(
                        f"픽셀 수가 너무 많습니다 (decompression bomb guard: {width}×{height} > {max_pixels} pixels)"
                    )
                im.verify()
            # verify() leaves the image unusable; decoding the (first frame's) pixels catches truncation.
            with Image.open(io.BytesIO(data)) as im:
                im.load()
        except ImageRejected:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageRejected(f"픽셀 수가 너무 많습니다 (decompression bomb: {exc})") from None
        except UnidentifiedImageError:
            raise ImageRejected("이미지가 아닙니다 (not a recognisable image)") from None
        except Exception as exc:  # noqa: BLE001 — Pillow raises many types on hostile input; all mean "corrupt"
            raise ImageRejected(f"손상된 이미지 (corrupt image: {type(exc).__name__}: {exc})") from None
    return SniffedImage(format=fmt, width=width, height=height)


def read_local(path: Path, *, max_bytes: int) -> bytes:
    """A local file's bytes, reading no more than max_bytes + 1 of them; raises ImageRejected."""
    try:
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise ImageRejected(f"파일을 읽을 수 없습니다 (cannot read {path.name}: {exc.strerror})") from None
    if len(data) > max_bytes:
        raise ImageRejected(f"파일이 너무 큽니다 (larger than {max_bytes} bytes)")
    return data


# --- addresses ---------------------------------------------------------------------------------


def _embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address smuggles: mapped, 6to4, Teredo, NAT64 or the old compatible form."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr.teredo is not None:
        return addr.teredo[1]
    if addr in _NAT64 or (addr in _IPV4_COMPATIBLE and int(addr) > 0xFFFF):
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def address_refusal(ip: str) -> str | None:
    """Why we must not connect to this address, or None for a public unicast address."""
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return f"주소가 아닙니다 (not an IP address: {ip!r})"
    if isinstance(addr, ipaddress.IPv6Address):
        inner = _embedded_ipv4(addr)
        if inner is not None:
            reason = address_refusal(str(inner))
            if reason:
                return f"{reason} via IPv6 {addr}"
    if addr in METADATA_ADDRESSES:
        return f"클라우드 메타데이터 주소 (cloud metadata address {addr})"
    for attribute, label in (
        ("is_unspecified", "unspecified"),
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_private", "private"),
        ("is_reserved", "reserved"),
    ):
        if getattr(addr, attribute):
            return f"내부/특수 주소 ({label} address {addr})"
    if not addr.is_global:
        return f"공인 주소가 아닙니다 (non-global address {addr})"
    return None


Resolver = Callable[[str, int], Sequence[str]]


def resolve(host: str, port: int) -> list[str]:
    """Every address the name resolves to (the system resolver), in its order."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        if exc.errno == socket.EAI_AGAIN:
            raise FetchTransient(f"DNS 조회 실패 (temporary DNS failure for {host}: {exc.strerror})") from None
        raise FetchRefused(f"호스트를 찾을 수 없습니다 (host not found: {host})") from None
    except UnicodeError:
        raise FetchRefused(f"잘못된 호스트 이름 (invalid host name: {host!r})") from None
    addresses: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        if str(sockaddr[0]) not in addresses:
            addresses.append(str(sockaddr[0]))
    return addresses


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str  # ASCII (IDNA) form, for the Host header, SNI and certificate checking
    port: int
    path: str  # path and query, percent-encoded
    addresses: tuple[str, ...]  # vetted, connect to these only

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def _vet(url: str, *, allowed_hosts: Iterable[str], resolver: Resolver) -> _Target:
    from requests.utils import requote_uri

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise FetchRefused(f"잘못된 URL (invalid URL: {exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchRefused(f"http(s)만 받습니다 (scheme not allowed: {scheme or 'none'!r})")
    if parts.username is not None or parts.password is not None:
        raise FetchRefused("URL에 계정 정보가 있습니다 (credentials in URL)")
    if not parts.hostname:
        raise FetchRefused("호스트가 없습니다 (no host in URL)")
    try:
        host = parts.hostname.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise FetchRefused(f"잘못된 호스트 이름 (invalid host name: {parts.hostname!r})") from None
    port = port or (443 if scheme == "https" else 80)
    addresses = list(resolver(host, port))
    if not addresses:
        raise FetchRefused(f"호스트를 찾을 수 없습니다 (host not found: {host})")
    allowed = host in {h.strip().lower() for h in allowed_hosts if h.strip()}
    for address in addresses:
        reason = address_refusal(address)
        if reason is None:
            continue
        # A test host may be private, but never a metadata endpoint.
        if allowed and "metadata" not in reason:
            continue
        # Every address is checked: one bad answer among good ones is how rebinding attacks start.
        raise FetchRefused(f"{host} → {reason}")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return _Target(scheme=scheme, host=host, port=port, path=requote_uri(path), addresses=tuple(addresses))


# --- download ----------------------------------------------------------------------------------


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
        target = _vet(current, allowed_hosts=allowed_hosts, resolver=resolver)
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


def _open(target: _Target, *, timeout: float) -> tuple[BaseHTTPResponse, HTTPConnectionPool]:
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
