"""Pose sources: where head (or camera) poses come from, behind one small interface.

:class:`PoseSource` has one method, ``pose_at(t)``: the head pose at ``t`` seconds on the
source's own clock (0 = when the loop started). Implementations:

- :class:`CameraPoseSource`: the desktop fly/orbit camera (:class:`~input.camera.CameraController`);
  it has no notion of time and returns the camera's current pose.
- :class:`SimulatedHeadset`: replays a :class:`HeadTrace` (recorded or generated) and samples it
  at the headset's rate (90 Hz). Because a trace knows the future, ``pose_at`` is also the ground
  truth that the headset loop measures its angular error against.
- an OpenXR runtime's head (``farview.client.headset.openxr``; not here: it needs pyopenxr and a runtime).

:func:`headturn_trace` generates a realistic fast head turn: a minimum-jerk yaw profile (e.g. 90°
in 0.4 s, peak ≈ 420°/s, as measured for voluntary head turns) with a small physiological tremor
(8–12 Hz, ~0.1°) on yaw and pitch, the head pivoting about the neck so the eyes also translate.
Traces parse from CSV or JSON text (:func:`parse_trace_csv`, :func:`parse_trace_json`); reading
files is the caller's job (this package does no I/O). Pure numpy; not thread-safe.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from farview.input.camera import CameraController
from farview.input.headset import DEFAULT_REFRESH_HZ
from farview.input.mathutil import quat_from_yaw_pitch, quat_rotate, vec_add
from farview.input.pose import Pose

TRACE_COLUMNS = ("t", "px", "py", "pz", "qx", "qy", "qz", "qw")
"""CSV header (and JSON sample keys) of a head-motion trace: seconds, metres, unit quaternion."""
DEFAULT_HEAD_POSITION = (0.0, 0.1, 1.0)
"""Where the simulated head sits: 1 m in front of the sample model, looking at it (-z)."""
NECK_TO_EYES_M = (0.0, 0.10, -0.08)
"""Head-local offset from the neck pivot to the point between the eyes (up and forward)."""


@runtime_checkable
class PoseSource(Protocol):
    """Anything that gives a head pose for a time (seconds on the loop's clock)."""

    def pose_at(self, t: float) -> Pose:
        """The head pose at ``t``; live sources return their newest pose whatever ``t`` is."""


@dataclass(frozen=True)
class PoseSample:
    """One timed head pose."""

    t: float
    """Seconds from the start of the trace or loop."""
    pose: Pose


class CameraPoseSource:
    """The desktop camera as a pose source: the camera's current pose (input moves it)."""

    def __init__(self, camera: CameraController) -> None:
        self.camera = camera

    def pose_at(self, t: float) -> Pose:
        return self.camera.pose()


@dataclass(frozen=True)
class HeadTrace:
    """A head-motion trace: strictly increasing times with a pose each; interpolated in between."""

    times: tuple[float, ...]
    """Seconds, strictly increasing, starting anywhere (replay starts at the first)."""
    poses: tuple[Pose, ...]
    name: str = "trace"
    _t: npt.NDArray[np.float64] = field(init=False, repr=False, compare=False)
    _p: npt.NDArray[np.float64] = field(init=False, repr=False, compare=False)
    _q: npt.NDArray[np.float64] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.times) != len(self.poses):
            raise ValueError(
                f"a trace needs one pose per time, got {len(self.times)} times and {len(self.poses)} poses")
        if len(self.times) < 1:
            raise ValueError("a trace needs at least one sample")
        t = np.asarray(self.times, dtype=np.float64)
        if not np.all(np.isfinite(t)):
            raise ValueError("trace times must be finite")
        if np.any(np.diff(t) <= 0):
            bad = int(np.argmax(np.diff(t) <= 0)) + 1
            raise ValueError(f"trace times must increase strictly; sample {bad} at {t[bad]} s does not")
        q = np.array([p.orientation for p in self.poses], dtype=np.float64)
        # make neighbours share a hemisphere so interpolation takes the short way round
        for i in range(1, len(q)):
            if np.dot(q[i - 1], q[i]) < 0:
                q[i] = -q[i]
        object.__setattr__(self, "_t", t)
        object.__setattr__(self, "_p", np.array([p.position for p in self.poses], dtype=np.float64))
        object.__setattr__(self, "_q", q)

    @property
    def start(self) -> float:
        return float(self._t[0])

    @property
    def duration(self) -> float:
        return float(self._t[-1] - self._t[0])

    def pose_at(self, t: float) -> Pose:
        """The pose ``t`` seconds after the trace's start (held at the ends)."""
        ts = self._t
        tt = min(max(self.start + t, ts[0]), ts[-1])
        i = int(np.searchsorted(ts, tt, side="right")) - 1
        if i >= len(ts) - 1:
            return Pose(tuple(self._p[-1]), tuple(self._q[-1]))  # type: ignore[arg-type]
        a = (tt - ts[i]) / (ts[i + 1] - ts[i])
        p = self._p[i] * (1 - a) + self._p[i + 1] * a
        q = _slerp(self._q[i], self._q[i + 1], a)
        return Pose((float(p[0]), float(p[1]), float(p[2])), (float(q[0]), float(q[1]), float(q[2]), float(q[3])))

    def to_csv(self) -> str:
        """The trace as CSV text with the :data:`TRACE_COLUMNS` header."""
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(TRACE_COLUMNS)
        for t, p in zip(self.times, self.poses, strict=True):
            w.writerow([f"{t:.6f}", *(f"{c:.6f}" for c in p.position), *(f"{c:.8f}" for c in p.orientation)])
        return out.getvalue()

    def to_json(self) -> str:
        """The trace as JSON text: ``{"name": …, "samples": [{"t":…, "px":…, …}, …]}``."""
        samples = [dict(zip(TRACE_COLUMNS, (t, *p.position, *p.orientation), strict=True))
                   for t, p in zip(self.times, self.poses, strict=True)]
        return json.dumps({"name": self.name, "samples": samples})


