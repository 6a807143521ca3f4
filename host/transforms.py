"""Rigid-transform maths shared by the scene graph and the renderer (pure numpy, no GL).

Conventions: column vectors, 4×4 float64 matrices (``M @ p``), quaternions as (x, y, z, w) like
glTF and ``input.pose``. Right-handed, y up; a camera looks down its local -z.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from farview.input.mathutil import quat_to_matrix3, quats_to_matrices3

Mat4 = npt.NDArray[np.float64]


def matrix3_to_quat(m: npt.NDArray[np.float64]) -> tuple[float, float, float, float]:
    """Unit quaternion (x, y, z, w) of a proper rotation matrix (Shepperd's method)."""
    x, y, z, w = (float(c) for c in matrices3_to_quats(np.asarray(m)[None])[0])
    return (x, y, z, w)


def matrices3_to_quats(m: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Unit quaternions (n, 4) of (n, 3, 3) proper rotation matrices at once (Shepperd's method:
    of the trace and the diagonal, the largest picks the formula, so none divides by a small
    number)."""
    m = np.asarray(m, dtype=np.float64).reshape(-1, 3, 3)
    d0, d1, d2 = m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]
    t = d0 + d1 + d2
    case = np.where(t > 0, 0, np.where((d0 > d1) & (d0 > d2), 1, np.where(d1 > d2, 2, 3)))
    with np.errstate(invalid="ignore"):  # (each case's root only where it is taken)
        roots = np.sqrt(np.stack([t + 1.0, 1.0 + d0 - d1 - d2, 1.0 + d1 - d0 - d2,
                                  1.0 + d2 - d0 - d1], axis=1)) * 2
    s = np.take_along_axis(roots, case[:, None], axis=1)[:, 0]
    d21, p21 = m[:, 2, 1] - m[:, 1, 2], m[:, 2, 1] + m[:, 1, 2]
    d02, p02 = m[:, 0, 2] - m[:, 2, 0], m[:, 0, 2] + m[:, 2, 0]
    d10, p10 = m[:, 1, 0] - m[:, 0, 1], m[:, 1, 0] + m[:, 0, 1]
    q = np.select(
        [case[:, None] == k for k in range(3)],
        [np.stack([d21 / s, d02 / s, d10 / s, 0.25 * s], axis=1),
         np.stack([0.25 * s, p10 / s, p02 / s, d21 / s], axis=1),
         np.stack([p10 / s, 0.25 * s, p21 / s, d02 / s], axis=1)],
        np.stack([p02 / s, p21 / s, 0.25 * s, d10 / s], axis=1))
    out: npt.NDArray[np.float64] = q / np.linalg.norm(q, axis=1, keepdims=True)
    return out


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
    t, q, s, residual = decompose_many(np.asarray(m, dtype=np.float64)[None])
    tx, ty, tz = (float(c) for c in t[0])
    qx, qy, qz, qw = (float(c) for c in q[0])
    sx, sy, sz = (float(c) for c in s[0])
    return (tx, ty, tz), (qx, qy, qz, qw), (sx, sy, sz), float(residual[0])


def decompose_many(m: npt.NDArray[np.float64]) -> tuple[
        npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64],
        npt.NDArray[np.float64]]:
    """:func:`decompose` of (n, 4, 4) matrices at once: translations (n, 3), rotations (n, 4),
    scales (n, 3) and residuals (n,). One at a time took 0.07 ms a matrix: 7 s to add a
    100,000-part model whose nodes are matrices."""
    m = np.asarray(m, dtype=np.float64).reshape(-1, 4, 4)
    t = m[:, :3, 3].copy()
    a = m[:, :3, :3]
    s = np.linalg.norm(a, axis=1)  # each column's length
    s[:, 0] = np.where(np.linalg.det(a) < 0, -s[:, 0], s[:, 0])
    flat = np.abs(s).min(axis=1) < 1e-12  # no rotation to find: the identity's
    r = np.where(flat[:, None, None], np.eye(3), a / np.where(flat[:, None], 1.0, s)[:, None, :])
    # Orthonormalise (polar decomposition) so tiny float errors do not leak into the quaternion.
    u, _, vt = np.linalg.svd(r)
    q = matrices3_to_quats(u @ vt)
    residual = np.abs(compose_many(t, q, s) - m).max(axis=(1, 2))
    residual[flat] = 0.0
    return t, q, s, residual


def decompose_column_major(columns: npt.ArrayLike) -> tuple[
        npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64],
        npt.NDArray[np.float64]]:
    """:func:`decompose_many` of matrices as glTF writes them (16 numbers each, column-major).
    A matrix with a value that is not finite gives a residual of infinity (the others are
    decomposed as usual; its own would fail the SVD for them all)."""
    flat = np.array(columns, dtype=np.float64).reshape(-1, 16)
    m = flat.reshape(-1, 4, 4).transpose(0, 2, 1)
    finite = np.isfinite(flat).all(axis=1)
    with np.errstate(all="ignore"):  # (overflow shows as inf/NaN in what comes out)
        t, q, s, residual = decompose_many(
            np.where(np.broadcast_to(finite.reshape(-1, 1, 1), m.shape), m, np.eye(4)))
    residual[~finite] = np.inf
    return t, q, s, residual


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
