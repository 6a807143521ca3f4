"""Security review, as tests against real processes (the threat model is ``docs/security.md``).

- Every REST route and every render-host route (signaling, health, scene upload) refuses a
  missing, wrong, expired, forged or other-account credential; one account cannot see another's
  sessions.
- Credentials (account keys, the token signing key, access tokens) never reach the service's or
  hosts' logs, URLs (``@nextLink``, ``Location``, host command lines) or error bodies, and
  render hosts do not inherit the account key from the service's environment.
- Key files are 0600; binding a non-loopback address without TLS is refused unless
  ``--allow-insecure-remote``; render hosts listen on 127.0.0.1 only.
- Request bodies (REST 64 KiB, SDP 64 KiB), headers and data-channel messages (64 KiB, see
  ``test_channel_fuzz.py``) are bounded.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import psutil
import pytest

from tests.faults.conftest import ACCOUNT_B, two_account_service
from tests.faults.restfuzz import pem_secret_lines
from tests.hosting import new_signing_key
from tests.service.conftest import RunningService, launch_service

pytestmark = pytest.mark.slow

V = {"api-version": "2021-01-01"}
SECRET_SEEN: list[str] = []
"""Every credential the module used; the log check greps for all of them."""


@pytest.fixture(scope="module")
def svc2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningService, str]]:
    svc, key_b = two_account_service(tmp_path_factory.mktemp("sec") / "data")
    try:
        yield svc, key_b
    finally:
        svc.stop()


def _signing_key(svc: RunningService) -> str:
    return (svc.data_dir / "token-signing-key.pem").read_text()


def _mint(key: str, sub: str, ttl: int = 600, aud: str = "farview") -> str:
    now = int(time.time())
    return jwt.encode({"sub": sub, "aud": aud, "iat": now, "exp": now + ttl}, key, algorithm="ES256")


def _bad_credentials(svc: RunningService, key_b: str, other_token: str) -> dict[str, str | None]:
    key = _signing_key(svc)
    return {
        "missing": None,
        "empty bearer": "Bearer",
        "wrong key": "Bearer " + "x" * 43,
        "own id, wrong key": f"Bearer {svc.account_id}:{'y' * 43}",
        "other account's key": f"Bearer {key_b}",
        "other account's id:key": f"Bearer {ACCOUNT_B}:{key_b}",
        "own id, other's key": f"Bearer {svc.account_id}:{key_b}",
        "other account's token": f"Bearer {other_token}",
        "expired token": f"Bearer {_mint(key, svc.account_id, ttl=-10)}",
        "forged token": f"Bearer {_mint(new_signing_key(), svc.account_id)}",
        "wrong audience": f"Bearer {_mint(key, svc.account_id, aud='other')}",
        "alg none": "Bearer " + jwt.encode({"sub": svc.account_id, "aud": "farview",
                                             "exp": int(time.time()) + 60}, None, algorithm="none"),
        "basic scheme": f"Basic {svc.account_key}",
    }


def test_every_rest_route_refuses_bad_credentials(svc2: tuple[RunningService, str]) -> None:
    svc, key_b = svc2
    good = {"Authorization": f"Bearer {svc.account_key}"}
    with httpx.Client(base_url=svc.url, timeout=30) as http:
        spec = http.get("/openapi.json", headers=good).json()
        other_token = http.get(f"/accounts/{ACCOUNT_B}/token", headers={"Authorization": f"Bearer {key_b}"}
                               ).json()["AccessToken"]
        own_token = http.get(f"/accounts/{svc.account_id}/token", headers=good).json()["AccessToken"]
        SECRET_SEEN.extend([svc.account_key, key_b, other_token, own_token, *pem_secret_lines(_signing_key(svc))])
        routes = [(m.upper(), p) for p, ops in spec["paths"].items() for m in ops]
        routes += [("GET", "/Accounts/{account_id}/token"), ("GET", "/openapi.json"), ("GET", "/docs")]
        assert len(routes) >= 12
        bad = _bad_credentials(svc, key_b, other_token)
        checked = 0
        for method, template in routes:
            path = template.format(account_id=svc.account_id, session_id="sec-x", resource="r1", name="x.glb",
                                   conversion_id="conv-x")
            body = b'{"maxLeaseTimeMinutes": 1, "size": "Standard"}' if method in ("PUT", "PATCH", "POST") else None
            for name, credential in bad.items():
                if template in ("/openapi.json", "/docs") and name.startswith(("other account's", "own id, other")):
                    continue  # any account may read the API document
                headers = {"Content-Type": "application/json"}
                if credential is not None:
                    headers["Authorization"] = credential
                r = http.request(method, path, params=V, headers=headers, content=body)
                assert r.status_code == 401, f"{method} {path} with {name}: {r.status_code} {r.text[:200]}"
                assert r.content == b"" and r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
                checked += 1
        # the token exchange takes account keys only, never a token
        r = http.get(f"/accounts/{svc.account_id}/token", headers={"Authorization": f"Bearer {own_token}"})
        assert r.status_code == 401
        # one account never sees another's sessions
        r = http.put(f"/accounts/{svc.account_id}/sessions/sec-a", params=V, headers=good,
                     json={"maxLeaseTimeMinutes": 0, "size": "Standard"})
        assert r.status_code == 201
        b_auth = {"Authorization": f"Bearer {key_b}"}
        assert http.get(f"/accounts/{ACCOUNT_B}/sessions/sec-a", params=V, headers=b_auth).status_code == 404
        listed = http.get(f"/accounts/{ACCOUNT_B}/sessions", params=V, headers=b_auth).json()["sessions"]
        assert "sec-a" not in {s["id"] for s in listed}
        assert http.post(f"/accounts/{ACCOUNT_B}/sessions/sec-a/:stop", params=V, headers=b_auth).status_code == 404
    assert checked >= 12 * 10
    print(f"\nFIGURE rest_bad_credentials_refused: {checked}")


def test_newlines_in_ids_neither_pass_validation_nor_skip_the_account_check(
        svc2: tuple[RunningService, str]) -> None:
    """Regexes ending in "$" matched before a trailing newline, and a newline inside the path made
    the account pattern miss, so any account's key authenticated (found by the REST fuzz)."""
    svc, key_b = svc2
    with httpx.Client(base_url=svc.url, timeout=30) as http:
        own = {"Authorization": f"Bearer {svc.account_key}"}
        r = http.put(f"/accounts/{svc.account_id}/sessions/nl%0A", params=V, headers=own,
                     json={"maxLeaseTimeMinutes": 0, "size": "Standard"})
        assert r.status_code == 400, r.text
        for path in (f"/accounts/{svc.account_id}/sessions/%0A0", f"/accounts/{svc.account_id}/sessions/a%0Ab",
                     f"/v1/accounts/{svc.account_id}/sessions/%0A/properties"):
            r = http.get(path, params=V, headers={"Authorization": f"Bearer {key_b}"})
            assert r.status_code == 401, (path, r.status_code, r.text)


