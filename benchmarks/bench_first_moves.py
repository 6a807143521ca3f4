"""How soon a heavy model that was not converted can be moved around (issue 20).

A model loaded as it is gets its levels of detail from the renderer's child process after the
first frame (``host.lod``); until a part has them, moving frames draw it in full. This script
loads one of ``bench_scale.py``'s generated models (a grid of spheres, each its own mesh; 20 M
triangles in 64 parts by default), draws its first frame at rest, then moving frames one after
another (an orbit, 1280×720, the in-process renderer) for ``--seconds``, and reports:

- "load s" and "1st frame s";
- "in budget s": seconds after the first frame until five moving frames in a row took at most
  the renderer's budget (``Renderer.lod_budget_ms``, 50 ms), "-" if that did not happen;
- "stand-ins s": until every big part's stand-in levels were uploaded (vertex clustering,
  ``host.lod.quick_levels``; "-" without them), and "levels s": until every part's own
  levels were (``host.lod.simplify``), "-" if not within ``--seconds``;
- the median moving frame (ms) among those that ended 0-5, 5-10, 10-20, 20-40 and 40-60 s
  after the first frame ("-" where none did).

Each setting runs in a fresh process (its own child process for the levels, its own memory):
with stand-in levels, then without (``Renderer.stand_ins`` off, as before they existed),
``--runs`` times, alternating. Nothing is downloaded.

Run: ``python3 benchmarks/bench_first_moves.py [--triangles 20] [--parts 64] [--seconds 60]
[--runs 1]`` (triangles in millions; 20 M needs a few GiB of memory and writes a ~460 MB
file to a temporary folder).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import farview.host.egl
from benchmarks.bench_scale import orbit, write_model
from farview.host.gltf import load_model
from farview.host.renderer import Renderer
from farview.host.scene import Scene

WINDOWS = ((0, 5), (5, 10), (10, 20), (20, 40), (40, 60))
STREAK = 5


def in_budget(frames: list[tuple[float, float]], budget_ms: float) -> float | None:
    """The end of the first of :data:`STREAK` moving frames in a row within ``budget_ms``
    ((end second, ms) each), or None."""
    run = 0
    for k, (_, ms) in enumerate(frames):
        run = run + 1 if ms <= budget_ms else 0
        if run == STREAK:
            return frames[k - STREAK + 1][0]
    return None


def window_medians(frames: list[tuple[float, float]]) -> list[float | None]:
    """The median ms of the frames that ended in each of :data:`WINDOWS` (None: none did)."""
    out: list[float | None] = []
    for lo, hi in WINDOWS:
        inside = [ms for end, ms in frames if lo <= end < hi]
        out.append(float(np.median(inside)) if inside else None)
    return out


def measure(path: Path, seconds: float, stand_ins: bool) -> dict[str, Any]:
    """One model in this process (see the module's text)."""
    ctx = farview.host.egl.EglContext()
    renderer = Renderer(1280, 720)
    renderer.stand_ins = stand_ins
    renderer.render(Scene(), [orbit(0.0, 1.0)])
    t0 = time.perf_counter()
    model = load_model(path, max_triangles=1 << 40, max_file_bytes=1 << 40,
                       max_decoded_bytes=1 << 40)
    scene = Scene()
    root = scene.add_model(model, "m")
    del model
    box = scene.world_bounds(root)
    assert box is not None
    radius = 1.3 * math.dist(box.min, box.max)
    near, far = 0.05 * radius / 10, 3.0 * radius
    t1 = time.perf_counter()
    renderer.render(scene, [orbit(0.0, radius)], near=near, far=far)
    first = time.perf_counter()
    frames: list[tuple[float, float]] = []
    stand_ins_s = levels_s = None
    i = 0
    while time.perf_counter() - first < seconds:
        i += 1
        renderer.render(scene, [orbit(i * 0.05, radius)], near=near, far=far, moving=True)
        now = time.perf_counter() - first
        frames.append((now, renderer.last_timings.render_ms))
        if stand_ins and stand_ins_s is None and not renderer.stand_ins_pending:
            stand_ins_s = now
        if levels_s is None and not renderer.lod_pending:
            levels_s = now
    out = {"load_s": t1 - t0, "first_frame_s": first - t1,
           "in_budget_s": in_budget(frames, renderer.lod_budget_ms),
           "stand_ins_s": stand_ins_s, "levels_s": levels_s, "windows": window_medians(frames),
           "frames": len(frames)}
    renderer.close()
    ctx.release()
    return out


def _cell(value: float | None, width: int, digits: int = 1) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--triangles", type=float, default=20.0, help="millions of triangles")
    ap.add_argument("--parts", type=int, default=64, help="parts (each its own mesh)")
    ap.add_argument("--seconds", type=float, default=60.0,
                    help="how long to draw moving frames after the first frame")
    ap.add_argument("--runs", type=int, default=1, help="runs of each setting, alternating")
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--no-stand-ins", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.seconds, not args.no_stand_ins)), flush=True)
        return
    ctx = farview.host.egl.EglContext()
    print(f"EGL path: {ctx.path}; {ctx.renderer}; 1280x720; moving frames for "
          f"{args.seconds:g} s after the first")
    ctx.release()
    heads = " ".join(f"{f'{lo}-{hi} s ms':>10}" for lo, hi in WINDOWS)
    print(f"{'triangles':>11} {'parts':>6} {'stand-ins':>9} {'load s':>7} {'1st frame s':>11} "
          f"{'in budget s':>11} {'stand-ins s':>11} {'levels s':>8} {heads} {'frames':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "first_moves.glb"
        tris = write_model(path, int(args.triangles * 1e6), args.parts)
        for _ in range(args.runs):
            for stand_ins in (True, False):
                cmd = [sys.executable, __file__, "--measure", str(path),
                       "--seconds", str(args.seconds)] + ([] if stand_ins else ["--no-stand-ins"])
                done = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    raise SystemExit(f"measuring failed:\n{done.stderr}")
                r = json.loads(done.stdout.strip().splitlines()[-1])
                cells = " ".join(_cell(ms, 10) for ms in r["windows"])
                print(f"{tris:>11,} {args.parts:>6,} {'on' if stand_ins else 'off':>9} "
                      f"{r['load_s']:>7.2f} {r['first_frame_s']:>11.2f} "
                      f"{_cell(r['in_budget_s'], 11)} {_cell(r['stand_ins_s'], 11)} "
                      f"{_cell(r['levels_s'], 8)} {cells} {r['frames']:>6}", flush=True)


if __name__ == "__main__":
    main()
