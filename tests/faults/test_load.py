"""Load (small): two concurrent sessions on the local pool, created, connected, streamed and
stopped twice. No render host, listening port or service file descriptor may outlive a round;
the REST latency under that load is reported (never asserted). The full run is
``benchmarks/bench_load.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.loadrun import run_load
from tests.service.conftest import launch_service

pytestmark = pytest.mark.slow

FD_SLACK = 4
"""Descriptors the service may open lazily after its first round (pooled keep-alive sockets)."""


async def test_two_sessions_two_rounds_leak_nothing(tmp_path: Path, figure: Callable[[str, object], None]) -> None:
    svc = launch_service(tmp_path / "data")
    try:
        result = await asyncio.wait_for(run_load(svc, sessions=2, rounds=2, stream_seconds=0.5), 300)
    finally:
        svc.stop()
    print("\n" + result.summary())
    first, second = result.rounds
    for r in result.rounds:
        assert r.hosts_left == 0, f"round {r.round}: {r.hosts_left} render host(s) outlived their session"
        assert r.ports_still_open == 0, f"round {r.round}: a stopped host's port still answers"
        assert all(f > 0 for f in r.frames), f"round {r.round}: a client received no frame: {r.frames}"
    assert second.service_fds <= first.service_fds + FD_SLACK, (first, second)
    figure("load_small_rest_p50_ms", round(result.percentile(50), 1))
    figure("load_small_rest_p99_ms", round(result.percentile(99), 1))
    figure("load_small_service_fds", [result.baseline_fds] + [r.service_fds for r in result.rounds])
    figure("load_small_hosts_left", [r.hosts_left for r in result.rounds])
