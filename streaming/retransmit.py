"""Which NACKed packets the host sends again (``streaming/_aiortc_patches.py``, patch 8).

aiortc's receiver repeats every still-missing sequence number in each NACK it sends, and aiortc's
sender retransmits every number of every NACK. On a congested link, where retransmissions are
lost at the same full queue, that multiplies the load exactly when the path has none to spare.
:class:`RetransmitPolicy` resends each packet at most :data:`MAX_TRIES` times, 1.5 round trips
apart (:data:`MIN_SPACING_S` at least; :data:`UNKNOWN_RTT_SPACING_S` before the round trip is
known), and not once its first NACK is :data:`MAX_AGE_S` old: by then
the client has given up on the frame and asked for a keyframe (its wait is at most 150 ms,
``streaming/assembler.py``). With congestion control on, resends also keep within a quarter of
its target bit rate (:meth:`RetransmitPolicy.set_budget`).

A client that does not give up and ask for a keyframe itself (Chromium waits up to 3 s for a
decodable frame before it does) would freeze for that long when it NACKs a packet the host no
longer resends: such a packet, first NACKed after the last keyframe request, makes
:meth:`RetransmitPolicy.keyframe_due` say when the host should send a keyframe
(:data:`STUCK_S` after that first NACK, later than farview's own client asks). Pure code; not
thread-safe (the event loop owns it).
"""

from __future__ import annotations

MAX_TRIES = 3
MIN_SPACING_S = 0.005
"""Resends of one packet are 1.5 round trips apart, and at least this."""
UNKNOWN_RTT_SPACING_S = 0.02
"""Their spacing before the round trip is known."""
MAX_AGE_S = 0.25
MEMORY = 4096
"""Sequence numbers remembered (the oldest are forgotten first)."""
BUDGET_SHARE = 0.25
"""Resends may use at most this share of the video's target bit rate (:meth:`set_budget`)."""
PACKET_BITS = 1200 * 8
BURST_S = 0.1
STUCK_S = 0.3
"""A packet the client still NACKs after the host stopped resending it gets the client a
keyframe this long after its first NACK, unless one was asked for meanwhile (farview's client
asks 150 ms into a wait; a browser waited 3 s on a capped link)."""


class RetransmitPolicy:
    def __init__(self) -> None:
        self._seen: dict[int, tuple[float, float, int]] = {}
        """seq → (first NACK, last resend, resends)."""
        self.requested = 0
        self.resent = 0
        self.over_budget = 0
        """Resends skipped because the budget was spent."""
        self._per_second: float | None = None
        self._tokens = 0.0
        self._tokens_at: float | None = None
        self.given_up = 0
        """NACKs for packets the host no longer resends (too old, or resent :data:`MAX_TRIES`
        times): the client still misses them."""
        self._keyframe_at = -1e18
        self._stuck_from: float | None = None
        """The first NACK of the oldest packet given up on since the last keyframe request."""

    def set_budget(self, target_bitrate: int) -> None:
        """Resends use at most :data:`BUDGET_SHARE` of ``target_bitrate`` (congestion control's
        target): on a full link, resending everything lost would only lose more."""
        self._per_second = BUDGET_SHARE * target_bitrate / PACKET_BITS

    def _take(self, now: float) -> bool:
        if self._per_second is None:
            return True
        burst = max(1.0, self._per_second * BURST_S)
        if self._tokens_at is None:
            self._tokens = burst
        else:
            self._tokens = min(burst, self._tokens + (now - self._tokens_at) * self._per_second)
        self._tokens_at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def select(self, sequence_numbers: list[int], now: float, rtt: float | None = None) -> list[int]:
        """The numbers of one NACK worth resending now (each is counted as resent)."""
        spacing = max(MIN_SPACING_S, 1.5 * rtt) if rtt is not None else UNKNOWN_RTT_SPACING_S
        out = []
        for seq in sequence_numbers:
            self.requested += 1
            first, last, tries = self._seen.get(seq, (now, -1e9, 0))
            if tries >= MAX_TRIES or now - first > MAX_AGE_S:
                self._seen.setdefault(seq, (first, last, tries))
                self.given_up += 1
                if first > self._keyframe_at and (self._stuck_from is None or first < self._stuck_from):
                    self._stuck_from = first
                continue
            if now - last < spacing:
                continue
            if not self._take(now):
                self.over_budget += 1
                self._seen.setdefault(seq, (first, last, tries))
                continue
            self._seen[seq] = (first, now, tries + 1)
            out.append(seq)
        self.resent += len(out)
        if len(self._seen) > MEMORY:
            for seq in list(self._seen)[:len(self._seen) - MEMORY]:
                del self._seen[seq]
        return out

    def keyframe_due(self) -> float | None:
        """When (the clock of :meth:`select`) the client should get a keyframe: it still
        misses a packet the host gave up resending, and no keyframe was asked for since that
        packet's first NACK. None: nothing is stuck."""
        return None if self._stuck_from is None else self._stuck_from + STUCK_S

    def keyframe_requested(self, now: float) -> None:
        """A keyframe was asked for at ``now`` (by the client, or for :meth:`keyframe_due`): it
        replaces every packet sent before it."""
        self._keyframe_at = now
        self._stuck_from = None
