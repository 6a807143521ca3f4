"""Maps window events to camera moves and viewer commands (keys and mouse, no glfw, no GL).

Bindings (also :data:`KEY_HELP`, shown by ``--help`` and the help overlay):

- **Orbit mode** (default): left-drag orbits around the target; right-drag, middle-drag or
  shift+left-drag pans; the wheel zooms. WASD/QE fly the camera *and* its target, so orbiting
  continues around the spot you flew to.
- **Fly mode** (V toggles): dragging with the left or right button turns the view about the eye
  (mouse look); WASD/QE fly; the wheel still dollies.
- Shift held while flying moves 4× faster. R resets the view, F11 or F toggles fullscreen,
  Tab or F1 the statistics, H the key help, Esc quits.

Mouse motion is measured in fractions of the window height, so a drag feels the same at any
window size: dragging across the full height orbits by :data:`ORBIT_PER_HEIGHT` radians.
Fly speed defaults to the orbit distance per second, which scales with the model on screen.

:class:`Controls` changes the camera itself and returns a :class:`Command` for what only the loop
can do (fullscreen, overlay toggles, quit). It runs on the frame loop's thread.
"""

from __future__ import annotations

import logging
import math
from enum import Enum

from farview.client.viewer.events import (
    KEY_A,
    KEY_D,
    KEY_E,
    KEY_ESCAPE,
    KEY_F,
    KEY_F1,
    KEY_F11,
    KEY_H,
    KEY_LEFT_SHIFT,
    KEY_Q,
    KEY_R,
    KEY_RIGHT_SHIFT,
    KEY_S,
    KEY_TAB,
    KEY_V,
    KEY_W,
    MOD_SHIFT,
    MOUSE_BUTTON_LEFT,
    MOUSE_BUTTON_MIDDLE,
    MOUSE_BUTTON_RIGHT,
    CursorMoveEvent,
    KeyEvent,
    MouseButtonEvent,
    ResizeEvent,
    ScrollEvent,
    WindowEvent,
)
from farview.input.camera import CameraController
from farview.input.events import Action

log = logging.getLogger(__name__)

ORBIT_PER_HEIGHT = math.pi
"""Radians of orbit for a drag across the whole window height."""
LOOK_PER_HEIGHT = math.radians(90.0)
"""Radians of mouse look for a drag across the whole window height."""
FLY_BOOST = 4.0
"""Speed factor while shift is held."""

KEY_HELP = """\
Mouse
  left click           select the part under the cursor (its name is shown)
  left drag            orbit around the target (look around in fly mode)
  right/middle drag    pan (look around in fly mode)
  shift + left drag    pan
  wheel                zoom
Keys
  W A S D              fly forward / left / back / right
  Q E                  fly down / up (hold shift: 4x faster)
  V                    toggle orbit / fly mode
  X                    hide the selected part
  U                    show every hidden part again
  C                    frame the selected part (the whole model without a selection)
  R                    reset view
  F11 or F             toggle fullscreen
  Tab or F1            toggle statistics overlay
  H                    toggle this help
  Esc                  quit"""


class Command(Enum):
    """What the frame loop must do in response to a key (the camera is handled here)."""

    QUIT = "quit"
    TOGGLE_FULLSCREEN = "toggle-fullscreen"
    TOGGLE_STATS = "toggle-stats"
    TOGGLE_HELP = "toggle-help"
    RESET_VIEW = "reset-view"
    TOGGLE_MODE = "toggle-mode"


class Mode(Enum):
    ORBIT = "orbit"
    FLY = "fly"


class _Drag(Enum):
    ORBIT = "orbit"
    PAN = "pan"
    LOOK = "look"


_KEY_COMMANDS = {
    KEY_ESCAPE: Command.QUIT,
    KEY_F11: Command.TOGGLE_FULLSCREEN,
    KEY_F: Command.TOGGLE_FULLSCREEN,
    KEY_TAB: Command.TOGGLE_STATS,
    KEY_F1: Command.TOGGLE_STATS,
    KEY_H: Command.TOGGLE_HELP,
    KEY_R: Command.RESET_VIEW,
    KEY_V: Command.TOGGLE_MODE,
}
_FLY_KEYS = {KEY_W, KEY_A, KEY_S, KEY_D, KEY_Q, KEY_E, KEY_LEFT_SHIFT, KEY_RIGHT_SHIFT}


