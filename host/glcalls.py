"""The GL entry points the renderer calls once per drawn part, straight through ctypes.

PyOpenGL wraps every call in Python argument conversion and a ``glGetError`` check, about
5–10 µs a call. On the 49-part sample model that was ~9 ms a frame — as long as llvmpipe took to
rasterise it. These are the same C functions from the same library PyOpenGL loaded (GLVND's
``libOpenGL``, which dispatches to Mesa or NVIDIA), opened through a separate ``CDLL`` handle so
that the argument types set here never touch PyOpenGL's own function objects.

State calls (uniforms, binds, enables) keep the GIL (``ctypes.PyDLL``); draws release it. In 6
A/B bench pairs (720p60) that gave pose → present p50 18.6 vs 25 ms (medians of the pairs)
and an end-to-end / floor ratio of 1.55 vs 2.08: the host's event loop, sending the previous
frame's packets, no longer trades the GIL with this thread ~500 times a frame.

There is no per-call error check: :func:`check_errors` reads ``glGetError`` once per frame and
raises with every error code it finds, so a bad call is still reported, one frame late at most.

Only the calls made inside the per-part loop live here; everything else (setup, textures,
framebuffers, shader compilation) goes through PyOpenGL with its checks.
"""

from __future__ import annotations

import ctypes
from typing import Any

from OpenGL.platform import PLATFORM

import farview.host.egl  # noqa: F401  (PYOPENGL_PLATFORM=egl before OpenGL is imported)


def _open_gl_library() -> ctypes.CDLL:
    """The library PyOpenGL resolved GL from; else GLVND's libOpenGL, else libGL."""
    names = [getattr(PLATFORM.GL, "_name", None), "libOpenGL.so.0", "libGL.so.1"]
    for name in names:
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            lib.glDrawElements  # noqa: B018  (raises AttributeError when GL is not in it)
            return lib
        except (OSError, AttributeError):
            continue
    raise ImportError(f"no OpenGL library with glDrawElements among {names}; install libopengl0 "
                      "(GLVND) or your GPU driver's libGL")


_lib = _open_gl_library()
# The same library through PyDLL: calls that keep the GIL. ctypes drops and retakes the GIL
# around every CDLL call; for a state change of a microsecond that is pure overhead, and each
# drop is a chance for the event-loop thread (sending the last frame's packets) to take the GIL
# and make this thread wait for it again. Only calls that do real work (draws) release it.
_lib_keep_gil = ctypes.PyDLL(_lib._name)

_GLint = ctypes.c_int
_GLuint = ctypes.c_uint
_GLenum = ctypes.c_uint
_GLsizei = ctypes.c_int
_GLfloat = ctypes.c_float
_GLboolean = ctypes.c_ubyte
_ptr = ctypes.c_void_p


def _fn(name: str, restype: Any, *argtypes: Any, keep_gil: bool = True) -> Any:
    fn = getattr(_lib_keep_gil if keep_gil else _lib, name)
    fn.restype = restype
    fn.argtypes = list(argtypes)
    return fn


uniform_matrix4fv = _fn("glUniformMatrix4fv", None, _GLint, _GLsizei, _GLboolean, _ptr)
uniform_matrix3fv = _fn("glUniformMatrix3fv", None, _GLint, _GLsizei, _GLboolean, _ptr)
uniform4f = _fn("glUniform4f", None, _GLint, _GLfloat, _GLfloat, _GLfloat, _GLfloat)
uniform3f = _fn("glUniform3f", None, _GLint, _GLfloat, _GLfloat, _GLfloat)
uniform1f = _fn("glUniform1f", None, _GLint, _GLfloat)
uniform1iv = _fn("glUniform1iv", None, _GLint, _GLsizei, _ptr)
active_texture = _fn("glActiveTexture", None, _GLenum)
bind_vertex_array = _fn("glBindVertexArray", None, _GLuint)
bind_texture = _fn("glBindTexture", None, _GLenum, _GLuint)
# llvmpipe shades and bins the part's vertices inside this call: the GIL is released
draw_elements = _fn("glDrawElements", None, _GLenum, _GLsizei, _GLenum, _ptr, keep_gil=False)
# (mode, counts: GLsizei[n], type, byte offsets into the element buffer: pointers[n], n)
multi_draw_elements = _fn("glMultiDrawElements", None, _GLenum, _ptr, _GLenum, _ptr, _GLsizei,
                          keep_gil=False)
stencil_mask = _fn("glStencilMask", None, _GLuint)
enable = _fn("glEnable", None, _GLenum)
disable = _fn("glDisable", None, _GLenum)
_get_error = _fn("glGetError", _GLenum)

_GL_NO_ERROR = 0
_MAX_ERRORS = 16


def check_errors(what: str) -> None:
    """Raise ``RuntimeError`` naming every pending GL error (``glGetError`` until clear)."""
    codes = []
    for _ in range(_MAX_ERRORS):
        code = int(_get_error())
        if code == _GL_NO_ERROR:
            break
        codes.append(f"0x{code:04X}")
    if codes:
        raise RuntimeError(f"OpenGL reported {', '.join(codes)} while {what}")
