"""Where a download may go: resolve the name once, refuse private and metadata addresses, vet the URL.

Competitor URLs come from scraped pages, so a URL (or a redirect, or a DNS answer that changes
between check and connect) could point at our own network or a cloud metadata service. Every
address a name resolves to is checked here, and `download` connects only to the vetted ones.
"""
from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from matcher.images.errors import FetchRefused, FetchTransient

__all__ = ["METADATA_ADDRESSES", "Resolver", "VettedUrl", "address_refusal", "resolve", "vet_url"]

# Cloud metadata endpoints, named in the refusal so an operator recognises the attempt.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


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
class VettedUrl:
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


def vet_url(url: str, *, allowed_hosts: Iterable[str], resolver: Resolver) -> VettedUrl:
    """The URL's parts and the addresses we may connect to; raises FetchRefused (or FetchTransient on DNS)."""
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
    return VettedUrl(scheme=scheme, host=host, port=port, path=requote_uri(path), addresses=tuple(addresses))
