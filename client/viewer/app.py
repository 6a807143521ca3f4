"""The viewer application: a session's stream in a window (or headless), built on the public
client API.

Threads: GLFW and GL on the main thread (:class:`~farview.client.viewer.loop.ViewerLoop`);
asyncio and WebRTC on a :class:`~farview.client.stream_thread.StreamThread` that
:class:`StreamWorker` owns. They meet in exactly three places:

- decoded frames: the connection (worker thread) puts them in the viewer's
  :class:`~farview.streaming.mailbox.LatestMailbox`, which outlives reconnects; the frame loop
  takes the newest;
- poses and input: the loop (main thread) calls :meth:`StreamWorker.send_pose` /
  :meth:`StreamWorker.send_input`, which hop to the worker with ``call_soon_threadsafe``; the
  connection gives each pose its sequence and send time;
- status and statistics: the worker publishes immutable snapshots (a string, a list of lines)
  that the main thread reads; no shared mutable state.

A dropped stream is retried ("reconnecting…") until the session is known to have ended
(Stopped, Expired, Error) or another client holds the host; both end the viewer with a plain
message and an exit code (:data:`EXIT_SESSION_ENDED`, :data:`EXIT_HOST_BUSY`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from farview.client.connection import RenderingConnection
from farview.client.errors import (
    ConnectError,
    FarviewError,
    OtherClientConnectedError,
    RemoteError,
    SessionStateError,
)
from farview.client.frame_loop import run_frame_loop, wake_on_frame
from farview.client.stream_thread import StreamThread
from farview.input.camera import HOME_PITCH, HOME_YAW, CameraController, CameraState, framing
from farview.input.events import Action, EventKind, InputEvent
from farview.input.pose import Fov, PoseMessage, PoseRequest, View
from farview.input.scene import Bounds
from farview.streaming.correlation import since_us
from farview.streaming.frame import Frame
from farview.streaming.mailbox import LatestMailbox

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
"""The viewer's stream worker failed (a bug: its log says where)."""
EXIT_USAGE = 2
EXIT_SESSION_ENDED = 3
EXIT_HOST_BUSY = 4
EXIT_CONNECT_FAILED = 5

RECONNECT_DELAY = 1.0
SESSION_CHECK_S = 2.0
"""While a connection is being made, how often the session is checked (a host killed then left
the view waiting out the connection's 15-s timeout before it said the session had ended)."""
OWN_SLOT_GRACE_S = 6.0
"""After a drop, how long a reconnect refused as "another client is connected" is tried
again: the host may still hold this viewer's own dead connection (it frees it after 3 s of
silence, and a host that was frozen answers the new offer first), not another client's."""
MAX_POLL_HZ = 240
"""How often the window loop polls for input and new frames (at most)."""
STATS_PERIOD = 0.25

Connector = Callable[[LatestMailbox[Frame]], Awaitable[RenderingConnection]]
"""Opens a new connection whose decoded frames go to the given mailbox."""
SessionCheck = Callable[[], Awaitable[str | None]]
"""Returns why the session can no longer stream (e.g. "session abc is Expired"), or None."""


