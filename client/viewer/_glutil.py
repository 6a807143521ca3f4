"""Shared GL plumbing for the viewer's drawers: shader compilation and the textured quad.

Main thread only, with the window's context current (see :mod:`client.viewer.window`).
Every drawer draws one textured quad into a ``glViewport`` rectangle: the quad's corners come
from ``gl_VertexID`` (no vertex buffer), so a drawer only sets the viewport, binds its textures
and issues one ``glDrawArrays(GL_TRIANGLE_STRIP, 0, 4)``.
"""

from __future__ import annotations

from typing import Any

from OpenGL import GL

from farview.client.viewer.window import WindowError

QUAD_VERTEX_SHADER = """
#version 330 core
out vec2 uv;
void main() {
    // Strip order: (-1,-1) (1,-1) (-1,1) (1,1). uv.y = 0 at the TOP edge, because textures are
    // uploaded with image row 0 first and row 0 is the top of the picture.
    vec2 corner = vec2(float(gl_VertexID & 1), float((gl_VertexID >> 1) & 1));
    uv = vec2(corner.x, 1.0 - corner.y);
    gl_Position = vec4(corner * 2.0 - 1.0, 0.0, 1.0);
}
"""


def compile_program(vertex_src: str, fragment_src: str) -> Any:
    """Compile and link a program; a compile or link error raises WindowError with the log."""
    shaders = []
    for kind, src in ((GL.GL_VERTEX_SHADER, vertex_src), (GL.GL_FRAGMENT_SHADER, fragment_src)):
        shader = GL.glCreateShader(kind)
        GL.glShaderSource(shader, src)
        GL.glCompileShader(shader)
        if not GL.glGetShaderiv(shader, GL.GL_COMPILE_STATUS):
            info = GL.glGetShaderInfoLog(shader)
            raise WindowError(f"shader failed to compile: {_text(info)}")
        shaders.append(shader)
    program = GL.glCreateProgram()
    for shader in shaders:
        GL.glAttachShader(program, shader)
    GL.glLinkProgram(program)
    if not GL.glGetProgramiv(program, GL.GL_LINK_STATUS):
        info = GL.glGetProgramInfoLog(program)
        raise WindowError(f"shader program failed to link: {_text(info)}")
    for shader in shaders:
        GL.glDeleteShader(shader)
    return program


def make_texture(internal_format: int, width: int, height: int, fmt: int,
                 filter_mode: int = GL.GL_LINEAR) -> Any:
    """Allocate an uninitialised 2-D texture, clamped at the edges (no wrap-around bleeding)."""
    tex = GL.glGenTextures(1)
    GL.glBindTexture(GL.GL_TEXTURE_2D, tex)
    GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MIN_FILTER, filter_mode)
    GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MAG_FILTER, filter_mode)
    GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_WRAP_S, GL.GL_CLAMP_TO_EDGE)
    GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_WRAP_T, GL.GL_CLAMP_TO_EDGE)
    GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, internal_format, width, height, 0, fmt,
                    GL.GL_UNSIGNED_BYTE, None)
    return tex


def draw_quad() -> None:
    GL.glDrawArrays(GL.GL_TRIANGLE_STRIP, 0, 4)


def _text(info: Any) -> str:
    return info.decode(errors="replace") if isinstance(info, bytes) else str(info)
