"""``RenderingConnection``: the live stream of one session, on the caller's asyncio loop.

Made by :func:`connect_session` (``await session.connect()``). The client is the WHEP offerer:
it creates the recvonly H.264 video transceiver and the four data channels, posts the offer
to the host's ``/whep`` with an access token, and applies the answer.

Poses: :meth:`RenderingConnection.send_pose` is the one place a pose gets its identity: the
connection's :class:`~farview.streaming.correlation.PoseCorrelator` assigns the sequence number
and the send time (one clock); callers pass views, viewport and clip planes only.

Frames: complete access units are released on their RTP marker bit and decoded inline
(:mod:`farview.streaming.receiver`); the correlator matches each decoded frame to the host's
metadata (by pts) and thereby to the pose it was rendered with, then it goes into the
connection's :class:`~farview.streaming.mailbox.LatestMailbox` (``frames``; one the caller
passes, e.g. the viewer's, which outlives reconnects): :meth:`next_frame` returns the newest
frame; a frame replaced before it was taken is counted as discarded. A consumer on another
thread takes frames from the mailbox itself and reports them with :meth:`mark_presented`.

Liveness: a control ``ping`` every second doubles as heartbeat and RTT probe; three seconds
without any answer, a failed peer connection, or the host's ``closing`` event end the
connection, and :meth:`next_frame` then raises :class:`~client.errors.ConnectionLostError`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from aiortc import RTCRtpTransceiver

from farview.client.errors import (
    ConnectError,
    ConnectionLostError,
    OtherClientConnectedError,
    RemoteError,
    SessionStateError,
    TimedOutError,
)
from farview.client.scene import RemoteScene
from farview.input import control as wire
from farview.input.errors import ProtocolError
from farview.input.events import InputEvent
from farview.input.frame_meta import FrameMetadata
from farview.input.ice import IceServer
from farview.input.pose import Fov, Pose, PoseMessage, PoseRequest, View, check_viewport
from farview.streaming._aiortc_patches import enlarge_socket_buffers, ice_path, install_marker_receiver
from farview.streaming.assembler import FrameAssembler
from farview.streaming.congestion import NetworkFeedback
from farview.streaming.correlation import PoseCorrelator
from farview.streaming.frame import Frame
from farview.streaming.mailbox import LatestMailbox
from farview.streaming.peer import CHANNELS, create_peer_connection, h264_codecs
from farview.streaming.receiver import DecodedVideoFrame, VideoReceiver
from farview.streaming.stats import FrameStatistics, StatisticsWindow
from farview.streaming.whep import (
    SignalingError,
    Verify,
    whep_connect,
    whep_disconnect,
    whep_ice_servers,
)

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL = 1.0
LIVENESS_TIMEOUT = 3.0
DEFAULT_FOV_Y = 60.0
DEFAULT_POSE = Pose((0.0, 0.25, 1.6))
POSE_COPIES = 2
"""Each pose is sent this many times. The pose channel does not retransmit (a late pose is of no
use), so a lost packet used to cost a frame: the host renders when a pose arrives. aiortc puts
each data-channel message in a packet of its own (``streaming/_aiortc_patches.py``, "relied on"),
so the copies are lost independently; the host ignores the later copy (``poses_repeated``). At
5 % random loss a pose is then lost 0.25 % of the time instead of 5 %, for ~100 bytes more a
frame."""
"""Where the first frame is rendered from when the caller sends no pose."""
FEEDBACK_COPIES = 2
"""Each ``network_feedback`` report is sent this many times, as poses are. Under a 50 % loss
burst one copy of a report got through half the time: four lost in a row (0.4 s) left the
host's last word on the queue stale, and it took the burst for congestion and cut the bit rate
(then climbed back for seconds). Two copies: a quarter of the time."""


class RenderingConnection:
    """A connected stream. Use :func:`connect_session` to make one."""

    def __init__(self, *, viewport: tuple[int, int] = (1280, 720),
                 mailbox: LatestMailbox[Frame] | None = None,
                 on_event: Callable[[str, dict[str, Any]], None] | None = None,
                 stock_receiver: bool = False, ice_servers: Sequence[IceServer] = (),
                 relay_only: bool = False) -> None:
        self.pc = create_peer_connection(ice_servers, relay_only=relay_only)
        self.ice_servers = tuple(ice_servers)
        """The STUN/TURN servers the signaling endpoint named (its ``Link`` headers)."""
        self._loop = asyncio.get_running_loop()
        self.viewport = viewport
        self.near, self.far = 0.05, 1000.0
        self.frames: LatestMailbox[Frame] = mailbox if mailbox is not None else LatestMailbox()
        """The newest decoded frame (see the module docstring)."""
        self._on_event = on_event
        self._channels: dict[str, Any] = {}
        self._poses = PoseCorrelator()
        self._pending_requests: dict[int, asyncio.Future[Any]] = {}
        self._next_request_id = 1
        self._closed = False
        self._close_reason = ""
        self._client_closed = ""
        """Set when this client closes the connection: the reason it gives, whatever the host says."""
        self._last_heard = time.monotonic()
        self._tasks: list[asyncio.Task[Any]] = []
        self._background: set[asyncio.Future[Any]] = set()
        self._host_protocol_errors = 0
        self._location: str | None = None
        self._token = ""
        self._verify: Verify = True
        self.stats = StatisticsWindow()
        self.rtt_ms: float | None = None
        self.events: deque[tuple[str, dict[str, Any]]] = deque(maxlen=64)
        self.scene = RemoteScene(self)
        """The scene API (models, entities, queries) of this session's host."""

        for spec in CHANNELS:
            ch = self.pc.createDataChannel(spec.label, ordered=spec.ordered,
                                           maxRetransmits=spec.max_retransmits)
            self._channels[spec.label] = ch
        self._channels["frames"].on("message", self._on_frame_meta)
        self._channels["control"].on("message", self._on_control)
        transceiver: RTCRtpTransceiver = self.pc.addTransceiver("video", direction="recvonly")
        transceiver.setCodecPreferences(h264_codecs())
        self._receiver = VideoReceiver(self._on_decoded, request_keyframe=self._ask_keyframe)
        self._jitter = FrameAssembler(self._receiver.on_encoded, request_keyframe=self._ask_keyframe)
        self._network_feedback = NetworkFeedback(lambda: self._jitter.bytes_received)
        self._feedback_number = -1
        self._keyframe_asks_sent = 0
        if stock_receiver:
            # benchmark baseline: aiortc's own jitter buffer, decoder thread and queue
            self.pc.on("track", self._on_stock_track)
        else:
            install_marker_receiver(transceiver.receiver, self._jitter)
        self.pc.on("connectionstatechange", self._on_state)

    def _lost(self) -> ConnectionLostError:
        """The error for a call on a closed connection, saying why it closed."""
        if self._loop.is_closed():  # (it said only "peer connection closed")
            return ConnectionLostError(
                "the event loop this connection ran on has ended (the asyncio.run that made it "
                "returned): connect, and use the connection, inside one asyncio.run")
        # (an entity handle kept from before a reconnect said only why its connection closed)
        return ConnectionLostError(
            f"{self._close_reason or 'connection closed'}; this connection is over: connect "
            "again and use the new connection (entity ids stay valid while the session runs: "
            "new_connection.scene.entity(id))")

    # -- connecting ---------------------------------------------------------------------------
    async def _connect(self, url: str, token: str, *, verify: Verify, timeout: float) -> None:
        self._token, self._verify = token, verify
        try:
            self._location = await asyncio.wait_for(
                whep_connect(self.pc, url, token, verify=verify, timeout=timeout), timeout)
        except SignalingError as exc:
            await self.pc.close()
            if exc.status == 409 and exc.code == "SessionNotReady":
                raise SessionStateError(exc.message) from None
            if exc.status == 409:
                raise OtherClientConnectedError(exc.message) from None
            raise ConnectError(f"render host refused the connection ({exc.status} {exc.code}): {exc.message}") from None
        except TimeoutError:
            await self.pc.close()
            raise ConnectError(f"render host at {url} did not answer within {timeout:.0f} s") from None
        control = self._channels["control"]
        deadline = time.monotonic() + timeout
        while control.readyState != "open":
            if time.monotonic() > deadline or self.pc.connectionState in ("failed", "closed"):
                state, tried = self.pc.connectionState, self._candidates_tried()
                try:  # free the host for the next attempt at once
                    await whep_disconnect(self._location, token, verify=verify)
                except Exception:
                    log.debug("could not end the WHEP resource after ICE failed", exc_info=True)
                await self.pc.close()
                hint = ("a TURN server the service names (farview serve --ice-server "
                        "turn:HOST:3478?transport=tcp --turn-secret-file ...) relays media when UDP "
                        "between the two is blocked" if not self.ice_servers else
                        "check that the TURN server is reachable from here, and that it can "
                        "reach the render host's addresses above (a TURN server that cannot "
                        "reach one of them may drop the whole relay; farview serve "
                        "--media-address limits the host to addresses it can reach)")
                raise ConnectError(f"the WebRTC connection to the render host did not open (state "
                                   f"{state}); candidates tried: {tried}; {hint}")
            await asyncio.sleep(0.01)
        enlarge_socket_buffers(self.pc)
        self._last_heard = time.monotonic()
        self._tasks.append(asyncio.ensure_future(self._heartbeat()))
        self.send_pose()  # the first frame is rendered for our viewport at once

    def _candidates_tried(self) -> str:
        """The ICE candidates of both sides, for an error: ``local [...] remote [...]``."""
        def fmt(cands: list[Any]) -> str:
            return ", ".join(f"{c.type} {c.protocol} {c.ip}:{c.port}" for c in cands) or "none"
        for transceiver in self.pc.getTransceivers():
            ice = transceiver.receiver.transport.transport
            return (f"local [{fmt(ice.iceGatherer.getLocalCandidates())}], "
                    f"remote [{fmt(ice.getRemoteCandidates())}]")
        return "none"

    # -- frames -------------------------------------------------------------------------------
    def _on_stock_track(self, track: Any) -> None:
        async def pump() -> None:
            while not self._closed:
                try:
                    picture = await track.recv()
                except Exception:
                    return
                now = time.perf_counter()
                self._on_decoded(DecodedVideoFrame.of(picture, int(picture.pts), now, now, 0))

        self._tasks.append(asyncio.ensure_future(pump()))

    def _on_frame_meta(self, message: bytes | str) -> None:
        self._last_heard = time.monotonic()
        try:
            meta = FrameMetadata.decode(message if isinstance(message, bytes) else message.encode())
        except ProtocolError as exc:
            log.warning("dropping bad frame metadata: %s", exc)
            return
        self._meta_feedback(meta)
        frame = self._poses.on_metadata(meta)
        if frame is not None:
            self._publish(frame)

    def _on_decoded(self, decoded: DecodedVideoFrame) -> None:
        self._last_heard = time.monotonic()
        frame = self._poses.on_decoded(decoded)
        if frame is not None:
            self._publish(frame)

    def _meta_feedback(self, meta: FrameMetadata) -> None:
        feedback = self._network_feedback.on_metadata(meta.pts, meta.encode_us, time.perf_counter())
        if feedback is not None:
            self._send_feedback(feedback)

    def _publish(self, frame: Frame) -> None:
        self.stats.on_received(frame)
        self.frames.put(frame)
        self._feed_back(frame)

    def _feed_back(self, frame: Frame) -> None:
        """Tell the host's congestion control how long frames wait on the network (the
        ``network_feedback`` event, ten times a second): its delay signal."""
        meta = frame.metadata
        if meta is None or not frame.received_at:
            return
        feedback = self._network_feedback.on_frame(frame.received_at, meta.pts, meta.encode_us,
                                                   meta.size_bytes, time.perf_counter(),
                                                   waited=frame.waited)
        if feedback is not None:
            self._send_feedback(feedback)

    def _send_feedback(self, feedback: dict[str, float]) -> None:
        """On the unreliable ``frames`` channel: a report is of use only now, and on the
        reliable ``control`` channel a lost one held the later ones back (SCTP resends after
        a second). Numbered, and sent :data:`FEEDBACK_COPIES` times (the host takes the first
        copy to arrive)."""
        channel = self._channels["frames"]
        if not self._closed and channel.readyState == "open":
            self._feedback_number += 1
            message = wire.encode(wire.Event("network_feedback", {**feedback, "n": self._feedback_number}))
            for _ in range(FEEDBACK_COPIES):
                channel.send(message)

    async def next_frame(self, timeout: float | None = 10.0) -> Frame:
        """The newest decoded frame not returned before; waits for one if there is none."""
        while True:
            if self._closed:
                frame = self.frames.take()
                if frame is None:
                    raise self._lost()
            else:
                try:
                    frame = await self.frames.next(timeout)
                except TimeoutError:
                    raise TimedOutError(f"no video frame within {timeout} s (the connection is "
                                        "up: a still scene sends few frames)") from None
            if frame is not None:
                self.stats.on_presented(frame, time.perf_counter())
                return frame

    async def frame_for(self, pose: PoseMessage, timeout: float | None = 10.0) -> Frame:
        """The first frame rendered from ``pose`` (what :meth:`send_pose` returned) or from a
        pose sent after it. Frames rendered before it came (the stream's first frames are
        rendered from the session's home view, with ``frame.pose`` None) are skipped. Raises
        :class:`TimedOutError` if none comes within ``timeout`` seconds, and
        :class:`ConnectionLostError` if the connection ends first."""
        if not isinstance(pose, PoseMessage):  # (a str was an AttributeError)
            raise ProtocolError(f"frame_for takes the pose message send_pose returned, got "
                                f"{pose!r}")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimedOutError(
                    f"no frame rendered from pose {pose.sequence} within {timeout} s; "
                    "send the pose again (poses travel on an unreliable channel)")
            try:
                frame = await self.next_frame(left)
            except TimedOutError:
                continue  # the loop's own message says which pose
            if frame.pose is not None and frame.pose.sequence >= pose.sequence:
                return frame

    def mark_presented(self, frame: Frame, at: float | None = None) -> None:
        """Tell the statistics when a frame taken from :attr:`frames` reached the screen."""
        self.stats.on_presented(frame, time.perf_counter() if at is None else at)

    # -- poses and input ----------------------------------------------------------------------
    def send_pose(self, pose: Pose | Sequence[View] | PoseRequest | None = None, *,
                  viewport: tuple[int, int] | None = None, fov_y: float = DEFAULT_FOV_Y,
                  near: float | None = None, far: float | None = None,
                  keyframe: bool = False) -> PoseMessage:
        """Ask for a frame rendered from ``pose`` (a camera pose with a ``fov_y`` field of view,
        per-eye views, or a whole :class:`~farview.input.pose.PoseRequest`); returns the message
        sent, with the sequence number and send time the connection gave it. ``viewport``,
        ``near`` and ``far`` default to the connection's (``viewport`` becomes the new one).
        It is sent :data:`POSE_COPIES` times (the host takes the first copy that arrives)."""
        if self._closed:
            raise self._lost()
        if isinstance(pose, PoseRequest):
            request = pose
        else:
            # (the connection's own viewport was checked when it was set)
            w, h = self.viewport if viewport is None else check_viewport(viewport)
            if pose is None or isinstance(pose, Pose):
                views: tuple[View, ...] = (View(pose or DEFAULT_POSE, Fov.symmetric(fov_y, w / h)),)
            elif isinstance(pose, Sequence) and pose and all(isinstance(v, View) for v in pose):
                views = tuple(pose)
            else:
                raise ProtocolError(f"send_pose takes a Pose, a list of one or two Views or a "
                                    f"PoseRequest, got {pose!r}; a position alone is "
                                    "Pose(position=(x, y, z))")
            request = PoseRequest(views, (w, h), self.near if near is None else near,
                                  self.far if far is None else far, keyframe)
        asks = self._jitter.keyframe_asks
        if asks != self._keyframe_asks_sent:
            # the stream waits for a keyframe it asked for (a PLI): the flag on this pose,
            # sent twice, asks again by another way (the host takes copies of one ask as one)
            self._keyframe_asks_sent = asks
            if not request.keyframe:
                request = dataclasses.replace(request, keyframe=True)
        msg = self._poses.stamp(request)  # (checks it all: nothing is kept from a bad one)
        self.viewport = request.viewport
        ch = self._channels["pose"]
        if ch.readyState == "open":
            data = msg.encode()
            for _ in range(POSE_COPIES):
                ch.send(data)
        return msg

    def send_input(self, event: InputEvent) -> None:
        ch = self._channels["input"]
        if ch.readyState == "open":
            ch.send(event.encode())

    def send_raw(self, label: str, data: bytes | str) -> None:
        """Send raw bytes on a channel (fuzzing and protocol tests)."""
        ch = self._channels[label]
        if ch.readyState == "open":
            ch.send(data)

    async def set_viewport(self, width: int, height: int) -> dict[str, Any]:
        """Ask the host to render at a new size; following poses carry it."""
        result: dict[str, Any] = await self.request("set_viewport", width=width, height=height)
        self.viewport = (result["width"], result["height"])
        return result

    # -- control ------------------------------------------------------------------------------
    async def request(self, method: str, timeout: float = 10.0, **params: Any) -> Any:
        """Call a control method on the host; raises :class:`RemoteError` if it refuses,
        :class:`TimedOutError` if it does not answer within ``timeout`` seconds (the request
        may still be carried out), :class:`ProtocolError` for parameters that cannot be sent."""
        if self._closed:
            raise self._lost()
        req_id = self._next_request_id
        data = wire.encode(wire.Request(req_id, method, params))  # (refused before it is pending)
        self._next_request_id += 1
        fut: asyncio.Future[Any] = self._loop.create_future()
        self._pending_requests[req_id] = fut
        try:
            self._channels["control"].send(data)
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise TimedOutError(f"host did not answer {method} within {timeout} s; it may "
                                "still carry it out") from None
        finally:
            self._pending_requests.pop(req_id, None)

    def _on_control(self, message: bytes | str) -> None:
        self._last_heard = time.monotonic()
        try:
            msg = wire.decode(message)
        except ProtocolError as exc:
            log.warning("dropping bad control message from host: %s", exc)
            return
        if isinstance(msg, wire.Event):
            self.events.append((msg.event, msg.data))
            if msg.event == "closing":
                # (after close() the host's answer read "host closed the connection: client
                # ended the connection")
                self._spawn(self._shutdown(self._client_closed or
                                           f"host closed the connection: {msg.data.get('reason', '')}"))
            if self._on_event is not None:
                self._on_event(msg.event, msg.data)
            return
        if msg.id is None:
            self._host_protocol_errors += 1
            level = logging.WARNING if self._host_protocol_errors == 1 else logging.DEBUG
            log.log(level, "host reported a protocol error (further ones are logged at debug): %s",
                    getattr(msg, "message", msg))
            return
        fut = self._pending_requests.get(msg.id)
        if fut is None or fut.done():
            return
        if isinstance(msg, wire.Result):
            fut.set_result(msg.result)
        elif isinstance(msg, wire.Error):
            fut.set_exception(RemoteError(msg.code, msg.message))

    def _ask_keyframe(self) -> None:
        if not self._closed and self._channels["control"].readyState == "open":
            self._channels["control"].send(wire.encode(wire.Request(0, "request_keyframe", {})))

    async def _heartbeat(self) -> None:
        while not self._closed:
            t0 = time.perf_counter()
            try:
                await self.request("ping", timeout=LIVENESS_TIMEOUT, t=t0)
                self.rtt_ms = (time.perf_counter() - t0) * 1000
                self._jitter.set_rtt(self.rtt_ms / 1000)  # how long a lost packet is waited for
            except (ConnectionLostError, TimedOutError):
                if not self._closed:
                    await self._shutdown("the render host stopped answering")
                return
            except RemoteError:
                pass
            await asyncio.sleep(max(0.0, HEARTBEAT_INTERVAL - (time.perf_counter() - t0)))

    def _spawn(self, coro: Any) -> None:
        """Run a callback's coroutine, keeping a reference until it is done."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _on_state(self) -> None:
        if self.pc.connectionState in ("failed", "closed") and not self._closed:
            self._spawn(self._shutdown(f"peer connection {self.pc.connectionState}"))

    # -- status and statistics ----------------------------------------------------------------
    @property
    def is_connected(self) -> bool:
        return not self._closed

    @property
    def connection_status(self) -> str:
        return "Disconnected" if self._closed else "Connected"

    @property
    def close_reason(self) -> str:
        return self._close_reason

    @property
    def ice_path(self) -> str | None:
        """How the media flows: ``"host-host"`` (directly), ``"relay-host"`` (through this
        client's TURN relay), ... (None before ICE completes)."""
        return ice_path(self.pc)

    @property
    def frames_unmatched(self) -> int:
        """Decoded frames dropped because their metadata never came."""
        return self._poses.unmatched

    def statistics(self) -> FrameStatistics:
        return self.stats.snapshot(rtt_ms=self.rtt_ms, skipped=self._jitter.frames_discarded,
                                   discarded=self.frames.discarded + self._poses.unmatched,
                                   bytes_received=self._receiver.bytes_received,
                                   recovered=self._jitter.frames_recovered)

    # -- closing ------------------------------------------------------------------------------
    async def _shutdown(self, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        self._close_reason = reason
        log.info("connection closed: %s", reason)
        self.frames.wake()
        for fut in self._pending_requests.values():
            if not fut.done():
                fut.set_exception(ConnectionLostError(reason))
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        await self.pc.close()

    async def close(self) -> None:
        """Disconnect; the host keeps the scene and is free for the next client."""
        if self._closed:
            return
        self._client_closed = "closed by the client"
        if self._location:
            await whep_disconnect(self._location, self._token, verify=self._verify)
        await self._shutdown(self._client_closed)

    async def __aenter__(self) -> RenderingConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def connect_to_host(url: str, token: str, *, viewport: tuple[int, int] = (1280, 720),
                          verify: Verify = True, timeout: float = 15.0,
                          mailbox: LatestMailbox[Frame] | None = None,
                          on_event: Callable[[str, dict[str, Any]], None] | None = None,
                          stock_receiver: bool = False,
                          relay_only: bool = False) -> RenderingConnection:
    """Connect straight to a render host's WHEP URL (``http://host:port/whep``).

    ``mailbox`` receives the decoded frames (default: the connection's own);
    ``stock_receiver`` uses aiortc's own receive path (a benchmark baseline, slower);
    ``relay_only`` offers only candidates on the TURN servers the service names, so media
    goes through one even where a direct path exists (to check a TURN deployment;
    :attr:`RenderingConnection.ice_path` then starts with ``relay``).
    """
    viewport = check_viewport(viewport)  # (a bad one was refused by the host once connected,
    # and the connection it had made held the session until the process ended)
    try:
        servers = await asyncio.wait_for(whep_ice_servers(url, token, verify=verify,
                                                          timeout=timeout), timeout)
    except (SignalingError, TimeoutError) as exc:
        why = (str(exc) or f"no answer within {timeout} s").replace(f"{url} did not answer: ", "")
        raise ConnectError(f"the signaling endpoint at {url} did not answer: {why}") from None
    if relay_only and not any(s.url.startswith(("turn:", "turns:")) for s in servers):
        raise ConnectError("relay only: the service names no TURN server to relay through; "
                           "start it with --ice-server turn:HOST:3478 --turn-secret-file FILE")
    conn = RenderingConnection(viewport=viewport, mailbox=mailbox, on_event=on_event,
                               stock_receiver=stock_receiver, ice_servers=servers,
                               relay_only=relay_only)
    try:
        await conn._connect(url, token, verify=verify, timeout=timeout)
    except BaseException:
        try:  # never a connection the caller cannot see holding the host
            await conn.close()
        except Exception:
            log.debug("could not close the connection that failed", exc_info=True)
        raise
    return conn


async def connect_session(session: Any, **kwargs: Any) -> RenderingConnection:
    """Connect to a Ready session (``RenderingSession.connect`` calls this)."""
    get_token = getattr(session, "access_token_async", None) or session.access_token
    token = get_token()
    if inspect.isawaitable(token):
        token = await token
    verify = kwargs.pop("verify", getattr(session, "verify", True))
    return await connect_to_host(session.whep_url, str(token), verify=verify, **kwargs)


__all__ = ["RenderingConnection", "connect_session", "connect_to_host"]