def test_an_access_token_never_buys_a_new_one_whatever_the_path_holds(
        svc2: tuple[RunningService, str]) -> None:
    """``GET /accounts/{id}/token%0A`` with an access token returned a fresh token (the auth
    check's pattern ended in \\Z, the router's in $): a leaked token never expired. The check
    now asks the router which route runs; every control character is tried."""
    svc, _ = svc2
    with httpx.Client(base_url=svc.url, timeout=30) as http:
        key = {"Authorization": f"Bearer {svc.account_key}"}
        token = http.get(f"/accounts/{svc.account_id}/token", headers=key).json()["AccessToken"]
        SECRET_SEEN.append(token)
        bearer = {"Authorization": f"Bearer {token}"}
        tried = 0
        for spelling in ("accounts", "Accounts"):
            for code in [*range(0x20), 0x7F]:
                for suffix in (f"%{code:02X}", f"%{code:02X}/", f"/%{code:02X}"):
                    r = http.get(f"/{spelling}/{svc.account_id}/token{suffix}", headers=bearer)
                    assert r.status_code in (400, 401, 404), (spelling, suffix, r.status_code, r.text)
                    assert "AccessToken" not in r.text
                    tried += 1
            assert http.get(f"/{spelling}/{svc.account_id}/token", headers=bearer).status_code == 401
            # a token path no route takes (found by the REST fuzz, seed 5): still keys only
            assert http.get(f"/{spelling}//token", headers=bearer).status_code == 401
            assert http.get(f"/{spelling}/{svc.account_id}/token", headers=key).status_code == 200
    print(f"\nFIGURE token_path_control_characters_tried: {tried}")


