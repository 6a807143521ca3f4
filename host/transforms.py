"""Rigid-transform maths shared by the scene graph and the renderer (pure numpy, no GL).

Conventions: column vectors, 4×4 float64 matrices (``M @ p``), quaternions as (x, y, z, w) like
glTF and ``input.pose``. Right-handed, y up; a camera looks down its local -z.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from farview.input.mathutil import quat_to_matrix3, quats_to_matrices3

Mat4 = npt.NDArray[np.float64]


def matrix3_to_quat(m: npt.NDArray[np.float64]) -> tuple[float, float, float, float]:
    """Unit quaternion (x, y, z, w) of a proper rotation matrix (Shepperd's method)."""
    t = m[0, 0] + m[1, 1] + m[2, 2]
    if t > 0:
        s = math.sqrt(t + 1.0) * 2
        q = ((m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s)
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2]) * 2
        q = (0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s)
    elif m[1, 1] > m[2, 2]:
        s = math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2]) * 2
        q = ((m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s)
    else:
        s = math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1]) * 2
        q = ((m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s)
    n = math.sqrt(sum(c * c for c in q))
    x, y, z, w = (float(c / n) for c in q)
    return (x, y, z, w)


def compose(
    translation: Sequence[float], rotation: Sequence[float], scale: Sequence[float]
) -> Mat4:
    """T · R · S, the glTF node order."""
    m = np.eye(4)
    if tuple(rotation) != _NO_ROTATION or tuple(scale) != _UNIT_SCALE:
        # (most parts of an assembly are only moved: their matrix is the identity's plus
        # the translation, with no quaternion arithmetic for each of 100,000 parts)
        m[:3, :3] = quat_to_matrix3(rotation) * np.asarray(scale, dtype=np.float64)[None, :]
    m[:3, 3] = translation
    return m


_NO_ROTATION = (0.0, 0.0, 0.0, 1.0)
_UNIT_SCALE = (1.0, 1.0, 1.0)


def compose_many(translations: npt.NDArray[np.float64], rotations: npt.NDArray[np.float64],
                 scales: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """:func:`compose` of n transforms at once ((n, 3), (n, 4) and (n, 3) arrays; (n, 4, 4)
    out), with its arithmetic element for element (one matrix a part of 100,000 took 0.1 s
    more, and kept 24 MB of matrices). The quaternions must not be zero."""
    n = len(translations)
    m = np.zeros((n, 4, 4))
    m[:, 0, 0] = m[:, 1, 1] = m[:, 2, 2] = m[:, 3, 3] = 1.0
    moved = ~(np.all(rotations == _NO_ROTATION, axis=1) & np.all(scales == _UNIT_SCALE, axis=1))
    if moved.any():
        m[moved, :3, :3] = (quats_to_matrices3(rotations[moved])
                            * np.asarray(scales[moved], dtype=np.float64)[:, None, :])
    m[:, :3, 3] = translations
    return m


Vec3 = tuple[float, float, float]
Quat = tuple[float, float, float, float]


def decompose(m: Mat4) -> tuple[Vec3, Quat, Vec3, float]:
    """Split an affine matrix into (translation, rotation, scale, residual).

    ``residual`` is the largest absolute difference between ``m`` and the recomposed TRS; it is
    non-zero only for shear, which TRS cannot express (glTF forbids it for animated nodes).
    A negative determinant (mirroring) is carried by a negative x scale.
    """
    t = (float(m[0, 3]), float(m[1, 3]), float(m[2, 3]))
    a = np.asarray(m[:3, :3], dtype=np.float64)
    sx, sy, sz = (float(np.linalg.norm(a[:, i])) for i in range(3))
    if np.linalg.det(a) < 0:
        sx = -sx
    scale = (sx, sy, sz)
    if min(abs(sx), abs(sy), abs(sz)) < 1e-12:
        return t, (0.0, 0.0, 0.0, 1.0), scale, 0.0
    r = a / np.array(scale)[None, :]
    # Orthonormalise (polar decomposition) so tiny float errors do not leak into the quaternion.
    u, _, vt = np.linalg.svd(r)
    q = matrix3_to_quat(u @ vt)
    residual = float(np.max(np.abs(compose(t, q, scale) - m)))
    return t, q, scale, residual


def perspective_from_tangents(
    tan_left: float, tan_right: float, tan_up: float, tan_down: float, near: float, far: float
) -> Mat4:
    """OpenGL clip matrix of an asymmetric frustum given as half-angle tangents (OpenXR style)."""
    w = tan_right - tan_left
    h = tan_up - tan_down
    p = np.zeros((4, 4))
    p[0, 0] = 2.0 / w
    p[0, 2] = (tan_right + tan_left) / w
    p[1, 1] = 2.0 / h
    p[1, 2] = (tan_up + tan_down) / h
    p[2, 2] = -(far + near) / (far - near)
    p[2, 3] = -2.0 * far * near / (far - near)
    p[3, 2] = -1.0
    return p


def view_matrix(position: Sequence[float], orientation: Sequence[float]) -> Mat4:
    """World → camera: the inverse of the camera's rigid pose."""
    r = quat_to_matrix3(orientation)
    v = np.eye(4)
    v[:3, :3] = r.T
    v[:3, 3] = -r.T @ np.asarray(position, dtype=np.float64)
    return v


def transform_points(m: Mat4, points: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    """Apply an affine 4×4 to (N, 3) points."""
    p = np.asarray(points, dtype=np.float64)
    return p @ m[:3, :3].T + m[:3, 3]
