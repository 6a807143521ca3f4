"""Every pyopenxr call farview makes, in one module, pinned to the version it was checked with.

pyopenxr (module ``xr``) is generated from the OpenXR registry, and what its functions return
changed between releases. farview depends on these behaviours of **pyopenxr 1.1.6501**
(``PYOPENXR_VERSION``); ``tests/headset/test_pyopenxr_pins.py`` fails when one changes:

- ``xr.platform.linux.convert_timespec_time_to_time_khr`` returns a ctypes ``Time`` (a
  ``c_long``): its ``.value`` is the XrTime. ``int()`` of it parses its raw bytes and raises.
- The OpenGL requirements call is ``get_opengl_graphics_requirements_khr`` (there is no
  ``get_open_gl_…``); the spec requires it before ``xrCreateSession`` with an OpenGL binding.
- ``xr.GraphicsBindingEGLMNDX`` (``XR_MNDX_egl_enable``) takes ``eglGetProcAddress`` as a
  ``PFN_xrEglGetProcAddressMNDX``; ``xr.GraphicsBindingOpenGLXlibKHR`` needs a non-null
  ``glx_fbconfig`` (Monado dereferences it).
- ``xr.poll_event`` raises ``xr.EventUnavailable`` when the queue is empty.
- ``xr.wait_frame`` returns a ``FrameState`` whose ``predicted_display_time`` and
  ``predicted_display_period`` read as Python ints (nanoseconds); ``xr.locate_views`` returns
  ``(ViewState, views)``; ``xr.enumerate_swapchain_images(.., xr.SwapchainImageOpenGLKHR)``
  gives structs whose ``image`` is the GL texture name.
- **Importing ``xr.platform.linux`` (``import xr`` does) switches PyOpenGL to its GLX platform**,
  whatever ``PYOPENGL_PLATFORM`` says. GL calls still reach an EGL context through GLVND, so the
  client's EGL binding works, but nothing in a render host may import ``xr``.

Nothing outside this module touches ``xr``. It returns farview's own types (:class:`View`,
ints, tuples), and turns every pyopenxr exception into :class:`OpenXRCallError`, which names the
OpenXR call that failed, its result code and what to check.
"""

from __future__ import annotations

import ctypes
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from farview.client.errors import FarviewError
from farview.input.pose import Fov, Pose, View

PYOPENXR_VERSION = "1.1.6501"
EXTRA_HINT = "pip install 'farview[openxr]'"
NO_PYOPENXR_MESSAGE = (f"OpenXR support is not installed (the pyopenxr package is missing): {EXTRA_HINT}, "
                       "or use --headset sim")
NO_RUNTIME_MESSAGE = ("no OpenXR runtime is available (XR_ERROR_RUNTIME_UNAVAILABLE): install and start one "
                      "(e.g. Monado's monado-service, selected with XR_RUNTIME_JSON) or use --headset sim")
NO_HEADSET_MESSAGE = ("the OpenXR runtime has no headset connected (XR_ERROR_FORM_FACTOR_UNAVAILABLE): "
                      "connect and wake the headset, or use --headset sim")

_HINTS = {
    "XR_ERROR_RUNTIME_UNAVAILABLE": "start the runtime (monado-service) and check XR_RUNTIME_JSON",
    "XR_ERROR_RUNTIME_FAILURE": "the runtime failed: read its log",
    "XR_ERROR_INSTANCE_LOST": "the runtime went away: restart it, then farview",
    "XR_ERROR_SESSION_LOST": "the runtime dropped the session: restart farview",
    "XR_ERROR_CALL_ORDER_INVALID": "a farview bug (calls out of order): please report it with this message",
    "XR_ERROR_SESSION_NOT_RUNNING": "the session is not running (the runtime stopped it): restart farview",
    "XR_ERROR_GRAPHICS_DEVICE_INVALID": "the runtime cannot use this OpenGL context: try --xr-graphics egl or glx",
    "XR_ERROR_GRAPHICS_REQUIREMENTS_CALL_MISSING": "a farview bug: please report it",
    "XR_ERROR_EXTENSION_NOT_PRESENT": "the runtime lacks an extension farview asked for: update the runtime",
    "XR_ERROR_FORM_FACTOR_UNAVAILABLE": "connect and wake the headset",
    "XR_ERROR_SWAPCHAIN_FORMAT_UNSUPPORTED": "the runtime has no colour format farview can draw: update the runtime",
}

