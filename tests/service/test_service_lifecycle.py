"""Sessions driven by real ``farview host`` processes: lifecycle, leases, host death,
concurrent creates, legacy v1 routes, restart and shutdown, https, the session CLI."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest

from farview.client.errors import (
    ConflictError,
    LeaseError,
    ServerError,
    SessionNotFoundError,
    SessionStateError,
    TooManySessionsError,
)
from farview.client.scene import load_model_http
from tests.service.conftest import RunningService, insert_record, wait_for

pytestmark = pytest.mark.slow
V = {"api-version": "2021-01-01"}
READY_TIMEOUT = 60.0


def gone(pid: int | None) -> bool:
    if pid is None:
        return True
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_full_lifecycle(service: RunningService) -> None:
    with service.client() as client:
        session = client.create_session("life", max_lease_time_minutes=600, size="Standard")
        assert session.status in ("Starting", "Ready")
        # A retried create with the same settings is 200 with the same session.
        with httpx.Client(base_url=service.url, trust_env=False) as http:
            resp = http.put(f"/accounts/{service.account_id}/sessions/life", params=V,
                            headers=service.auth,
                            json={"maxLeaseTimeMinutes": 600, "size": "Standard"})
            assert resp.status_code == 200 and resp.json()["id"] == "life"
        with pytest.raises(ConflictError, match="other settings"):
            client.create_session("life", max_lease_time_minutes=600, size="Premium")

        props = session.wait_until_ready(READY_TIMEOUT)
        assert props.status == "Ready" and props.hostname == "127.0.0.1"
        assert props.handshake_port and props.arr_inspector_port
        # the service is the session's one public endpoint: hostname/handshakePort name it
        assert props.handshake_port == int(service.url.rsplit(":", 1)[1])
        assert session.host_url == f"http://127.0.0.1:{props.handshake_port}"
        # The exchanged token reaches the host through the service.
        token = session.access_token()
        assert session.access_token() == token  # cached
        loaded = load_model_http(session.scene_url, token, "sample_engine")
        assert loaded.triangles > 0 and loaded.name == "sample_engine"
        pid = service.host_pid("life")
        assert pid and not gone(pid)

        with pytest.raises(LeaseError, match="larger than the current 600"):
            session.renew(600)
        with pytest.raises(LeaseError, match="1440"):
            session.renew(1441)
        assert session.renew(700).max_lease_time_minutes == 700
        assert session.renew().max_lease_time_minutes == 715

        session.stop()
        assert session.status == "Stopped"
        assert gone(pid)
        client.stop_session("life")  # stopping a stopped session: still 204
        assert client.get_session("life").status == "Stopped"
        with pytest.raises(LeaseError, match="Stopped"):
            session.renew(800)
        with pytest.raises(SessionStateError, match="life is Stopped; create a new session"):
            session.wait_until_ready(1)


def test_lease_expires_and_stops_the_host(service: RunningService) -> None:
    with service.client() as client:
        session = client.create_session("short", max_lease_time_minutes=2)
        session.wait_until_ready(READY_TIMEOUT)
        pid = service.host_pid("short")
        wait_for(lambda: session.get_properties().status == "Expired", 10, "expiry")
        assert session.properties.elapsed_time_minutes == 2
        wait_for(lambda: gone(pid), 10, "the host to exit")
        with pytest.raises(SessionStateError, match="Expired"):
            session.wait_until_ready(1)


def test_host_death_is_error_with_what_happened(service: RunningService) -> None:
    with service.client() as client:
        session = client.create_session("doomed", max_lease_time_minutes=600)
        session.wait_until_ready(READY_TIMEOUT)
        pid = service.host_pid("doomed")
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: session.get_properties().status == "Error", 10, "Error")
        error = session.properties.error
        assert error is not None and error["code"] == "HostExited"
        assert "SIGKILL" in error["message"] and str(pid) in error["message"]


def test_concurrent_creates_of_one_id(service: RunningService) -> None:
    def put(size: str) -> int:
        resp = httpx.put(f"{service.url}/accounts/{service.account_id}/sessions/race", params=V,
                         headers=service.auth, trust_env=False, timeout=30,
                         json={"maxLeaseTimeMinutes": 30, "size": size})
        return resp.status_code

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(put, ["Standard"] * 8 + ["Premium"] * 4))
    assert codes.count(201) == 1
    # whichever size won the race: its retries are 200, the other size's requests 409
    won, lost = (codes[:8], codes[8:]) if 201 in codes[:8] else (codes[8:], codes[:8])
    assert set(won) <= {200, 201} and lost == [409] * len(lost), codes
    with service.client() as client:
        assert sum(s.id == "race" for s in client.list_sessions()) == 1
        client.stop_session("race")


def test_legacy_v1_routes(service: RunningService) -> None:
    base = f"{service.url}/v1/accounts/{service.account_id}/sessions"
    with httpx.Client(trust_env=False, headers=service.auth, timeout=30) as http:
        resp = http.post(f"{base}/create", json={"maxLeaseTime": "0:10:0",
                                                 "models": ["sample_engine.glb"],
                                                 "size": "standard"})
        assert resp.status_code == 202
        sid = resp.json()["sessionId"]
        assert resp.headers["location"].endswith(f"/sessions/{sid}")
        wait_for(lambda: http.get(f"{base}/{sid}/properties").json()["sessionStatus"] == "Ready",
                 READY_TIMEOUT, "Ready")
        props = http.get(f"{base}/{sid}/properties").json()
        assert props["sessionMaxLeaseTime"] == "00:10:00" and props["sessionSize"] == "Standard"
        assert props["sessionHostname"] == "127.0.0.1"
        assert set(props) == {"sessionId", "sessionStatus", "sessionSize", "sessionHostname",
                              "sessionElapsedTime", "sessionMaxLeaseTime", "message"}
        with service.db() as db:
            models = db.execute("SELECT models FROM sessions WHERE session_id=?",
                                (sid,)).fetchone()[0]
        assert json.loads(models) == ["sample_engine.glb"]
        resp = http.patch(f"{base}/{sid}", json={"maxLeaseTime": "1:0:0"})
        assert resp.status_code == 200 and resp.json()["sessionMaxLeaseTime"] == "01:00:00"
        assert http.post(f"{base}/create", json={"maxLeaseTime": "soon"}).status_code == 400
        assert sid in [s["sessionId"] for s in http.get(base).json()["sessions"]]
        pid = service.host_pid(sid)
        resp = http.delete(f"{base}/{sid}")
        assert resp.status_code == 204 and resp.content == b""
        assert http.get(f"{base}/{sid}/properties").json()["sessionStatus"] == "Stopped"
        assert gone(pid)


def test_restart_keeps_records_and_marks_live_sessions_error(
        start_service: Callable[..., RunningService]) -> None:
    svc = start_service()
    with svc.client() as client:
        client.create_session("survivor", max_lease_time_minutes=600).wait_until_ready(
            READY_TIMEOUT)
        client.create_session("ended", max_lease_time_minutes=600).stop()
    pid = svc.host_pid("survivor")
    insert_record(svc, "ancient", ended_at=time.time() - 31 * 86400)
    insert_record(svc, "recent", ended_at=time.time() - 29 * 86400)
    # Freeze the host so that it cannot notice its parent died: the new service must kill it.
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    svc.stop(signal.SIGKILL)
    svc2 = start_service(data_dir=svc.data_dir)
    assert svc2.account_key == svc.account_key
    with svc2.client() as client:
        survivor = client.get_session("survivor").properties
        assert survivor.status == "Error"
        assert survivor.error is not None and "service restarted" in survivor.error["message"]
        assert client.get_session("ended").status == "Stopped"
        assert client.get_session("recent").status == "Stopped"
        ids = {s.id for s in client.list_sessions(include_ended=True)}
    assert "ancient" not in ids  # purged: ended more than 30 days ago
    wait_for(lambda: gone(pid), 10, "the leftover host to be killed")


def test_shutdown_leaves_no_host_processes(start_service: Callable[..., RunningService]) -> None:
    svc = start_service()
    with svc.client() as client:
        a = client.create_session("a", max_lease_time_minutes=600)
        b = client.create_session("b", max_lease_time_minutes=600)
        a.wait_until_ready(READY_TIMEOUT)
        b.wait_until_ready(READY_TIMEOUT)
        client.create_session("c", max_lease_time_minutes=600)  # still Starting, maybe
    pids = [p.pid for p in svc.host_processes()]
    assert len(pids) >= 2
    assert svc.stop(signal.SIGTERM) == 0
    for pid in pids:
        assert gone(pid), f"host {pid} outlived the service"
    assert not (svc.data_dir / "service.json").exists()
    out = svc.output()
    assert svc.account_key not in out
    assert "account.json" in out


def test_a_create_over_max_sessions_is_refused_until_one_ends(
        start_service: Callable[..., RunningService]) -> None:
    svc = start_service("--max-sessions", "1")
    env = {**os.environ, "FARVIEW_URL": svc.url, "FARVIEW_ACCOUNT_ID": svc.account_id,
           "FARVIEW_ACCOUNT_KEY": svc.account_key}
    with svc.client() as client:
        a = client.create_session("a", max_lease_time_minutes=600)
        with pytest.raises(TooManySessionsError) as refused:
            client.create_session("b", max_lease_time_minutes=600)
        assert refused.value.status_code == 503 and refused.value.code == "TooManySessions"
        assert ("the service is full: it runs at most 1 session at once, and this account has "
                "1 of them") in str(refused.value)
        assert "farview serve --max-sessions" in str(refused.value)
        with pytest.raises(SessionNotFoundError):  # nothing was recorded for the refused one
            client.get_session("b").get_properties()
        # a retried create of the running session is answered as before, not refused
        assert client.create_session("a", max_lease_time_minutes=600).session_uuid == "a"
        cli = subprocess.run([sys.executable, "-m", "farview", "session", "create", "c"],
                             capture_output=True, text=True, env=env, timeout=60)
        assert cli.returncode == 1 and "the service is full" in cli.stderr, cli
        a.wait_until_ready(READY_TIMEOUT)
        a.stop()
        b = client.create_session("b", max_lease_time_minutes=600)  # a has ended: room again
        b.wait_until_ready(READY_TIMEOUT)
        b.stop()
    assert len(svc.host_processes()) == 0


def test_one_account_cannot_take_every_session_when_the_operator_bounds_it(
        tmp_path: Path) -> None:
    """``--max-sessions-per-account``: an account at its limit is refused (403, as ARR refused
    what an account may not do), saying what to do; another account still creates; a retried
    create of a running session is answered; one ended makes room."""
    from farview.client import RemoteRenderingClient
    from tests.faults.conftest import ACCOUNT_B, two_account_service

    svc, key_b = two_account_service(tmp_path / "data", "--max-sessions", "3",
                                     "--max-sessions-per-account", "1")
    try:
        with svc.client() as a, RemoteRenderingClient(svc.url, ACCOUNT_B, key_b) as b:
            a1 = a.create_session("a1", max_lease_time_minutes=600)
            with pytest.raises(TooManySessionsError) as refused:
                a.create_session("a2", max_lease_time_minutes=600)
            assert refused.value.status_code == 403 and refused.value.code == "TooManySessions"
            assert str(refused.value).startswith(
                "this account runs 1 session, as many as an account may at once on this "
                "service: stop a session you no longer need"), refused.value
            assert "farview serve --max-sessions-per-account" in str(refused.value)
            with pytest.raises(SessionNotFoundError):  # nothing was recorded for it
                a.get_session("a2").get_properties()
            assert a.create_session("a1", max_lease_time_minutes=600).session_uuid == "a1"
            b1 = b.create_session("b1", max_lease_time_minutes=600)  # another account: room
            a1.wait_until_ready(READY_TIMEOUT)
            a1.stop()
            a2 = a.create_session("a2", max_lease_time_minutes=600)  # a1 has ended: room again
            for session in (a2, b1):
                session.wait_until_ready(READY_TIMEOUT)
                session.stop()
        wait_for(lambda: not svc.host_processes(), 20, "the hosts to end")
    finally:
        svc.stop()


def test_account_file_is_private_and_key_never_printed(service: RunningService) -> None:
    for name in ("account.json", "token-signing-key.pem"):
        mode = stat.S_IMODE((service.data_dir / name).stat().st_mode)
        assert mode == 0o600, name
    assert service.account_key not in service.output()


def test_an_operators_mistakes_leave_nothing_behind_and_sighup_stops_cleanly(
        start_service: Callable[..., RunningService], tmp_path: Path) -> None:
    """A busy port left a new account, key and store in the data dir; a file as the data dir
    and an unknown log level were tracebacks; files in a data dir made beforehand (0755) were
    0644; SIGHUP (the terminal closed) killed the service without its clean-up."""
    def serve(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "farview", "serve", *args],
                              capture_output=True, text=True, timeout=60)

    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    svc = start_service(data_dir=shared)
    busy = serve("--data-dir", str(tmp_path / "second"), "--port", str(httpx.URL(svc.url).port))
    assert busy.returncode == 2 and "cannot bind" in busy.stderr, busy
    assert not list((tmp_path / "second").glob("*.json")) + list((tmp_path / "second").glob("*.db")) \
        + list((tmp_path / "second").glob("*.pem"))
    (tmp_path / "afile").write_text("")
    not_dir = serve("--data-dir", str(tmp_path / "afile"))
    assert not_dir.returncode == 2 and "is a file; give a folder" in not_dir.stderr, not_dir
    level = serve("--data-dir", str(tmp_path / "third"), "--log-level", "bogus")
    assert level.returncode == 2 and "invalid choice: 'bogus'" in level.stderr, level
    with svc.client() as client:
        client.create_session("modes", max_lease_time_minutes=5).wait_until_ready(READY_TIMEOUT)
    for path in [shared / "sessions.db", *(shared / "hosts").rglob("*.log")]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert svc.stop(signal.SIGHUP) == 0
    assert "farview serve: stopped" in svc.output()
    assert not (shared / "service.json").exists() and not svc.host_processes()


def test_https_with_made_certificate(start_service: Callable[..., RunningService]) -> None:
    svc = start_service("--make-cert")
    assert svc.url.startswith("https://127.0.0.1:") and svc.cert
    with svc.client(verify=svc.cert) as client:
        session = client.create_session("tls", max_lease_time_minutes=5)
        assert client.get_session("tls").id == session.id
        session.wait_until_ready(READY_TIMEOUT)
        assert session.host_url == svc.url  # https, as the service is (it said http)
        client.stop_session("tls")
    with svc.client(verify=True) as client, pytest.raises(ServerError, match="does not trust"):
        client.list_sessions()


def test_plain_http_on_a_public_address_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    proc = subprocess.run(
        [sys.executable, "-m", "farview", "serve", "--host", "0.0.0.0", "--port", "0",
         "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "refusing to serve plain http" in proc.stderr


def test_tls_files_that_do_not_load_stop_the_start_with_a_message(tmp_path: Path) -> None:
    """A missing or malformed certificate ended in uvicorn's 33-line traceback."""
    from farview.service.tls import make_self_signed

    cert, key = make_self_signed(tmp_path / "made", ["127.0.0.1"])
    other_cert, _ = make_self_signed(tmp_path / "other", ["127.0.0.1"])
    (tmp_path / "garbage.pem").write_text("not a certificate\n")
    cases = [((tmp_path / "none.pem", key), f"cannot read the TLS file {tmp_path / 'none.pem'}: "
              "it does not exist"),
             ((tmp_path / "garbage.pem", key), "do not load"),
             ((other_cert, key), "do not load")]  # a key that is not the certificate's
    assert (cert, key) != (other_cert, key)
    for (c, k), says in cases:
        proc = subprocess.run(
            [sys.executable, "-m", "farview", "serve", "--port", "0", "--data-dir",
             str(tmp_path / "data"), "--tls-cert", str(c), "--tls-key", str(k)],
            capture_output=True, text=True, timeout=30)
        assert proc.returncode == 2, proc.stderr
        assert says in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_session_cli(service: RunningService) -> None:
    env = {**os.environ, "FARVIEW_DATA_DIR": str(service.data_dir)}
    for key in ("FARVIEW_URL", "FARVIEW_ACCOUNT_ID", "FARVIEW_ACCOUNT_KEY"):
        env.pop(key, None)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "farview", "session", *args],
                              capture_output=True, text=True, env=env, timeout=90)

    created = cli("create", "cli-1", "--lease", "30", "--wait", "--json")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["status"] == "Ready"
    shown = cli("show", "cli-1")
    assert "status    Ready" in shown.stdout and "host      http://127.0.0.1:" in shown.stdout
    listed = json.loads(cli("list", "--json").stdout)
    assert "cli-1" in [s["id"] for s in listed["sessions"]]
    assert json.loads(cli("renew", "cli-1", "--lease", "40", "--json").stdout)[
        "maxLeaseTimeMinutes"] == 40
    stopped = cli("stop", "cli-1")
    assert stopped.returncode == 0 and "cli-1 is Stopped" in stopped.stdout
    missing = cli("show", "nope")
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    # a model that fails stops the session it was created for (it stayed Ready, its host
    # running, until its lease ran out)
    failed = cli("create", "cli-2", "--wait", "--model", "/nonexistent/x.glb")
    assert failed.returncode == 1
    assert "/nonexistent/x.glb failed to load (NotFound)" in failed.stderr
    assert "stopping session cli-2" in failed.stderr
    shown_failed = cli("show", "cli-2").stdout
    assert "status    Stopped" in shown_failed
    # the model's failure is in the plain output too (it was in --json only)
    assert "model     /nonexistent/x.glb: Failed (NotFound: " in shown_failed, shown_failed
    assert "model     " in shown.stdout and ": Loaded" in shown.stdout, shown.stdout
    for result in (created, shown, stopped):
        assert service.account_key not in result.stdout + result.stderr


