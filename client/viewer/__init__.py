"""farview desktop viewer: GLFW window, YUV shader, overlay, camera controls and the frame loop.

Threading: GLFW and GL only on the main thread; the stream's
:class:`~farview.streaming.mailbox.LatestMailbox` is the one cross-thread hand-off (the stream's
worker thread puts decoded frames, the loop takes the newest).
"""

from farview.client.viewer.controls import KEY_HELP, Command, Controls, Mode
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
from farview.client.viewer.loop import FrameSource, ViewerLoop, ViewerStats
from farview.client.viewer.overlay import Overlay
from farview.client.viewer.window import NO_DISPLAY_MESSAGE, NoDisplayError, Window, WindowError
from farview.client.viewer.yuv_renderer import YuvRenderer, letterbox

__all__ = [
    "KEY_HELP",
    "NO_DISPLAY_MESSAGE",
    "CloseEvent",
    "Command",
    "Controls",
    "CursorMoveEvent",
    "FrameSource",
    "FramebufferResizeEvent",
    "KeyEvent",
    "Mode",
    "MouseButtonEvent",
    "NoDisplayError",
    "Overlay",
    "ResizeEvent",
    "ScrollEvent",
    "ViewerLoop",
    "ViewerStats",
    "Window",
    "WindowError",
    "WindowEvent",
    "YuvRenderer",
    "letterbox",
]
