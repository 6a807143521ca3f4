"""Every workaround of an aiortc / aioice internal, in one place.

Pinned to the versions below (``pyproject.toml`` pins them exactly); ``tests/streaming/
test_aiortc_patches.py`` fails if any internal we rely on changes. What and why:

1. **UDP receive buffer** (aioice ``turn.UDP_SOCKET_BUFFER_SIZE``, 256 KiB): 1080p keyframes
   overflow it and the kernel drops hundreds of packets. Raised to 4 MiB before any connection.
2. **Loopback-only machines** (aioice ``ice.get_host_addresses`` skips 127.0.0.1): when a machine
   has no other address, ICE would gather no host candidate at all. We add 127.0.0.1 then.
3. **Keyframe requests with pre-encoded packets** (``RTCRtpSender._send_keyframe``): aiortc only
   sets a flag its own encoder reads; with ``av.Packet``s nobody honours PLI/FIR. We route the
   call to our encoder.
4. **Release frames on the RTP marker bit** (``RTCRtpReceiver._RTCRtpReceiver__jitter_buffer``):
   aiortc's video jitter buffer hands frame N over only when frame N+1's first packet arrives
   (one frame interval of latency) and feeds an unbounded decode queue. We swap in
   :class:`~farview.streaming.assembler.FrameAssembler`, which completes a frame on its marker
   bit (waiting a round trip for a NACKed packet) and passes it to our own decoder; aiortc's
   decoder thread then idles.
5. **Bounded SCTP reassembly** (``RTCSctpTransport._get_inbound_stream`` and aiortc's
   ``InboundStream``): aiortc buffers every fragment of an inbound data-channel message until its
   last one arrives, with no size cap, so a peer could make us hold any amount before the
   channel's own size check ever saw the message. Every inbound stream is a
   :class:`BoundedInboundStream`. A message whose fragments already exceed the cap
   (:data:`MAX_REASSEMBLED_MESSAGE` bytes, and as many fragments as that size cut into
   :data:`MIN_AVERAGE_FRAGMENT`-byte pieces) is dropped while it is reassembled: its buffered
   fragments are freed, its later fragments discarded up to its last one, an ordered stream
   steps over its sequence number, and it is counted once (:class:`ReassemblyGuard`, one per
   transport; its ``on_drop`` tells the owner: the host reports it as a bad message). A stream
   also never holds more than :data:`MAX_STREAM_BUFFER` bytes of incomplete or waiting
   messages. What is freed goes back to aiortc's advertised receive window. The connection
   stays up; later messages arrive.
6. **Media addresses and ports** (aioice ``ice.get_host_addresses`` and the
   ``loop.create_datagram_endpoint(local_addr=(address, 0))`` of
   ``Connection.get_component_candidates``): aioice gathers on every interface and binds
   ephemeral ports. :func:`set_media_network` (a render host's ``--media-address`` /
   ``--media-ports``) keeps only the given addresses, and binds host candidates to the first
   free port of the range: while aioice gathers, a context variable tells the patched
   ``create_datagram_endpoint`` of asyncio's base loop to try the range's ports in turn.

7. **Congestion feedback with pre-encoded packets** (``RTCRtpSender._handle_rtcp_packet`` and
   its private ``__lsr``, ``__lsr_time`` and ``__packet_count``): aiortc hands a REMB to its own
   encoder's ``target_bitrate`` and keeps NACKs and receiver reports to itself. :func:`observe_rtcp_feedback`
   passes all three to the host's :class:`~farview.streaming.congestion.CongestionController`
   after aiortc has handled them (retransmission and RTT included).
8. **Retransmissions** (the NACK branch of ``RTCRtpSender._handle_rtcp_packet``): aiortc resends
   every number of every NACK, and its receiver repeats every still-missing number in each NACK,
   so on a congested link the same lost packets go out again and again. :func:`limit_retransmissions`
   hands aiortc only what :class:`~farview.streaming.retransmit.RetransmitPolicy` selects.

9. **DTLS cipher suites** (``RTCCertificate._create_ssl_context``): aiortc offers ECDSA suites
   only. Where it is the DTLS client (the host answers an offer's ``actpass`` with ``active``,
   as RFC 5763 recommends), a peer whose DTLS server holds an RSA certificate finds no shared
   cipher and the connection fails: GStreamer's ``webrtcbin`` 1.22 (Debian 12), a standard WHEP
   player, never played a frame (``no shared cipher``). :data:`DTLS_CIPHERS` adds the same
   suites with RSA authentication after the ECDSA ones; aiortc's own certificate stays ECDSA.
10. **Frame tail probes** (``RTCRtpSender``'s private ``__rtp_history`` and
   ``__rtp_header_extensions_map``): a receiver sees a lost packet when a later one arrives.
   When the camera stops, the last frame's last packets have no later one: lost, the frame
   stays incomplete, and Chromium shows the frame before it until it asks for a keyframe
   itself, 3 s on (a web viewer over a link losing 5 %: 1 stop in 40 took 2.6 s). farview's own
   client NACKs the number after such a tail (``streaming/assembler.py``); a browser does not.
   :func:`probe_frame_tails` sends a frame's last packet again, once, when no packet has
   followed it for :data:`TAIL_PROBE_S`: lost before, it completes the frame; there, it is a
   duplicate the receiver drops; either way its number shows any gap before it (it is sent
   as itself, as when it first went, not wrapped as a retransmission).

Relied on without a patch: ``RTCRtpSender``'s RTP task sends every RTP packet of one
``track.recv()`` result before it calls ``recv()`` again. :class:`streaming.track.PacketTrack`
reports a frame as sent at that next call, and the host's render thread waits for it before
the next frame (``host/connection.py``). And ``RTCSctpTransport._send_chunk`` puts each DATA
chunk in an SCTP packet of its own (no bundling): a message sent twice travels in two UDP
packets, lost independently, which the client's pose copies and the host's repeated frame
metadata count on.
"""

