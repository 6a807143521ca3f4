"""The latency floor: every stage of the stream in one process, with no network.

``python -m farview.client.bench.floor --resolution WxH --fps N --duration S [--model M] [--trajectory T]``
prints one JSON object on stdout. Per frame, paced at ``fps`` along the same trajectory:
render → GPU colour conversion → read back YUV (the host's :class:`~host.renderer.Renderer`) →
encode (farview's :class:`~streaming.encoder.H264Encoder`) → decode (PyAV, slice threads, as
the client's receiver) → upload the planes and draw them (the viewer's
:class:`~client.viewer.yuv_renderer.YuvRenderer`, into an offscreen framebuffer, with
``glFinish``). The sum is what a frame costs with no network, no data channels and no thread
hand-offs: the floor the end-to-end figure is compared with.

``--no-present`` stops at the decoded picture, as a headless client does (``farview bench
--headless`` passes it). It matters beyond the two stages left out: on this VM a CPU that idles
between frames runs the next one slower, and upload + draw (~8 ms on llvmpipe at 720p) keep the
process busy through the whole frame interval. With them the floor's other stages measured
13.0–13.3 ms p50 at 720p60, without them 15.8–16.6 ms (two A/B pairs): a floor that draws is
not the floor of a stream that does not.

Why a separate process: :mod:`host.egl` makes PyOpenGL use EGL, which cannot share a process
with a GLFW window. This is also the one client module that imports ``host``: the floor is host
and client in one process by definition, and ``farview bench`` only ever runs it as a child.
Single-threaded (the EGL context belongs to the main thread).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from farview.assets import SAMPLE_MODEL


def _resolve_model(model: str | None) -> Path:
    if not model:
        return SAMPLE_MODEL
    path = Path(model).expanduser()
    if path.exists():
        return path
    from farview.host.model_store import ModelStore

    return ModelStore.from_env().resolve(model)


def measure(*, width: int, height: int, fps: int, duration_s: float, warmup_frames: int,
            model: str | None, trajectory: str, trace_file: str | None,
            present: bool = True) -> dict[str, Any]:
    # host.egl must be imported before anything imports OpenGL (it selects the EGL platform);
    # the context statement keeps import sorters from moving the other imports above it.
    import farview.host.egl

    ctx = farview.host.egl.EglContext()

    import av
    from OpenGL import GL

    from farview.client.viewer.yuv_renderer import YuvRenderer
    from farview.host.gltf import load_model
    from farview.host.renderer import Renderer
    from farview.host.scene import Scene
    from farview.input.pose import Fov, View
    from farview.input.pose_sources import parse_trace_csv, parse_trace_json
    from farview.input.trajectory import make_trajectory, parse_trajectory_spec
    from farview.streaming.encoder import EncoderSettings, H264Encoder
    from farview.streaming.planes import yuv420_planes

    spec = parse_trajectory_spec(trajectory, trace_file)
    trace = None
    if spec.trace_file:
        text = Path(spec.trace_file).read_text(encoding="utf-8")
        trace = (parse_trace_json if spec.trace_file.lower().endswith(".json") else parse_trace_csv)(
            text, name=Path(spec.trace_file).name)
    traj = make_trajectory(spec, trace)

    scene = Scene()
    model_path = _resolve_model(model)
    loaded = load_model(model_path)
    scene.add_model(loaded, model_path.stem)
    renderer = Renderer(width, height)
    encoder = H264Encoder(EncoderSettings(width=width, height=height, max_fps=fps))
    decoder: Any = av.CodecContext.create("h264", "r")
    decoder.thread_type = "SLICE"
    decoder.thread_count = 2
    display = YuvRenderer()
    target = GL.glGenTextures(1)
    GL.glBindTexture(GL.GL_TEXTURE_2D, target)
    GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, GL.GL_RGBA8, width, height, 0, GL.GL_RGBA, GL.GL_UNSIGNED_BYTE, None)
    fbo = GL.glGenFramebuffers(1)
    GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, fbo)
    GL.glFramebufferTexture2D(GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_TEXTURE_2D, target, 0)

    fov = Fov.symmetric(60.0, width / height)
    interval = 1.0 / fps
    frames: list[dict[str, float | None]] = []
    total = warmup_frames + max(1, round(duration_s * fps))
    start = time.perf_counter()
    for i in range(total):
        view = View(traj.pose_at(i * interval), fov)
        t0 = time.perf_counter()
        renderer.render(scene, [view], 0.05, 1000.0)
        frame = renderer.read_frame()
        timings = renderer.last_timings
        t1 = time.perf_counter()
        packets = encoder.encode_frame(frame, i * 1500, keyframe=(i == 0))
        t2 = time.perf_counter()
        decoded = []
        for packet in packets:
            decoded += decoder.decode(packet)
        t3 = time.perf_counter()
        if decoded and present:
            pic = decoded[-1]
            GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, fbo)
            display.upload(*yuv420_planes(pic))
            t4 = time.perf_counter()
            GL.glClear(GL.GL_COLOR_BUFFER_BIT)
            display.draw((width, height), finish=True)
            t5 = time.perf_counter()
        else:
            t4 = t5 = t3
        if i >= warmup_frames:
            frames.append({
                "render_ms": timings.render_ms, "convert_ms": timings.convert_ms,
                "readback_ms": timings.readback_ms, "encode_ms": (t2 - t1) * 1000,
                "decode_ms": (t3 - t2) * 1000,
                "upload_ms": (t4 - t3) * 1000 if present else None,
                "draw_ms": (t5 - t4) * 1000 if present else None,
                "total_ms": (t5 - t0) * 1000, "total_without_present_ms": (t3 - t0) * 1000,
                "size_bytes": float(sum(p.size for p in packets)),
            })
        time.sleep(max(0.0, start + (i + 1) * interval - time.perf_counter()))
    gl_renderer = getattr(ctx, "renderer", "")
    display.close()
    renderer.close()
    ctx.release()
    return {"frames": frames, "gl_renderer": str(gl_renderer), "encoder": encoder.path,
            "model": str(model_path), "triangles": int(loaded.triangle_count),
            "present": present}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m farview.client.bench.floor", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--resolution", default="1280x720")
    p.add_argument("--fps", type=int, default=60)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--warmup-frames", type=int, default=150)
    p.add_argument("--model")
    p.add_argument("--trajectory", default="orbit")
    p.add_argument("--trace-file")
    p.add_argument("--no-present", dest="present", action="store_false",
                   help="stop at the decoded picture (no upload, no draw), as a headless client "
                        "does")
    args = p.parse_args(argv)
    w, h = (int(x) for x in args.resolution.lower().split("x"))
    result = measure(width=w, height=h, fps=args.fps, duration_s=args.duration,
                     warmup_frames=args.warmup_frames, model=args.model, trajectory=args.trajectory,
                     trace_file=args.trace_file, present=args.present)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
