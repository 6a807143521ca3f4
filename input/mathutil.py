"""Small quaternion and vector helpers for camera math (pure Python floats, no I/O).

Quaternions are ``(x, y, z, w)`` tuples, the order :class:`input.pose.Pose` uses; rotations are
right-handed (a positive angle turns counter-clockwise looking down the axis towards the origin).
Plain tuples rather than numpy arrays: a camera does a handful of these per display frame and
tuple arithmetic is faster than numpy's per-call overhead at that size; :func:`quat_to_matrix3`
gives the numpy matrix that transforms and homographies need.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

FLOAT32_MAX = 3.4028234663852886e38
"""The largest 32-bit float: poses cross the wire, and transforms reach GL, as 32-bit floats;
larger numbers would become infinities there."""

Vec3 = tuple[float, float, float]
Quat = tuple[float, float, float, float]

IDENTITY: Quat = (0.0, 0.0, 0.0, 1.0)
WORLD_UP: Vec3 = (0.0, 1.0, 0.0)


def vec_add(a: Vec3, b: Vec3) -> Vec3:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2])


def vec_sub(a: Vec3, b: Vec3) -> Vec3:
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2])


def vec_scale(a: Vec3, s: float) -> Vec3:
    return (a[0] * s, a[1] * s, a[2] * s)


def vec_dot(a: Vec3, b: Vec3) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def vec_length(a: Vec3) -> float:
    return math.sqrt(vec_dot(a, a))


def quat_normalize(q: Quat) -> Quat:
    n = math.sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3])
    if n < 1e-12:
        raise ValueError("cannot normalise a zero quaternion")
    return (q[0] / n, q[1] / n, q[2] / n, q[3] / n)


def quat_from_axis_angle(axis: Vec3, angle: float) -> Quat:
    """Rotation of ``angle`` radians about ``axis`` (need not be unit length)."""
    n = vec_length(axis)
    if n < 1e-12:
        raise ValueError("rotation axis must not be the zero vector")
    s = math.sin(angle / 2.0) / n
    return (axis[0] * s, axis[1] * s, axis[2] * s, math.cos(angle / 2.0))


def quat_multiply(a: Quat, b: Quat) -> Quat:
    """Hamilton product ``a * b``: rotating by the result applies ``b`` first, then ``a``."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return (
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    )


def quat_conjugate(q: Quat) -> Quat:
    return (-q[0], -q[1], -q[2], q[3])


def quat_rotate(q: Quat, v: Vec3) -> Vec3:
    """``v`` rotated by the unit quaternion ``q``."""
    # v' = v + 2 w (u × v) + 2 u × (u × v), with u the vector part: cheaper than q v q*.
    ux, uy, uz, w = q
    tx = 2.0 * (uy * v[2] - uz * v[1])
    ty = 2.0 * (uz * v[0] - ux * v[2])
    tz = 2.0 * (ux * v[1] - uy * v[0])
    return (
        v[0] + w * tx + (uy * tz - uz * ty),
        v[1] + w * ty + (uz * tx - ux * tz),
        v[2] + w * tz + (ux * ty - uy * tx),
    )


def quat_from_yaw_pitch(yaw: float, pitch: float) -> Quat:
    """Orientation that turns by ``yaw`` about world +y, then tilts by ``pitch`` about the local x.

    With the camera convention (looking down local -z), positive yaw turns the view left and
    positive pitch tilts it up.
    """
    return quat_multiply(
        quat_from_axis_angle((0.0, 1.0, 0.0), yaw), quat_from_axis_angle((1.0, 0.0, 0.0), pitch)
    )


def quat_angle_between(a: Quat, b: Quat) -> float:
    """The smallest rotation angle (radians, 0..π) taking orientation ``a`` to ``b``."""
    d = abs(a[0] * b[0] + a[1] * b[1] + a[2] * b[2] + a[3] * b[3])
    return 2.0 * math.acos(min(1.0, d))


def quat_to_matrix3(q: Sequence[float]) -> npt.NDArray[np.float64]:
    """3×3 rotation of a (not necessarily unit) quaternion (x, y, z, w)."""
    x, y, z, w = (float(c) for c in q)
    n = x * x + y * y + z * z + w * w
    if n < 1e-12:
        raise ValueError("rotation is a zero quaternion; use a unit quaternion (x, y, z, w)")
    return np.array(_rotation_rows(x, y, z, w, 2.0 / n))


def quats_to_matrices3(q: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """:func:`quat_to_matrix3` of (n, 4) quaternions at once, (n, 3, 3) out: the same
    arithmetic element for element. None may be zero."""
    x, y, z, w = np.asarray(q, dtype=np.float64).reshape(-1, 4).T
    rows = _rotation_rows(x, y, z, w, 2.0 / (x * x + y * y + z * z + w * w))
    return np.stack([np.stack(row, axis=-1) for row in rows], axis=-2)


def _rotation_rows(x: Any, y: Any, z: Any, w: Any, s: Any) -> tuple[tuple[Any, Any, Any], ...]:
    """The rows of a quaternion's rotation matrix (``s`` = 2 / its squared norm), for numbers
    or arrays of them alike."""
    return (
        (1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w)),
        (s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w)),
        (s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y)),
    )
