"""How farview scales with heavy models (issue 20): load time, memory and frame time against
triangle count and part count, on models this script generates (nothing is downloaded).

Each model is a grid of parts, each part a UV sphere with vertex data of its own (one mesh
and one node per part, one of 8 materials; the parts share their index buffer), written as a
``.glb`` to a temporary folder. For each model it reports: the file's size, the load (parse +
decode, ``host.gltf.load_model``), adding it to a scene, memory, and the
in-process renderer's frame time at 1280×720 while the camera moves (an orbit; big parts may be
drawn at a coarser level of detail, the level reached is shown, and "points": the parts the last
moving frame drew as one point each, tiny parts at the deepest level) and at rest (the same view
again, full detail; "back %": the triangles it left out in back-face clusters; "give-up ms":
how long a pose that comes 0.1 s into a frame refining a coarse picture waits for the renderer,
which gives such a frame up, median of three), p50 over ``--frames`` frames, the seconds until
big parts' stand-in levels were uploaded ("stand-ins s", after the first frame: vertex
clustering, which moving frames draw until the parts' own levels come), the seconds until
the levels of detail were
made ("LODs s": the parts' after the first frame, stand-ins included, then the batches' once
three moving frames asked for them: the waits only), the ray caster's boxes and chunks, and
the draw list's world boxes, made after the load
("prime s": the host makes them in the background when a model is loaded), a click ("pick":
a ray from the eye through the middle of the view, the draw list and the cast, as the host's
``ray_cast``, the first after the load; "select": selecting the part it hit, to the end of the
next frame, which shows its outline), and "plain": moving again with every part drawn on its
own and in full (no batches, no levels of detail: as before issue 20).

Each model is measured in a fresh process (``--measure PATH``), so that memory freed by one
model cannot hide another's: "RSS MB" is that process's resident memory once the model is
drawn once at rest and its parts' levels of detail are uploaded, less what it held before
loading (the GL context
and renderer, which has drawn a small model of the same kind and dropped it: ``warm_up``; what
that first model left behind, the shaders llvmpipe compiled and the like, is "warm MB", once a
process); "moved MB" the same after the moving, resting and selecting frames (llvmpipe keeps
more of its per-frame memory once it has drawn more frames; the batches' levels are in it);
"peak MB" is its high-water mark (loading included, the "plain" frames not:
drawing 100,000 parts each from buffers of its own took 1.15 GB) less the same; "B/tri" is
RSS per triangle.
The level-of-detail worker (a child process that exits with the renderer) is not counted.

Point clouds (``--clouds``, millions of points): a rippled terrain scanned in rows, coloured,
one POINTS primitive, 2-pixel points, each measured in a process of its own: the load, the
first frame, "RSS MB" and bytes a point (after the first frame at rest, as above), the frame
while moving (big clouds are thinned to the level reached: each level a quarter of the points
of the one before, √2 times as wide), at rest (every point), "plain" (moving with levels of
detail off), how long a pose 0.1 s into a refinement waits ("give-up ms": a cloud drawn in
full is drawn a million points at a time, the frame given up between) and a ray cast hitting a
point ("pick").

Run: ``python3 benchmarks/bench_scale.py [--triangles 0.03,0.5,2] [--parts 64,4096,16384]
[--clouds 5] [--frames 20]`` (triangles and points in millions; a part count may name its
own triangles, ``100000:10`` for 10 M; add 8 and 20, or 100000 parts, for the issue's full
table: a 20-million-triangle model is a ~460 MB file and needs
several GiB of memory).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

import farview.host.egl
from farview.host.convert import Budgets, convert_file
from farview.host.gltf import load_model, pack_glb, return_freed_memory
from farview.host.raycast import RayCaster
from farview.host.renderer import Renderer
from farview.host.scene import Scene
from farview.host.transforms import matrix3_to_quat
from farview.input.pose import Fov, Pose, View


def sphere(segments: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A unit UV sphere: positions, normals (float32) and uint32 indices; 2·s·(s-1) triangles."""
    rings = segments
    theta = np.linspace(0, math.pi, rings + 1)
    phi = np.linspace(0, 2 * math.pi, segments + 1)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    pos = np.stack([np.sin(t) * np.cos(p), np.cos(t), np.sin(t) * np.sin(p)], axis=-1)
    pos = pos.reshape(-1, 3).astype(np.float32)
    idx = []
    w = segments + 1
    for r in range(rings):
        a = r * w + np.arange(segments)
        b = a + w
        if r > 0:
            idx.append(np.stack([a, a + 1, b], axis=1))
        if r < rings - 1:
            idx.append(np.stack([a + 1, b + 1, b], axis=1))
    return pos, pos.copy(), np.concatenate(idx).reshape(-1).astype(np.uint32)