T = TypeVar("T")


class OpenXRUnavailableError(FarviewError):
    """No usable OpenXR headset, or the runtime failed. The message says why and what to do."""


class OpenXRCallError(OpenXRUnavailableError):
    """An OpenXR call failed: :attr:`call` (``xrEndFrame``), :attr:`result` (``XR_ERROR_…``)."""

    def __init__(self, call: str, result: str, detail: str) -> None:
        self.call, self.result = call, result
        hint = _HINTS.get(result, "check the runtime's log, or use --headset sim")
        super().__init__(f"OpenXR {call} failed: {result} ({detail}); {hint}")


def import_xr() -> Any:
    """pyopenxr's ``xr`` module, or :class:`OpenXRUnavailableError` saying how to install it."""
    try:
        import xr
    except ImportError:
        raise OpenXRUnavailableError(NO_PYOPENXR_MESSAGE) from None
    return xr


def result_name(exc: BaseException) -> str:
    """``XR_ERROR_…`` of a pyopenxr exception (from its ``get_result_enum``), else its class name."""
    get = getattr(exc, "get_result_enum", None)
    if get is not None:
        try:
            return "XR_" + str(get().name)
        except Exception:
            pass
    return type(exc).__name__


def call_error(call: str, exc: BaseException) -> OpenXRUnavailableError:
    """pyopenxr's exception from ``call`` → ours, with a message a user can act on."""
    result = result_name(exc)
    if result == "XR_ERROR_RUNTIME_UNAVAILABLE" or type(exc).__name__ == "RuntimeUnavailableError":
        return OpenXRUnavailableError(NO_RUNTIME_MESSAGE)
    if result == "XR_ERROR_FORM_FACTOR_UNAVAILABLE" or type(exc).__name__ == "FormFactorUnavailableError":
        return OpenXRUnavailableError(NO_HEADSET_MESSAGE)
    return OpenXRCallError(call, result, str(exc) or type(exc).__name__)


def _fov(f: Any) -> Fov:
    return Fov(math.tan(f.angle_left), math.tan(f.angle_right), math.tan(f.angle_up), math.tan(f.angle_down))


def _pose(p: Any) -> Pose:
    return Pose((p.position.x, p.position.y, p.position.z),
                (p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w))


def _layer_view(v: Any) -> LayerView:
    r = v.sub_image.image_rect
    return LayerView(View(_pose(v.pose), _fov(v.fov)),
                     (int(r.offset.x), int(r.offset.y), int(r.extent.width), int(r.extent.height)))


@dataclass(frozen=True)
class FrameTiming:
    """What ``xrWaitFrame`` said about the frame to prepare (nanoseconds, XrTime)."""

    display_time: int
    period_ns: int
    should_render: bool


@dataclass(frozen=True)
class ViewSize:
    """One view of the view configuration: recommended and largest image size."""

    recommended: tuple[int, int]
    maximum: tuple[int, int]


@dataclass(frozen=True)
class Swapchain:
    handle: Any
    size: tuple[int, int]
    images: tuple[int, ...]
    """The GL texture name of each swapchain image."""
    format: int


@dataclass(frozen=True)
class LayerView:
    """One eye of a projection layer: the pose and FOV it was rendered with, and its rectangle
    ``(x, y, width, height)`` in the swapchain image."""

    view: View
    rect: tuple[int, int, int, int]


SESSION_STATES = ("UNKNOWN", "IDLE", "READY", "SYNCHRONIZED", "VISIBLE", "FOCUSED", "STOPPING",
                  "LOSS_PENDING", "EXITING")


