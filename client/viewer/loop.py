"""The viewer's frame loop as plain code: input → camera → pose out → newest frame → draw → swap.

It knows nothing about the network. It takes the newest decoded frame from a ``frame_source``
(anything with ``take() -> Frame | None``), hands one :class:`~farview.input.pose.PoseRequest`
per display frame to ``pose_sink`` (the connection gives it its sequence and send time),
forwards input to ``on_input`` and size changes to ``on_resize``.

Threading: everything here runs on the main thread (GLFW's rule). The one cross-thread hand-off
is the stream's :class:`~farview.streaming.mailbox.LatestMailbox`: the stream's worker thread
puts decoded frames, the loop takes the newest; a frame replaced before it was taken is counted
as discarded, never queued, so a slow window can only ever show the latest picture.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from OpenGL import GL
from PIL import Image

from farview.client.viewer.controls import KEY_HELP, Command, Controls
from farview.client.viewer.events import (
    CloseEvent,
    CursorMoveEvent,
    FramebufferResizeEvent,
    KeyEvent,
    MouseButtonEvent,
    ResizeEvent,
    ScrollEvent,
    WindowEvent,
)
from farview.client.viewer.overlay import Overlay
from farview.client.viewer.window import Window
from farview.client.viewer.yuv_renderer import YuvRenderer
from farview.input.camera import CameraController
from farview.input.events import InputEvent
from farview.input.pose import MAX_VIEWPORT, Fov, PoseRequest, View
from farview.streaming.correlation import since_us
from farview.streaming.frame import Frame

log = logging.getLogger(__name__)

DEFAULT_FOV_Y_DEG = 60.0
DEFAULT_MAX_FPS = 240.0
"""Cap on display frames per second when vsync does not pace the loop (Xvfb, vsync off)."""
STATS_REFRESH_S = 0.25
"""How often the statistics text is rebuilt: re-rendering text every frame would cost more
than drawing the video."""
FPS_WINDOW = 60
"""Display frames the fps figure averages over."""


class FrameSource(Protocol):
    def take(self) -> Frame | None:
        """The newest frame not yet taken, or None; must not block."""


@dataclass(frozen=True)
class ViewerStats:
    """The loop's own per-display-frame figures (the stream adds its own lines to the overlay)."""

    display_fps: float
    frames_displayed: int
    """Display frames drawn and swapped."""
    frames_presented: int
    """Display frames that showed a new video frame."""
    frames_reused: int
    """Display frames with no new video frame (the previous one shown again, or none yet)."""
    upload_ms: float
    """Last plane upload (CPU time)."""
    draw_ms: float
    """Last video quad draw (CPU time)."""
    pose_to_present_ms: float | None
    """Client clock: the presented frame's pose was sampled → the frame was swapped."""
    poses_sent: int


