"""The machinery of ``farview bench``: drive a trajectory through a live stream and record
every frame.

One :func:`run_stream` call measures one mode (``farview``: our encoder and receiver; or
``stock_aiortc``: aiortc's own encoder, jitter buffer and decoder thread) over one connection:

- a :class:`~farview.client.stream_thread.StreamThread` hosts an asyncio loop with the
  :class:`~farview.client.connection.RenderingConnection`; a task there sends the trajectory's
  pose ``fps`` times a second on an absolute schedule;
- **headless without a display rate** (the default headless run): a second task there is the
  consumer, ``await conn.next_frame()`` in a loop, as a user of the Python API consumes frames;
  the moment it returns a frame is that frame's presentation. The main thread only reports
  progress;
- **otherwise** the connection puts each decoded frame into the bench's
  :class:`~farview.streaming.mailbox.LatestMailbox` and the **main thread** is the display: it
  takes the newest frame (headless at ``display_rate``; window: at ``display_rate``, or by
  default at least 240 times a second and the moment a frame arrives, as the viewer does) and
  either "presents" it
  at once (headless) or uploads, draws and swaps it through the viewer's
  :class:`~client.viewer.loop.ViewerLoop` (window). The moment of presentation ends the frame's
  record.

Hand-offs: the mailbox (latest-only; a frame replaced before it was taken is recorded as
discarded, never queued); the send-time map (written by the stream thread, read by the main
thread; one dict, the GIL makes single reads and writes atomic).

Latency is measured on the client's clock only (``time.perf_counter``): pose sent → last packet
received (``pose_to_receive``), → decoded (``decode``), → taken by the display (``queue``), →
uploaded, drawn and swapped (``upload``, ``draw``). Host stages come from the frame metadata as
durations, including ``wait`` (the pose's time on the host before its render began: the render
thread was busy with an earlier frame, or the frame-rate cap held it). ``network`` is
``pose_to_receive`` minus the host stages: the pose's trip over the data channel, packetisation,
the video's trip over loopback and reassembly — everything between the two machines' stages.

With ``verify`` the host burns each frame's pose sequence into its pixels (:mod:`input.marker`);
every decoded frame's marker is read back and compared with the sequence its metadata names, and
latency is also computed from the pixels alone (the send time of the sequence read from them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import psutil

from farview.client.errors import ConnectionLostError, TimedOutError
from farview.client.frame_loop import Pacer, every, run_frame_loop, wake_on_frame
from farview.client.stream_thread import StreamThread
from farview.input import marker
from farview.input.headset import HeadsetDescription, stereo_request
from farview.input.launch import DEFAULT_MAX_BITRATE, DEFAULT_MIN_BITRATE
from farview.input.trajectory import Trajectory
from farview.streaming.frame import Frame
from farview.streaming.mailbox import LatestMailbox

log = logging.getLogger(__name__)

MODES = ("farview", "stock_aiortc")

Connector = Callable[[LatestMailbox[Frame] | None, bool], Awaitable[Any]]
"""``connect(mailbox, stock_receiver)`` → a connected
:class:`~farview.client.connection.RenderingConnection` (``mailbox=None``: its own, and frames
are taken with ``next_frame()``)."""
ProgressCallback = Callable[[str, float, int], None]
"""``progress(mode, fraction done 0..1, frames presented so far)``, called on the main thread."""


@dataclass(frozen=True, kw_only=True)
class StreamRunConfig:
    """What one measured stream run does."""

    width: int
    height: int
    fps: int
    """Poses sent per second, and the host's frame-rate cap."""
    duration_s: float
    """Measured seconds (after the warm-up)."""
    warmup_s: float
    """Seconds streamed before measuring (llvmpipe's first ~140 frames are ~2× slower)."""
    trajectory: Trajectory
    headless: bool = True
    display_rate: float | None = None
    """How often the display takes the newest frame. ``None`` (default): a window polls at
    240 Hz (the viewer's cap without vsync); headless takes each frame the moment it is
    decoded, as a program awaiting ``next_frame()`` would (there is no refresh to wait for)."""
    verify: bool = False
    max_bitrate: int = DEFAULT_MAX_BITRATE
    min_bitrate: int = DEFAULT_MIN_BITRATE
    congestion_control: bool = True
    """Off: farview's encoder stays at ``max_bitrate`` whatever the network does."""
    intra_refresh: bool = False
    """farview's encoder heals losses with a periodic intra-refresh sweep, not keyframes."""
    stereo: bool = False
    """Send two views (a simulated headset, each eye ``width/2 × height``), rendered side by side."""

    def __post_init__(self) -> None:
        if self.width % 2 or self.height % 2 or self.width < 16 or self.height < 16:
            raise ValueError(f"resolution must be even and at least 16x16, got {self.width}x{self.height}")
        if not 1 <= self.fps <= 240:
            raise ValueError(f"fps must be 1..240, got {self.fps}")
        if not self.duration_s > 0 or self.warmup_s < 0:
            raise ValueError("duration must be positive and warm-up non-negative")
        if self.display_rate is not None and not self.display_rate > 0:
            raise ValueError(f"display rate must be positive, got {self.display_rate}")

    @property
    def event_driven(self) -> bool:
        """Headless without a display rate: frames are taken as they are decoded."""
        return self.headless and self.display_rate is None


