"""Soak: one real render host streaming to one client for N minutes (default 10); per minute
the pose → decoded latency (p50/p99, on the client's clock), frames, and the resident memory
(psutil RSS) of host and client; then a drift verdict.

    python3 benchmarks/bench_soak.py [--minutes 10] [--fps 30] [--resolution 640x360] [--json out.json]

Verdict rules (the first minute is warm-up and only reported): latency drifts when the last
minute's p50 exceeds the second minute's by more than 25 % and 2 ms; memory grows when a
least-squares line through minutes 2..N rises more than 2 MB per minute (host or client) and
the total rise exceeds 10 MB. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_stream import orbit_pose
from farview.client.connection import connect_to_host
from farview.streaming.frame import Frame
from farview.streaming.mailbox import LatestMailbox
from farview.streaming.stats import percentile
from tests.hosting import start_host

LATENCY_DRIFT_RATIO = 1.25
LATENCY_DRIFT_MS = 2.0
RSS_SLOPE_MB_PER_MIN = 2.0
RSS_TOTAL_MB = 10.0


def slope(values: list[float]) -> float:
    """Least-squares slope per step."""
    n = len(values)
    if n < 2:
        return 0.0
    mx, my = (n - 1) / 2, sum(values) / n
    den = sum((i - mx) ** 2 for i in range(n))
    return sum((i - mx) * (v - my) for i, v in enumerate(values)) / den


async def soak(url: str, token: str, host_pid: int, *, minutes: int, minute_s: float, fps: int,
               size: tuple[int, int]) -> list[dict[str, Any]]:
    latencies: list[float] = []  # keep numbers, not frames: a minute of decoded frames is ~600 MB

    def on_frame(frame: Frame) -> None:
        if frame.pose_to_receive_ms is not None:
            latencies.append(frame.pose_to_receive_ms + (frame.receive_to_decoded_ms or 0.0))
        conn.mark_presented(frame)

    # every decoded frame goes to on_frame as the next one replaces it in the mailbox
    conn = await connect_to_host(url, token, viewport=size, timeout=30,
                                 mailbox=LatestMailbox(on_discard=on_frame))
    host_proc, me = psutil.Process(host_pid), psutil.Process()
    rows: list[dict[str, Any]] = []
    try:
        await conn.request("configure_stream", max_fps=fps)
        interval = 1.0 / fps
        start = time.perf_counter()
        n = 0
        for minute in range(1, minutes + 1):
            latencies.clear()
            end = start + minute * minute_s
            while time.perf_counter() < end:
                conn.send_pose(orbit_pose(time.perf_counter() - start))
                n += 1
                await asyncio.sleep(max(0.0, start + n * interval - time.perf_counter()))
                if not conn.is_connected:
                    raise RuntimeError(f"the stream ended in minute {minute}: {conn.close_reason}")
            lat = list(latencies)
            row = {"minute": minute, "frames": len(lat), "p50_ms": percentile(lat, 50),
                   "p99_ms": percentile(lat, 99), "host_rss_mb": host_proc.memory_info().rss / 2**20,
                   "client_rss_mb": me.memory_info().rss / 2**20}
            rows.append(row)
            print(f"minute {minute:>3}: {row['frames']:>6} frames  pose→decoded p50 {row['p50_ms']:6.1f} ms  "
                  f"p99 {row['p99_ms']:6.1f} ms  host RSS {row['host_rss_mb']:7.1f} MB  "
                  f"client RSS {row['client_rss_mb']:7.1f} MB", flush=True)
    finally:
        await conn.close()
    return rows


def verdict(rows: list[dict[str, Any]]) -> tuple[bool, list[str]]:
    notes: list[str] = []
    ok = True
    if len(rows) < 3:
        return True, ["too short for a verdict (needs 3 minutes: one warm-up, two to compare)"]
    ref, last = rows[1], rows[-1]
    if math.isfinite(ref["p50_ms"]) and math.isfinite(last["p50_ms"]):
        drift = last["p50_ms"] - ref["p50_ms"]
        drifted = last["p50_ms"] > ref["p50_ms"] * LATENCY_DRIFT_RATIO and drift > LATENCY_DRIFT_MS
        ok &= not drifted
        notes.append(f"latency p50 minute 2 {ref['p50_ms']:.1f} ms → minute {last['minute']} "
                     f"{last['p50_ms']:.1f} ms ({drift:+.1f} ms): {'DRIFT' if drifted else 'no drift'}")
    for who in ("host", "client"):
        series = [r[f"{who}_rss_mb"] for r in rows[1:]]
        per_min, total = slope(series), series[-1] - series[0]
        grows = per_min > RSS_SLOPE_MB_PER_MIN and total > RSS_TOTAL_MB
        ok &= not grows
        notes.append(f"{who} RSS {series[0]:.1f} → {series[-1]:.1f} MB ({per_min:+.2f} MB/min): "
                     f"{'GROWS' if grows else 'flat'}")
    return ok, notes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--minute-seconds", type=float, default=60.0, help="length of one reported 'minute'")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--resolution", default="640x360")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    w, h = (int(v) for v in args.resolution.lower().split("x"))
    print(f"soak: {args.minutes} × {args.minute_seconds:g} s at {args.fps} poses/s, {w}x{h} (sample model)",
          flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        host = start_host(Path(tmp))
        try:
            rows = asyncio.run(soak(host.whep_url, host.token(), host.proc.pid, minutes=args.minutes,
                                    minute_s=args.minute_seconds, fps=args.fps, size=(w, h)))
        finally:
            host.stop()
    ok, notes = verdict(rows)
    for note in notes:
        print(note)
    print("verdict:", "stable" if ok else "DRIFT")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "verdict": ok, "notes": notes}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
