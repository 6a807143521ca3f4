"""Pose wire format (data channel ``pose``, client → host).

A pose message carries one view (mono, the desktop default) or two (left and right eye, side
by side in one video frame). Each view is a pose (position + orientation quaternion, right-handed,
y up, the camera looking down its local -z) and an asymmetric field of view given as the
tangents of its four half-angles, as OpenXR does.

Layout (little-endian), version 1::

    u8  version (=1)      u8  view_count (1|2)   u16 flags (bit 0: keyframe wanted)
    u32 sequence          u64 client_time_us
    u16 viewport_width    u16 viewport_height    f32 near   f32 far
    view_count × (f32 px py pz, f32 qx qy qz qw, f32 tan_left tan_right tan_up tan_down)

Pure code: no I/O. Validation happens at construction, so a decoded message is always usable.
"""

from __future__ import annotations

import math
import numbers
import operator
import struct
from dataclasses import dataclass, field
from typing import SupportsIndex, cast

from farview.input.errors import ProtocolError
from farview.input.mathutil import FLOAT32_MAX

POSE_VERSION = 1
MAX_VIEWPORT = 7680
"""Largest accepted viewport edge in pixels (8K); larger requests are clamped by the host."""

_HEADER = struct.Struct("<BBHIQHHff")
_VIEW = struct.Struct("<3f4f4f")

FLAG_KEYFRAME = 1




def _finite(name: str, values: tuple[float, ...]) -> None:
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values):
        raise ProtocolError(f"{name} must be numbers, got {values!r}")
    if not all(math.isfinite(v) and abs(v) <= FLOAT32_MAX for v in values):
        raise ProtocolError(f"{name} must be finite numbers within ±3.4e38 (32-bit floats), "
                            f"got {values!r}")


def check_viewport(viewport: object) -> tuple[int, int]:
    """``viewport`` as (width, height): two whole numbers of pixels, 1..65535 each (the
    wire's 16 bits; the host clamps to :data:`MAX_VIEWPORT`), or a ProtocolError saying so."""
    try:
        w, h = cast("tuple[SupportsIndex, SupportsIndex]", viewport)
        size = (operator.index(w), operator.index(h))
    except (TypeError, ValueError):
        raise ProtocolError(f"viewport must be (width, height) in whole pixels, got "
                            f"{viewport!r}") from None
    if not (1 <= size[0] <= 65535 and 1 <= size[1] <= 65535):
        raise ProtocolError(f"viewport {size[0]}x{size[1]} is outside 1..65535 pixels")
    return size


@dataclass(frozen=True)
class Fov:
    """Asymmetric field of view as tangents of the half-angles (left is usually negative)."""

    tan_left: float
    tan_right: float
    tan_up: float
    tan_down: float

    def __post_init__(self) -> None:
        _finite("field of view", (self.tan_left, self.tan_right, self.tan_up, self.tan_down))
        if not (self.tan_left < self.tan_right and self.tan_down < self.tan_up):
            raise ProtocolError(
                "field of view must have left < right and down < up, got "
                f"{self.tan_left}, {self.tan_right}, {self.tan_up}, {self.tan_down}"
            )

    @classmethod
    def symmetric(cls, fov_y_deg: float, aspect: float) -> Fov:
        """A centred frustum of vertical angle ``fov_y_deg`` and width/height ``aspect``."""
        _finite("vertical field of view", (fov_y_deg,))  # ("x" was a TypeError)
        if not 0.0 < fov_y_deg < 179.0:
            raise ProtocolError(f"vertical field of view must be in (0, 179) degrees, got {fov_y_deg}")
        if not (math.isfinite(aspect) and aspect > 0):
            raise ProtocolError(f"aspect ratio must be positive, got {aspect}")
        t = math.tan(math.radians(fov_y_deg) / 2.0)
        return cls(-t * aspect, t * aspect, t, -t)

    def with_vertical(self, fov_y_deg: float) -> Fov:
        """A centred frustum of vertical angle ``fov_y_deg`` with this one's aspect ratio (a
        camera override's field of view, as the host draws it)."""
        aspect = (self.tan_right - self.tan_left) / (self.tan_up - self.tan_down)
        return Fov.symmetric(fov_y_deg, aspect)


@dataclass(frozen=True)
class Pose:
    """A rigid pose: position in metres and a unit quaternion (x, y, z, w)."""

    position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    orientation: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)

    def __post_init__(self) -> None:
        if len(self.position) != 3 or len(self.orientation) != 4:
            raise ProtocolError("pose needs 3 position and 4 quaternion components")
        _finite("pose position", tuple(self.position))
        _finite("pose orientation", tuple(self.orientation))
        norm = math.hypot(*self.orientation)  # (scaled: squares of 1e200 overflow to inf)
        if norm < 1e-6:
            raise ProtocolError("pose orientation is a zero quaternion; send a unit quaternion")
        if abs(norm - 1.0) > 1e-6:
            object.__setattr__(self, "orientation", tuple(c / norm for c in self.orientation))