@dataclass
class ViewerResult:
    exit_code: int = EXIT_OK
    message: str = ""
    frames_presented: int = 0
    pose_to_present_ms: list[float] = field(default_factory=list)
    drops: int = 0
    """Times the stream dropped."""
    reconnects: int = 0
    """Times the viewer connected again after a drop."""
    first_presented_at: float | None = None
    last_presented_at: float = 0.0
    """When the first and the last frame were presented (``time.perf_counter``)."""

    def presented(self, now: float) -> None:
        """A frame was presented at ``now`` (for the summary's rate)."""
        if self.first_presented_at is None:
            self.first_presented_at = now
        self.last_presented_at = now

    def rate(self) -> str:
        """`` in 15.0 s (58.6 fps)``: from the first frame presented to the last; empty with
        fewer than two."""
        if self.first_presented_at is None or self.frames_presented < 2:
            return ""
        span = self.last_presented_at - self.first_presented_at
        return f" in {span:.1f} s ({(self.frames_presented - 1) / span:.1f} fps)" if span > 0 else ""

    def summary(self) -> str:
        lat = sorted(self.pose_to_present_ms)
        times = f"{self.drops} time{'s' if self.drops != 1 else ''}"
        dropped = ("" if not self.drops else
                   f"; the stream dropped {times} and reconnected" if self.reconnects >= self.drops
                   else f"; the stream dropped {times}, reconnected {self.reconnects}")
        if not lat:
            return frames_presented(self.frames_presented) + self.rate() + dropped
        p50 = lat[len(lat) // 2]
        p99 = lat[min(len(lat) - 1, math.ceil(len(lat) * 0.99) - 1)]
        return (f"{frames_presented(self.frames_presented)}{self.rate()}; pose → present "
                f"p50 {p50:.1f} ms, p99 {p99:.1f} ms{dropped}")


def frames_presented(n: int) -> str:
    """``"1 frame presented"``, ``"2 frames presented"``."""
    return f"{n} frame presented" if n == 1 else f"{n} frames presented"


NOTICE_SECONDS = 6.0
"""How long a scene action's notice stays in the status line."""


class _SessionEnded(Exception):
    """The session ended while a connection was being made (its reason)."""


class StreamWorker:
    """Owns the asyncio loop thread and the (re)connection to one session's host."""

    def __init__(self, connect: Connector, mailbox: LatestMailbox[Frame], *,
                 session_check: SessionCheck | None = None, pose_rate: float | None = None) -> None:
        self._connect = connect
        self._session_check = session_check
        self._mailbox = mailbox
        self._pose_rate = pose_rate
        self._thread = StreamThread("stream", start=False)
        self._conn: RenderingConnection | None = None
        self._stopping = False
        self._last_pose: PoseRequest | None = None
        self.status = "connecting…"
        """A banner for the window (None-like empty string when streaming normally)."""
        self.ended: tuple[int, str] | None = None
        """(exit code, message) once the worker gave up; the viewer should then exit."""
        self.stats_lines: list[str] = []
        self.connected_once = threading.Event()
        self.drops = 0
        """Streams that dropped after connecting."""
        self.reconnects = 0
        """Connections made again after a drop."""
        self.last_drop = ""
        """Why the stream last dropped."""
        self.receive_to_present_ms: float | None = None
        """Set by the display thread for the newest presented frame (a float: atomic to share)."""
        self._notice = ""
        self._notice_at = -math.inf
        self.selected: tuple[int, str] | None = None
        self.hidden: list[int] = []
        self.scene_bounds: Bounds | None = None
        self.focus_bounds: Bounds | None = None
        """Bounds to frame next (set by :meth:`frame_selection`, taken by the frame loop)."""
        """World bounds of everything in the scene, read once after the first connection, so
        the viewer can frame whatever model the session has (``frame_camera``)."""

    # -- main thread --------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()
        self._thread.submit(self._main())

    def send_pose(self, request: PoseRequest) -> None:
        """Ask for a frame rendered for ``request`` (main thread → worker)."""
        self._last_pose = request
        self._thread.call_soon(self._send_pose, request)

    def send_input(self, event: InputEvent) -> None:
        self._thread.call_soon(self._send_input, event)

    def pick(self, frame: Frame, x: float, y: float) -> None:
        """Select the part under pixel (x, y) of ``frame`` (main thread → worker)."""
        if frame.pose is not None:
            pose = frame.pose
            # in the pose's viewport's pixels: a frame sent at a lower resolution (a narrow
            # link) is smaller than the viewport it shows
            vw, vh = pose.viewport
            x, y = x * vw / max(frame.width, 1), y * vh / max(frame.height, 1)
            self._thread.submit(self._scene_action(self._pick(pose, x, y)))

    @property
    def notice(self) -> str:
        """The last scene action's outcome ("selected Piston_2"), shown in the status line for
        :data:`NOTICE_SECONDS` ("nothing under the cursor" stayed for minutes)."""
        return self._notice if time.monotonic() - self._notice_at < NOTICE_SECONDS else ""

    @notice.setter
    def notice(self, text: str) -> None:
        self._notice, self._notice_at = text, time.monotonic()

    def hide_selection(self) -> None:
        self._thread.submit(self._scene_action(self._hide_selection()))

    def show_all(self) -> None:
        self._thread.submit(self._scene_action(self._show_all()))

    def frame_selection(self) -> None:
        """Ask for the selected part's bounds (the whole scene's without a selection); the
        frame loop then frames them (:func:`focus_camera`)."""
        self._thread.submit(self._scene_action(self._frame_selection()))

    def stop(self, timeout: float = 5.0) -> None:
        """Close the connection (telling the host), end every task, stop the thread."""
        self._stopping = True
        self._thread.stop(timeout, before=self._close())

    # -- worker thread ------------------------------------------------------------------------
    async def _close(self) -> None:
        if self._conn is not None:
            await self._conn.close()

    def _send_pose(self, request: PoseRequest) -> None:
        if self._conn is not None and self._conn.is_connected:
            self._conn.send_pose(request)

    def _send_input(self, event: InputEvent) -> None:
        if self._conn is not None and self._conn.is_connected:
            self._conn.send_input(event)

    # -- scene actions (worker thread) -----------------------------------------------------------
    async def _scene_action(self, coro: Any) -> None:
        try:
            await coro
        except FarviewError as exc:
            self.notice = f"{exc}"
        except Exception:
            log.exception("scene action failed")

    async def _pick(self, pose: PoseMessage, x: float, y: float) -> None:
        conn = self._conn
        if conn is None or not conn.is_connected:
            return
        hit = await conn.scene.pick(pose, x, y)
        if self.selected is not None:
            await conn.scene.entity(self.selected[0]).set_selected(None)
            self.selected = None
        if hit is None:
            self.notice = "nothing under the cursor"
            return
        await conn.scene.entity(hit.entity_id).set_selected(True)
        self.selected = (hit.entity_id, hit.entity_name)
        self.notice = f"selected {hit.entity_name} (X hides it, C frames it)"

    async def _hide_selection(self) -> None:
        conn = self._conn
        if conn is None or not conn.is_connected:
            return
        if self.selected is None:
            self.notice = "nothing selected: click a part first"
            return
        entity_id, name = self.selected
        entity = conn.scene.entity(entity_id)
        await entity.set_selected(None)
        await entity.set_hidden(True)
        self.hidden.append(entity_id)
        self.selected = None
        self.notice = f"hid {name} (U shows all)"

    async def _frame_selection(self) -> None:
        conn = self._conn
        if conn is None or not conn.is_connected:
            return
        if self.selected is None:
            self.focus_bounds = self.scene_bounds
            return
        box = await conn.scene.entity(self.selected[0]).bounds("world")
        if box is None:
            self.notice = f"{self.selected[1]} has nothing to frame"
        self.focus_bounds = box

    async def _show_all(self) -> None:
        """Every hidden part of the scene, not only those this viewer hid (the scene is the
        session's: another client's hidden parts stayed hidden)."""
        conn = self._conn
        if conn is None or not conn.is_connected:
            return
        ids = {e.id for e in await conn.scene.find(hidden=True)} | set(self.hidden)
        for entity_id in ids:
            try:
                await conn.scene.entity(entity_id).set_hidden(None)
            except RemoteError as exc:
                if exc.code != "NotFound":  # (a part removed since: nothing to show)
                    raise
        self.notice = (f"showing {len(ids)} hidden part{'s' if len(ids) != 1 else ''} again"
                       if ids else "nothing is hidden")
        self.hidden = []

    async def _main(self) -> None:
        stats_task = asyncio.ensure_future(self._publish_stats())
        extra_poses = asyncio.ensure_future(self._pose_repeater()) if self._pose_rate else None
        try:
            await self._connect_loop()
        except Exception as exc:  # (it ended silently, and the view ran on to --duration)
            log.exception("the stream worker failed")
            self._end(EXIT_FAILED, f"the viewer's stream worker failed ({type(exc).__name__}: "
                      f"{exc}); please report it")
        finally:
            stats_task.cancel()
            if extra_poses is not None:
                extra_poses.cancel()

    async def _connect_loop(self) -> None:
        failed = ""
        busy_since: float | None = None
        while not self._stopping:
            try:
                self._conn = await self._connect_watching()
            except _SessionEnded as ended:
                self._end(EXIT_SESSION_ENDED, str(ended))
                return
            except OtherClientConnectedError as exc:
                # (after a drop, a host frozen for 12 s answered the reconnect while it still
                # held this viewer's dead connection, and the view exited 4, "another client")
                now = time.monotonic()
                busy_since = now if busy_since is None else busy_since
                if not self.connected_once.is_set() or now - busy_since > OWN_SLOT_GRACE_S:
                    self._end(EXIT_HOST_BUSY, f"{exc}")
                    return
                await asyncio.sleep(RECONNECT_DELAY)
                continue
            except (ConnectError, SessionStateError, FarviewError) as exc:
                reason = await self._ended_reason()
                if reason:
                    self._end(EXIT_SESSION_ENDED, reason)
                    return
                if not self.connected_once.is_set():
                    # (a first connection that failed was retried until --duration ran out, and
                    # the command printed "0 frames presented" and exited 0: ICE that cannot
                    # connect, relay only without a TURN server)
                    self._end(EXIT_CONNECT_FAILED, str(exc))
                    return
                if not self.status.startswith("the session service stopped"):
                    self.status = "reconnecting…"
                if str(exc) != failed:  # (said once, not every second)
                    log.warning("farview: reconnecting: %s", exc)
                    failed = str(exc)
                await asyncio.sleep(RECONNECT_DELAY)
                continue
            busy_since = None
            first = not self.connected_once.is_set()
            if not first:
                self.reconnects += 1
            self.connected_once.set()
            self.status = ""
            if first:
                await self._read_scene_bounds(self._conn)
            # (not if it closed meanwhile: send_pose raised, and the worker ended without a
            # word, the view running on with no stream to --duration)
            if self._last_pose is not None and self._conn.is_connected:
                self._conn.send_pose(self._last_pose)
            while self._conn.is_connected and not self._stopping:
                await asyncio.sleep(0.1)
            if self._stopping:
                return
            reason = await self._ended_reason()
            if reason:
                self._end(EXIT_SESSION_ENDED, reason)
                return
            # (said: with INFO only, a 10 s outage left two "connected" lines and nothing else)
            reason = self._conn.close_reason or "the connection closed"
            log.warning("farview: the stream dropped (%s); reconnecting", reason)
            self.drops += 1
            self.last_drop = reason
            self.status = ("the session service stopped; waiting for it…"
                           if "service is shutting down" in reason else "reconnecting…")
            await asyncio.sleep(RECONNECT_DELAY)

    async def _connect_watching(self) -> RenderingConnection:
        """A new connection; given up (:class:`_SessionEnded`) should the session end while
        it is being made."""
        task = asyncio.ensure_future(self._connect(self._mailbox))
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=SESSION_CHECK_S)
                if done:
                    conn: RenderingConnection = task.result()
                    return conn
                reason = await self._ended_reason()
                if reason:
                    raise _SessionEnded(reason)
        finally:
            if not task.done():
                task.cancel()
                try:
                    await (await task).close()  # (made after all: not kept open)
                except BaseException:  # (cancelled, or failed: either way gone)
                    pass

    async def _read_scene_bounds(self, conn: RenderingConnection) -> None:
        boxes = []
        try:
            for root in await conn.scene.roots():
                box = await conn.scene.entity(root.id).bounds("world")
                if box is not None:
                    boxes.append(box)
        except FarviewError as exc:
            log.info("could not read the scene's bounds (%s); keeping the default camera", exc)
            return
        self.scene_bounds = Bounds.union(boxes)

    async def _ended_reason(self) -> str | None:
        if self._session_check is None:
            return None
        try:
            return await self._session_check()
        except Exception as exc:
            log.debug("session check failed: %s", exc)
            return None

    def _end(self, code: int, message: str) -> None:
        self.ended = (code, message)
        self.status = message

    async def _publish_stats(self) -> None:
        while True:
            await asyncio.sleep(STATS_PERIOD)
            conn = self._conn
            if conn is None or not conn.is_connected:
                # (the last connection's figures, "received 60/s", stayed on screen through a
                # 90 s outage)
                self.stats_lines = ["not connected"] if self.connected_once.is_set() else []
                continue
            self.stats_lines = format_connection_stats(conn, discarded=self._mailbox.discarded,
                                                       receive_to_present_ms=self.receive_to_present_ms)

    async def _pose_repeater(self) -> None:
        """--pose-rate: re-send the newest camera pose (a fresh sequence and time) faster than
        the display rate, so the host renders the latest head pose sooner."""
        assert self._pose_rate
        interval = 1.0 / self._pose_rate
        while True:
            await asyncio.sleep(interval)
            last = self._last_pose
            if last is None or self._conn is None or not self._conn.is_connected:
                continue
            self._conn.send_pose(PoseRequest(last.views, last.viewport, last.near, last.far))


