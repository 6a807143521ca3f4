"""Fixtures that run the real session service (``python -m farview serve``) on 127.0.0.1
with a temporary data dir and a 1-second lease unit, and real ``farview host`` processes.

``service``: one service per test module (bad-input and API tests share it).
``start_service``: a factory for tests that restart, kill or reconfigure their own service.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from farview.client.rest import RemoteRenderingClient
from farview.input.launch import HOST_MODULE

SERVICE_START_TIMEOUT = 30.0
LEASE_UNIT_SECONDS = "1"


@dataclass
class RunningService:
    data_dir: Path
    proc: subprocess.Popen[bytes]
    url: str
    account_id: str
    account_key: str = field(repr=False)
    cert: str | None
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def client(self, **kw: object) -> RemoteRenderingClient:
        verify = kw.pop("verify", self.cert or True)
        return RemoteRenderingClient(self.url, self.account_id, self.account_key,
                                     verify=verify, **kw)  # type: ignore[arg-type]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.account_key}"}

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.data_dir / "sessions.db", timeout=10)

    def host_address(self, session_id: str, account_id: str | None = None) -> str:
        """``http://host:port`` where the session's render host listens (on loopback, behind the
        service: only the service's store knows it)."""
        with contextlib.closing(self.db()) as db:
            row = db.execute("SELECT hostname, handshake_port FROM sessions WHERE account_id=? "
                             "AND session_id=?", (account_id or self.account_id, session_id)).fetchone()
        return f"http://{row[0]}:{row[1]}"

    def host_pid(self, session_id: str, account_id: str | None = None) -> int | None:
        """The render host's pid, as the service records it in its store."""
        with contextlib.closing(self.db()) as db:
            row = db.execute("SELECT host_pid FROM sessions WHERE account_id=? AND session_id=?",
                             (account_id or self.account_id, session_id)).fetchone()
        return row[0] if row else None

    def host_processes(self) -> list[psutil.Process]:
        """Live render-host children of this service."""
        try:
            children = psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        out = []
        for child in children:
            with contextlib.suppress(psutil.Error):
                if HOST_MODULE in child.cmdline() and child.status() != psutil.STATUS_ZOMBIE:
                    out.append(child)
        return out

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def launch_service(data_dir: Path, *extra: str, env: dict[str, str] | None = None,
                   expect_file: bool = True) -> RunningService:
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"serve-{time.monotonic_ns()}.log"
    run_env = {k: v for k, v in os.environ.items()
               if k not in ("FARVIEW_ACCOUNT_ID", "FARVIEW_ACCOUNT_KEY", "FARVIEW_URL",
                            "FARVIEW_DATA_DIR")}
    run_env.update(env or {})
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "farview", "serve", "--port", "0", "--data-dir",
             str(data_dir), "--lease-unit-seconds", LEASE_UNIT_SECONDS, "--log-level", "info",
             *extra], stdout=log_file, stderr=subprocess.STDOUT, env=run_env)
    info_path = data_dir / "service.json"
    deadline = time.monotonic() + SERVICE_START_TIMEOUT
    while True:
        if info_path.exists():
            with contextlib.suppress(ValueError):
                info = json.loads(info_path.read_text())
                if info.get("pid") == proc.pid:
                    break
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"farview serve did not start:\n{log_path.read_text()}")
        time.sleep(0.05)
    account_id = env.get("FARVIEW_ACCOUNT_ID") if env else None
    account_key = env.get("FARVIEW_ACCOUNT_KEY") if env else None
    if not (account_id and account_key):
        account = json.loads((data_dir / "account.json").read_text())
        account_id, account_key = account["account_id"], account["account_key"]
    return RunningService(data_dir=data_dir, proc=proc, url=info["url"], account_id=account_id,
                          account_key=account_key, cert=info.get("cert"), log_path=log_path)


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[Callable[..., RunningService]]:
    started: list[RunningService] = []

    def start(*extra: str, data_dir: Path | None = None, **kw: object) -> RunningService:
        svc = launch_service(data_dir or tmp_path / "data", *extra, **kw)  # type: ignore[arg-type]
        started.append(svc)
        return svc

    yield start
    for svc in started:
        if svc.proc.poll() is None:
            svc.stop()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    svc = launch_service(tmp_path_factory.mktemp("service"))
    yield svc
    assert svc.stop() == 0, svc.output()


@contextlib.contextmanager
def service_with_session(data_dir: Path, session_id: str, lease_minutes: int = 60
                         ) -> Iterator[RunningService]:
    """A real service in ``data_dir`` with one Ready session ``session_id``; stopped after."""
    svc = launch_service(data_dir)
    try:
        with svc.client() as rest:
            rest.create_session(session_id, max_lease_time_minutes=lease_minutes
                                ).wait_until_ready(90)
        yield svc
    finally:
        svc.stop()


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def insert_record(svc: RunningService, session_id: str, *, account_id: str | None = None,
                  status: str = "Stopped", ended_at: float | None = None,
                  created_at: float | None = None) -> None:
    """Write a terminal record straight into the store (for paging and purge tests)."""
    now = time.time()
    with contextlib.closing(svc.db()) as db, db:
        db.execute(
            "INSERT INTO sessions (account_id, session_id, status, size, max_lease_minutes, "
            "created_at, ended_at) VALUES (?, ?, ?, 'Standard', 10, ?, ?)",
            (account_id or svc.account_id, session_id, status, created_at or now,
             ended_at if ended_at is not None else now))