def test_render_host_routes_refuse_bad_credentials(svc2: tuple[RunningService, str]) -> None:
    svc, key_b = svc2
    good = {"Authorization": f"Bearer {svc.account_key}"}
    with httpx.Client(base_url=svc.url, timeout=30) as http:
        r = http.put(f"/accounts/{svc.account_id}/sessions/sec-host", params=V, headers=good,
                     json={"maxLeaseTimeMinutes": 600, "size": "Standard"})
        assert r.status_code == 201, r.text
        deadline = time.monotonic() + 90
        while (props := http.get(f"/accounts/{svc.account_id}/sessions/sec-host", params=V,
                                 headers=good).json())["status"] == "Starting":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert props["status"] == "Ready", props
        other_token = http.get(f"/accounts/{ACCOUNT_B}/token", headers={"Authorization": f"Bearer {key_b}"}
                               ).json()["AccessToken"]
        own_token = http.get(f"/accounts/{svc.account_id}/token", headers=good).json()["AccessToken"]
        SECRET_SEEN.extend([other_token, own_token])
    base = svc.host_address("sec-host")  # the host itself, behind the service
    bad = _bad_credentials(svc, key_b, other_token)
    bad["account key as bearer"] = f"Bearer {svc.account_key}"  # hosts take access tokens only
    # hosts require exp (a token without it never expired) and never take an HMAC token made
    # with the public key they hold (an algorithm-confusion forgery)
    no_exp = jwt.encode({"sub": svc.account_id, "aud": "farview"}, _signing_key(svc), algorithm="ES256")
    bad["token without exp"] = f"Bearer {no_exp}"
    hmac_forged = jwt.api_jws.PyJWS().encode(
        json.dumps({"sub": svc.account_id, "aud": "farview", "exp": int(time.time()) + 600}).encode(),
        b"this is not the service's key, whatever its length: " * 2, algorithm="HS256")
    bad["HS256 token"] = f"Bearer {hmac_forged}"
    routes = [("GET", "/health", None, None), ("POST", "/whep", b"v=0\r\nm=video 9\r\n", "application/sdp"),
              ("DELETE", "/whep/abc", None, None), ("POST", "/scene/models", b'{"source": "x"}', "application/json")]
    checked = 0
    with httpx.Client(base_url=base, timeout=30) as http:
        for method, path, body, ctype in routes:
            for name, credential in bad.items():
                headers = {"Content-Type": ctype} if ctype else {}
                if credential is not None:
                    headers["Authorization"] = credential
                r = http.request(method, path, headers=headers, content=body)
                assert r.status_code == 401, f"host {method} {path} with {name}: {r.status_code} {r.text[:200]}"
                assert r.headers["www-authenticate"].startswith("Bearer")
                for secret in SECRET_SEEN:
                    assert secret not in r.text
                checked += 1
        assert "another account" in http.get("/health", headers={"Authorization": f"Bearer {other_token}"}).text
        assert http.get("/health", headers={"Authorization": f"Bearer {own_token}"}).status_code == 200
        # bounded: an SDP offer over 64 KiB is refused
        r = http.post("/whep", content=b"v=0\r\n" + b"a=x\r\n" * 14_000,
                      headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {own_token}"})
        assert r.status_code == 413
    # render hosts listen on loopback only (TCP: signaling; ICE's UDP is DTLS-protected media)
    pid = svc.host_pid("sec-host")
    assert pid is not None
    host = psutil.Process(pid)
    listening = [c for c in host.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN]
    assert listening and all(c.laddr.ip == "127.0.0.1" for c in listening), listening
    # the host's command line and environment carry no credential
    cmdline, environ = " ".join(host.cmdline()), host.environ()
    for secret in [svc.account_key, key_b, *pem_secret_lines(_signing_key(svc))]:
        assert secret not in cmdline
        assert not any(secret in v for v in environ.values())
    print(f"\nFIGURE host_bad_credentials_refused: {checked}")


def test_request_size_and_header_bounds(svc2: tuple[RunningService, str]) -> None:
    svc, _ = svc2
    good = {"Authorization": f"Bearer {svc.account_key}", "Content-Type": "application/json"}
    url = f"/accounts/{svc.account_id}/sessions/sec-big"
    with httpx.Client(base_url=svc.url, timeout=30) as http:
        big = b'{"maxLeaseTimeMinutes": 1, "size": "Standard", "models": ["' + b"m" * 65_536 + b'"]}'
        r = http.put(url, params=V, headers=good, content=big)
        assert r.status_code == 413 and r.json()["error"]["code"] == "PayloadTooLarge"

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must hold while reading
            yield b'{"models": ["'
            for _ in range(100):
                yield b"m" * 4096
            yield b'"]}'

        r = http.put(url, params=V, headers=good, content=chunks())
        assert r.status_code == 413
        # a huge header is refused by the HTTP server (h11's limit); the service keeps running
        try:
            r = http.get(url, params=V, headers={**good, "X-Big": "h" * 2_000_000})
            assert r.status_code in (400, 413, 431), r.status_code
        except httpx.HTTPError:
            pass  # or the connection is reset
        assert http.get(f"/accounts/{svc.account_id}/sessions", params=V, headers=good).status_code == 200


def test_key_files_are_private(tmp_path: Path) -> None:
    svc = launch_service(tmp_path / "data", "--make-cert")
    try:
        for name in ("token-signing-key.pem", "account.json", "service.json", "tls/key.pem"):
            mode = stat.S_IMODE((svc.data_dir / name).stat().st_mode)
            assert mode == 0o600, f"{name} is {oct(mode)}"
    finally:
        svc.stop()


def _serve(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("FARVIEW_")} | (env or {})
    return subprocess.run([sys.executable, "-m", "farview", "serve", "--port", "0", "--data-dir",
                           str(tmp_path / "refused"), *args], capture_output=True, text=True, timeout=60,
                          env=run_env)


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "192.0.2.1"])
def test_non_loopback_plain_http_is_refused(tmp_path: Path, address: str) -> None:
    done = _serve(tmp_path, "--host", address)
    assert done.returncode == 2, done
    assert "refusing to serve plain http" in done.stderr and "--allow-insecure-remote" in done.stderr
    via_env = _serve(tmp_path, env={"FARVIEW_HOST": address})
    assert via_env.returncode == 2 and "refusing" in via_env.stderr