def _slerp(q0: npt.NDArray[np.float64], q1: npt.NDArray[np.float64], a: float) -> npt.NDArray[np.float64]:
    d = float(np.clip(np.dot(q0, q1), -1.0, 1.0))
    if d > 0.9995:  # nearly equal: lerp is exact enough and avoids dividing by sin(0)
        q = q0 + (q1 - q0) * a
    else:
        theta = math.acos(d)
        q = (math.sin((1 - a) * theta) * q0 + math.sin(a * theta) * q1) / math.sin(theta)
    result: npt.NDArray[np.float64] = q / np.linalg.norm(q)
    return result


class SimulatedHeadset:
    """Replays a trace as a headset would report it: ``pose_at(t)`` and 90 Hz :meth:`samples`."""

    def __init__(self, trace: HeadTrace, *, rate_hz: float = DEFAULT_REFRESH_HZ, loop: bool = False) -> None:
        if not (math.isfinite(rate_hz) and rate_hz > 0):
            raise ValueError(f"sample rate must be positive, got {rate_hz}")
        self.trace = trace
        self.rate_hz = rate_hz
        self.loop = loop
        """Start over at the end (otherwise the last pose is held)."""

    @property
    def duration(self) -> float:
        return self.trace.duration

    def pose_at(self, t: float) -> Pose:
        if self.loop and self.trace.duration > 0:
            t = math.fmod(max(t, 0.0), self.trace.duration)
        return self.trace.pose_at(t)

    def samples(self, duration: float | None = None) -> Iterator[PoseSample]:
        """Poses at the headset rate from t = 0 for ``duration`` s (default: the trace's length)."""
        end = self.trace.duration if duration is None else duration
        n = math.floor(end * self.rate_hz + 1e-9) + 1
        for k in range(n):
            t = k / self.rate_hz
            yield PoseSample(t, self.pose_at(t))