from __future__ import annotations

import asyncio
import asyncio.base_events
import bisect
import contextvars
import copy
import logging
import socket
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aioice
import aioice.ice
import aioice.turn
import aiortc
from aiortc.rtcdtlstransport import RTCCertificate
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtcsctptransport import (
    SCTP_DATA_FIRST_FRAG,
    SCTP_DATA_LAST_FRAG,
    SCTP_DATA_UNORDERED,
    DataChunk,
    InboundStream,
    RTCSctpTransport,
    tsn_minus_one,
    tsn_plus_one,
)
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    unpack_remb_fci,
)
from aiortc.utils import uint16_add, uint16_gte, uint32_gt

from farview.streaming.assembler import FrameAssembler
from farview.streaming.retransmit import RetransmitPolicy

log = logging.getLogger(__name__)

PINNED_AIORTC = "1.16.0"
PINNED_AIOICE = "0.13.0"
UDP_RECEIVE_BUFFER = 4 * 1024 * 1024

_applied = False


def check_versions() -> None:
    """Refuse to run on aiortc/aioice versions these workarounds were not written for."""
    if aiortc.__version__ != PINNED_AIORTC or aioice.__version__ != PINNED_AIOICE:
        raise RuntimeError(
            f"farview's streaming workarounds are written for aiortc {PINNED_AIORTC} and aioice "
            f"{PINNED_AIOICE}, found {aiortc.__version__} / {aioice.__version__}; "
            "install the versions pinned in pyproject.toml"
        )


def apply_global_patches() -> None:
    """Patches 1, 2, 5 and 9. Idempotent; call before creating any RTCPeerConnection."""
    global _applied
    if _applied:
        return
    check_versions()
    aioice.turn.UDP_SOCKET_BUFFER_SIZE = UDP_RECEIVE_BUFFER
    original = aioice.ice.get_host_addresses

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        addresses: list[str] = original(use_ipv4, use_ipv6)
        if _media_addresses:
            addresses = [a for a in _media_addresses if a in addresses or a == "127.0.0.1"]
            if not addresses:
                log.warning("none of the media addresses %s is on this machine",
                            ", ".join(_media_addresses))
            return addresses
        if not addresses and use_ipv4:
            addresses = ["127.0.0.1"]
        return addresses

    aioice.ice.get_host_addresses = get_host_addresses
    RTCSctpTransport._get_inbound_stream = _get_bounded_inbound_stream  # type: ignore[method-assign]
    _patch_dtls_ciphers()
    _applied = True
    rmem_max = _read_int("/proc/sys/net/core/rmem_max")
    if rmem_max is not None and rmem_max < UDP_RECEIVE_BUFFER:
        log.warning(
            "net.core.rmem_max is %d bytes; UDP receive buffers stay below %d and large keyframes "
            "may be dropped (raise it with: sysctl -w net.core.rmem_max=%d)",
            rmem_max, UDP_RECEIVE_BUFFER, UDP_RECEIVE_BUFFER,
        )


