"""Controls and the latest-frame mailbox: pure logic, no display."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from farview.client.viewer.controls import KEY_HELP, Command, Controls, Mode
from farview.client.viewer.events import (
    KEY_ESCAPE,
    KEY_F11,
    KEY_R,
    KEY_TAB,
    KEY_V,
    KEY_W,
    MOD_SHIFT,
    MOUSE_BUTTON_LEFT,
    MOUSE_BUTTON_RIGHT,
    CursorMoveEvent,
    KeyEvent,
    MouseButtonEvent,
    ScrollEvent,
)
from farview.input.camera import CameraController
from farview.input.events import Action
from farview.streaming.frame import Frame
from farview.streaming.mailbox import LatestMailbox


def drag(controls: Controls, button: int, dx: float, dy: float, mods: int = 0) -> None:
    controls.handle(MouseButtonEvent(button, Action.PRESS, mods, 100.0, 100.0))
    controls.handle(CursorMoveEvent(100.0 + dx, 100.0 + dy))
    controls.handle(MouseButtonEvent(button, Action.RELEASE, mods, 100.0 + dx, 100.0 + dy))


def test_left_drag_orbits_right_drag_pans() -> None:
    cam = CameraController()
    controls = Controls(cam, window_size=(1280, 720))
    drag(controls, MOUSE_BUTTON_LEFT, 72.0, 0.0)  # a tenth of the height
    assert cam.yaw == pytest.approx(-0.1 * np.pi)
    assert cam.target == (0.0, 0.0, 0.0)
    drag(controls, MOUSE_BUTTON_RIGHT, 72.0, 0.0)
    assert cam.target[0] < 0.0  # camera slides left so the scene follows the cursor
    before = cam.target
    drag(controls, MOUSE_BUTTON_LEFT, 0.0, 72.0, mods=MOD_SHIFT)
    assert cam.target[1] > before[1]


def test_moves_without_button_do_nothing() -> None:
    cam = CameraController()
    controls = Controls(cam)
    controls.handle(CursorMoveEvent(10.0, 10.0))
    controls.handle(CursorMoveEvent(500.0, 300.0))
    assert cam.state() == CameraController().state()


def test_wheel_zooms_and_keys_give_commands() -> None:
    cam = CameraController()
    controls = Controls(cam)
    controls.handle(ScrollEvent(0.0, 1.0))
    assert cam.distance < 3.0
    assert controls.handle(KeyEvent(KEY_R, Action.PRESS)) is Command.RESET_VIEW
    assert cam.distance == pytest.approx(3.0)
    assert controls.handle(KeyEvent(KEY_ESCAPE, Action.PRESS)) is Command.QUIT
    assert controls.handle(KeyEvent(KEY_F11, Action.PRESS)) is Command.TOGGLE_FULLSCREEN
    assert controls.handle(KeyEvent(KEY_TAB, Action.PRESS)) is Command.TOGGLE_STATS
    assert controls.handle(KeyEvent(KEY_TAB, Action.REPEAT)) is None


def test_wasd_flies_while_held_and_fly_mode_looks() -> None:
    cam = CameraController()
    controls = Controls(cam, fly_speed=2.0)
    controls.handle(KeyEvent(KEY_W, Action.PRESS))
    assert controls.update(0.5)
    assert cam.target == pytest.approx((0.0, 0.0, -1.0))
    controls.handle(KeyEvent(KEY_W, Action.RELEASE))
    assert not controls.update(0.5)
    assert controls.handle(KeyEvent(KEY_V, Action.PRESS)) is Command.TOGGLE_MODE
    assert controls.mode is Mode.FLY
    eye = cam.eye
    drag(controls, MOUSE_BUTTON_RIGHT, 72.0, 0.0)
    assert cam.eye == pytest.approx(eye)
    assert cam.yaw < 0.0


def test_key_help_lists_every_binding() -> None:
    for word in ("orbit", "pan", "zoom", "W A S D", "Q E", "reset", "F11", "Tab", "Esc", "H "):
        assert word in KEY_HELP


def _frame(value: int) -> Frame:
    y = np.full((4, 4), value, np.uint8)
    uv = np.full((2, 2), 128, np.uint8)
    return Frame(y, uv, uv, None, None)


def test_mailbox_keeps_newest_and_counts_discards() -> None:
    box = LatestMailbox()
    assert box.take() is None
    box.put(_frame(1))
    box.put(_frame(2))
    frame = box.take()
    assert frame is not None and frame.y[0, 0] == 2
    assert box.take() is None
    assert (box.received, box.discarded) == (2, 1)


def test_mailbox_across_threads() -> None:
    box = LatestMailbox()
    taken = []

    def producer() -> None:
        for i in range(2000):
            box.put(_frame(i % 256))

    thread = threading.Thread(target=producer)
    thread.start()
    while thread.is_alive():
        frame = box.take()
        if frame is not None:
            taken.append(frame)
    thread.join()
    last = box.take()
    if last is not None:
        taken.append(last)
    assert box.received == 2000
    assert len(taken) + box.discarded == 2000


def test_viewer_all_is_complete() -> None:
    import farview.client.viewer as viewer

    public = {name for name in vars(viewer) if not name.startswith("_")}
    modules = {"app", "controls", "events", "loop", "overlay", "window", "yuv_renderer"}
    assert set(viewer.__all__) == public - modules


def test_mailbox_wait_take_wakes_on_put() -> None:
    box = LatestMailbox()
    assert box.wait_take(0.02) is None  # nothing came: None after the timeout
    timer = threading.Timer(0.05, box.put, args=(_frame(7),))
    timer.start()
    frame = box.wait_take(10.0)  # returns when the frame is put, not after 10 s
    timer.join()
    assert frame is not None and frame.y[0, 0] == 7
    box.put(_frame(8))
    taken = box.wait_take(0.0)  # a frame already there: taken without waiting
    assert taken is not None and taken.y[0, 0] == 8
    assert not box.wait(0.01)  # taken: nothing waits any more
    box.put(_frame(9))
    assert box.wait(10.0) and box.wait(0.0)  # wait() does not take it
    last = box.take()
    assert last is not None and last.y[0, 0] == 9


def test_framing_centres_the_box_and_backs_off_with_its_size() -> None:
    from farview.input.camera import framing

    small = framing((-0.325, -0.262, -0.261), (0.313, 0.271, 0.235))  # the sample engine
    assert small.target == pytest.approx((-0.006, 0.0045, -0.013), abs=1e-6)
    assert small.distance == pytest.approx(1.08, abs=0.02)  # the default view before bounds
    big = framing((-10.0, 0.0, -10.0), (10.0, 20.0, 10.0), yaw=0.6, pitch=-0.35)
    assert big.target == (0.0, 10.0, 0.0) and (big.yaw, big.pitch) == (0.6, -0.35)
    assert big.distance == pytest.approx(small.distance * np.linalg.norm([20, 20, 20])
                                         / np.linalg.norm([0.638, 0.533, 0.496]), rel=1e-3)
    # the eye sees the whole bounding sphere: radius / distance < tan(fov / 2)
    assert np.linalg.norm([20, 20, 20]) / 2 / big.distance < np.tan(np.radians(30))
    with pytest.raises(ValueError, match="finite box with lo <= hi"):
        framing((1.0, 0.0, 0.0), (0.0, 1.0, 1.0))
    # a view narrower than high (a phone held upright) fits the sphere across its width
    upright = framing((-10.0, 0.0, -10.0), (10.0, 20.0, 10.0), aspect=0.5)
    assert upright.distance == pytest.approx(2 * big.distance)
    assert np.linalg.norm([20, 20, 20]) / 2 / upright.distance < np.tan(np.radians(30)) * 0.5
    assert framing((-10.0, 0.0, -10.0), (10.0, 20.0, 10.0), aspect=2.0).distance == big.distance
    with pytest.raises(ValueError, match="positive aspect"):
        framing((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), aspect=0.0)
