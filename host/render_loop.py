"""The render thread: render on pose, encode, hand packets to the event loop.

Concurrency: one dedicated thread owns the EGL context and the renderer (GL contexts are bound
to a thread; rendering on llvmpipe takes milliseconds and must not block the asyncio loop that
runs aiortc). Encoding happens after the render on the same thread, or (``encode_thread``) on
a second thread that owns the encoder, so that frame N encodes while frame N + 1 renders and a
pose that arrives during an encode starts rendering at once. That pays when render and encode
run on different hardware (a GPU and NVENC): ``"auto"`` overlaps them on a GPU only. On a
software rasteriser both need the same CPU cores, and overlapping made each stage slower: at
1080p60 on this 2-core VM pose → present p50 was 54–57 ms overlapped against 44–46 ms in turn
(3 of 3 A/B pairs); at 720p60 the difference was within the noise (better in 4 of 7 pairs).
The hand-off holds one frame: when the encoder is a frame behind, the render thread waits for
it. Each frame is touched by one thread at a time: ``read_frame`` returns a new frame, and the
``--verify`` marker is burnt in just before encoding. The loop talks to the render thread
through :class:`RenderLoop`'s thread-safe methods only:

- :meth:`submit_pose` — a latest-only slot: a newer pose replaces an older unrendered one
  (counted in ``poses_dropped``); the thread wakes at once. A pose whose sequence is older than
  the last one taken (the pose channel is unordered: a late packet) is ignored (``poses_stale``),
  and so is a second copy of the last one (clients send each pose twice, so that one lost
  packet does not cost a frame; ``poses_repeated``).
- :meth:`mark_dirty` — the scene changed: render again with the last pose.
- :meth:`start_stream` / :meth:`stop_stream` — a connection begins (new encoder, pts from 0,
  first frame a keyframe) or ends.
- :meth:`call` — run a function on the GL thread (for GL work such as freeing buffers).

Rendering is capped at ``max_fps`` by :class:`FrameRateCap` (a token bucket, not a fixed
interval since the last frame: a fixed interval phase-locks to a pose stream of the same rate
and then holds every pose for a constant part of a frame — measured 7 ms p50 at 60/60 Hz). A
pose that must wait is replaced by a newer one meanwhile; only the newest is rendered.
A still scene renders nothing: for a pose identical to
the one the last frame showed (same views, viewport, clip planes and scene version) the last
picture is encoded again (a tiny P-frame) so that every pose still gets a frame. A frame that
refines a coarse picture (levels of detail) at rest is given up between parts when a pose for
another view comes meanwhile (``refinements_abandoned``): that pose is drawn next.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import av

from farview.input import marker
from farview.input.camera import home_view
from farview.input.frame_meta import FrameMetadata
from farview.input.launch import DEFAULT_MAX_BITRATE, DEFAULT_MIN_BITRATE, check_bitrates
from farview.input.pose import MAX_VIEWPORT, Fov, Pose, PoseMessage, View
from farview.streaming.congestion import BitrateLimits, frame_rate_for, resolution_scale_for, scaled_size
from farview.streaming.encoder import EncoderSettings, H264Encoder
from farview.streaming.planes import yuv420_planes

log = logging.getLogger(__name__)

MIN_VIEWPORT = 16


class RendererLike(Protocol):
    def resize(self, width: int, height: int) -> None: ...
    def render(self, scene: Any, views: Any, near: float, far: float, *,
               moving: bool = False, abort: Callable[[], bool] | None = None) -> None: ...
    def read_frame(self) -> av.VideoFrame: ...
    @property
    def last_timings(self) -> Any: ...


FrameCallback = Callable[[list[Any], FrameMetadata], None]


@dataclass(frozen=True)
class StreamSettings:
    """Per-connection stream configuration (the ``configure_stream`` control method)."""

    max_bitrate: int = DEFAULT_MAX_BITRATE
    """The encoder's target to start with and the most congestion control raises it to (bit/s)."""
    min_bitrate: int = DEFAULT_MIN_BITRATE
    """The least congestion control lowers it to (bit/s)."""
    congestion_control: bool = True
    """Follow the receiver's feedback (``streaming/congestion.py``); off: a fixed ``max_bitrate``."""
    max_fps: int = 60
    prefer_hardware: bool = True
    intra_refresh: bool = False
    """Periodic intra refresh instead of keyframes on request (``EncoderSettings.intra_refresh``):
    a lost frame heals within half a second without a large frame; requests are counted, not
    answered."""
    stock_aiortc: bool = False
    """Baseline for benchmarks: hand raw frames to aiortc's own encoder instead of ours."""
    verify_marker: bool = False
    """Burn each frame's pose sequence into its pixels (:mod:`input.marker`) for ``bench --verify``."""

    def __post_init__(self) -> None:
        check_bitrates(self.min_bitrate, self.max_bitrate)
        if not 1 <= self.max_fps <= 240:
            raise ValueError(f"max_fps must be 1..240, got {self.max_fps}")

    @property
    def limits(self) -> BitrateLimits:
        return BitrateLimits(min_bitrate=self.min_bitrate, max_bitrate=self.max_bitrate)


