"""Frame statistics, named as ARR's FrameStatistics (snake_case) plus host stages.

:class:`StatisticsWindow` accumulates per-frame records on the connection's loop thread and
summarises the last second (like ARR, which reports over the last second). Latencies are in
milliseconds on the client's clock; host stage durations come from the frame metadata.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from farview.streaming.frame import Frame

WINDOW_SECONDS = 1.0
FREEZE_MS = 100.0
"""A gap between presented frames longer than this is counted as a freeze."""


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation between the nearest ranks (as
    numpy's default); NaN for no values. The one definition every report and benchmark uses."""
    s = sorted(values)
    if not s:
        return math.nan
    k = (len(s) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return float(s[lo] + (s[hi] - s[lo]) * (k - lo))


@dataclass(frozen=True)
class FrameStatistics:
    latency_pose_to_receive: float | None
    """Mean ms from sending a pose to receiving the frame rendered with it (last second)."""
    latency_receive_to_present: float | None
    """Mean ms from a frame's last packet to its presentation (decode + hand-off + draw)."""
    latency_present_to_display: float | None
    """Not measurable without display feedback; None unless a sink reports it."""
    time_since_last_present: float | None
    """ms since the newest presented frame."""
    video_frames_received: int
    """Frames received and decoded in the last second."""
    video_frames_reused: int
    """Display frames that showed an old frame again (reported by the viewer)."""
    video_frames_skipped: int
    """Frames lost before decode (missing packets), since the connection began."""
    video_frames_discarded: int
    """Decoded frames replaced by a newer one before being presented, since connect."""
    video_frame_min_delta: float | None
    """Smallest interval between received frames in the last second, ms."""
    video_frame_max_delta: float | None
    host_wait: float | None
    """farview extension: mean time a pose waited on the host before its render began, ms."""
    host_render: float | None
    host_readback: float | None
    host_convert: float | None
    host_encode: float | None
    network_rtt: float | None
    bitrate_kbps: float | None
    frames_presented_total: int
    frames_received_total: int
    target_bitrate_kbps: float | None = None
    """farview extension: the host encoder's target bit rate (congestion control), newest frame."""
    freezes: int = 0
    """Gaps over :data:`FREEZE_MS` between presented frames, since the connection began."""
    last_freeze_ms: float | None = None
    """The newest such gap, ms."""
    frames_recovered: int = 0
    """Frames that waited for a retransmitted packet and were then shown whole, since connect."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


class StatisticsWindow:
    def __init__(self) -> None:
        self._received: deque[tuple[float, Frame]] = deque()
        self._presented: deque[tuple[float, float]] = deque()  # (at, receive_to_present ms)
        self.reused = 0
        self.received_total = 0
        self.presented_total = 0
        self._last_present: float | None = None
        self.freezes = 0
        self.last_freeze_ms: float | None = None

    def _trim(self, now: float) -> None:
        while self._received and now - self._received[0][0] > WINDOW_SECONDS:
            self._received.popleft()
        while self._presented and now - self._presented[0][0] > WINDOW_SECONDS:
            self._presented.popleft()

    def on_received(self, frame: Frame) -> None:
        self.received_total += 1
        self._received.append((frame.received_at, frame))
        self._trim(frame.received_at)

    def on_presented(self, frame: Frame, at: float) -> None:
        self.presented_total += 1
        if self._last_present is not None and (gap := (at - self._last_present) * 1000) > FREEZE_MS:
            self.freezes += 1
            self.last_freeze_ms = gap
        self._last_present = at
        self._presented.append((at, (at - frame.received_at) * 1000))

    def snapshot(self, *, rtt_ms: float | None, skipped: int, discarded: int,
                 bytes_received: int, recovered: int = 0) -> FrameStatistics:
        now = time.perf_counter()
        self._trim(now)
        frames = [f for _, f in self._received]
        times = [t for t, _ in self._received]
        deltas = [(b - a) * 1000 for a, b in itertools.pairwise(times)]
        metas = [f.metadata for f in frames if f.metadata is not None]
        size = sum(m.size_bytes for m in metas)
        return FrameStatistics(
            latency_pose_to_receive=_mean([f.pose_to_receive_ms for f in frames if f.pose_to_receive_ms is not None]),
            latency_receive_to_present=_mean([ms for _, ms in self._presented]),
            latency_present_to_display=None,
            time_since_last_present=None if self._last_present is None else (now - self._last_present) * 1000,
            video_frames_received=len(frames),
            video_frames_reused=self.reused,
            video_frames_skipped=skipped,
            video_frames_discarded=discarded,
            video_frame_min_delta=min(deltas) if deltas else None,
            video_frame_max_delta=max(deltas) if deltas else None,
            host_wait=_mean([m.wait_us / 1000 for m in metas]),
            host_render=_mean([m.render_us / 1000 for m in metas]),
            host_readback=_mean([m.readback_us / 1000 for m in metas]),
            host_convert=_mean([m.convert_us / 1000 for m in metas]),
            host_encode=_mean([m.encode_us / 1000 for m in metas]),
            network_rtt=rtt_ms,
            bitrate_kbps=size * 8 / 1000 / WINDOW_SECONDS if metas else None,
            frames_presented_total=self.presented_total,
            frames_received_total=self.received_total,
            target_bitrate_kbps=(metas[-1].target_bitrate / 1000 if metas and metas[-1].target_bitrate else None),
            freezes=self.freezes,
            last_freeze_ms=self.last_freeze_ms,
            frames_recovered=recovered,
        )
