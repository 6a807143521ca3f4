"""Low-latency video receiving: frames released on their RTP marker bit, decoded at once.

:func:`streaming._aiortc_patches.install_marker_receiver` feeds :meth:`VideoReceiver.on_encoded`
with each complete access unit on the event loop. Decoding runs right there, inline (H.264 with
slice threads takes ~0.3 ms at 720p here; a thread hop would cost more than it saves, and frame
threading would add a frame of delay). Every encoded frame must be decoded (P-frames chain), but
only the newest *decoded* frame is kept: :meth:`on_decoded` consumers see it replace older ones,
which are counted as discarded.

The receiver rebases RTP timestamps to the first frame it got, so ``pts`` here equals the
host's pts (the host starts each connection at 0 with a keyframe).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import av
import numpy as np

from farview.streaming.assembler import EncodedFrame
from farview.streaming.planes import yuv420_planes

log = logging.getLogger(__name__)


@dataclass
class DecodedVideoFrame:
    """One decoded picture as I420 planes (views into the decoder's buffers, not copies)."""

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray
    pts: int
    """Host pts (1/90000), rebased to the first received frame."""
    received_at: float
    """perf_counter() when the marker packet arrived."""
    decoded_at: float
    size_bytes: int
    waited: bool = False
    """It was held for a retransmission (``received_at`` includes the NACK's round trip)."""

    @classmethod
    def of(cls, picture: av.VideoFrame, pts: int, received_at: float, decoded_at: float,
           size_bytes: int, waited: bool = False) -> DecodedVideoFrame:
        """A decoded ``yuv420p`` picture's planes (views, no copies) with its timings."""
        y, u, v = yuv420_planes(picture)
        return cls(y, u, v, pts, received_at, decoded_at, size_bytes, waited)


class VideoReceiver:
    """Decodes complete H.264 access units and hands each decoded frame to ``on_decoded``."""

    def __init__(self, on_decoded: Callable[[DecodedVideoFrame], None],
                 request_keyframe: Callable[[], None] | None = None) -> None:
        self._decoder = av.CodecContext.create("h264", "r")
        self._decoder.thread_type = "SLICE"
        self._decoder.thread_count = 2
        self._on_decoded = on_decoded
        self._request_keyframe = request_keyframe
        self._base_ts: int | None = None
        self.frames_decoded = 0
        self.decode_errors = 0
        self.bytes_received = 0

    def on_encoded(self, frame: EncodedFrame) -> None:
        if self._base_ts is None:
            self._base_ts = frame.rtp_timestamp
        pts = (frame.rtp_timestamp - self._base_ts) & 0xFFFFFFFF
        self.bytes_received += len(frame.data)
        packet = av.Packet(frame.data)
        packet.pts = pts
        try:
            pictures = self._decoder.decode(packet)
        except av.FFmpegError as exc:
            self.decode_errors += 1
            if self.decode_errors <= 3:
                log.warning("H.264 decode failed (%s); asking for a keyframe", exc)
            if self._request_keyframe is not None:
                self._request_keyframe()
            return
        now = time.perf_counter()
        for picture in pictures:
            self.frames_decoded += 1
            self._on_decoded(DecodedVideoFrame.of(
                picture, pts if picture.pts is None else int(picture.pts), frame.received_at, now,
                len(frame.data), frame.waited))
