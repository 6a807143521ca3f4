"""The OpenGL side of the OpenXR path: a context the runtime can share, and drawing the decoded
stream into the runtime's swapchain images.

Two bindings, chosen by :func:`choose_graphics`:

- **EGL** (``XR_MNDX_egl_enable``, Monado): a windowless EGL context (Mesa's surfaceless
  platform where there is one, else the default display), so no X server is needed.
- **GLX** (``XR_KHR_opengl_enable`` on X11): a hidden GLFW window's GLX context; the binding
  carries its X display, visual, FBConfig (runtimes dereference it), drawable and context.

:class:`SwapchainPainter` draws a frame's I420 planes into a swapchain image through a
framebuffer object with the desktop viewer's YUV shader (no per-pixel CPU conversion). The
image is ``GL_SRGB8_ALPHA8`` where the runtime offers it, written without sRGB conversion: the
video is already sRGB-encoded, so the runtime reads back the colours the host rendered.

All of it runs on the thread that owns the context (the headset loop's, the main thread).
"""

from __future__ import annotations

import ctypes
import logging
import os
from typing import Any, Protocol

from farview.client.headset._pyopenxr import OpenXRUnavailableError, XrRuntime

log = logging.getLogger(__name__)

EGL_EXTENSION = "XR_MNDX_egl_enable"
OPENGL_EXTENSION = "XR_KHR_opengl_enable"
HEADLESS_EXTENSION = "XR_MND_headless"
GRAPHICS_CHOICES = ("auto", "egl", "glx", "headless")
GL_SRGB8_ALPHA8 = 0x8C43
GL_RGBA8 = 0x8058
EGL_PLATFORM_SURFACELESS_MESA = 0x31DD


class XrGraphics(Protocol):
    name: str
    extension: str

    def binding(self, runtime: XrRuntime) -> Any: ...

    def close(self) -> None: ...


def choose_graphics(wanted: str, available: set[str]) -> str:
    """Which binding to use: ``wanted`` from :data:`GRAPHICS_CHOICES`; ``auto`` takes EGL when
    the runtime has it (no window needed), else GLX when there is an X display."""
    if wanted not in GRAPHICS_CHOICES:
        raise ValueError(f"--xr-graphics must be one of {', '.join(GRAPHICS_CHOICES)}, got {wanted!r}")
    need = {"egl": EGL_EXTENSION, "glx": OPENGL_EXTENSION, "headless": HEADLESS_EXTENSION}
    if wanted != "auto":
        if need[wanted] not in available:
            raise OpenXRUnavailableError(f"the OpenXR runtime lacks {need[wanted]}, which --xr-graphics {wanted} "
                                         "needs; try --xr-graphics auto")
        return wanted
    if EGL_EXTENSION in available:
        return "egl"
    if OPENGL_EXTENSION in available:
        if not os.environ.get("DISPLAY"):
            raise OpenXRUnavailableError("the OpenXR runtime offers OpenGL only through X11 (XR_KHR_opengl_enable) "
                                         "and DISPLAY is not set: run under an X server")
        return "glx"
    raise OpenXRUnavailableError("the OpenXR runtime offers no OpenGL binding (neither XR_MNDX_egl_enable nor "
                                 "XR_KHR_opengl_enable); farview submits OpenGL frames. Use --headless to "
                                 "run without a display where the runtime has XR_MND_headless")


