"""OpenXR headset: the runtime paces the frames, gives each eye's pose and FOV, and gets every
decoded frame back as a projection layer carrying the poses that frame was rendered with.

An optional extra: ``pip install 'farview[openxr]'`` installs pyopenxr, used only through
:mod:`farview.client.headset._pyopenxr` (pinned, one module). Every failure to reach a headset
(pyopenxr missing, no runtime, no headset, no OpenGL binding) is an
:class:`OpenXRUnavailableError` whose message says what to do; a failed runtime call names the
call and its result code.

:meth:`OpenXRHeadset.open` creates the instance, finds the headset (its recommended per-eye size
becomes the stream's size: both eyes side by side), makes an OpenGL context the runtime shares
(:mod:`farview.client.headset.xr_graphics`: EGL through ``XR_MNDX_egl_enable`` or GLX through
``XR_KHR_opengl_enable``; ``XR_MND_headless`` only when asked) and creates the session.

:class:`XrFrameLoop` is the frame loop, one :meth:`~XrFrameLoop.step` per runtime frame:

1. drain events: ``READY`` → ``xrBeginSession``; ``STOPPING`` → ``xrEndSession``;
   ``EXITING``, ``LOSS_PENDING`` or instance loss → stop;
2. ``xrWaitFrame`` (the runtime blocks to pace the loop) → predicted display time and period;
3. ``xrBeginFrame``; ``xrLocateViews`` for the display time plus the measured pose → submit
   latency (the runtime predicts that far; ``--no-prediction``: the display time itself), and
   those two views (pose and FOV per eye) go to the host as the next pose request;
4. the newest decoded frame (or, if none came, the last one again) is drawn into a swapchain
   image on the GPU and ``xrEndFrame`` submits a projection layer whose views carry **the poses
   and FOVs that frame was rendered with**, at the predicted display time, so the runtime
   reprojects it to where the head is. Before the first frame, or when ``shouldRender`` is
   false, the frame ends with no layer.

Headless (``XR_MND_headless``), frames cannot be begun: the loop is ``xrWaitFrame`` +
``xrLocateViews`` at the runtime's "now", paced by the caller, and nothing is displayed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from farview.client.headset._pyopenxr import (
    NO_HEADSET_MESSAGE,
    NO_PYOPENXR_MESSAGE,
    NO_RUNTIME_MESSAGE,
    LayerView,
    OpenXRCallError,
    OpenXRUnavailableError,
    Swapchain,
    XrRuntime,
    call_error,
    import_xr,
)
from farview.client.headset.xr_graphics import (
    HEADLESS_EXTENSION,
    SwapchainPainter,
    XrGraphics,
    choose_graphics,
    open_graphics,
    pick_format,
)
from farview.input.headset import HeadsetDescription
from farview.input.mathutil import (
    Quat,
    Vec3,
    quat_conjugate,
    quat_from_axis_angle,
    quat_multiply,
    quat_normalize,
    quat_rotate,
)
from farview.input.pose import Pose, PoseRequest, View
from farview.input.pose_sources import DEFAULT_HEAD_POSITION
from farview.input.prediction import LatencyEstimator
from farview.streaming.correlation import since_us
from farview.streaming.frame import Frame

__all__ = ["NO_HEADSET_MESSAGE", "NO_PYOPENXR_MESSAGE", "NO_RUNTIME_MESSAGE", "OpenXRCallError", "OpenXRHeadset",
           "OpenXRUnavailableError", "XrFrameLoop", "XrStats", "call_error", "import_xr"]

log = logging.getLogger(__name__)

TIMESPEC_EXTENSION = "XR_KHR_convert_timespec_time"
MAX_HORIZON_S = 0.2
"""Furthest ahead of the display time the loop asks the runtime to predict a head pose."""
KEPT_LAYERS = 8


@dataclass(frozen=True)
class Placement:
    """Where the scene sits in the runtime's space: a turn about the vertical axis and a shift.

    A STAGE space has its origin on the floor; the scene's "home" viewpoint
    (:data:`~farview.input.pose_sources.DEFAULT_HEAD_POSITION`, 1 m in front of the model,
    looking at it along -z) is where the simulated headset and the desktop viewer start. The
    placement maps the head's first pose onto that home, turned so the user faces the model, and
    keeps it for the session: walking and turning then move through the scene. Rigid, so FOVs
    are unchanged and a layer can be mapped back exactly (:meth:`to_runtime`).
    """

    rotation: Quat = (0.0, 0.0, 0.0, 1.0)
    offset: Vec3 = (0.0, 0.0, 0.0)

    @classmethod
    def facing_home(cls, head: Pose, home: Vec3 = DEFAULT_HEAD_POSITION) -> Placement:
        forward = quat_rotate(head.orientation, (0.0, 0.0, -1.0))
        heading = math.atan2(-forward[0], -forward[2])  # 0: facing -z; positive: turned left
        rotation = quat_from_axis_angle((0.0, 1.0, 0.0), -heading)
        moved = quat_rotate(rotation, head.position)
        return cls(rotation, (home[0] - moved[0], home[1] - moved[1], home[2] - moved[2]))

    def to_scene(self, view: View) -> View:
        p = quat_rotate(self.rotation, view.pose.position)
        return View(Pose((p[0] + self.offset[0], p[1] + self.offset[1], p[2] + self.offset[2]),
                         quat_normalize(quat_multiply(self.rotation, view.pose.orientation))), view.fov)

    def to_runtime(self, view: View) -> View:
        inverse = quat_conjugate(self.rotation)
        x, y, z = view.pose.position
        p = quat_rotate(inverse, (x - self.offset[0], y - self.offset[1], z - self.offset[2]))
        return View(Pose(p, quat_normalize(quat_multiply(inverse, view.pose.orientation))), view.fov)


class OpenXRHeadset:
    """An OpenXR instance, its headset, the GL binding and the session. :meth:`close` ends them."""

    def __init__(self, runtime: XrRuntime, headset: HeadsetDescription, graphics: XrGraphics | None,
                 graphics_name: str, runtime_name: str) -> None:
        self.runtime = runtime
        self.headset = headset
        """Per-eye size: the runtime's recommended size. The FOVs and IPD come with every frame."""
        self.graphics = graphics
        self.graphics_name = graphics_name
        """``egl``, ``glx`` or ``headless``."""
        self.runtime_name = runtime_name

    @property
    def headless(self) -> bool:
        return self.graphics is None

    @classmethod
    def open(cls, *, graphics: str = "auto", app_name: str = "farview",
             runtime: XrRuntime | None = None) -> OpenXRHeadset:
        """``graphics``: ``auto``, ``egl``, ``glx`` or ``headless`` (poses only; nothing shown)."""
        runtime = runtime if runtime is not None else XrRuntime()
        available = runtime.extensions()
        chosen = choose_graphics(graphics, available)
        wanted = [HEADLESS_EXTENSION if chosen == "headless" else
                  ("XR_MNDX_egl_enable" if chosen == "egl" else "XR_KHR_opengl_enable")]
        if chosen != "headless" and chosen == "egl":
            wanted.append("XR_KHR_opengl_enable")  # XR_MNDX_egl_enable builds on it
        if TIMESPEC_EXTENSION in available:
            wanted.append(TIMESPEC_EXTENSION)
        elif chosen == "headless":
            raise OpenXRUnavailableError(f"headless OpenXR needs {TIMESPEC_EXTENSION} for the time, and the "
                                         "runtime lacks it")
        gfx: XrGraphics | None = None
        try:
            runtime.create_instance(app_name, wanted)
            name = runtime.runtime_name()
            views = runtime.find_headset()
            if len(views) != 2:
                raise OpenXRUnavailableError(f"the headset reports {len(views)} views; farview needs stereo (2)")
            if chosen != "headless":
                gfx = open_graphics(chosen)
            runtime.create_session(gfx.binding(runtime) if gfx is not None else None)
        except BaseException:
            if gfx is not None:
                gfx.close()
            runtime.close()
            raise
        eye = views[0].recommended
        log.info("OpenXR: runtime %s, %dx%d per eye (recommended), graphics %s, %s space", name, eye[0], eye[1],
                 chosen, runtime.space_name)
        return cls(runtime, HeadsetDescription(eye, name="openxr"), gfx, chosen, name)

    def close(self) -> None:
        self.runtime.close()
        if self.graphics is not None:
            self.graphics.close()
            self.graphics = None