def test_the_cli_never_takes_a_key_on_its_command_line(service: RunningService, tmp_path: Path) -> None:
    """``--account-key`` put the key where ``ps`` shows it to every local user; the key now
    comes from a file, the environment, the local account file or a prompt."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("FARVIEW_URL", "FARVIEW_ACCOUNT_ID", "FARVIEW_ACCOUNT_KEY", "FARVIEW_DATA_DIR")}
    env["FARVIEW_DATA_DIR"] = str(tmp_path / "no-local-service")
    key_file = tmp_path / "key"
    key_file.write_text(service.account_key + "\n")
    base = [sys.executable, "-m", "farview", "session", "list", "--url", service.url,
            "--account-id", service.account_id]
    ok = subprocess.run([*base, "--account-key-file", str(key_file), "--json"], capture_output=True,
                        text=True, env=env, timeout=60, stdin=subprocess.DEVNULL)
    assert ok.returncode == 0, ok.stderr
    assert "sessions" in json.loads(ok.stdout)
    refused = subprocess.run([*base, "--account-key", service.account_key], capture_output=True,
                             text=True, env=env, timeout=60, stdin=subprocess.DEVNULL)
    assert refused.returncode == 2 and "--account-key is not taken" in refused.stderr
    assert service.account_key not in refused.stderr
    # a key that starts with "-" (token_urlsafe makes them) is refused the same way, not echoed
    dash = subprocess.run([*base, "--account-key", "-" + service.account_key], capture_output=True,
                          text=True, env=env, timeout=60, stdin=subprocess.DEVNULL)
    assert dash.returncode == 2 and "--account-key is not taken" in dash.stderr, dash.stderr
    assert service.account_key not in dash.stderr
    key_file.write_text("")
    empty = subprocess.run([*base, "--account-key-file", str(key_file)], capture_output=True, text=True,
                           env=env, timeout=60, stdin=subprocess.DEVNULL)
    assert empty.returncode == 1 and "is empty" in empty.stderr


def test_the_local_account_is_never_sent_to_another_service(service: RunningService) -> None:
    """``farview session list --url OTHER`` with no account key took this machine's local
    account (``account.json``) and sent its key to OTHER (found by hand: the README's remote
    command, on a machine that also ran ``farview serve``). A listener on loopback records
    what reaches it."""
    import http.server
    import threading

    heard: list[str] = []

    class Listener(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            heard.append(self.headers.get("Authorization") or "")
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Listener)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    env = {k: v for k, v in os.environ.items()
           if k not in ("FARVIEW_URL", "FARVIEW_ACCOUNT_ID", "FARVIEW_ACCOUNT_KEY")}
    env["FARVIEW_DATA_DIR"] = str(service.data_dir)  # the local service and its account

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "farview", "session", "list", *args],
                              capture_output=True, text=True, env=env, timeout=60,
                              stdin=subprocess.DEVNULL)

    try:
        url = f"http://127.0.0.1:{other.server_address[1]}"
        for args, missing in (((), "an account id and key are"),
                              (("--account-id", service.account_id),
                               f"the key of account {service.account_id} is")):
            refused = cli("--url", url, *args)
            assert refused.returncode != 0
            assert f"{missing} needed for {url}: --account-id ID" in refused.stderr, refused.stderr
            assert "this machine's own account is used only for its own service" in refused.stderr
        assert heard == []  # nothing reached the other service
        # the local service's own URL (as service.json names it, or by another loopback
        # name) still takes the local account
        port = service.url.rsplit(":", 1)[1]
        for own in (service.url, f"http://localhost:{port}/"):
            assert cli("--url", own).returncode == 0
    finally:
        other.shutdown()


def test_concurrent_stops_all_wait_for_the_host_and_leave_none(service: RunningService) -> None:
    """Two (here eight) concurrent ``:stop`` calls: the second used to cancel the first's
    clean-up, leaving a host running and accepting connections while its session said Stopped."""
    with service.client() as client:
        client.create_session("stop-race", max_lease_time_minutes=600).wait_until_ready(READY_TIMEOUT)
    pid = service.host_pid("stop-race")
    assert pid is not None

    async def stop_all() -> list[int]:
        async with httpx.AsyncClient(base_url=service.url, timeout=60, headers={
                "Authorization": f"Bearer {service.account_key}"}) as http:
            responses = await asyncio.gather(*(
                http.post(f"/accounts/{service.account_id}/sessions/stop-race/:stop",
                          params={"api-version": "2021-01-01"}) for _ in range(8)))
        return [r.status_code for r in responses]

    assert asyncio.run(stop_all()) == [204] * 8
    assert gone(pid), "the host outlived its session's stop"  # every stop returned after it was gone
    with service.client() as client:
        assert client.get_session("stop-race").status == "Stopped"
    assert service.output().count("session stop-race stopped by its client") == 1  # logged once


def test_a_second_service_on_the_same_data_directory_is_refused(
        start_service: Callable[..., RunningService]) -> None:
    """It used to mark the first service's live sessions Error and kill their hosts."""
    svc = start_service()
    with svc.client() as client:
        client.create_session("kept", max_lease_time_minutes=600).wait_until_ready(READY_TIMEOUT)
    second = subprocess.run([sys.executable, "-m", "farview", "serve", "--port", "0", "--data-dir",
                             str(svc.data_dir)], capture_output=True, text=True, timeout=60)
    assert second.returncode == 2, second.stderr
    assert "another farview serve is running on the data directory" in second.stderr
    assert f"pid {svc.pid}" in second.stderr
    with svc.client() as client:
        assert client.get_session("kept").status == "Ready"
    assert svc.host_pid("kept") is not None and not gone(svc.host_pid("kept"))