class EglGraphics:
    """A windowless GL 3.3 core context through EGL, current on the calling thread."""

    name = "egl"
    extension = EGL_EXTENSION

    def __init__(self) -> None:
        from OpenGL import EGL

        self._egl = EGL
        self.display = self._open_display()
        attribs = [EGL.EGL_SURFACE_TYPE, EGL.EGL_PBUFFER_BIT, EGL.EGL_RENDERABLE_TYPE, EGL.EGL_OPENGL_BIT,
                   EGL.EGL_RED_SIZE, 8, EGL.EGL_GREEN_SIZE, 8, EGL.EGL_BLUE_SIZE, 8, EGL.EGL_ALPHA_SIZE, 8,
                   EGL.EGL_NONE]
        configs = (EGL.EGLConfig * 1)()
        n = EGL.EGLint()
        if not EGL.eglChooseConfig(self.display, (EGL.EGLint * len(attribs))(*attribs), configs, 1, n) or n.value < 1:
            raise OpenXRUnavailableError("EGL found no OpenGL pbuffer configuration for the OpenXR binding; "
                                         "try --xr-graphics glx")
        self.config = configs[0]
        EGL.eglBindAPI(EGL.EGL_OPENGL_API)
        ctx = [EGL.EGL_CONTEXT_MAJOR_VERSION, 3, EGL.EGL_CONTEXT_MINOR_VERSION, 3,
               EGL.EGL_CONTEXT_OPENGL_PROFILE_MASK, EGL.EGL_CONTEXT_OPENGL_CORE_PROFILE_BIT, EGL.EGL_NONE]
        self.context = EGL.eglCreateContext(self.display, self.config, EGL.EGL_NO_CONTEXT,
                                            (EGL.EGLint * len(ctx))(*ctx))
        if not self.context:
            raise OpenXRUnavailableError(f"EGL could not create a GL 3.3 context (0x{EGL.eglGetError():04X})")
        pb = [EGL.EGL_WIDTH, 16, EGL.EGL_HEIGHT, 16, EGL.EGL_NONE]
        self.surface = EGL.eglCreatePbufferSurface(self.display, self.config, (EGL.EGLint * len(pb))(*pb))
        if not EGL.eglMakeCurrent(self.display, self.surface, self.surface, self.context):
            raise OpenXRUnavailableError(f"eglMakeCurrent failed (0x{EGL.eglGetError():04X})")

    def _open_display(self) -> Any:
        EGL = self._egl
        display = EGL.EGL_NO_DISPLAY
        client_ext = (EGL.eglQueryString(EGL.EGL_NO_DISPLAY, EGL.EGL_EXTENSIONS) or b"").decode()
        if not os.environ.get("DISPLAY") and "EGL_MESA_platform_surfaceless" in client_ext:
            get = EGL.eglGetProcAddress(b"eglGetPlatformDisplayEXT")
            fn = ctypes.CFUNCTYPE(EGL.EGLDisplay, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p)(get)
            display = fn(EGL_PLATFORM_SURFACELESS_MESA, None, None)
        if not display:
            display = EGL.eglGetDisplay(EGL.EGL_DEFAULT_DISPLAY)
        major, minor = EGL.EGLint(), EGL.EGLint()
        if not display or not EGL.eglInitialize(display, major, minor):
            raise OpenXRUnavailableError("no EGL display for the OpenXR binding; try --xr-graphics glx")
        return display

    def binding(self, runtime: XrRuntime) -> Any:
        return runtime.egl_binding(self.display, self.config, self.context)

    def close(self) -> None:
        EGL = self._egl
        if self.display:
            EGL.eglMakeCurrent(self.display, EGL.EGL_NO_SURFACE, EGL.EGL_NO_SURFACE, EGL.EGL_NO_CONTEXT)
            if self.context:
                EGL.eglDestroyContext(self.display, self.context)
            if self.surface:
                EGL.eglDestroySurface(self.display, self.surface)
            self.display = None


