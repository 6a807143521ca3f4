"""Render-host stage timings on the sample model: render, 4:2:0 chroma, readback.

Prints p50/p95 in ms at 1280×720 and 1920×1080 after a warm-up (llvmpipe's first ~140 frames
are about twice as slow), for both chroma paths of :class:`host.renderer.Renderer` (swscale on
the CPU, a GPU pass), measured alternately in the same run.

Then, at 720p, the render back to back against the render paced at ``--fps`` with the CPU idle
between frames, as the host renders a stream (it waits for each pose), in alternating blocks.
On this VM a CPU that has idled for a frame interval runs the next frame much slower, so the
paced figure is the one the stream sees (``farview bench``'s host render stage).
Then what the lighting and material features cost at 720p, each configuration measured in
alternating blocks in the same run: on the sample model, vertex and pixel lighting each without
and with image-based lighting (the ``studio`` environment) and with four point/spot lights; on a
texture-heavy model (CesiumMilkTruck from ../shared/models, when present), without and with the
environment.
Run: ``python3 benchmarks/bench_render.py [--frames N] [--pacing-blocks N] [--feature-frames N]``.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

import farview.host.egl
from farview.assets import SAMPLE_MODEL
from farview.host.gltf import load_model
from farview.host.renderer import Renderer
from farview.host.scene import Scene
from farview.host.transforms import matrix3_to_quat
from farview.input.pose import Fov, Pose, View
from farview.input.scene import Light

SAMPLE = SAMPLE_MODEL
TRUCK = Path(__file__).resolve().parents[1].parent / "shared" / "models" / "CesiumMilkTruck.glb"


def orbit_view(t: float, aspect: float) -> View:
    eye = np.array([1.1 * math.sin(t), 0.45, 1.1 * math.cos(t)])
    f = -eye / np.linalg.norm(eye)
    right = np.cross(f, [0, 1, 0])
    right /= np.linalg.norm(right)
    up = np.cross(right, f)
    pose = Pose(tuple(eye), matrix3_to_quat(np.stack([right, up, -f], axis=1)))
    return View(pose, Fov.symmetric(50.0, aspect))


def pct(values: list[float]) -> str:
    a = np.array(values)
    return f"p50 {np.percentile(a, 50):6.2f}  p95 {np.percentile(a, 95):6.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--warmup", type=int, default=150)
    ap.add_argument("--fps", type=float, default=60.0, help="pace of the paced blocks")
    ap.add_argument("--pacing-blocks", type=int, default=3,
                    help="back-to-back / paced block pairs at 720p (0: skip)")
    ap.add_argument("--pacing-block-s", type=float, default=2.0,
                    help="seconds per block; the first quarter of each is not counted")
    ap.add_argument("--feature-frames", type=int, default=100,
                    help="frames per configuration in the feature-cost table (0: skip)")
    args = ap.parse_args()
    ctx = farview.host.egl.EglContext()
    model = load_model(SAMPLE)
    scene = Scene()
    scene.add_model(model, "Engine")
    print(f"EGL path: {ctx.path}; GL_RENDERER: {ctx.renderer}; "
          f"sample: {model.triangle_count} triangles")
    # Both 4:2:0 chroma paths (host.renderer): swscale on the CPU, a quarter-resolution GPU pass.
    # They alternate in blocks of 10 frames so that the VM's drifting speed hits both alike.
    renderers = {mode: Renderer(1280, 720, chroma=mode) for mode in ("cpu", "gpu")}
    default = Renderer(16, 16).chroma
    print(f"lighting {renderers['cpu'].lighting}; the default chroma path here: {default}")
    for width, height in ((1280, 720), (1920, 1080)):
        aspect = width / height
        stats: dict[str, dict[str, list[float]]] = {}
        for mode, renderer in renderers.items():
            renderer.resize(width, height)
            for i in range(args.warmup):
                renderer.render(scene, [orbit_view(i * 0.02, aspect)])
                renderer.read_frame()
            stats[mode] = {"render": [], "convert": [], "readback": []}
        for block in range(0, args.frames, 10):
            for mode, renderer in renderers.items():
                for i in range(block, min(block + 10, args.frames)):
                    renderer.render(scene, [orbit_view(i * 0.02, aspect)])
                    renderer.read_frame()
                    t = renderer.last_timings
                    stats[mode]["render"].append(t.render_ms)
                    stats[mode]["convert"].append(t.convert_ms)
                    stats[mode]["readback"].append(t.readback_ms)
        for mode, st in stats.items():
            total = [c + r for c, r in zip(st["convert"], st["readback"], strict=True)]
            print(f"{width}x{height} chroma={mode}: render {pct(st['render'])} | "
                  f"convert {pct(st['convert'])} | readback {pct(st['readback'])} | "
                  f"convert+readback {pct(total)} ms")
    if args.pacing_blocks > 0:
        pacing(renderers["cpu"], scene, args.fps, args.pacing_blocks, args.pacing_block_s)
    for renderer in renderers.values():
        renderer.close()
    if args.feature_frames > 0:
        feature_costs(args.feature_frames, args.warmup)
    ctx.release()


FOUR_LIGHTS = (
    Light("point", position=(0.6, 0.5, 0.6), color=(1.0, 0.8, 0.6), intensity=1.5, range=4.0),
    Light("point", position=(-0.6, 0.3, 0.4), color=(0.6, 0.7, 1.0), intensity=1.0),
    Light("spot", position=(0.0, 1.2, 0.2), direction=(0.0, -1.0, 0.0), intensity=4.0,
          inner_cone=0.3, outer_cone=0.6),
    Light("directional", direction=(0.3, -0.2, -1.0), intensity=0.3),
)


def feature_costs(frames: int, warmup: int) -> None:
    """Render p50 at 1280x720 for each lighting configuration, alternating in blocks of 10."""
    configs: list[tuple[str, str, Scene]] = []

    def scene_with(path: Path, environment: str, lights: tuple[Light, ...] = ()) -> Scene:
        sc = Scene()
        sc.add_model(load_model(path), path.stem)
        sc.lighting = replace(sc.lighting, environment=environment, lights=lights)
        return sc

    for lighting in ("vertex", "pixel"):
        configs += [
            (f"sample, {lighting} lighting, no environment", lighting,
             scene_with(SAMPLE, "none")),
            (f"sample, {lighting} lighting, studio environment", lighting,
             scene_with(SAMPLE, "studio")),
            (f"sample, {lighting} lighting, studio + 4 lights", lighting,
             scene_with(SAMPLE, "studio", FOUR_LIGHTS)),
        ]
    if TRUCK.exists():
        configs += [("truck (textured), no environment", "vertex", scene_with(TRUCK, "none")),
                    ("truck (textured), studio environment", "vertex",
                     scene_with(TRUCK, "studio"))]
    else:
        print(f"(no {TRUCK}: the texture-heavy rows are left out)")
    renderers = {mode: Renderer(1280, 720, lighting=mode) for mode in ("vertex", "pixel")}
    times: dict[str, list[float]] = {name: [] for name, _, _ in configs}
    for _, mode, sc in configs:
        for i in range(min(warmup, 30)):
            renderers[mode].render(sc, [orbit_view(i * 0.02, 16 / 9)])
    for block in range(0, frames, 10):
        for name, mode, sc in configs:
            for i in range(block, min(block + 10, frames)):
                renderers[mode].render(sc, [orbit_view(i * 0.02, 16 / 9)])
                renderers[mode].read_frame()
                times[name].append(renderers[mode].last_timings.render_ms)
    base = {mode: float(np.median(times[f"sample, {mode} lighting, no environment"]))
            for mode in ("vertex", "pixel")}
    print("feature cost at 1280x720 (render ms, same run, alternating blocks of 10):")
    for name, mode, _ in configs:
        med = float(np.median(times[name]))
        ref = base[mode] if name.startswith("sample") else float(
            np.median(times["truck (textured), no environment"]))
        print(f"  {name:48s} {pct(times[name])}  x{med / ref:.2f} of its no-environment row")
    for r in renderers.values():
        r.close()


def pacing(renderer: Renderer, scene: Scene, fps: float, blocks: int, block_s: float) -> None:
    """Render (with readback) back to back, then paced at ``fps``, alternating, at 720p."""
    renderer.resize(1280, 720)
    stats: dict[str, list[float]] = {"back to back": [], f"paced at {fps:g} fps": []}
    i = 0
    for _ in range(blocks):
        for mode, values in stats.items():
            interval = 0.0 if mode == "back to back" else 1.0 / fps
            start = time.perf_counter()
            while (now := time.perf_counter()) - start < block_s:
                renderer.render(scene, [orbit_view(i * 0.02, 16 / 9)])
                renderer.read_frame()
                i += 1
                if now - start >= block_s / 4:  # the CPU settles into the block's rhythm
                    values.append(renderer.last_timings.render_ms)
                time.sleep(max(0.0, interval - (time.perf_counter() - now)))
    (b2b, b), (paced, pv) = stats.items()
    ratio = float(np.median(pv) / np.median(b)) if b and pv else float("nan")
    print(f"1280x720 render {b2b}: {pct(b)} | {paced}: {pct(pv)} ms | paced / back to back "
          f"{ratio:.2f}x")

if __name__ == "__main__":
    main()
