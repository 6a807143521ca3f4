"""One client's live connection to the render host: peer, video track, data channels.

Lives on the host's event loop. Poses go to the render thread's latest-only slot; rendered
frames come back through ``call_soon_threadsafe`` and leave as metadata (``frames`` channel)
followed by the frame's packets (video track). A farview client that stops talking (no message
on any channel, including its 1 s ``ping`` heartbeat, for ``liveness_timeout`` seconds; a new
connection has :data:`SETUP_TIMEOUT` to open its first data channel), a client without
farview's ``control`` channel (a standard WHEP player) that sends no RTCP for
:data:`MEDIA_LIVENESS_TIMEOUT`, or one whose peer connection fails (ICE consent, DTLS) is
dropped, which frees the host for the next client; the scene stays. Only H.264 is answered,
whatever else an offer lists first. Malformed messages are counted, logged once per kind, reported once on ``control``,
and dropped: they never end the connection.

Two limits hold before a message is decoded; what they drop is counted, logged and reported
the same way (as bad messages: ``get_stats``' ``bad_messages``):

- size: a message over :data:`~farview.streaming.peer.MAX_CHANNEL_MESSAGE` is dropped while
  SCTP reassembles it (``streaming/_aiortc_patches.py``, patch 5), so it is never held whole;
- rate: each of ``pose``, ``input`` and ``control`` has a token bucket (:data:`RATE_LIMITS`);
  messages beyond it are dropped. A request among them is not run: it is answered at once with
  a ``RateLimited`` error (those answers are themselves held to the control limit; beyond it a
  dropped request gets no answer), so a caller, such as the client's heartbeat, is not left
  waiting.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import av
from aiortc import RTCPeerConnection, RTCSessionDescription

from farview.host.bad_messages import BadMessageCounter
from farview.host.render_loop import StreamSettings
from farview.input import control as wire
from farview.input.errors import ProtocolError
from farview.input.events import InputEvent
from farview.input.frame_meta import FrameMetadata
from farview.input.ice import announce_address
from farview.input.pose import PoseMessage
from farview.streaming._aiortc_patches import (
    enlarge_socket_buffers,
    limit_retransmissions,
    observe_rtcp_feedback,
    probe_frame_tails,
    reassembly_guard,
    route_keyframe_requests,
    rtp_packets_sent,
)
from farview.streaming.congestion import CongestionController
from farview.streaming.peer import MAX_CHANNEL_MESSAGE, create_peer_connection, h264_codecs
from farview.streaming.retransmit import RetransmitPolicy
from farview.streaming.track import PacketTrack
from farview.streaming.whep import check_offer

SEND_WAIT_S = 0.004
"""How long the render thread waits for a frame's packets to leave before it may start the
next frame."""

if TYPE_CHECKING:
    from farview.host.runtime import HostRuntime

log = logging.getLogger(__name__)

DEFAULT_LIVENESS_TIMEOUT = 3.0
MEDIA_LIVENESS_TIMEOUT = 10.0
"""A client without farview's control channel (a standard WHEP player) is dropped after this
long without RTCP from it (browsers send receiver reports about once a second)."""
DEFAULT_SETUP_TIMEOUT = 15.0
SETUP_TIMEOUT_ENV = "FARVIEW_SETUP_TIMEOUT"


def _setup_timeout() -> float:
    """:data:`SETUP_TIMEOUT`: ``FARVIEW_SETUP_TIMEOUT`` seconds, 1 to 300, when set."""
    text = os.environ.get(SETUP_TIMEOUT_ENV, "")
    if not text:
        return DEFAULT_SETUP_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 1.0 <= value <= 300.0:
        log.warning("%s=%r is not a number of seconds from 1 to 300; the host uses %.0f s",
                    SETUP_TIMEOUT_ENV, text[:40], DEFAULT_SETUP_TIMEOUT)
        return DEFAULT_SETUP_TIMEOUT
    return value


SETUP_TIMEOUT = _setup_timeout()
"""How long a new connection may take to open its first data channel (ICE, DTLS and SCTP set up;
over a lossy link a lost SCTP INIT alone costs aiortc's 3-s retransmission timer): the client
gives up at the same time (``client.connection``). Then the liveness timeout applies. A client
that got its answer and never connects holds the host this long."""


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: ``per_second`` messages on average, up to ``burst`` at once."""

    per_second: float
    burst: int


POSE_RATE_LIMIT = RateLimit(per_second=1000, burst=1000)
"""Poses a client may send. A headset sends 60-144 a second, a window one a frame; only the
latest pending pose is rendered, so more only cost the host decoding."""

INPUT_RATE_LIMIT = RateLimit(per_second=1000, burst=1000)
"""Input events a client may send; a 1000 Hz mouse stays within it."""

CONTROL_RATE_LIMIT = RateLimit(per_second=200, burst=400)
"""Control messages a client may send: requests (scene work on the host) and the heartbeat, one
a second. The client awaits its requests' answers, so it sends far fewer; the burst covers a
batch fired at once."""

FEEDBACK_RATE_LIMIT = RateLimit(per_second=100, burst=100)
"""``network_feedback`` events a client may send on the ``frames`` channel (ten a second)."""

RATE_LIMITS: Mapping[str, RateLimit] = {"pose": POSE_RATE_LIMIT, "input": INPUT_RATE_LIMIT,
                                       "control": CONTROL_RATE_LIMIT, "frames": FEEDBACK_RATE_LIMIT}
"""The limits per data channel, each a token bucket per connection."""


class TokenBucket:
    """``take()`` is True while the limit allows one more message now."""

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._tokens = float(limit.burst)
        self._last = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(float(self.limit.burst), self._tokens + (now - self._last) * self.limit.per_second)
        self._last = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


class HostConnection:
    def __init__(self, runtime: HostRuntime, pc: RTCPeerConnection, *,
                 on_closed: Callable[[HostConnection], None],
                 liveness_timeout: float = DEFAULT_LIVENESS_TIMEOUT,
                 rate_limits: Mapping[str, RateLimit] = RATE_LIMITS) -> None:
        self.runtime = runtime
        self.pc = pc
        self._on_closed = on_closed
        self._liveness_timeout = liveness_timeout
        self._loop = asyncio.get_running_loop()
        self.track = PacketTrack(on_backlog=runtime.render_loop.request_keyframe)
        self.channels: dict[str, Any] = {}
        self.bad = BadMessageCounter()
        self._buckets = {label: TokenBucket(limit) for label, limit in rate_limits.items()}
        self._refusals = TokenBucket(rate_limits.get("control", CONTROL_RATE_LIMIT))
        """Answers to requests dropped for the rate limit are held to the control limit too."""
        self.last_heard = time.monotonic()
        self._heard = False
        self.last_rtcp: float | None = None
        """When the client's RTCP (a receiver report, NACK or REMB) last arrived."""
        """A message has arrived: the connection is set up, and liveness counts from here."""
        self._closed = False
        self._watchdog: asyncio.Task[None] | None = None
        self._background: set[asyncio.Future[Any]] = set()
        self.input_events = 0
        self.frames_sent = 0
        self.bytes_sent = 0
        self.congestion: CongestionController | None = None
        """The stream's congestion control (None: fixed bit rate, or the stock baseline)."""
        self._sender: Any = None
        self.retransmit = RetransmitPolicy()
        self._feedback_number = -1
        """The number of the last ``network_feedback`` report taken."""
        self.feedback_repeated = 0
        """``network_feedback`` reports dropped as copies of one taken (or older than it)."""
        self.keyframes_for_lost_packets = 0
        """Keyframes sent because the client still missed packets no longer resent."""
        self.tail_probes = 0
        """Frames' last packets sent again as nothing followed them (streaming patch 10)."""
        self._stuck_timer: asyncio.TimerHandle | None = None
        self._packets_counted = 0
        self._bytes_counted = 0
        self._applied_target: int | None = None
        """The target the encoder was last given."""

    @classmethod
    async def accept(cls, runtime: HostRuntime, offer: RTCSessionDescription, *,
                     on_closed: Callable[[HostConnection], None],
                     settings: StreamSettings) -> tuple[RTCSessionDescription, HostConnection]:
        check_offer(offer.sdp)
        pc = create_peer_connection()
        conn = cls(runtime, pc, on_closed=on_closed)
        pc.on("datachannel", conn._on_datachannel)
        pc.on("connectionstatechange", conn._on_state)
        try:
            # the video transceiver exists before the offer is applied, so that its codec
            # preferences shape the answer: H.264 only, whatever else the offer lists (browsers
            # list VP8 first, and aiortc would send the H.264 packets under VP8's payload type)
            video = pc.addTransceiver("video", direction="sendonly")
            video.setCodecPreferences(h264_codecs())
            await pc.setRemoteDescription(offer)
            if pc.sctp is not None:  # the offer has data channels: report what patch 5 drops
                reassembly_guard(pc.sctp).on_drop = conn._on_reassembly_drop
            if video.mid is None:
                raise ValueError("the offer has no video section; add a recvonly video transceiver")
            sender = pc.addTrack(conn.track)
            route_keyframe_requests(sender, conn._on_keyframe_request)
            conn._sender = sender
            if not settings.stock_aiortc:
                limit_retransmissions(sender, conn.retransmit)
                probe_frame_tails(sender, conn._on_tail_probe)
            if not settings.stock_aiortc:
                # RTCP feeds congestion control, and is how a client without farview's
                # control channel (a standard WHEP player) shows it is alive
                observe_rtcp_feedback(sender, on_remb=conn._on_remb, on_nack=conn._on_nack,
                                      on_report=conn._on_report)
                if settings.congestion_control:
                    conn.congestion = CongestionController(settings.limits)
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
        except Exception as exc:
            await pc.close()
            if isinstance(exc, ValueError):
                raise
            raise ValueError(str(exc)) from exc
        runtime.render_loop.start_stream(conn._frame_from_render_thread, settings)
        conn._watchdog = asyncio.ensure_future(conn._watch())
        local = pc.localDescription
        announced = runtime.config.media.announced
        if announced:  # behind a 1:1 NAT: offer the public address too
            local = RTCSessionDescription(sdp=announce_address(local.sdp, announced), type=local.type)
        return local, conn

    # -- WhepConnection protocol --------------------------------------------------------------
    @property
    def is_live(self) -> bool:
        return not self._closed

    async def close(self, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        log.info("client connection closed: %s", reason)
        if self._stuck_timer is not None:
            self._stuck_timer.cancel()
            self._stuck_timer = None
        self.runtime.render_loop.stop_stream()
        if self._watchdog is not None and self._watchdog is not asyncio.current_task():
            self._watchdog.cancel()
        self.send_event("closing", {"reason": reason})
        self.track.stop()
        try:
            await self.pc.close()
        except Exception:
            log.debug("closing the peer connection failed", exc_info=True)
        self._on_closed(self)

    # -- frames out ---------------------------------------------------------------------------
    def _frame_from_render_thread(self, packets: list[av.Packet[Any]], meta: FrameMetadata) -> None:
        # Finish this frame before starting the next: the render thread waits (GIL released)
        # until aiortc has sent the frame's RTP packets, at most SEND_WAIT_S. Otherwise, when a
        # pose is already waiting, the next render competes with the sending for the two cores
        # and the GIL, and the frame in flight arrives later. 4 A/B bench pairs at 720p60:
        # p95 39.6-43.2 vs 42.1-46.0 ms and p99 44.0-47.6 vs 45.5-49.1 ms (better in 4 of 4
        # each), p50 better in 2 of 4; 1080p neutral (2 pairs).
        # The stock-aiortc baseline (raw frames that aiortc encodes at its own pace) is left
        # as stock aiortc is fed: without this wait.
        if self.runtime.stream_settings.stock_aiortc:
            self._loop.call_soon_threadsafe(self._deliver, packets, meta)
            return
        sent = threading.Event()
        self._loop.call_soon_threadsafe(self._deliver, packets, meta, sent.set)
        sent.wait(SEND_WAIT_S)

    def _deliver(self, packets: list[av.Packet[Any]], meta: FrameMetadata,
                 on_sent: Callable[[], None] | None = None) -> None:
        if self._closed:
            if on_sent is not None:
                on_sent()
            return
        # metadata first: the client shows a frame only once both have arrived, and the video
        # (decoded after its last packet) is the later of the two this way. Video first made
        # the metadata the later one: +0.5 ms p50, +2-3 ms p95 from decoded to shown (3 of 3
        # A/B bench pairs).
        # And again after the video: the frames channel does not retransmit, and the client
        # drops a picture whose metadata never comes (at 5 % random loss, one frame in twenty).
        # Each message is a packet of its own (aiortc does not bundle), lost independently.
        frames = self.channels.get("frames")
        if frames is not None and frames.readyState != "open":
            frames = None
        data = meta.encode()
        if frames is not None:
            frames.send(data)
        for i, p in enumerate(packets):
            self.track.push(p, on_sent if i == len(packets) - 1 else None)
        if frames is not None:
            frames.send(data)
        if not packets and on_sent is not None:
            on_sent()
        self.frames_sent += 1
        self.bytes_sent += meta.size_bytes
        self._feedback(lambda cc, now: cc.tick(now))  # growth needs no feedback event: each frame

    # -- congestion control (patch 7's callbacks, on the event loop) ---------------------------
    def _count_sent(self, now: float) -> None:
        cc = self.congestion
        if cc is None or self._sender is None:
            return
        total = rtp_packets_sent(self._sender)
        if total > self._packets_counted or self.bytes_sent > self._bytes_counted:
            cc.on_sent(max(0, total - self._packets_counted), self.bytes_sent - self._bytes_counted, now)
            self._packets_counted = total
            self._bytes_counted = self.bytes_sent

    def reconfigure(self, settings: StreamSettings) -> None:
        """New stream settings (``configure_stream``): congestion control restarts within the
        new limits, from the current target."""
        if not settings.congestion_control or settings.stock_aiortc:
            self.congestion = None
            return
        start = self.congestion.target if self.congestion is not None else None
        if start is not None:
            start = max(settings.min_bitrate, min(settings.max_bitrate, start))
        self.congestion = CongestionController(settings.limits, start=start)
        self._applied_target = None
        self._apply_target()

    def _apply_target(self) -> None:
        """Hand a changed target to the encoder and the resend budget (and log it)."""
        cc = self.congestion
        if cc is None or self._closed or cc.target == self._applied_target:
            return
        if log.isEnabledFor(logging.DEBUG) or (self._applied_target or 0) > cc.target:
            sent = cc.sent_rate(time.monotonic())
            level = logging.INFO if (self._applied_target or 0) > cc.target else logging.DEBUG
            log.log(level, "video target %.2f Mbit/s (%s; sending %s, REMB %s, loss %.3f: NACKs %.3f, "
                    "reports %.3f)", cc.target / 1e6, cc.reason,
                    "?" if sent is None else f"{sent / 1e6:.2f} Mbit/s", cc.remb, cc.loss, cc.nack_loss,
                    cc.report_loss)
        self._applied_target = cc.target
        self.runtime.render_loop.set_target_bitrate(cc.target)
        self.retransmit.set_budget(cc.budget_bitrate)

    def _feedback(self, signal: Callable[[CongestionController, float], None]) -> None:
        """Pass one feedback signal to congestion control (what was sent first), then apply."""
        if self.congestion is not None:
            now = time.monotonic()
            self._count_sent(now)
            signal(self.congestion, now)
            self._apply_target()

    def _on_remb(self, bitrate: int) -> None:
        self.last_rtcp = time.monotonic()
        def signal(cc: CongestionController, now: float) -> None:
            cc.on_remb(bitrate, now)
            cc.tick(now)
        self._feedback(signal)

    def _on_nack(self, lost: list[int]) -> None:
        self.last_rtcp = time.monotonic()
        self._feedback(lambda cc, now: cc.on_nack(lost, now))
        self._check_stuck()

    def _on_tail_probe(self) -> None:
        self.tail_probes += 1

    # -- keyframes --------------------------------------------------------------------------------
    def _on_keyframe_request(self) -> None:
        """The client asked for a keyframe (PLI or FIR)."""
        self.retransmit.keyframe_requested(time.monotonic())
        self.runtime.render_loop.request_keyframe()

    def _check_stuck(self) -> None:
        """A keyframe for a client that still misses packets the host no longer resends, when
        :meth:`RetransmitPolicy.keyframe_due` says (a browser would wait 3 s to ask)."""
        due = self.retransmit.keyframe_due()
        if due is None or self._closed or self._stuck_timer is not None:
            return
        delay = due - time.monotonic()
        if delay > 0:
            self._stuck_timer = self._loop.call_later(delay, self._stuck_timer_fired)
            return
        self.keyframes_for_lost_packets += 1
        log.info("the client still misses packets no longer resent: sending a keyframe")
        self._on_keyframe_request()  # as if it had asked

    def _stuck_timer_fired(self) -> None:
        self._stuck_timer = None
        self._check_stuck()

    def _on_network_feedback(self, data: Any, channel: str = "control") -> None:
        """The client's ``network_feedback`` event: ``{"queue_ms": how long its frames waited in
        a queue on the network lately, "received_kbps": what it received lately (optional),
        "n": the report's number (optional)}``, congestion control's delay signal. Clients send
        each numbered report twice (the ``frames`` channel does not retransmit): the first copy
        to arrive counts, and a report older than one already taken is dropped too."""
        queue_ms = data.get("queue_ms") if isinstance(data, dict) else None
        if isinstance(queue_ms, bool) or not isinstance(queue_ms, int | float) or not 0 <= queue_ms <= 60_000:
            self._bad(channel, f"network_feedback needs queue_ms, a number of milliseconds 0..60000, "
                               f"got {queue_ms!r}")
            return
        kbps = data.get("received_kbps") if isinstance(data, dict) else None
        if kbps is not None and (isinstance(kbps, bool) or not isinstance(kbps, int | float)
                                 or not 0 <= kbps <= 10_000_000):
            self._bad(channel, "network_feedback's received_kbps must be a number of kbit/s "
                               f"0..10000000, got {kbps!r}")
            return
        number = data.get("n")
        if number is not None and (isinstance(number, bool) or not isinstance(number, int)
                                   or not 0 <= number < 2 ** 53):
            self._bad(channel, f"network_feedback's n must be the report's number, an integer 0..2**53, "
                               f"got {number!r}")
            return
        if number is not None:
            if number <= self._feedback_number:  # a copy (or one overtaken): the first counts
                self.feedback_repeated += 1
                return
            self._feedback_number = number
        received = None if kbps is None else kbps * 1000
        self.runtime.render_loop.set_network_queue(queue_ms / 1000)
        self._feedback(lambda cc, now: cc.on_queue_delay(queue_ms / 1000, now, received))

    def _on_report(self, fraction_lost: float, rtt: float | None) -> None:
        self.last_rtcp = time.monotonic()
        self._feedback(lambda cc, now: cc.on_report(fraction_lost, rtt, now))

    # -- messages in --------------------------------------------------------------------------
    def _on_datachannel(self, channel: Any) -> None:
        label = channel.label
        self.channels[label] = channel
        self.last_heard = time.monotonic()  # the client opened it: set up, and alive
        self._heard = True
        if label == "frames":
            enlarge_socket_buffers(self.pc)
        if label == "pose":
            self.runtime.render_loop.client_sends_poses()  # no passive home view for it
        handler = {"pose": self._on_pose, "input": self._on_input, "control": self._on_control,
                   "frames": self._on_frames_message}.get(label)
        if handler is None:
            self.bad.record("datachannel", f"unknown channel label {label!r}")
            return

        bucket = self._buckets.get(label)

        def on_message(message: bytes | str) -> None:
            self.last_heard = time.monotonic()
            self._heard = True
            if bucket is not None and not bucket.take():
                self._rate_limited(label, bucket.limit, message)
                return
            if len(message) > MAX_CHANNEL_MESSAGE:
                self._bad(label, f"message of {len(message)} bytes is over the {MAX_CHANNEL_MESSAGE}-byte limit")
                return
            handler(message)

        channel.on("message", on_message)

    def _bad(self, channel: str, reason: str) -> None:
        if self.bad.record(channel, reason):
            self.send_event("bad_message", {"channel": channel, "message": reason})

    def _rate_limited(self, channel: str, limit: RateLimit, message: bytes | str) -> None:
        """Count a message over ``channel``'s rate limit; refuse it if it is a request."""
        self._bad(channel, f"message dropped: over the rate limit of {limit.per_second:g} messages/s "
                           f"(burst {limit.burst})")
        if channel != "control":
            return
        maybe_request = '"method"' in message if isinstance(message, str) else b'"method"' in message
        if not maybe_request:
            return  # nobody waits for an answer
        try:
            msg = wire.decode(message)
        except ProtocolError:
            return
        if isinstance(msg, wire.Request) and self._refusals.take():
            self._send_control(wire.Error(msg.id, "RateLimited",
                                          f"over the control channel's limit of {limit.per_second:g} messages/s "
                                          f"(burst {limit.burst}); {msg.method} was not run, try again later"))

    def _on_reassembly_drop(self, stream_id: int, reason: str) -> None:
        """Patch 5 dropped a message (or a fragment) arriving on SCTP stream ``stream_id``."""
        label = next((label for label, ch in self.channels.items() if ch.id == stream_id), "datachannel")
        self._bad(label, reason)

    def _on_pose(self, message: bytes | str) -> None:
        if isinstance(message, str):
            self._bad("pose", "pose messages are binary, got text")
            return
        try:
            msg = PoseMessage.decode(message)
        except ProtocolError as exc:
            self._bad("pose", str(exc))
            return
        self.runtime.render_loop.submit_pose(msg)

    def _on_input(self, message: bytes | str) -> None:
        if isinstance(message, str):
            self._bad("input", "input events are binary, got text")
            return
        try:
            event = InputEvent.decode(message)
        except ProtocolError as exc:
            self._bad("input", str(exc))
            return
        self.input_events += 1
        self.runtime.on_input(event)

    def _on_control(self, message: bytes | str) -> None:
        try:
            msg = wire.decode(message)
        except ProtocolError as exc:
            self._bad("control", str(exc))
            self._send_control(wire.Error(None, "ProtocolError", str(exc)))
            return
        if isinstance(msg, wire.Request):
            self._spawn(self._answer(msg))
        elif isinstance(msg, wire.Event) and msg.event == "ping":
            pass  # heartbeat: last_heard is already updated
        elif isinstance(msg, wire.Event) and msg.event == "network_feedback":
            self._on_network_feedback(msg.data)
        else:
            self._bad("control", f"unexpected {type(msg).__name__} from the client")

    def _on_frames_message(self, message: bytes | str) -> None:
        """The client's ``network_feedback`` events on the unreliable ``frames`` channel (on the
        reliable, ordered ``control`` channel a lost one held every later one back: under 50 %
        loss they arrived a second late, and the loss was taken for congestion). Nothing else
        goes this way."""
        try:
            msg = wire.decode(message)
        except ProtocolError as exc:
            self._bad("frames", str(exc))
            return
        if isinstance(msg, wire.Event) and msg.event == "network_feedback":
            self._on_network_feedback(msg.data, "frames")
        else:
            self._bad("frames", "the client sends only network_feedback events on the frames channel, "
                                f"got {type(msg).__name__}")

    async def _answer(self, request: wire.Request) -> None:
        reply = await self.runtime.control.dispatch(request)
        self._send_control(reply)

    def _send_control(self, msg: wire.ControlMessage) -> None:
        channel = self.channels.get("control")
        if channel is None or channel.readyState != "open":
            return
        try:
            channel.send(wire.encode(msg))
        except ProtocolError as exc:  # an oversized result: tell the client instead
            if isinstance(msg, wire.Result):
                channel.send(wire.encode(wire.Error(msg.id, "ResultTooLarge", str(exc))))

    def send_event(self, event: str, data: dict[str, Any]) -> None:
        self._send_control(wire.Event(event, data))

    # -- liveness -----------------------------------------------------------------------------
    def _spawn(self, coro: Any) -> None:
        """Run a callback's coroutine, keeping a reference until it is done."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _on_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected":
            self.runtime.render_loop.media_connected()
        if state in ("failed", "closed"):
            self._spawn(self.close(f"peer connection {state}"))

    async def _watch(self) -> None:
        started = time.monotonic()
        while not self._closed:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            if "control" in self.channels:
                # farview's client: its 1 s heartbeat (or any message) on the data channels
                silent = now - self.last_heard
                if silent > (self._liveness_timeout if self._heard else SETUP_TIMEOUT):
                    await self.close(f"client silent for {silent:.1f} s (a client sends a "
                                     "heartbeat every second: was its event loop blocked? run "
                                     "blocking calls with asyncio.to_thread)")
                    return
            elif self.last_rtcp is None:
                # a client without farview's control channel (a standard WHEP player), or
                # one that got its answer and vanished: set up once its first RTCP comes
                if now - started > SETUP_TIMEOUT:
                    await self.close(f"no RTCP from the client {now - started:.1f} s after "
                                     "its offer: it never set up its connection")
                    return
            elif now - self.last_rtcp > MEDIA_LIVENESS_TIMEOUT:
                # a standard WHEP player: its RTCP shows it is alive; ICE consent and DTLS
                # failures close it through the peer connection's state
                await self.close(f"no RTCP from the client for {now - self.last_rtcp:.1f} s")
                return