def test_non_loopback_needs_explicit_opt_in_or_tls(tmp_path: Path) -> None:
    for extra in (("--allow-insecure-remote",), ("--make-cert",)):
        svc = launch_service(tmp_path / extra[0].strip("-"), "--host", "0.0.0.0", *extra)
        try:
            assert svc.url.startswith("https://" if extra == ("--make-cert",) else "http://")
            with socket.create_connection(("127.0.0.1", int(svc.url.rsplit(":", 1)[1]))):
                pass
        finally:
            svc.stop()


def test_env_account_key_is_not_inherited_by_hosts(tmp_path: Path) -> None:
    key = "env-key-" + "k" * 40
    svc = launch_service(tmp_path / "data", env={"FARVIEW_ACCOUNT_ID": "envacct", "FARVIEW_ACCOUNT_KEY": key})
    try:
        with httpx.Client(base_url=svc.url, timeout=30, headers={"Authorization": f"Bearer {key}"}) as http:
            r = http.put("/accounts/envacct/sessions/env-1", params=V,
                         json={"maxLeaseTimeMinutes": 600, "size": "Standard"})
            assert r.status_code == 201, r.text
            deadline = time.monotonic() + 60
            while svc.host_pid("env-1", "envacct") is None:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        host = psutil.Process(svc.host_pid("env-1", "envacct"))
        environ = host.environ()
        assert "FARVIEW_ACCOUNT_KEY" not in environ, "render hosts inherit the account key"
        assert not any(key in v for v in environ.values())
    finally:
        svc.stop()
    assert key not in svc.output()


def test_no_credential_in_logs_or_urls(svc2: tuple[RunningService, str]) -> None:
    """Runs last in this module: greps everything the service and its hosts wrote."""
    svc, key_b = svc2
    good = {"Authorization": f"Bearer {svc.account_key}"}
    with httpx.Client(base_url=svc.url, timeout=30) as http:
        for i in range(2):  # with sec-host and the legacy one: the default max_sessions, 4
            http.put(f"/accounts/{svc.account_id}/sessions/page-{i}", params=V, headers=good,
                     json={"maxLeaseTimeMinutes": 0, "size": "Standard"})
        page = http.get(f"/accounts/{svc.account_id}/sessions", params={**V, "maxpagesize": 1}, headers=good)
        legacy = http.post(f"/v1/accounts/{svc.account_id}/sessions/create", headers=good,
                           json={"maxLeaseTime": "0:0:1"})
        assert legacy.status_code == 202, legacy.text
        http.get(f"/accounts/{svc.account_id}/sessions/sec-host", params=V, headers=good)
    urls = [page.json()["@nextLink"], legacy.headers["location"]]
    secrets_ = [svc.account_key, key_b, *pem_secret_lines(_signing_key(svc)), *SECRET_SEEN]
    for url in urls:
        assert not any(s in url for s in secrets_), url
    texts = {"service log": svc.output(), "service.json": (svc.data_dir / "service.json").read_text()}
    for log in (svc.data_dir / "hosts").rglob("*.log"):
        texts[str(log)] = log.read_text(errors="replace")
    assert len(texts) >= 3, "expected host logs"
    for where, text in texts.items():
        for secret in secrets_:
            assert secret not in text, f"a credential appears in {where}"
    assert "token" not in json.loads(texts["service.json"])
    print(f"\nFIGURE credentials_grepped: {len(set(secrets_))} credentials in {len(texts)} files, found 0")