class XrRuntime:
    """One OpenXR instance and (at most) one session, through pyopenxr. Not thread-safe."""

    def __init__(self, xr: Any | None = None) -> None:
        self._xr = xr if xr is not None else import_xr()
        self.instance: Any = None
        self.system: Any = None
        self.session: Any = None
        self.space: Any = None
        self.space_name = ""
        self._use_timespec = False
        self._binding: Any = None  # kept alive while the session lives
        self._last_layer: Any = None

    def _call(self, call: str, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except OpenXRUnavailableError:
            raise
        except Exception as exc:
            raise call_error(call, exc) from None

    # -- instance and system -------------------------------------------------------------------
    def extensions(self) -> set[str]:
        props = self._call("xrEnumerateInstanceExtensionProperties",
                           self._xr.enumerate_instance_extension_properties)
        return {p.extension_name.decode() if isinstance(p.extension_name, bytes) else str(p.extension_name)
                for p in props}

    def create_instance(self, app_name: str, extensions: Sequence[str]) -> None:
        xr = self._xr
        self.instance = self._call("xrCreateInstance", xr.create_instance, xr.InstanceCreateInfo(
            application_info=xr.ApplicationInfo(application_name=app_name, engine_name="farview"),
            enabled_extension_names=list(extensions)))
        self._use_timespec = "XR_KHR_convert_timespec_time" in extensions

    def runtime_name(self) -> str:
        props = self._call("xrGetInstanceProperties", self._xr.get_instance_properties, self.instance)
        name = props.runtime_name
        name = name.decode() if isinstance(name, bytes) else str(name)
        v = int(props.runtime_version)
        return f"{name} {v >> 48}.{(v >> 32) & 0xFFFF}.{v & 0xFFFFFFFF}"

    def find_headset(self) -> list[ViewSize]:
        """The head-mounted display's stereo views (``xrGetSystem`` +
        ``xrEnumerateViewConfigurationViews``)."""
        xr = self._xr
        self.system = self._call("xrGetSystem", xr.get_system, self.instance,
                                 xr.SystemGetInfo(form_factor=xr.FormFactor.HEAD_MOUNTED_DISPLAY))
        configs = self._call("xrEnumerateViewConfigurationViews", xr.enumerate_view_configuration_views,
                             self.instance, self.system, xr.ViewConfigurationType.PRIMARY_STEREO)
        return [ViewSize((int(c.recommended_image_rect_width), int(c.recommended_image_rect_height)),
                         (int(c.max_image_rect_width), int(c.max_image_rect_height))) for c in configs]

    # -- graphics bindings ---------------------------------------------------------------------
    def egl_binding(self, display: Any, config: Any, context: Any) -> Any:
        """``XrGraphicsBindingEGLMNDX`` for an EGL context (``XR_MNDX_egl_enable``)."""
        xr = self._xr
        from OpenGL import EGL

        binding = xr.GraphicsBindingEGLMNDX()
        binding.display, binding.config, binding.context = display, config, context
        binding.get_proc_address = ctypes.cast(EGL.eglGetProcAddress.load(), xr.PFN_xrEglGetProcAddressMNDX)
        return binding

    def glx_binding(self, x_display: int, visualid: int, fbconfig: int, drawable: int, context: int) -> Any:
        """``XrGraphicsBindingOpenGLXlibKHR`` (``XR_KHR_opengl_enable`` on X11), from the
        addresses of the X display, FBConfig and GLX context, and the drawable's XID."""
        from OpenGL import GLX
        from xr.platform.linux import GraphicsBindingOpenGLXlibKHR

        def ptr(address: int, kind: Any) -> Any:
            return ctypes.cast(ctypes.c_void_p(address), kind)

        return GraphicsBindingOpenGLXlibKHR(
            x_display=ptr(x_display, ctypes.POINTER(GLX.Display)), visualid=visualid,
            glx_fbconfig=ptr(fbconfig, GLX.GLXFBConfig), glx_drawable=drawable,
            glx_context=ptr(context, GLX.GLXContext))

    def create_session(self, binding: Any | None) -> None:
        """``xrCreateSession`` (after the OpenGL requirements call when ``binding`` is given) and
        a STAGE reference space (LOCAL where the runtime has no stage)."""
        xr = self._xr
        if binding is not None:
            self._call("xrGetOpenGLGraphicsRequirementsKHR", xr.get_opengl_graphics_requirements_khr,
                       self.instance, self.system)
        self._binding = binding
        info = xr.SessionCreateInfo(system_id=self.system,
                                    next=ctypes.cast(ctypes.pointer(binding), ctypes.c_void_p) if binding else None)
        self.session = self._call("xrCreateSession", xr.create_session, self.instance, info)
        for name in ("STAGE", "LOCAL"):
            try:
                self.space = xr.create_reference_space(self.session, xr.ReferenceSpaceCreateInfo(
                    reference_space_type=getattr(xr.ReferenceSpaceType, name)))
                self.space_name = name
                return
            except Exception as exc:
                last = exc
        raise call_error("xrCreateReferenceSpace", last)

    # -- session lifecycle -----------------------------------------------------------------------
    def poll_events(self) -> list[str]:
        """Drain the event queue: the session's new states (``"READY"``, ``"STOPPING"``, …), and
        ``"INSTANCE_LOSS_PENDING"`` when the runtime is going away."""
        xr = self._xr
        out: list[str] = []
        for _ in range(64):
            try:
                buf = xr.poll_event(self.instance)
            except xr.EventUnavailable:
                break
            except Exception as exc:
                raise call_error("xrPollEvent", exc) from None
            kind = xr.StructureType(buf.type)
            if kind == xr.StructureType.EVENT_DATA_INSTANCE_LOSS_PENDING:
                out.append("INSTANCE_LOSS_PENDING")
            elif kind == xr.StructureType.EVENT_DATA_SESSION_STATE_CHANGED:
                event = ctypes.cast(ctypes.byref(buf), ctypes.POINTER(xr.EventDataSessionStateChanged)).contents
                state = int(event._state)
                out.append(SESSION_STATES[state] if 0 <= state < len(SESSION_STATES) else f"STATE_{state}")
        return out

    def begin_session(self) -> None:
        xr = self._xr
        self._call("xrBeginSession", xr.begin_session, self.session, xr.SessionBeginInfo(
            primary_view_configuration_type=xr.ViewConfigurationType.PRIMARY_STEREO))

    def end_session(self) -> None:
        self._call("xrEndSession", self._xr.end_session, self.session)

    def request_exit(self) -> None:
        self._call("xrRequestExitSession", self._xr.request_exit_session, self.session)

    # -- frames ----------------------------------------------------------------------------------
    def wait_frame(self) -> FrameTiming:
        xr = self._xr
        state = self._call("xrWaitFrame", xr.wait_frame, self.session, xr.FrameWaitInfo())
        return FrameTiming(int(state.predicted_display_time), int(state.predicted_display_period),
                           bool(state.should_render))

    def begin_frame(self) -> None:
        xr = self._xr
        self._call("xrBeginFrame", xr.begin_frame, self.session, xr.FrameBeginInfo())

    def locate_views(self, display_time: int) -> tuple[View, View]:
        xr = self._xr
        _state, located = self._call("xrLocateViews", xr.locate_views, self.session, xr.ViewLocateInfo(
            view_configuration_type=xr.ViewConfigurationType.PRIMARY_STEREO, display_time=display_time,
            space=self.space))
        if len(located) < 2:
            raise OpenXRCallError("xrLocateViews", "XR_ERROR_VIEW_CONFIGURATION_TYPE_UNSUPPORTED",
                                  f"{len(located)} views located, stereo needs 2")
        return View(_pose(located[0].pose), _fov(located[0].fov)), View(_pose(located[1].pose), _fov(located[1].fov))

    def now(self) -> int:
        """The runtime's XrTime now (``XR_KHR_convert_timespec_time`` on CLOCK_MONOTONIC)."""
        if not self._use_timespec:
            raise OpenXRCallError("xrConvertTimespecTimeToTimeKHR", "XR_ERROR_EXTENSION_NOT_PRESENT",
                                  "XR_KHR_convert_timespec_time is not enabled")
        from xr.platform.linux import convert_timespec_time_to_time_khr, timespec

        ns = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        t = self._call("xrConvertTimespecTimeToTimeKHR", convert_timespec_time_to_time_khr,
                       self.instance, timespec(ns // 10**9, ns % 10**9))
        return int(t.value)

    def swapchain_formats(self) -> list[int]:
        return [int(f) for f in self._call("xrEnumerateSwapchainFormats", self._xr.enumerate_swapchain_formats,
                                           self.session)]

    def create_swapchain(self, width: int, height: int, fmt: int) -> Swapchain:
        xr = self._xr
        handle = self._call("xrCreateSwapchain", xr.create_swapchain, self.session, xr.SwapchainCreateInfo(
            usage_flags=xr.SwapchainUsageFlags.COLOR_ATTACHMENT_BIT | xr.SwapchainUsageFlags.SAMPLED_BIT,
            format=fmt, sample_count=1, width=width, height=height, face_count=1, array_size=1, mip_count=1))
        images = self._call("xrEnumerateSwapchainImages", xr.enumerate_swapchain_images, handle,
                            xr.SwapchainImageOpenGLKHR)
        return Swapchain(handle, (width, height), tuple(int(i.image) for i in images), fmt)

    def acquire_image(self, swapchain: Swapchain) -> int:
        xr = self._xr
        index = self._call("xrAcquireSwapchainImage", xr.acquire_swapchain_image, swapchain.handle,
                           xr.SwapchainImageAcquireInfo())
        self._call("xrWaitSwapchainImage", xr.wait_swapchain_image, swapchain.handle,
                   xr.SwapchainImageWaitInfo(timeout=xr.INFINITE_DURATION))
        return int(index)

    def release_image(self, swapchain: Swapchain) -> None:
        xr = self._xr
        self._call("xrReleaseSwapchainImage", xr.release_swapchain_image, swapchain.handle,
                   xr.SwapchainImageReleaseInfo())

    def end_frame(self, display_time: int, swapchain: Swapchain | None, views: Sequence[LayerView]) -> None:
        """``xrEndFrame``: one projection layer whose views carry the given poses and FOVs, or
        no layer at all when ``swapchain`` is None."""
        xr = self._xr
        layers: list[Any] = []
        if swapchain is not None:
            projection_views = []
            for lv in views:
                p, f = lv.view.pose, lv.view.fov
                x, y, w, h = lv.rect
                projection_views.append(xr.CompositionLayerProjectionView(
                    pose=xr.Posef(xr.Quaternionf(*p.orientation), xr.Vector3f(*p.position)),
                    fov=xr.Fovf(math.atan(f.tan_left), math.atan(f.tan_right), math.atan(f.tan_up),
                                math.atan(f.tan_down)),
                    sub_image=xr.SwapchainSubImage(swapchain=swapchain.handle, image_rect=xr.Rect2Di(
                        offset=xr.Offset2Di(x, y), extent=xr.Extent2Di(w, h)))))
            layer = xr.CompositionLayerProjection(space=self.space, views=projection_views)
            layers.append(ctypes.byref(layer))
            self._last_layer = layer
        self._call("xrEndFrame", xr.end_frame, self.session, xr.FrameEndInfo(
            display_time=display_time, environment_blend_mode=xr.EnvironmentBlendMode.OPAQUE,
            layers=layers or None))

    def last_layer(self) -> tuple[LayerView, ...]:
        """The views of the last projection layer submitted, read back from the structure
        ``xrEndFrame`` was given (decoded only when asked: not per frame)."""
        layer = self._last_layer
        if layer is None:
            return ()
        return tuple(_layer_view(layer.views[i]) for i in range(int(layer.view_count)))

    # -- teardown --------------------------------------------------------------------------------
    def destroy_swapchain(self, swapchain: Swapchain) -> None:
        try:
            self._xr.destroy_swapchain(swapchain.handle)
        except Exception:
            pass

    def close(self) -> None:
        """Destroy the space, session and instance (idempotent; errors ignored)."""
        xr = self._xr
        for name, destroy in (("space", "destroy_space"), ("session", "destroy_session"),
                              ("instance", "destroy_instance")):
            handle = getattr(self, name)
            if handle is not None:
                try:
                    getattr(xr, destroy)(handle)
                except Exception:
                    pass
                setattr(self, name, None)
        self._binding = None