AIORTC_DTLS_CIPHERS = (b"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:"
                      b"ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA")
"""aiortc 1.16's own list (patch 9; its test checks that aiortc still sets exactly this)."""
DTLS_CIPHERS = AIORTC_DTLS_CIPHERS + (b":ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305:"
                                      b"ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA")
"""Patch 9: aiortc's suites, then the same with RSA authentication (a peer's RSA certificate)."""


AIORTC_CREATE_SSL_CONTEXT = RTCCertificate._create_ssl_context
"""aiortc's own, which patch 9 wraps."""


def _patch_dtls_ciphers() -> None:
    original = AIORTC_CREATE_SSL_CONTEXT

    def create_ssl_context(self: RTCCertificate, srtp_profiles: list[Any]) -> Any:
        ctx = original(self, srtp_profiles)
        ctx.set_cipher_list(DTLS_CIPHERS)
        return ctx

    RTCCertificate._create_ssl_context = create_ssl_context  # type: ignore[method-assign]


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def route_keyframe_requests(sender: RTCRtpSender, on_request: Callable[[], None]) -> None:
    """Patch 3: call ``on_request`` when the remote asks for a keyframe (PLI or FIR)."""
    if not hasattr(RTCRtpSender, "_send_keyframe"):
        raise RuntimeError("aiortc RTCRtpSender._send_keyframe is gone; update _aiortc_patches")
    original = sender._send_keyframe

    def send_keyframe() -> None:
        original()
        on_request()

    sender._send_keyframe = send_keyframe  # type: ignore[method-assign]


def observe_rtcp_feedback(sender: RTCRtpSender, *, on_remb: Callable[[int], None],
                          on_nack: Callable[[list[int]], None],
                          on_report: Callable[[float, float | None], None]) -> None:
    """Patch 7: after aiortc has handled each RTCP packet for ``sender``, pass congestion
    feedback on: REMB estimates naming its SSRC (``on_remb(bit/s)``), NACKed sequence numbers
    (``on_nack``), and receiver reports on its stream (``on_report(fraction lost, RTT in s or
    None)``; the RTT of this very report, from aiortc's private ``__lsr``/``__lsr_time``, as
    aiortc computes it before smoothing). A callback's error is logged, never raised into
    aiortc."""
    if not hasattr(sender, "_handle_rtcp_packet") or not hasattr(sender, "_RTCRtpSender__rtt"):
        raise RuntimeError("aiortc RTCRtpSender's RTCP handling changed; update _aiortc_patches")
    original = sender._handle_rtcp_packet

    async def handle(packet: Any) -> None:
        samples: list[float | None] = []
        if isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
            # the report's own round trip, as aiortc computes it before smoothing it away
            lsr = getattr(sender, "_RTCRtpSender__lsr", None)
            lsr_time = getattr(sender, "_RTCRtpSender__lsr_time", None)
            samples = [time.time() - lsr_time - r.dlsr / 65536
                       if lsr is not None and lsr_time is not None and r.lsr == lsr and r.dlsr else None
                       for r in packet.reports]
        await original(packet)
        try:
            if isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
                for report, rtt in zip(packet.reports, samples, strict=True):
                    if report.ssrc == sender._ssrc:
                        on_report(report.fraction_lost / 256, rtt)
            elif isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
                on_nack(list(packet.lost))
            elif isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
                try:
                    bitrate, ssrcs = unpack_remb_fci(packet.fci)
                except ValueError:
                    return
                if sender._ssrc in ssrcs:
                    on_remb(int(bitrate))
        except Exception:
            log.exception("congestion feedback handling failed")

    sender._handle_rtcp_packet = handle  # type: ignore[method-assign]


