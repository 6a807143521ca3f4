"""Headset description and stereo views: what a head pose means for each eye (pure math).

A :class:`HeadsetDescription` holds what a headset reports (OpenXR's view configuration): the
recommended resolution per eye, the interpupillary distance and each eye's asymmetric field of
view. :func:`stereo_views` turns one *head* pose (the point between the eyes) into the left and
right eye :class:`~input.pose.View`: each eye sits ``ipd / 2`` along the head's local ∓x and
looks the way the head looks (parallel eyes, as OpenXR reports for most headsets).
:func:`stereo_pose_message` builds the :class:`~input.pose.PoseMessage` the host renders side by
side: left eye in the left half of a ``2 × eye width`` by ``eye height`` frame.

Conventions are :mod:`input.pose`'s: right-handed, y up, looking down local -z. No I/O, no state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from farview.input.mathutil import quat_rotate, vec_add
from farview.input.pose import MAX_VIEWPORT, Fov, Pose, PoseMessage, PoseRequest, View

DEFAULT_IPD_M = 0.063
"""Average adult interpupillary distance in metres (and Monado's simulated HMD)."""
DEFAULT_REFRESH_HZ = 90.0
"""The display rate of most PC headsets; the simulated headset samples poses at this rate."""
SIMULATED_FOV = Fov(-0.9163, 0.9163, 0.9861, -0.9861)
"""Monado's simulated HMD: ±42.5° horizontal, ±44.6° vertical, both eyes."""


@dataclass(frozen=True)
class HeadsetDescription:
    """What a headset reports about its displays; validated at construction."""

    eye_resolution: tuple[int, int] = (320, 240)
    """Pixels per eye ``(width, height)``; the stereo video frame is twice as wide."""
    ipd_m: float = DEFAULT_IPD_M
    """Distance between the eye centres in metres (0 renders both eyes from the head centre)."""
    left_fov: Fov = SIMULATED_FOV
    """Left eye's field of view (default: Monado's simulated HMD, ±42.5° × ±44.6°)."""
    right_fov: Fov = SIMULATED_FOV
    """Right eye's field of view (canted headsets mirror the left eye's)."""
    refresh_hz: float = DEFAULT_REFRESH_HZ
    """Display refresh rate; pose sources run at this rate."""
    name: str = "simulated"
    """For logs and the window title."""

    def __post_init__(self) -> None:
        w, h = self.eye_resolution
        if not (w >= 1 and 2 * w <= MAX_VIEWPORT and 1 <= h <= MAX_VIEWPORT):
            raise ValueError(f"eye resolution {w}x{h} must be ≥ 1 pixel and fit {MAX_VIEWPORT} px side by side")
        if not (math.isfinite(self.ipd_m) and 0.0 <= self.ipd_m <= 0.2):
            raise ValueError(f"IPD must be between 0 and 0.2 m, got {self.ipd_m}")
        if not (math.isfinite(self.refresh_hz) and 1.0 <= self.refresh_hz <= 1000.0):
            raise ValueError(f"refresh rate must be 1..1000 Hz, got {self.refresh_hz}")

    @property
    def viewport(self) -> tuple[int, int]:
        """The side-by-side video frame: both eyes together."""
        return (2 * self.eye_resolution[0], self.eye_resolution[1])

    @property
    def frame_interval_s(self) -> float:
        return 1.0 / self.refresh_hz

    @classmethod
    def symmetric(cls, eye_resolution: tuple[int, int] = (320, 240), *, fov_x_deg: float = 85.0,
                  fov_y_deg: float = 89.2, ipd_m: float = DEFAULT_IPD_M,
                  refresh_hz: float = DEFAULT_REFRESH_HZ, name: str = "simulated") -> HeadsetDescription:
        """Both eyes with the same centred field of view (full angles in degrees)."""
        tx = math.tan(math.radians(fov_x_deg) / 2.0)
        ty = math.tan(math.radians(fov_y_deg) / 2.0)
        fov = Fov(-tx, tx, ty, -ty)
        return cls(eye_resolution, ipd_m, fov, fov, refresh_hz, name)


SIMULATED_HEADSET = HeadsetDescription()
"""A small headset like Monado's simulated HMD (320×240 per eye): cheap on llvmpipe."""


def eye_positions(head: Pose, ipd_m: float) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """World positions of the left and right eye for a head pose."""
    half = ipd_m / 2.0
    left = vec_add(head.position, quat_rotate(head.orientation, (-half, 0.0, 0.0)))
    right = vec_add(head.position, quat_rotate(head.orientation, (half, 0.0, 0.0)))
    return left, right


def stereo_views(head: Pose, headset: HeadsetDescription = SIMULATED_HEADSET) -> tuple[View, View]:
    """The left and right eye views of ``head`` (eyes ``ipd`` apart, looking where the head looks)."""
    left, right = eye_positions(head, headset.ipd_m)
    return (View(Pose(left, head.orientation), headset.left_fov),
            View(Pose(right, head.orientation), headset.right_fov))


def stereo_request(head: Pose, headset: HeadsetDescription = SIMULATED_HEADSET, *,
                   near: float = 0.05, far: float = 1000.0, keyframe: bool = False) -> PoseRequest:
    """What to ask for one stereo frame: two views, viewport = both eyes side by side."""
    return PoseRequest(stereo_views(head, headset), headset.viewport, near, far, keyframe)


def stereo_pose_message(sequence: int, client_time_us: int, head: Pose,
                        headset: HeadsetDescription = SIMULATED_HEADSET, *, near: float = 0.05,
                        far: float = 1000.0, keyframe: bool = False) -> PoseMessage:
    """The pose message for one stereo frame (:func:`stereo_request` with its identity)."""
    return stereo_request(head, headset, near=near, far=far, keyframe=keyframe).message(
        sequence, client_time_us)


def head_pose_of(msg: PoseMessage) -> Pose:
    """The head pose a message was built from: the mid-point of its eyes (or its one view)."""
    if len(msg.views) == 1:
        return msg.views[0].pose
    left, right = msg.views[0].pose, msg.views[1].pose
    mid = tuple((a + b) / 2.0 for a, b in zip(left.position, right.position, strict=True))
    return Pose((mid[0], mid[1], mid[2]), left.orientation)


def split_eyes(width: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Column ranges ``[start, stop)`` of the left and right eye in a side-by-side frame."""
    if width < 2:
        raise ValueError(f"a side-by-side frame needs at least 2 columns, got {width}")
    half = width // 2
    return (0, half), (half, 2 * half)
