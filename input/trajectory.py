"""Scripted camera trajectories for ``farview bench``: where the camera is at time ``t``.

Every trajectory has ``name`` and ``pose_at(t) -> Pose`` (``t`` in seconds from the start of
a run), so a benchmark can drive the same motion through farview, stock aiortc and the
in-process floor, and compare like with like. Implementations:

- :class:`Orbit`: the camera circles the model at a fixed distance and elevation, looking at it.
- :class:`Shake`: the camera stays put and turns fast and a little (a few degrees at 4–9 Hz,
  like a hand-held or head-mounted camera): every frame differs, and a stale frame shows.
- :class:`TraceTrajectory`: replays a recorded :class:`~input.pose_sources.HeadTrace` (CSV or
  JSON text, see :func:`~input.pose_sources.parse_trace_csv`), looping at its end.

:func:`parse_trajectory_spec` reads the command-line form (``orbit``, ``shake``,
``trace:FILE``). Pure code: reading a trace file is the caller's job. Stateless: ``pose_at``
is a pure function of ``t``, safe to call from any thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from farview.input.mathutil import Vec3, quat_from_yaw_pitch, quat_rotate, vec_scale, vec_sub
from farview.input.pose import Pose
from farview.input.pose_sources import HeadTrace

TRAJECTORY_KINDS = ("orbit", "shake", "trace", "headturn")
"""The kinds :func:`parse_trajectory_spec` accepts."""
DEFAULT_TARGET: Vec3 = (0.0, 0.02, 0.0)
"""The shipped sample model sits at the origin, about 0.65 m across."""
DEFAULT_DISTANCE = 1.5
"""Metres from the target: the sample fills most of a 60° view."""


@runtime_checkable
class Trajectory(Protocol):
    """A camera motion as a pure function of time."""

    @property
    def name(self) -> str:
        """Short label for reports (``orbit``, ``shake``, the trace's name)."""

    def pose_at(self, t: float) -> Pose:
        """The camera pose ``t`` seconds after the start."""


def _look_from(target: Vec3, distance: float, yaw: float, pitch: float) -> Pose:
    orientation = quat_from_yaw_pitch(yaw, pitch)
    forward = quat_rotate(orientation, (0.0, 0.0, -1.0))
    return Pose(vec_sub(target, vec_scale(forward, distance)), orientation)


@dataclass(frozen=True)
class Orbit:
    """Circle the target once every ``period_s`` seconds, looking at it."""

    target: Vec3 = DEFAULT_TARGET
    """The point looked at, metres."""
    distance: float = DEFAULT_DISTANCE
    """Metres from the target."""
    pitch_deg: float = -20.0
    """Elevation of the view (negative looks down at the target)."""
    period_s: float = 8.0
    """Seconds per full turn (45°/s at the default)."""
    start_yaw_deg: float = 35.0
    """Where on the circle ``t = 0`` is."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.period_s) and self.period_s > 0):
            raise ValueError(f"orbit period must be positive, got {self.period_s}")
        if not (math.isfinite(self.distance) and self.distance > 0):
            raise ValueError(f"orbit distance must be positive, got {self.distance}")
        if not -89.0 <= self.pitch_deg <= 89.0:
            raise ValueError(f"orbit pitch must be within ±89°, got {self.pitch_deg}")

    @property
    def name(self) -> str:
        return "orbit"

    def pose_at(self, t: float) -> Pose:
        yaw = math.radians(self.start_yaw_deg) + 2.0 * math.pi * t / self.period_s
        return _look_from(self.target, self.distance, yaw, math.radians(self.pitch_deg))


@dataclass(frozen=True)
class Shake:
    """Fast small rotations about a fixed viewpoint: yaw and pitch each a sum of two sines.

    At the defaults the view turns by up to ~3.5° at up to ~150°/s, so consecutive 60 Hz frames
    differ by a few pixels everywhere: the hardest case for latency and for the encoder.
    """

    target: Vec3 = DEFAULT_TARGET
    distance: float = DEFAULT_DISTANCE
    yaw_deg: float = 35.0
    """The resting view direction."""
    pitch_deg: float = -20.0
    amplitude_deg: float = 2.0
    """Amplitude of each of the two sines per axis."""
    frequencies_hz: tuple[float, float] = (4.3, 8.9)
    """Frequencies of the two sines (yaw; pitch uses them swapped, with other phases)."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.amplitude_deg) and 0 <= self.amplitude_deg <= 20):
            raise ValueError(f"shake amplitude must be 0..20°, got {self.amplitude_deg}")
        if len(self.frequencies_hz) != 2 or not all(math.isfinite(f) and f > 0 for f in self.frequencies_hz):
            raise ValueError(f"shake needs two positive frequencies, got {self.frequencies_hz}")

    @property
    def name(self) -> str:
        return "shake"

    def pose_at(self, t: float) -> Pose:
        a = math.radians(self.amplitude_deg)
        f1, f2 = self.frequencies_hz
        d_yaw = a * (math.sin(2 * math.pi * f1 * t) + math.sin(2 * math.pi * f2 * t + 1.0))
        d_pitch = a * (math.sin(2 * math.pi * f2 * t + 2.0) + math.sin(2 * math.pi * f1 * t + 0.5))
        # Turn the camera in place: the eye stays where the resting view puts it.
        rest = _look_from(self.target, self.distance, math.radians(self.yaw_deg), math.radians(self.pitch_deg))
        orientation = quat_from_yaw_pitch(math.radians(self.yaw_deg) + d_yaw, math.radians(self.pitch_deg) + d_pitch)
        return Pose(rest.position, orientation)


@dataclass(frozen=True)
class TraceTrajectory:
    """Replay a recorded trace from its first sample, looping when it ends."""

    trace: HeadTrace

    @property
    def name(self) -> str:
        return f"trace ({self.trace.name})"

    def pose_at(self, t: float) -> Pose:
        if self.trace.duration > 0:
            t = math.fmod(max(t, 0.0), self.trace.duration)
        return self.trace.pose_at(t)


@dataclass(frozen=True)
class TrajectorySpec:
    """A trajectory as the command line names it."""

    kind: str
    """One of :data:`TRAJECTORY_KINDS`."""
    trace_file: str | None = None
    """The trace's path (``trace`` only)."""

    def __post_init__(self) -> None:
        if self.kind not in TRAJECTORY_KINDS:
            raise ValueError(f"unknown trajectory {self.kind!r}; use orbit, shake, headturn or trace:FILE")
        if (self.kind == "trace") != bool(self.trace_file):
            raise ValueError("a trace trajectory needs a file (trace:FILE or --trace-file FILE), "
                             "and only a trace takes one")


def parse_trajectory_spec(text: str, trace_file: str | None = None) -> TrajectorySpec:
    """``orbit``, ``shake``, ``trace:FILE`` or ``trace`` with ``trace_file`` given separately."""
    kind, sep, path = text.partition(":")
    kind = kind.strip().lower()
    if sep:
        if kind != "trace":
            raise ValueError(f"only a trace takes a file; got {text!r}")
        if trace_file and trace_file != path:
            raise ValueError(f"two trace files given: {path!r} and {trace_file!r}")
        trace_file = path
    return TrajectorySpec(kind, trace_file or None)


def make_trajectory(spec: TrajectorySpec, trace: HeadTrace | None = None) -> Trajectory:
    """The trajectory for ``spec``; a trace spec needs the parsed ``trace``."""
    if spec.kind == "orbit":
        return Orbit()
    if spec.kind == "shake":
        return Shake()
    if spec.kind == "headturn":
        from farview.input.pose_sources import headturn_trace

        return TraceTrajectory(headturn_trace())  # fast 90° head turns and back, looped
    if trace is None:
        raise ValueError("a trace trajectory needs the parsed trace")
    return TraceTrajectory(trace)


__all__ = [
    "TRAJECTORY_KINDS",
    "Orbit",
    "Shake",
    "TraceTrajectory",
    "Trajectory",
    "TrajectorySpec",
    "make_trajectory",
    "parse_trajectory_spec",
]