def limit_retransmissions(sender: RTCRtpSender, policy: RetransmitPolicy) -> None:
    """Patch 8: aiortc's sender retransmits only the NACKed packets ``policy`` selects (see
    ``streaming/retransmit.py``); the rest of each NACK is dropped before aiortc sees it."""
    if not hasattr(sender, "_handle_rtcp_packet") or not hasattr(sender, "_RTCRtpSender__rtt"):
        raise RuntimeError("aiortc RTCRtpSender's RTCP handling changed; update _aiortc_patches")
    original = sender._handle_rtcp_packet

    async def handle(packet: Any) -> None:
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            keep = policy.select(list(packet.lost), time.monotonic(), getattr(sender, "_RTCRtpSender__rtt", None))
            if len(keep) != len(packet.lost):
                packet = copy.copy(packet)
                packet.lost = keep
        await original(packet)

    sender._handle_rtcp_packet = handle  # type: ignore[method-assign]


TAIL_PROBE_S = 0.1
"""How long after a frame's last packet, with nothing sent since, it is sent again (patch 10):
longer than the time between frames while the camera moves (at 10 frames a second and more
no probe goes out), far shorter than Chromium's 3-s wait."""


def probe_frame_tails(sender: RTCRtpSender, on_probe: Callable[[], None]) -> None:
    """Patch 10: send each frame's last RTP packet again when nothing followed it for
    :data:`TAIL_PROBE_S` (``on_probe`` is told each time)."""
    history = "_RTCRtpSender__rtp_history"
    extensions = "_RTCRtpSender__rtp_header_extensions_map"
    if not isinstance(getattr(sender, history, None), dict) or not hasattr(sender, extensions):
        raise RuntimeError("aiortc RTCRtpSender's RTP history changed; update _aiortc_patches")
    loop = asyncio.get_running_loop()
    timer: list[asyncio.TimerHandle | None] = [None]
    sending: set[asyncio.Future[Any]] = set()

    def sent(task: asyncio.Future[Any]) -> None:
        sending.discard(task)
        if not task.cancelled():
            task.exception()  # (the connection closed meanwhile: nothing to send on)

    def probe(packet: Any) -> None:
        timer[0] = None
        transport = sender.transport
        if transport is None:
            return
        task = asyncio.ensure_future(transport._send_rtp(packet.serialize(getattr(sender, extensions))))
        sending.add(task)
        task.add_done_callback(sent)
        on_probe()

    class Watched(dict):  # type: ignore[type-arg]
        """aiortc's history, told each packet as the RTP task sends it."""

        def __setitem__(self, key: int, packet: Any) -> None:
            super().__setitem__(key, packet)
            if timer[0] is not None:
                timer[0].cancel()
                timer[0] = None
            if packet.marker:
                timer[0] = loop.call_later(TAIL_PROBE_S, probe, packet)

    setattr(sender, history, Watched(getattr(sender, history)))


def rtp_packets_sent(sender: RTCRtpSender) -> int:
    """Patch 7: how many RTP packets ``sender`` has sent (aiortc's private counter)."""
    return int(getattr(sender, "_RTCRtpSender__packet_count", 0))


def install_marker_receiver(receiver: RTCRtpReceiver, assembler: FrameAssembler) -> FrameAssembler:
    """Patch 4: swap the receiver's video jitter buffer for ``assembler``, and let it repeat
    NACKs through the receiver's ``_send_rtcp_nack``."""
    attr = "_RTCRtpReceiver__jitter_buffer"
    if not hasattr(receiver, attr):
        raise RuntimeError("aiortc RTCRtpReceiver has no private jitter buffer; update _aiortc_patches")
    setattr(receiver, attr, assembler)
    send = getattr(receiver, "_send_rtcp_nack", None)
    if send is None:
        raise RuntimeError("aiortc RTCRtpReceiver._send_rtcp_nack is gone; update _aiortc_patches")
    pending: set[asyncio.Future[Any]] = set()

    def send_nack(lost: list[int]) -> None:
        if assembler.ssrc is None:
            return
        task = asyncio.ensure_future(send(assembler.ssrc, lost))
        pending.add(task)
        task.add_done_callback(pending.discard)

    assembler.send_nack = send_nack
    return assembler