def format_connection_stats(conn: RenderingConnection, *, discarded: int | None = None,
                            receive_to_present_ms: float | None = None) -> list[str]:
    s = conn.statistics()
    if receive_to_present_ms is None:
        receive_to_present_ms = s.latency_receive_to_present
    if discarded is None:
        discarded = s.video_frames_discarded

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f} ms"

    return [
        f"pose→receive {ms(s.latency_pose_to_receive)}  receive→present {ms(receive_to_present_ms)}",
        f"received {s.video_frames_received}/s  skipped {s.video_frames_skipped}  "
        f"discarded {discarded}",
        f"host wait {ms(s.host_wait)}  render {ms(s.host_render)}  convert {ms(s.host_convert)}  "
        f"readback {ms(s.host_readback)}  encode {ms(s.host_encode)}",
        f"bitrate {(s.bitrate_kbps or 0) / 1000:.1f} Mbit/s (target "
        f"{'-' if s.target_bitrate_kbps is None else format(s.target_bitrate_kbps / 1000, '.1f')})  "
        f"RTT {ms(s.network_rtt)}",
        f"freezes {s.freezes} (last {ms(s.last_freeze_ms)})  recovered by retransmission {s.frames_recovered}",
    ]


DEFAULT_YAW, DEFAULT_PITCH = HOME_YAW, HOME_PITCH
"""The direction the viewer looks from at start (:data:`~farview.input.camera.HOME_YAW`)."""


