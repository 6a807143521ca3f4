"""The real window under Xvfb: YUV shader colours, letterbox, overlay, input paths, errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

import glfw
import numpy as np
import pytest
from OpenGL import GL
from PIL import Image

from farview.client.viewer import events as ev
from farview.client.viewer.loop import ViewerLoop
from farview.client.viewer.overlay import MARGIN
from farview.client.viewer.window import NO_DISPLAY_MESSAGE, Window
from farview.client.viewer.yuv_renderer import YuvRenderer, letterbox
from farview.input.events import EventKind, InputEvent
from farview.input.pose import PoseRequest
from farview.streaming.frame import Frame
from farview.streaming.mailbox import LatestMailbox

pytestmark = pytest.mark.e2e

TITLE = "farview-viewer-e2e"
SIZE = (1280, 720)
BARS = np.array(
    [[235, 235, 235], [235, 235, 16], [16, 235, 235], [16, 235, 16],
     [235, 16, 235], [235, 16, 16], [16, 16, 235], [16, 16, 16]],
    dtype=np.float64,
)
"""75%-ish colour bars (white, yellow, cyan, green, magenta, red, blue, black) in 0..255 RGB."""


def rgb_to_i420(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BT.601 limited range, the inverse of Frame.to_rgb; chroma averaged over 2×2 blocks."""
    c = rgb.astype(np.float64) / 255.0
    r, g, b = c[..., 0], c[..., 1], c[..., 2]
    y = 16 + 65.481 * r + 128.553 * g + 24.966 * b
    u = 128 - 37.797 * r - 74.203 * g + 112.0 * b
    v = 128 + 112.0 * r - 93.786 * g - 18.214 * b
    h, w = y.shape

    def sub(p: np.ndarray) -> np.ndarray:
        return p.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))

    def u8(p: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(p), 0, 255).astype(np.uint8)

    return u8(y), u8(sub(u)), u8(sub(v))