@dataclass(frozen=True)
class FrameRecord:
    """One decoded frame: where it came from and where its time went (ms, client clock)."""

    t: float
    """Seconds from the start of measuring to the frame's arrival."""
    pose_sequence: int | None
    """The pose sequence the metadata says the frame was rendered with."""
    presented: bool
    """False when a newer frame replaced it before the display took it (discarded)."""
    keyframe: bool
    size_bytes: int
    wait_ms: float | None
    """The pose's wait on the host before its render began (render thread busy, or the cap)."""
    render_ms: float | None
    readback_ms: float | None
    convert_ms: float | None
    encode_ms: float | None
    pose_to_receive_ms: float | None
    network_ms: float | None
    """``pose_to_receive`` minus the host stages (see the module docstring)."""
    decode_ms: float | None
    queue_ms: float | None
    """Decoded → taken by the display."""
    upload_ms: float | None
    """Plane upload to textures (window only)."""
    draw_ms: float | None
    """Draw and swap (window only)."""
    receive_to_present_ms: float | None
    pose_to_present_ms: float | None
    marker_sequence: int | None = None
    """The sequence read from the pixels (``verify`` only; None when unreadable or off)."""
    pixel_pose_to_present_ms: float | None = None
    """Pose send time of ``marker_sequence`` → present: latency from the pixels alone."""
    target_bitrate: int | None = None
    """The host encoder's target bit rate for this frame (farview only; congestion control)."""