def default_camera() -> CameraController:
    """A view that frames the shipped sample model (about 0.65 m across, at the origin), used
    until the scene's bounds are known (:func:`frame_camera`)."""
    return CameraController(CameraState(target=(0.0, 0.02, 0.0), distance=1.08, yaw=DEFAULT_YAW,
                                        pitch=DEFAULT_PITCH))


def frame_camera(camera: CameraController, worker: StreamWorker, aspect: float = math.inf, *,
                 go: bool = True) -> bool:
    """Once the worker knows the scene's bounds: make the view that shows them whole (in a
    view of ``aspect``, width / height) the camera's home (R returns there) and, with ``go``,
    go there. True when it did."""
    if worker.scene_bounds is None:
        return False
    bounds = worker.scene_bounds
    try:
        camera.home = framing(bounds.min, bounds.max, fov_y_deg=camera.fov_y_deg, yaw=DEFAULT_YAW,
                              pitch=DEFAULT_PITCH, aspect=aspect)
    except ValueError as exc:
        log.info("cannot frame the scene (%s); keeping the default camera", exc)
        return True
    if go:
        camera.reset()
    return True


def focus_camera(camera: CameraController, worker: StreamWorker, aspect: float = math.inf) -> bool:
    """Frame the bounds :meth:`StreamWorker.frame_selection` asked for, from the current
    direction (R still returns home). True when it did."""
    bounds, worker.focus_bounds = worker.focus_bounds, None
    if bounds is None:
        return False
    try:
        state = framing(bounds.min, bounds.max, fov_y_deg=camera.fov_y_deg, yaw=camera.yaw,
                        pitch=camera.pitch, aspect=aspect)
    except ValueError as exc:
        log.info("cannot frame the selection (%s)", exc)
        return False
    camera.target, camera.distance = state.target, state.distance
    return True


