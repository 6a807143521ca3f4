"""The viewer's shader reprojection matches the numpy path, and is off (unchanged) by default."""

from __future__ import annotations

import numpy as np
import pytest
from OpenGL import GL

from farview.client.headset.reprojection import frame_homographies, reproject_rgb
from farview.client.viewer.window import Window
from farview.client.viewer.yuv_renderer import YuvRenderer
from farview.input.headset import HeadsetDescription, stereo_views
from farview.input.mathutil import quat_from_yaw_pitch
from farview.input.pose import Pose, PoseMessage
from farview.streaming.frame import Frame

pytestmark = pytest.mark.e2e


def test_shader_reprojection_matches_numpy(xvfb_display: str) -> None:
    w, h = 160, 60
    y = np.full((h, w), 16, np.uint8)
    y[:, 36:44] = 235  # a bright bar in each eye
    y[:, 116:124] = 235
    y[20:30, :] = 126
    u = np.full((h // 2, w // 2), 128, np.uint8)
    v = u.copy()
    msg = PoseMessage(1, 0, stereo_views(Pose(), HeadsetDescription.symmetric((80, 60))), (w, h))
    homographies = frame_homographies(msg, quat_from_yaw_pitch(0.15, 0.05))
    with Window(title="reproject", size=(w, h), vsync=False, visible=True) as window:
        renderer = YuvRenderer()
        renderer.upload(y, u, v)

        def draw() -> np.ndarray:
            GL.glClearColor(0, 0, 0, 1)
            GL.glClear(GL.GL_COLOR_BUFFER_BIT)
            renderer.draw(window.framebuffer_size())
            return window.read_pixels("back")[:, :, 0].astype(int)

        plain = draw()
        renderer.set_reprojection(homographies)
        warped = draw()
        renderer.set_reprojection(None)
        again = draw()
        renderer.close()
    rgb = Frame(y, u, v, None, None).to_rgb()  # the CPU reference conversion
    expected = reproject_rgb(rgb, homographies)[:, :, 0].astype(int)
    assert np.array_equal(plain, again)
    assert np.abs(plain - rgb[:, :, 0].astype(int)).max() <= 2  # off: exactly the frame as before
    # nearest sampling on both sides: allow single-pixel disagreements at edges
    mismatch = np.abs(warped - expected) > 30
    assert mismatch.mean() < 0.03, mismatch.mean()
    assert not np.array_equal(warped, plain)
