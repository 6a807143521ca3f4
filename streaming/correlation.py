"""Frame ↔ pose correlation on the client: the one owner of pose identities and their clock.

Every pose a client sends is stamped here (:meth:`PoseCorrelator.stamp`): a sequence number
(1, 2, … per connection, wrapping at 2^32) and its send time on :func:`now_us`, the one client
clock (``time.perf_counter``, the clock the receiver timestamps packets with), so the frame
rendered with it can be matched and timed without clock sync. The host echoes the sequence in
each frame's metadata (``frames`` channel), sent just before the frame's video; metadata and
decoded pictures meet here by pts, in either order, and become :class:`~.frame.Frame`\\ s that
carry the pose they were rendered with. The host sends each frame's metadata twice (before and
after its video); a copy for a picture already matched is ignored. A decoded picture whose
metadata never comes is dropped once a later picture is matched (counted in
:attr:`PoseCorrelator.unmatched`).

Decoded pictures carry the receiver's pts: RTP timestamps rebased to the first frame it got,
which is the host's pts 0 only if that first keyframe arrived whole. The first picture is
therefore matched to the keyframe whose metadata came last (when one has come), and the offset
kept. When that was wrong too, every pts is off by the same amount and nothing would match
again; after :data:`REANCHOR_AFTER` pictures in a row without metadata, the offset that makes
most of them meet their metadata (and only that one) is found and applied from then on
(counted in :attr:`PoseCorrelator.reanchored`).

Not thread-safe: the connection's event loop owns it. Bounded: at most :data:`MAX_TRACKED`
poses and metadata are remembered.
"""

from __future__ import annotations

import time

from farview.input.frame_meta import FrameMetadata
from farview.input.pose import PoseMessage, PoseRequest
from farview.streaming.frame import Frame
from farview.streaming.receiver import DecodedVideoFrame

MAX_TRACKED = 256
"""Poses (and frame metadata) remembered for matching."""
REANCHOR_AFTER = 4
"""Pictures in a row without metadata before the pts offset is looked for."""


def now_us() -> int:
    """The client clock for pose timestamps, in microseconds (``time.perf_counter``)."""
    return time.perf_counter_ns() // 1000


def since_us(client_time_us: int) -> float:
    """Milliseconds from a :func:`now_us` timestamp until now."""
    return (now_us() - client_time_us) / 1000.0


class PoseCorrelator:
    """Stamps outgoing poses and matches decoded frames to them (see the module docstring)."""

    def __init__(self) -> None:
        self._sequence = 0
        self._sent: dict[int, PoseMessage] = {}
        self._metadata: dict[int, FrameMetadata] = {}
        self._awaiting: dict[int, DecodedVideoFrame] = {}
        self._matched: dict[int, None] = {}
        """The pts of the last :data:`MAX_TRACKED` pictures matched (an ordered set)."""
        self.unmatched = 0
        """Decoded pictures dropped because their metadata never came."""
        self._offset = 0
        self._first = True
        """No picture decoded yet (see :meth:`on_decoded`)."""
        self._strays: list[int] = []
        self.reanchored = 0
        """How often the receiver's pts were found off and corrected."""

    def stamp(self, request: PoseRequest) -> PoseMessage:
        """The message for ``request`` with the next sequence and the send time: now."""
        self._sequence = self._sequence % 0xFFFFFFFF + 1
        msg = request.message(self._sequence, now_us())
        self._sent[msg.sequence] = msg
        self._sent.pop((msg.sequence - MAX_TRACKED) % 2**32, None)
        return msg

    def sent(self, sequence: int) -> PoseMessage | None:
        """The message sent with ``sequence``, while it is remembered."""
        return self._sent.get(sequence)

    def on_metadata(self, meta: FrameMetadata) -> Frame | None:
        """A frame's metadata arrived; returns the frame if its picture was already decoded."""
        if meta.pts in self._matched:
            return None  # the second copy of one already used
        self._metadata[meta.pts] = meta
        if len(self._metadata) > MAX_TRACKED:
            for pts in sorted(self._metadata)[: len(self._metadata) - MAX_TRACKED]:
                del self._metadata[pts]
        decoded = self._awaiting.pop(meta.pts, None)
        if decoded is None:
            return None
        self._strays.clear()
        return self._frame(decoded, meta)

    def on_decoded(self, decoded: DecodedVideoFrame) -> Frame | None:
        """A picture was decoded; returns its frame if its metadata already arrived (else it
        waits: metadata travels on a data channel and may come just after the video)."""
        if self._first:
            self._first = False
            # The first picture is a keyframe (the assembler starts on one), the one whose
            # metadata came last: an earlier keyframe's metadata may be here with no picture
            # (its video lost, or come before the client's receiver was ready), and the
            # rebased pts 0 would meet it instead (test_lossy_network saw the host's pts 0
            # metadata meet the picture of pts 2,458).
            keys = [m for m in self._metadata.values() if m.keyframe]
            if keys:
                self._offset = (keys[-1].pts - decoded.pts) & 0xFFFFFFFF
        pts = (decoded.pts + self._offset) & 0xFFFFFFFF
        meta = self._metadata.pop(pts, None)
        if meta is None:
            for p in [p for p in self._awaiting if p < pts]:
                del self._awaiting[p]
                self.unmatched += 1
            self._awaiting[pts] = decoded
            self._strays = [*self._strays[-(2 * REANCHOR_AFTER - 1):], pts]
            if len(self._strays) >= REANCHOR_AFTER:
                return self._reanchor()
            return None
        self._strays.clear()
        return self._frame(decoded, meta)

    def _reanchor(self) -> Frame | None:
        """Find the one offset that puts most unmatched pictures on metadata; apply it."""
        votes: dict[int, int] = {}
        for stray in self._strays:
            for known in self._metadata:
                delta = (known - stray) & 0xFFFFFFFF
                votes[delta] = votes.get(delta, 0) + 1
        ranked = sorted(votes.items(), key=lambda kv: kv[1], reverse=True)
        if not ranked or ranked[0][1] < REANCHOR_AFTER - 1 or (
                len(ranked) > 1 and ranked[1][1] == ranked[0][1]):
            return None  # no offset, or no single one: wait for more
        delta = ranked[0][0]
        self._offset = (self._offset + delta) & 0xFFFFFFFF
        self._strays.clear()
        self.reanchored += 1
        newest = max(self._awaiting, default=None)
        awaiting, self._awaiting = self._awaiting, {}
        frame = None
        for pts, decoded in sorted(awaiting.items()):
            shifted = (pts + delta) & 0xFFFFFFFF
            meta = self._metadata.pop(shifted, None)
            if meta is not None and pts == newest:
                frame = self._frame(decoded, meta)
            elif meta is None and pts == newest:
                self._awaiting[shifted] = decoded
            else:
                self.unmatched += 1
        return frame

    def _frame(self, decoded: DecodedVideoFrame, meta: FrameMetadata) -> Frame:
        self._matched[meta.pts] = None
        if len(self._matched) > MAX_TRACKED:
            del self._matched[next(iter(self._matched))]
        pose = self._sent.get(meta.pose_sequence)
        sent_at = None if pose is None else pose.client_time_us / 1e6
        return Frame(
            decoded.y, decoded.u, decoded.v, pose, meta,
            pose_to_receive_ms=None if sent_at is None else (decoded.received_at - sent_at) * 1000,
            receive_to_decoded_ms=(decoded.decoded_at - decoded.received_at) * 1000,
            received_at=decoded.received_at, waited=decoded.waited,
        )