def run_window(worker: StreamWorker, mailbox: LatestMailbox[Frame], *, size: tuple[int, int],
               vsync: bool, fullscreen: bool, duration: float | None,
               screenshot: Path | None, title: str) -> ViewerResult:
    from farview.client.viewer.loop import ViewerLoop
    from farview.client.viewer.window import Window

    result = ViewerResult()
    with Window(title=title, size=size, vsync=vsync, fullscreen=fullscreen) as window:
        picker = _Picker(worker)
        loop = ViewerLoop(window, mailbox, worker.send_pose, camera=default_camera(),
                          on_input=picker.on_input, extra_stats=lambda: worker.stats_lines)
        picker.loop = loop
        worker.start()
        started = time.perf_counter()
        presented = 0
        framed_aspect: float | None = None  # the window's shape the home view was framed for

        def step() -> bool:
            nonlocal presented, framed_aspect
            loop.set_status(worker.status or worker.notice or None)
            fw, fh = window.framebuffer_size()
            aspect = fw / fh if fw > 0 and fh > 0 else math.inf  # (a minimised window: 0 x 0)
            if framed_aspect is None:
                if frame_camera(loop.camera, worker, aspect):
                    framed_aspect = aspect
            elif math.isfinite(aspect) and abs(aspect / framed_aspect - 1) > 0.01:
                # the window changed shape: R fits the model to it as it is now (it kept the
                # home of the first shape and cut the model off in a window made upright)
                frame_camera(loop.camera, worker, aspect, go=False)
                framed_aspect = aspect
            focus_camera(loop.camera, worker, aspect)
            if not loop.step():
                return False
            if loop.frames_presented != presented:
                presented = loop.frames_presented
                result.presented(time.perf_counter())
                if loop.pose_to_present_ms is not None:
                    result.pose_to_present_ms.append(loop.pose_to_present_ms)
                if loop.last_frame is not None:
                    worker.receive_to_present_ms = (time.perf_counter() - loop.last_frame.received_at) * 1000
            return True

        try:
            # Steps that draw nothing do not block in swap (vsync), so the polling rate is
            # capped; a frame that arrives meanwhile ends the wait (shown at once, not up to a
            # poll interval later).
            run_frame_loop(step, wake_on_frame(mailbox, lambda start: start + 1.0 / MAX_POLL_HZ),
                           duration=duration, stop=lambda: worker.ended is not None)
            if screenshot is not None:
                loop.screenshot(screenshot)
        finally:
            result.frames_presented = loop.frames_presented
            worker.stop()
            loop.close()
    return _finish(result, worker, ran_out=duration is not None
                   and time.perf_counter() - started >= duration)