@dataclass
class XrStats:
    """What the OpenXR loop did. Only frames in a submitted layer count as presented."""

    xr_frames: int = 0
    """``xrWaitFrame`` calls that returned."""
    layers_submitted: int = 0
    """``xrEndFrame`` calls that carried a projection layer: what the runtime displayed."""
    new_frames_submitted: int = 0
    """Distinct stream frames submitted (the rest of ``layers_submitted`` are repeats)."""
    empty_frames: int = 0
    """``xrEndFrame`` with no layer: no frame yet, or the runtime said not to render."""
    frames_dropped: int = 0
    """Decoded frames a newer one replaced before any runtime frame submitted them."""
    frames_received: int = 0
    """Frames the loop took from the stream (headless: all it did with them)."""
    period_ns: int = 0
    """The runtime's predicted display period, from the last ``xrWaitFrame``."""
    states: list[str] = field(default_factory=list)
    """Session states, in the order the runtime announced them."""
    layers: list[tuple[int, tuple[View, ...], tuple[View, ...]]] = field(default_factory=list)
    """The last few new frames submitted: (pose sequence, the views the frame was rendered for
    mapped back to the runtime's space, the views of the layer as ``xrEndFrame`` got them)."""

    def summary(self, graphics: str) -> str:
        if graphics == "headless":
            return (f"OpenXR headless (XR_MND_headless): nothing is displayed; {self.xr_frames} runtime frames, "
                    f"{self.frames_received} stream frames received")
        period = f"{self.period_ns / 1e6:.1f} ms" if self.period_ns else "unknown"
        return (f"OpenXR ({graphics}): {self.layers_submitted} layers submitted in {self.xr_frames} runtime frames "
                f"({self.new_frames_submitted} new stream frames, "
                f"{self.layers_submitted - self.new_frames_submitted} repeats), {self.empty_frames} ended empty, "
                f"{self.frames_dropped} stream frames dropped; runtime frame period {period}")


