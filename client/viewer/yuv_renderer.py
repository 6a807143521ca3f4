"""Draws decoded I420 frames: Y, U, V planes as three GL_R8 textures, converted in the shader.

Colour conversion is BT.601 limited range, the same formulas as :meth:`client.frame.Frame.to_rgb`
(the CPU reference), done per pixel in the fragment shader so the CPU only copies planes.
Textures are reallocated only when the frame size changes; otherwise ``glTexSubImage2D`` reuses
them. The picture keeps its aspect ratio: when the framebuffer's aspect differs, the quad is
drawn into a centred ``glViewport`` and the rest stays the clear colour (letterbox/pillarbox).

Optional late reprojection (:mod:`farview.client.headset.reprojection`): :meth:`YuvRenderer.set_reprojection`
sets one 3×3 homography per eye (1 mono, 2 side by side), applied to the texture coordinates in
the fragment shader; pixels with no data turn black. Off by default, and then the shader samples
exactly as before.

Main thread only, with the window's context current. Timing: ``upload_ms`` and ``draw_ms`` are
CPU wall times of the GL calls. With a GPU driver the draw is queued, so ``draw_ms`` is the
submission cost; pass ``finish=True`` to :meth:`draw` to include the GPU's work (benchmarks).
With Mesa llvmpipe the texture upload is a synchronous copy either way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from OpenGL import GL

from farview.client.viewer._glutil import QUAD_VERTEX_SHADER, compile_program, draw_quad, make_texture

log = logging.getLogger(__name__)

YUV_FRAGMENT_SHADER = """
#version 330 core
in vec2 uv;
out vec4 colour;
uniform sampler2D plane_y;
uniform sampler2D plane_u;
uniform sampler2D plane_v;
uniform int reproject_eyes;  // 0: off; 1: one view; 2: two side-by-side views
uniform mat3 reproject_h[2];  // per eye: output (u, v, 1) -> source (u, v, 1), v down
void main() {
    vec2 st = uv;
    if (reproject_eyes > 0) {
        float n = float(reproject_eyes);
        int eye = (reproject_eyes == 2 && uv.x >= 0.5) ? 1 : 0;
        vec3 p = reproject_h[eye] * vec3(uv.x * n - float(eye), uv.y, 1.0);
        vec2 src = p.xy / max(p.z, 1e-9);
        if (p.z <= 1e-9 || any(lessThan(src, vec2(0.0))) || any(greaterThan(src, vec2(1.0)))) {
            colour = vec4(0.0, 0.0, 0.0, 1.0);  // no data there: rendered outside the old view
            return;
        }
        st = vec2((src.x + float(eye)) / n, src.y);
    }
    // BT.601 limited range: Y in 16..235, Cb/Cr in 16..240 centred on 128.
    float y = texture(plane_y, st).r * 255.0 - 16.0;
    float u = texture(plane_u, st).r * 255.0 - 128.0;
    float v = texture(plane_v, st).r * 255.0 - 128.0;
    vec3 rgb = vec3(1.164 * y + 1.596 * v,
                    1.164 * y - 0.392 * u - 0.813 * v,
                    1.164 * y + 2.017 * u) / 255.0;
    colour = vec4(clamp(rgb, 0.0, 1.0), 1.0);
}
"""


def letterbox(
    frame_size: tuple[int, int], target_size: tuple[int, int]
) -> tuple[int, int, int, int]:
    """The largest centred rectangle ``(x, y, w, h)`` in ``target_size`` with the frame's aspect.

    Sizes are ``(width, height)``; ``x, y`` are from the bottom-left as ``glViewport`` takes them.
    """
    fw, fh = frame_size
    tw, th = target_size
    if fw <= 0 or fh <= 0 or tw <= 0 or th <= 0:
        return (0, 0, max(tw, 0), max(th, 0))
    # Compare aspects with integers so an exact match never letterboxes by one pixel.
    if fw * th > tw * fh:  # frame is wider: full width, bars top and bottom
        w, h = tw, max(1, round(tw * fh / fw))
    else:  # frame is taller or equal: full height, bars left and right
        w, h = max(1, round(th * fw / fh)), th
    return ((tw - w) // 2, (th - h) // 2, w, h)


class YuvRenderer:
    """Uploads I420 planes and draws them letterboxed; create it with the GL context current."""

    def __init__(self) -> None:
        self._program = compile_program(QUAD_VERTEX_SHADER, YUV_FRAGMENT_SHADER)
        self._vao = GL.glGenVertexArrays(1)
        self._textures: list[Any] = []
        self._frame_size: tuple[int, int] | None = None
        self._filter: int | None = None
        GL.glUseProgram(self._program)
        for unit, name in enumerate(("plane_y", "plane_u", "plane_v")):
            GL.glUniform1i(GL.glGetUniformLocation(self._program, name), unit)
        self._reproject_eyes_loc = GL.glGetUniformLocation(self._program, "reproject_eyes")
        self._reproject_h_loc = GL.glGetUniformLocation(self._program, "reproject_h")
        GL.glUniform1i(self._reproject_eyes_loc, 0)
        self.upload_ms = 0.0
        """CPU time of the last :meth:`upload`."""
        self.draw_ms = 0.0
        """CPU time of the last :meth:`draw` (plus GPU time with ``finish=True``)."""

    @property
    def frame_size(self) -> tuple[int, int] | None:
        """``(width, height)`` of the uploaded frame, or None before the first upload."""
        return self._frame_size

    def set_reprojection(self, homographies: Sequence[np.ndarray] | None) -> None:
        """Reproject the next draws: one 3×3 homography per side-by-side view (1 or 2), as
        :func:`farview.client.headset.reprojection.frame_homographies` makes them; ``None`` turns it off."""
        GL.glUseProgram(self._program)
        if not homographies:
            GL.glUniform1i(self._reproject_eyes_loc, 0)
            return
        if len(homographies) not in (1, 2):
            raise ValueError(f"reprojection takes 1 or 2 homographies, got {len(homographies)}")
        mats = np.stack([np.asarray(h, dtype=np.float32).reshape(3, 3) for h in homographies])
        if len(mats) == 1:
            mats = np.concatenate([mats, mats])
        GL.glUniformMatrix3fv(self._reproject_h_loc, 2, GL.GL_TRUE, np.ascontiguousarray(mats))
        GL.glUniform1i(self._reproject_eyes_loc, len(homographies))

    def upload(self, y: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
        """Copy one frame's planes into the textures (reallocating only on a size change)."""
        start = time.perf_counter()
        planes = [np.ascontiguousarray(p, dtype=np.uint8) for p in (y, u, v)]
        if any(p.ndim != 2 for p in planes):
            raise ValueError("I420 planes must be 2-D arrays")
        height, width = planes[0].shape
        size = (width, height)
        if size != self._frame_size:
            self._allocate(planes)
            self._frame_size = size
        # Rows of odd-width planes are not 4-byte aligned; numpy packs them tightly.
        GL.glPixelStorei(GL.GL_UNPACK_ALIGNMENT, 1)
        for unit, (tex, plane) in enumerate(zip(self._textures, planes, strict=True)):
            GL.glActiveTexture(GL.GL_TEXTURE0 + unit)
            GL.glBindTexture(GL.GL_TEXTURE_2D, tex)
            GL.glTexSubImage2D(GL.GL_TEXTURE_2D, 0, 0, 0, plane.shape[1], plane.shape[0],
                               GL.GL_RED, GL.GL_UNSIGNED_BYTE, plane)
        self.upload_ms = (time.perf_counter() - start) * 1000.0

    def _allocate(self, planes: list[np.ndarray]) -> None:
        if self._textures:
            GL.glDeleteTextures(self._textures)
        self._textures = [make_texture(GL.GL_R8, p.shape[1], p.shape[0], GL.GL_RED) for p in planes]
        self._filter = GL.GL_LINEAR  # make_texture's default
        log.debug("video textures allocated for %dx%d", planes[0].shape[1], planes[0].shape[0])

    def draw(
        self, framebuffer_size: tuple[int, int], *, finish: bool = False
    ) -> tuple[int, int, int, int]:
        """Draw the last uploaded frame letterboxed; returns the viewport rectangle used.

        The caller clears the framebuffer first (the bars are whatever the clear colour is).
        Leaves the viewport set to the whole framebuffer for whoever draws next.
        """
        start = time.perf_counter()
        fb_w, fb_h = framebuffer_size
        if self._frame_size is None:
            return (0, 0, 0, 0)
        rect = letterbox(self._frame_size, framebuffer_size)
        # 1:1 (the stream sized to the window, the usual case): nearest sampling is exact for
        # Y, matches the CPU reference's chroma replication, and halves llvmpipe's fragment
        # cost (17.5 → 8.4 ms at 720p). Scaled (mid-resize, fullscreen): linear looks better.
        scaled = (rect[2], rect[3]) != self._frame_size
        self._set_filter(GL.GL_LINEAR if scaled else GL.GL_NEAREST)
        GL.glViewport(*rect)
        GL.glDisable(GL.GL_BLEND)
        GL.glUseProgram(self._program)
        GL.glBindVertexArray(self._vao)
        for unit, tex in enumerate(self._textures):
            GL.glActiveTexture(GL.GL_TEXTURE0 + unit)
            GL.glBindTexture(GL.GL_TEXTURE_2D, tex)
        draw_quad()
        GL.glViewport(0, 0, fb_w, fb_h)
        if finish:
            GL.glFinish()
        self.draw_ms = (time.perf_counter() - start) * 1000.0
        return rect

    def _set_filter(self, mode: int) -> None:
        if mode == self._filter:
            return
        for tex in self._textures:
            GL.glBindTexture(GL.GL_TEXTURE_2D, tex)
            GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MIN_FILTER, mode)
            GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MAG_FILTER, mode)
        self._filter = mode

    def close(self) -> None:
        """Free the GL objects (the context must still be current)."""
        if self._textures:
            GL.glDeleteTextures(self._textures)
            self._textures = []
        GL.glDeleteVertexArrays(1, [self._vao])
        GL.glDeleteProgram(self._program)
        self._frame_size = None
