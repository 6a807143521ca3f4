"""Serving on a network: ``--public-url`` names the service in sessions and service.json, and
``--make-cert`` makes a certificate for the public name and every bound address, printing its
fingerprint and where clients find it. A real service; a real TLS handshake by name."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509

from farview.client.errors import ServerError
from farview.client.rest import RemoteRenderingClient
from farview.service.tls import fingerprint, make_self_signed, names_for
from tests.service.conftest import RunningService


def test_the_certificate_names_the_public_host_and_the_bound_addresses(tmp_path: Path) -> None:
    cert, _ = make_self_signed(tmp_path, names_for("0.0.0.0", "render.example"))
    loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    san = loaded.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    # its subject names the public host (it named the last local address, often link-local)
    assert loaded.subject.rfc4514_string() == "CN=farview render.example"
    named = {str(v) for v in san.get_values_for_type(x509.IPAddress)} | set(san.get_values_for_type(x509.DNSName))
    assert {"render.example", "localhost", "127.0.0.1", "::1"} <= named
    assert len(named) >= 4  # every local address too (the loopback interface at least)
    first = fingerprint(cert)
    again, _ = make_self_signed(tmp_path, names_for("127.0.0.1", "render.example"))
    assert fingerprint(again) == first  # still names everything: reused
    other, _ = make_self_signed(tmp_path, names_for("127.0.0.1", "elsewhere.example"))
    assert fingerprint(other) != first  # a new name: a new certificate


def test_a_public_url_is_what_sessions_and_clients_are_told(
        start_service: Callable[..., RunningService]) -> None:
    port = _free_port()
    public = f"https://render.example:{port}"
    svc = start_service("--port", str(port), "--make-cert", "--public-url", public)
    assert svc.url == public  # service.json: what local clients are told
    out = svc.output()
    assert "SHA-256 " in out and f"--ca-cert {svc.cert}" in out
    assert svc.cert is not None and fingerprint(Path(svc.cert)) in out
    # the certificate verifies for the public name (a TLS handshake to 127.0.0.1 by that name)
    context = ssl.create_default_context(cafile=svc.cert)
    with socket.create_connection(("127.0.0.1", port)) as raw, \
            context.wrap_socket(raw, server_hostname="render.example") as tls:
        assert tls.version() is not None
    # a client that does not trust it is told how to
    local = f"https://127.0.0.1:{port}"
    with RemoteRenderingClient(local, svc.account_id, svc.account_key) as untrusting, \
            pytest.raises(ServerError, match=r"does not trust .*--ca-cert FILE"):
        untrusting.list_sessions()
    # plain http to it: told to use https (it said "Server disconnected without sending a response")
    with RemoteRenderingClient(f"http://127.0.0.1:{port}", svc.account_id, svc.account_key,
                               verify=svc.cert) as plain, \
            pytest.raises(ServerError, match=rf"serves https: use https://127.0.0.1:{port}$"):
        plain.list_sessions()


def test_https_to_a_plain_service_says_it_serves_http(
        start_service: Callable[..., RunningService]) -> None:
    svc = start_service()
    assert svc.url.startswith("http://")
    tls_url = "https://" + svc.url.removeprefix("http://")
    with RemoteRenderingClient(tls_url, svc.account_id, svc.account_key) as client, \
            pytest.raises(ServerError, match=rf"serves plain http; use {svc.url}$"):
        client.list_sessions()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
