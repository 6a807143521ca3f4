"""Load rounds against a running session service (shared by ``tests/faults/test_load.py`` and
``benchmarks/bench_load.py``).

One round: create ``sessions`` sessions at once, wait until Ready, connect a client to each,
stream (a new pose every 50 ms, frames consumed) for ``stream_seconds``, then stop them all and
wait until their render hosts are gone. Meanwhile a poller times ``GET session`` and ``GET
sessions`` against the service (the REST latency under load). After each round it records the
service's open file descriptors, threads and RSS, the live render hosts, and whether each
host's port still answers (a leaked listener).

Everything runs on one asyncio loop in the caller's process (the clients); the service and
hosts are real processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import statistics
import time
from dataclasses import dataclass, field

import httpx
import psutil

from farview.client.rest import AsyncRemoteRenderingClient
from farview.client.session import AsyncRenderingSession
from farview.input.pose import Pose
from tests.service.conftest import RunningService

API_VERSION = "2021-01-01"


@dataclass
class RoundResult:
    round: int
    sessions: int
    frames: list[int]
    """Frames each client received while streaming."""
    ready_seconds: float
    """Create → all Ready."""
    service_fds: int
    service_threads: int
    service_rss_mb: float
    hosts_left: int
    ports_still_open: int
    client_fds: int


@dataclass
class LoadResult:
    rounds: list[RoundResult] = field(default_factory=list)
    rest_latencies_ms: list[float] = field(default_factory=list)
    baseline_fds: int = 0
    baseline_rss_mb: float = 0.0

    def percentile(self, p: float) -> float:
        values = sorted(self.rest_latencies_ms)
        if not values:
            return float("nan")
        return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]

    def summary(self) -> str:
        lines = [f"REST latency under load: p50 {self.percentile(50):.1f} ms, p99 {self.percentile(99):.1f} ms "
                 f"({len(self.rest_latencies_ms)} requests)",
                 f"service before: {self.baseline_fds} fds, {self.baseline_rss_mb:.1f} MB RSS"]
        for r in self.rounds:
            lines.append(f"round {r.round}: {r.sessions} sessions Ready in {r.ready_seconds:.1f} s, frames "
                         f"{r.frames}, service {r.service_fds} fds / {r.service_threads} threads / "
                         f"{r.service_rss_mb:.1f} MB, hosts left {r.hosts_left}, ports open {r.ports_still_open}, "
                         f"client fds {r.client_fds}")
        return "\n".join(lines)


def _port_open(host: str, port: int) -> bool:
    with contextlib.closing(socket.socket()) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


async def _poll_rest(svc: RunningService, stop: asyncio.Event, out: list[float]) -> None:
    headers = {"Authorization": f"Bearer {svc.account_key}"}
    async with httpx.AsyncClient(base_url=svc.url, headers=headers, timeout=60) as http:
        i = 0
        while not stop.is_set():
            path = f"/accounts/{svc.account_id}/sessions" if i % 2 else \
                f"/accounts/{svc.account_id}/sessions/nonexistent-{i}"
            t0 = time.perf_counter()
            resp = await http.get(path, params={"api-version": API_VERSION})
            out.append((time.perf_counter() - t0) * 1000)
            assert resp.status_code in (200, 404), resp.text
            i += 1
            await asyncio.sleep(0.02)


async def _stream(session: AsyncRenderingSession, seconds: float) -> int:
    conn = await session.connect(viewport=(320, 240), timeout=60)
    frames = 0
    try:
        deadline = time.monotonic() + seconds
        i = 0
        # (until the first frame, however long it takes, within 30 s more)
        while time.monotonic() < deadline or (frames == 0 and time.monotonic() < deadline + 30):
            conn.send_pose(Pose((0.3 * ((i % 20) / 10 - 1), 0.1, 1.6)))
            i += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(conn.next_frame(timeout=None), 0.05)
                frames += 1
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    return frames


async def run_load(svc: RunningService, *, sessions: int, rounds: int, stream_seconds: float) -> LoadResult:
    proc = psutil.Process(svc.pid)
    me = psutil.Process()
    result = LoadResult(baseline_fds=proc.num_fds(), baseline_rss_mb=proc.memory_info().rss / 2**20)
    tag = secrets.token_hex(3)  # session ids are unique per run (a repeated PUT returns the old record)
    stop = asyncio.Event()
    poller = asyncio.create_task(_poll_rest(svc, stop, result.rest_latencies_ms))
    try:
        async with AsyncRemoteRenderingClient(svc.url, svc.account_id, svc.account_key) as rest:
            for n in range(1, rounds + 1):
                t0 = time.monotonic()
                created = await asyncio.gather(*(rest.create_session(f"load-{tag}-{n}-{i}", max_lease_time_minutes=600)
                                                 for i in range(sessions)))
                await asyncio.gather(*(s.wait_until_ready(timeout=180) for s in created))
                ready = time.monotonic() - t0
                endpoints = [_host_endpoint(svc, s.id) for s in created]
                frames = await asyncio.gather(*(_stream(s, stream_seconds) for s in created))
                await asyncio.gather(*(s.stop() for s in created))
                deadline = time.monotonic() + 30
                while svc.host_processes() and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                await asyncio.sleep(0.5)  # let the service close what it closes lazily
                result.rounds.append(RoundResult(
                    round=n, sessions=sessions, frames=list(frames), ready_seconds=ready,
                    service_fds=proc.num_fds(), service_threads=proc.num_threads(),
                    service_rss_mb=proc.memory_info().rss / 2**20, hosts_left=len(svc.host_processes()),
                    ports_still_open=sum(_port_open(h, p) for h, p in endpoints if h and p),
                    client_fds=me.num_fds()))
    finally:
        stop.set()
        await poller
    return result


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _host_endpoint(svc: RunningService, session_id: str) -> tuple[str, int]:
    """Where the session's render host listened (behind the service; from its store)."""
    host, port = svc.host_address(session_id).removeprefix("http://").rsplit(":", 1)
    return host, int(port)
