"""Session lifecycle and leases: ``Starting → Ready → Stopped | Expired | Error``.

:class:`SessionManager` owns one runner task per live session. The runner starts the session's
render host through the :class:`~service.pool.HostPool`, polls its ``/health`` (every 100 ms, up
to the start timeout) and marks the session Ready; then it waits for the first of: the lease
running out (→ Expired), the host process exiting (→ Error, with its exit status and an incident id
whose details, the host log's tail, go to the service's log),
or cancellation by :meth:`SessionManager.stop` (→ Stopped, already written by ``stop``). Whatever
ends the runner, its ``finally`` stops the host: no host outlives its session.

Leases are in lease units (``lease_unit_seconds``, 60 by default) and count from Ready;
``elapsedTimeMinutes`` is the whole units spent Ready (capped at the lease).

Concurrency: all methods run on the service's event loop; every store call runs in a worker
thread (``asyncio.to_thread``), so a slow or locked database never stalls the loop. Creates hold ``_create_lock`` around
the store's insert-if-absent transaction, so concurrent creates of one id give exactly one new
record. Status transitions out of Starting/Ready use the store's status guard, so a late runner
can never overwrite Stopped with Ready.

After a restart, sessions left Starting/Ready have no host any more: :meth:`recover` marks them
Error and kills a leftover host pid if it still runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil

from farview.input.ice import MediaNetwork
from farview.input.launch import DEFAULT_MAX_BITRATE, DEFAULT_MIN_BITRATE, HostConfig, ModelStatus
from farview.service.auth import Authenticator
from farview.service.conversions import account_storage
from farview.service.errors import ApiError, conflict, not_found, unprocessable
from farview.service.pool import HostHandle, HostPool, HostStartError
from farview.service.store import (
    ERROR,
    EXPIRED,
    READY,
    STARTING,
    STOPPED,
    SessionRecord,
    SessionStore,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_LEASE_MINUTES = 1440
HEALTH_POLL_SECONDS = 0.1
PURGE_INTERVAL_SECONDS = 3600.0
ALIVE_INTERVAL_SECONDS = 10.0
RETRY_WINDOW_S = 300.0
"""A create repeated this long after the first (same id, same settings) gets the session as
it is, ended or not: a client retrying a create whose answer it lost. Later, an ended
session's id is refused (409): ids are not used again."""
"""How often the service records that it is alive (in the store): after a crash, the next run
ends the lost sessions at that time rather than at its own start."""
LIVE = frozenset({STARTING, READY})
RESTART_MESSAGE = ("the service restarted and this session's host is gone; "
                   "create a new session")


@dataclass
class _Runner:
    task: asyncio.Task[None] | None = None
    lease_changed: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: bool = False
    """The runner was cancelled once by :meth:`SessionManager.stop`; further stops only wait."""


async def _finish(aw: Awaitable[None]) -> None:
    """Await ``aw`` to its end even when the awaiting task is cancelled meanwhile (the
    cancellation still ends the task once this returns)."""
    task = asyncio.ensure_future(aw)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True
    task.result()
    if cancelled:
        raise asyncio.CancelledError