@dataclass
class StreamRunResult:
    """Everything one mode's run measured."""

    mode: str
    config: StreamRunConfig
    records: list[FrameRecord]
    measured_s: float
    poses_sent: int
    """Poses sent during the measured window."""
    frames_reused: int
    """Display iterations that showed the previous frame again (no new frame to take)."""
    frames_skipped: int
    """Frames lost before decode (the receiver's count, since connect)."""
    frames_discarded_unmatched: int
    """Decoded frames dropped because their metadata never came."""
    cpu_percent: dict[str, float | None]
    """psutil's per-process CPU, percent of one core, over the measured window."""
    rtt_ms: float | None
    marker_mismatches: int = 0
    marker_unreadable: int = 0
    start_perf: float | None = None
    """``time.perf_counter()`` when measuring began (the same clock on every process of this
    machine), so a caller can place its own events on the records' ``t`` axis."""
    received_bytes: list[tuple[float, int]] = field(default_factory=list)
    """(seconds from the start of measuring, bytes the connection's transport received so far:
    video, retransmissions and data channels), every 0.25 s: the bit rate over time, measured
    the same way for both modes."""
    encoder_path: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class _Display:
    """Presents frames: headless (taken = presented) or through the viewer's window loop."""

    def __init__(self, width: int, height: int, headless: bool) -> None:
        self.headless = headless
        self._taken: tuple[Frame, float] | None = None
        self._source: LatestMailbox[Frame] | None = None
        self.window: Any = None
        self.loop: Any = None
        if not headless:
            from farview.client.viewer.loop import ViewerLoop
            from farview.client.viewer.window import Window

            self.window = Window(title="farview bench", size=(width, height), vsync=False)
            self.loop = ViewerLoop(self.window, self, None, show_stats=False, max_fps=None)

    def take(self) -> Frame | None:  # the ViewerLoop's frame source
        frame = self._source.take() if self._source is not None else None
        if frame is not None:
            self._taken = (frame, time.perf_counter())
        return frame

    def present(self, source: LatestMailbox[Frame]
                ) -> tuple[Frame, float, float, float | None, float | None] | None:
        """One display iteration: (frame, taken_at, presented_at, upload_ms, draw_ms) or None."""
        self._source = source
        self._taken = None
        if self.headless:
            frame = source.take()
            if frame is None:
                return None
            now = time.perf_counter()
            return frame, now, now, None, None
        presented_before = self.loop.frames_presented
        if not self.loop.step():
            raise KeyboardInterrupt  # the window was closed or Esc pressed
        if self._taken is None or self.loop.frames_presented == presented_before:
            return None
        now = time.perf_counter()
        frame, taken_at = self._taken
        upload_ms = float(self.loop.renderer.upload_ms)
        return frame, taken_at, now, upload_ms, max(0.0, (now - taken_at) * 1000 - upload_ms)

    def close(self) -> None:
        if self.window is not None:
            self.loop.close()
            self.window.close()


def _ms(a: float, b: float) -> float:
    return (b - a) * 1000.0


def _record(frame: Frame, start: float, *, taken_at: float | None,
            presented_at: float | None, upload_ms: float | None, draw_ms: float | None,
            marker_sequence: int | None, sent_at: dict[int, float]) -> FrameRecord:
    decoded_at = frame.received_at + (frame.receive_to_decoded_ms or 0.0) / 1000
    meta = frame.metadata
    host = None
    stages: tuple[float | None, ...] = (None, None, None, None, None)
    if meta is not None:
        stages = (meta.render_us / 1000, meta.readback_us / 1000, meta.convert_us / 1000,
                  meta.encode_us / 1000, meta.wait_us / 1000)
        host = sum(s for s in stages if s is not None)
    p2r = frame.pose_to_receive_ms
    decode = frame.receive_to_decoded_ms
    r2p = _ms(frame.received_at, presented_at) if presented_at is not None else None
    p2p = p2r + r2p if (p2r is not None and r2p is not None) else None
    pixel = None
    if marker_sequence is not None and presented_at is not None and marker_sequence in sent_at:
        pixel = _ms(sent_at[marker_sequence], presented_at)
    return FrameRecord(
        t=frame.received_at - start,
        pose_sequence=meta.pose_sequence if meta is not None else None,
        presented=presented_at is not None,
        keyframe=bool(meta.keyframe) if meta is not None else False,
        size_bytes=meta.size_bytes if meta is not None else 0,
        wait_ms=stages[4], render_ms=stages[0], readback_ms=stages[1], convert_ms=stages[2],
        encode_ms=stages[3],
        pose_to_receive_ms=p2r,
        network_ms=(p2r - host) if (p2r is not None and host is not None) else None,
        decode_ms=decode,
        queue_ms=_ms(decoded_at, taken_at) if taken_at is not None else None,
        upload_ms=upload_ms, draw_ms=draw_ms,
        receive_to_present_ms=r2p, pose_to_present_ms=p2p,
        marker_sequence=marker_sequence, pixel_pose_to_present_ms=pixel,
        target_bitrate=(meta.target_bitrate or None) if meta is not None else None,
    )