def write_model(path: Path, triangles: int, parts: int) -> int:
    """A grid of ``parts`` spheres with about ``triangles`` triangles in all; returns the
    triangle count."""
    per_part = max(triangles // parts, 8)
    segments = max(3, round(math.sqrt(per_part / 2)))
    pos, nrm, idx = sphere(segments)
    side = math.ceil(parts ** (1 / 3))
    blob = bytearray()

    def view(data: bytes, target: int) -> int:
        blob.extend(b"\0" * (-len(blob) % 4))
        views.append({"buffer": 0, "byteOffset": len(blob), "byteLength": len(data),
                      "target": target})
        blob.extend(data)
        return len(views) - 1

    views: list[dict] = []
    accessors: list[dict] = []
    meshes = []
    idx_view = view(idx.tobytes(), 34963)  # the parts share a topology, each has its vertices
    for i in range(parts):
        # each part its own vertex data, as in a CAD export (a slightly different radius)
        p = pos * np.float32(0.8 + 0.2 * (i % 7) / 6)
        accessors.append({"bufferView": view(p.tobytes(), 34962), "componentType": 5126,
                          "count": len(p), "type": "VEC3", "min": p.min(axis=0).tolist(),
                          "max": p.max(axis=0).tolist()})
        accessors.append({"bufferView": view(nrm.tobytes(), 34962), "componentType": 5126,
                          "count": len(nrm), "type": "VEC3"})
        accessors.append({"bufferView": idx_view, "componentType": 5125, "count": len(idx),
                          "type": "SCALAR"})
        meshes.append({"name": f"part_{i}", "primitives": [{"attributes": {
            "POSITION": 3 * i, "NORMAL": 3 * i + 1}, "indices": 3 * i + 2, "material": i % 8}]})
    materials = [{"name": f"m{i}", "pbrMetallicRoughness": {
        "baseColorFactor": [0.3 + 0.09 * i, 0.5, 0.8 - 0.08 * i, 1.0], "metallicFactor": 0.1,
        "roughnessFactor": 0.5}} for i in range(8)]
    spacing = 2.5
    nodes = [{"name": f"part_{i}", "mesh": i, "scale": [1.0, 1.0, 1.0],
              "translation": [(i % side - side / 2) * spacing,
                              (i // side % side - side / 2) * spacing,
                              (i // (side * side) - side / 2) * spacing]} for i in range(parts)]
    nodes.append({"name": "assembly", "children": list(range(parts))})
    doc = {"asset": {"version": "2.0", "generator": "farview bench_scale"}, "scene": 0,
           "scenes": [{"nodes": [parts]}], "nodes": nodes, "meshes": meshes,
           "materials": materials, "accessors": accessors, "bufferViews": views,
           "buffers": [{"byteLength": len(blob)}]}
    path.write_bytes(pack_glb(doc, bytes(blob)))
    return parts * len(idx) // 3


def orbit(t: float, radius: float) -> View:
    eye = np.array([radius * math.sin(t), radius * 0.4, radius * math.cos(t)])
    f = -eye / np.linalg.norm(eye)
    right = np.cross(f, [0, 1, 0])
    right /= np.linalg.norm(right)
    up = np.cross(right, f)
    return View(Pose(tuple(eye), matrix3_to_quat(np.stack([right, up, -f], axis=1))),
                Fov.symmetric(60.0, 16 / 9))


def _high_water() -> int:
    """This process's peak resident memory (bytes): ``VmHWM``, which starts afresh with the
    program (``ru_maxrss`` would include the parent's memory when it forked this process)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def measure(renderer: Renderer, path: Path, frames: int) -> dict[str, float]:
    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    t0 = time.perf_counter()
    model = load_model(path, max_triangles=1 << 40, max_file_bytes=1 << 40,
                       max_decoded_bytes=1 << 40)
    t1 = time.perf_counter()
    scene = Scene()
    root = scene.add_model(model, "m")
    meshes = list(model.meshes)
    del model  # the host keeps the scene's entities, not the model's nodes (scene_api)
    t2 = time.perf_counter()
    caster = RayCaster()
    key = (id(scene), scene.structure_version)
    caster.prime(meshes)  # as the host does once a model is loaded
    del meshes
    caster.prepare(scene.draw_list(), key)
    t2p = time.perf_counter()
    box = scene.world_bounds(root)
    assert box is not None
    radius = 1.3 * math.dist(box.min, box.max)
    far = 3.0 * radius  # the whole model inside the clip volume (the default far is 100 m)

    def render(t: float, moving: bool = False) -> None:
        renderer.render(scene, [orbit(t, radius)], near=0.05 * radius / 10, far=far,
                        moving=moving)

    render(0.0)  # uploads the buffers
    t3 = time.perf_counter()
    while renderer.stand_ins_pending:  # big parts' stand-in levels come first
        time.sleep(0.05)
        render(0.0)
    t3s = time.perf_counter()
    while renderer.lod_pending:  # levels of detail are made in the background
        time.sleep(0.05)
        render(0.0)
    t4 = time.perf_counter()
    rss = proc.memory_info().rss - rss0  # (before any moving frame, as in runs 1-25)
    # moving frames over their budget ask for the batches' coarser levels (as the host's first
    # moves do), also made in the background
    for i in range(3):
        render(i * 0.05, moving=True)
    t4b = time.perf_counter()
    while renderer.lod_pending:
        time.sleep(0.05)
        render(0.0)
    t4 += time.perf_counter() - t4b
    moving, rest = [], []
    renderer.lod_level = 0
    for i in range(frames):
        render(i * 0.05, moving=True)
        moving.append(renderer.last_timings.render_ms)
    culled = renderer.last_culled
    level = renderer.lod_level
    proxies = renderer.last_proxies
    for _ in range(frames):
        render(frames * 0.05)
        rest.append(renderer.last_timings.render_ms)
    back = renderer.last_back_skipped
    # A pose that comes 0.1 s into a frame refining a coarse picture (the host gives such a
    # frame up, Renderer.render's abort): the time from its coming until the renderer is free
    # to draw it (0 when the refinement was done by then).
    freed = []
    for i in range(3):
        render(i * 0.05, moving=True)
        due = time.perf_counter() + 0.1
        renderer.render(scene, [orbit(i * 0.05, radius)], near=0.05 * radius / 10, far=far,
                        abort=lambda due=due: time.perf_counter() >= due)
        freed.append(max(0.0, time.perf_counter() - due) * 1000)
    render(frames * 0.05)
    # A click: a ray from the eye through the middle of the view picks a part (as the host's
    # ray cast does: a draw list, then the cast, at full detail), the part is selected, and
    # the next frame is drawn (with its outline: what the user waits for).
    eye = np.array(orbit(frames * 0.05, radius).pose.position)
    t5 = time.perf_counter()
    assert key == (id(scene), scene.structure_version)
    hits = caster.cast(scene.draw_list(), eye, -eye, worlds_key=key)
    t6 = time.perf_counter()
    # (a ray between parts selects the first part instead: the select column stays measured)
    part = (scene.get(hits[0].entity_id) if hits
            else next(it.entity for it in scene.draw_list()))
    part.selected = True
    render(frames * 0.05)
    t7 = time.perf_counter()
    part.selected = None
    moved = proc.memory_info().rss - rss0  # after moving, resting and selecting
    peak = _high_water() - rss0  # before "plain": every part's own buffers take far more
    renderer.batching = renderer.lod = False  # the same, every part its own draw, full detail
    scene.version += 1
    render(0.0)
    unbatched = []
    for i in range(frames):
        render(i * 0.05, moving=True)
        unbatched.append(renderer.last_timings.render_ms)
    renderer.batching = renderer.lod = True
    assert culled == 0, f"{culled} parts were outside the view: the bench must see them all"
    out = {"load_s": t1 - t0, "scene_s": t2 - t1, "prime_s": t2p - t2, "first_frame_s": t3 - t2p,
           "lod_s": t4 - t3, "stand_in_s": t3s - t3, "level": level, "proxies": proxies,
           "rss_mb": rss / 2**20, "moved_mb": moved / 2**20,
           "peak_mb": peak / 2**20,
           "moving_ms": float(np.median(moving)), "rest_ms": float(np.median(rest)),
           "back_skipped": back, "give_up_ms": float(np.median(freed)),
           "pick_ms": (t6 - t5) * 1000, "select_ms": (t7 - t6) * 1000,
           "unbatched_ms": float(np.median(unbatched))}
    return out


def warm_up(renderer: Renderer, path: Path, cloud: bool = False) -> None:
    """Draw a small model of the same kind (64 parts, 12,800 triangles; or with ``cloud`` a
    cloud of 20,000 points) at rest, moving and with a part selected, then an empty scene,
    before the baseline: the renderer's one-time costs (llvmpipe compiling the mesh, outline
    and per-vertex lighting shaders: 15-48 MB in one process) are not the model's."""
    if cloud:
        write_cloud(path, 20_000)
    else:
        write_model(path, 12_800, 64)
    scene = Scene()
    root = scene.add_model(load_model(path), "warm-up")
    path.unlink()
    for i in range(3):
        renderer.render(scene, [orbit(0.0, 4.0)])
        renderer.render(scene, [orbit(0.1 * i, 4.0)], moving=True)
    next(iter(scene.draw_list())).entity.selected = True
    renderer.render(scene, [orbit(0.0, 4.0)])
    scene.remove(root)
    renderer.render(scene, [orbit(0.0, 4.0)])
    del scene, root
    gc.collect()
    return_freed_memory()


def measure_in_this_process(path: Path, frames: int, points: bool = True) -> None:
    """``--measure``: one model, measured by a process of its own; prints a JSON line.
    ``points``: batches of tiny parts may be drawn as points (``Renderer.proxies``)."""
    ctx = farview.host.egl.EglContext()
    renderer = Renderer(1280, 720)
    renderer.proxies = points
    renderer.render(Scene(), [orbit(0.0, 1.0)])
    before = psutil.Process().memory_info().rss
    warm_up(renderer, path.with_name(path.stem + "_warm_up.glb"))
    warm_mb = (psutil.Process().memory_info().rss - before) / 2**20
    out = measure(renderer, path, frames)
    out["warm_up_mb"] = warm_mb
    renderer.close()
    ctx.release()
    print(json.dumps(out), flush=True)


def write_cloud(path: Path, points: int) -> int:
    """A rippled terrain of about ``points`` coloured points in scan rows, 1 cm apart, as one
    glTF POINTS primitive; returns the point count."""
    side = max(2, round(math.sqrt(points)))
    rng = np.random.default_rng(1)
    x, z = (a.ravel() for a in np.meshgrid(np.arange(side) * 0.01, np.arange(side) * 0.01))
    y = np.sin(x * 3) * 0.5 + rng.normal(size=x.size) * 0.002
    pos = np.stack([x - side * 0.005, y, z - side * 0.005], axis=1).astype(np.float32)
    rgb = np.stack([128 + 100 * np.sin(x * 2), 128 + 100 * np.cos(z * 3),
                    np.full(x.size, 90.0)], axis=1).astype(np.uint8)
    blob = pos.tobytes() + rgb.tobytes()
    blob += b"\0" * (-len(blob) % 4)
    doc = {"asset": {"version": "2.0", "generator": "farview bench_scale"}, "scene": 0,
           "scenes": [{"nodes": [0]}], "nodes": [{"name": "scan", "mesh": 0}],
           "meshes": [{"name": "scan", "primitives": [
               {"attributes": {"POSITION": 0, "COLOR_0": 1}, "mode": 0}]}],
           "accessors": [{"bufferView": 0, "componentType": 5126, "count": len(pos),
                          "type": "VEC3", "min": pos.min(axis=0).tolist(),
                          "max": pos.max(axis=0).tolist()},
                         {"bufferView": 1, "componentType": 5121, "count": len(pos),
                          "type": "VEC3", "normalized": True}],
           "bufferViews": [{"buffer": 0, "byteOffset": 0, "byteLength": pos.nbytes},
                           {"buffer": 0, "byteOffset": pos.nbytes, "byteLength": rgb.nbytes}],
           "buffers": [{"byteLength": len(blob)}]}
    path.write_bytes(pack_glb(doc, blob))
    return len(pos)


def measure_cloud(path: Path, frames: int) -> None:
    """``--measure-cloud``: one point cloud, in a process of its own; prints a JSON line."""
    ctx = farview.host.egl.EglContext()
    renderer = Renderer(1280, 720)
    warm_up(renderer, path.with_name(path.stem + "_warm_up.glb"), cloud=True)
    renderer.lod_level = 0
    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    t0 = time.perf_counter()
    big = 1 << 40
    model = load_model(path, max_triangles=big, max_file_bytes=big, max_decoded_bytes=big)
    scene = Scene()
    root = scene.add_model(model, "cloud")
    meshes = list(model.meshes)
    del model
    t1 = time.perf_counter()
    middle = meshes[0].primitives[0].positions[len(meshes[0].primitives[0].positions) // 2]
    caster = RayCaster()
    caster.prime(meshes)
    del meshes
    box = scene.world_bounds(root)
    assert box is not None
    radius = 0.6 * math.dist(box.min, box.max)

    def render(t: float, moving: bool = False) -> float:
        renderer.render(scene, [orbit(t, radius)], near=0.01 * radius, far=10 * radius,
                        moving=moving)
        return renderer.last_timings.render_ms

    t2 = time.perf_counter()
    render(0.0)
    t3 = time.perf_counter()
    gc.collect()
    return_freed_memory()
    rss = proc.memory_info().rss - rss0
    for i in range(6):  # the level settles
        render(0.05 * i, moving=True)
    moving = [render(0.3 + 0.05 * i, moving=True) for i in range(frames)]
    level = renderer.lod_level
    rest = [render(0.0) for _ in range(frames)]
    freed = []  # a pose 0.1 s into a refinement at rest, as for the meshes ("give-up ms")
    for i in range(3):
        render(0.05 * i, moving=True)
        due = time.perf_counter() + 0.1
        renderer.render(scene, [orbit(0.05 * i, radius)], near=0.01 * radius, far=10 * radius,
                        abort=lambda due=due: time.perf_counter() >= due)
        freed.append(max(0.0, time.perf_counter() - due) * 1000)
    renderer.lod = False
    plain = [render(0.05 * i, moving=True) for i in range(min(frames, 3))]
    renderer.lod = True
    eye = np.array(orbit(0.0, radius).pose.position)
    target = middle.astype(np.float64)  # a point of the cloud (it stands where it was made)
    tolerance = 2 * math.sqrt(0.5) * 2 * math.tan(math.radians(30)) / 720  # 2 px, 60°, 720
    t4 = time.perf_counter()
    hits = caster.cast(scene.draw_list(), eye, target - eye, point_tolerance=tolerance)
    t5 = time.perf_counter()
    renderer.close()
    ctx.release()
    print(json.dumps({"load_s": t1 - t0, "prime_s": t2 - t1, "first_frame_s": t3 - t2,
                      "rss_mb": rss / 2**20, "moving_ms": float(np.median(moving)),
                      "level": level, "rest_ms": float(np.median(rest)),
                      "give_up_ms": float(np.median(freed)),
                      "plain_ms": float(np.median(plain)), "pick_ms": (t5 - t4) * 1000,
                      "hit": bool(hits) and hits[0].hit_type == "Point"}), flush=True)


_CHILD_FLAGS: list[str] = []
"""Flags each measuring process gets too (``--no-points``)."""


def _measured(flag: str, path: Path, frames: int) -> dict[str, Any]:
    """What ``--measure`` or ``--measure-cloud`` (``flag``) printed for ``path``, measured by a
    process of its own."""
    child = subprocess.run([sys.executable, __file__, flag, str(path), "--frames", str(frames),
                            *_CHILD_FLAGS], capture_output=True, text=True, check=False)
    if child.returncode:
        raise SystemExit(f"measuring {path.name} failed:\n{child.stderr}")
    out: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    return out


def _cloud_row(path: Path, points: int, frames: int) -> None:
    r = _measured("--measure-cloud", path, frames)
    print(f"{points:>11,} {path.stat().st_size / 2**20:>8.1f} {r['load_s']:>7.2f} "
          f"{r['prime_s']:>7.2f} {r['first_frame_s']:>11.2f} {r['rss_mb']:>7.0f} "
          f"{r['rss_mb'] * 2**20 / points:>6.0f} {r['moving_ms']:>9.1f} {r['level']:>5} "
          f"{r['rest_ms']:>8.1f} {r['give_up_ms']:>10.1f} {r['plain_ms']:>8.1f} "
          f"{r['pick_ms']:>8.1f} "
          f"{'point' if r['hit'] else 'none':>5}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--triangles", default="0.03,0.5,2",
                    help="millions of triangles, comma-separated (64 parts each)")
    ap.add_argument("--parts", default="64,4096,16384",
                    help="part counts, comma-separated (about 1 M triangles each; COUNT:MILLIONS "
                    "for another number of triangles, e.g. 100000:10 for parts of 100)")
    ap.add_argument("--clouds", default="5",
                    help="millions of points, comma-separated (one point cloud each)")
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--converted", action="store_true",
                    help="also convert each model of at least a million triangles in 64 parts "
                    "(farview convert) and measure the converted file: levels of detail made "
                    "ahead; and each model of more parts with ARR's sceneGraphMode none (one "
                    "object, the parts merged)")
    ap.add_argument("--no-points", action="store_true",
                    help="never draw batches of tiny parts as points (Renderer.proxies off): "
                    "their coarsest triangles at every level, to compare")
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--measure-cloud", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        measure_in_this_process(args.measure, args.frames, not args.no_points)
        return
    if args.no_points:
        _CHILD_FLAGS.append("--no-points")
    if args.measure_cloud:
        measure_cloud(args.measure_cloud, args.frames)
        return
    ctx = farview.host.egl.EglContext()
    renderer = Renderer(1280, 720)
    print(f"EGL path: {ctx.path}; {ctx.renderer}; lighting {renderer.lighting}; 1280x720")
    renderer.close()
    ctx.release()
    rows = [(float(t), 64) for t in args.triangles.split(",") if t] + \
           [(float(p.partition(":")[2] or 1.0), int(p.partition(":")[0]))
            for p in args.parts.split(",") if p]
    print(f"{'triangles':>11} {'parts':>7} {'file MB':>8} {'load s':>7} {'scene s':>8} {'prime s':>7} "
          f"{'1st frame s':>11} {'stand-ins s':>11} {'LODs s':>6} {'RSS MB':>7} {'moved MB':>8} {'peak MB':>7} "
          f"{'B/tri':>6} "
          f"{'moving ms':>9} "
          f"{'level':>5} {'points':>7} {'rest ms':>8} {'back %':>6} {'give-up ms':>10} "
          f"{'pick ms':>8} {'select ms':>9} {'plain ms':>8} {'warm MB':>7}")
    converted = []
    with tempfile.TemporaryDirectory() as tmp:
        for millions, parts in rows:
            path = Path(tmp) / f"scale_{millions}_{parts}.glb"
            tris = write_model(path, int(millions * 1e6), parts)
            _row(path, tris, parts, args.frames)
            if args.converted and parts == 64 and millions >= 1:
                out = path.with_name(path.stem + "_converted.glb")
                t0 = time.perf_counter()
                convert_file(path, out, Budgets(max_bytes=1 << 40, max_triangles=1 << 40))
                converted.append((out, tris, parts, time.perf_counter() - t0, ""))
            elif args.converted and parts > 64:  # an assembly: collapsed, as ARR offered
                out = path.with_name(path.stem + "_none.glb")
                settings = path.with_name("none.json")
                settings.write_text(json.dumps({"sceneGraphMode": "none"}))
                t0 = time.perf_counter()
                convert_file(path, out, Budgets(max_bytes=1 << 40, max_triangles=1 << 40),
                             settings)
                converted.append((out, tris, parts, time.perf_counter() - t0,
                                  ", sceneGraphMode none"))
            path.unlink()
        if converted:
            print("converted first (farview convert: levels of detail made ahead, MSFT_lod; "
                  "assemblies with ARR's sceneGraphMode none: one object, parts merged):")
            for out, tris, parts, seconds, how in converted:
                _row(out, tris, parts, args.frames, f"  convert {seconds:.1f} s{how}")
                out.unlink()
        clouds = [float(c) for c in args.clouds.split(",") if c]
        if clouds:
            print("point clouds (2-pixel points):")
            print(f"{'points':>11} {'file MB':>8} {'load s':>7} {'prime s':>7} "
                  f"{'1st frame s':>11} {'RSS MB':>7} {'B/pt':>6} {'moving ms':>9} "
                  f"{'level':>5} {'rest ms':>8} {'give-up ms':>10} {'plain ms':>8} "
                  f"{'pick ms':>8} {'hit':>5}")
        for millions in clouds:
            path = Path(tmp) / f"cloud_{millions}.glb"
            points = write_cloud(path, int(millions * 1e6))
            _cloud_row(path, points, args.frames)
            path.unlink()


def _row(path: Path, tris: int, parts: int, frames: int, note: str = "") -> None:
    """Measure ``path`` in a process of its own and print its row."""
    r = _measured("--measure", path, frames)
    print(f"{tris:>11,} {parts:>7,} {path.stat().st_size / 2**20:>8.1f} "
          f"{r['load_s']:>7.2f} {r['scene_s']:>8.2f} {r['prime_s']:>7.2f} {r['first_frame_s']:>11.2f} "
          f"{r['stand_in_s']:>11.2f} {r['lod_s']:>6.2f} {r['rss_mb']:>7.0f} {r['moved_mb']:>8.0f} {r['peak_mb']:>7.0f} "
          f"{r['rss_mb'] * 2**20 / tris:>6.0f} "
          f"{r['moving_ms']:>9.1f} {r['level']:>5} {r['proxies']:>7,} {r['rest_ms']:>8.1f} "
          f"{100 * r['back_skipped'] / tris:>6.0f} {r['give_up_ms']:>10.1f} "
          f"{r['pick_ms']:>8.1f} {r['select_ms']:>9.1f} "
          f"{r['unbatched_ms']:>8.1f} {r['warm_up_mb']:>7.0f}{note}", flush=True)


if __name__ == "__main__":
    main()
