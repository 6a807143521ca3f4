"""The viewer's window: the only module that touches glfw.

Owns one GLFW window with an OpenGL 3.3 core context, and turns GLFW callbacks into the neutral
events of :mod:`client.viewer.events`, queued until the frame loop calls :meth:`Window.poll`.

Threading: GLFW and GL may only be used on the main thread (GLFW's rule on every platform we
care about), so every method here must be called from the thread that created the window. The
callbacks run inside ``glfw.poll_events()``, i.e. on that same thread, so the event queue needs
no lock. Video frames cross threads through :class:`farview.streaming.mailbox.LatestMailbox`, not
through this module.
"""

from __future__ import annotations

import logging
import os
import sys
from collections import deque
from typing import Any

import glfw
import numpy as np
from OpenGL import GL

from farview.client.errors import FarviewError
from farview.client.viewer.events import (
    CloseEvent,
    CursorMoveEvent,
    FramebufferResizeEvent,
    KeyEvent,
    MouseButtonEvent,
    ResizeEvent,
    ScrollEvent,
    WindowEvent,
)
from farview.input.events import Action

log = logging.getLogger(__name__)

DEFAULT_TITLE = "farview"
DEFAULT_SIZE = (1280, 720)
MAX_QUEUED_EVENTS = 4096
"""Events kept between two polls; a stalled loop drops the oldest rather than growing forever."""

NO_DISPLAY_MESSAGE = "no display found (DISPLAY is not set); run with --headless or under Xvfb"


class WindowError(FarviewError):
    """The window or its OpenGL context could not be created or used."""


class NoDisplayError(WindowError):
    """There is no display to open a window on; the message suggests ``--headless``."""


# glfw.init()/terminate() are process-wide; count windows so the last close() terminates.
_glfw_users = 0


def _glfw_error(code: int, description: str | bytes) -> None:
    # Route GLFW's errors into logging; failures that matter are detected from return values
    # (glfw.init() False, create_window None) and raised as WindowError with their own message.
    if isinstance(description, bytes):
        description = description.decode(errors="replace")
    log.debug("GLFW error %#x: %s", code, description)


def _acquire_glfw() -> None:
    global _glfw_users
    if _glfw_users == 0:
        if sys.platform.startswith("linux") and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        ):
            raise NoDisplayError(NO_DISPLAY_MESSAGE)
        glfw.set_error_callback(_glfw_error)
        if not glfw.init():
            display = os.environ.get("DISPLAY", "")
            raise NoDisplayError(
                f"could not open display {display!r} (GLFW failed to initialise); "
                "check that the X server is running, or run with --headless or under Xvfb"
            )
    _glfw_users += 1


def _release_glfw() -> None:
    global _glfw_users
    _glfw_users -= 1
    if _glfw_users == 0:
        glfw.terminate()