def run_stream(connect: Connector, cfg: StreamRunConfig, *, stock: bool, host_pid: int | None,
               display: _Display | None = None, progress: ProgressCallback | None = None) -> StreamRunResult:
    """Connect, configure, warm up, measure ``cfg.duration_s`` seconds, disconnect."""
    mode = MODES[1] if stock else MODES[0]
    own_display = display is None
    if display is None:
        display = _Display(cfg.width, cfg.height, cfg.headless)
    sent_at: dict[int, float] = {}
    state: dict[str, Any] = {"start": None, "unreadable": 0, "mismatches": 0}
    records: list[FrameRecord] = []
    records_lock = threading.Lock()
    stop_poses = threading.Event()

    def check_marker(frame: Frame) -> int | None:
        if not cfg.verify:
            return None
        value = marker.read(frame.y)
        if value is None:
            state["unreadable"] += 1
        elif frame.metadata is None or value != frame.metadata.pose_sequence:
            state["mismatches"] += 1
            log.warning("frame pixels show pose %s but its metadata says %s", value,
                        frame.metadata.pose_sequence if frame.metadata else None)
        return value

    def on_discard(frame: Frame) -> None:  # stream thread
        start = state["start"]
        if start is None or frame.received_at < start:
            return
        rec = _record(frame, start, taken_at=None, presented_at=None, upload_ms=None,
                      draw_ms=None, marker_sequence=check_marker(frame), sent_at=sent_at)
        with records_lock:
            records.append(rec)

    mailbox: LatestMailbox[Frame] = LatestMailbox(on_discard)
    worker = StreamThread("bench-stream")
    conn: Any = None
    # headless and event-driven: an asyncio task takes frames with next_frame(), no thread hop
    consume_on_loop = cfg.event_driven

    async def open_connection() -> Any:
        c = await connect(None if consume_on_loop else mailbox, stock)
        await c.request("configure_stream", max_bitrate=cfg.max_bitrate, min_bitrate=cfg.min_bitrate,
                        congestion_control=cfg.congestion_control, intra_refresh=cfg.intra_refresh and not stock,
                        max_fps=cfg.fps, stock_aiortc=stock,
                        verify_marker=cfg.verify)
        return c

    headset = HeadsetDescription(eye_resolution=(cfg.width // 2, cfg.height)) if cfg.stereo else None

    received: list[tuple[float, int]] = []

    async def sample_bytes() -> None:
        """The video bytes received so far, from aiortc's inbound RTP statistics."""
        while not stop_poses.is_set() and conn.is_connected:
            await asyncio.sleep(0.25)
            start = state["start"]
            if start is None:
                continue
            with contextlib.suppress(Exception):
                report = await conn.pc.getStats()
                got = sum(int(getattr(s, "bytesReceived", 0) or 0) for s in report.values()
                          if getattr(s, "type", "") == "transport")
                received.append((time.perf_counter() - start, got))

    async def send_poses(t0: float) -> int:
        n = 0
        interval = 1.0 / cfg.fps
        while not stop_poses.is_set() and conn.is_connected:
            pose = cfg.trajectory.pose_at(n * interval)
            msg = conn.send_pose(pose if headset is None else stereo_request(pose, headset))
            sent_at[msg.sequence] = msg.client_time_us / 1e6  # perf_counter seconds
            n += 1
            await asyncio.sleep(max(0.0, t0 + n * interval - time.perf_counter()))
        return n

    def record_presented(frame: Frame, taken_at: float, presented_at: float,
                         upload_ms: float | None, draw_ms: float | None) -> None:
        start = state["start"]
        if start is not None and frame.received_at >= start:
            rec = _record(frame, start, taken_at=taken_at, presented_at=presented_at,
                          upload_ms=upload_ms, draw_ms=draw_ms, marker_sequence=check_marker(frame),
                          sent_at=sent_at)
            with records_lock:
                records.append(rec)

    async def consume() -> None:
        """The headless next_frame() consumer (see the module docstring)."""
        while not stop_poses.is_set() and conn.is_connected:
            try:
                frame = await conn.next_frame(timeout=0.5)
            except (TimedOutError, ConnectionLostError):
                continue  # none within 0.5 s (a still scene), or closed: the loop condition decides
            now = time.perf_counter()
            record_presented(frame, now, now, None, None)

    procs: dict[str, psutil.Process | None] = {"client": psutil.Process()}
    try:
        procs["host"] = psutil.Process(host_pid) if host_pid else None
    except psutil.Error:
        procs["host"] = None
    reused = 0
    try:
        conn = worker.call(open_connection(), timeout=30)
        t0 = time.perf_counter()
        poses_future = worker.submit(send_poses(t0))
        sampler = worker.submit(sample_bytes())
        consumer = (worker.submit(consume()) if consume_on_loop
                    else None)
        measure_at, end_at = t0 + cfg.warmup_s, t0 + cfg.warmup_s + cfg.duration_s
        period = 1.0 / (cfg.display_rate or 240.0)
        shown_any = False
        next_progress = 0.0

        def step() -> bool:
            nonlocal shown_any, next_progress, reused
            now = time.perf_counter()
            if state["start"] is None and now >= measure_at:
                state["start"] = now
                for p in procs.values():
                    if p is not None:
                        with contextlib.suppress(psutil.Error):
                            p.cpu_percent()
            if not conn.is_connected:
                raise ConnectionError(f"the stream ended during the {mode} run: {conn.close_reason}")
            if progress is not None and now >= next_progress:
                next_progress = now + 0.25
                progress(mode, min(1.0, (now - t0) / (end_at - t0)), len(records))
            if consumer is not None:  # the loop's task presents; this thread only reports
                return True
            presented = display.present(mailbox)  # KeyboardInterrupt when the window closes
            if presented is None:
                if shown_any and state["start"] is not None:
                    reused += 1  # a display refresh that showed the previous frame again
            else:
                shown_any = True
                record_presented(*presented)
            return True

        if consumer is not None:
            pace: Pacer = every(0.05)
        elif cfg.display_rate:
            pace = every(period)  # a display at that rate: frames wait for its next refresh
        else:  # as the viewer: a frame is shown the moment it arrives
            pace = wake_on_frame(mailbox, lambda start: start + period)
        run_frame_loop(step, pace, duration=end_at - time.perf_counter(), quiet_interrupt=False)
        cpu: dict[str, float | None] = {}
        for name, p in procs.items():
            try:
                cpu[name] = p.cpu_percent() if p is not None else None
            except psutil.Error:
                cpu[name] = None
        measured = time.perf_counter() - (state["start"] or t0)
        stop_poses.set()
        poses_future.result(5)
        sampler.result(5)
        if consumer is not None:
            consumer.result(5)
        poses_sent = sum(1 for at in list(sent_at.values()) if at >= (state["start"] or t0))
        stats = conn.statistics()
        result = StreamRunResult(
            mode=mode, config=cfg, records=sorted(records, key=lambda r: r.t), measured_s=measured,
            poses_sent=poses_sent, frames_reused=reused, frames_skipped=int(stats.video_frames_skipped),
            frames_discarded_unmatched=int(conn.frames_unmatched), cpu_percent=cpu,
            rtt_ms=conn.rtt_ms, marker_mismatches=state["mismatches"], marker_unreadable=state["unreadable"],
            start_perf=state["start"], received_bytes=list(received))
        if not stock:  # what the host did with the poses (since connect): where frames went
            with contextlib.suppress(Exception):
                host = worker.call(conn.request("get_stats"), timeout=5)
                result.extra["host_poses"] = {k: host[k] for k in (
                    "poses_received", "poses_dropped", "poses_stale", "poses_repeated",
                    "poses_unchanged", "frames_rendered") if k in host}
    finally:
        stop_poses.set()
        if conn is not None:
            with contextlib.suppress(Exception):
                worker.call(conn.close(), timeout=10)
        worker.stop()
        if own_display:
            display.close()
    return result


__all__ = ["MODES", "FrameRecord", "StreamRunConfig", "StreamRunResult", "run_stream"]