MODE_NOTICES = {"fly": "fly mode: drag looks around, W A S D Q E fly (V: orbit)",
                "orbit": "orbit mode: drag orbits the model, right-drag pans (V: fly)"}
"""Said when V changes the camera's mode (it changed what a drag does, silently)."""


class _Picker:
    """Turns a click (press and release at the same spot) into a pick, X into hide, U into show
    all, C into framing the selection; every event still goes to the host's ``input``
    channel."""

    KEY_X, KEY_U, KEY_C, KEY_V = 88, 85, 67, 86
    CLICK_SLOP = 0.004
    """How far (fraction of the window) the pointer may move between press and release."""

    def __init__(self, worker: StreamWorker) -> None:
        self.worker = worker
        self.loop: Any = None
        self._press: tuple[float, float] | None = None

    def on_input(self, event: InputEvent) -> None:
        self.worker.send_input(event)
        if event.kind is EventKind.BUTTON and event.button == 0:
            if event.action is Action.PRESS:
                self._press = (event.x, event.y)
            elif event.action is Action.RELEASE and self._press is not None:
                px, py = self._press
                self._press = None
                if abs(event.x - px) <= self.CLICK_SLOP and abs(event.y - py) <= self.CLICK_SLOP:
                    self._pick(event.x, event.y)
        elif event.kind is EventKind.KEY and event.action is Action.PRESS:
            if event.key == self.KEY_X:
                self.worker.hide_selection()
            elif event.key == self.KEY_U:
                self.worker.show_all()
            elif event.key == self.KEY_C:
                self.worker.frame_selection()
            elif event.key == self.KEY_V and self.loop is not None:
                # (the loop's controls have taken the key already: this is the new mode)
                self.worker.notice = MODE_NOTICES[self.loop.controls.mode.value]

    def _pick(self, nx: float, ny: float) -> None:
        frame = None if self.loop is None else self.loop.last_frame
        if frame is None or frame.pose is None:
            return
        from farview.client.viewer.yuv_renderer import letterbox

        win_w, win_h = self.loop.window.window_size()
        x, y, w, h = letterbox((frame.width, frame.height), (win_w, win_h))
        # letterbox() gives the picture's rectangle in window coordinates (origin bottom-left)
        wx, wy = nx * win_w, ny * win_h
        fx = (wx - x) / max(w, 1) * frame.width
        fy = (wy - (win_h - y - h)) / max(h, 1) * frame.height
        if 0 <= fx < frame.width and 0 <= fy < frame.height:
            self.worker.pick(frame, fx, fy)


