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
   :class:`MarkerJitterBuffer`, which completes a frame on its marker bit and passes it to our
   own decoder; aiortc's decoder thread then idles.

Relied on without a patch: ``RTCRtpSender``'s RTP task sends every RTP packet of one
``track.recv()`` result before it calls ``recv()`` again. :class:`streaming.track.PacketTrack`
reports a frame as sent at that next call, and the host's render thread waits for it before
the next frame (``host/connection.py``).
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aioice
import aioice.ice
import aioice.turn
import aiortc
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtp import RtpPacket

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
    """Patches 1 and 2. Idempotent; call before creating any RTCPeerConnection."""
    global _applied
    if _applied:
        return
    check_versions()
    aioice.turn.UDP_SOCKET_BUFFER_SIZE = UDP_RECEIVE_BUFFER
    original = aioice.ice.get_host_addresses

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        addresses: list[str] = original(use_ipv4, use_ipv6)
        if not addresses and use_ipv4:
            addresses = ["127.0.0.1"]
        return addresses

    aioice.ice.get_host_addresses = get_host_addresses
    _applied = True
    rmem_max = _read_int("/proc/sys/net/core/rmem_max")
    if rmem_max is not None and rmem_max < UDP_RECEIVE_BUFFER:
        log.warning(
            "net.core.rmem_max is %d bytes; UDP receive buffers stay below %d and large keyframes "
            "may be dropped (raise it with: sysctl -w net.core.rmem_max=%d)",
            rmem_max, UDP_RECEIVE_BUFFER, UDP_RECEIVE_BUFFER,
        )


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


@dataclass
class EncodedFrame:
    """A complete access unit reassembled from RTP packets."""

    data: bytes
    rtp_timestamp: int
    received_at: float
    """time.perf_counter() when the marker packet arrived."""
    packets: int


class MarkerJitterBuffer:
    """Drop-in for aiortc's ``JitterBuffer`` (same ``add`` contract) releasing on the marker bit.

    ``add(packet)`` returns ``(pli_wanted, None)``: it never hands frames to aiortc's decoder
    thread. Complete frames go to ``on_frame`` synchronously (on the event loop). A frame with a
    missing packet is discarded, a PLI is requested, and frames are discarded until the next
    frame that starts with an IDR picture, so the decoder never sees a broken reference chain.
    """

    capacity = 512  # attribute read by aiortc in some paths

    def __init__(self, on_frame: Callable[[EncodedFrame], None]) -> None:
        self._on_frame = on_frame
        self._parts: list[bytes] = []
        self._timestamp: int | None = None
        self._expected_seq: int | None = None
        self._broken = False
        self._waiting_for_keyframe = False
        self.frames_completed = 0
        self.frames_discarded = 0
        self.packets_lost = 0

    def add(self, packet: RtpPacket) -> tuple[bool, None]:
        pli = False
        seq = packet.sequence_number
        if self._expected_seq is not None and seq != self._expected_seq:
            gap = (seq - self._expected_seq) & 0xFFFF
            if gap > 0x8000:  # late or duplicate packet: its frame is already gone
                return False, None
            self.packets_lost += gap
            self._broken = True
        self._expected_seq = (seq + 1) & 0xFFFF
        if packet.timestamp != self._timestamp:
            if self._parts:  # previous frame never saw its marker
                self._discard()
                pli = True
            self._timestamp = packet.timestamp
            self._parts = []
        self._parts.append(getattr(packet, "_data", b""))
        if packet.marker:
            data = b"".join(self._parts)
            self._parts = []
            self._timestamp = None
            if self._broken:
                self._broken = False
                self._discard()
                return True, None
            if self._waiting_for_keyframe:
                if not _has_idr(data):
                    self.frames_discarded += 1
                    return pli, None
                self._waiting_for_keyframe = False
            self.frames_completed += 1
            self._on_frame(EncodedFrame(data, packet.timestamp, time.perf_counter(), 0))
        return pli, None

    def _discard(self) -> None:
        self.frames_discarded += 1
        self._waiting_for_keyframe = True
        self._parts = []

    def remove(self, count: int) -> None:  # aiortc API, unused
        return None

    def smart_remove(self, count: int) -> bool:  # aiortc API, unused
        return False


def _has_idr(annexb: bytes) -> bool:
    """True when an Annex-B access unit contains an IDR slice (NAL type 5)."""
    i = annexb.find(b"\x00\x00\x01")
    while i != -1 and i + 3 < len(annexb):
        if annexb[i + 3] & 0x1F == 5:
            return True
        i = annexb.find(b"\x00\x00\x01", i + 3)
    return False


def install_marker_receiver(receiver: RTCRtpReceiver, on_frame: Callable[[EncodedFrame], None]) -> MarkerJitterBuffer:
    """Patch 4: swap the receiver's video jitter buffer for :class:`MarkerJitterBuffer`."""
    attr = "_RTCRtpReceiver__jitter_buffer"
    if not hasattr(receiver, attr):
        raise RuntimeError("aiortc RTCRtpReceiver has no private jitter buffer; update _aiortc_patches")
    buffer = MarkerJitterBuffer(on_frame)
    setattr(receiver, attr, buffer)
    return buffer


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