class Controls:
    """Turns :mod:`client.viewer.events` into camera changes and :class:`Command` values."""

    def __init__(
        self,
        camera: CameraController,
        *,
        window_size: tuple[int, int] = (1280, 720),
        mode: Mode = Mode.ORBIT,
        fly_speed: float | None = None,
    ) -> None:
        self.camera = camera
        self.mode = mode
        self.fly_speed = fly_speed
        """Metres per second; None: the orbit distance per second (scales with the model)."""
        self._window_height = max(1, window_size[1])
        self._held: set[int] = set()
        self._drag: _Drag | None = None
        self._drag_button: int | None = None
        self._cursor: tuple[float, float] | None = None

    @property
    def dragging(self) -> bool:
        return self._drag is not None

    def handle(self, event: WindowEvent) -> Command | None:
        """Apply one event; returns a command for the loop, or None."""
        if isinstance(event, KeyEvent):
            return self._on_key(event)
        if isinstance(event, MouseButtonEvent):
            self._on_button(event)
        elif isinstance(event, CursorMoveEvent):
            self._on_cursor(event)
        elif isinstance(event, ScrollEvent):
            self.camera.zoom(event.dy)
        elif isinstance(event, ResizeEvent):
            self._window_height = max(1, event.height)
        return None

    def update(self, dt: float) -> bool:
        """Fly for ``dt`` seconds with the held keys; True if the camera moved."""
        held = self._held
        forward = (KEY_W in held) - (KEY_S in held)
        right = (KEY_D in held) - (KEY_A in held)
        up = (KEY_E in held) - (KEY_Q in held)
        if not (forward or right or up) or dt <= 0:
            return False
        speed = self.fly_speed if self.fly_speed is not None else self.camera.distance
        if KEY_LEFT_SHIFT in held or KEY_RIGHT_SHIFT in held:
            speed *= FLY_BOOST
        self.camera.move(forward, right, up, dt, speed)
        return True

    def release_all(self) -> None:
        """Forget held keys and drags (e.g. when the window loses focus mid-drag)."""
        self._held.clear()
        self._drag = None
        self._drag_button = None

    def _on_key(self, event: KeyEvent) -> Command | None:
        if event.key in _FLY_KEYS:
            if event.action is Action.RELEASE:
                self._held.discard(event.key)
            else:
                self._held.add(event.key)
        if event.action is not Action.PRESS:
            return None
        command = _KEY_COMMANDS.get(event.key)
        if command is Command.RESET_VIEW:
            self.camera.reset()
        elif command is Command.TOGGLE_MODE:
            self.mode = Mode.FLY if self.mode is Mode.ORBIT else Mode.ORBIT
            log.debug("camera mode: %s", self.mode.value)
        return command

    def _on_button(self, event: MouseButtonEvent) -> None:
        if event.action is Action.RELEASE:
            if event.button == self._drag_button:
                self._drag = None
                self._drag_button = None
            return
        if self._drag is not None:
            return  # a second button during a drag does not change what the drag does
        if self.mode is Mode.FLY and event.button in (MOUSE_BUTTON_LEFT, MOUSE_BUTTON_RIGHT):
            drag = _Drag.LOOK
        elif event.button == MOUSE_BUTTON_LEFT:
            drag = _Drag.PAN if event.mods & MOD_SHIFT else _Drag.ORBIT
        elif event.button in (MOUSE_BUTTON_RIGHT, MOUSE_BUTTON_MIDDLE):
            drag = _Drag.PAN
        else:
            return
        self._drag = drag
        self._drag_button = event.button
        self._cursor = (event.x, event.y)

    def _on_cursor(self, event: CursorMoveEvent) -> None:
        previous = self._cursor
        self._cursor = (event.x, event.y)
        if self._drag is None or previous is None:
            return
        dx = (event.x - previous[0]) / self._window_height
        dy = (event.y - previous[1]) / self._window_height
        if self._drag is _Drag.ORBIT:
            # Dragging right swings the eye left, so the model turns with the cursor.
            self.camera.orbit(-dx * ORBIT_PER_HEIGHT, -dy * ORBIT_PER_HEIGHT)
        elif self._drag is _Drag.LOOK:
            self.camera.look(-dx * LOOK_PER_HEIGHT, -dy * LOOK_PER_HEIGHT)
        else:
            self.camera.pan(dx, dy)
