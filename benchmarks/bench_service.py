"""Session service benchmark: create → Ready time with the local host pool, and GET throughput
with 50 concurrent clients. Starts its own ``farview serve`` on 127.0.0.1 in a temp data dir.

    python3 benchmarks/bench_service.py [--sessions 10] [--clients 50] [--seconds 5]

Prints numbers; asserts nothing. The clients run on the same machine as the service and hosts,
so GET throughput is a lower bound shared with the load generator. The service's per-account rate
limits are raised for the run (``FARVIEW_READS_PER_SECOND``, ``FARVIEW_CREATES_PER_MINUTE``): with
them, most GETs were ``429`` answers, which the figures counted as throughput.
``--keep-rate-limits`` keeps the defaults; every figure counts answers of each status apart.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from farview.client.rest import AsyncRemoteRenderingClient, RemoteRenderingClient


def start_service(data_dir: Path, keep_rate_limits: bool = False
                  ) -> tuple[subprocess.Popen[bytes], str, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARVIEW_")}
    if not keep_rate_limits:
        env.update(FARVIEW_READS_PER_SECOND="1000000", FARVIEW_CREATES_PER_MINUTE="1000000")
    proc = subprocess.Popen([sys.executable, "-m", "farview", "serve", "--port", "0",
                             "--data-dir", str(data_dir), "--log-level", "warning"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 30
    info_path = data_dir / "service.json"
    while time.monotonic() < deadline:
        if info_path.exists():
            try:
                info = json.loads(info_path.read_text())
            except ValueError:
                info = {}
            if info.get("pid") == proc.pid:
                account = json.loads((data_dir / "account.json").read_text())
                return proc, info["url"], account["account_id"], account["account_key"]
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("farview serve did not start")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def bench_create(client: RemoteRenderingClient, count: int) -> None:
    times: list[float] = []
    for i in range(count):
        t0 = time.perf_counter()
        session = client.create_session(f"bench-{i}", max_lease_time_minutes=10)
        while session.get_properties().status == "Starting":
            time.sleep(0.01)
        elapsed = time.perf_counter() - t0
        if session.status != "Ready":
            print(f"  session {session.id} ended {session.status}: {session.properties.error}")
            continue
        times.append(elapsed * 1000)
        session.stop()
    if times:
        print(f"create → Ready ({len(times)} sessions, one at a time, 10 ms polling): "
              f"p50 {pct(times, 50):.0f} ms, p95 {pct(times, 95):.0f} ms, "
              f"min {min(times):.0f} ms, max {max(times):.0f} ms")


async def bench_get(url: str, account_id: str, key: str, clients: int, seconds: float) -> None:
    async with AsyncRemoteRenderingClient(url, account_id, key) as setup:
        await setup.create_session("bench-get", max_lease_time_minutes=10)
    path = f"/accounts/{account_id}/sessions/bench-get"
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=30,
                                     headers={"Authorization": f"Bearer {key}"}) as http:
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                resp = await http.get(path, params={"api-version": "2021-01-01"})
                if resp.status_code == 200:
                    latencies.append((time.perf_counter() - t0) * 1000)
                statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    wall = time.perf_counter() - t0
    answers = ", ".join(f"{code}: {n}" for code, n in sorted(statuses.items()))
    if not latencies:
        print(f"GET session, {clients} concurrent clients for {seconds:g} s: no 200 answer "
              f"({answers})")
        return
    print(f"GET session, {clients} concurrent clients for {seconds:g} s: "
          f"{len(latencies) / wall:.0f} answers 200/s, their latency p50 {pct(latencies, 50):.1f} "
          f"ms, p95 {pct(latencies, 95):.1f} ms (answers by status: {answers})")
    print(f"  (mean {statistics.fmean(latencies):.1f} ms over {len(latencies)} answers 200)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, default=10)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--keep-rate-limits", action="store_true",
                   help="keep the service's per-account rate limits (default: raised)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, url, account_id, key = start_service(Path(tmp), args.keep_rate_limits)
        try:
            print(f"service {url} (cpu count {os.cpu_count()})")
            with RemoteRenderingClient(url, account_id, key) as client:
                bench_create(client, args.sessions)
            asyncio.run(bench_get(url, account_id, key, args.clients, args.seconds))
        finally:
            proc.terminate()
            proc.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
