"""The headset loop: head pose at the headset's rate → prediction → stereo pose → host; frames →
late reprojection to the newest pose → present; and the measurement that shows it helps.

Per display tick (``1 / refresh_hz``) :class:`HeadsetLoop.step`:

1. samples the :class:`~input.pose_sources.PoseSource` at the loop time ``t``;
2. predicts the head pose for ``t + pose→present + present→display`` (measured latency, EWMA;
   :mod:`input.prediction`) and sends it as a stereo :class:`~input.pose.PoseMessage`
   (:func:`~farview.input.headset.stereo_request`), or the raw sample with prediction off; the
   connection gives it its sequence and send time;
3. takes the newest decoded frame, if any, and computes the homographies that reproject it from
   the orientation it was rendered with to the newest pose predicted for the display time
   (:mod:`farview.client.headset.reprojection`); identity-free: off means no homography at all;
4. measures, for each newly presented frame, the angle between what is shown and where the head
   really is at display time (:class:`AngularError`), for all four combinations of prediction
   and reprojection from the same frame timing, so one run compares them under equal load.

The "head at display time" is the pose source's ``pose_at(t_display)``: ground truth for a
simulated headset (a trace knows its future), the newest known pose for live sources.

Threads: the loop runs on the calling (main) thread; the connection lives on a
:class:`~farview.client.viewer.app.StreamWorker` thread. Poses go out through
``worker.send_pose`` (``call_soon_threadsafe``), frames come back through the stream's
:class:`~farview.streaming.mailbox.LatestMailbox`. A frame is matched to what the loop sent by
its views; its latency is its own pose's send time on the connection's clock. The window
(GLFW, GL) is main-thread only.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from farview.client.frame_loop import fixed_ticks, run_frame_loop
from farview.client.headset._pyopenxr import OpenXRUnavailableError
from farview.client.headset.reprojection import Mat3, frame_homographies, reproject_rgb
from farview.client.viewer.app import StreamWorker, ViewerResult, frames_presented
from farview.input.headset import SIMULATED_HEADSET, HeadsetDescription, stereo_request
from farview.input.mathutil import Quat, quat_angle_between
from farview.input.pose import Pose, PoseRequest, View
from farview.input.pose_sources import HeadTrace, PoseSource, headturn_trace, parse_trace_csv, parse_trace_json
from farview.input.prediction import LatencyEstimator, PosePredictor
from farview.streaming.correlation import since_us
from farview.streaming.frame import Frame
from farview.streaming.mailbox import LatestMailbox
from farview.streaming.stats import percentile

if TYPE_CHECKING:
    import argparse


log = logging.getLogger(__name__)

MAX_TRACKED_POSES = 512
MOVING_DEG_S = 30.0
"""Head speed above which a sample counts as "during a turn" in the summaries."""


class FrameSource(Protocol):
    def take(self) -> Frame | None: ...


@dataclass(frozen=True)
class HeadsetSettings:
    """How the headset loop runs; keyword-only."""

    headset: HeadsetDescription = SIMULATED_HEADSET
    prediction: bool = True
    """Render for the pose predicted at display time (off: the raw newest sample)."""
    reprojection: bool = True
    """Reproject each frame to the newest pose before presenting (off: show as rendered)."""
    display_latency_s: float | None = None
    """Present → photons; None: one refresh interval (a headset's scan-out)."""
    initial_latency_s: float = 0.05
    """Pose → present latency assumed until the first frame is measured."""
    near: float = 0.05
    far: float = 1000.0

    def __post_init__(self) -> None:
        if self.display_latency_s is not None and not 0.0 <= self.display_latency_s <= 1.0:
            raise ValueError(f"display latency must be 0..1 s, got {self.display_latency_s}")
        if not 0.0 <= self.initial_latency_s <= 1.0:
            raise ValueError(f"initial latency must be 0..1 s, got {self.initial_latency_s}")
        if not 0.0 < self.near < self.far:
            raise ValueError(f"clip planes need 0 < near < far, got {self.near}, {self.far}")

    @property
    def display_latency(self) -> float:
        return self.headset.frame_interval_s if self.display_latency_s is None else self.display_latency_s


def angle_deg(a: Pose | Quat, b: Pose | Quat) -> float:
    """Angle in degrees between two orientations (poses or quaternions)."""
    qa = a.orientation if isinstance(a, Pose) else a
    qb = b.orientation if isinstance(b, Pose) else b
    return math.degrees(quat_angle_between(qa, qb))


@dataclass(frozen=True)
class AngularError:
    """One presented frame: how far the shown view is from the head at display time, in degrees."""

    t: float
    """Loop time of presentation (seconds)."""
    pose_to_present_ms: float
    """The frame's pose was sampled → it was presented (client clock)."""
    motion_to_photon_ms: float
    """``pose_to_present_ms`` plus the display latency."""
    head_speed_deg_s: float
    """True head speed at display time (from the pose source)."""
    uncorrected_deg: float
    """Rendered with the raw sample, shown as is."""
    predicted_deg: float
    """Rendered with the predicted pose, shown as is."""
    reprojected_deg: float
    """Reprojected to the newest raw sample (no prediction anywhere)."""
    corrected_deg: float
    """Prediction and reprojection: reprojected to the newest pose predicted for display."""
    presented_deg: float
    """What this run actually showed, given its settings."""


def angular_error(*, t: float, rendered_raw: Pose, rendered_predicted: Pose, latest_raw: Pose,
                  latest_predicted: Pose, truth: Pose, pose_to_present_s: float, display_latency_s: float,
                  head_speed_deg_s: float, prediction: bool, reprojection: bool) -> AngularError:
    """The error of each correction for one frame. A rotational reprojection shows the view of
    its target orientation, so a reprojected frame's error is its target's error."""
    errors = {
        (False, False): angle_deg(rendered_raw, truth),
        (True, False): angle_deg(rendered_predicted, truth),
        (False, True): angle_deg(latest_raw, truth),
        (True, True): angle_deg(latest_predicted, truth),
    }
    return AngularError(t, pose_to_present_s * 1000.0, (pose_to_present_s + display_latency_s) * 1000.0,
                        head_speed_deg_s, errors[(False, False)], errors[(True, False)], errors[(False, True)],
                        errors[(True, True)], errors[(prediction, reprojection)])


ERROR_FIELDS = ("uncorrected_deg", "predicted_deg", "reprojected_deg", "corrected_deg", "presented_deg")


def summarize(samples: Sequence[AngularError], *, moving_only: bool = False) -> dict[str, dict[str, float]]:
    """p50/p99/mean of every error field and of the latencies: ``{field: {"p50", "p99", "mean"}}``."""
    chosen = [s for s in samples if not moving_only or s.head_speed_deg_s >= MOVING_DEG_S]
    out: dict[str, dict[str, float]] = {}
    for name in (*ERROR_FIELDS, "pose_to_present_ms", "motion_to_photon_ms"):
        vals = [float(getattr(s, name)) for s in chosen]
        out[name] = {"p50": percentile(vals, 50), "p99": percentile(vals, 99),
                     "mean": float(np.mean(vals)) if vals else math.nan, "n": float(len(vals))}
    return out


def format_summary(samples: Sequence[AngularError]) -> str:
    lines = [f"{len(samples)} frames measured"]
    for label, moving in (("all frames", False), (f"head turning > {MOVING_DEG_S:g}°/s", True)):
        s = summarize(samples, moving_only=moving)
        lines.append(f"  {label} (n={int(s['presented_deg']['n'])}):")
        for name in ("motion_to_photon_ms", "pose_to_present_ms"):
            lines.append(f"    {name:<22} p50 {s[name]['p50']:7.1f}  p99 {s[name]['p99']:7.1f}")
        for name in ERROR_FIELDS:
            lines.append(f"    {name:<22} p50 {s[name]['p50']:7.2f}°  p99 {s[name]['p99']:7.2f}°")
    return "\n".join(lines)


@dataclass(frozen=True)
class _Sent:
    raw: Pose
    predicted: Pose


@dataclass(frozen=True)
class Presented:
    """A new frame to show, with the homographies that reproject it (None: show as rendered)."""

    frame: Frame
    homographies: tuple[Mat3, ...] | None
    error: AngularError


class HeadsetLoop:
    """One display tick at a time: sample → predict → send; newest frame → reproject → measure.

    Holds no thread and no window: :meth:`step` is called at the headset rate by the runner,
    which presents what it returns. ``clock`` is monotonic seconds.
    """

    def __init__(self, source: PoseSource, send: Callable[[PoseRequest], None], frames: FrameSource,
                 settings: HeadsetSettings | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self.send = send
        self.frames = frames
        self.settings = settings or HeadsetSettings()
        self.clock = clock
        self.predictor = PosePredictor(enabled=self.settings.prediction)
        self.latency = LatencyEstimator(initial_s=self.settings.initial_latency_s,
                                        display_latency_s=self.settings.display_latency)
        self.errors: list[AngularError] = []
        self.current: Presented | None = None
        """The newest presented frame (shown again, re-reprojected, until a newer one comes)."""
        self._sent: dict[tuple[View, ...], _Sent] = {}
        """What each request sent was made from, by its views (the newest MAX_TRACKED_POSES)."""
        self._start: float | None = None
        self.ticks = 0

    @property
    def elapsed(self) -> float:
        return 0.0 if self._start is None else self.clock() - self._start

    def step(self) -> Presented | None:
        """One tick; returns the new frame to present, or None when none arrived (the runner then
        shows :attr:`current` again, re-reprojected with :meth:`homographies_now`)."""
        now = self.clock()
        if self._start is None:
            self._start = now
        t = now - self._start
        self.ticks += 1
        raw = self.source.pose_at(t)
        self.predictor.add(t, raw)
        predicted = self.predictor.extrapolate(self.latency.horizon_s)
        render_pose = predicted if self.settings.prediction else raw
        request = stereo_request(render_pose, self.settings.headset, near=self.settings.near,
                                 far=self.settings.far)
        self._sent.pop(request.views, None)  # re-inserted as the newest
        self._sent[request.views] = _Sent(raw, predicted)
        if len(self._sent) > MAX_TRACKED_POSES:
            del self._sent[next(iter(self._sent))]
        self.send(request)

        frame = self.frames.take()
        if frame is None or frame.pose is None:
            return None
        sent = self._sent.get(frame.pose.views)
        if sent is None:
            return None  # a pose not ours (the connection's first) or too old to know
        pose_to_present = since_us(frame.pose.client_time_us) / 1000.0
        self.latency.add(pose_to_present)
        display = self.settings.display_latency
        latest_predicted = self.predictor.extrapolate(display)
        target = latest_predicted if self.settings.prediction else raw
        homographies = frame_homographies(frame.pose, target.orientation) if self.settings.reprojection else None
        truth = self.source.pose_at(t + display)
        speed = angle_deg(self.source.pose_at(t + display - 0.005), truth) / 0.005
        error = angular_error(
            t=t, rendered_raw=sent.raw, rendered_predicted=sent.predicted, latest_raw=raw,
            latest_predicted=latest_predicted, truth=truth, pose_to_present_s=pose_to_present,
            display_latency_s=display, head_speed_deg_s=speed, prediction=self.settings.prediction,
            reprojection=self.settings.reprojection)
        self.errors.append(error)
        self.current = Presented(frame, homographies, error)
        return self.current

    def homographies_now(self) -> tuple[Mat3, ...] | None:
        """Reprojection of :attr:`current` to the newest pose (for a tick without a new frame)."""
        if self.current is None or not self.settings.reprojection or self.current.frame.pose is None:
            return None
        latest = self.predictor.predict(self.settings.display_latency)
        return frame_homographies(self.current.frame.pose, latest.orientation)


@dataclass
class HeadsetResult(ViewerResult):
    """How a headset run ended, with the angular error of every presented frame."""

    errors: list[AngularError] = field(default_factory=list)
    ticks: int = 0
    last: Presented | None = None
    xr_stats: Any = None
    """OpenXR runs: the loop's :class:`~farview.client.headset.openxr.XrStats`."""
    xr_graphics: str = ""

    def summary(self) -> str:
        if self.xr_stats is not None:
            return f"{self.xr_stats.summary(self.xr_graphics)}\n{ViewerResult.summary(self)}"
        if not self.errors:  # (a run that ended before any frame: no table of nan)
            return f"{frames_presented(self.frames_presented)} in {self.ticks} ticks"
        return (f"{frames_presented(self.frames_presented)} in {self.ticks} ticks\n"
                + format_summary(self.errors))

    def presented_rgb(self) -> np.ndarray | None:
        """The last presented frame as shown (reprojected on the CPU when reprojection is on)."""
        if self.last is None:
            return None
        rgb = self.last.frame.to_rgb()
        return rgb if self.last.homographies is None else reproject_rgb(rgb, self.last.homographies)


def load_trace(spec: str) -> HeadTrace:
    """``headturn`` (the generated fast turn) or a CSV/JSON trace file."""
    if spec == "headturn":
        return headturn_trace()
    path = Path(spec)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"cannot read trace {spec!r}: {exc.strerror}; give 'headturn' or a CSV/JSON file") from None
    parse = parse_trace_json if path.suffix.lower() == ".json" else parse_trace_csv
    try:
        return parse(text, name=path.name)
    except ValueError as exc:  # (a NaN time or a zero quaternion did not name the file)
        message = str(exc)
        raise ValueError(message if message.startswith(path.name) else
                         f"{path.name}: {message}") from None


def run_headset(worker: StreamWorker, mailbox: LatestMailbox[Frame], source: PoseSource,
                settings: HeadsetSettings, *, duration: float | None, headless: bool = True,
                window_size: tuple[int, int] = (1280, 480), vsync: bool = False, title: str = "farview headset",
                screenshot: Path | None = None, stop_when: Callable[[], bool] | None = None) -> HeadsetResult:
    """Run the headset loop at the headset's rate until ``duration`` (or the window closes)."""
    result = HeadsetResult()
    loop = HeadsetLoop(source, worker.send_pose, mailbox, settings)
    interval = settings.headset.frame_interval_s
    presenter: Any = None
    if not headless:
        presenter = _WindowPresenter(window_size, vsync=vsync, title=title)
    worker.start()

    def step() -> bool:
        presented = loop.step()
        if presented is not None:
            result.frames_presented += 1
            result.last = presented
        return presenter is None or presenter.show(presented, loop)

    try:
        run_frame_loop(step, fixed_ticks(interval), duration=duration,
                       stop=lambda: worker.ended is not None or (stop_when is not None and stop_when()))
    finally:
        worker.stop()
        if presenter is not None:
            if screenshot is not None:
                presenter.screenshot(screenshot)
            presenter.close()
    result.errors = loop.errors
    result.ticks = loop.ticks
    result.pose_to_present_ms = [e.pose_to_present_ms for e in loop.errors]
    if headless and screenshot is not None:
        rgb = result.presented_rgb()
        if rgb is None:
            result.exit_code, result.message = 5, "no frame arrived; no screenshot written"
        else:
            from PIL import Image

            Image.fromarray(rgb, "RGB").save(screenshot)
    if worker.ended is not None:
        result.exit_code, result.message = worker.ended
    return result


class _WindowPresenter:
    """Side-by-side eyes in a GLFW window, reprojected by the YUV shader (main thread only)."""

    def __init__(self, size: tuple[int, int], *, vsync: bool, title: str) -> None:
        from farview.client.viewer.window import Window
        from farview.client.viewer.yuv_renderer import YuvRenderer

        self.window = Window(title=title, size=size, vsync=vsync)
        self.window.make_current()
        self.renderer = YuvRenderer()

    def show(self, presented: Presented | None, loop: HeadsetLoop) -> bool:
        from OpenGL import GL

        for event in self.window.poll():
            if type(event).__name__ == "CloseEvent":
                return False
        if self.window.should_close:
            return False
        if presented is not None:
            self.renderer.upload(presented.frame.y, presented.frame.u, presented.frame.v)
            self.renderer.set_reprojection(presented.homographies)
        elif loop.current is not None:
            self.renderer.set_reprojection(loop.homographies_now())
        else:
            return True
        GL.glClearColor(0.0, 0.0, 0.0, 1.0)
        GL.glClear(GL.GL_COLOR_BUFFER_BIT)
        self.renderer.draw(self.window.framebuffer_size())
        self.window.swap()
        return True

    def screenshot(self, path: Path) -> None:
        """Draw the last frame once more (same reprojection) and save the back buffer: reading
        the front buffer is undefined on many drivers (Xvfb gives black)."""
        from OpenGL import GL
        from PIL import Image

        self.window.make_current()
        GL.glClearColor(0.0, 0.0, 0.0, 1.0)
        GL.glClear(GL.GL_COLOR_BUFFER_BIT)
        self.renderer.draw(self.window.framebuffer_size())
        Image.fromarray(self.window.read_pixels("back"), "RGB").save(path)

    def close(self) -> None:
        self.renderer.close()
        self.window.close()


def run_openxr(worker: StreamWorker, mailbox: LatestMailbox[Frame], headset: Any, settings: HeadsetSettings, *,
               duration: float | None) -> HeadsetResult:
    """The OpenXR path on an opened :class:`~farview.client.headset.openxr.OpenXRHeadset`: the
    runtime paces the frames and predicts the views; each decoded frame is submitted as a
    projection layer with the poses it was rendered with, so the runtime reprojects it. Closes
    ``headset`` when done. "Presented" counts only frames submitted in ``xrEndFrame``."""
    from farview.client.headset.openxr import XrFrameLoop

    result = HeadsetResult()
    loop = XrFrameLoop(headset.runtime, worker.send_pose, mailbox.take, headset=headset.headset,
                       headless=headset.headless, prediction=settings.prediction, near=settings.near,
                       far=settings.far)
    # headless, xrWaitFrame returns at once: the headset's rate paces the loop instead; before the
    # session runs, the loop polls the runtime's events 100 times a second
    ticks = fixed_ticks(headset.headset.frame_interval_s)
    idle = fixed_ticks(0.01)

    def pace(start: float) -> None:
        if not loop.running:
            idle(start)
        elif headset.headless:
            ticks(start)

    worker.start()
    try:
        run_frame_loop(loop.step, pace, duration=duration, stop=lambda: worker.ended is not None)
        loop.stop()
        for _ in range(100):  # let the runtime take the session down: STOPPING → EXITING
            if not loop.step() or not loop.running:
                break
    except OpenXRUnavailableError as exc:
        result.exit_code, result.message = 5, str(exc)
    finally:
        worker.stop()
        loop.close()
        headset.close()
    result.xr_stats = loop.stats
    result.xr_graphics = headset.graphics_name
    result.frames_presented = loop.stats.new_frames_submitted
    result.ticks = loop.stats.xr_frames
    result.pose_to_present_ms = loop.pose_to_submit_ms
    if worker.ended is not None and not result.exit_code:
        result.exit_code, result.message = worker.ended
    return result


def headset_settings(args: Any) -> HeadsetSettings:
    """The loop's settings from ``farview view``'s arguments (``eye_size``: the simulated
    headset's eyes from ``--size``, set by ``check_headset_options``)."""
    settings = HeadsetSettings(prediction=args.prediction, reprojection=args.reprojection)
    if getattr(args, "eye_size", None):
        settings = dataclasses.replace(settings, headset=dataclasses.replace(
            settings.headset, eye_resolution=args.eye_size))
    return settings


def run_headset_cli(session: Any, args: argparse.Namespace, title: str,
                    session_check: Callable[[], Any] | None = None) -> HeadsetResult:
    """``farview view --headset sim|openxr``: the headset loop on ``session`` (a RenderingSession)."""
    from farview.client.connection import connect_session
    from farview.input.pose_sources import SimulatedHeadset

    settings = headset_settings(args)
    mailbox: LatestMailbox[Frame] = LatestMailbox()
    viewport = settings.headset.viewport
    source: PoseSource | None = None
    headset: Any = None
    if args.headset == "openxr":
        from farview.client.headset.openxr import OpenXRHeadset

        # fail before connecting when there is no pyopenxr, runtime or headset
        headset = OpenXRHeadset.open(graphics="headless" if args.headless else args.xr_graphics)
        viewport = headset.headset.viewport
        eye = headset.headset.eye_resolution
        shown = ("headless (XR_MND_headless): poses only, nothing is displayed" if headset.headless else
                 f"frames go to the runtime through {headset.graphics_name.upper()} ({headset.graphics.extension})"
                 if headset.graphics is not None else "")
        print(f"farview: OpenXR runtime {headset.runtime_name}, {eye[0]}x{eye[1]} per eye; {shown}",
              file=sys.stderr, flush=True)
    else:
        try:
            source = SimulatedHeadset(load_trace(args.trace), rate_hz=settings.headset.refresh_hz, loop=True)
        except ValueError as exc:
            return HeadsetResult(exit_code=2, message=str(exc))

    async def connect(frames: LatestMailbox[Frame]) -> Any:
        from farview.client.cli.view import apply_stream_options

        conn = await connect_session(session, viewport=viewport, mailbox=frames,
                                     relay_only=getattr(args, "relay_only", False))
        await apply_stream_options(conn, args)
        return conn

    worker = StreamWorker(connect, mailbox, session_check=session_check)
    if headset is not None:
        return run_openxr(worker, mailbox, headset, settings, duration=args.duration)
    assert source is not None
    return run_headset(worker, mailbox, source, settings, duration=args.duration, headless=args.headless,
                       window_size=args.size, vsync=args.vsync, title=title, screenshot=args.screenshot)