class SessionManager:
    def __init__(self, store: SessionStore, pool: HostPool, auth: Authenticator, *,
                 lease_unit_seconds: float, host_start_timeout: float, max_sessions: int = 0,
                 max_sessions_per_account: int = 0, retention_days: float = 30.0,
                 clock: Callable[[], float] = time.time,
                 model_sources: str = "any", model_url_hosts: tuple[str, ...] = (),
                 media: MediaNetwork = MediaNetwork(),
                 bitrates: tuple[int, int] = (DEFAULT_MIN_BITRATE, DEFAULT_MAX_BITRATE)) -> None:
        self.store = store
        self.pool = pool
        self.auth = auth
        self.lease_unit = lease_unit_seconds
        self.host_start_timeout = host_start_timeout
        self.max_sessions = max_sessions
        """Live sessions (all accounts) the service runs at once; 0: no limit."""
        self.max_sessions_per_account = max_sessions_per_account
        """Live sessions one account may run at once (so that one account cannot take every
        one of ``max_sessions``); 0: no limit."""
        self.retention_seconds = retention_days * 86400
        self.clock = clock
        self.model_sources = model_sources
        """The model source policy every host gets (``any`` or ``store``)."""
        self.model_url_hosts = model_url_hosts
        self.media = media
        """Where every host's ICE candidates live."""
        self.bitrates = bitrates
        """(min, max) video bit rate every host's streams keep to."""
        self.storage_root: Path | None = None
        """Where accounts' conversion storage lives (set by :func:`service.app.create_app`):
        a host under the ``store`` policy may load files from its account's folder in it."""
        self.alive_interval = min(ALIVE_INTERVAL_SECONDS, lease_unit_seconds)
        """Heartbeat period: a crash costs the sessions it ended at most this much lease."""
        self._runners: dict[tuple[str, str], _Runner] = {}
        self._status_writers: dict[tuple[str, str], asyncio.Task[None]] = {}
        """Per live session: the task that writes its start-up models' states."""
        self._create_lock = asyncio.Lock()
        self._http: httpx.AsyncClient | None = None
        self._purger: asyncio.Task[None] | None = None

    async def _db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a store call in a worker thread: a slow disk or a locked database never stalls
        the event loop (every request and every session's runner share it)."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    # -- service lifetime ------------------------------------------------------------------

    async def start(self) -> None:
        self._http = httpx.AsyncClient(trust_env=False, timeout=2.0)
        await self._db(self.recover)
        await self._purge()
        await self._db(self.store.set_alive, self.clock())
        self._purger = asyncio.create_task(self._housekeeping())

    async def close(self) -> None:
        if self._purger:
            self._purger.cancel()
        tasks = [r.task for r in self._runners.values() if r.task]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.pool.shutdown()
        now = self.clock()
        # Hosts are gone; a later start would find these and mark them Error anyway.
        for rec in await self._db(self.store.with_status, LIVE):
            await self._db(self.store.update, rec.account_id, rec.session_id, only_if_status=LIVE,
                           status=ERROR, ended_at=now, error_code="ServiceStopped",
                           error_message="the service shut down and stopped this session's "
                           "host; create a new session")
        if self._http:
            await self._http.aclose()

    def recover(self) -> int:
        """Mark sessions whose hosts died with a previous service run as Error. They ended when
        that run was last known alive (its heartbeat in the store), not now: the downtime is no
        session's lease time."""
        now = self.clock()
        last_alive = self.store.alive_at()
        ended = now if last_alive is None else min(now, last_alive + self.alive_interval)
        count = 0
        for rec in self.store.with_status(LIVE):
            if rec.host_pid:
                _kill_leftover_host(rec.host_pid)
            self.store.update(rec.account_id, rec.session_id, only_if_status=LIVE, status=ERROR,
                              ended_at=max(ended, rec.created_at), error_code="ServiceRestarted",
                              error_message=RESTART_MESSAGE)
            count += 1
        if count:
            log.warning("%d session(s) lost their host when the service stopped; marked Error",
                        count)
        return count

    def purge(self) -> int:
        n = self.store.purge(older_than=self.clock() - self.retention_seconds)
        if n:
            log.info("purged %d session record(s) older than %g days", n,
                     self.retention_seconds / 86400)
        return n

    async def _purge(self) -> None:
        """Purge old records, and the host logs of the same age (each session's ends there)."""
        await self._db(self.purge)
        logs = await self.pool.purge_logs(self.clock() - self.retention_seconds)
        if logs:
            log.info("deleted %d render host log(s) older than %g days", logs,
                     self.retention_seconds / 86400)

    async def _housekeeping(self) -> None:
        """A heartbeat in the store every ``alive_interval`` (a later run knows when this one
        ended) and the purge of old records every PURGE_INTERVAL_SECONDS."""
        next_purge = time.monotonic() + PURGE_INTERVAL_SECONDS
        while True:
            await asyncio.sleep(self.alive_interval)
            try:
                await self._db(self.store.set_alive, self.clock())
                if time.monotonic() >= next_purge:
                    next_purge = time.monotonic() + PURGE_INTERVAL_SECONDS
                    await self._purge()
            except Exception:
                log.exception("the store's housekeeping failed; trying again later")

    # -- API operations -------------------------------------------------------------------

    async def create(self, account_id: str, session_id: str | None, *, size: str,
                     max_lease_minutes: int, models: tuple[str, ...] = ()
                     ) -> tuple[SessionRecord, bool]:
        """Create a session (→ (record, True)) or return the same-settings one (→ (record, False)).

        Raises a 409 ApiError when the id exists with other settings, a 403 one
        (``TooManySessions``) when a new session would be one over the account's
        ``max_sessions_per_account``, and a 503 one (``TooManySessions``) when it would be one
        over ``max_sessions``.
        """
        sid = session_id or str(uuid.uuid4())
        new = SessionRecord(account_id=account_id, session_id=sid, status=STARTING, size=size,
                            max_lease_minutes=max_lease_minutes, created_at=self.clock(),
                            models=models)
        async with self._create_lock:
            own = sum(1 for account, _ in self._runners if account == account_id)
            account_full = 0 < self.max_sessions_per_account <= own
            service_full = 0 < self.max_sessions <= len(self._runners)
            if (account_full or service_full) and \
                    await self._db(self.store.get, account_id, sid) is None:
                raise self._account_full(own) if account_full else self._full(own)
            record, inserted = await self._db(self.store.insert_if_absent, new)
            if inserted:
                runner = _Runner()
                self._runners[(account_id, sid)] = runner
                runner.task = asyncio.create_task(self._run(record, runner),
                                                  name=f"session {sid}")
        if inserted:
            return record, True
        # a retry of the same create: the same size and models, and a lease not over the
        # record's (a PATCH since may have extended it: the retry after it was refused)
        if (record.size, record.models) != (size, models) or \
                max_lease_minutes > record.max_lease_minutes:
            raise conflict(f"session {sid!r} already exists with other settings (size "
                           f"{record.size}, maxLeaseTimeMinutes {record.max_lease_minutes}); "
                           "use another id, or the same settings to retry a create")
        if record.terminal and self.clock() - record.created_at > RETRY_WINDOW_S:
            # (an id used again later got the ended session back, 200, as if it were new)
            raise conflict(f"session {sid!r} was created earlier and has ended "
                           f"({record.status}); session ids are not used again: create the "
                           "session with a new id")
        return record, False

    def _account_full(self, own: int) -> ApiError:
        """The refusal of a create while the account runs ``max_sessions_per_account``
        sessions (403, as ARR refused what an account may not do: a retry does not help until
        one of them ends)."""
        return ApiError(403, "TooManySessions",
                        f"this account runs {own} session{'' if own == 1 else 's'}, as many as "
                        "an account may at once on this service: stop a session you no longer "
                        "need; the service's operator sets the limit (farview serve "
                        "--max-sessions-per-account)")

    def _full(self, own: int) -> ApiError:
        """The refusal of a create while ``max_sessions`` sessions run (a host each: starting
        another would slow every running stream, or fail for memory). It says how many
        (``own``) are the account's own, not whose the others are."""
        limit = f"{self.max_sessions} session{'' if self.max_sessions == 1 else 's'}"
        return ApiError(503, "TooManySessions",
                        f"the service is full: it runs at most {limit} at once, and this "
                        f"account has {own} of them: stop a session you no longer need, or try "
                        "again when one ends; the service's operator can raise the limit "
                        "(farview serve --max-sessions)")

    async def get(self, account_id: str, session_id: str) -> SessionRecord:
        record = await self._db(self.store.get, account_id, session_id)
        if record is None:
            raise not_found(session_id)
        return record

    async def list_sessions(self, account_id: str, *, after_seq: int, limit: int,
                            include_ended: bool = False) -> list[SessionRecord]:
        """ARR's list: the account's Starting and Ready sessions; ``include_ended`` (a farview
        extension): the ended ones too, kept 30 days."""
        return await self._db(self.store.list_sessions, account_id, after_seq=after_seq,
                              limit=limit, live_only=not include_ended)

    async def update(self, account_id: str, session_id: str, *, max_lease_minutes: int
                     ) -> SessionRecord:
        record = await self.get(account_id, session_id)
        if record.terminal:
            raise unprocessable(f"session {session_id!r} is {record.status}; its lease cannot be "
                                "extended; create a new session")
        if max_lease_minutes > MAX_LEASE_MINUTES:
            raise unprocessable(f"maxLeaseTimeMinutes {max_lease_minutes} is over the limit of "
                                f"{MAX_LEASE_MINUTES}")
        if max_lease_minutes <= record.max_lease_minutes:
            raise unprocessable(f"maxLeaseTimeMinutes must be larger than the current "
                                f"{record.max_lease_minutes}; got {max_lease_minutes}")
        updated = await self._db(self.store.update, account_id, session_id, only_if_status=LIVE,
                                 max_lease_minutes=max_lease_minutes)
        if updated is None:  # ended between the read and the write
            return await self.update(account_id, session_id, max_lease_minutes=max_lease_minutes)
        runner = self._runners.get((account_id, session_id))
        if runner:
            runner.lease_changed.set()
        return updated

    async def stop(self, account_id: str, session_id: str) -> SessionRecord:
        """Stop a session and its host. Stopping an ended session changes nothing (still 204).
        Idempotent under concurrency: the runner is cancelled once, and every caller returns
        once its host is gone."""
        record = await self.get(account_id, session_id)
        if not record.terminal:
            updated = await self._db(self.store.update, account_id, session_id,
                                     only_if_status=LIVE, status=STOPPED, ended_at=self.clock())
            record = updated or await self.get(account_id, session_id)
            if updated is not None:
                log.info("session %s stopped by its client", session_id)
        runner = self._runners.get((account_id, session_id))
        if runner and runner.task:
            if not runner.stopping:
                runner.stopping = True
                runner.task.cancel()
            # Return once the host is gone (its stop is bounded by the pool's grace period).
            await asyncio.gather(asyncio.shield(runner.task), return_exceptions=True)
        return record

    def elapsed_minutes(self, record: SessionRecord) -> int:
        if record.ready_at is None:
            return 0
        end = record.ended_at if record.ended_at is not None else self.clock()
        elapsed = math.floor(max(0.0, end - record.ready_at) / self.lease_unit)
        return min(elapsed, record.max_lease_minutes)  # no session runs past its lease

    def elapsed_seconds(self, record: SessionRecord) -> float:
        """Time spent Ready, in lease-scaled seconds (60 per lease unit)."""
        if record.ready_at is None:
            return 0.0
        end = record.ended_at if record.ended_at is not None else self.clock()
        return max(0.0, end - record.ready_at) * 60.0 / self.lease_unit

    # -- the runner -----------------------------------------------------------------------

    async def _fail(self, record: SessionRecord, code: str, message: str) -> None:
        log.warning("session %s failed: %s", record.session_id, message)
        await self._db(self.store.update, record.account_id, record.session_id,
                       only_if_status=LIVE, status=ERROR, ended_at=self.clock(), error_code=code,
                       error_message=message)

    async def _run(self, record: SessionRecord, runner: _Runner) -> None:
        key = (record.account_id, record.session_id)
        handle: HostHandle | None = None
        try:
            spec = HostConfig(account_id=record.account_id, session_id=record.session_id,
                            token_public_key=self.auth.public_key, models=record.models,
                            size=record.size, model_sources=self.model_sources,
                            model_url_hosts=self.model_url_hosts, media=self.media,
                            account_storage=str(account_storage(self.storage_root,
                                                                record.account_id))
                            if self.storage_root is not None else None,
                            min_bitrate=self.bitrates[0], max_bitrate=self.bitrates[1])
            started = time.monotonic()
            try:
                handle = await self.pool.start(spec, timeout=self.host_start_timeout)
            except HostStartError as exc:
                await self._fail(record, "HostStartFailed", str(exc))
                return
            if await self._db(self.store.update, *key, only_if_status=LIVE,
                              hostname=handle.hostname, handshake_port=handle.port,
                              inspector_port=handle.port, host_pid=handle.pid) is None:
                return  # stopped while starting
            self._follow_model_status(key, handle)
            remaining = self.host_start_timeout - (time.monotonic() - started)
            problem = await self._wait_healthy(handle, record.account_id, remaining)
            if problem is not None:
                await self._fail(record, "HostStartFailed", problem)
                return
            if await self._db(self.store.update, *key, only_if_status=frozenset({STARTING}),
                              status=READY, ready_at=self.clock()) is None:
                return
            log.info("session %s is Ready (host %s:%d)", record.session_id, handle.hostname,
                     handle.port)
            await self._watch_ready(key, handle, runner)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("session %s: runner failed", record.session_id)
            await self._fail(record, "InternalServerError", f"the service failed to run this "
                       f"session ({type(exc).__name__}); create a new session")
        finally:
            if handle is not None:
                # finished even if another cancel arrives meanwhile: a host must never outlive
                # its session (two concurrent :stop calls used to cut this short)
                await _finish(self._release(handle, key))
            self._runners.pop(key, None)
            writer = self._status_writers.pop(key, None)
            if writer is not None:
                writer.cancel()

    def _follow_model_status(self, key: tuple[str, str], handle: HostHandle) -> None:
        """Keep the record's ``model_status`` as the host reports its start-up models: one
        writer per session, writing the newest states whenever they changed (in order)."""
        changed = asyncio.Event()

        async def write() -> None:
            while True:
                await changed.wait()
                changed.clear()
                states = tuple(s.to_wire() for s in handle.model_status.values())
                await self._db(self.store.update, *key, model_status=states)

        def on_status(_status: ModelStatus) -> None:
            changed.set()

        handle.on_model_status = on_status
        changed.set()
        self._status_writers[key] = asyncio.create_task(write(), name=f"model status {key[1]}")

    async def _release(self, handle: HostHandle, key: tuple[str, str]) -> None:
        await self.pool.release(handle, reason=await self._stop_reason(key))

    async def _stop_reason(self, key: tuple[str, str]) -> str:
        """What the host tells its client when it is stopped (sent before SIGTERM)."""
        record = await self._db(self.store.get, *key)
        status = record.status if record is not None else None
        if status == EXPIRED:
            return (f"session {key[1]} expired: its lease ran out; create a new session, or "
                    "renew the lease before it ends")
        if status == STOPPED:
            return f"session {key[1]} was stopped"
        return "the session service is shutting down"

    async def _wait_healthy(self, handle: HostHandle, account_id: str, budget: float
                            ) -> str | None:
        """Poll ``/health`` until 200; return None, or why the host never became healthy."""
        assert self._http is not None
        deadline = time.monotonic() + max(budget, 0.0)
        url = f"http://{handle.hostname}:{handle.port}/health"
        headers = {"Authorization": f"Bearer {self.auth.issue_token(account_id, lifetime=300)}"}
        last = "no answer"
        while True:
            if handle.exited():
                return await handle.wait_exit()
            try:
                resp = await self._http.get(url, headers=headers)
                if resp.status_code == 200:
                    return None
                last = f"HTTP {resp.status_code}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            if time.monotonic() >= deadline:
                return (f"the render host did not answer its health check within "
                        f"{self.host_start_timeout:.0f}s (last: {last})")
            await asyncio.sleep(HEALTH_POLL_SECONDS)

    async def _watch_ready(self, key: tuple[str, str], handle: HostHandle, runner: _Runner
                           ) -> None:
        exit_task = asyncio.create_task(handle.wait_exit())
        try:
            while True:
                record = await self._db(self.store.get, *key)
                if record is None or record.terminal or record.ready_at is None:
                    return
                deadline = record.ready_at + record.max_lease_minutes * self.lease_unit
                remaining = deadline - self.clock()
                if remaining <= 0:
                    if await self._db(self.store.update, *key, only_if_status=LIVE,
                                      status=EXPIRED, ended_at=self.clock()) is not None:
                        log.info("session %s expired", key[1])
                    return
                runner.lease_changed.clear()
                changed = asyncio.create_task(runner.lease_changed.wait())
                try:
                    await asyncio.wait({exit_task, changed}, timeout=remaining,
                                       return_when=asyncio.FIRST_COMPLETED)
                finally:
                    changed.cancel()
                if exit_task.done():
                    await self._fail(record, "HostExited", exit_task.result())
                    return
        finally:
            exit_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await exit_task


def _kill_leftover_host(pid: int) -> None:
    """Kill ``pid`` if it is still a farview render host (pids get reused)."""
    try:
        proc = psutil.Process(pid)
        cmdline = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return
    if "farview.host" in cmdline:
        log.warning("killing leftover render host pid %d from a previous service run", pid)
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
