"""Scene API timings: model load time and ray-cast latency on the sample engine and on the
largest foreign model (CesiumMilkTruck).

Two measurements per model:

- **host-side** (in process): ``load_model`` + ``Scene.add_model``; a ray cast = draw-list
  snapshot + :class:`host.raycast.RayCaster` (per-mesh triangle arrays cached after the first).
- **end to end** (``--e2e``, default on): a real ``farview host`` process and a client on
  loopback; ``conn.scene.load_model`` and ``conn.scene.raycast`` round trips over the
  ``control`` data channel while the host streams.

Rays go from a camera orbiting the model towards random points of its bounding box, so most
hit. Then a generated point cloud (``--cloud-points``, a rippled terrain in scan rows): the
time its chunks take once, and rays from above and rays grazing it, hitting its points within
the width of a 2-pixel point at 60° over 720 rows. Prints p50/p95 in ms. Run:
``python3 benchmarks/bench_scene.py [--rays N] [--no-e2e] [--cloud-points N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from farview.assets import SAMPLE_MODEL  # noqa: E402
from farview.host.gltf import load_model  # noqa: E402
from farview.host.raycast import RayCaster  # noqa: E402
from farview.host.scene import Scene  # noqa: E402

MODELS = {
    "sample_engine": SAMPLE_MODEL,
    "CesiumMilkTruck": REPO.parent / "shared" / "models" / "CesiumMilkTruck.glb",
}


def pct(values: list[float]) -> str:
    a = np.array(values)
    return f"p50 {np.percentile(a, 50):7.2f}  p95 {np.percentile(a, 95):7.2f}"


def rays(bounds_min: np.ndarray, bounds_max: np.ndarray, n: int,
         seed: int = 1) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    centre = (bounds_min + bounds_max) / 2
    radius = float(np.linalg.norm(bounds_max - bounds_min)) * 1.5
    out = []
    for i in range(n):
        a = 2 * math.pi * i / n
        origin = centre + radius * np.array([math.sin(a), 0.3, math.cos(a)])
        target = rng.uniform(bounds_min, bounds_max)
        out.append((origin, target - origin))
    return out


def host_side(name: str, path: Path, n_rays: int) -> tuple[np.ndarray, np.ndarray]:
    loads = []
    for _ in range(5):
        t0 = time.perf_counter()
        model = load_model(path)
        scene = Scene()
        root = scene.add_model(model, name)
        loads.append((time.perf_counter() - t0) * 1000)
    caster = RayCaster()
    b = scene.world_bounds(root)
    assert b is not None
    lo, hi = np.array(b.min), np.array(b.max)
    casts, hits = [], 0
    for origin, direction in rays(lo, hi, n_rays):
        t0 = time.perf_counter()
        found = caster.cast(scene.draw_list(), origin, direction)
        casts.append((time.perf_counter() - t0) * 1000)
        hits += bool(found)
    print(f"{name:16s} host  load   {pct(loads)}   ({model.triangle_count} triangles, "
          f"{len(model.nodes)} nodes)")
    print(f"{name:16s} host  ray    {pct(casts[1:])}   (first {casts[0]:.2f} ms builds the "
          f"cache; {hits}/{n_rays} hit)")
    return lo, hi


def cloud_side(points: int, n_rays: int) -> None:
    from benchmarks.bench_scale import write_cloud

    big = 1 << 40
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cloud.glb"
        write_cloud(path, points)  # the terrain bench_scale's --clouds draws
        model = load_model(path, max_triangles=big, max_file_bytes=big, max_decoded_bytes=big)
    pts = model.meshes[0].primitives[0].positions
    side = max(2, round(math.sqrt(len(pts))))
    rng = np.random.default_rng(1)
    scene = Scene()
    scene.add_model(model, "cloud")
    items = scene.draw_list()
    caster = RayCaster()
    t0 = time.perf_counter()
    caster.prime([items[0].mesh])  # as the host does once a model is loaded
    chunks_s = time.perf_counter() - t0
    tolerance = 2 * math.sqrt(0.5) * 2 * math.tan(math.radians(30)) / 720
    middle = np.zeros(3)  # (the terrain is centred on the origin in x and z)
    above, grazing, hits = [], [], 0
    for i in range(n_rays):
        origin = middle + np.array([0.0, 5.0, 0.0]) + rng.normal(size=3)
        direction = pts[rng.integers(len(pts))] - origin
        t0 = time.perf_counter()
        hits += bool(caster.cast(items, origin, direction, point_tolerance=tolerance))
        above.append((time.perf_counter() - t0) * 1000)
        origin = np.array([-side * 0.005 - 1.0, 0.3 + 0.2 * i / n_rays,
                           side * 0.01 * rng.uniform(-0.4, 0.4)])
        t0 = time.perf_counter()
        caster.cast(items, origin, (1.0, -0.05, 0.0), point_tolerance=tolerance)
        grazing.append((time.perf_counter() - t0) * 1000)
    print(f"{'cloud':16s} host  chunks {chunks_s * 1000:7.0f} ms   ({len(pts):,} points, "
          "once, at load)")
    print(f"{'cloud':16s} host  ray    {pct(above)}   (from above; {hits}/{n_rays} hit a point)")
    print(f"{'cloud':16s} host  ray    {pct(grazing)}   (grazing the terrain)")


async def end_to_end(n_rays: int, bounds: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    from farview.client.connection import connect_to_host
    from tests.hosting import start_host

    host = start_host(Path(tempfile.mkdtemp()))
    try:
        conn = await connect_to_host(host.whep_url, host.token(), viewport=(320, 240))
        try:
            for name, path in MODELS.items():
                loads = []
                for _ in range(3):
                    t0 = time.perf_counter()
                    root = await conn.scene.load_model(str(path))
                    loads.append((time.perf_counter() - t0) * 1000)
                    await root.unload()
                root = await conn.scene.load_model(str(path))
                # other roots (the start-up sample) stay; move this one far away so rays
                # meet only it
                await root.set_position((100.0, 0.0, 0.0))
                lo, hi = bounds[name]
                offset = np.array([100.0, 0.0, 0.0])
                casts, hits = [], 0
                for origin, direction in rays(lo + offset, hi + offset, n_rays):
                    t0 = time.perf_counter()
                    found = await conn.scene.raycast(origin.tolist(), direction.tolist())
                    casts.append((time.perf_counter() - t0) * 1000)
                    hits += bool(found)
                await root.unload()
                print(f"{name:16s} e2e   load   {pct(loads)}")
                print(f"{name:16s} e2e   ray    {pct(casts[1:])}   ({hits}/{n_rays} hit; "
                      "round trip over the control channel)")
        finally:
            await conn.close()
    finally:
        host.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rays", type=int, default=200)
    ap.add_argument("--no-e2e", action="store_true", help="skip the real host measurement")
    ap.add_argument("--cloud-points", type=int, default=5_000_000,
                    help="points of the generated point cloud (0: none)")
    args = ap.parse_args()
    bounds = {name: host_side(name, path, args.rays) for name, path in MODELS.items()}
    if args.cloud_points:
        cloud_side(args.cloud_points, min(args.rays, 100))
    if not args.no_e2e:
        asyncio.run(end_to_end(args.rays, bounds))


if __name__ == "__main__":
    main()
