"""Finding the local session service and its account (what ``farview serve`` wrote).

The data directory is ``$FARVIEW_DATA_DIR`` or ``~/.local/share/farview``. While the service runs
it holds ``service.json`` (``{"url", "pid", "cert", ...}``); ``account.json`` (mode 0600)
holds ``{"account_id", "account_key"}`` when the service created a local account.
Reading these is pure file access; :func:`embedded_service` starts (and later stops) a local
``farview serve`` for commands such as ``farview demo`` and ``farview bench``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from farview.client.errors import ServerError
from farview.input.launch import (
    ACCOUNT_FILE,
    SERVICE_FILE,
    SERVICE_MODULE,
    default_data_dir,
    python_module,
)


@dataclass(frozen=True)
class LocalService:
    url: str
    """Base URL, e.g. ``http://127.0.0.1:8400``."""
    pid: int | None
    cert: str | None
    """The self-signed certificate to trust for https, if the service made one."""
    account_id: str | None
    account_key: str | None = field(repr=False)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ServerError(f"cannot read {path}: {exc}") from None
    return raw if isinstance(raw, dict) else None


def find_local_service(directory: str | os.PathLike[str] | None = None) -> LocalService:
    """Read ``service.json`` and ``account.json``; raise :class:`ServerError` if not running."""
    base = Path(directory).expanduser() if directory else default_data_dir()
    info = _read_json(base / SERVICE_FILE)
    if info is None or "url" not in info:
        raise ServerError(f"no local farview service found ({base / SERVICE_FILE} is missing); "
                          "start one with `farview serve`, or name another: --url on the command line, "
                          "RemoteRenderingClient(url, account_id, key) in Python")
    account = _read_json(base / ACCOUNT_FILE) or {}
    return LocalService(url=str(info["url"]), pid=info.get("pid"), cert=info.get("cert"),
                        account_id=account.get("account_id"),
                        account_key=account.get("account_key"))


EMBEDDED_LOG = "embedded-serve.log"
"""Where a service that :func:`start_local_service` started logs, in its data directory."""
_PR_SET_PDEATHSIG = 1


def _end_with_parent(parent: int) -> Callable[[], None]:
    """For ``preexec_fn``: the child gets SIGTERM when ``parent`` ends (Linux's
    ``PR_SET_PDEATHSIG``), and ends at once if it already has."""
    def setup() -> None:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)
    return setup


def start_local_service(directory_arg: Path | None) -> subprocess.Popen[bytes]:
    """Start ``farview serve`` on a free port in the data directory; return once it is up."""
    directory = directory_arg or default_data_dir()
    directory.mkdir(parents=True, exist_ok=True)
    service_file = directory / SERVICE_FILE
    before = service_file.stat().st_mtime if service_file.exists() else None
    log_path = directory / EMBEDDED_LOG
    # its log goes to a file: a pipe nobody reads once it is up would stop it when full
    with log_path.open("ab") as log_file:
        start = log_file.tell()
        # Its own session: a Ctrl+C on the terminal reaches only the command, which stops its
        # session and then this service (the service, stopped by the same Ctrl+C, left the
        # session Error and the command unable to stop it); and it gets SIGTERM if the command
        # dies without stopping it.
        proc = subprocess.Popen(
            [*python_module(SERVICE_MODULE), "--port", "0", "--data-dir", str(directory)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log_file,
            start_new_session=True, preexec_fn=_end_with_parent(os.getpid()),
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            with log_path.open("rb") as f:
                f.seek(start)
                err = f.read().decode(errors="replace")
            raise ServerError(f"the session service did not start:\n{err[-2000:]}")
        if service_file.exists() and service_file.stat().st_mtime != before:
            try:
                if find_local_service(directory).pid == proc.pid:
                    return proc
            except ServerError:
                pass
        time.sleep(0.05)
    proc.terminate()
    raise ServerError("the session service did not start within 30 s")


def local_service_alive(directory: Path | None) -> bool:
    """True when ``service.json`` names a process that is still running."""
    try:
        svc = find_local_service(directory)
    except ServerError:
        return False
    if svc.pid is None:
        return False
    try:
        os.kill(svc.pid, 0)
    except OSError:
        return False
    return True


@contextlib.contextmanager
def embedded_service(directory: Path | None, *, wanted: bool = True,
                     progress: Callable[[str], None] = lambda text: None) -> Iterator[subprocess.Popen[bytes] | None]:
    """Make sure a local service runs for the block: start ``farview serve`` in ``directory``
    if none is alive there (and ``wanted``), and stop what was started when the block ends."""
    service = None
    if wanted and not local_service_alive(directory):
        progress("starting the local session service…")
        service = start_local_service(directory)
    try:
        yield service
    finally:
        if service is not None:
            progress("stopping the session service…")
            service.terminate()
            try:
                service.wait(15)
            except subprocess.TimeoutExpired:
                service.kill()
                service.wait()
