"""RenderLoop's pose slot with clients that send every pose twice over an unordered channel: a
second copy and a late (older) pose are not rendered; a new client numbers afresh. Real
renderer (EGL, llvmpipe) and encoder."""

from __future__ import annotations

import threading
import time
from typing import Any

from farview.host.render_loop import RenderLoop, StreamSettings
from farview.host.runtime import _ContextRenderer
from farview.host.scene import Scene
from farview.input.frame_meta import FrameMetadata
from farview.input.pose import Fov, Pose, PoseMessage, View


def _pose(seq: int, client_time: int | None = None) -> PoseMessage:
    return PoseMessage(seq, seq if client_time is None else client_time,
                       (View(Pose((0.01 * seq, 0.2, 1.5)), Fov.symmetric(60.0, 4 / 3)),), (160, 120))


def _settle(frames: list[FrameMetadata], lock: threading.Lock, sequence: int) -> None:
    """Until a frame of pose ``sequence`` has come (at most 20 s), then 0.3 s more for any that
    follow."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with lock:
            if frames and frames[-1].pose_sequence == sequence:
                break
        time.sleep(0.01)
    time.sleep(0.3)


def test_copies_and_late_poses_are_not_rendered() -> None:
    loop = RenderLoop(Scene(), threading.RLock(), _ContextRenderer)
    frames: list[FrameMetadata] = []
    lock = threading.Lock()

    def on_frame(_packets: list[Any], meta: FrameMetadata) -> None:
        with lock:
            frames.append(meta)

    loop.start()
    try:
        loop.start_stream(on_frame, StreamSettings(max_fps=60))
        loop.submit_pose(_pose(10))
        _settle(frames, lock, 10)
        with lock:
            assert frames[-1].pose_sequence == 10
            n = len(frames)
        loop.submit_pose(_pose(10))  # the second copy
        loop.submit_pose(_pose(9))  # late: older than 10
        loop.submit_pose(_pose(2**32 - 5))  # "older" across the wrap
        time.sleep(0.5)  # time enough to render them (a frame takes ~10-50 ms here)
        with lock:
            assert len(frames) == n, [m.pose_sequence for m in frames[n:]]
        assert loop.poses_repeated == 1 and loop.poses_stale == 2
        loop.submit_pose(_pose(10, client_time=99))  # same number, a new pose: a client that
        loop.submit_pose(_pose(11))                  # does not count still gets frames
        _settle(frames, lock, 11)
        with lock:
            assert frames[-1].pose_sequence == 11
        # a new client's stream starts numbering again
        loop.stop_stream()
        with lock:
            frames.clear()
        loop.start_stream(on_frame, StreamSettings(max_fps=60))
        loop.submit_pose(_pose(1))
        _settle(frames, lock, 1)
        with lock:
            assert frames[-1].pose_sequence == 1
        assert loop.poses_stale == 2
    finally:
        loop.stop_stream()
        loop.stop()
