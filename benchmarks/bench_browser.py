"""Pose → present in a browser (the web viewer in Chromium) beside farview's Python client, in
one run, on one session: the same orbit, one pose per display frame (60 Hz), the same
stream size.

    python3 benchmarks/bench_browser.py [--seconds 10] [--size 960x540] [--rounds 2]

Starts its own ``farview serve`` on 127.0.0.1 in a temp data dir and one session; the clients
take turns (a session has one client at a time), alternating, ``--rounds`` times each.
What "present" means differs, and the table says so:

- browser: the frame's expected display time (``requestVideoFrameCallback``'s
  ``expectedDisplayTime``), so it includes Chromium's jitter buffer, decode, and compositor
  (the next vsync);
- Python: the decoded frame handed to the application (``next_frame``), no display (the
  headless client, as ``farview view --headless`` runs).

Prints numbers; asserts nothing. Needs Chromium and Playwright (``scripts/install`` with
``FARVIEW_TEST_DEBS=1`` installs both).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_service import pct, start_service
from farview.client.rest import RemoteRenderingClient
from farview.input.camera import CameraController, CameraState
from farview.input.pose import Fov, PoseRequest, View
from farview.streaming.correlation import since_us

CHROMIUM = next((p for p in ("/usr/lib/chromium/chromium", shutil.which("chromium") or "") if p and Path(p).exists()),
                None)
ORBIT_RAD_PER_FRAME = 0.02


def summary(name: str, values: list[float], seconds: float, presented: int) -> str:
    if not values:
        return f"{name:<34} no frames measured"
    return (f"{name:<34} n={len(values):5d}  p50 {pct(values, 50):6.1f}  p95 {pct(values, 95):6.1f}  "
            f"p99 {pct(values, 99):6.1f} ms  {presented / seconds:5.1f} fps")


async def python_round(session: object, size: tuple[int, int], seconds: float) -> tuple[list[float], int]:
    conn = await session.connect(viewport=size, timeout=30)  # type: ignore[attr-defined]
    cam = CameraController(CameraState((0.0, 0.02, 0.0), 1.5, 0.6, -0.35))
    fov = Fov.symmetric(cam.fov_y_deg, size[0] / size[1])
    latencies: list[float] = []
    frames = 0
    end = time.monotonic() + seconds
    next_pose = time.monotonic()
    try:
        while time.monotonic() < end:
            now = time.monotonic()
            if now >= next_pose:
                cam.orbit(ORBIT_RAD_PER_FRAME, 0.0)
                conn.send_pose(PoseRequest((View(cam.pose(), fov),), size, 0.05, 1000.0))
                next_pose += 1 / 60
            try:
                frame = await conn.next_frame(timeout=max(0.001, next_pose - time.monotonic()))
            except Exception:
                continue
            frames += 1
            if frame.pose is not None and frame.pose.client_time_us:
                latencies.append(since_us(frame.pose.client_time_us))
    finally:
        await conn.close()
    return latencies[30:], frames  # the first half second is the connection's start


def browser_round(page: object, url: str, account: str, key: str, session_id: str, size: tuple[int, int],
                  seconds: float) -> tuple[list[float], int, list[float]]:
    """Pose → present, frames presented, and pose → the frame's last packet in (rVFC's
    receiveTime)."""
    p = page  # a Playwright page
    p.set_viewport_size({"width": size[0], "height": size[1] + 120})  # type: ignore[attr-defined]
    p.goto(url + "/viewer/")  # type: ignore[attr-defined]
    p.fill("#account", account)  # type: ignore[attr-defined]
    p.fill("#key", key)  # type: ignore[attr-defined]
    p.click("#signin button")  # type: ignore[attr-defined]
    p.click(f"#sessions tr[data-id='{session_id}'] button:has-text('Open')")  # type: ignore[attr-defined]
    p.wait_for_function("() => window.farview.stream && window.farview.presented.length > 0",  # type: ignore
                        timeout=30_000)
    p.click("#stats-toggle")  # type: ignore[attr-defined]  # the overlay off: the picture only
    p.evaluate(f"""() => {{ const s = window.farview; s.latencyLog = []; s.presentedLog = 0;
        s.orbit = setInterval(() => {{ s.camera.orbit({ORBIT_RAD_PER_FRAME}, 0); s.dirty = true; }}, 1000 / 60); }}""")
    time.sleep(0.5)
    p.evaluate("() => { const s = window.farview; s.latencyLog = []; s.receiveLog = []; s.presentedLog = 0; }")
    time.sleep(seconds)
    values, received, frames = p.evaluate(  # type: ignore[attr-defined]
        "() => [window.farview.latencyLog, window.farview.receiveLog, window.farview.presentedLog]")
    p.evaluate("() => clearInterval(window.farview.orbit)")  # type: ignore[attr-defined]
    p.click("#back")  # type: ignore[attr-defined]  # closes the stream (DELETE)
    time.sleep(1.0)
    return list(values), int(frames), list(received)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--size", default="960x540")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    if CHROMIUM is None:
        raise SystemExit("Chromium is not installed (Debian: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        proc, url, account, key = start_service(Path(tmp))
        try:
            with RemoteRenderingClient(url, account, key) as rest:
                session = rest.create_session("bench-browser", max_lease_time_minutes=60)
                session.wait_until_ready(90)
                session.wait_for_models(90)
                results: dict[str, tuple[list[float], int]] = {"browser": ([], 0), "python": ([], 0)}
                received: list[float] = []  # browser: pose → the frame's last packet in
                with sync_playwright() as pw:
                    browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                    page = browser.new_page()
                    for r in range(args.rounds):
                        for name in ("browser", "python") if r % 2 == 0 else ("python", "browser"):
                            if name == "browser":
                                values_b, frames_b, in_b = browser_round(page, url, account, key, session.id, size,
                                                                         args.seconds)
                                received.extend(in_b)
                                got = (values_b, frames_b)
                            else:
                                # Playwright's sync API holds this thread's event loop: another thread
                                with concurrent.futures.ThreadPoolExecutor(1) as pool:
                                    got = pool.submit(asyncio.run, python_round(session, size, args.seconds)).result()
                            values, frames = results[name]
                            results[name] = (values + got[0], frames + got[1])
                            print(f"round {r + 1} {name}: {len(got[0])} frames measured", file=sys.stderr)
                    browser.close()
                session.stop()
        finally:
            proc.terminate()
            proc.wait(20)
    total = args.seconds * args.rounds
    print(f"pose → present, {size[0]}x{size[1]}, orbit at 60 poses/s, {args.rounds} × {args.seconds:g} s each, "
          "alternating, one session")
    print(summary("browser (Chromium, to display)", *results["browser"][:1], total, results["browser"][1]))
    print(summary("python client (to decoded frame)", *results["python"][:1], total, results["python"][1]))
    if received:
        print(f"{'  of which pose → last packet in':<34} n={len(received):5d}  p50 {pct(received, 50):6.1f}  "
              f"p95 {pct(received, 95):6.1f}  p99 {pct(received, 99):6.1f} ms")
    b, p = results["browser"][0], results["python"][0]
    if b and p:
        print(f"ratio of medians browser/python: {pct(b, 50) / pct(p, 50):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
