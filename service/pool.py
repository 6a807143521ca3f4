"""Host pools: where render hosts run. :class:`HostPool` is the interface; :class:`LocalHostPool`
starts one ``python -m farview.host`` subprocess per session on this machine (a cluster pool
comes later).

Start-up contract with the host (:mod:`farview.input.launch`): the pool writes one JSON line
(:class:`~farview.input.launch.HostConfig`) to the host's stdin, which it keeps open, and reads
the host's listening line from its stdout. The host's stderr goes to
``<data-dir>/hosts/<account>/<session>.log``; its last lines explain a failed or dead host.

Concurrency: everything runs on the service's event loop. Hosts start in their own process group
(``start_new_session``) so that a Ctrl-C in the service's terminal reaches only the service, which
then stops every host itself (:meth:`LocalHostPool.shutdown`); a host also exits when its parent
dies (it watches its parent pid). Invariant: every started host is in ``_handles`` until reaped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import signal
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

from farview.input.launch import (
    HOST_MODULE,
    HostConfig,
    ModelStatus,
    parse_listening,
    parse_model_status,
    python_module,
    stopping_line,
)

log = logging.getLogger(__name__)

DEFAULT_STOP_GRACE = 5.0
LOG_TAIL_LINES = 8


class HostStartError(Exception):
    """The render host could not be started (the message says why, with an incident id whose
    details, the host log's last lines, are in the service's log)."""


class HostHandle(ABC):
    """One running render host."""

    hostname: str
    """Where the host's signaling answers."""
    port: int
    pid: int | None
    """Process id when the host runs on this machine (None elsewhere)."""
    model_status: dict[str, ModelStatus]
    """The start-up models' states the host reported so far, by source."""
    on_model_status: Callable[[ModelStatus], None] | None = None
    """Called on the event loop for each state the host reports from now on."""

    @abstractmethod
    async def wait_exit(self) -> str:
        """Wait until the host is gone; return what happened ("exited with code 1 ...")."""

    @abstractmethod
    def exited(self) -> bool: ...

    @abstractmethod
    async def stop(self, grace: float = DEFAULT_STOP_GRACE, reason: str | None = None) -> None:
        """Stop the host: ask politely, wait ``grace`` seconds, then kill. Idempotent.

        ``reason`` is passed to the host first, which tells its client why the stream ends.
        """


class HostPool(ABC):
    @abstractmethod
    async def start(self, spec: HostConfig, *, timeout: float) -> HostHandle:
        """Start a host and return once it listens (it may not be healthy yet).

        Raises :class:`HostStartError` when it exits or does not listen within ``timeout``.
        """

    @abstractmethod
    async def release(self, handle: HostHandle, reason: str | None = None) -> None:
        """Stop ``handle`` (idempotent, telling it ``reason``) and forget it."""

    @abstractmethod
    async def shutdown(self) -> None:
        """Stop every host this pool started."""

    async def purge_logs(self, older_than: float) -> int:
        """Delete the logs of hosts that are gone, last written before ``older_than`` (a Unix
        time); return how many. A pool that keeps no logs has none to delete."""
        return 0


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:200] or "_"