def colour_bars(width: int, height: int) -> tuple[np.ndarray, Frame]:
    """Eight vertical bars, with the top eighth of the picture red so a flip would show."""
    rgb = np.zeros((height, width, 3), np.uint8)
    bar = width // 8
    for i, colour in enumerate(BARS):
        rgb[:, i * bar:(i + 1) * bar] = colour
    rgb[: height // 8] = (235, 16, 16)
    y, u, v = rgb_to_i420(rgb)
    return rgb, Frame(y, u, v, None, None)


@pytest.fixture(scope="module")
def window(xvfb_display: str) -> Iterator[Window]:
    win = Window(title=TITLE, size=SIZE, vsync=False)
    yield win
    win.close()


@pytest.fixture
def win(window: Window) -> Window:
    """The shared window, back at its default size with no queued events."""
    window.make_current()
    if window.window_size() != SIZE:
        window.set_size(*SIZE)
        _wait_for(lambda: window.framebuffer_size() == SIZE, window)
    window.poll()
    return window


def _wait_for(cond: object, window: Window, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return
        window.poll()
        time.sleep(0.01)
    raise AssertionError("condition not reached in time")


def _draw(win: Window, renderer: YuvRenderer, frame: Frame) -> np.ndarray:
    GL.glViewport(0, 0, *win.framebuffer_size())
    GL.glClearColor(0.0, 0.0, 0.0, 1.0)
    GL.glClear(GL.GL_COLOR_BUFFER_BIT)
    renderer.upload(frame.y, frame.u, frame.v)
    renderer.draw(win.framebuffer_size())
    pixels = win.read_pixels()
    win.swap()
    return pixels


def test_key_codes_match_glfw() -> None:
    assert (ev.KEY_ESCAPE, ev.KEY_TAB, ev.KEY_F1, ev.KEY_F11) == (
        glfw.KEY_ESCAPE, glfw.KEY_TAB, glfw.KEY_F1, glfw.KEY_F11)
    assert (ev.KEY_W, ev.KEY_A, ev.KEY_LEFT_SHIFT, ev.KEY_RIGHT_SHIFT) == (
        glfw.KEY_W, glfw.KEY_A, glfw.KEY_LEFT_SHIFT, glfw.KEY_RIGHT_SHIFT)
    assert (ev.MOUSE_BUTTON_LEFT, ev.MOUSE_BUTTON_RIGHT, ev.MOUSE_BUTTON_MIDDLE) == (
        glfw.MOUSE_BUTTON_LEFT, glfw.MOUSE_BUTTON_RIGHT, glfw.MOUSE_BUTTON_MIDDLE)
    assert (ev.MOD_SHIFT, ev.MOD_CONTROL, ev.MOD_ALT) == (
        glfw.MOD_SHIFT, glfw.MOD_CONTROL, glfw.MOD_ALT)


def test_colour_bars_drawn_upright_with_source_colours(win: Window) -> None:
    rgb, frame = colour_bars(*SIZE)
    renderer = YuvRenderer()
    try:
        pixels = _draw(win, renderer, frame)
    finally:
        renderer.close()
    reference = frame.to_rgb()
    bar = SIZE[0] // 8
    row = SIZE[1] // 2
    for i in range(8):
        x = i * bar + bar // 2
        got = pixels[row, x].astype(int)
        assert np.abs(got - rgb[row, x].astype(int)).max() <= 4, (i, got, rgb[row, x])
        assert np.abs(got - reference[row, x].astype(int)).max() <= 2, (i, got, reference[row, x])
    # Row 0 of the planes is the top of the window: the red strip is up there.
    assert np.abs(pixels[SIZE[1] // 16, bar // 2].astype(int) - (235, 16, 16)).max() <= 4
    # Drawn 1:1, the shader must agree with the CPU reference everywhere, bar edges included.
    assert np.abs(pixels.astype(int) - reference.astype(int)).max() <= 2


def test_letterbox_and_pillarbox(win: Window) -> None:
    assert letterbox((640, 640), (1280, 720)) == (280, 0, 720, 720)
    assert letterbox((1280, 360), (1280, 720)) == (0, 180, 1280, 360)
    assert letterbox((1280, 720), (1280, 720)) == (0, 0, 1280, 720)
    renderer = YuvRenderer()
    try:
        _, square = colour_bars(640, 640)
        pixels = _draw(win, renderer, square)
        assert pixels[360, :270].max() == 0 and pixels[360, 1010:].max() == 0  # side bars
        assert np.abs(pixels[360, 280 + 45].astype(int) - 235).max() <= 4  # first bar: white
        _, wide = colour_bars(1280, 360)
        pixels = _draw(win, renderer, wide)  # size change reallocates the textures
        assert pixels[:170].max() == 0 and pixels[550:].max() == 0  # top and bottom bars
        assert np.abs(pixels[360, 80].astype(int) - 235).max() <= 4
    finally:
        renderer.close()


def test_overlay_changes_its_corner_only_when_on(win: Window) -> None:
    mailbox = LatestMailbox()
    loop = ViewerLoop(win, mailbox, show_stats=False)
    try:
        _, frame = colour_bars(*SIZE)
        mailbox.put(frame)
        loop.step()
        off = loop.screenshot_pixels()
        loop.overlay.toggle_stats()
        on = loop.screenshot_pixels()
        corner = (slice(0, 60), slice(0, 120))
        assert np.abs(on[corner].astype(int) - off[corner].astype(int)).max() > 50
        assert np.array_equal(on[200:, 300:], off[200:, 300:])  # the rest is untouched
        assert loop.overlay.stats.renders == 1
        for _ in range(5):  # unchanged text within the refresh period is not re-rendered
            loop.step()
        assert loop.overlay.stats.renders <= 2
        loop.overlay.toggle_stats()
        assert np.array_equal(loop.screenshot_pixels(), off)
        loop.set_status("reconnecting…")
        banner = loop.screenshot_pixels()
        assert np.abs(banner[-40:, 560:720].astype(int) - off[-40:, 560:720].astype(int)).max() > 50
        # a banner wider than the window is wrapped to it (it was cut off at both sides)
        loop.set_status("the session service stopped; waiting for it " * 8)
        loop.step()
        status = loop.overlay.status
        assert len(status.lines) > 1 and status.size[0] <= SIZE[0] - 2 * MARGIN, status.lines
        assert " ".join(status.lines).split() == ("the session service stopped; waiting for it " * 8).split()
    finally:
        loop.close()


def test_injected_drag_changes_pose_and_forwards_input(win: Window) -> None:
    poses: list[PoseRequest] = []
    inputs: list[InputEvent] = []
    loop = ViewerLoop(win, LatestMailbox(), poses.append, on_input=inputs.append)
    try:
        loop.step()
        first = poses[-1]
        assert first.viewport == SIZE and len(poses) == 1  # one pose per display frame
        # The same methods GLFW calls from poll_events().
        glfw.set_cursor_pos(win._handle, 400, 300)
        win.on_glfw_mouse_button(None, glfw.MOUSE_BUTTON_LEFT, glfw.PRESS, 0)
        win.on_glfw_cursor_pos(None, 600.0, 300.0)
        win.on_glfw_mouse_button(None, glfw.MOUSE_BUTTON_LEFT, glfw.RELEASE, 0)
        loop.step()
        moved = poses[-1]
        assert len(poses) == 2
        assert moved.views[0].pose.position != first.views[0].pose.position
        assert moved.views[0].pose.orientation != first.views[0].pose.orientation
        kinds = [e.kind for e in inputs]
        assert kinds.count(EventKind.BUTTON) == 2 and EventKind.POINTER in kinds
        pointer = next(e for e in inputs if e.kind is EventKind.POINTER)
        assert (pointer.x, pointer.y) == pytest.approx((600 / SIZE[0], 300 / SIZE[1]))
        win.on_glfw_key(None, glfw.KEY_ESCAPE, 0, glfw.PRESS, 0)
        assert loop.step() is False
    finally:
        loop.close()


def _x11_window_id(title: str) -> str:
    out = subprocess.run(["xdotool", "search", "--name", title], capture_output=True, text=True,
                         check=True, timeout=10)
    return out.stdout.split()[0]


def test_real_x_events_drag_orbits(win: Window) -> None:
    if shutil.which("xdotool") is None:
        pytest.fail("xdotool is not installed; this test drives real X input "
                    "(apt-get install xdotool)")
    poses: list[PoseRequest] = []
    loop = ViewerLoop(win, LatestMailbox(), poses.append)
    try:
        loop.step()
        start_yaw = loop.camera.yaw
        wid = _x11_window_id(TITLE)
        subprocess.run(
            ["xdotool", "mousemove", "--window", wid, "300", "300", "sleep", "0.05",
             "mousedown", "1", "sleep", "0.05",
             "mousemove", "--window", wid, "400", "300", "sleep", "0.05",
             "mousemove", "--window", wid, "500", "300", "sleep", "0.05", "mouseup", "1"],
            check=True, timeout=10,
        )
        deadline = time.monotonic() + 5.0
        while loop.camera.yaw == start_yaw and time.monotonic() < deadline:
            loop.step()
        assert loop.camera.yaw < start_yaw  # dragged right: the eye swings left
        assert poses[-1].views[0].pose.orientation != poses[0].views[0].pose.orientation
        assert not loop.controls.dragging  # the release arrived too
    finally:
        loop.close()


def test_resize_reports_new_framebuffer_size(win: Window) -> None:
    sizes: list[tuple[int, int]] = []
    poses: list[PoseRequest] = []
    loop = ViewerLoop(win, LatestMailbox(), poses.append,
                      on_resize=lambda w, h: sizes.append((w, h)))
    try:
        win.set_size(800, 600)
        deadline = time.monotonic() + 5.0
        while (800, 600) not in sizes and time.monotonic() < deadline:
            loop.step()
        assert (800, 600) in sizes
        assert poses[-1].viewport == (800, 600)
        fov = poses[-1].views[0].fov
        assert fov.tan_right / fov.tan_up == pytest.approx(800 / 600)
    finally:
        loop.close()


def test_screenshot_writes_png(win: Window, tmp_path: object) -> None:
    mailbox = LatestMailbox()
    loop = ViewerLoop(win, mailbox, show_stats=False)
    try:
        rgb, frame = colour_bars(*SIZE)
        mailbox.put(frame)
        loop.step()
        path = loop.screenshot(os.path.join(str(tmp_path), "shot.png"))
        image = np.asarray(Image.open(path).convert("RGB"))
        assert image.shape == (SIZE[1], SIZE[0], 3)
        assert np.abs(image[400, 80].astype(int) - rgb[400, 80].astype(int)).max() <= 4
        assert loop.stats.frames_presented == 1
        loop.step()
        assert loop.stats.frames_reused == 1
    finally:
        loop.close()


def test_fullscreen_toggle(win: Window) -> None:
    win.set_fullscreen(True)
    try:
        assert win.fullscreen
        _wait_for(lambda: win.framebuffer_size() == (1280, 1024), win)  # Xvfb's screen
    finally:
        win.set_fullscreen(False)
    assert not win.fullscreen
    _wait_for(lambda: win.framebuffer_size() == SIZE, win)


def test_no_display_gives_clear_error() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    code = (
        "from client.viewer.window import Window, NoDisplayError\n"
        "try:\n    Window()\nexcept NoDisplayError as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=60, check=True)
    assert out.stdout.strip() == NO_DISPLAY_MESSAGE


def test_run_for_a_duration_then_close_event_stops(win: Window) -> None:
    poses: list[PoseRequest] = []
    loop = ViewerLoop(win, LatestMailbox(), poses.append, max_fps=100.0)
    try:
        started = time.perf_counter()
        loop.run(duration=0.3)
        elapsed = time.perf_counter() - started
        assert 0.3 <= elapsed < 2.0
        assert 5 <= len(poses) <= 40  # paced by max_fps, not spinning
        assert loop.poses_sent == len(poses)  # one pose per display frame, each handed on
        win.on_glfw_close(None)
        loop.run(duration=5.0)  # returns at once on the close event
        assert time.perf_counter() - started < 3.0
    finally:
        loop.close()