def enlarge_socket_buffers(pc: Any, size: int = UDP_RECEIVE_BUFFER) -> None:
    """Best effort: raise send/receive buffers of a connected peer's ICE sockets."""
    try:
        for transceiver in pc.getTransceivers():
            ice = transceiver.receiver.transport.transport
            for protocol in ice._connection._protocols:
                sock = protocol.transport.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    except (AttributeError, OSError) as exc:
        log.debug("could not enlarge socket buffers: %s", exc)


def ice_path(pc: Any) -> str | None:
    """How the media flows: the local and remote candidate types of the nominated ICE pair
    (``"host-host"``, ``"relay-host"`` through the client's TURN relay, ...), or None before
    ICE completes. Reads aioice's ``Connection._nominated`` (pinned; tested)."""
    try:
        for transceiver in pc.getTransceivers():
            nominated = transceiver.receiver.transport.transport._connection._nominated
            for pair in nominated.values():
                return f"{pair.local_candidate.type}-{pair.remote_candidate.type}"
    except AttributeError:
        log.debug("aioice has no nominated pairs where farview reads them", exc_info=True)
    return None


# -- patch 6: media addresses and ports --------------------------------------------------------

_media_addresses: tuple[str, ...] = ()
_media_ports: tuple[int, int] | None = None
_gathering: contextvars.ContextVar[bool] = contextvars.ContextVar("farview_gathering", default=False)


def set_media_network(addresses: tuple[str, ...] = (), ports: tuple[int, int] | None = None) -> None:
    """Gather host candidates only on ``addresses`` (empty: every interface) and bind them in
    ``ports`` (inclusive; None: ephemeral). For this process's later peer connections."""
    global _media_addresses, _media_ports
    apply_global_patches()
    _media_addresses, _media_ports = tuple(addresses), ports
    if ports is not None and not getattr(aioice.ice.Connection.get_component_candidates,
                                         "_farview", False):
        original_gather = aioice.ice.Connection.get_component_candidates

        async def get_component_candidates(self: Any, *args: Any, **kwargs: Any) -> Any:
            token = _gathering.set(True)
            try:
                return await original_gather(self, *args, **kwargs)
            finally:
                _gathering.reset(token)

        get_component_candidates._farview = True  # type: ignore[attr-defined]
        aioice.ice.Connection.get_component_candidates = get_component_candidates  # type: ignore[method-assign]
        original_endpoint = asyncio.base_events.BaseEventLoop.create_datagram_endpoint

        async def create_datagram_endpoint(loop: Any, protocol_factory: Any, local_addr: Any = None,
                                           *args: Any, **kwargs: Any) -> Any:
            span = _media_ports
            if not (_gathering.get() and span and local_addr and local_addr[1] == 0):
                return await original_endpoint(loop, protocol_factory, local_addr, *args, **kwargs)
            for port in range(span[0], span[1] + 1):
                try:
                    return await original_endpoint(loop, protocol_factory, (local_addr[0], port),
                                                   *args, **kwargs)
                except OSError:
                    continue
            raise OSError(f"no free UDP port on {local_addr[0]} in the media range "
                          f"{span[0]}-{span[1]}")

        asyncio.base_events.BaseEventLoop.create_datagram_endpoint = create_datagram_endpoint  # type: ignore[method-assign,assignment]


# -- patch 5: bounded SCTP reassembly ---------------------------------------------------------

MAX_REASSEMBLED_MESSAGE = 64 * 1024
"""The default cap on one inbound data-channel message, in bytes: a message whose fragments
add up to more is dropped while it is reassembled. A message of exactly this size arrives."""

MIN_AVERAGE_FRAGMENT = 128
"""A message may arrive in at most ``max_message // MIN_AVERAGE_FRAGMENT + 1`` fragments, and a
stream hold at most ``max_stream_buffer // MIN_AVERAGE_FRAGMENT + 1``: every fragment costs a
Python object besides its bytes, so a byte cap alone would not bound memory (nor the linear
scans of aiortc's reassembly) against tiny fragments. Real stacks send about 1,100-1,200 bytes a
fragment (aiortc 1,172)."""

MAX_STREAM_BUFFER = 1024 * 1024
"""The default cap on what one inbound stream holds of incomplete messages and of messages
waiting for an earlier one (ordered streams), in bytes: aiortc's advertised receive window,
which a peer that honours flow control stays within. Past it, arriving fragments are dropped."""

