"""Frame ↔ pose correlation on the client: the one owner of pose identities and their clock.

Every pose a client sends is stamped here (:meth:`PoseCorrelator.stamp`): a sequence number
(1, 2, … per connection, wrapping at 2^32) and its send time on :func:`now_us`, the one client
clock (``time.perf_counter``, the clock the receiver timestamps packets with), so the frame
rendered with it can be matched and timed without clock sync. The host echoes the sequence in
each frame's metadata (``frames`` channel), sent just before the frame's video; metadata and
decoded pictures meet here by pts, in either order, and become :class:`~.frame.Frame`\\ s that
carry the pose they were rendered with. A decoded picture whose metadata never comes is
dropped once a later picture is matched (counted in :attr:`PoseCorrelator.unmatched`).

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
        self.unmatched = 0
        """Decoded pictures dropped because their metadata never came."""

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
        self._metadata[meta.pts] = meta
        if len(self._metadata) > MAX_TRACKED:
            for pts in sorted(self._metadata)[: len(self._metadata) - MAX_TRACKED]:
                del self._metadata[pts]
        decoded = self._awaiting.pop(meta.pts, None)
        return None if decoded is None else self._frame(decoded, meta)

    def on_decoded(self, decoded: DecodedVideoFrame) -> Frame | None:
        """A picture was decoded; returns its frame if its metadata already arrived (else it
        waits: metadata travels on a data channel and may come just after the video)."""
        meta = self._metadata.pop(decoded.pts, None)
        if meta is None:
            for pts in [p for p in self._awaiting if p < decoded.pts]:
                del self._awaiting[pts]
                self.unmatched += 1
            self._awaiting[decoded.pts] = decoded
            return None
        return self._frame(decoded, meta)

    def _frame(self, decoded: DecodedVideoFrame, meta: FrameMetadata) -> Frame:
        pose = self._sent.get(meta.pose_sequence)
        sent_at = None if pose is None else pose.client_time_us / 1e6
        return Frame(
            decoded.y, decoded.u, decoded.v, pose, meta,
            pose_to_receive_ms=None if sent_at is None else (decoded.received_at - sent_at) * 1000,
            receive_to_decoded_ms=(decoded.decoded_at - decoded.received_at) * 1000,
            received_at=decoded.received_at,
        )