KEYFRAME_MIN_INTERVAL_S = 0.2
"""Keyframes asked for (PLI, FIR, ``request_keyframe``, a pose's keyframe flag) come at most this
often; requests meanwhile are merged into one keyframe when the interval is over. A keyframe is
several P-frames' worth of bits: on a lossy link a storm of them only adds loss. While a keyframe
is held back no frame is sent at all: the client that asked waits for a keyframe and discards
P-frames, which would only fill the queue in front of it."""
SCALE_HOLD_S = 1.0
"""A stream's resolution changes at most this often (:meth:`_Stream.render_size`)."""
KEYFRAME_DRAIN_MAX_S = 0.25
"""A keyframe asked for while the client reports a queue on the network
(:meth:`RenderLoop.set_network_queue`) waits that long first, at most this long, with nothing
sent: the queue drains, and the keyframe is not lost at its full tail (on a link capped to
3 Mbit/s, keyframes sent into the full queue were lost twice in a row, a 570 ms freeze)."""
KEYFRAME_DUPLICATE_S = 0.05
"""A request this soon after a keyframe was begun is answered by it: the client sends one ask
several ways (a PLI, and the keyframe flag on its next pose, sent twice), so that one gets
through a lossy link, and the copies arrive together."""
NETWORK_QUEUE_FRESH_S = 0.25
"""A reported network queue older than this is not used to hold a keyframe back."""


@dataclass(frozen=True)
class _NoTimings:
    render_ms: float = 0.0
    convert_ms: float = 0.0
    readback_ms: float = 0.0


_NO_TIMINGS = _NoTimings()


class FrameRateCap:
    """At most ``max_fps`` frames a second on average, without adding latency to a pose stream
    at or below that rate.

    A token bucket: one token per frame, refilled at ``max_fps``, holding at most ``burst``, so
    a pose that comes early through jitter is still rendered at once; frames also keep half an
    interval apart. Only a stream faster than ``max_fps`` for longer than the burst waits.
    Times are ``time.perf_counter()`` seconds. Not thread-safe (the render thread owns it).
    """

    def __init__(self, max_fps: float, burst: float = 3.0) -> None:
        if max_fps <= 0 or burst < 1:
            raise ValueError(f"need max_fps > 0 and burst >= 1, got {max_fps}, {burst}")
        self.max_fps = float(max_fps)
        self.burst = float(burst)
        self._tokens = self.burst
        self._at: float | None = None
        self._last_start: float | None = None

    def _level(self, now: float) -> float:
        if self._at is None:
            return self._tokens
        return min(self.burst, self._tokens + (now - self._at) * self.max_fps)

    def delay(self, now: float) -> float:
        """Seconds to wait before a frame may start at ``now`` (0: start now)."""
        need = (1.0 - self._level(now)) / self.max_fps
        spacing = 0.0 if self._last_start is None else self._last_start + 0.5 / self.max_fps - now
        return max(0.0, need, spacing)

    def charge(self, frames: float, now: float) -> None:
        """The frame just started takes ``frames`` more frames' time on the link: the next one
        starts no sooner than ``1 + frames`` frame intervals after it (the burst is spent
        first, and the level goes below zero)."""
        self._tokens = min(self._level(now), 0.0) - frames
        self._at = now

    def started(self, now: float) -> None:
        """A frame started at ``now``: it takes a token."""
        self._tokens = self._level(now) - 1.0
        self._at = now
        self._last_start = now


def clamp_viewport(width: int, height: int) -> tuple[int, int]:
    """Clamp to MIN..MAX_VIEWPORT and round down to even (H.264 4:2:0 needs even sizes)."""
    w = max(MIN_VIEWPORT, min(MAX_VIEWPORT, int(width))) & ~1
    h = max(MIN_VIEWPORT, min(MAX_VIEWPORT, int(height))) & ~1
    return w, h


def default_pose_message(width: int = 1280, height: int = 720) -> PoseMessage:
    """What the host renders before the client's first pose: a view of the origin from +z."""
    return PoseMessage(0, 0, (View(Pose((0.0, 0.25, 1.6)), Fov.symmetric(60.0, width / height)),),
                       (width, height))


