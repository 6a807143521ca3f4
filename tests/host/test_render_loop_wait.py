"""RenderLoop's ``wait_us``: a pose that arrives while the render thread is busy reports how
long it waited, so ``farview bench`` can split the host's queueing from the network. Real
renderer (EGL, llvmpipe) and real encoder; the scene is made slow by a render that also sleeps,
as a heavy model would be."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from farview.host.render_loop import RenderLoop, StreamSettings
from farview.host.runtime import _ContextRenderer
from farview.host.scene import Scene
from farview.input.frame_meta import FrameMetadata
from farview.input.pose import Fov, Pose, PoseMessage, View

SLOW_S = 0.2


class _SlowRenderer(_ContextRenderer):
    def render(self, scene: Any, views: Any, near: float, far: float, *,
               moving: bool = False, abort: Any = None) -> None:
        time.sleep(SLOW_S)
        super().render(scene, views, near, far, abort=abort)


def _pose(seq: int, x: float) -> PoseMessage:
    return PoseMessage(seq, seq, (View(Pose((x, 0.2, 1.5)), Fov.symmetric(60.0, 4 / 3)),),
                       (320, 240))


def test_a_pose_queued_behind_a_busy_render_reports_its_wait() -> None:
    loop = RenderLoop(Scene(), threading.RLock(), _SlowRenderer)
    frames: dict[int, FrameMetadata] = {}
    done = threading.Event()

    def on_frame(_packets: list[Any], meta: FrameMetadata) -> None:
        frames[meta.pose_sequence] = meta
        if 2 in frames:
            done.set()

    loop.start()
    try:
        loop.start_stream(on_frame, StreamSettings(max_fps=240))
        time.sleep(0.6)  # the first frame (start of stream) is out; the thread is idle
        loop.submit_pose(_pose(1, 0.0))
        time.sleep(SLOW_S / 3)  # pose 1 is rendering now
        loop.submit_pose(_pose(2, 0.3))
        assert done.wait(10), f"frames seen: {sorted(frames)}"
    finally:
        loop.stop_stream()
        loop.stop()
    assert frames[1].wait_us < SLOW_S * 1e6 / 3  # rendered as soon as it came
    # pose 2 waited for the rest of pose 1's render (at least ~2/3 of the sleep)
    assert frames[2].wait_us >= SLOW_S * 1e6 / 2, frames[2]
    assert frames[2].render_us > 0


def test_the_next_frame_renders_while_the_last_one_encodes(monkeypatch: pytest.MonkeyPatch) -> None:
    # A slow render and a slow encode (a heavy model, a slow encoder): in turn they would take
    # 2 × SLOW_S a frame; overlapped, a pose that arrives during an encode renders at once and
    # its frame follows the previous one by about one SLOW_S.
    import farview.host.render_loop as render_loop
    from farview.streaming.encoder import H264Encoder

    class _SlowEncoder(H264Encoder):
        def encode_frame(self, *args: Any, **kwargs: Any) -> list[Any]:
            time.sleep(SLOW_S)
            return super().encode_frame(*args, **kwargs)

    monkeypatch.setattr(render_loop, "H264Encoder", _SlowEncoder)
    loop = RenderLoop(Scene(), threading.RLock(), _SlowRenderer, encode_thread="on")
    arrived: dict[int, float] = {}
    done = threading.Event()

    def on_frame(_packets: list[Any], meta: FrameMetadata) -> None:
        arrived[meta.pose_sequence] = time.perf_counter()
        if 2 in arrived:
            done.set()

    loop.start()
    try:
        loop.start_stream(on_frame, StreamSettings(max_fps=240))
        time.sleep(4 * SLOW_S)  # the first frame (start of stream) is out; both threads idle
        loop.submit_pose(_pose(1, 0.0))
        time.sleep(SLOW_S * 1.2)  # pose 1 is rendered and encoding now
        loop.submit_pose(_pose(2, 0.3))
        assert done.wait(10), f"frames seen: {sorted(arrived)}"
    finally:
        loop.stop_stream()
        loop.stop()
    assert loop.renderer_info["encode"] == "overlapped"
    gap = arrived[2] - arrived[1]
    # in turn: render 2 would start only after encode 1, so gap >= 2 × SLOW_S
    assert gap < 1.6 * SLOW_S, gap


def test_encoding_follows_the_render_on_a_software_rasteriser() -> None:
    # "auto": render and encode share the CPU on llvmpipe, so they take turns (module docstring)
    loop = RenderLoop(Scene(), threading.RLock(), _ContextRenderer)
    loop.start()
    try:
        assert "llvmpipe" in loop.renderer_info["gl_renderer"]
        assert loop.renderer_info["encode"] == "after render"
    finally:
        loop.stop()
    with pytest.raises(ValueError, match="encode_thread must be one of auto, on, off"):
        RenderLoop(Scene(), threading.RLock(), _ContextRenderer, encode_thread="sometimes")
