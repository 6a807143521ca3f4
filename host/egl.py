"""Headless OpenGL through EGL: one context per render host, no window, no X server.

Owns the EGL display/context lifecycle and the choice of display:

1. ``EGL_EXT_device_enumeration``: enumerate EGL devices and prefer an NVIDIA one (its vendor
   or extension string mentions NVIDIA), opened with ``eglGetPlatformDisplayEXT(
   EGL_PLATFORM_DEVICE_EXT, device)``. This is the fast path on a GPU server.
2. Mesa's surfaceless platform (``EGL_PLATFORM_SURFACELESS_MESA``): llvmpipe on a CPU-only
   machine (or Mesa's hardware drivers); measured to work here (latency-facts.md).

The context is GL 3.3+ core and is made current without a surface when
``EGL_KHR_surfaceless_context`` exists, else with a 1×1 pbuffer; all rendering goes into FBOs.

**Import order:** PyOpenGL chooses its platform when ``OpenGL`` is first imported. This module
sets ``PYOPENGL_PLATFORM=egl`` at import time, so the host process must import ``host.egl``
before anything imports ``OpenGL`` (``host.renderer`` does so itself).

Threading: an EGL context is current on one thread. The thread that constructs
:class:`EglContext` owns it and must be the one that renders; call :meth:`EglContext.release`
on that thread when done.
"""

from __future__ import annotations

import ctypes
import logging
import os

# Must precede any OpenGL import in the process (see module docstring).
if os.environ.get("PYOPENGL_PLATFORM", "egl") != "egl":
    raise ImportError(
        f"PYOPENGL_PLATFORM={os.environ['PYOPENGL_PLATFORM']!r}: the render host needs 'egl'; "
        "unset it or import farview.host.egl before anything imports OpenGL"
    )
os.environ["PYOPENGL_PLATFORM"] = "egl"

from OpenGL import (
    EGL,
    GL,
)

from farview.host.errors import EglError

log = logging.getLogger(__name__)

EGL_PLATFORM_SURFACELESS_MESA = 0x31DD
EGL_PLATFORM_DEVICE_EXT = 0x313F
EGL_DRM_DEVICE_FILE_EXT = 0x3233
_MAX_DEVICES = 16

PATH_NVIDIA_DEVICE = "nvidia-egl-device"
PATH_EGL_DEVICE = "egl-device"
PATH_MESA_SURFACELESS = "mesa-surfaceless"


def _egl_error_text() -> str:
    return f"EGL error 0x{EGL.eglGetError():04X}"


def _client_extensions() -> set[str]:
    raw = EGL.eglQueryString(EGL.EGL_NO_DISPLAY, EGL.EGL_EXTENSIONS)
    return set(raw.decode().split()) if raw else set()


def _load_ext(name: str, restype: object, *argtypes: object) -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    """Resolve an EGL extension entry point through eglGetProcAddress (None if missing)."""
    get_proc = EGL.eglGetProcAddress
    addr = get_proc(name.encode())
    if not addr:
        return None
    proto = ctypes.CFUNCTYPE(restype, *argtypes)  # type: ignore[arg-type]
    return proto(addr)  # type: ignore[no-any-return]


def _enumerate_devices() -> list[tuple[ctypes.c_void_p, str]]:
    """EGL devices and a describing string (vendor/extensions/DRM file) for each."""
    query_devices = _load_ext(
        "eglQueryDevicesEXT", ctypes.c_uint, ctypes.c_int,
        ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_int),
    )
    query_string = _load_ext(
        "eglQueryDeviceStringEXT", ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int
    )
    if query_devices is None:
        return []
    devices = (ctypes.c_void_p * _MAX_DEVICES)()
    count = ctypes.c_int(0)
    if not query_devices(_MAX_DEVICES, devices, ctypes.byref(count)):
        return []
    out = []
    for i in range(count.value):
        parts = []
        if query_string is not None:
            for what in (EGL.EGL_VENDOR, EGL.EGL_EXTENSIONS, EGL_DRM_DEVICE_FILE_EXT):
                try:
                    s = query_string(devices[i], what)
                except Exception:  # a driver may reject a query it does not know
                    s = None
                if s:
                    parts.append(s.decode(errors="replace"))
        out.append((ctypes.c_void_p(devices[i]), " ".join(parts)))
    return out


def _initialize(display: object) -> tuple[int, int] | None:
    if not display:
        return None
    major, minor = EGL.EGLint(), EGL.EGLint()
    try:
        ok = EGL.eglInitialize(display, ctypes.pointer(major), ctypes.pointer(minor))
    except Exception:  # PyOpenGL raises EGLError on EGL_FALSE
        return None
    return (major.value, minor.value) if ok else None


