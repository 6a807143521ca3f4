"""Camera math: quaternion helpers and the orbit/pan/zoom/fly controller (no display)."""

from __future__ import annotations

import math

import pytest

from farview.input.camera import MAX_PITCH, CameraController, CameraState
from farview.input.mathutil import (
    quat_angle_between,
    quat_from_axis_angle,
    quat_from_yaw_pitch,
    quat_multiply,
    quat_rotate,
    vec_length,
    vec_sub,
)


def close(a: tuple[float, ...], b: tuple[float, ...], tol: float = 1e-9) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def test_rotate_about_y_is_right_handed() -> None:
    q = quat_from_axis_angle((0.0, 1.0, 0.0), math.pi / 2)
    assert close(quat_rotate(q, (1.0, 0.0, 0.0)), (0.0, 0.0, -1.0))


def test_multiply_applies_right_operand_first() -> None:
    qx = quat_from_axis_angle((1.0, 0.0, 0.0), math.pi / 2)
    qy = quat_from_axis_angle((0.0, 1.0, 0.0), math.pi / 2)
    v = (0.0, 0.0, -1.0)
    assert close(quat_rotate(quat_multiply(qy, qx), v), quat_rotate(qy, quat_rotate(qx, v)))


def test_angle_between() -> None:
    a = quat_from_yaw_pitch(0.3, 0.0)
    b = quat_from_yaw_pitch(0.3 + 0.5, 0.0)
    assert quat_angle_between(a, b) == pytest.approx(0.5)
    assert quat_angle_between(a, a) == pytest.approx(0.0, abs=1e-6)


def test_yaw_pitch_turn_left_and_up() -> None:
    cam = CameraController()
    assert close(cam.forward, (0.0, 0.0, -1.0))
    cam.yaw = math.pi / 2
    assert close(cam.forward, (-1.0, 0.0, 0.0))  # positive yaw looks left
    cam.yaw, cam.pitch = 0.0, 0.5
    assert cam.forward[1] == pytest.approx(math.sin(0.5))  # positive pitch looks up


def test_default_pose_looks_at_target_from_plus_z() -> None:
    cam = CameraController(CameraState(target=(1.0, 2.0, 3.0), distance=4.0))
    pose = cam.pose()
    assert close(pose.position, (1.0, 2.0, 7.0))
    assert close(pose.orientation, (0.0, 0.0, 0.0, 1.0))


def test_orbit_keeps_target_and_distance() -> None:
    cam = CameraController(CameraState(target=(0.5, 0.0, -1.0), distance=2.0))
    cam.orbit(0.7, -0.3)
    assert close(cam.target, (0.5, 0.0, -1.0))
    assert vec_length(vec_sub(cam.eye, cam.target)) == pytest.approx(2.0)
    # The eye looks at the target.
    to_target = vec_sub(cam.target, cam.eye)
    assert close(tuple(c / 2.0 for c in to_target), cam.forward)


def test_pitch_is_clamped() -> None:
    cam = CameraController()
    cam.orbit(0.0, 10.0)
    assert cam.pitch == pytest.approx(MAX_PITCH)
    cam.look(0.0, -20.0)
    assert cam.pitch == pytest.approx(-MAX_PITCH)


def test_look_keeps_eye() -> None:
    cam = CameraController()
    eye = cam.eye
    cam.look(0.4, 0.2)
    assert close(cam.eye, eye, 1e-9)
    assert cam.yaw == pytest.approx(0.4)


def test_pan_moves_scene_with_cursor() -> None:
    cam = CameraController(CameraState(distance=2.0), fov_y_deg=60.0)
    cam.pan(0.5, 0.0)  # half the viewport height to the right
    visible_height = 2.0 * 2.0 * math.tan(math.radians(30.0))
    assert close(cam.target, (-0.5 * visible_height, 0.0, 0.0))  # camera goes left
    cam.pan(0.0, 0.25)  # down: camera goes up
    assert cam.target[1] == pytest.approx(0.25 * visible_height)


def test_zoom_is_multiplicative_and_bounded() -> None:
    cam = CameraController(CameraState(distance=3.0))
    cam.zoom(1)
    cam.zoom(-1)
    assert cam.distance == pytest.approx(3.0)
    cam.zoom(2)
    assert cam.distance < 3.0
    cam.zoom(-10_000)
    # out no farther than 20 times the home view (the model went to a pixel, then nothing)
    assert cam.distance == pytest.approx(3.0 * 20)
    cam.zoom(10_000)
    assert cam.distance == pytest.approx(0.01)  # in as far as the user likes
    far = CameraController(CameraState(distance=9_000.0))
    far.distance = 9_500.0  # (flown out past it: zooming out does not pull it in)
    far.zoom(-10_000)
    assert far.distance == pytest.approx(10_000.0)


def test_move_flies_along_view() -> None:
    cam = CameraController()
    cam.yaw = math.pi / 2  # looking along -x
    cam.move(1.0, 0.0, 0.0, dt=0.5, speed=2.0)
    assert close(cam.target, (-1.0, 0.0, 0.0))
    cam.move(0.0, 0.0, 1.0, dt=1.0, speed=1.0)
    assert cam.target[1] == pytest.approx(1.0)


def test_reset_and_yaw_wraps() -> None:
    cam = CameraController()
    for _ in range(100):
        cam.orbit(1.0, 0.0)
    assert -math.pi <= cam.yaw <= math.pi
    cam.pan(0.3, 0.3)
    cam.zoom(3)
    cam.reset()
    assert cam.state() == CameraState()


def test_invalid_state_rejected() -> None:
    with pytest.raises(ValueError, match="distance"):
        CameraState(distance=0.0)
    with pytest.raises(ValueError, match="finite"):
        CameraState(target=(math.nan, 0.0, 0.0))


def test_input_does_not_import_gl() -> None:
    import subprocess
    import sys

    code = ("import input.camera, sys; "
            "print(any(m in sys.modules for m in ('glfw', 'OpenGL', 'av', 'aiortc')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