PASSIVE_FPS = 30
"""Frames a second for a client that sends no poses (a standard WHEP player): the home view,
rendered again only when the scene changes and otherwise encoded again (a tiny P-frame), so a
player sees a live stream at little cost."""
PASSIVE_AFTER_S = 1.0
"""How long after its connection is up a client without a pose channel begins to get the home
view (the pose channel of a farview client opens well within it)."""
HOME_VIEWPORT = (1280, 720)

REFINE_AFTER_S = 0.1
"""A picture drawn coarser while the camera moved (levels of detail) is drawn again in full
this long after it when no pose came meanwhile: a client that sends one pose and waits got
the coarse picture only (the next unchanged pose refined it, and none came)."""


def home_pose_message(scene: Any, viewport: tuple[int, int] = HOME_VIEWPORT) -> PoseMessage:
    """The session's home view: everything in ``scene`` framed from the front left, a little
    above (what the viewers start with); the sample model's framing for an empty scene."""
    boxes = [b for b in (scene.world_bounds(r) for r in scene.roots) if b is not None] if scene is not None else []
    lo = tuple(min(b.min[i] for b in boxes) for i in range(3)) if boxes else None
    hi = tuple(max(b.max[i] for b in boxes) for i in range(3)) if boxes else None
    pose, fov = home_view(lo, hi, viewport[0] / viewport[1])  # type: ignore[arg-type]
    return PoseMessage(0, 0, (View(pose, fov),), viewport)


@dataclass
class _Stream:
    on_frame: FrameCallback
    settings: StreamSettings
    started: float | None = None
    """perf_counter() of the stream's first frame, which gets pts 0 (the receiver rebases to it)."""
    encoder: H264Encoder | None = None
    last_pts: int = -1
    frames: int = 0
    reconfigured: bool = False
    last_frame: av.VideoFrame | None = None
    """The last rendered picture (I420), encoded again for an unchanged pose."""
    last_view: tuple[Any, ...] | None = None
    """What the last frame showed (views, viewport, clip planes, scene version)."""
    target_bitrate: int | None = None
    """Congestion control's target (None: ``settings.max_bitrate``)."""
    keyframe_at: float | None = None
    """perf_counter() of the last keyframe."""
    posed: bool = False
    """The client has sent a pose or opened the pose channel. Until then it gets the home view
    at :data:`PASSIVE_FPS`."""
    connected_at: float | None = None
    """perf_counter() when the peer connection came up (None: not yet)."""
    frame_at: float | None = None
    """perf_counter() of the last frame."""
    home: tuple[int, PoseMessage] | None = None
    """The home view and the scene version it was framed for."""
    scale: float = 1.0
    """The fraction of the viewport's sides rendered and sent (under 1 only where the bit rate
    is too low for the viewport even at the lowest frame rate)."""
    scale_at: float = -1e9
    """perf_counter() of the last change of ``scale``."""
    owed_frames: float = 0.0
    """Frames' time the link still needs for a frame bigger than the encoder's VBV buffer of
    two frames' budget (a keyframe given room for a picture at a low bit rate,
    ``streaming.encoder.KEYFRAME_MIN_BITS_PER_PIXEL``): the frame-rate cap waits that long
    more, so the frames after it are not starved into copies of it."""

    def render_size(self, viewport: tuple[int, int], now: float) -> tuple[int, int]:
        """The size to render and encode for ``viewport``: smaller where the bit rate cannot
        keep even :data:`~farview.streaming.congestion.MIN_FPS` frames a second of it a picture
        (:func:`~farview.streaming.congestion.resolution_scale_for`; changed at most once per
        :data:`SCALE_HOLD_S`, as each change costs a keyframe)."""
        if not self.settings.congestion_control or self.settings.stock_aiortc:
            return viewport
        scale = resolution_scale_for(self.bitrate, viewport[0], viewport[1], self.scale)
        if scale != self.scale and now - self.scale_at >= SCALE_HOLD_S:
            log.info("stream resolution %.0f %% of %dx%d (%.2f Mbit/s)", scale * 100, viewport[0],
                     viewport[1], self.bitrate / 1e6)
            self.scale, self.scale_at = scale, now
        return scaled_size(viewport[0], viewport[1], self.scale)

    def frame_rate(self, size: tuple[int, int] | None) -> int:
        """The frame rate for the current bit rate: ``max_fps``, lower where each frame would
        get too few bits per pixel (:func:`~farview.streaming.congestion.frame_rate_for`)."""
        if size is None or not self.settings.congestion_control:
            return self.settings.max_fps
        return frame_rate_for(self.bitrate, size[0], size[1], self.settings.max_fps)

    @property
    def bitrate(self) -> int:
        if self.target_bitrate is None or not self.settings.congestion_control:
            return self.settings.max_bitrate
        return max(self.settings.min_bitrate, min(self.settings.max_bitrate, self.target_bitrate))