def _open_display() -> tuple[object, str]:
    """Pick and initialise a display; returns (display, path name)."""
    exts = _client_extensions()
    tried: list[str] = []
    if {"EGL_EXT_device_enumeration", "EGL_EXT_platform_device"} <= exts or (
        "EGL_EXT_device_base" in exts
    ):
        devices = _enumerate_devices()
        # NVIDIA first (the GPU server's fast path), then other non-software devices.
        ranked = sorted(devices, key=lambda d: 0 if "nvidia" in d[1].lower() else 1)
        for device, desc in ranked:
            if "nvidia" not in desc.lower():
                # Mesa exposes llvmpipe as a device too; the surfaceless platform below is the
                # documented route for it, so only take a device here when it is NVIDIA.
                tried.append(f"device '{desc[:40]}' (not NVIDIA)")
                continue
            display = EGL.eglGetPlatformDisplayEXT(EGL_PLATFORM_DEVICE_EXT, device, None)
            if _initialize(display) is not None:
                return display, PATH_NVIDIA_DEVICE
            tried.append(f"NVIDIA device failed ({_egl_error_text()})")
    else:
        tried.append("no EGL_EXT_device_enumeration")
    if "EGL_MESA_platform_surfaceless" in exts:
        display = EGL.eglGetPlatformDisplayEXT(
            EGL_PLATFORM_SURFACELESS_MESA, EGL.EGL_DEFAULT_DISPLAY, None
        )
        if _initialize(display) is not None:
            return display, PATH_MESA_SURFACELESS
        tried.append(f"Mesa surfaceless failed ({_egl_error_text()})")
    else:
        tried.append("no EGL_MESA_platform_surfaceless")
    raise EglError(
        "no headless EGL display: " + "; ".join(tried)
        + ". Install the NVIDIA driver's EGL or Mesa (libegl-mesa0, libgl1-mesa-dri)."
    )


class EglContext:
    """A current, windowless GL 3.3+ core context on the calling thread.

    Attributes:
        path: which display was taken: ``"nvidia-egl-device"`` or ``"mesa-surfaceless"``.
        renderer: ``GL_RENDERER`` (e.g. ``"llvmpipe (LLVM 15.0.6, 256 bits)"``).
        version: ``GL_VERSION``.
    """

    def __init__(self, *, gl_major: int = 3, gl_minor: int = 3) -> None:
        if (gl_major, gl_minor) < (3, 3):
            raise ValueError(f"farview needs GL 3.3 or newer, asked for {gl_major}.{gl_minor}")
        self._display, self.path = _open_display()
        self._surface: object = EGL.EGL_NO_SURFACE
        self._context: object = EGL.EGL_NO_CONTEXT
        try:
            self._create(gl_major, gl_minor)
        except Exception:
            self.release()
            raise
        self.renderer = _gl_string(GL.GL_RENDERER)
        self.version = _gl_string(GL.GL_VERSION)
        log.info("EGL context: path=%s renderer=%s GL=%s", self.path, self.renderer, self.version)

    def _create(self, gl_major: int, gl_minor: int) -> None:
        display = self._display
        surfaceless = "EGL_KHR_surfaceless_context" in (
            EGL.eglQueryString(display, EGL.EGL_EXTENSIONS) or b""
        ).decode()
        attribs = [
            EGL.EGL_SURFACE_TYPE, 0 if surfaceless else EGL.EGL_PBUFFER_BIT,
            EGL.EGL_RENDERABLE_TYPE, EGL.EGL_OPENGL_BIT,
            EGL.EGL_RED_SIZE, 8, EGL.EGL_GREEN_SIZE, 8, EGL.EGL_BLUE_SIZE, 8,
            EGL.EGL_NONE,
        ]
        config = EGL.EGLConfig()
        n = EGL.EGLint()
        cfg_attribs = (EGL.EGLint * len(attribs))(*attribs)
        if not EGL.eglChooseConfig(display, cfg_attribs, ctypes.pointer(config), 1,
                                   ctypes.pointer(n)) or n.value < 1:
            raise EglError(f"eglChooseConfig found no OpenGL config ({_egl_error_text()})")
        if not EGL.eglBindAPI(EGL.EGL_OPENGL_API):
            raise EglError(f"eglBindAPI(OpenGL) failed ({_egl_error_text()})")
        ctx_attribs_list = [
            EGL.EGL_CONTEXT_MAJOR_VERSION, gl_major,
            EGL.EGL_CONTEXT_MINOR_VERSION, gl_minor,
            EGL.EGL_CONTEXT_OPENGL_PROFILE_MASK, EGL.EGL_CONTEXT_OPENGL_CORE_PROFILE_BIT,
            EGL.EGL_NONE,
        ]
        ctx_attribs = (EGL.EGLint * len(ctx_attribs_list))(*ctx_attribs_list)
        self._context = EGL.eglCreateContext(display, config, EGL.EGL_NO_CONTEXT, ctx_attribs)
        if not self._context:
            raise EglError(
                f"eglCreateContext for GL {gl_major}.{gl_minor} core failed ({_egl_error_text()})"
            )
        if not surfaceless:
            pb = (EGL.EGLint * 5)(EGL.EGL_WIDTH, 1, EGL.EGL_HEIGHT, 1, EGL.EGL_NONE)
            self._surface = EGL.eglCreatePbufferSurface(display, config, pb)
            if not self._surface:
                raise EglError(f"eglCreatePbufferSurface(1x1) failed ({_egl_error_text()})")
        if not EGL.eglMakeCurrent(display, self._surface, self._surface, self._context):
            raise EglError(f"eglMakeCurrent failed ({_egl_error_text()})")

    def release(self) -> None:
        """Unbind and destroy the context (idempotent; call on the owning thread)."""
        if self._display is None:
            return
        EGL.eglMakeCurrent(self._display, EGL.EGL_NO_SURFACE, EGL.EGL_NO_SURFACE,
                           EGL.EGL_NO_CONTEXT)
        if self._context:
            EGL.eglDestroyContext(self._display, self._context)
        if self._surface:
            EGL.eglDestroySurface(self._display, self._surface)
        # The display is left initialised: other contexts in this process may share it, and
        # eglTerminate on Mesa's surfaceless display invalidates them.
        self._display = None
        self._context = EGL.EGL_NO_CONTEXT
        self._surface = EGL.EGL_NO_SURFACE

    def __enter__(self) -> EglContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _gl_string(name: int) -> str:
    value = GL.glGetString(name)
    return value.decode(errors="replace") if value else ""