_MAX_DISCARDING = 16
"""Dropped messages per stream whose remaining fragments are still being discarded; past it the
oldest is forgotten (its later fragments are then buffered and dropped like any others)."""

_TSN_MODULO = 2**32


class ReassemblyGuard:
    """Patch 5's limits and counts for one SCTP transport (one peer connection).

    Every transport gets one with the default limits when its first inbound stream is created;
    :func:`reassembly_guard` returns it, so the owner can change the limits and set ``on_drop``.
    """

    def __init__(self, max_message: int = MAX_REASSEMBLED_MESSAGE,
                 max_stream_buffer: int = MAX_STREAM_BUFFER) -> None:
        self.max_message = max_message
        self.max_stream_buffer = max_stream_buffer
        self.on_drop: Callable[[int, str], None] | None = None
        """``on_drop(stream_id, reason)``, on the event loop: once for every dropped message and
        for every fragment dropped because its stream was full."""
        self.messages_dropped = 0
        """Messages dropped for being over ``max_message`` (or in too many fragments)."""
        self.fragments_dropped = 0
        """Fragments freed or discarded, of dropped messages and for full streams."""
        self.bytes_dropped = 0

    @property
    def max_fragments(self) -> int:
        return self.max_message // MIN_AVERAGE_FRAGMENT + 1

    @property
    def max_stream_fragments(self) -> int:
        return self.max_stream_buffer // MIN_AVERAGE_FRAGMENT + 1

    def report_drop(self, stream_id: int, reason: str) -> None:
        if self.on_drop is None:
            return
        try:
            self.on_drop(stream_id, reason)
        except Exception:  # never let the owner's callback break aiortc's receive path
            log.exception("reassembly on_drop callback failed")


_GUARD_ATTRIBUTE = "_farview_reassembly_guard"


def reassembly_guard(transport: RTCSctpTransport) -> ReassemblyGuard:
    """Patch 5: the limits and counts of ``transport``'s inbound reassembly (created on first use)."""
    # kept on the transport itself (not in a weak-keyed table: ``on_drop`` usually refers back to
    # the transport's owner, which would keep the table's key alive for ever)
    guard: ReassemblyGuard | None = getattr(transport, _GUARD_ATTRIBUTE, None)
    if guard is None:
        guard = ReassemblyGuard()
        setattr(transport, _GUARD_ATTRIBUTE, guard)
    return guard


@dataclass(eq=False)
class _Discarding:
    """A dropped message whose fragments keep arriving: the TSN range seen so far."""

    low: int
    high: int
    has_first: bool
    has_last: bool
    ordered: bool
    stream_seq: int
    reason: str
    counted: bool = False


