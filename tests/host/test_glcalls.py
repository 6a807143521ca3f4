"""host.glcalls: the renderer's per-part GL calls through ctypes, without PyOpenGL's checks.

It opens the library PyOpenGL loaded (``PLATFORM.GL._name``, a PyOpenGL attribute): these tests
fail if that stops naming a library with the GL entry points, or if skipping the per-call check
would hide an error (``check_errors`` must still report it)."""

from __future__ import annotations

import ctypes

import pytest
from OpenGL import GL

from farview.host import glcalls
from farview.host.egl import EglContext


def test_calls_reach_the_current_context(egl_context: EglContext) -> None:
    glcalls.enable(GL.GL_CULL_FACE)
    assert GL.glIsEnabled(GL.GL_CULL_FACE)
    glcalls.disable(GL.GL_CULL_FACE)
    assert not GL.glIsEnabled(GL.GL_CULL_FACE)
    glcalls.check_errors("toggling face culling")


def test_a_bad_call_is_reported_by_check_errors(egl_context: EglContext) -> None:
    glcalls.enable(0x7FFF)  # not a capability: GL_INVALID_ENUM, silently, until checked
    with pytest.raises(RuntimeError, match=r"0x0500.*while testing"):
        glcalls.check_errors("testing")
    glcalls.check_errors("after the error was read")  # the error queue is clear again


def test_state_calls_keep_the_gil_and_draws_release_it() -> None:
    keeps = ctypes._FUNCFLAG_PYTHONAPI  # type: ignore[attr-defined]  # ctypes' PyDLL flag
    for fn in (glcalls.uniform_matrix4fv, glcalls.uniform4f, glcalls.bind_vertex_array,
               glcalls.enable, glcalls.stencil_mask):
        assert fn._flags_ & keeps
    assert not glcalls.draw_elements._flags_ & keeps
