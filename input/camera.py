"""Desktop camera: orbit, pan, zoom and fly on one state, producing a :class:`Pose` (pure math).

One :class:`CameraController` holds ``target`` (the point orbited), ``distance`` (eye to target),
``yaw`` and ``pitch`` (radians). The eye sits ``distance`` behind the target along the view
direction, so every operation is a small change to those four values:

- ``orbit``: turn yaw/pitch about the *target* (the eye moves on a sphere around the model);
- ``look``: turn yaw/pitch about the *eye* (fly-mode mouse look; the target moves instead);
- ``pan``: slide target and eye together in the view plane;
- ``zoom``: scale the distance (the eye dollies towards the target);
- ``move``: slide target and eye along view forward / right and world up (WASD + QE).

Conventions are :mod:`input.pose`'s: right-handed, y up, the camera looks down its local -z.
Positive yaw turns the view left, positive pitch tilts it up. Pitch is clamped short of ±90°
so the camera never flips over the pole. Not thread-safe: the viewer's frame loop owns it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from farview.input.mathutil import (
    Quat,
    Vec3,
    quat_from_yaw_pitch,
    quat_rotate,
    vec_add,
    vec_scale,
    vec_sub,
)
from farview.input.pose import Fov, Pose

DEFAULT_DISTANCE = 3.0
"""Metres from eye to target at start and after reset (the sample model is about 1 m across)."""
DEFAULT_FOV_Y_DEG = 60.0
"""Vertical field of view the pan math assumes (the viewer sends the same value)."""
MAX_PITCH = math.radians(89.0)
"""Pitch limit: beyond ±90° the orbit would flip upside down."""
ZOOM_STEP = 1.15
"""Distance ratio per wheel step; multiplicative so zoom feels the same near and far."""
MIN_DISTANCE = 0.01
MAX_DISTANCE = 10_000.0
MAX_ZOOM_OUT = 20.0
"""Zooming out stops at this many times the home view's distance (the model about 1/20 of the
view across)."""


@dataclass(frozen=True)
class CameraState:
    """A snapshot of the camera's four values (what ``reset`` returns to)."""

    target: Vec3 = (0.0, 0.0, 0.0)
    distance: float = DEFAULT_DISTANCE
    yaw: float = 0.0
    pitch: float = 0.0

    def __post_init__(self) -> None:
        if not all(math.isfinite(c) for c in (*self.target, self.distance, self.yaw, self.pitch)):
            raise ValueError(f"camera state must be finite, got {self!r}")
        if not MIN_DISTANCE <= self.distance <= MAX_DISTANCE:
            raise ValueError(
                f"camera distance must be in [{MIN_DISTANCE}, {MAX_DISTANCE}] m, "
                f"got {self.distance}"
            )


HOME_YAW, HOME_PITCH = 0.6, -0.35
"""The direction a viewer first looks from (radians): front left, a little from above. The
desktop viewer, the web viewer and the host's home view (for a client that sends no poses)
share it."""


def home_view(lo: Vec3 | None, hi: Vec3 | None, aspect: float, *,
              fov_y_deg: float = DEFAULT_FOV_Y_DEG) -> tuple[Pose, Fov]:
    """The pose and FOV that show the box ``lo``..``hi`` whole from the home direction (the
    sample model's framing when there is no box)."""
    if lo is not None and hi is not None:
        state = framing(lo, hi, fov_y_deg=fov_y_deg, yaw=HOME_YAW, pitch=HOME_PITCH)
    else:
        state = CameraState(target=(0.0, 0.02, 0.0), distance=1.08, yaw=HOME_YAW, pitch=HOME_PITCH)
    return CameraController(state, fov_y_deg=fov_y_deg).pose(), Fov.symmetric(fov_y_deg, aspect)


FRAMING_MARGIN = 1.3
"""How far :func:`framing` puts the eye, in multiples of the distance at which the bounding
sphere just fills the vertical field of view: the model fills most of the view (a box's
bounding sphere is larger than the box seen from any side)."""