def test_lease_figures_after_a_crash_do_not_count_the_downtime(
        start_service: Callable[..., RunningService]) -> None:
    """A session lost in a crash ended when the service was last alive, not when the next run
    started; and no session reports more lease used than it had."""
    svc = start_service()
    with svc.client() as client:
        client.create_session("crashed", max_lease_time_minutes=600).wait_until_ready(READY_TIMEOUT)
        client.create_session("short", max_lease_time_minutes=3).wait_until_ready(READY_TIMEOUT)
    time.sleep(1.0)
    svc.stop(signal.SIGKILL)
    time.sleep(5.0)  # the downtime: 5 lease units (1 s each in these tests)
    svc2 = start_service(data_dir=svc.data_dir)
    with svc2.client() as client:
        crashed = client.get_session("crashed").properties
        short = client.get_session("short").properties
    assert crashed.status == "Error"
    # alive ~1-2 units before the crash (+1 heartbeat); counting the downtime gives 6+
    assert crashed.elapsed_time_minutes <= 5, crashed
    assert short.elapsed_time_minutes <= short.max_lease_time_minutes, short


def test_a_dead_hosts_error_names_an_incident_not_its_log(service: RunningService) -> None:
    """The error body carried the host log's path and last lines (file names, model sources,
    internals); the client now gets the reason and an incident id, the log keeps the details."""
    with service.client() as client:
        session = client.create_session("incident", max_lease_time_minutes=600)
        session.wait_until_ready(READY_TIMEOUT)
        pid = service.host_pid("incident")
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: session.get_properties().status == "Error", 10, "Error")
        message = session.properties.error["message"]  # type: ignore[index]
    assert "killed by signal SIGKILL" in message and "incident " in message
    assert ".log" not in message and "last lines" not in message and str(service.data_dir) not in message
    incident_id = message.split("incident ")[1].split(";")[0]
    wait_for(lambda: f"incident {incident_id}: " in service.output(), 5, "the incident in the log")
