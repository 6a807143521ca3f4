"""Rotational reprojection: show a frame rendered for one head orientation as seen from another.

A frame arrives tens of milliseconds after its pose was sampled; by then the head has turned.
For a pure rotation (and, approximately, for anything far compared with the eyes' translation)
the picture seen from the new orientation is a *homography* of the old one, so the client can
correct the last error just before presenting, as OpenXR runtimes do with the submitted pose.

Texture coordinates here are per eye, ``(u, v)`` in [0, 1] with u to the right and v *down*
(v = 0 is image row 0, the top; the viewer's quad uses the same convention). A frustum
``(tan_left, tan_right, tan_up, tan_down)`` maps ``(u, v)`` to the camera-space direction
``(l + u (r − l), up − v (up − down), −1)``. :func:`reprojection_homography` returns ``H`` with
``(u_src, v_src, 1) ∝ H (u_out, v_out, 1)``: for each *output* pixel, where to sample the
rendered frame. A positive third component means the direction is in front of the rendered
camera; outside [0, 1]² (or behind) there is no data and the pixel is black.

Two applications: :class:`~client.viewer.yuv_renderer.YuvRenderer`'s shader path (a uniform 3×3
per eye) and :func:`reproject_rgb` (numpy, for tests and the headless loop). Pure functions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from farview.input.mathutil import Quat, quat_to_matrix3
from farview.input.pose import Fov, PoseMessage

Mat3 = npt.NDArray[np.float64]

IDENTITY3: Mat3 = np.eye(3)


def uv_to_direction(fov: Fov) -> Mat3:
    """``K⁻¹``: per-eye ``(u, v, 1)`` (v down) → camera-space direction with z = −1."""
    return np.array([
        [fov.tan_right - fov.tan_left, 0.0, fov.tan_left],
        [0.0, -(fov.tan_up - fov.tan_down), fov.tan_up],
        [0.0, 0.0, -1.0],
    ], dtype=np.float64)


def reprojection_homography(rendered_orientation: Quat, rendered_fov: Fov,
                            target_orientation: Quat, target_fov: Fov | None = None) -> Mat3:
    """``H``: output (target view) texture coordinates → rendered-frame texture coordinates.

    ``K_src · R_srcᵀ · R_target · K_target⁻¹``, scaled so that ``H[2, 2]`` is positive when the
    target's centre direction is in front of the rendered camera.
    """
    k_src = np.linalg.inv(uv_to_direction(rendered_fov))
    rot = quat_to_matrix3(rendered_orientation).T @ quat_to_matrix3(target_orientation)
    h: Mat3 = k_src @ rot @ uv_to_direction(target_fov or rendered_fov)
    return h


def frame_homographies(rendered: PoseMessage, target_orientation: Quat) -> tuple[Mat3, ...]:
    """One homography per view of ``rendered`` (1 mono, 2 side-by-side eyes) to a new orientation.

    Every eye turns with the head, so the same target orientation applies to each eye; each keeps
    its own field of view.
    """
    return tuple(reprojection_homography(v.pose.orientation, v.fov, target_orientation, v.fov)
                 for v in rendered.views)


def apply_homography(h: Mat3, u: npt.ArrayLike, v: npt.ArrayLike) -> tuple[
        npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Source coordinates for output ``(u, v)`` arrays, and whether each has data (in front, inside)."""
    uu = np.asarray(u, dtype=np.float64)
    vv = np.asarray(v, dtype=np.float64)
    x = h[0, 0] * uu + h[0, 1] * vv + h[0, 2]
    y = h[1, 0] * uu + h[1, 1] * vv + h[1, 2]
    w = h[2, 0] * uu + h[2, 1] * vv + h[2, 2]
    front = w > 1e-9
    safe = np.where(front, w, 1.0)
    us, vs = x / safe, y / safe
    valid = front & (us >= 0.0) & (us <= 1.0) & (vs >= 0.0) & (vs <= 1.0)
    return us, vs, valid


def reproject_rgb(rgb: npt.NDArray[np.uint8], homographies: Sequence[Mat3],
                  fill: tuple[int, int, int] = (0, 0, 0)) -> npt.NDArray[np.uint8]:
    """Reproject an RGB frame (H, W, 3) of ``len(homographies)`` side-by-side views (nearest sampling).

    The CPU twin of the viewer's shader path: same coordinates, same black outside the data.
    """
    if rgb.ndim != 3 or len(homographies) not in (1, 2):
        raise ValueError("expects an (H, W, C) image and 1 or 2 homographies")
    height, width = rgb.shape[:2]
    eyes = len(homographies)
    eye_w = width // eyes
    out = np.empty_like(rgb)
    out[...] = np.asarray(fill, dtype=rgb.dtype)[: rgb.shape[2]]
    # pixel centres in per-eye texture coordinates
    u = (np.arange(eye_w) + 0.5) / eye_w
    v = (np.arange(height) + 0.5) / height
    uu, vv = np.meshgrid(u, v)
    for eye, h in enumerate(homographies):
        us, vs, valid = apply_homography(h, uu, vv)
        cols = np.clip(np.floor(us * eye_w).astype(np.int64), 0, eye_w - 1) + eye * eye_w
        rows = np.clip(np.floor(vs * height).astype(np.int64), 0, height - 1)
        block = out[:, eye * eye_w:(eye + 1) * eye_w]
        block[valid] = rgb[rows[valid], cols[valid]]
    return out


def is_identity(homographies: Sequence[Mat3], tolerance: float = 1e-9) -> bool:
    """True when every homography leaves coordinates unchanged (up to scale)."""
    return all(np.allclose(h / h[2, 2], IDENTITY3, atol=tolerance) for h in homographies if h[2, 2] != 0)