def framing(lo: Vec3, hi: Vec3, *, fov_y_deg: float = DEFAULT_FOV_Y_DEG, yaw: float = 0.0,
            pitch: float = 0.0, aspect: float = math.inf) -> CameraState:
    """A camera state that shows the box ``lo``..``hi`` whole from the direction (yaw, pitch):
    the target at its centre, the eye far enough for its bounding sphere to fit with a margin,
    across the view's height and, when ``aspect`` (width / height) is under 1, its width."""
    if not all(math.isfinite(c) for c in (*lo, *hi)) or any(a > b for a, b in zip(lo, hi, strict=True)):
        raise ValueError(f"framing needs a finite box with lo <= hi, got {lo!r}..{hi!r}")
    centre = (lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, (lo[2] + hi[2]) / 2
    radius = math.dist(lo, hi) / 2
    tan_half_y = math.tan(math.radians(fov_y_deg) / 2)
    if not aspect > 0:
        raise ValueError(f"framing needs a positive aspect (width / height), got {aspect!r}")
    fit = radius / min(tan_half_y, tan_half_y * aspect)
    distance = min(max(fit * FRAMING_MARGIN, MIN_DISTANCE * 10), MAX_DISTANCE)
    return CameraState(centre, distance, yaw, pitch)


class CameraController:
    """Orbit/pan/zoom/fly camera; :meth:`pose` gives the eye pose to send to the host."""

    def __init__(
        self, home: CameraState | None = None, *, fov_y_deg: float = DEFAULT_FOV_Y_DEG
    ) -> None:
        self.home = home or CameraState()
        """Where :meth:`reset` returns to."""
        self.fov_y_deg = fov_y_deg
        """Vertical field of view, used to make pan follow the cursor."""
        self.target: Vec3 = self.home.target
        self.distance: float = self.home.distance
        self.yaw: float = self.home.yaw
        self.pitch: float = _clamp_pitch(self.home.pitch)

    # -- derived ------------------------------------------------------------------------------

    @property
    def orientation(self) -> Quat:
        return quat_from_yaw_pitch(self.yaw, self.pitch)

    @property
    def forward(self) -> Vec3:
        """Unit view direction (the camera's local -z in world space)."""
        return quat_rotate(self.orientation, (0.0, 0.0, -1.0))

    @property
    def right(self) -> Vec3:
        return quat_rotate(self.orientation, (1.0, 0.0, 0.0))

    @property
    def up(self) -> Vec3:
        return quat_rotate(self.orientation, (0.0, 1.0, 0.0))

    @property
    def eye(self) -> Vec3:
        return vec_sub(self.target, vec_scale(self.forward, self.distance))

    def state(self) -> CameraState:
        return CameraState(self.target, self.distance, self.yaw, self.pitch)

    def pose(self) -> Pose:
        """The eye's pose (position + orientation) in world space."""
        return Pose(self.eye, self.orientation)

    # -- operations -----------------------------------------------------------------------------

    def orbit(self, d_yaw: float, d_pitch: float) -> None:
        """Turn about the target by the given angles (radians); the target stays fixed."""
        self.yaw = _wrap(self.yaw + d_yaw)
        self.pitch = _clamp_pitch(self.pitch + d_pitch)

    def look(self, d_yaw: float, d_pitch: float) -> None:
        """Turn about the eye by the given angles (radians); the eye stays fixed."""
        eye = self.eye
        self.yaw = _wrap(self.yaw + d_yaw)
        self.pitch = _clamp_pitch(self.pitch + d_pitch)
        self.target = vec_add(eye, vec_scale(self.forward, self.distance))

    def pan(self, dx: float, dy: float) -> None:
        """Slide the view by a cursor motion given in fractions of the viewport *height*.

        Screen convention (+x right, +y down). The scene moves with the cursor: a point at the
        target's depth stays under the cursor, whatever the distance.
        """
        visible_height = 2.0 * self.distance * math.tan(math.radians(self.fov_y_deg) / 2.0)
        shift = vec_add(vec_scale(self.right, -dx * visible_height),
                        vec_scale(self.up, dy * visible_height))
        self.target = vec_add(self.target, shift)

    def zoom(self, steps: float) -> None:
        """Dolly towards the target (positive steps, wheel up) or away (negative)."""
        # Clamp the exponent first: a wild scroll value must saturate, not overflow a float.
        steps = max(-100.0, min(100.0, steps))
        # no farther than MAX_ZOOM_OUT times the home view's distance (60 clicks out left the
        # model a pixel, or nothing, with only R to bring it back); in, as close as the user likes
        farthest = min(MAX_DISTANCE, max(self.distance, self.home.distance * MAX_ZOOM_OUT))
        self.distance = min(farthest, max(MIN_DISTANCE, self.distance * ZOOM_STEP ** -steps))

    def move(self, forward: float, right: float, up: float, dt: float, speed: float) -> None:
        """Fly: translate eye and target along view forward/right and world up.

        ``forward``/``right``/``up`` are -1..1 intents (held keys), ``speed`` in metres per second.
        """
        step = speed * dt
        delta = vec_add(
            vec_add(vec_scale(self.forward, forward * step), vec_scale(self.right, right * step)),
            (0.0, up * step, 0.0),
        )
        self.target = vec_add(self.target, delta)

    def reset(self) -> None:
        """Back to :attr:`home`."""
        self.target = self.home.target
        self.distance = self.home.distance
        self.yaw = self.home.yaw
        self.pitch = _clamp_pitch(self.home.pitch)


def _clamp_pitch(pitch: float) -> float:
    return max(-MAX_PITCH, min(MAX_PITCH, pitch))


def _wrap(angle: float) -> float:
    """Keep yaw in (-π, π] so it never grows without bound over a long orbit."""
    return math.atan2(math.sin(angle), math.cos(angle))
