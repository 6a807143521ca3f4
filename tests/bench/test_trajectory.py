"""Unit tests for the bench's scripted trajectories (pure code, no I/O)."""

from __future__ import annotations

import math

import pytest

from farview.input.mathutil import quat_angle_between, quat_rotate, vec_length, vec_sub
from farview.input.pose_sources import headturn_trace, parse_trace_csv
from farview.input.trajectory import (
    DEFAULT_DISTANCE,
    DEFAULT_TARGET,
    Orbit,
    Shake,
    TraceTrajectory,
    Trajectory,
    TrajectorySpec,
    make_trajectory,
    parse_trajectory_spec,
)


def _looks_at_target(pose_position, orientation) -> float:  # type: ignore[no-untyped-def]
    """Angle (rad) between the camera's view direction and the direction to the target."""
    forward = quat_rotate(orientation, (0.0, 0.0, -1.0))
    to_target = vec_sub(DEFAULT_TARGET, pose_position)
    n = vec_length(to_target)
    cos = sum(a * b for a, b in zip(forward, to_target, strict=True)) / n
    return math.acos(max(-1.0, min(1.0, cos)))


def test_orbit_keeps_distance_and_looks_at_target() -> None:
    orbit = Orbit()
    for t in (0.0, 0.5, 1.7, 4.0, 7.9):
        pose = orbit.pose_at(t)
        assert vec_length(vec_sub(pose.position, DEFAULT_TARGET)) == pytest.approx(DEFAULT_DISTANCE)
        assert _looks_at_target(pose.position, pose.orientation) < 1e-6


def test_orbit_is_periodic_and_turns_at_the_expected_rate() -> None:
    orbit = Orbit(period_s=8.0)
    a, b = orbit.pose_at(1.0), orbit.pose_at(9.0)
    assert a.position == pytest.approx(b.position)
    # 1/60 s at 45°/s about the vertical axis
    step = quat_angle_between(orbit.pose_at(1.0).orientation, orbit.pose_at(1.0 + 1 / 60).orientation)
    assert math.degrees(step) == pytest.approx(45.0 / 60, rel=1e-3)


def test_shake_stays_in_place_and_turns_fast_but_small() -> None:
    shake = Shake()
    rest = shake.pose_at(0.0).position
    angles = []
    for i in range(600):
        pose = shake.pose_at(i / 240)
        assert pose.position == pytest.approx(rest)
        angles.append(_looks_at_target(pose.position, pose.orientation))
    assert max(math.degrees(a) for a in angles) < 2 * 2 * shake.amplitude_deg
    speeds = [math.degrees(quat_angle_between(shake.pose_at(i / 240).orientation,
                                              shake.pose_at((i + 1) / 240).orientation)) * 240
              for i in range(600)]
    assert max(speeds) > 60.0  # fast: every 60 Hz frame differs


def test_trace_loops() -> None:
    trace = headturn_trace()
    traj = TraceTrajectory(trace)
    assert traj.pose_at(0.3).orientation == pytest.approx(traj.pose_at(0.3 + trace.duration).orientation)
    assert "headturn" in traj.name


def test_trace_from_csv_text() -> None:
    text = "t,px,py,pz,qx,qy,qz,qw\n0,0,0,1,0,0,0,1\n1,1,0,1,0,0,0,1\n"
    traj = make_trajectory(parse_trajectory_spec("trace:x.csv"), parse_trace_csv(text))
    assert traj.pose_at(0.5).position == pytest.approx((0.5, 0.0, 1.0))


@pytest.mark.parametrize(("text", "file", "expected"), [
    ("orbit", None, TrajectorySpec("orbit")),
    ("SHAKE", None, TrajectorySpec("shake")),
    ("trace:/tmp/a b.csv", None, TrajectorySpec("trace", "/tmp/a b.csv")),
    ("trace", "t.json", TrajectorySpec("trace", "t.json")),
])
def test_parse_spec(text: str, file: str | None, expected: TrajectorySpec) -> None:
    assert parse_trajectory_spec(text, file) == expected


@pytest.mark.parametrize(("text", "file", "message"), [
    ("spiral", None, "unknown trajectory 'spiral'; use orbit, shake, headturn or trace:FILE"),
    ("trace", None, "a trace trajectory needs a file"),
    ("orbit:x", None, "only a trace takes a file; got 'orbit:x'"),
    ("orbit", "x.csv", "a trace trajectory needs a file"),
    ("trace:a.csv", "b.csv", "two trace files given: 'a.csv' and 'b.csv'"),
])
def test_parse_spec_errors(text: str, file: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_trajectory_spec(text, file)


def test_protocol() -> None:
    assert isinstance(Orbit(), Trajectory)
    assert isinstance(Shake(), Trajectory)
    with pytest.raises(ValueError, match="orbit period must be positive"):
        Orbit(period_s=0)


def test_headturn_trajectory_turns_fast_and_loops() -> None:
    import math

    from farview.input.mathutil import quat_angle_between
    from farview.input.trajectory import make_trajectory, parse_trajectory_spec

    traj = make_trajectory(parse_trajectory_spec("headturn"))
    start = traj.pose_at(0.0).orientation
    angles = [math.degrees(quat_angle_between(start, traj.pose_at(t / 100).orientation)) for t in range(0, 150)]
    assert max(angles) > 80  # the generated turn is 90°
    duration = traj.trace.duration  # type: ignore[attr-defined]
    looped, first = traj.pose_at(duration + 0.01).orientation, traj.pose_at(0.01).orientation
    assert math.degrees(quat_angle_between(looped, first)) < 0.01
