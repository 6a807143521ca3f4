"""RenderLoop's ``wait_us``: a pose that arrives while the render thread is busy reports how
long it waited, so ``farview bench`` can split the host's queueing from the network. Real
renderer (EGL, llvmpipe) and real encoder; the scene is made slow by a render that also sleeps,
as a heavy model would be."""

from __future__ import annotations

import threading
import time
from typing import Any

from host.render_loop import RenderLoop, StreamSettings
from host.runtime import _ContextRenderer
from host.scene import Scene
from input.frame_meta import FrameMetadata
from input.pose import Fov, Pose, PoseMessage, View

SLOW_S = 0.15


class _SlowRenderer(_ContextRenderer):
    def render(self, scene: Any, views: Any, near: float, far: float) -> None:
        time.sleep(SLOW_S)
        super().render(scene, views, near, far)


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