def run_headless(worker: StreamWorker, mailbox: LatestMailbox[Frame], *, size: tuple[int, int],
                 rate: float, duration: float | None, screenshot: Path | None) -> ViewerResult:
    """The same pipeline with no window: poses from a slowly orbiting camera at ``rate`` Hz,
    each frame taken the moment it arrives (the window shows a frame on arrival too, polling at
    ``MAX_POLL_HZ``). Taking frames only at the pose ticks, as an earlier version did, made
    every frame wait for the next tick: pose → present was whole frame intervals (34 ms p50
    at 60 Hz here, for frames that had arrived after ~20 ms)."""
    result = ViewerResult()
    camera = default_camera()
    worker.start()
    start = time.perf_counter()
    end = math.inf if duration is None else start + duration
    interval = 1.0 / rate
    next_pose = start
    last: Frame | None = None
    framed = False

    def step() -> bool:
        nonlocal next_pose, last, framed
        frame = mailbox.take()
        if frame is not None:
            last = frame
            result.frames_presented += 1
            result.presented(time.perf_counter())
            if frame.pose is not None:
                result.pose_to_present_ms.append(since_us(frame.pose.client_time_us))
        framed = framed or frame_camera(camera, worker, size[0] / size[1])
        now = time.perf_counter()
        if now >= next_pose:
            camera.orbit(0.01, 0.0)
            worker.send_pose(PoseRequest(
                (View(camera.pose(), Fov.symmetric(60.0, size[0] / size[1])),), size))
            # keep the cadence; after a stall, start again from now rather than catch up
            next_pose = max(next_pose + interval, now)
        return True

    try:
        # frames are taken the moment they arrive; poses go out at their own cadence
        run_frame_loop(step, wake_on_frame(mailbox, lambda _start: min(next_pose, end)),
                       duration=duration, stop=lambda: worker.ended is not None)
    finally:
        worker.stop()
    if screenshot is not None:
        if last is None:
            result.exit_code = result.exit_code or EXIT_CONNECT_FAILED
            result.message = result.message or "no frame arrived; no screenshot written"
        else:
            Image.fromarray(last.to_rgb(), "RGB").save(screenshot)
    return _finish(result, worker, ran_out=duration is not None
                   and time.perf_counter() - start >= duration)


def _finish(result: ViewerResult, worker: StreamWorker, *, ran_out: bool) -> ViewerResult:
    """``result`` with how the stream went: why it ended, or that ``--duration`` ran out before
    the first connection (that printed "0 frames presented" and exited 0) or while the stream
    was down after a drop."""
    result.drops, result.reconnects = worker.drops, worker.reconnects
    if worker.ended is not None:
        result.exit_code, result.message = worker.ended
    elif ran_out and not worker.connected_once.is_set():
        result.exit_code = EXIT_CONNECT_FAILED
        result.message = ("no connection to the session's render host before --duration ran "
                          "out: ICE was still looking for a path (an ICE server that does not "
                          "answer slows it down); give it longer")
    elif ran_out and worker.drops > worker.reconnects:  # (it exited 0: a service that never
        # came back, with "dropped 1 time, reconnected 0" in the summary only)
        result.exit_code = EXIT_CONNECT_FAILED
        result.message = (f"the stream dropped ({worker.last_drop}) and was not back when "
                          "--duration ran out")
    return result


def print_result(result: ViewerResult, out: Any) -> None:
    if result.message:
        print(f"farview: {result.message}", file=out)
    if result.message and result.frames_presented == 0 and result.exit_code != EXIT_OK:
        return  # (refused before it showed anything: a usage error, another client connected,
        # no connection: "0 frames presented" after the reason read as if it had run)
    print(result.summary(), file=out)