class ViewerLoop:
    """Runs the viewer on a :class:`Window`; :meth:`step` is one display frame."""

    def __init__(
        self,
        window: Window,
        frame_source: FrameSource,
        pose_sink: Callable[[PoseRequest], None] | None = None,
        *,
        camera: CameraController | None = None,
        on_input: Callable[[InputEvent], None] | None = None,
        on_resize: Callable[[int, int], None] | None = None,
        extra_stats: Callable[[], list[str]] | None = None,
        fov_y_deg: float = DEFAULT_FOV_Y_DEG,
        near: float = 0.1,
        far: float = 1000.0,
        max_fps: float | None = DEFAULT_MAX_FPS,
        show_stats: bool = True,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.window = window
        self.frame_source = frame_source
        self.pose_sink = pose_sink
        self.on_input = on_input
        self.on_resize = on_resize
        self.extra_stats = extra_stats
        """Returns more overlay lines (pose→receive, bitrate, host times…); called 4× a second."""
        self.camera = camera or CameraController(fov_y_deg=fov_y_deg)
        self.controls = Controls(self.camera, window_size=window.window_size())
        self.fov_y_deg = fov_y_deg
        self.near = near
        self.far = far
        self.max_fps = max_fps
        self._clock = clock
        window.make_current()
        self.renderer = YuvRenderer()
        self.overlay = Overlay(help_text=KEY_HELP, stats_visible=show_stats)
        self._keyframe_wanted = False
        self._last_step: float | None = None
        self._frame_times: deque[float] = deque(maxlen=FPS_WINDOW)
        self._stats_at = -math.inf
        self._has_frame = False
        self._drawn = False
        self._pending_frame: Frame | None = None
        self._running = False
        self.frames_displayed = 0
        self.frames_presented = 0
        self.frames_reused = 0
        self.poses_sent = 0
        self.pose_to_present_ms: float | None = None
        self.last_frame: Frame | None = None
        """The video frame on screen."""

    # -- public controls ------------------------------------------------------------------------

    def set_status(self, text: str | None) -> None:
        """A banner such as "reconnecting…"; None hides it. Main thread only."""
        self.overlay.set_status(text)

    def request_keyframe(self) -> None:
        """Set the keyframe flag on the next pose message (e.g. after a decode error)."""
        self._keyframe_wanted = True

    def stop(self) -> None:
        """Make :meth:`run` return after the current step."""
        self._running = False

    @property
    def stats(self) -> ViewerStats:
        return ViewerStats(
            display_fps=self._fps(),
            frames_displayed=self.frames_displayed,
            frames_presented=self.frames_presented,
            frames_reused=self.frames_reused,
            upload_ms=self.renderer.upload_ms,
            draw_ms=self.renderer.draw_ms,
            pose_to_present_ms=self.pose_to_present_ms,
            poses_sent=self.poses_sent,
        )

    # -- the loop -------------------------------------------------------------------------------

    def run(self, duration: float | None = None) -> None:
        """Step until the window closes, Esc, :meth:`stop`, or ``duration`` seconds pass."""
        self._running = True
        end = None if duration is None else self._clock() + duration
        while self._running and (end is None or self._clock() < end):
            started = self._clock()
            if not self.step():
                break
            # Vsync paces a real display below the cap; without it (Xvfb, --no-vsync) the cap
            # keeps the loop from spinning a core at thousands of frames per second.
            if self.max_fps:
                spare = 1.0 / self.max_fps - (self._clock() - started)
                if spare > 0:
                    time.sleep(spare)
        self._running = False

    def step(self) -> bool:
        """One display frame. Returns False when the viewer should stop (close or Esc)."""
        now = self._clock()
        dt = 0.0 if self._last_step is None else now - self._last_step
        self._last_step = now
        events = self.window.poll()
        keep_going = self._handle_events(events)
        if not keep_going or self.window.should_close:
            return False
        moved = self.controls.update(dt)
        fb_size = self.window.framebuffer_size()
        if fb_size[0] == 0 or fb_size[1] == 0:
            time.sleep(0.01)  # minimised: nothing to draw, no viewport to request
            return True
        self._send_pose(fb_size)
        frame = self.frame_source.take()
        if frame is not None:
            self.renderer.upload(frame.y, frame.u, frame.v)
            self.last_frame = frame
            self._has_frame = True
        stats_changed = self._refresh_stats(now)
        if frame is None and not events and not moved and not stats_changed and self._drawn:
            # Nothing new to show: skip the draw and swap. On a CPU-rendered display (llvmpipe)
            # a redraw costs milliseconds that the render host needs more.
            self.frames_reused += 1
            return True
        self._render(fb_size)
        self.window.swap()
        self._drawn = True
        self.frames_displayed += 1
        if frame is not None:
            self.frames_presented += 1
            if frame.pose is not None:
                self.pose_to_present_ms = since_us(frame.pose.client_time_us)
        else:
            self.frames_reused += 1
        self._frame_times.append(now)
        return True

    def screenshot_pixels(self, *, overlay: bool = True) -> np.ndarray:
        """Draw the current picture into the back buffer (no swap) and read it: (H, W, 3) RGB."""
        self.window.make_current()
        self._render(self.window.framebuffer_size(), overlay=overlay)
        return self.window.read_pixels("back")

    def screenshot(self, path: str | Path, *, overlay: bool = True) -> Path:
        """Write the current picture (video and, by default, overlay) as PNG; returns the path."""
        pixels = self.screenshot_pixels(overlay=overlay)
        path = Path(path)
        Image.fromarray(pixels, "RGB").save(path)
        log.info("screenshot written to %s", path)
        return path

    def close(self) -> None:
        """Free the GL objects (the window stays open; the caller owns it)."""
        self.window.make_current()
        self.renderer.close()
        self.overlay.close()

    # -- internals ------------------------------------------------------------------------------

    def _render(self, fb_size: tuple[int, int], *, overlay: bool = True) -> None:
        GL.glViewport(0, 0, *fb_size)
        GL.glClearColor(0.0, 0.0, 0.0, 1.0)
        GL.glClear(GL.GL_COLOR_BUFFER_BIT)
        if self._has_frame:
            self.renderer.draw(fb_size)
        if overlay:
            self.overlay.draw(fb_size)

    def _handle_events(self, events: list[WindowEvent]) -> bool:
        keep_going = True
        t_us = time.monotonic_ns() // 1000
        for event in events:
            if isinstance(event, CloseEvent):
                keep_going = False
                continue
            if isinstance(event, FramebufferResizeEvent):
                if event.width > 0 and event.height > 0 and self.on_resize is not None:
                    self.on_resize(event.width, event.height)
                continue
            command = self.controls.handle(event)
            self._forward_input(event, t_us)
            if command is Command.QUIT:
                keep_going = False
            elif command is Command.TOGGLE_FULLSCREEN:
                self.window.toggle_fullscreen()
            elif command is Command.TOGGLE_STATS:
                self.overlay.toggle_stats()
            elif command is Command.TOGGLE_HELP:
                self.overlay.toggle_help()
        return keep_going

    def _forward_input(self, event: WindowEvent, t_us: int) -> None:
        if self.on_input is None:
            return
        out: InputEvent | None = None
        if isinstance(event, KeyEvent):
            out = InputEvent.key_event(event.key, event.action, event.mods, t_us)
        elif isinstance(event, MouseButtonEvent):
            x, y = self._normalised(event.x, event.y)
            out = InputEvent.button_event(event.button, event.action, x, y, event.mods, t_us)
        elif isinstance(event, CursorMoveEvent):
            out = InputEvent.pointer(*self._normalised(event.x, event.y), t_us)
        elif isinstance(event, ScrollEvent):
            out = InputEvent.scroll(event.dx, event.dy, t_us)
        elif isinstance(event, ResizeEvent):
            return
        if out is not None:
            self.on_input(out)

    def _normalised(self, x: float, y: float) -> tuple[float, float]:
        w, h = self.window.window_size()
        return (x / max(w, 1), y / max(h, 1))

    def _send_pose(self, fb_size: tuple[int, int]) -> None:
        if self.pose_sink is None:
            return
        width, height = min(fb_size[0], MAX_VIEWPORT), min(fb_size[1], MAX_VIEWPORT)
        request = PoseRequest(
            views=(View(self.camera.pose(), Fov.symmetric(self.fov_y_deg, width / height)),),
            viewport=(width, height),
            near=self.near,
            far=self.far,
            keyframe=self._keyframe_wanted,
        )
        self._keyframe_wanted = False
        self.poses_sent += 1
        self.pose_sink(request)

    def _fps(self) -> float:
        if len(self._frame_times) < 2:
            return 0.0
        span = self._frame_times[-1] - self._frame_times[0]
        return (len(self._frame_times) - 1) / span if span > 0 else 0.0

    def _refresh_stats(self, now: float) -> bool:
        """Rebuild the statistics lines a few times a second; True when they were rebuilt."""
        if now - self._stats_at < STATS_REFRESH_S:
            return False
        self._stats_at = now
        lines = format_stats(self.stats)
        if self.extra_stats is not None:
            lines += self.extra_stats()
        self.overlay.set_stats(lines)
        return True


def format_stats(stats: ViewerStats) -> list[str]:
    """The loop's overlay lines."""
    lines = [
        f"fps {stats.display_fps:.1f}",
        f"frames {stats.frames_presented} new, {stats.frames_reused} reused",
        f"upload {stats.upload_ms:.2f} ms  draw {stats.draw_ms:.2f} ms",
    ]
    if stats.pose_to_present_ms is not None:
        lines.append(f"pose→present {stats.pose_to_present_ms:.1f} ms")
    return lines