def minimum_jerk(s: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Minimum-jerk position profile 10s³ − 15s⁴ + 6s⁵ for s in [0, 1] (clamped outside)."""
    x = np.clip(np.asarray(s, dtype=np.float64), 0.0, 1.0)
    result: npt.NDArray[np.float64] = x**3 * (10.0 - 15.0 * x + 6.0 * x**2)
    return result


def headturn_trace(*, yaw_deg: float = 90.0, turn_s: float = 0.4, hold_s: float = 0.5, turn_back: bool = True,
                   tremor_deg: float = 0.1, seed: int = 7, rate_hz: float = 1000.0,
                   head_position: tuple[float, float, float] = DEFAULT_HEAD_POSITION,
                   base_yaw_deg: float = 0.0, base_pitch_deg: float = 0.0) -> HeadTrace:
    """A fast head turn: hold, turn ``yaw_deg`` in ``turn_s`` (minimum jerk), hold, turn back, hold.

    Positive ``yaw_deg`` turns left. Tremor is a sum of three sines per axis in 8–12 Hz with random
    phases (``seed``) and a total amplitude of about ``tremor_deg``. The head pivots about the neck
    (:data:`NECK_TO_EYES_M`), so ``head_position`` (the point between the eyes at rest) moves a
    few centimetres during the turn. Sampled at ``rate_hz`` (finer than the headset's 90 Hz so that
    interpolation does not smooth the motion).
    """
    if not (turn_s > 0 and hold_s >= 0 and rate_hz > 0):
        raise ValueError("turn_s and rate_hz must be positive and hold_s non-negative")
    segments = [hold_s, turn_s, hold_s] + ([turn_s, hold_s] if turn_back else [])
    total = sum(segments)
    t = np.arange(0.0, total + 0.5 / rate_hz, 1.0 / rate_hz)
    yaw = yaw_deg * minimum_jerk((t - hold_s) / turn_s)
    if turn_back:
        back_start = 2 * hold_s + turn_s
        yaw = yaw - yaw_deg * minimum_jerk((t - back_start) / turn_s)
    rng = np.random.default_rng(seed)
    tremor_yaw = np.zeros_like(t)
    tremor_pitch = np.zeros_like(t)
    for _ in range(3):
        for tremor in (tremor_yaw, tremor_pitch):
            f = rng.uniform(8.0, 12.0)
            tremor += (tremor_deg / 3.0) * np.sin(2 * math.pi * f * t + rng.uniform(0, 2 * math.pi))
    yaw = yaw + base_yaw_deg + tremor_yaw
    pitch = base_pitch_deg + tremor_pitch
    neck = vec_add(head_position, tuple(-c for c in NECK_TO_EYES_M))  # type: ignore[arg-type]
    poses = []
    for y, p in zip(np.radians(yaw), np.radians(pitch), strict=True):
        q = quat_from_yaw_pitch(float(y), float(p))
        poses.append(Pose(vec_add(neck, quat_rotate(q, NECK_TO_EYES_M)), q))
    name = f"headturn {yaw_deg:g}°/{turn_s:g}s"
    return HeadTrace(tuple(float(x) for x in t), tuple(poses), name)


def parse_trace_csv(text: str, *, name: str = "csv trace") -> HeadTrace:
    """A trace from CSV text with the :data:`TRACE_COLUMNS` header (any column order)."""
    rows = list(csv.DictReader(io.StringIO(text)))
    missing = [c for c in TRACE_COLUMNS if rows and c not in rows[0]]
    if not rows:
        raise ValueError(f"{name}: no samples (expected a header {','.join(TRACE_COLUMNS)} and rows)")
    if missing:
        raise ValueError(f"{name}: missing column(s) {', '.join(missing)}; expected {','.join(TRACE_COLUMNS)}")
    return _trace_from_rows(rows, name)


def parse_trace_json(text: str, *, name: str = "json trace") -> HeadTrace:
    """A trace from JSON: ``{"samples": [{"t", "px", "py", "pz", "qx", "qy", "qz", "qw"}, …]}``
    or a bare list of such objects."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{name}: not JSON ({exc})") from None
    samples = doc.get("samples") if isinstance(doc, dict) else doc
    if not isinstance(samples, list) or not samples:
        raise ValueError(f"{name}: expected a non-empty list of samples (or {{\"samples\": [...]}})")
    if isinstance(doc, dict) and isinstance(doc.get("name"), str):
        name = doc["name"]
    return _trace_from_rows(samples, name)


def _trace_from_rows(rows: list[Any], name: str) -> HeadTrace:
    times, poses = [], []
    for i, row in enumerate(rows):
        try:
            v = [float(row[c]) for c in TRACE_COLUMNS]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{name}: sample {i} is malformed ({exc!r}); expected numbers {TRACE_COLUMNS}") from None
        times.append(v[0])
        poses.append(Pose((v[1], v[2], v[3]), (v[4], v[5], v[6], v[7])))
    return HeadTrace(tuple(times), tuple(poses), name)
