"""Client side of loss recovery: RTP packets in, whole H.264 access units out, in order.

:class:`FrameAssembler` takes the place of aiortc's video jitter buffer
(``streaming/_aiortc_patches.py``, patch 4) with the same ``add(packet)`` contract, but it never
hands frames to aiortc's decoder thread: each frame goes to ``on_frame`` (our decoder) as soon as
its last packet is in.

- **Whole frames only, in order.** A frame is the run of packets from the one after the previous
  frame's marker packet up to its own marker packet; it is released once every packet of that run
  is in. Frames after an incomplete one wait behind it (P-frames chain: decoding a frame whose
  predecessor is missing shows garbage).
- **Waiting for retransmission.** aiortc's receiver sends a NACK as soon as it sees a gap in the
  sequence numbers, and the sender retransmits (RTX). A gap is waited for up to
  :attr:`FrameAssembler.max_wait` seconds, the NACK's round trip with room to spare
  (:meth:`FrameAssembler.set_rtt`), so a lost packet costs a round trip, not a keyframe. While
  it waits it asks again every :attr:`FrameAssembler.renack_interval` (a lost retransmission,
  or a lost NACK, would otherwise be asked for only when the next gap appears).
- **A lost tail is asked for at once.** A gap is seen when a later packet arrives; when the
  lost packets are a frame's last ones, that is the next frame's first packet, a frame interval
  later, and the frame then comes out together with the next one (a viewer shows only the
  newer: at 5 % loss about one frame in twenty). When a frame's packets stop coming before its
  marker packet for :meth:`FrameAssembler.tail_delay` (three times the usual spacing of a
  frame's packets, within :data:`TAIL_PROBE_MIN_S` .. :data:`TAIL_PROBE_MAX_S`), the next
  sequence number is NACKed (a tail-loss probe; the sender ignores a number it has not sent).
- **Giving up.** A gap that outlives the wait (the retransmission was lost too, or a whole burst
  went missing), or a run longer than :data:`MAX_HELD_PACKETS`, discards what is held and asks
  for a keyframe (the ``add`` return value, which aiortc sends as a PLI, and ``request_keyframe``
  from a timer when no packet arrives to carry it). Nothing is released again until a frame that
  starts with a sequence parameter set and holds an IDR picture is complete, so the decoder never
  sees a broken reference chain and the viewer keeps its last good picture meanwhile. The
  stream starts that way too; a request that goes unanswered for :data:`RESYNC_REASK_S` is
  repeated.

Not thread-safe: it runs on the event loop of aiortc's receiver. The deadline timer needs a
running loop; without one (unit tests) :meth:`FrameAssembler.poll` checks the deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_HELD_PACKETS = 4096
"""Packets held while waiting for a gap (about 4 MiB): past that the gap is given up."""
DEFAULT_MAX_WAIT = 0.07
"""How long a gap waits for its retransmission before the round trip is known."""
MIN_MAX_WAIT, MAX_MAX_WAIT = 0.07, 0.15
"""Bounds of the wait: 2.5 round trips, and at least long enough for two more asks
(:data:`MIN_RENACK_S` apart) when a retransmission is lost too; short enough that a gap that
does not heal still gets a keyframe well within 300 ms."""
MIN_RENACK_S = 0.008
"""A gap still open two round trips and 3 ms (at least this) after its last NACK is asked for
again: more than the host's spacing between two resends of one packet (1.5 round trips, at
least 5 ms: ``streaming/retransmit.py``). On a LAN a lost NACK or resend cost 25 ms when this
was the floor: more than a frame interval, so the frame came out with the next one and only
the newer was shown (under 5 % loss about one frame in seventeen)."""
DEFAULT_RENACK_S = 0.025
"""The same before the round trip is known (the host spaces resends 20 ms apart then)."""
MAX_RENACK = 256
"""At most this many sequence numbers in one repeated NACK."""
LOSSY_MAX_WAIT = 0.15
"""Within :data:`LOSSY_MEMORY_S` of a give-up a gap waits at least this long: on a link that
loses many packets, each give-up costs a keyframe (several times a P-frame's packets, as
likely to lose one), so more rounds of asking are the cheaper way to a picture. Under 50 %
loss, 70 ms (three asks) healed too few gaps: a keyframe every 200 ms and hardly a picture."""
LOSSY_MEMORY_S = 1.0
TAIL_PROBE_MIN_S, TAIL_PROBE_MAX_S = 0.004, 0.012
"""Bounds of the silence after which a frame without its marker packet has its next packet
asked for (see the module docstring): over a frame's usual packet spacing, under a frame
interval at 60 fps."""
RESYNC_REASK_S = 0.25
"""While waiting for a keyframe, packets that start none for this long ask again (the
keyframe or the request was lost)."""


@dataclass
class EncodedFrame:
    """A complete access unit reassembled from RTP packets."""

    data: bytes
    rtp_timestamp: int
    received_at: float
    """time.perf_counter() when its last packet arrived."""
    packets: int
    waited: bool = False
    """It was held for a retransmission: of its own packet, or of an earlier frame's (it waited
    behind it; under 50 % loss such frames read as 150 ms of network queue and cut the rate)."""


@dataclass
class _Packet:
    timestamp: int
    marker: bool
    data: bytes


def starts_keyframe(annexb: bytes) -> bool:
    """True when an Annex-B access unit starts with a sequence parameter set (NAL type 7), as
    every keyframe of farview's encoders (and aiortc's) does: the start of a decodable frame."""
    for prefix in (b"\x00\x00\x00\x01", b"\x00\x00\x01"):
        if annexb.startswith(prefix):
            return len(annexb) > len(prefix) and annexb[len(prefix)] & 0x1F == 7
    return False


def has_idr(annexb: bytes) -> bool:
    """True when an Annex-B access unit contains an IDR slice (NAL type 5)."""
    i = annexb.find(b"\x00\x00\x01")
    while i != -1 and i + 3 < len(annexb):
        if annexb[i + 3] & 0x1F == 5:
            return True
        i = annexb.find(b"\x00\x00\x01", i + 3)
    return False


class FrameAssembler:
    """Whole H.264 frames from RTP packets, in order, waiting a round trip for lost packets."""

    capacity = 512  # attribute read by aiortc in some paths

    def __init__(self, on_frame: Callable[[EncodedFrame], None], *,
                 request_keyframe: Callable[[], None] | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self._on_frame = on_frame
        self._request_keyframe = request_keyframe
        self._clock = clock
        self._packets: dict[int, _Packet] = {}
        self._next: int | None = None
        """Extended sequence number of the next frame's first packet (None: not known yet)."""
        self._highest: int | None = None
        self._resync = True
        """At the start and after a give-up: waiting for a packet that starts a keyframe."""
        self._asked_at: float | None = None
        """When the last keyframe request went out (or the stream began) during a resync."""
        self._gap_since: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due = 0.0
        """When the armed timer fires."""
        self.max_wait = DEFAULT_MAX_WAIT
        self._gave_up_at = -1e9
        self.keyframe_asks = 0
        """Keyframes asked for (each give-up and each repeat): the connection also sets the
        keyframe flag on its next pose when this grows, so the ask has more than one way
        through a lossy link (a PLI alone is lost as often as any packet)."""
        self.renack_interval = DEFAULT_RENACK_S
        self.send_nack: Callable[[list[int]], None] | None = None
        """Sends a NACK for these sequence numbers (set by ``install_marker_receiver``)."""
        self._nacked_at: float | None = None
        self.renacks = 0
        self.ssrc: int | None = None
        """The media SSRC of the packets (for repeated NACKs)."""
        self.frames_completed = 0
        self.frames_discarded = 0
        """Frames dropped because a packet never came, or because they chained from one that
        did not (until the next keyframe)."""
        self.frames_recovered = 0
        """Frames that waited for a retransmission and then were whole."""
        self.packets_lost = 0
        """Packets given up on."""
        self.bytes_received = 0
        """Payload bytes of every packet that arrived (resent and repeated ones too): what the
        path delivered, for the client's receive rate."""
        self.give_ups = 0
        self.tail_probes = 0
        """NACKs sent for a frame's probably lost last packets (see :meth:`tail_delay`)."""
        self._last_arrival: float | None = None
        self._prev: tuple[int, int] | None = None
        """(extended sequence number, RTP timestamp) of the last packet that arrived."""
        self._spacing = 0.0005
        """Moving average of the time between consecutive packets of one frame (seconds)."""
        self._probed: tuple[int, float] | None = None
        """The newest packet a tail probe went out after, and when."""

    # -- aiortc's jitter-buffer contract --------------------------------------------------------
    def add(self, packet: Any) -> tuple[bool, None]:
        """Take one RTP packet (aiortc ``RtpPacket`` with its depayloaded ``_data``); returns
        ``(keyframe_wanted, None)``: aiortc sends a PLI for True and decodes nothing itself."""
        now = self._clock()
        self.bytes_received += len(getattr(packet, "_data", b""))
        seq = self._extend(int(packet.sequence_number))
        if not self._resync and self._next is not None and seq < self._next:
            return False, None  # late or duplicate: its frame is already out or given up
        if seq in self._packets:
            return False, None
        self.ssrc = int(packet.ssrc)
        held = _Packet(int(packet.timestamp), bool(packet.marker), getattr(packet, "_data", b""))
        if (self._prev is not None and self._last_arrival is not None
                and seq == self._prev[0] + 1 and held.timestamp == self._prev[1]):
            gap = min(now - self._last_arrival, TAIL_PROBE_MAX_S)
            self._spacing += 0.2 * (gap - self._spacing)
        self._last_arrival, self._prev = now, (seq, held.timestamp)
        self._packets[seq] = held
        self._highest = seq if self._highest is None else max(self._highest, seq)
        if self._next is None:
            self._next = seq
        if self._resync:
            if not starts_keyframe(held.data):
                self._prune()
                if self._asked_at is None:
                    self._asked_at = now
                elif now - self._asked_at >= RESYNC_REASK_S:  # that keyframe was lost too
                    self._asked_at = now
                    self.keyframe_asks += 1
                    return True, None
                return False, None
            self._asked_at = None
            self._drop_below(seq)
            self._next = seq
            self._resync = False
        if len(self._packets) > MAX_HELD_PACKETS:
            return self._give_up(), None
        self._release(now)
        wanted = self.poll(now)
        self._arm_timer()
        return wanted, None

    def remove(self, count: int) -> None:  # aiortc API, unused
        return None

    def smart_remove(self, count: int) -> bool:  # aiortc API, unused
        return False

    # -- timing ---------------------------------------------------------------------------------
    def set_rtt(self, rtt_s: float) -> None:
        """The connection's round trip: a gap waits a little over two of them, and asks again
        every :attr:`renack_interval`."""
        self.max_wait = min(MAX_MAX_WAIT, max(MIN_MAX_WAIT, 2.5 * rtt_s))
        self.renack_interval = max(MIN_RENACK_S, 2 * rtt_s + 0.003)

    def poll(self, now: float | None = None) -> bool:
        """Give up on a gap older than :attr:`max_wait`; True when that asks for a keyframe.
        A gap still open :attr:`renack_interval` after the last request asks again for what is
        missing (``send_nack``): aiortc's receiver repeats a NACK only when a new gap appears."""
        now = self._clock() if now is None else now
        if self._gap_since is None:
            self._probe_tail(now)
            return False
        if now - self._gap_since >= self._wait(now):
            return self._give_up()
        if self.send_nack is not None and now - (self._nacked_at or self._gap_since) >= self.renack_interval:
            missing = self._missing()
            if missing:
                self._nacked_at = now
                self.renacks += 1
                self.send_nack(missing)
        return False

    def tail_delay(self) -> float:
        """How long a frame's packets may stop before its marker packet before the next one is
        asked for: three times their usual spacing and a millisecond, within
        :data:`TAIL_PROBE_MIN_S` .. :data:`TAIL_PROBE_MAX_S`."""
        return min(TAIL_PROBE_MAX_S, max(TAIL_PROBE_MIN_S, 3 * self._spacing + 0.001))

    def _tail_open(self) -> bool:
        """An unfinished frame's packets are held, with no gap among them and nothing after
        them: its last packets may have been lost."""
        if (self._resync or self._gap_since is not None or self._next is None
                or self._highest is None or self._highest < self._next):
            return False
        newest = self._packets.get(self._highest)
        return newest is not None and not newest.marker

    def _tail_due(self, now: float) -> float | None:
        """When the open tail should be asked for (None: no tail open, or no way to ask)."""
        if self.send_nack is None or self._last_arrival is None or not self._tail_open():
            return None
        if now - self._last_arrival > self._wait(now):
            return None  # long silent: the stream paused, or the next frame's gap will tell
        due = self._last_arrival + self.tail_delay()
        if self._probed is not None and self._probed[0] == self._highest:
            due = max(due, self._probed[1] + self.renack_interval)
        return due

    def _probe_tail(self, now: float) -> None:
        due = self._tail_due(now)
        if due is None or now < due or self.send_nack is None or self._highest is None:
            return
        self._probed = (self._highest, now)
        self.tail_probes += 1
        self.send_nack([(self._highest + 1) & 0xFFFF])

    def _wait(self, now: float) -> float:
        """How long a gap waits: :attr:`max_wait`, or :data:`LOSSY_MAX_WAIT` if longer soon
        after a give-up."""
        if now - self._gave_up_at < LOSSY_MEMORY_S:
            return max(self.max_wait, LOSSY_MAX_WAIT)
        return self.max_wait

    def _missing(self) -> list[int]:
        """The 16-bit sequence numbers missing between the next frame and the newest packet."""
        if self._next is None or self._highest is None:
            return []
        return [s & 0xFFFF for s in range(self._next, self._highest) if s not in self._packets][:MAX_RENACK]

    def _due(self, now: float) -> float | None:
        """When :meth:`poll` has work next: a gap's deadline or its next ask, else an open
        tail's probe (the two exclude each other); None: nothing to wait for."""
        if self._gap_since is None:
            return self._tail_due(now)
        due = self._gap_since + self._wait(now)
        if self.send_nack is not None:
            due = min(due, (self._nacked_at or self._gap_since) + self.renack_interval)
        return due

    def _on_timer(self) -> None:
        self._timer = None
        if self.poll() and self._request_keyframe is not None:
            self._request_keyframe()
        self._arm_timer()

    def _arm_timer(self) -> None:
        """Have :meth:`_on_timer` run when :meth:`_due` says (sooner than a timer already
        armed, if need be)."""
        now = self._clock()
        due = self._due(now)
        if due is None or (self._timer is not None and self._timer_due <= due):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_due = due
        self._timer = loop.call_later(max(0.0, due - now), self._on_timer)

    # -- internals ------------------------------------------------------------------------------
    def _extend(self, seq16: int) -> int:
        ref = self._highest if self._highest is not None else (self._next or 0)
        if self._highest is None and self._next is None:
            return seq16
        base = ref - (ref & 0xFFFF)
        cand = base + seq16
        if cand - ref > 0x8000:
            cand -= 0x10000
        elif ref - cand > 0x8000:
            cand += 0x10000
        return cand

    def _release(self, now: float) -> None:
        behind = False  # frames whole before a gap filled waited behind it: "waited" too
        while self._next is not None and not self._resync:
            end = self._next
            while end in self._packets and not self._packets[end].marker:
                end += 1
            if end not in self._packets:  # incomplete: a gap if anything later is in
                if self._highest is not None and self._highest > end:
                    if self._gap_since is None:
                        self._gap_since = now
                    self._arm_timer()
                else:
                    self._gap_since = self._nacked_at = None
                return
            gap = self._gap_since is not None
            waited = behind = behind or gap
            parts = [self._packets.pop(s) for s in range(self._next, end + 1)]
            self._next = end + 1
            self._gap_since = self._nacked_at = None
            if any(p.timestamp != parts[-1].timestamp for p in parts):
                # a marker packet was lost and the run spans two frames: not decodable
                self.frames_discarded += 1
                self._enter_resync(after=end)
                return
            data = b"".join(p.data for p in parts)
            self.frames_completed += 1
            if gap:
                self.frames_recovered += 1
            self._on_frame(EncodedFrame(data, parts[-1].timestamp, now, len(parts), waited))

    def _give_up(self) -> bool:
        """Drop the frame with the gap and every frame after it up to the next keyframe that
        is held (or all), count them, and wait for a keyframe; True: ask for one."""
        self.give_ups += 1
        self.keyframe_asks += 1
        self._asked_at = self._gave_up_at = self._clock()
        gap = self._next
        if gap is not None:
            while gap in self._packets:
                gap += 1
        self._enter_resync(after=gap)
        return True

    def _enter_resync(self, after: int | None = None) -> None:
        """Wait for a keyframe: a held packet after ``after`` that starts one resumes the stream
        at once (one at or before it belongs to what was given up)."""
        first_missing_from = self._next
        self._resync = True
        self._gap_since = self._nacked_at = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        start = next((s for s in sorted(self._packets)
                      if (after is None or s > after) and starts_keyframe(self._packets[s].data)), None)
        if first_missing_from is not None:
            end = start if start is not None else (self._highest + 1 if self._highest is not None else 0)
            self.packets_lost += sum(1 for s in range(first_missing_from, end) if s not in self._packets)
        if start is None:
            self._drop_below(None)
            if self._highest is not None:
                self._next = self._highest + 1
            return
        self._drop_below(start)
        self._next = start
        self._resync = False
        self._release(self._clock())

    def _drop_below(self, seq: int | None) -> None:
        """Discard held packets before ``seq`` (all with None), counting their frames."""
        gone = [s for s in self._packets if seq is None or s < seq]
        self.frames_discarded += sum(1 for s in gone if self._packets[s].marker) or (1 if gone else 0)
        for s in gone:
            del self._packets[s]

    def _prune(self) -> None:
        """In resync, hold only the packets of the last few frames: a keyframe's first packet
        may still arrive late (retransmitted), and then its later packets are needed."""
        if self._highest is None or len(self._packets) <= 512:
            return
        self._drop_below(self._highest - 512)