def _describe_returncode(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def incident(summary: str, log_path: Path) -> str:
    """Log ``summary`` with the host log's last lines under a new incident id, and return what
    a client may see: the summary and the id, not the log's path or its lines (they can carry
    file names, model sources and internals)."""
    incident_id = secrets.token_hex(4)
    log.warning("incident %s: %s; last lines of %s:\n%s", incident_id, summary, log_path,
                _log_tail(log_path))
    return f"{summary} (incident {incident_id}; the service's log has the details)"


def _log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def _remove_old_logs(log_dir: Path, older_than: float, keep: set[Path]) -> int:
    """Remove ``log_dir/<account>/<session>.log`` files last written before ``older_than``, except
    ``keep``, and the account folders left empty."""
    removed = 0
    for path in log_dir.glob("*/*.log"):
        with contextlib.suppress(OSError):
            if path not in keep and path.stat().st_mtime < older_than:
                path.unlink()
                removed += 1
    for folder in log_dir.glob("*/"):
        with contextlib.suppress(OSError):
            folder.rmdir()  # (only an empty one goes)
    return removed


EXIT_POLL_S = 0.1
"""How often a host's exit is looked for (see :func:`_reaped`)."""


async def _reaped(proc: asyncio.subprocess.Process) -> int:
    """``proc``'s exit status once it has exited. ``Process.wait()`` alone also waits until the
    host's pipes close, and the host's children inherit them (its level-of-detail worker and
    multiprocessing's resource tracker, spawned): one still starting kept a killed host's
    session from turning Error for over 10 s. So the exit itself is looked for, and what is
    left of the host's process group (its own, ``start_new_session``) is killed then."""
    while proc.returncode is None:
        await asyncio.sleep(EXIT_POLL_S)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    await proc.wait()
    return proc.returncode


_CREDENTIAL_ENV = ("FARVIEW_ACCOUNT_KEY",)


def _host_environment() -> dict[str, str]:
    """The service's environment minus account credentials: a render host needs none (it gets
    only the token public key, on stdin), and a compromised host must not learn an account key."""
    return {k: v for k, v in os.environ.items() if k not in _CREDENTIAL_ENV}


class LocalHostHandle(HostHandle):
    def __init__(self, proc: asyncio.subprocess.Process, hostname: str, port: int,
                 log_path: Path) -> None:
        self._proc = proc
        self.hostname = hostname
        self.port = port
        self.pid = proc.pid
        self.log_path = log_path
        self._stopping = False
        self.model_status: dict[str, ModelStatus] = {}
        self.on_model_status: Callable[[ModelStatus], None] | None = None
        self._drain = asyncio.ensure_future(self._read_stdout())

    async def _read_stdout(self) -> None:
        """After its listening line the host reports its start-up models on stdout; anything
        else is read and dropped (a full pipe must never block the host)."""
        assert self._proc.stdout is not None
        with contextlib.suppress(Exception):
            while line := await self._proc.stdout.readline():
                status = parse_model_status(line)
                if status is None:
                    continue
                self.model_status[status.source] = status
                if self.on_model_status is not None:
                    self.on_model_status(status)

    def exited(self) -> bool:
        return self._proc.returncode is not None

    def describe_exit(self) -> str:
        code = self._proc.returncode
        what = "is still running" if code is None else _describe_returncode(code)
        return incident(f"the render host (pid {self.pid}) {what}", self.log_path)

    async def wait_exit(self) -> str:
        await _reaped(self._proc)
        return self.describe_exit()

    async def stop(self, grace: float = DEFAULT_STOP_GRACE, reason: str | None = None) -> None:
        self._stopping = True
        if self._proc.stdin is not None and not self._proc.stdin.is_closing():
            if reason and self._proc.returncode is None:
                # the host reads further stdin lines: this one says why it is being stopped
                line = stopping_line(reason) + "\n"
                with contextlib.suppress(OSError, RuntimeError):
                    self._proc.stdin.write(line.encode())
                    await asyncio.wait_for(self._proc.stdin.drain(), 1.0)
            self._proc.stdin.close()
        if self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.terminate()
            try:
                await asyncio.wait_for(_reaped(self._proc), grace)
            except TimeoutError:
                log.warning("render host pid %d ignored SIGTERM for %.1fs; killing it",
                            self.pid, grace)
                with contextlib.suppress(ProcessLookupError):
                    self._proc.kill()
                await _reaped(self._proc)
        self._drain.cancel()


class LocalHostPool(HostPool):
    """Render hosts as subprocesses of the service (``python -m farview.host``)."""

    def __init__(self, data_dir: Path, *, bind: str = "127.0.0.1") -> None:
        self.log_dir = data_dir / "hosts"
        self.bind = bind
        self._handles: set[LocalHostHandle] = set()

    async def start(self, spec: HostConfig, *, timeout: float) -> LocalHostHandle:
        log_path = self.log_dir / _safe_name(spec.account_id) / f"{_safe_name(spec.session_id)}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log_file:
            proc = await asyncio.create_subprocess_exec(
                *python_module(HOST_MODULE), "--bind", self.bind, "--port", "0",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log_file,
                start_new_session=True, env=_host_environment())
        log.info("session %s: render host pid %d starting (log %s)", spec.session_id, proc.pid,
                 log_path)
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(spec.to_json().encode() + b"\n")
            await proc.stdin.drain()
            line = await asyncio.wait_for(proc.stdout.readline(), timeout)
            if not line:
                await _reaped(proc)
                raise HostStartError(incident(
                    f"the render host {_describe_returncode(proc.returncode or 0)} before it "
                    "listened", log_path))
            hostname, port = parse_listening(line)
            handle = LocalHostHandle(proc, hostname, port, log_path)
        except BaseException as exc:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await _reaped(proc)
            if isinstance(exc, TimeoutError):
                raise HostStartError(incident(
                    f"the render host did not listen within {timeout:g} s", log_path)) from None
            if isinstance(exc, (ValueError, KeyError, BrokenPipeError, ConnectionResetError)):
                raise HostStartError(f"the render host failed to start: {exc}") from None
            raise
        self._handles.add(handle)
        return handle

    async def release(self, handle: HostHandle, reason: str | None = None) -> None:
        """Stop ``handle`` (telling it ``reason``) and forget it."""
        await handle.stop(reason=reason)
        if isinstance(handle, LocalHostHandle):
            self._handles.discard(handle)

    async def purge_logs(self, older_than: float) -> int:
        keep = {h.log_path for h in self._handles}  # (a quiet host's log may be old)
        return await asyncio.to_thread(_remove_old_logs, self.log_dir, older_than, keep)

    async def shutdown(self, grace: float = DEFAULT_STOP_GRACE) -> None:
        handles = list(self._handles)
        if handles:
            log.info("stopping %d render host(s)", len(handles))
        await asyncio.gather(*(h.stop(grace) for h in handles), return_exceptions=True)
        self._handles.clear()
