"""``farview serve`` stops at once while a TLS client keeps an idle connection it does not read
(service/_uvicorn_shutdown.py, the one uvicorn internal it relies on). Fails if that changes."""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import uvicorn

from farview.service._uvicorn_shutdown import PINNED_UVICORN, PromptShutdownH11, http_protocol
from tests.service.conftest import launch_service

pytestmark = pytest.mark.slow

KEEP_ALIVE_S = 5.0
"""uvicorn's default ``timeout_keep_alive``: an idle connection is closed after it."""


def test_the_pinned_uvicorn_gets_the_prompt_protocol() -> None:
    assert uvicorn.__version__ == PINNED_UVICORN, "pyproject.toml pins uvicorn; see the module"
    assert http_protocol() is PromptShutdownH11


def _idle_tls_connection(url: str, cert: str, account_id: str, key: str) -> ssl.SSLSocket:
    """A keep-alive connection that made one request, read its answer and then stays idle,
    never reading again (as ``requests``' pool does between requests)."""
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    context = ssl.create_default_context(cafile=cert)
    sock = context.wrap_socket(socket.create_connection((parts.hostname, parts.port), timeout=10),
                               server_hostname=parts.hostname)
    sock.sendall(f"GET /accounts/{account_id}/sessions?api-version=2021-01-01 HTTP/1.1\r\n"
                 f"Host: {parts.netloc}\r\nAuthorization: Bearer {key}\r\n\r\n".encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(65536)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(65536)
    return sock


@pytest.mark.parametrize("idle_s", [0.0, KEEP_ALIVE_S + 1.0], ids=["idle", "past-keep-alive"])
def test_a_stop_does_not_wait_for_an_idle_tls_client(tmp_path: Path, idle_s: float) -> None:
    """uvicorn's own protocol waited for the client's TLS close_notify: the stop took 5 s (the
    graceful-shutdown limit) and logged an ERROR. Now the idle connection is dropped. Past
    uvicorn's keep-alive limit the connection is already closing (its close_notify sent and
    unanswered): the first version of the fix then failed the stop with a traceback."""
    svc = launch_service(tmp_path / "data", "--make-cert")
    assert svc.cert is not None
    sock = _idle_tls_connection(svc.url, svc.cert, svc.account_id, svc.account_key)
    try:
        time.sleep(idle_s)
        assert svc.stop(timeout=30) == 0, svc.output()
        log = svc.output()
        assert "timeout graceful shutdown exceeded" not in log, log
        assert "Traceback" not in log, log
        assert "farview serve: stopped" in log, log
        # the client finds its connection closed (its next request opens a new one)
        sock.settimeout(10)
        try:
            data = sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError):
            data = b""
        assert data == b"", data
    finally:
        sock.close()
        if svc.proc.poll() is None:
            svc.proc.kill()