@dataclass(frozen=True)
class View:
    """One eye's (or the mono camera's) pose and field of view."""

    pose: Pose
    fov: Fov


@dataclass(frozen=True)
class PoseRequest:
    """What a client wants rendered next: the views, frame size and clip planes. The stream
    turns it into a :class:`PoseMessage` by adding the sequence and the send time, which only
    the connection assigns (``RenderingConnection.send_pose``)."""

    views: tuple[View, ...]
    """One view (mono) or two (left, right: rendered side by side)."""
    viewport: tuple[int, int] = (1280, 720)
    """Size of the whole video frame in pixels (both eyes together in stereo)."""
    near: float = 0.1
    far: float = 1000.0
    keyframe: bool = False
    """Ask the host for a keyframe (e.g. after the decoder lost a frame)."""

    def message(self, sequence: int, client_time_us: int) -> PoseMessage:
        """The wire message for this request (validated there)."""
        return PoseMessage(sequence, client_time_us, self.views, self.viewport, self.near,
                           self.far, self.keyframe)


@dataclass(frozen=True)
class PoseMessage:
    """What the client sends for every frame it wants rendered."""

    sequence: int
    """Monotonic per connection; the host echoes it in the frame metadata."""
    client_time_us: int
    """The client's monotonic clock when the pose was sampled, in microseconds."""
    views: tuple[View, ...]
    """One view (mono) or two (left, right: rendered side by side)."""
    viewport: tuple[int, int] = (1280, 720)
    """Size of the whole video frame in pixels (both eyes together in stereo)."""
    near: float = 0.1
    far: float = 1000.0
    keyframe: bool = False
    """Ask the host for a keyframe (e.g. after the decoder lost a frame)."""
    version: int = field(default=POSE_VERSION)

    def __post_init__(self) -> None:
        if self.version != POSE_VERSION:
            raise ProtocolError(f"pose message version {self.version} is not supported (expected {POSE_VERSION})")
        if not 0 <= self.sequence < 2**32:
            raise ProtocolError(f"pose sequence {self.sequence} is outside 0..2^32-1")
        if not 0 <= self.client_time_us < 2**64:
            raise ProtocolError(f"client time {self.client_time_us} is outside 0..2^64-1")
        if len(self.views) not in (1, 2):
            raise ProtocolError(f"a pose message carries 1 or 2 views, got {len(self.views)}")
        check_viewport(self.viewport)
        _finite("near/far planes", (self.near, self.far))
        if not 0.0 < self.near < self.far:
            raise ProtocolError(f"clip planes need 0 < near < far, got near={self.near} far={self.far}")

    def encode(self) -> bytes:
        flags = FLAG_KEYFRAME if self.keyframe else 0
        out = [
            _HEADER.pack(
                self.version, len(self.views), flags, self.sequence, self.client_time_us,
                self.viewport[0], self.viewport[1], self.near, self.far,
            )
        ]
        for v in self.views:
            f = v.fov
            out.append(
                _VIEW.pack(*v.pose.position, *v.pose.orientation,
                           f.tan_left, f.tan_right, f.tan_up, f.tan_down)
            )
        return b"".join(out)

    @classmethod
    def decode(cls, data: bytes) -> PoseMessage:
        if len(data) < 1:
            raise ProtocolError("pose message is empty")
        if data[0] != POSE_VERSION:
            raise ProtocolError(f"pose message version {data[0]} is not supported (expected {POSE_VERSION})")
        if len(data) < _HEADER.size:
            raise ProtocolError(f"pose message truncated: {len(data)} bytes, header needs {_HEADER.size}")
        version, count, flags, seq, t_us, w, h, near, far = _HEADER.unpack_from(data)
        if count not in (1, 2):
            raise ProtocolError(f"a pose message carries 1 or 2 views, got {count}")
        expected = _HEADER.size + count * _VIEW.size
        if len(data) != expected:
            raise ProtocolError(f"pose message with {count} view(s) must be {expected} bytes, got {len(data)}")
        views = []
        for i in range(count):
            vals = _VIEW.unpack_from(data, _HEADER.size + i * _VIEW.size)
            views.append(View(Pose(vals[0:3], vals[3:7]), Fov(*vals[7:11])))
        return cls(seq, t_us, tuple(views), (w, h), near, far, bool(flags & FLAG_KEYFRAME), version)
