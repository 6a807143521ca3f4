"""What block-compressed textures save (issue 20): a model with big photo textures as its
input (JPEG, decoded at load and uploaded as RGBA8 with mips made by GL) against the same
model after ``farview convert`` (each texture also as BC1 with its mips, ``MSFT_texture_dds``,
which the loader takes instead).

The model is generated (nothing downloaded): ``--textures`` quads side by side, each with a
photo-like ``--size``² JPEG texture of its own. Each file is measured in a fresh process
(``--measure``): the load (parse and decode: ``host.gltf.load_model``), the first frame (the
textures' upload), resident memory once it is drawn less before loading ("RSS MB", in-process
renderer, llvmpipe: GL textures live in system memory), and the frame time (p50 of
``--frames``). Also printed: the file sizes and the conversion's time.

Run: ``python3 benchmarks/bench_textures.py [--textures 4] [--size 4096] [--frames 10]``.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

import farview.host.egl
from farview.host.convert import convert_file
from farview.host.gltf import load_model, pack_glb, return_freed_memory
from farview.host.renderer import Renderer
from farview.host.scene import Scene
from farview.input.pose import Fov, Pose, View


def photo_jpeg(size: int, seed: int) -> bytes:
    """A photo-like texture (smooth colour waves and grain) as a quality-90 JPEG."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    rgb = np.stack([128 + 100 * np.sin(x / (23 + seed) + i) * np.cos(y / (31 + i) - seed)
                    for i in range(3)], axis=2)
    rgb += rng.normal(0, 6, rgb.shape).astype(np.float32)
    out = io.BytesIO()
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


def write_model(path: Path, textures: int, size: int) -> None:
    """``textures`` unit quads in a row, each with a texture of its own."""
    pos = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], np.float32)
    nrm = np.tile(np.array([0, 0, 1], np.float32), (4, 1))
    uv = np.array([[0, 1], [1, 1], [1, 0], [0, 0]], np.float32)
    idx = np.array([0, 1, 2, 0, 2, 3], np.uint16)
    blobs = [pos.tobytes(), nrm.tobytes(), uv.tobytes(), idx.tobytes()]
    blobs += [photo_jpeg(size, k) for k in range(textures)]
    views, chunks, offset = [], [], 0
    for b in blobs:
        views.append({"buffer": 0, "byteOffset": offset, "byteLength": len(b)})
        chunks.append(b + b"\0" * (-len(b) % 4))
        offset += len(chunks[-1])
    attrs = {"POSITION": 0, "NORMAL": 1, "TEXCOORD_0": 2}
    doc = {
        "asset": {"version": "2.0"},
        "scene": 0, "scenes": [{"nodes": list(range(textures))}],
        "nodes": [{"mesh": k, "name": f"quad {k}", "translation": [2.2 * k, 0, 0]}
                  for k in range(textures)],
        "meshes": [{"primitives": [{"attributes": attrs, "indices": 3, "material": k}]}
                   for k in range(textures)],
        "materials": [{"pbrMetallicRoughness": {"baseColorTexture": {"index": k},
                                                "metallicFactor": 0.0}}
                      for k in range(textures)],
        "textures": [{"source": k} for k in range(textures)],
        "images": [{"bufferView": 4 + k, "mimeType": "image/jpeg"} for k in range(textures)],
        "accessors": [
            {"bufferView": 0, "componentType": 5126, "count": 4, "type": "VEC3",
             "min": [-1, -1, 0], "max": [1, 1, 0]},
            {"bufferView": 1, "componentType": 5126, "count": 4, "type": "VEC3"},
            {"bufferView": 2, "componentType": 5126, "count": 4, "type": "VEC2"},
            {"bufferView": 3, "componentType": 5123, "count": 6, "type": "SCALAR"}],
        "bufferViews": views, "buffers": [{"byteLength": offset}],
    }
    path.write_bytes(pack_glb(doc, b"".join(chunks)))


def measure(path: Path, frames: int) -> dict[str, float]:
    ctx = farview.host.egl.EglContext()
    renderer = Renderer(1280, 720)
    try:
        renderer.render(Scene(), [_view(1)])
        proc = psutil.Process()
        return_freed_memory()
        rss0 = proc.memory_info().rss
        t0 = time.perf_counter()
        model = load_model(path, max_file_bytes=1 << 40, max_decoded_bytes=1 << 40)
        t1 = time.perf_counter()
        scene = Scene()
        scene.add_model(model, "m")
        count = len(model.nodes)
        renderer.render(scene, [_view(count)])
        t2 = time.perf_counter()
        return_freed_memory()
        rss = proc.memory_info().rss - rss0
        times = []
        for _ in range(frames):
            renderer.render(scene, [_view(count)])
            times.append(renderer.last_timings.render_ms)
        return {"load_s": t1 - t0, "first_frame_s": t2 - t1, "rss_mb": rss / 2**20,
                "frame_ms": float(np.median(times)), "s3tc": renderer.s3tc}
    finally:
        renderer.close()
        ctx.release()


def _view(count: int) -> View:
    """Every quad in view, from the front."""
    centre = 1.1 * (count - 1)
    return View(Pose((centre, 0.0, 1.3 * count + 1.5), (0.0, 0.0, 0.0, 1.0)),
                Fov.symmetric(60.0, 1280 / 720))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--textures", type=int, default=4)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure is not None:
        print(json.dumps(measure(args.measure, args.frames)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "photos.glb"
        write_model(src, args.textures, args.size)
        out = Path(tmp) / "photos-converted.glb"
        t0 = time.perf_counter()
        convert_file(src, out)
        convert_s = time.perf_counter() - t0
        with farview.host.egl.EglContext() as ctx:
            print(f"{args.textures} textures of {args.size}²; EGL path: {ctx.path}; "
                  f"{ctx.renderer}")
        print(f"{'file':<10} {'MB':>7} {'load s':>7} {'1st frame s':>11} {'RSS MB':>7} "
              f"{'frame ms':>9}")
        for label, path in (("input", src), ("converted", out)):
            r = json.loads(subprocess.run(
                [sys.executable, __file__, "--measure", str(path), "--frames",
                 str(args.frames)], check=True, capture_output=True, text=True
            ).stdout.splitlines()[-1])
            print(f"{label:<10} {path.stat().st_size / 2**20:>7.1f} {r['load_s']:>7.2f} "
                  f"{r['first_frame_s']:>11.2f} {r['rss_mb']:>7.0f} {r['frame_ms']:>9.1f}"
                  f"  {'S3TC in GL' if r['s3tc'] else 'no S3TC: blocks decoded'}")
        print(f"conversion: {convert_s:.1f} s")


if __name__ == "__main__":
    main()
