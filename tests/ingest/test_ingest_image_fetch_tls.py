"""HTTPS downloads connect to the vetted address yet verify the certificate for the URL's host name."""
from __future__ import annotations

import datetime as dt
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from matcher import images
from tests.factories import png_bytes


def _certificate(tmp_path: Path, host: str) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for `host` signed by it: (ca.pem, cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pricematch test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return ca_path, cert_path, key_path


@pytest.fixture
def https_server(tmp_path):
    """Serves one PNG over TLS on 127.0.0.1 with a certificate for images.test; records SNI and Host."""
    ca_path, cert_path, key_path = _certificate(tmp_path, "images.test")
    seen: dict[str, list[str]] = {"sni": [], "host": []}
    body = png_bytes((5, 50, 150))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen["host"].append(self.headers.get("Host", ""))
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    context.sni_callback = lambda sock, name, ctx: seen["sni"].append(name) and None
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], ca_path, seen, body
    finally:
        server.shutdown()
        server.server_close()


def fetch(port: int, host: str = "images.test") -> images.FetchedImage:
    return images.fetch(
        f"https://{host}:{port}/a.png",
        max_bytes=100_000,
        timeout=5,
        max_redirects=1,
        allowed_hosts=[host],
        resolver=lambda h, p: ["127.0.0.1"],
    )


def test_a_pinned_https_download_sends_the_real_name_for_sni_and_certificate_checks(https_server, monkeypatch):
    import certifi

    port, ca_path, seen, body = https_server
    monkeypatch.setattr(certifi, "where", lambda: str(ca_path))
    assert fetch(port).data == body
    assert seen["sni"] == ["images.test"]
    assert seen["host"] == [f"images.test:{port}"]


def test_an_untrusted_certificate_is_refused(https_server):
    port, _ca, seen, _body = https_server
    with pytest.raises(images.FetchRefused, match="TLS"):
        fetch(port)
    assert seen["host"] == []


def test_a_certificate_for_another_name_is_refused(https_server, monkeypatch):
    import certifi

    port, ca_path, seen, _body = https_server
    monkeypatch.setattr(certifi, "where", lambda: str(ca_path))
    with pytest.raises(images.FetchRefused, match="TLS"):
        fetch(port, host="other.test")
    assert seen["host"] == []