@dataclass
class _EncodeJob:
    """A rendered picture on its way to the encode thread."""

    stream: _Stream
    frame: av.VideoFrame
    msg: PoseMessage
    size: tuple[int, int]
    keyframe: bool
    timings: Any
    wait_us: int
    """How long the pose waited for the render thread."""
    rendered_at: float
    """perf_counter() when the picture was ready: the encode thread adds the time it waited
    from here to its ``wait_us`` (both are the host's queueing, not the network's)."""


ENCODE_THREAD_MODES = ("auto", "on", "off")


class RenderLoop:
    """Owns the GL thread and the encode thread. ``make_renderer()`` is called on the GL
    thread. ``encode_thread``: ``"on"`` encodes on its own thread (overlapping the next
    render), ``"off"`` after the render on the GL thread, ``"auto"`` on its own thread when
    the renderer is a GPU (module docstring). The choice is ``renderer_info["encode"]``."""

    def __init__(self, scene: Any, scene_lock: threading.RLock,
                 make_renderer: Callable[[], RendererLike], encode_thread: str = "auto") -> None:
        if encode_thread not in ENCODE_THREAD_MODES:
            raise ValueError(f"encode_thread must be one of {', '.join(ENCODE_THREAD_MODES)}, "
                             f"got {encode_thread!r}")
        self._encode_thread_mode = encode_thread
        self._overlap = False
        self._scene = scene
        self._scene_lock = scene_lock
        self._make_renderer = make_renderer
        self._cond = threading.Condition()
        self._pending: PoseMessage | None = None
        self._trigger_at: float | None = None
        self._refine_at: float | None = None
        """When the last coarse picture is drawn again in full (:data:`REFINE_AFTER_S`)."""
        """When the work now waiting arrived (the pending pose's arrival, else the first
        ``mark_dirty``): the start of the frame's ``wait_us``."""
        self._last_pose: PoseMessage = default_pose_message()
        self._dirty = False
        self._keyframe = False
        """A keyframe was asked for (held back until :data:`KEYFRAME_MIN_INTERVAL_S` is over)."""
        self._keyframe_begun = -1e9
        """perf_counter() when the last keyframe was taken up for rendering."""
        self._keyframe_now = False
        """The next frame is a keyframe whatever the interval (a new stream or encoder)."""
        self._keyframe_not_before = 0.0
        """perf_counter() before which the keyframe asked for waits for the network's queue."""
        self._network_queue: tuple[float, float] = (0.0, -math.inf)
        """(seconds, perf_counter()) of the client's last reported network queue."""
        self._stream: _Stream | None = None
        self._calls: list[tuple[Callable[[], Any], concurrent.futures.Future[Any]]] = []
        self._stop = False
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="render", daemon=True)
        self._jobs: queue.Queue[_EncodeJob | None] = queue.Queue(maxsize=1)
        self._encode_thread = threading.Thread(target=self._encode_run, name="encode",
                                               daemon=True)
        self.renderer_info: dict[str, str] = {}
        self.poses_received = 0
        self.poses_dropped = 0
        self.poses_stale = 0
        self.poses_repeated = 0
        self._last_taken: tuple[int, int] | None = None
        """(sequence, client time) of the last pose taken in this stream."""
        self.frames_rendered = 0
        self.refinements_abandoned = 0
        """Frames refining a coarse picture at rest given up for a pose that came meanwhile."""
        self.poses_unchanged = 0
        """Poses that asked for exactly what the last frame showed: not rendered again."""
        self.encoder_path = ""
        self._size: tuple[int, int] | None = None
        """The size of the last frame rendered."""
        self.keyframes_sent = 0
        self.frames_over_budget = 0
        """Frames over two frames' budget (keyframes given room at a low bit rate): the frames
        after each waited for the link (``_Stream.owed_frames``)."""
        self.keyframe_requests = 0
        self.keyframe_requests_merged = 0
        """Requests that came within :data:`KEYFRAME_MIN_INTERVAL_S` of a keyframe and joined
        the next one."""
        self.keyframe_requests_refreshed = 0
        """Requests left to the intra-refresh sweep (``StreamSettings.intra_refresh``)."""

    # -- called from the event loop -------------------------------------------------------
    def start(self, timeout: float = 60.0) -> None:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("render thread did not start in time")
        if self._error is not None:
            raise RuntimeError(f"renderer failed to start: {self._error}") from self._error

    def submit_pose(self, msg: PoseMessage) -> None:
        with self._cond:
            self.poses_received += 1
            last = self._last_taken
            if last is not None:
                if (msg.sequence, msg.client_time_us) == last:
                    self.poses_repeated += 1
                    return
                if (msg.sequence - last[0]) % 2**32 >= 2**31:  # serial number arithmetic
                    self.poses_stale += 1
                    return
            self._last_taken = (msg.sequence, msg.client_time_us)
            if self._stream is not None:
                self._stream.posed = True
            if self._pending is not None:
                self.poses_dropped += 1
            self._pending = msg
            self._trigger_at = time.perf_counter()
            if msg.keyframe:
                self._ask_keyframe()
            self._cond.notify()

    def _triggered(self) -> None:
        if self._trigger_at is None:
            self._trigger_at = time.perf_counter()

    def mark_dirty(self) -> None:
        with self._cond:
            self._triggered()
            self._dirty = True
            self._cond.notify()

    def _ask_keyframe(self) -> None:
        self.keyframe_requests += 1
        if self._stream is not None and self._stream.settings.intra_refresh:
            self.keyframe_requests_refreshed += 1  # the next sweep heals it
            return
        if time.perf_counter() - self._keyframe_begun < KEYFRAME_DUPLICATE_S:
            self.keyframe_requests_merged += 1  # another copy of the ask that keyframe answers
            return
        if self._keyframe:
            self.keyframe_requests_merged += 1
        else:
            now = time.perf_counter()
            queue_s, reported_at = self._network_queue
            drain = min(KEYFRAME_DRAIN_MAX_S, queue_s) if now - reported_at < NETWORK_QUEUE_FRESH_S else 0.0
            self._keyframe_not_before = now + drain
        self._keyframe = True

    def set_network_queue(self, seconds: float) -> None:
        """How long the client's frames wait in a queue on the network now (its
        ``network_feedback``): a keyframe asked for soon after waits that long first
        (:data:`KEYFRAME_DRAIN_MAX_S`)."""
        with self._cond:
            self._network_queue = (max(0.0, float(seconds)), time.perf_counter())

    def request_keyframe(self) -> None:
        """A keyframe soon: at once, or when :data:`KEYFRAME_MIN_INTERVAL_S` since the last one
        is over (requests meanwhile merge into it)."""
        with self._cond:
            self._ask_keyframe()
            if self._keyframe_wait(time.perf_counter()) == 0.0:
                self._dirty = True  # else the render thread wakes when the interval is over
                self._triggered()
            self._cond.notify()

    def set_target_bitrate(self, bitrate: int) -> None:
        """Congestion control's target for the live stream: the encoder follows from its next
        frame (no keyframe), and the frame rate drops where bits per pixel would be too few."""
        with self._cond:
            if self._stream is not None:
                self._stream.target_bitrate = int(bitrate)

    def stream_bitrate(self) -> int | None:
        """The live stream's target bit rate (None: no stream)."""
        with self._cond:
            return None if self._stream is None else self._stream.bitrate

    def stream_frame_rate(self) -> int | None:
        """The live stream's frame-rate cap (its ``max_fps``, lowered for a low bit rate)."""
        with self._cond:
            stream = self._stream
            return None if stream is None else stream.frame_rate(self._size)

    def stream_resolution(self) -> tuple[float, tuple[int, int] | None] | None:
        """The live stream's resolution scale and the size it renders at (None: no stream)."""
        with self._cond:
            stream = self._stream
            return None if stream is None else (stream.scale, self._size)

    def _keyframe_wait(self, now: float) -> float | None:
        """Seconds until a held-back keyframe may go (None: none is held back)."""
        stream = self._stream
        if not self._keyframe or stream is None:
            return None
        interval = 0.0 if stream.keyframe_at is None else stream.keyframe_at + KEYFRAME_MIN_INTERVAL_S
        return max(0.0, interval - now, self._keyframe_not_before - now)

    def _held_back(self, now: float) -> bool:
        """A keyframe was asked for and waits (:data:`KEYFRAME_MIN_INTERVAL_S`,
        :data:`KEYFRAME_DRAIN_MAX_S`): no frame goes until it does."""
        return not self._keyframe_now and bool(self._keyframe_wait(now))

    def _refine_wait(self, now: float) -> float | None:
        """Seconds until the last coarse picture is drawn again in full (None: none is due, or
        a frame is coming anyway)."""
        if self._refine_at is None or self._stream is None or self._dirty or \
                self._pending is not None:
            return None
        return max(0.0, self._refine_at - now)

    def _passive_wait(self, now: float) -> float | None:
        """Seconds until a client that sends no poses is due its next frame (None: it sends, or
        it has farview's pose channel). The home view starts :data:`PASSIVE_AFTER_S` after the
        stream, so a farview client's pose channel opens first."""
        stream = self._stream
        if stream is None or stream.posed or stream.connected_at is None:
            return None
        due = stream.connected_at + PASSIVE_AFTER_S
        if stream.frame_at is not None:
            due = max(due, stream.frame_at + 1.0 / PASSIVE_FPS)
        return max(0.0, due - now)

    def media_connected(self) -> None:
        """The peer connection is up (ICE and DTLS): frames can reach the client. A client
        without a pose channel gets the home view from :data:`PASSIVE_AFTER_S` later; before,
        frames would only queue up in front of a connection that cannot send them yet."""
        with self._cond:
            if self._stream is not None and self._stream.connected_at is None:
                self._stream.connected_at = time.perf_counter()
                self._cond.notify()

    def client_sends_poses(self) -> None:
        """The client opened farview's pose channel: it renders on its poses, never the
        passive home view."""
        with self._cond:
            if self._stream is not None:
                self._stream.posed = True

    def _next_wait(self, now: float) -> float | None:
        """Seconds until the render thread has work that no event brings (None: none)."""
        waits = [w for w in (self._keyframe_wait(now), self._passive_wait(now),
                             self._refine_wait(now)) if w is not None]
        return min(waits) if waits else None

    def _home_pose(self, stream: _Stream) -> PoseMessage:
        """The home view for the scene as it is now (framed again when it changed)."""
        version = getattr(self._scene, "version", 0)
        if stream.home is None or stream.home[0] != version:
            try:
                with self._scene_lock:
                    stream.home = (version, home_pose_message(self._scene))
            except Exception:
                log.exception("framing the home view failed; the default view is used")
                stream.home = (version, default_pose_message())
        return stream.home[1]

    def start_stream(self, on_frame: FrameCallback, settings: StreamSettings) -> None:
        with self._cond:
            self._stream = _Stream(on_frame, settings)
            self._last_taken = None  # a new client numbers its poses afresh
            self._keyframe_now = True
            self._dirty = True  # send a first frame at once, with the last pose
            self._triggered()
            self._cond.notify()

    def reconfigure(self, settings: StreamSettings) -> None:
        """Apply new stream settings to the live stream (new encoder, keyframe)."""
        with self._cond:
            if self._stream is not None:
                self._stream.settings = settings
                self._stream.reconfigured = True
                self._keyframe_now = True
                self._dirty = True
                self._cond.notify()

    def stop_stream(self) -> None:
        with self._cond:
            self._stream = None
            self._refine_at = None

    @property
    def last_pose(self) -> PoseMessage:
        return self._last_pose

    def call(self, fn: Callable[[], Any]) -> concurrent.futures.Future[Any]:
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._cond:
            self._calls.append((fn, fut))
            self._cond.notify()
        return fut

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        if self._encode_thread.is_alive():
            try:
                self._jobs.put(None, timeout=5)
            except queue.Full:
                log.warning("the encode thread did not take its stop signal")
            else:
                self._encode_thread.join(timeout=5)

    # -- the render thread -----------------------------------------------------------------
    def _run(self) -> None:
        try:
            renderer = self._make_renderer()
            from farview.host.renderer import is_software_renderer  # GL is loaded by now

            info = dict(getattr(renderer, "info", {}) or {})
            gpu = bool(info.get("gl_renderer")) and not is_software_renderer(
                str(info["gl_renderer"]))
            self._overlap = self._encode_thread_mode == "on" or (
                self._encode_thread_mode == "auto" and gpu)
            info["encode"] = "overlapped" if self._overlap else "after render"
            if self._overlap:
                self._encode_thread.start()
            self.renderer_info = info
            log.info("encoding %s", "on its own thread, overlapping the next render"
                     if self._overlap else "after each render, on the render thread")
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        size: tuple[int, int] | None = None
        cap = FrameRateCap(60)
        while True:
            with self._cond:
                while not (self._stop or self._calls or
                           (self._stream is not None and (self._pending is not None or self._dirty)
                            and not self._held_back(time.perf_counter()))):
                    now = time.perf_counter()
                    if self._held_back(now):  # no frame until the keyframe asked for
                        self._cond.wait(self._keyframe_wait(now))
                        continue
                    held = self._next_wait(now)
                    if held == 0.0:
                        self._dirty = True  # a held-back keyframe (or a passive frame) is due
                        self._triggered()
                        continue
                    self._cond.wait(held)
                if self._stop:
                    break
                calls, self._calls = self._calls, []
            for fn, fut in calls:
                try:
                    fut.set_result(fn())
                except BaseException as exc:
                    fut.set_exception(exc)
            with self._cond:
                stream = self._stream
                if stream is None or (self._pending is None and not self._dirty) \
                        or self._held_back(time.perf_counter()):
                    continue
                cap.max_fps = float(stream.frame_rate(size))
                if stream.owed_frames:
                    cap.charge(stream.owed_frames, time.perf_counter())
                    stream.owed_frames = 0.0
            wait = cap.delay(time.perf_counter())
            if wait > 0:
                time.sleep(wait)  # the cap; a newer pose may replace the pending one meanwhile
            with self._cond:
                stream = self._stream
                if stream is None or self._held_back(time.perf_counter()):
                    continue
                if stream.posed or self._pending is not None:
                    msg = self._pending or self._last_pose
                else:
                    msg = self._home_pose(stream)
                dirty = self._dirty
                self._pending = None
                self._dirty = False
                keyframe = self._keyframe_now or self._keyframe_wait(time.perf_counter()) == 0.0
                if keyframe:
                    self._keyframe = self._keyframe_now = False
                    self._keyframe_begun = time.perf_counter()
                self._last_pose = msg
                trigger_at, self._trigger_at = self._trigger_at, None
            view_key = (msg.views, msg.viewport, msg.near, msg.far, getattr(self._scene, "version", 0))
            # A still camera over a still scene: no new render; the last picture is encoded
            # again (a near-empty P-frame) so the pose still gets its frame.
            # A frame drawn coarser while the camera moved (levels of detail) is drawn again
            # in full as soon as the camera rests: the next unchanged pose refines it, or
            # REFINE_AFTER_S with no pose at all.
            reduced = bool(getattr(renderer, "last_reduced", False))
            moving = view_key[:4] != (stream.last_view or (None,) * 5)[:4]
            unchanged = view_key == stream.last_view and not (dirty or keyframe or reduced)
            # Refining a coarse picture at rest takes most of a second on a heavy model: it
            # is given up as soon as a pose for another view comes (that pose is drawn next,
            # coarse again, and refined once the camera rests).
            moved_on = (self._moved_on(view_key[:4]) if reduced and not moving and not unchanged
                        else None)
            if unchanged:
                self.poses_unchanged += 1
            stream.last_view = view_key
            start = time.perf_counter()
            stream.frame_at = start
            cap.started(start)
            wait_us = 0 if trigger_at is None else min(max(0, int((start - trigger_at) * 1e6)), 2**32 - 1)
            try:
                size = self._size = self._render_one(renderer, stream, msg, keyframe, size, reuse=unchanged,
                                                     moving=moving, wait_us=wait_us,
                                                     abort=moved_on)
            except Exception:
                log.exception("rendering a frame failed; the stream goes on")
            with self._cond:
                self._refine_at = (time.perf_counter() + REFINE_AFTER_S
                                   if getattr(renderer, "last_reduced", False) else None)
        try:
            release = getattr(renderer, "close", None)
            if release is not None:
                release()
        except Exception:
            log.debug("renderer release failed", exc_info=True)

    def _moved_on(self, view: tuple[Any, ...]) -> Callable[[], bool]:
        """True once a pose for a view other than ``view`` (views, viewport, clip planes) waits
        (read without the lock: one attribute, replaced whole)."""
        def moved_on() -> bool:
            pending = self._pending
            return pending is not None and (pending.views, pending.viewport, pending.near,
                                            pending.far) != view
        return moved_on

    def _render_one(self, renderer: RendererLike, stream: _Stream, msg: PoseMessage,
                    keyframe: bool, size: tuple[int, int] | None, *, reuse: bool = False,
                    wait_us: int = 0, moving: bool = False,
                    abort: Callable[[], bool] | None = None) -> tuple[int, int]:
        want = stream.render_size(clamp_viewport(*msg.viewport), time.perf_counter())
        if want != size:
            renderer.resize(*want)
            size = want
        if stream.settings.stock_aiortc:
            return self._render_stock(renderer, stream, msg, size, wait_us)
        last = stream.last_frame
        if reuse and last is not None and (last.width, last.height) == size:
            frame = last
            timings: Any = _NO_TIMINGS
        else:
            with self._scene_lock:
                renderer.render(self._scene, msg.views, msg.near, msg.far, moving=moving,
                                abort=abort)
            if getattr(renderer, "last_aborted", False):
                self.refinements_abandoned += 1  # no frame: the newer pose is drawn next
                return size
            frame = renderer.read_frame()
            timings = renderer.last_timings
            stream.last_frame = frame
            self.frames_rendered += 1
        job = _EncodeJob(stream, frame, msg, size, keyframe, timings, wait_us, time.perf_counter())
        if self._overlap:
            self._jobs.put(job)
        else:
            self._encode(job)
        return size

    # -- the encode thread -----------------------------------------------------------------
    def _encode_run(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                self._encode(job)
            except Exception:
                log.exception("encoding a frame failed; the stream goes on")

    def _encode(self, job: _EncodeJob) -> None:
        handoff_us = int((time.perf_counter() - job.rendered_at) * 1e6)
        stream, frame, msg, size = job.stream, job.frame, job.msg, job.size
        keyframe = job.keyframe
        enc = stream.encoder
        if enc is None or stream.reconfigured or (enc.settings.width, enc.settings.height) != size:
            stream.reconfigured = False
            if enc is not None:
                enc.close()
            s = stream.settings
            enc = stream.encoder = H264Encoder(EncoderSettings(
                width=size[0], height=size[1], bitrate=stream.bitrate, max_fps=s.max_fps,
                prefer_hardware=s.prefer_hardware, intra_refresh=s.intra_refresh))
            keyframe = True
            self.encoder_path = enc.path
        fps = stream.frame_rate(size)
        if (stream.bitrate, fps) != (enc.bitrate, enc.fps):
            enc.set_bitrate(stream.bitrate, fps)
        if stream.settings.verify_marker:
            marker.burn(*yuv420_planes(frame), msg.sequence)
        t0 = time.perf_counter()
        pts = self._next_pts(stream, t0)
        packets = enc.encode_frame(frame, pts, keyframe=keyframe)
        encode_us = int((time.perf_counter() - t0) * 1e6)
        stream.frames += 1
        if not packets:
            return
        timings = job.timings
        size_bytes = sum(p.size for p in packets)
        budget = enc.bitrate / enc.fps  # bits a frame
        if size_bytes * 8 > 2 * budget:
            with self._cond:
                stream.owed_frames += size_bytes * 8 / budget - 1.0
            self.frames_over_budget += 1
        is_key = any(p.is_keyframe for p in packets)
        if is_key:
            stream.keyframe_at = time.perf_counter()
            self.keyframes_sent += 1
        meta = FrameMetadata(
            pts=pts, pose_sequence=msg.sequence, pose_client_time_us=msg.client_time_us,
            width=size[0], height=size[1], keyframe=is_key, target_bitrate=enc.bitrate,
            render_us=int(timings.render_ms * 1000), readback_us=int(timings.readback_ms * 1000),
            convert_us=int(timings.convert_ms * 1000), encode_us=encode_us,
            size_bytes=size_bytes,
            wait_us=min(job.wait_us + handoff_us, 2**32 - 1),
        )
        stream.on_frame(packets, meta)

    def _next_pts(self, stream: _Stream, t0: float) -> int:
        if stream.started is None:
            stream.started = t0
        pts = max(stream.last_pts + 1, int((t0 - stream.started) * 90000))
        stream.last_pts = pts
        return pts

    def _render_stock(self, renderer: RendererLike, stream: _Stream, msg: PoseMessage,
                      size: tuple[int, int], wait_us: int = 0) -> tuple[int, int]:
        """Benchmark baseline: raw frames to aiortc, which encodes them with its own encoder."""
        from farview.streaming.encoder import VIDEO_TIME_BASE

        with self._scene_lock:
            renderer.render(self._scene, msg.views, msg.near, msg.far)
        frame = renderer.read_frame()  # a new frame each call: aiortc encodes it later
        timings = renderer.last_timings
        if stream.settings.verify_marker:
            marker.burn(*yuv420_planes(frame), msg.sequence)
        frame.pts = self._next_pts(stream, time.perf_counter())
        frame.time_base = VIDEO_TIME_BASE
        self.frames_rendered += 1
        meta = FrameMetadata(
            pts=frame.pts, pose_sequence=msg.sequence, pose_client_time_us=msg.client_time_us,
            width=size[0], height=size[1], render_us=int(timings.render_ms * 1000),
            readback_us=int(timings.readback_ms * 1000), convert_us=int(timings.convert_ms * 1000),
            wait_us=wait_us)
        stream.on_frame([frame], meta)  # type: ignore[list-item]
        return size
