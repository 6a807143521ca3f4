"""Neutral window events and key codes: what :mod:`client.viewer.window` turns GLFW callbacks into.

Everything here is plain data so the controls and the frame loop can be tested (and a headless
sink can be written) without glfw. Key, button, modifier and action codes are GLFW's values
(``input.events`` sends the same codes to the host); a test checks them against glfw itself.
Positions are in window coordinates (pixels from the top-left, as GLFW reports them), which can
differ from framebuffer pixels on high-DPI screens.
"""

from __future__ import annotations

from dataclasses import dataclass

from farview.input.events import Action

# GLFW key codes (printable keys are their upper-case ASCII code).
KEY_SPACE = 32
KEY_A, KEY_D, KEY_E, KEY_F, KEY_H, KEY_Q, KEY_R, KEY_S, KEY_V, KEY_W = (
    ord(c) for c in "ADEFHQRSVW"
)
KEY_ESCAPE = 256
KEY_TAB = 258
KEY_F1 = 290
KEY_F11 = 300
KEY_LEFT_SHIFT = 340
KEY_RIGHT_SHIFT = 344

MOUSE_BUTTON_LEFT = 0
MOUSE_BUTTON_RIGHT = 1
MOUSE_BUTTON_MIDDLE = 2

MOD_SHIFT = 0x1
MOD_CONTROL = 0x2
MOD_ALT = 0x4


@dataclass(frozen=True)
class KeyEvent:
    key: int
    """GLFW key code."""
    action: Action
    mods: int = 0
    """Bit set of ``MOD_*``."""
    scancode: int = 0


@dataclass(frozen=True)
class MouseButtonEvent:
    button: int
    """``MOUSE_BUTTON_*``."""
    action: Action
    """PRESS or RELEASE."""
    mods: int
    x: float
    """Cursor position when the button changed, window coordinates."""
    y: float


@dataclass(frozen=True)
class CursorMoveEvent:
    x: float
    """Window coordinates, from the top-left corner."""
    y: float


@dataclass(frozen=True)
class ScrollEvent:
    dx: float
    dy: float
    """Wheel steps; positive is away from the user (zoom in)."""


@dataclass(frozen=True)
class ResizeEvent:
    """The window's size (window coordinates) changed."""

    width: int
    height: int


@dataclass(frozen=True)
class FramebufferResizeEvent:
    """The framebuffer's size in pixels changed: the video viewport and the stream size."""

    width: int
    height: int


@dataclass(frozen=True)
class CloseEvent:
    """The user asked to close the window (close button, window manager)."""


WindowEvent = (
    KeyEvent
    | MouseButtonEvent
    | CursorMoveEvent
    | ScrollEvent
    | ResizeEvent
    | FramebufferResizeEvent
    | CloseEvent
)
"""Any event :meth:`Window.poll` returns."""
