"""Pure headset math: stereo views, traces, prediction, reprojection homographies (no host)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from farview.client.headset.app import angle_deg, load_trace, summarize
from farview.client.headset.reprojection import (
    apply_homography,
    frame_homographies,
    is_identity,
    reproject_rgb,
    reprojection_homography,
)
from farview.input.headset import SIMULATED_HEADSET, HeadsetDescription, head_pose_of, stereo_pose_message, stereo_views
from farview.input.mathutil import quat_from_yaw_pitch, quat_rotate
from farview.input.pose import Fov, Pose, PoseMessage
from farview.input.pose_sources import (
    CameraPoseSource,
    HeadTrace,
    PoseSource,
    SimulatedHeadset,
    headturn_trace,
    minimum_jerk,
    parse_trace_csv,
    parse_trace_json,
)
from farview.input.prediction import LatencyEstimator, PosePredictor, angular_velocity


def yaw_pose(deg: float, position: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> Pose:
    return Pose(position, quat_from_yaw_pitch(math.radians(deg), 0.0))


# -- stereo -------------------------------------------------------------------------------------

def test_stereo_views_are_an_ipd_apart_along_the_head_x_axis() -> None:
    head = yaw_pose(90.0, (1.0, 1.6, 2.0))  # turned left: the head's +x is world -z
    left, right = stereo_views(head, SIMULATED_HEADSET)
    gap = np.subtract(right.pose.position, left.pose.position)
    assert np.allclose(gap, (0.0, 0.0, -SIMULATED_HEADSET.ipd_m), atol=1e-9)
    assert np.allclose(np.add(left.pose.position, right.pose.position) / 2, head.position)
    assert left.pose.orientation == right.pose.orientation == head.orientation
    assert (left.fov, right.fov) == (SIMULATED_HEADSET.left_fov, SIMULATED_HEADSET.right_fov)


def test_stereo_pose_message_round_trips_and_is_side_by_side() -> None:
    hs = HeadsetDescription.symmetric((400, 300), fov_x_deg=90, fov_y_deg=80, ipd_m=0.07)
    msg = stereo_pose_message(5, 123, yaw_pose(10.0, (0, 1, 0)), hs)
    assert msg.viewport == (800, 300) and len(msg.views) == 2
    decoded = PoseMessage.decode(msg.encode())
    assert decoded.viewport == msg.viewport and len(decoded.views) == 2
    mid = head_pose_of(decoded)
    assert np.allclose(mid.position, (0, 1, 0), atol=1e-6)
    assert angle_deg(mid, msg.views[0].pose) < 1e-3


@pytest.mark.parametrize("kwargs, message", [
    ({"eye_resolution": (0, 10)}, "eye resolution"),
    ({"eye_resolution": (4000, 10)}, "eye resolution"),
    ({"ipd_m": -0.01}, "IPD"),
    ({"refresh_hz": 0.0}, "refresh rate"),
])
def test_headset_description_is_validated(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HeadsetDescription(**kwargs)  # type: ignore[arg-type]


# -- pose sources -------------------------------------------------------------------------------

def test_headturn_trace_is_a_fast_minimum_jerk_turn_with_tremor() -> None:
    trace = headturn_trace(yaw_deg=90.0, turn_s=0.4, hold_s=0.5, tremor_deg=0.1)
    assert trace.duration == pytest.approx(2.3, abs=1e-3)
    source = SimulatedHeadset(trace)
    assert isinstance(source, PoseSource)
    rest = source.pose_at(0.0)
    turned = source.pose_at(0.5 + 0.4 + 0.25)
    assert 89.0 < angle_deg(rest, turned) < 91.0
    assert angle_deg(rest, source.pose_at(trace.duration)) < 1.0  # turned back
    # peak speed of a 90°/0.4 s minimum-jerk turn is 1.875 × 225°/s ≈ 422°/s, mid-turn
    speed = angle_deg(source.pose_at(0.69), source.pose_at(0.71)) / 0.02
    assert 380.0 < speed < 460.0
    # tremor: during the hold the head is not perfectly still, but within a fraction of a degree
    wobble = max(angle_deg(rest, source.pose_at(t)) for t in np.linspace(0, 0.45, 40))
    assert 0.01 < wobble < 0.5
    # the head pivots about the neck: the eyes move a few centimetres
    assert 0.02 < np.linalg.norm(np.subtract(turned.position, rest.position)) < 0.2
    samples = list(source.samples(1.0))
    assert len(samples) == 91 and samples[1].t == pytest.approx(1 / 90)
    assert minimum_jerk([0.0, 0.5, 1.0]).tolist() == [0.0, 0.5, 1.0]


def test_trace_csv_and_json_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    trace = headturn_trace(rate_hz=100.0)
    for text, parse in ((trace.to_csv(), parse_trace_csv), (trace.to_json(), parse_trace_json)):
        back = parse(text)
        assert len(back.times) == len(trace.times)
        for t in (0.0, 0.63, 1.2, 2.0):
            assert angle_deg(back.pose_at(t), trace.pose_at(t)) < 1e-3
            assert np.allclose(back.pose_at(t).position, trace.pose_at(t).position, atol=1e-5)
    path = tmp_path / "turn.json"
    path.write_text(trace.to_json())
    assert len(load_trace(str(path)).times) == len(trace.times)
    assert load_trace("headturn").duration > 2.0


def test_bad_traces_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="missing column"):
        parse_trace_csv("t,px\n0,0\n")
    with pytest.raises(ValueError, match="sample 1 is malformed"):
        parse_trace_json('[{"t":0,"px":0,"py":0,"pz":0,"qx":0,"qy":0,"qz":0,"qw":1},{"t":1}]')
    with pytest.raises(ValueError, match="increase strictly"):
        HeadTrace((0.0, 0.0), (Pose(), Pose()))
    with pytest.raises(ValueError, match="cannot read trace"):
        load_trace("/nonexistent/trace.csv")


def test_camera_pose_source_follows_the_camera() -> None:
    from farview.input.camera import CameraController

    cam = CameraController()
    src = CameraPoseSource(cam)
    before = src.pose_at(0.0)
    cam.orbit(0.3, 0.0)
    assert angle_deg(before, src.pose_at(1.0)) == pytest.approx(math.degrees(0.3), abs=1e-6)


# -- prediction ---------------------------------------------------------------------------------

def test_prediction_extrapolates_a_constant_turn_and_can_be_turned_off() -> None:
    rate = 200.0  # °/s about world y
    on, off = PosePredictor(), PosePredictor(enabled=False)
    for k in range(10):
        t = k / 90
        for p in (on, off):
            p.add(t, yaw_pose(rate * t, (0.01 * t, 0, 0)))
    t_last = 9 / 90
    assert on.motion.angular_speed_deg == pytest.approx(rate, rel=1e-6)
    pred = on.predict(0.05)
    assert angle_deg(pred, yaw_pose(rate * (t_last + 0.05))) < 1e-4
    assert pred.position[0] == pytest.approx(0.01 * (t_last + 0.05))
    assert angle_deg(off.predict(0.05), yaw_pose(rate * t_last)) < 1e-4
    assert on.predict(10.0) == on.extrapolate(0.2)  # capped horizon
    w = angular_velocity(yaw_pose(0).orientation, yaw_pose(10).orientation, 0.1)
    assert np.allclose(w, (0, math.radians(100), 0))


def test_latency_estimator_tracks_measurements() -> None:
    est = LatencyEstimator(initial_s=0.05, display_latency_s=0.011)
    assert est.horizon_s == pytest.approx(0.061)
    est.add(0.1)
    assert est.horizon_s == pytest.approx(0.111)
    for _ in range(100):
        est.add(0.02)
    assert est.pose_to_present_s == pytest.approx(0.02, abs=1e-3)


# -- reprojection -------------------------------------------------------------------------------

FOV = Fov(-1.0, 1.0, 0.75, -0.75)


def test_identity_when_the_orientation_did_not_change() -> None:
    q = yaw_pose(30.0).orientation
    assert is_identity([reprojection_homography(q, FOV, q, FOV)])


def test_homography_maps_a_world_direction_to_the_same_direction() -> None:
    rendered, target = yaw_pose(0.0), Pose((0, 0, 0), quat_from_yaw_pitch(math.radians(12), math.radians(-5)))
    h = reprojection_homography(rendered.orientation, FOV, target.orientation, FOV)
    # a world direction seen at output (u, v) in the target view must be at (u', v') in the rendered one
    for u, v in ((0.5, 0.5), (0.2, 0.7), (0.9, 0.1)):
        d_target = (FOV.tan_left + u * 2.0, FOV.tan_up - v * 1.5, -1.0)
        world = quat_rotate(target.orientation, d_target)
        d_src = quat_rotate((-rendered.orientation[0], -rendered.orientation[1], -rendered.orientation[2],
                             rendered.orientation[3]), world)
        tx, ty = d_src[0] / -d_src[2], d_src[1] / -d_src[2]
        us, vs, valid = apply_homography(h, u, v)
        assert valid
        assert float(us) == pytest.approx((tx - FOV.tan_left) / 2.0)
        assert float(vs) == pytest.approx((FOV.tan_up - ty) / 1.5)


def test_turning_left_moves_the_picture_right_and_leaves_black_at_the_left_edge() -> None:
    img = np.zeros((60, 160, 3), np.uint8)
    img[:, 38:42] = 255  # a vertical line at the centre of the left eye (x = 40 of 80)
    img[:, 118:122] = 255  # and of the right eye
    views = stereo_views(Pose(), HeadsetDescription.symmetric((80, 60)))
    msg = PoseMessage(1, 0, views, (160, 60))
    out = reproject_rgb(img, frame_homographies(msg, yaw_pose(10.0).orientation))
    for eye in (0, 1):
        cols = np.nonzero(out[30, eye * 80:(eye + 1) * 80, 0] == 255)[0]
        assert cols.size > 0 and cols.mean() > 43  # moved right within its own eye
        assert (out[:, eye * 80] == 0).all()  # the new left edge saw nothing in the old frame
    assert np.array_equal(reproject_rgb(img, frame_homographies(msg, Pose().orientation)), img)


def test_summary_percentiles() -> None:
    from farview.client.headset.app import angular_error

    errs = [angular_error(t=0, rendered_raw=yaw_pose(0), rendered_predicted=yaw_pose(5), latest_raw=yaw_pose(8),
                          latest_predicted=yaw_pose(10), truth=yaw_pose(10), pose_to_present_s=0.05,
                          display_latency_s=0.01, head_speed_deg_s=100, prediction=True, reprojection=False)]
    e = errs[0]
    assert (e.uncorrected_deg, e.predicted_deg, e.reprojected_deg) == pytest.approx((10, 5, 2))
    assert e.corrected_deg == pytest.approx(0, abs=1e-6) and e.presented_deg == pytest.approx(5)
    assert e.motion_to_photon_ms == pytest.approx(60)
    s = summarize(errs)
    assert s["uncorrected_deg"]["p50"] == pytest.approx(10)


def test_a_run_that_ended_before_any_frame_prints_no_table_of_nan() -> None:
    """``--trace nofile.csv`` printed its clear error and then sixteen lines of ``nan``."""
    from farview.client.headset.app import HeadsetResult

    result = HeadsetResult(exit_code=2, message="no such trace", ticks=0)
    assert result.summary() == "0 frames presented in 0 ticks"
    assert "nan" not in result.summary()


def test_one_frame_is_counted_in_the_singular() -> None:
    """A viewer refused its bitrate after its first frame said "1 frames presented"."""
    from farview.client.headset.app import HeadsetResult
    from farview.client.viewer.app import ViewerResult

    assert ViewerResult(frames_presented=1).summary() == "1 frame presented"
    assert ViewerResult(frames_presented=2).summary() == "2 frames presented"
    timed = ViewerResult(frames_presented=3, pose_to_present_ms=[12.0, 14.0, 30.0])
    for at in (10.0, 10.5, 11.0):  # (the first and the last frame set the span)
        timed.presented(at)
    assert timed.summary() == ("3 frames presented in 1.0 s (2.0 fps); pose → present p50 "
                               "14.0 ms, p99 30.0 ms")
    assert HeadsetResult(frames_presented=1, ticks=3).summary() == "1 frame presented in 3 ticks"


def test_the_trace_example_in_the_docs_parses_and_a_bad_trace_names_its_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """docs/headset.md shows a trace file (the format was documented nowhere); a NaN time or a
    zero quaternion did not name the file."""
    import re
    from pathlib import Path

    from farview.client.headset.app import load_trace

    doc = (Path(__file__).resolve().parents[2] / "docs" / "headset.md").read_text()
    example = re.search(r"```csv\n(.*?)```", doc, re.S)
    assert example is not None, "docs/headset.md lost its trace example"
    good = tmp_path / "turn.csv"
    good.write_text(example.group(1))
    trace = load_trace(str(good))
    assert trace.times == (0.0, 0.5)
    bad = tmp_path / "bad.csv"
    bad.write_text(example.group(1) + "nan,0,0.1,1.0,0,0,0,1\n")
    with pytest.raises(ValueError, match=r"^bad\.csv: "):
        load_trace(str(bad))


def test_a_run_refused_before_it_started_prints_no_frame_count() -> None:
    """A bad trace printed its message, then "0 frames presented in 0 ticks", as if it had run."""
    import io

    from farview.client.headset.app import HeadsetResult
    from farview.client.viewer.app import print_result

    out = io.StringIO()
    print_result(HeadsetResult(exit_code=2, message="bad.csv: trace times must be finite"), out)
    assert out.getvalue() == "farview: bad.csv: trace times must be finite\n"
    out = io.StringIO()
    print_result(HeadsetResult(exit_code=5, message="lost", frames_presented=3, ticks=9), out)
    assert out.getvalue() == "farview: lost\n3 frames presented in 9 ticks\n"
