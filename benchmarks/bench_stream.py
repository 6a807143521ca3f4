"""Pose sent → decoded frame, farview's stream against stock aiortc, in one run.

Starts one real render host process (the shipped sample model), connects a real client on
loopback, and drives a camera orbit at ``--fps`` poses per second. Each frame's latency is
measured on the client clock from sending the pose it was rendered with to having it decoded.
Then the same poses and renders go through stock aiortc (its own H.264 encoder, jitter buffer
and decoder thread) on the same host, and the ratio is printed.

    python benchmarks/bench_stream.py --resolution 1280x720 --fps 60 --duration 10
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

from farview.client.connection import connect_to_host
from farview.input.mathutil import quat_from_yaw_pitch
from farview.input.pose import Pose
from farview.streaming.frame import Frame
from farview.streaming.mailbox import LatestMailbox
from farview.streaming.stats import percentile
from tests.hosting import start_host


def orbit_pose(t: float, radius: float = 1.6) -> Pose:
    yaw = 0.6 * math.sin(t * 1.3)
    pos = (radius * math.sin(yaw), 0.15, radius * math.cos(yaw))
    return Pose(pos, quat_from_yaw_pitch(yaw, -0.05))


async def run_mode(url: str, token: str, host_pid: int, *, stock: bool, size: tuple[int, int],
                   fps: int, duration: float, warmup: float) -> dict[str, Any]:
    frames: list[Frame] = []
    # every decoded frame: each lands in the list as the next one replaces it in the mailbox
    mailbox: LatestMailbox[Frame] = LatestMailbox(on_discard=frames.append)
    conn = await connect_to_host(url, token, viewport=size, stock_receiver=stock, mailbox=mailbox)
    try:
        await conn.request("configure_stream", max_fps=fps, stock_aiortc=stock)
        host_proc, me = psutil.Process(host_pid), psutil.Process()
        interval = 1.0 / fps
        start = time.perf_counter()
        measuring = False
        n = 0
        while True:
            now = time.perf_counter()
            t = now - start
            if not measuring and t >= warmup:
                measuring = True
                frames.clear()
                host_proc.cpu_percent()
                me.cpu_percent()
                t_measure = now
            if t >= warmup + duration:
                break
            conn.send_pose(orbit_pose(t))
            n += 1
            await asyncio.sleep(max(0.0, start + n * interval - time.perf_counter()))
        await asyncio.sleep(0.2)
        elapsed = time.perf_counter() - t_measure
        host_cpu, client_cpu = host_proc.cpu_percent(), me.cpu_percent()
    finally:
        await conn.close()
    lat = [f.pose_to_receive_ms + (f.receive_to_decoded_ms or 0.0) for f in frames
           if f.pose_to_receive_ms is not None]
    metas = [f.metadata for f in frames if f.metadata is not None]
    return {
        "mode": "stock-aiortc" if stock else "farview",
        "frames": len(frames),
        "fps": len(frames) / elapsed,
        "pose_to_decoded_ms": {q: percentile(lat, q) for q in (50, 95, 99)} | {"max": max(lat, default=math.nan)},
        "host_render_ms_p50": percentile([m.render_us / 1000 for m in metas], 50),
        "host_convert_readback_ms_p50": percentile([(m.convert_us + m.readback_us) / 1000 for m in metas], 50),
        "host_encode_ms_p50": percentile([m.encode_us / 1000 for m in metas], 50) if not stock else None,
        "cpu_percent": {"host": host_cpu, "client": client_cpu},
        "bitrate_kbps": sum(m.size_bytes for m in metas) * 8 / 1000 / elapsed if not stock else None,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    w, h = (int(v) for v in args.resolution.lower().split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        host = start_host(Path(tmp))
        try:
            results = []
            for stock in (False, True):
                results.append(await run_mode(host.whep_url, host.token(), host.proc.pid, stock=stock,
                                              size=(w, h), fps=args.fps, duration=args.duration,
                                              warmup=args.warmup))
                await asyncio.sleep(0.5)
        finally:
            host.stop()
    ours, stock_r = results
    ratio = stock_r["pose_to_decoded_ms"][50] / ours["pose_to_decoded_ms"][50]
    return {"resolution": args.resolution, "fps_target": args.fps, "duration_s": args.duration,
            "results": results, "stock_over_farview_p50": ratio}


def print_table(report: dict[str, Any]) -> None:
    print(f"pose sent → decoded frame, {report['resolution']} at {report['fps_target']} poses/s, "
          f"{report['duration_s']} s per mode (sample model, llvmpipe)")
    print(f"{'mode':<14}{'frames':>7}{'fps':>7}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}"
          f"{'render':>8}{'conv+rb':>8}{'encode':>8}{'host%':>7}{'client%':>8}")
    for r in report["results"]:
        lat = r["pose_to_decoded_ms"]
        enc = r["host_encode_ms_p50"]
        print(f"{r['mode']:<14}{r['frames']:>7}{r['fps']:>7.1f}{lat[50]:>8.1f}{lat[95]:>8.1f}{lat[99]:>8.1f}"
              f"{lat['max']:>8.1f}{r['host_render_ms_p50']:>8.2f}{r['host_convert_readback_ms_p50']:>8.2f}"
              f"{(enc if enc is not None else math.nan):>8.2f}{r['cpu_percent']['host']:>7.0f}"
              f"{r['cpu_percent']['client']:>8.0f}")
    print(f"stock aiortc p50 / farview p50 = {report['stock_over_farview_p50']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolution", default="1280x720")
    parser.add_argument("--fps", type=int, default=60)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    report = asyncio.run(main_async(args))
    print_table(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
