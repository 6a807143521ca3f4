"""Pose prediction: where the head will be when the frame rendered now reaches the display.

A frame rendered for the pose sampled now is seen ``pose → present`` (render, encode, network,
decode, upload) plus ``present → display`` later; by then a turning head has moved on. The
:class:`PosePredictor` keeps the head's angular velocity (world frame) and linear velocity,
estimated from the last samples and smoothed exponentially, and extrapolates the newest sample
by a horizon. The :class:`LatencyEstimator` supplies that horizon: a running estimate (EWMA) of
the measured pose → present latency, plus the display's own latency.

Constant velocity, not acceleration: acceleration estimates from 90 Hz samples are dominated by
tremor and tracking noise, and they overshoot worse at the end of a turn. The horizon is capped
(:data:`MAX_HORIZON_S`) so a latency spike cannot throw the view far ahead.
Pure math on floats; not thread-safe (the headset loop owns both objects).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from farview.input.mathutil import Quat, Vec3, quat_conjugate, quat_from_axis_angle, quat_multiply, quat_normalize
from farview.input.pose import Pose

MAX_HORIZON_S = 0.2
"""Longest prediction: beyond ~200 ms a constant-velocity guess does more harm than good."""
DEFAULT_SMOOTHING = 0.5
"""Weight of the newest velocity estimate (1 = no smoothing)."""
DEFAULT_LATENCY_S = 0.05
"""Pose → present latency assumed before the first frame is measured."""


@dataclass(frozen=True)
class Motion:
    """The head's velocity at a sample."""

    angular_velocity: Vec3
    """World-frame rotation axis × rate, radians per second."""
    linear_velocity: Vec3
    """Metres per second."""

    @property
    def angular_speed_deg(self) -> float:
        return math.degrees(math.sqrt(sum(c * c for c in self.angular_velocity)))


STILL = Motion((0.0, 0.0, 0.0), (0.0, 0.0, 0.0))


def angular_velocity(q0: Quat, q1: Quat, dt: float) -> Vec3:
    """World-frame angular velocity that turns ``q0`` into ``q1`` in ``dt`` seconds."""
    d = quat_multiply(q1, quat_conjugate(q0))
    if d[3] < 0:  # the short way round
        d = (-d[0], -d[1], -d[2], -d[3])
    s = math.sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2])
    if s < 1e-12 or dt <= 0:
        return (0.0, 0.0, 0.0)
    angle = 2.0 * math.atan2(s, d[3])
    k = angle / (s * dt)
    return (d[0] * k, d[1] * k, d[2] * k)


def extrapolate(pose: Pose, motion: Motion, horizon_s: float) -> Pose:
    """``pose`` moved on by ``motion`` for ``horizon_s`` seconds (constant velocity)."""
    w = motion.angular_velocity
    rate = math.sqrt(w[0] * w[0] + w[1] * w[1] + w[2] * w[2])
    q = pose.orientation
    if rate * horizon_s > 1e-9:
        q = quat_normalize(quat_multiply(quat_from_axis_angle(w, rate * horizon_s), q))
    v = motion.linear_velocity
    p = pose.position
    return Pose((p[0] + v[0] * horizon_s, p[1] + v[1] * horizon_s, p[2] + v[2] * horizon_s), q)


class PosePredictor:
    """Tracks head velocity from timed samples and predicts the pose a horizon ahead.

    ``enabled=False`` makes :meth:`predict` return the newest sample unchanged (the velocity is
    still tracked, so measurements can say what prediction would have done).
    """

    def __init__(self, *, enabled: bool = True, smoothing: float = DEFAULT_SMOOTHING,
                 max_horizon_s: float = MAX_HORIZON_S) -> None:
        if not 0.0 < smoothing <= 1.0:
            raise ValueError(f"smoothing must be in (0, 1], got {smoothing}")
        if not 0.0 <= max_horizon_s <= 1.0:
            raise ValueError(f"max horizon must be in [0, 1] s, got {max_horizon_s}")
        self.enabled = enabled
        self.smoothing = smoothing
        self.max_horizon_s = max_horizon_s
        self._last: tuple[float, Pose] | None = None
        self._velocity_known = False
        self.motion = STILL
        """The smoothed velocity at the newest sample."""

    @property
    def latest(self) -> Pose | None:
        return None if self._last is None else self._last[1]

    def add(self, t: float, pose: Pose) -> None:
        """A new sample at ``t`` seconds; samples at or before the previous one are ignored."""
        if self._last is not None:
            t0, p0 = self._last
            dt = t - t0
            if dt <= 0:
                return
            w = angular_velocity(p0.orientation, pose.orientation, dt)
            v = tuple((b - a) / dt for a, b in zip(p0.position, pose.position, strict=True))
            a = self.smoothing if self._velocity_known else 1.0  # the first estimate is taken as is
            self._velocity_known = True
            old = self.motion
            self.motion = Motion(
                tuple(a * n + (1 - a) * o for n, o in zip(w, old.angular_velocity, strict=True)),  # type: ignore[arg-type]
                tuple(a * n + (1 - a) * o for n, o in zip(v, old.linear_velocity, strict=True)),  # type: ignore[arg-type]
            )
        self._last = (t, pose)

    def reset(self) -> None:
        self._last = None
        self._velocity_known = False
        self.motion = STILL

    def extrapolate(self, horizon_s: float) -> Pose:
        """The newest sample moved on by ``horizon_s`` (clamped), whether or not prediction is on."""
        if self._last is None:
            raise ValueError("no pose sample yet; call add() first")
        horizon = min(max(horizon_s, 0.0), self.max_horizon_s)
        return extrapolate(self._last[1], self.motion, horizon)

    def predict(self, horizon_s: float) -> Pose:
        """The pose to render for a display ``horizon_s`` from the newest sample."""
        if not self.enabled:
            if self._last is None:
                raise ValueError("no pose sample yet; call add() first")
            return self._last[1]
        return self.extrapolate(horizon_s)


class LatencyEstimator:
    """A running pose → present latency (EWMA of measurements) plus a fixed display latency."""

    def __init__(self, *, initial_s: float = DEFAULT_LATENCY_S, display_latency_s: float = 0.0,
                 weight: float = 0.1) -> None:
        if not (initial_s >= 0 and display_latency_s >= 0 and 0 < weight <= 1):
            raise ValueError("latencies must be non-negative and the weight in (0, 1]")
        self.pose_to_present_s = initial_s
        self.display_latency_s = display_latency_s
        """Present → photons (a display refresh on a headset; 0 if unknown)."""
        self.weight = weight
        self.measurements = 0

    def add(self, pose_to_present_s: float) -> None:
        if not (math.isfinite(pose_to_present_s) and pose_to_present_s >= 0):
            return
        if self.measurements == 0:
            self.pose_to_present_s = pose_to_present_s
        else:
            self.pose_to_present_s += self.weight * (pose_to_present_s - self.pose_to_present_s)
        self.measurements += 1

    @property
    def horizon_s(self) -> float:
        """How far ahead to predict a pose sampled now: pose → present → display."""
        return self.pose_to_present_s + self.display_latency_s