class BoundedInboundStream(InboundStream):
    """aiortc's ``InboundStream`` (reassembly of one inbound SCTP stream) with patch 5's caps.

    Same contract as aiortc's: ``add_chunk`` then ``pop_messages`` after every DATA chunk,
    ``prune_chunks`` after a FORWARD TSN. Fragments of one message carry consecutive TSNs (RFC
    9260 section 6.9; aiortc's own reassembly relies on it too), so the fragments of a message
    are a run of consecutive TSNs that starts with a FIRST and ends with a LAST flag. After each
    chunk the run it belongs to is measured; when it is over the cap, the run is freed and its
    TSN range remembered, and fragments that extend that range (up to the LAST one) are
    discarded as they arrive. An ordered message dropped that way is stepped over once all of
    it has arrived, so the messages after it are still delivered in order.

    A dropped message is counted (and reported) once: when its first fragment is among what was
    dropped, or, if that never arrives, when the stream stops tracking it.
    """

    def __init__(self, guard: ReassemblyGuard, stream_id: int, on_freed: Callable[[int], None]) -> None:
        super().__init__()
        self.guard = guard
        self.stream_id = stream_id
        self._on_freed = on_freed
        """Gets back to aiortc's advertised receive window the bytes we freed or discarded."""
        self.buffered = 0
        """Bytes of user data held in ``reassembly``."""
        self._discarding: list[_Discarding] = []
        self._skip: set[int] = set()
        """Stream sequence numbers of dropped ordered messages that ``sequence_number`` has not
        reached yet."""

    # -- aiortc's contract -------------------------------------------------------------------
    def add_chunk(self, chunk: DataChunk) -> None:
        if self._absorb(chunk):
            return
        super().add_chunk(chunk)
        size = len(chunk.user_data)
        self.buffered += size
        if self._check_message(chunk):
            return
        guard = self.guard
        if self.buffered > guard.max_stream_buffer or len(self.reassembly) > guard.max_stream_fragments:
            index = self._find(chunk.tsn)
            if index is not None:
                # a peer that honours our receive window never gets here
                del self.reassembly[index]
                self.buffered -= size
                self._free(1, size)
                guard.report_drop(self.stream_id,
                                  f"fragment dropped: stream buffer over {guard.max_stream_buffer} bytes")

    def pop_messages(self) -> Iterator[tuple[int, int, bytes]]:
        while True:
            while self.sequence_number in self._skip:
                self._skip.discard(self.sequence_number)
                self.sequence_number = uint16_add(self.sequence_number, 1)
            for message in super().pop_messages():
                self.buffered -= len(message[2])
                yield message
            if self.sequence_number not in self._skip:
                return

    def prune_chunks(self, tsn: int) -> int:
        size = super().prune_chunks(tsn)
        self.buffered -= size
        # A FORWARD TSN: nothing at or before ``tsn`` comes again. Like aiortc's pruning, keep a
        # dropped message whose fragments reach ``tsn`` exactly and may continue after it.
        keep = [d for d in self._discarding if uint32_gt(d.high, tsn) or (d.high == tsn and not d.has_last)]
        for dropped in self._discarding:
            if dropped not in keep:
                self._count(dropped)
        self._discarding = keep
        self._skip = {seq for seq in self._skip if uint16_gte(seq, self.sequence_number)}
        return size

    # -- the cap -----------------------------------------------------------------------------
    def _check_message(self, chunk: DataChunk) -> bool:
        """Drop the run of fragments ``chunk`` belongs to if it is over the cap; True if dropped."""
        r = self.reassembly
        index = len(r) - 1 if r[-1] is chunk else self._find(chunk.tsn)
        if index is None:  # not buffered (a duplicate TSN aiortc let through): nothing to measure
            return False
        guard = self.guard
        start = end = index
        while (not r[start].flags & SCTP_DATA_FIRST_FRAG and start > 0
               and r[start - 1].tsn == tsn_minus_one(r[start].tsn)
               and not r[start - 1].flags & SCTP_DATA_LAST_FRAG):
            start -= 1
        while (not r[end].flags & SCTP_DATA_LAST_FRAG and end + 1 < len(r)
               and r[end + 1].tsn == tsn_plus_one(r[end].tsn)
               and not r[end + 1].flags & SCTP_DATA_FIRST_FRAG):
            end += 1
        run = r[start:end + 1]
        size = sum(len(c.user_data) for c in run)
        if len(run) > guard.max_fragments:
            reason = f"message dropped during reassembly: in more fragments than {guard.max_fragments}"
        elif size > guard.max_message:
            reason = f"message dropped during reassembly: larger than {guard.max_message} bytes"
        else:
            return False
        del r[start:end + 1]
        self.buffered -= size
        self._free(len(run), size)
        first, last = run[0], run[-1]
        dropped = _Discarding(low=first.tsn, high=last.tsn,
                              has_first=bool(first.flags & SCTP_DATA_FIRST_FRAG),
                              has_last=bool(last.flags & SCTP_DATA_LAST_FRAG),
                              ordered=not first.flags & SCTP_DATA_UNORDERED, stream_seq=first.stream_seq,
                              reason=reason)
        self._discarding.append(dropped)
        self._gather(dropped)
        if len(self._discarding) > _MAX_DISCARDING:
            self._count(self._discarding.pop(0))
        return True

    def _absorb(self, chunk: DataChunk) -> bool:
        """Discard ``chunk`` if it is a further fragment of a dropped message; True if it was."""
        dropped = next((d for d in self._discarding if self._extends(d, chunk)), None)
        if dropped is None:
            return False
        self._free(1, len(chunk.user_data))
        self._gather(dropped)
        return True

    def _gather(self, dropped: _Discarding) -> None:
        """Take into ``dropped`` what now adjoins it: fragments that arrived early, beyond a gap
        that has closed, and other dropped parts of the same message. Count it once its first
        fragment is in; finish it once all of it is."""
        while True:
            if not dropped.has_last:
                after = tsn_plus_one(dropped.high)
                other = next((d for d in self._discarding if d.low == after and not d.has_first), None)
                if other is not None:  # (it has no first fragment, so it was not counted)
                    dropped.high, dropped.has_last = other.high, other.has_last
                    self._discarding.remove(other)
                    continue
                index = self._find(after)
                if index is not None and self._extends(dropped, self.reassembly[index]):
                    self._take(index)
                    continue
            if not dropped.has_first:
                before = tsn_minus_one(dropped.low)
                other = next((d for d in self._discarding if d.high == before and not d.has_last), None)
                if other is not None:
                    dropped.low, dropped.has_first = other.low, other.has_first
                    dropped.counted = dropped.counted or other.counted
                    self._discarding.remove(other)
                    continue
                index = self._find(before)
                if index is not None and self._extends(dropped, self.reassembly[index]):
                    self._take(index)
                    continue
            break
        if dropped.has_first:
            self._count(dropped)
            if dropped.has_last:
                self._discarding.remove(dropped)
                self._finish(dropped)

    def _take(self, index: int) -> None:
        """Discard the buffered fragment at ``index``."""
        chunk = self.reassembly.pop(index)
        self.buffered -= len(chunk.user_data)
        self._free(1, len(chunk.user_data))

    @staticmethod
    def _extends(dropped: _Discarding, chunk: DataChunk) -> bool:
        """Grow ``dropped``'s range by ``chunk`` if it is the fragment right after or before it."""
        if (not dropped.has_last and chunk.tsn == tsn_plus_one(dropped.high)
                and not chunk.flags & SCTP_DATA_FIRST_FRAG):
            dropped.high = chunk.tsn
            dropped.has_last = bool(chunk.flags & SCTP_DATA_LAST_FRAG)
            return True
        if (not dropped.has_first and chunk.tsn == tsn_minus_one(dropped.low)
                and not chunk.flags & SCTP_DATA_LAST_FRAG):
            dropped.low = chunk.tsn
            dropped.has_first = bool(chunk.flags & SCTP_DATA_FIRST_FRAG)
            return True
        return False

    def _count(self, dropped: _Discarding) -> None:
        if not dropped.counted:
            dropped.counted = True
            self.guard.messages_dropped += 1
            self.guard.report_drop(self.stream_id, dropped.reason)

    def _finish(self, dropped: _Discarding) -> None:
        """All of a dropped message has arrived: an ordered stream steps over its number."""
        if dropped.ordered and uint16_gte(dropped.stream_seq, self.sequence_number):
            self._skip.add(dropped.stream_seq)

    def _free(self, fragments: int, size: int) -> None:
        self.guard.fragments_dropped += fragments
        self.guard.bytes_dropped += size
        self._on_freed(size)

    def _find(self, tsn: int) -> int | None:
        """Index of the buffered fragment with this TSN (``reassembly`` is sorted by TSN)."""
        r = self.reassembly
        if not r:
            return None
        base = r[0].tsn
        index = bisect.bisect_left(r, (tsn - base) % _TSN_MODULO, key=lambda c: (c.tsn - base) % _TSN_MODULO)
        return index if index < len(r) and r[index].tsn == tsn else None


_original_get_inbound_stream = RTCSctpTransport._get_inbound_stream


def _get_bounded_inbound_stream(self: RTCSctpTransport, stream_id: int) -> InboundStream:
    """Patch 5: replaces ``RTCSctpTransport._get_inbound_stream`` (the one place aiortc creates
    an ``InboundStream``)."""
    stream = self._inbound_streams.get(stream_id)
    if stream is None:
        transport = weakref.ref(self)

        def give_back_to_window(size: int) -> None:
            # aiortc takes every arriving fragment's bytes off its advertised receive window and
            # gives them back when it delivers or prunes them; these will never be delivered.
            owner = transport()
            if owner is not None:
                owner._advertised_rwnd += size

        stream = BoundedInboundStream(reassembly_guard(self), stream_id, give_back_to_window)
        self._inbound_streams[stream_id] = stream
    return stream