class Window:
    """A GLFW window with a current GL 3.3 core context; events via :meth:`poll`."""

    def __init__(
        self,
        *,
        title: str = DEFAULT_TITLE,
        size: tuple[int, int] = DEFAULT_SIZE,
        vsync: bool = True,
        fullscreen: bool = False,
        visible: bool = True,
        resizable: bool = True,
    ) -> None:
        width, height = size
        if width < 1 or height < 1:
            raise ValueError(f"window size must be positive, got {width}x{height}")
        _acquire_glfw()
        try:
            glfw.default_window_hints()
            glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 3)
            glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 3)
            glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
            glfw.window_hint(glfw.OPENGL_FORWARD_COMPAT, True)  # required on macOS for 3.3 core
            glfw.window_hint(glfw.DOUBLEBUFFER, True)
            glfw.window_hint(glfw.VISIBLE, visible)
            glfw.window_hint(glfw.RESIZABLE, resizable)
            handle = glfw.create_window(width, height, title, None, None)
            if not handle:
                raise WindowError(
                    f"could not create a {width}x{height} window with an OpenGL 3.3 core context; "
                    "the GL driver may be too old (Mesa llvmpipe works)"
                )
        except BaseException:
            _release_glfw()
            raise
        self._handle: Any = handle
        self._events: deque[WindowEvent] = deque(maxlen=MAX_QUEUED_EVENTS)
        self._windowed_geometry = (0, 0, width, height)
        self._vsync = vsync
        self._cursor: tuple[float, float] | None = None
        glfw.make_context_current(handle)
        glfw.set_key_callback(handle, self.on_glfw_key)
        glfw.set_mouse_button_callback(handle, self.on_glfw_mouse_button)
        glfw.set_cursor_pos_callback(handle, self.on_glfw_cursor_pos)
        glfw.set_scroll_callback(handle, self.on_glfw_scroll)
        glfw.set_window_size_callback(handle, self.on_glfw_window_size)
        glfw.set_framebuffer_size_callback(handle, self.on_glfw_framebuffer_size)
        glfw.set_window_close_callback(handle, self.on_glfw_close)
        self.set_vsync(vsync)
        if fullscreen:
            self.set_fullscreen(True)
        log.debug("window %dx%d opened: %s", width, height,
                  GL.glGetString(GL.GL_RENDERER).decode(errors="replace"))

    # -- GLFW callbacks (public so tests can drive the exact path real input takes) -------------

    def on_glfw_key(self, _win: Any, key: int, scancode: int, action: int, mods: int) -> None:
        self._events.append(KeyEvent(key, Action(action), mods, scancode))

    def on_glfw_mouse_button(self, _win: Any, button: int, action: int, mods: int) -> None:
        # The last position GLFW reported, not glfw.get_cursor_pos(): on X11 that queries the
        # pointer *now*, which after a burst of queued events is where the drag ended.
        if self._cursor is None:
            self._cursor = tuple(float(c) for c in glfw.get_cursor_pos(self._handle))  # type: ignore[assignment]
        assert self._cursor is not None
        x, y = self._cursor
        self._events.append(MouseButtonEvent(button, Action(action), mods, x, y))

    def on_glfw_cursor_pos(self, _win: Any, x: float, y: float) -> None:
        self._cursor = (float(x), float(y))
        self._events.append(CursorMoveEvent(float(x), float(y)))

    def on_glfw_scroll(self, _win: Any, dx: float, dy: float) -> None:
        self._events.append(ScrollEvent(float(dx), float(dy)))

    def on_glfw_window_size(self, _win: Any, width: int, height: int) -> None:
        self._events.append(ResizeEvent(width, height))

    def on_glfw_framebuffer_size(self, _win: Any, width: int, height: int) -> None:
        self._events.append(FramebufferResizeEvent(width, height))

    def on_glfw_close(self, _win: Any) -> None:
        self._events.append(CloseEvent())

    # -- frame loop API -------------------------------------------------------------------------

    def poll(self) -> list[WindowEvent]:
        """Process pending window-system events and return them, oldest first."""
        glfw.poll_events()
        events = list(self._events)
        self._events.clear()
        return events

    def swap(self) -> None:
        glfw.swap_buffers(self._handle)

    def make_current(self) -> None:
        glfw.make_context_current(self._handle)

    @property
    def should_close(self) -> bool:
        return bool(glfw.window_should_close(self._handle))

    def request_close(self) -> None:
        glfw.set_window_should_close(self._handle, True)

    def framebuffer_size(self) -> tuple[int, int]:
        """Drawable size in pixels (0×0 while minimised)."""
        w, h = glfw.get_framebuffer_size(self._handle)
        return int(w), int(h)

    def window_size(self) -> tuple[int, int]:
        """Size in window coordinates (what cursor positions are measured in)."""
        w, h = glfw.get_window_size(self._handle)
        return int(w), int(h)

    def set_size(self, width: int, height: int) -> None:
        glfw.set_window_size(self._handle, width, height)

    def position(self) -> tuple[int, int]:
        x, y = glfw.get_window_pos(self._handle)
        return int(x), int(y)

    def set_title(self, title: str) -> None:
        glfw.set_window_title(self._handle, title)

    @property
    def vsync(self) -> bool:
        return self._vsync

    def set_vsync(self, on: bool) -> None:
        """Swap on vertical blank (interval 1) or as soon as possible (0). Xvfb has no vblank."""
        glfw.swap_interval(1 if on else 0)
        self._vsync = on

    @property
    def fullscreen(self) -> bool:
        # pyglfw returns a ctypes pointer, NULL (falsy) when windowed, never None.
        return bool(glfw.get_window_monitor(self._handle))

    def set_fullscreen(self, on: bool) -> None:
        """Switch to the primary monitor's current mode, or back to the previous window geometry."""
        if on == self.fullscreen:
            return
        if on:
            x, y = self.position()
            w, h = self.window_size()
            self._windowed_geometry = (x, y, w, h)
            monitor = glfw.get_primary_monitor()
            mode = glfw.get_video_mode(monitor)
            glfw.set_window_monitor(self._handle, monitor, 0, 0, mode.size.width,
                                    mode.size.height, mode.refresh_rate)
        else:
            x, y, w, h = self._windowed_geometry
            glfw.set_window_monitor(self._handle, None, x, y, w, h, 0)  # type: ignore[arg-type]
        # Changing the monitor can reset the swap interval on some drivers.
        self.set_vsync(self._vsync)

    def toggle_fullscreen(self) -> None:
        self.set_fullscreen(not self.fullscreen)

    def read_pixels(self, buffer: str = "back") -> np.ndarray:
        """The framebuffer as (H, W, 3) uint8 RGB, row 0 at the top (tests, screenshots).

        Read the back buffer after drawing and before :meth:`swap` (its content after a swap is
        undefined); ``"front"`` reads what was last presented, where the driver allows it.
        """
        if buffer not in ("back", "front"):
            raise ValueError(f"buffer must be 'back' or 'front', got {buffer!r}")
        w, h = self.framebuffer_size()
        if w == 0 or h == 0:
            return np.zeros((h, w, 3), np.uint8)
        GL.glReadBuffer(GL.GL_BACK if buffer == "back" else GL.GL_FRONT)
        GL.glPixelStorei(GL.GL_PACK_ALIGNMENT, 1)
        data = GL.glReadPixels(0, 0, w, h, GL.GL_RGB, GL.GL_UNSIGNED_BYTE)
        pixels = np.frombuffer(data, np.uint8).reshape(h, w, 3)
        return np.ascontiguousarray(pixels[::-1])  # GL's row 0 is the bottom

    def close(self) -> None:
        """Destroy the window (idempotent); the last window also terminates GLFW."""
        if self._handle is None:
            return
        glfw.destroy_window(self._handle)
        self._handle = None
        _release_glfw()

    def __enter__(self) -> Window:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