class GlxGraphics:
    """A hidden GLFW window's GLX context (X11), current on the calling thread."""

    name = "glx"
    extension = OPENGL_EXTENSION

    def __init__(self) -> None:
        import glfw

        self._glfw = glfw
        if not glfw.init():
            raise OpenXRUnavailableError("GLFW could not start (is DISPLAY an X server?); try --xr-graphics egl")
        glfw.window_hint(glfw.VISIBLE, glfw.FALSE)
        glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 3)
        glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 3)
        glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
        glfw.window_hint(glfw.CONTEXT_CREATION_API, glfw.NATIVE_CONTEXT_API)
        self.window: Any = glfw.create_window(64, 64, "farview OpenXR", None, None)
        if not self.window:
            glfw.terminate()
            raise OpenXRUnavailableError("GLFW could not create a GLX context; try --xr-graphics egl")
        glfw.make_context_current(self.window)

    def binding(self, runtime: XrRuntime) -> Any:
        from OpenGL import GLX

        glfw = self._glfw
        x_display = glfw.get_x11_display()
        context = glfw.get_glx_context(self.window)
        drawable = glfw.get_glx_window(self.window)
        dpy = ctypes.cast(x_display, ctypes.POINTER(GLX.Display))
        # the context's FBConfig: its id, then the config with that id
        fb_id, screen = ctypes.c_int(), ctypes.c_int()
        glx_context = ctypes.cast(context, GLX.GLXContext)
        GLX.glXQueryContext(dpy, glx_context, GLX.GLX_FBCONFIG_ID, ctypes.byref(fb_id))
        GLX.glXQueryContext(dpy, glx_context, GLX.GLX_SCREEN, ctypes.byref(screen))
        attribs = (ctypes.c_int * 3)(GLX.GLX_FBCONFIG_ID, fb_id.value, 0)
        count = ctypes.c_int()
        configs = GLX.glXChooseFBConfig(dpy, screen.value, attribs, ctypes.byref(count))
        if not configs or count.value < 1:
            raise OpenXRUnavailableError("the GLX context's FBConfig was not found; try --xr-graphics egl")
        visual = GLX.glXGetVisualFromFBConfig(dpy, configs[0])
        visualid = int(visual.contents.visualid) if visual else 0
        def address(p: Any) -> int:
            return ctypes.cast(p, ctypes.c_void_p).value or 0

        return runtime.glx_binding(address(x_display), visualid, address(configs[0]), int(drawable),
                                   address(context))

    def close(self) -> None:
        if self.window is not None:
            self._glfw.destroy_window(self.window)
            self.window = None
            self._glfw.terminate()


def open_graphics(name: str) -> XrGraphics:
    return EglGraphics() if name == "egl" else GlxGraphics()


def pick_format(formats: list[int]) -> int:
    """The swapchain format to draw into: sRGB8 (the video is sRGB-encoded), else RGBA8."""
    for fmt in (GL_SRGB8_ALPHA8, GL_RGBA8):
        if fmt in formats:
            return fmt
    raise OpenXRUnavailableError(f"the OpenXR runtime offers no 8-bit RGBA swapchain format "
                                 f"(it offers {', '.join(hex(f) for f in formats) or 'none'})")


class SwapchainPainter:
    """Draws decoded I420 frames into swapchain images (GL textures) through one FBO."""

    def __init__(self) -> None:
        from OpenGL import GL

        from farview.client.viewer.yuv_renderer import YuvRenderer

        self._gl = GL
        self.renderer = YuvRenderer()
        self.fbo = GL.glGenFramebuffers(1)
        self._uploaded: object = None

    def paint(self, texture: int, size: tuple[int, int], frame: Any) -> None:
        """Draw ``frame`` (a :class:`~farview.streaming.frame.Frame`) over the whole image."""
        GL = self._gl
        if frame is not self._uploaded:
            self.renderer.upload(frame.y, frame.u, frame.v)
            self._uploaded = frame
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self.fbo)
        GL.glFramebufferTexture2D(GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_TEXTURE_2D, texture, 0)
        status = GL.glCheckFramebufferStatus(GL.GL_FRAMEBUFFER)
        if status != GL.GL_FRAMEBUFFER_COMPLETE:
            raise OpenXRUnavailableError(f"the swapchain image cannot be drawn into (framebuffer status 0x{status:X})")
        GL.glDisable(GL.GL_FRAMEBUFFER_SRGB)  # the video is sRGB already: store it as is
        GL.glViewport(0, 0, size[0], size[1])
        GL.glClearColor(0.0, 0.0, 0.0, 1.0)
        GL.glClear(GL.GL_COLOR_BUFFER_BIT)
        self.renderer.draw(size)
        GL.glFramebufferTexture2D(GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_TEXTURE_2D, 0, 0)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, 0)
        GL.glFlush()

    def close(self) -> None:
        GL = self._gl
        self.renderer.close()
        GL.glDeleteFramebuffers(1, [self.fbo])
