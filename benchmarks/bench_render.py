"""Render-host stage timings on the sample model: render, GPU YUV conversion, readback.

Prints p50/p95 in ms at 1280×720 and 1920×1080 after a warm-up (llvmpipe's first ~140 frames
are about twice as slow), and the GPU conversion against PyAV's CPU ``reformat`` of the same
frame (the path it replaces). Run: ``python3 benchmarks/bench_render.py [--frames N]``.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import av
import numpy as np

import host.egl
from host.gltf import load_model
from host.renderer import Renderer
from host.scene import Scene
from host.transforms import matrix3_to_quat
from input.pose import Fov, Pose, View

SAMPLE = Path(__file__).resolve().parents[1] / "assets" / "sample_engine.glb"


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
    args = ap.parse_args()
    ctx = host.egl.EglContext()
    model = load_model(SAMPLE)
    scene = Scene()
    scene.add_model(model, "Engine")
    print(f"EGL path: {ctx.path}; GL_RENDERER: {ctx.renderer}; "
          f"sample: {model.triangle_count} triangles")
    renderer = Renderer(1280, 720)
    for width, height in ((1280, 720), (1920, 1080)):
        renderer.resize(width, height)
        aspect = width / height
        for i in range(args.warmup):
            renderer.render(scene, [orbit_view(i * 0.02, aspect)])
            renderer.read_yuv420()
        render, convert, readback, gpu_total, cpu = [], [], [], [], []
        for i in range(args.frames):
            renderer.render(scene, [orbit_view(i * 0.02, aspect)])
            renderer.read_yuv420()
            t = renderer.last_timings
            render.append(t.render_ms)
            convert.append(t.convert_ms)
            readback.append(t.readback_ms)
            gpu_total.append(t.convert_ms + t.readback_ms)
            if i % 4 == 0:  # the CPU path: RGBA readback + PyAV reformat (as before)
                t0 = time.perf_counter()
                rgba = renderer.read_rgba()
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgba[:, :, :3]),
                                                   format="rgb24")
                frame.reformat(format="yuv420p")
                cpu.append((time.perf_counter() - t0) * 1000)
        print(f"{width}x{height}: render {pct(render)} | convert {pct(convert)} | "
              f"readback {pct(readback)} ms")
        print(f"{width}x{height}: GPU YUV convert+readback {pct(gpu_total)} ms vs "
              f"CPU RGBA readback+PyAV reformat {pct(cpu)} ms")
    renderer.close()
    ctx.release()


if __name__ == "__main__":
    main()