class XrFrameLoop:
    """The OpenXR frame loop over a :class:`XrRuntime` (or anything with its methods)."""

    def __init__(self, runtime: Any, send: Callable[[PoseRequest], None], take: Callable[[], Frame | None], *,
                 headset: HeadsetDescription, headless: bool, prediction: bool = True,
                 painter_factory: Callable[[], Any] = SwapchainPainter, near: float = 0.05, far: float = 1000.0,
                 now_xr: Callable[[], int] | None = None) -> None:
        self.runtime = runtime
        self.send = send
        self.take = take
        self.headset = headset
        self.headless = headless
        self.prediction = prediction
        self.near, self.far = near, far
        self.stats = XrStats()
        self.latency = LatencyEstimator(initial_s=0.05, display_latency_s=0.0)
        self.running = False
        self.exiting = False
        self._painter_factory = painter_factory
        self._painter: Any = None
        self._swapchain: Swapchain | None = None
        self._current: Frame | None = None
        self._current_submitted = False
        self._now_xr = now_xr or runtime.now
        self.placement: Placement | None = None
        """Set from the first located head pose (:meth:`Placement.facing_home`)."""
        self.pose_to_submit_ms: list[float] = []

    # -- session state -----------------------------------------------------------------------
    def _on_state(self, state: str) -> None:
        self.stats.states.append(state)
        log.info("OpenXR session state: %s", state)
        if state == "READY":
            self.runtime.begin_session()
            self.running = True
        elif state == "STOPPING":
            if self.running:
                self.runtime.end_session()
            self.running = False
        elif state in ("EXITING", "LOSS_PENDING", "INSTANCE_LOSS_PENDING"):
            self.exiting = True

    def stop(self) -> None:
        """Ask the runtime to end the session (it goes STOPPING → EXITING through events)."""
        if self.running:
            try:
                self.runtime.request_exit()
            except OpenXRUnavailableError as exc:
                log.debug("xrRequestExitSession: %s", exc)

    # -- one frame ---------------------------------------------------------------------------
    def step(self) -> bool:
        """One runtime frame; False once the runtime ends the session."""
        for state in self.runtime.poll_events():
            self._on_state(state)
        if self.exiting:
            return False
        if not self.running:
            return True  # the caller waits a little and polls again
        timing = self.runtime.wait_frame()
        self.stats.xr_frames += 1
        self.stats.period_ns = timing.period_ns
        horizon_ns = int(min(self.latency.horizon_s, MAX_HORIZON_S) * 1e9) if self.prediction else 0
        if self.headless:
            left, right = self.runtime.locate_views(self._now_xr() + horizon_ns)
            self._request(left, right)
            if self._take_newest() is not None:
                self._current_submitted = True  # nothing is displayed headless: never "dropped"
            return True
        self.runtime.begin_frame()
        left, right = self.runtime.locate_views(timing.display_time + horizon_ns)
        self._request(left, right)
        self._take_newest()
        frame = self._current
        if not timing.should_render or frame is None or frame.pose is None:
            self.runtime.end_frame(timing.display_time, None, [])
            self.stats.empty_frames += 1
            return True
        swapchain = self._ensure_swapchain(frame.width, frame.height)
        index = self.runtime.acquire_image(swapchain)
        try:
            if self._painter is None:
                self._painter = self._painter_factory()
            self._painter.paint(swapchain.images[index], swapchain.size, frame)
        finally:
            self.runtime.release_image(swapchain)
        views = self._layer_views(frame)
        self.runtime.end_frame(timing.display_time, swapchain, views)
        self.stats.layers_submitted += 1
        if not self._current_submitted:
            self._current_submitted = True
            self.stats.new_frames_submitted += 1
            latency_ms = since_us(frame.pose.client_time_us)  # milliseconds
            self.pose_to_submit_ms.append(latency_ms)
            self.latency.add(latency_ms / 1000.0)
            submitted = tuple(v.view for v in self.runtime.last_layer()) or tuple(v.view for v in views)
            self.stats.layers.append((frame.pose.sequence, tuple(v.view for v in views), submitted))
            del self.stats.layers[:-KEPT_LAYERS]
        return True

    def _request(self, left: View, right: View) -> None:
        if self.placement is None:
            mid = tuple((a + b) / 2 for a, b in zip(left.pose.position, right.pose.position, strict=True))
            self.placement = Placement.facing_home(Pose((mid[0], mid[1], mid[2]), left.pose.orientation))
            log.info("OpenXR: the head's first pose %s faces the scene from its home viewpoint", mid)
        place = self.placement.to_scene
        self.send(PoseRequest((place(left), place(right)), self.headset.viewport, self.near, self.far))

    def _take_newest(self) -> Frame | None:
        frame = self.take()
        if frame is None or frame.pose is None or len(frame.pose.views) != 2:
            return None  # not one of ours (the connection's first pose is mono): nothing to submit
        self.stats.frames_received += 1
        if self._current is not None and not self._current_submitted:
            self.stats.frames_dropped += 1
        self._current, self._current_submitted = frame, False
        return frame

    def _ensure_swapchain(self, width: int, height: int) -> Swapchain:
        if self._swapchain is None or self._swapchain.size != (width, height):
            if self._swapchain is not None:
                self.runtime.destroy_swapchain(self._swapchain)
            fmt = pick_format(self.runtime.swapchain_formats())
            self._swapchain = self.runtime.create_swapchain(width, height, fmt)
            log.info("OpenXR swapchain %dx%d, format 0x%X, %d images", width, height, fmt,
                     len(self._swapchain.images))
        return self._swapchain

    def _layer_views(self, frame: Frame) -> list[LayerView]:
        """Each eye's half of the side-by-side frame, with the view the host rendered it for
        (in the runtime's space)."""
        assert frame.pose is not None and self.placement is not None
        rendered = [self.placement.to_runtime(v) for v in frame.pose.views]
        if len(rendered) != 2:
            raise OpenXRCallError("xrEndFrame", "XR_ERROR_VALIDATION_FAILURE",
                                  f"the frame carries {len(rendered)} views; a projection layer needs 2")
        half = frame.width // 2
        return [LayerView(rendered[0], (0, 0, half, frame.height)),
                LayerView(rendered[1], (half, 0, frame.width - half, frame.height))]

    def close(self) -> None:
        if self._painter is not None:
            self._painter.close()
            self._painter = None
        if self._swapchain is not None:
            self.runtime.destroy_swapchain(self._swapchain)
            self._swapchain = None
