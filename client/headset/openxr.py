"""OpenXR headset: head and eye poses from the runtime, and frames submitted back to it.

An optional extra: ``pip install 'farview[openxr]'`` installs pyopenxr (module ``xr``), which
is imported lazily, on :meth:`OpenXRPoseSource.open` only. Every failure to reach a headset
(pyopenxr missing, no runtime installed or running, no headset, no stereo view configuration)
becomes one :class:`OpenXRUnavailableError` whose message says what to do — never a traceback.

What it does, per display frame (main thread, the one that owns the GL context):

- :meth:`~OpenXRPoseSource.wait_frame`: ``xrWaitFrame`` → the predicted display time (or, with
  ``XR_MND_headless`` where frames cannot be begun, "now" from ``CLOCK_MONOTONIC``);
- :meth:`~OpenXRPoseSource.pose_at` / :meth:`~OpenXRPoseSource.views`: ``xrLocateViews`` in STAGE
  space (LOCAL where there is no stage) at that time: each eye's pose and asymmetric FOV, so the
  runtime's own prediction is used and no client-side predictor is needed;
- :meth:`~OpenXRPoseSource.submit`: copies a received side-by-side frame into one swapchain and
  ends the frame with a projection layer whose two views carry **the poses and FOVs the frame was
  rendered with** (``frame.pose``), so the runtime's compositor reprojects it to the newest head
  pose (what ALVR and CloudXR do). Needs an OpenGL context bound to the session (GLX, current).

Verified here only up to "no runtime" (see tests/headset/test_openxr_source.py): this machine kind
has no OpenXR runtime in CI. Not thread-safe.
"""

from __future__ import annotations

import ctypes
import logging
import time
from typing import Any

from farview.client.errors import FarviewError
from farview.input.headset import HeadsetDescription
from farview.input.pose import Fov, Pose, PoseMessage, View

log = logging.getLogger(__name__)

EXTRA_HINT = "pip install 'farview[openxr]'"
NO_PYOPENXR_MESSAGE = (f"OpenXR support is not installed (the pyopenxr package is missing): {EXTRA_HINT}, "
                       "or use --headset sim")
NO_RUNTIME_MESSAGE = ("no OpenXR runtime is available (XR_ERROR_RUNTIME_UNAVAILABLE): install and start one "
                      "(e.g. Monado's monado-service, selected with XR_RUNTIME_JSON) or use --headset sim")
NO_HEADSET_MESSAGE = ("the OpenXR runtime has no headset connected (XR_ERROR_FORM_FACTOR_UNAVAILABLE): "
                      "connect and wake the headset, or use --headset sim")

HEADLESS_EXTENSION = "XR_MND_headless"
TIMESPEC_EXTENSION = "XR_KHR_convert_timespec_time"
OPENGL_EXTENSION = "XR_KHR_opengl_enable"
GL_SRGB8_ALPHA8 = 0x8C43
GL_RGBA8 = 0x8058


class OpenXRUnavailableError(FarviewError):
    """No usable OpenXR headset: pyopenxr missing, no runtime, no headset. The message says why."""


def import_xr() -> Any:
    """pyopenxr's ``xr`` module, or :class:`OpenXRUnavailableError` saying how to install it."""
    try:
        import xr
    except ImportError:
        raise OpenXRUnavailableError(NO_PYOPENXR_MESSAGE) from None
    return xr


def translate_error(xr: Any, exc: BaseException, doing: str) -> OpenXRUnavailableError:
    """pyopenxr's exception → ours, with a message a user can act on."""
    exc_mod = getattr(xr, "exception", None)
    if exc_mod is not None:
        if isinstance(exc, getattr(exc_mod, "RuntimeUnavailableError", ())):
            return OpenXRUnavailableError(NO_RUNTIME_MESSAGE)
        if isinstance(exc, getattr(exc_mod, "FormFactorUnavailableError", ())):
            return OpenXRUnavailableError(NO_HEADSET_MESSAGE)
    return OpenXRUnavailableError(f"OpenXR failed while {doing}: {exc} ({type(exc).__name__}); "
                                  "check the runtime's log, or use --headset sim")


def _fov(f: Any) -> Fov:
    import math

    return Fov(math.tan(f.angle_left), math.tan(f.angle_right), math.tan(f.angle_up), math.tan(f.angle_down))


def _pose(p: Any) -> Pose:
    return Pose((p.position.x, p.position.y, p.position.z),
                (p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w))


class OpenXRPoseSource:
    """A headset through OpenXR. Make it with :meth:`open`; :meth:`close` ends the session."""

    def __init__(self, xr: Any, instance: Any, system: Any, headset: HeadsetDescription, *, headless: bool,
                 use_timespec: bool) -> None:
        self._xr = xr
        self.instance = instance
        self.system = system
        self.headset = headset
        """Eye resolution (recommended), IPD and FOVs as the runtime reports them."""
        self.headless = headless
        """``XR_MND_headless``: poses only, frames cannot be submitted."""
        self._use_timespec = use_timespec
        self.session: Any = None
        self.space: Any = None
        self._swapchain: Any = None
        self._images: list[Any] = []
        self._frame_state: Any = None
        self._began = False
        self._t0 = time.monotonic()

    # -- opening ------------------------------------------------------------------------------
    @classmethod
    def open(cls, *, app_name: str = "farview", headless: bool | None = None,
             graphics_binding: Any = None) -> OpenXRPoseSource:
        """Create the instance, find the headset, read its views, start a session.

        ``headless``: None picks ``XR_MND_headless`` when the runtime offers it and no
        ``graphics_binding`` (an ``xr.GraphicsBindingOpenGLXlibKHR`` for the current GL context)
        is given.
        """
        xr = import_xr()
        try:
            available = {e.extension_name.decode() if isinstance(e.extension_name, bytes) else e.extension_name
                         for e in xr.enumerate_instance_extension_properties()}
        except Exception as exc:
            raise translate_error(xr, exc, "asking the runtime for its extensions") from None
        if headless is None:
            headless = graphics_binding is None and HEADLESS_EXTENSION in available
        wanted = [HEADLESS_EXTENSION] if headless else [OPENGL_EXTENSION]
        missing = [e for e in wanted if e not in available]
        if missing:
            raise OpenXRUnavailableError(f"the OpenXR runtime lacks {', '.join(missing)}; farview needs it "
                                         "to " + ("run without a display" if headless else "submit OpenGL frames"))
        use_timespec = TIMESPEC_EXTENSION in available
        if use_timespec:
            wanted.append(TIMESPEC_EXTENSION)
        try:
            instance = xr.create_instance(xr.InstanceCreateInfo(
                application_info=xr.ApplicationInfo(application_name=app_name, engine_name="farview"),
                enabled_extension_names=wanted))
        except Exception as exc:
            raise translate_error(xr, exc, "creating the OpenXR instance") from None
        try:
            system = xr.get_system(instance, xr.SystemGetInfo(form_factor=xr.FormFactor.HEAD_MOUNTED_DISPLAY))
            configs = xr.enumerate_view_configuration_views(instance, system,
                                                            xr.ViewConfigurationType.PRIMARY_STEREO)
        except Exception as exc:
            xr.destroy_instance(instance)
            raise translate_error(xr, exc, "looking for a head-mounted display") from None
        if len(configs) != 2:
            xr.destroy_instance(instance)
            raise OpenXRUnavailableError(f"the headset reports {len(configs)} views; farview needs stereo (2)")
        eye = (int(configs[0].recommended_image_rect_width), int(configs[0].recommended_image_rect_height))
        source = cls(xr, instance, system, HeadsetDescription(eye, name="openxr"), headless=headless,
                     use_timespec=use_timespec)
        try:
            source._start_session(graphics_binding)
            source._read_views()
        except OpenXRUnavailableError:
            source.close()
            raise
        except Exception as exc:
            source.close()
            raise translate_error(xr, exc, "starting the OpenXR session") from None
        log.info("OpenXR headset: %dx%d per eye, IPD %.1f mm%s", eye[0], eye[1], source.headset.ipd_m * 1000,
                 " (headless)" if headless else "")
        return source

    def _start_session(self, graphics_binding: Any) -> None:
        xr = self._xr
        if not self.headless:
            if graphics_binding is None:
                raise OpenXRUnavailableError("submitting frames to OpenXR needs the window's OpenGL context; "
                                             "pass graphics_binding (or run headless)")
            # the spec requires asking for the GL requirements before creating the session
            xr.get_open_gl_graphics_requirements_khr(self.instance, self.system)
        self.session = xr.create_session(self.instance, xr.SessionCreateInfo(system_id=self.system,
                                                                             next=graphics_binding))
        for space_type in (xr.ReferenceSpaceType.STAGE, xr.ReferenceSpaceType.LOCAL):
            try:
                self.space = xr.create_reference_space(self.session, xr.ReferenceSpaceCreateInfo(
                    reference_space_type=space_type))
                break
            except Exception:
                continue
        xr.begin_session(self.session, xr.SessionBeginInfo(
            primary_view_configuration_type=xr.ViewConfigurationType.PRIMARY_STEREO))

    def _read_views(self) -> None:
        """IPD and per-eye FOVs from one ``xrLocateViews``."""
        left, right = self.views()
        ipd = sum((a - b) ** 2 for a, b in zip(left.pose.position, right.pose.position, strict=True)) ** 0.5
        h = self.headset
        self.headset = HeadsetDescription(h.eye_resolution, min(ipd, 0.2), left.fov, right.fov, h.refresh_hz, h.name)

    # -- poses --------------------------------------------------------------------------------
    def display_time(self) -> int:
        """XrTime of the frame being prepared: the runtime's prediction, or now when headless."""
        if self._frame_state is not None and self._frame_state.predicted_display_time > 0:
            return int(self._frame_state.predicted_display_time)
        if self._use_timespec:
            from xr.platform.linux import convert_timespec_time_to_time_khr, timespec

            ns = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            return int(convert_timespec_time_to_time_khr(self.instance, timespec(ns // 10**9, ns % 10**9)))
        return 1

    def wait_frame(self) -> bool:
        """``xrWaitFrame`` (+ ``xrBeginFrame`` when frames can be submitted); True if it should render."""
        xr = self._xr
        self._frame_state = xr.wait_frame(self.session, xr.FrameWaitInfo())
        if self.headless:
            return False
        xr.begin_frame(self.session, xr.FrameBeginInfo())
        self._began = True
        return bool(self._frame_state.should_render)

    def views(self) -> tuple[View, View]:
        xr = self._xr
        _state, located = xr.locate_views(self.session, xr.ViewLocateInfo(
            view_configuration_type=xr.ViewConfigurationType.PRIMARY_STEREO, display_time=self.display_time(),
            space=self.space))
        left, right = (View(_pose(v.pose), _fov(v.fov)) for v in located[:2])
        return left, right

    def pose_at(self, t: float) -> Pose:
        """The head pose for the frame being prepared (``t`` is ignored: the runtime predicts)."""
        left, right = self.views()
        mid = tuple((a + b) / 2 for a, b in zip(left.pose.position, right.pose.position, strict=True))
        return Pose((mid[0], mid[1], mid[2]), left.pose.orientation)

    # -- frames -------------------------------------------------------------------------------
    def submit(self, rgb: Any, rendered_with: PoseMessage) -> None:
        """Hand a side-by-side RGB frame (H, W, 3 uint8) to the runtime with the poses it was
        rendered with; it reprojects to the head's newest pose. Ends the frame begun by
        :meth:`wait_frame`."""
        xr = self._xr
        if self.headless or not self._began:
            return
        from OpenGL import GL

        height, width = rgb.shape[:2]
        if self._swapchain is None or self._swapchain_size != (width, height):
            self._create_swapchain(width, height)
        index = xr.acquire_swapchain_image(self._swapchain, xr.SwapchainImageAcquireInfo())
        xr.wait_swapchain_image(self._swapchain, xr.SwapchainImageWaitInfo(timeout=xr.INFINITE_DURATION))
        GL.glBindTexture(GL.GL_TEXTURE_2D, self._images[index].image)
        GL.glPixelStorei(GL.GL_UNPACK_ALIGNMENT, 1)
        # OpenXR images have row 0 at the bottom (GL convention): flip the top-first frame
        GL.glTexSubImage2D(GL.GL_TEXTURE_2D, 0, 0, 0, width, height, GL.GL_RGB, GL.GL_UNSIGNED_BYTE,
                           rgb[::-1].copy())
        xr.release_swapchain_image(self._swapchain, xr.SwapchainImageReleaseInfo())
        eye_w = width // 2
        import math

        views = []
        for i, view in enumerate(rendered_with.views[:2]):
            p, f = view.pose, view.fov
            views.append(xr.CompositionLayerProjectionView(
                pose=xr.Posef(xr.Quaternionf(*p.orientation), xr.Vector3f(*p.position)),
                fov=xr.Fovf(math.atan(f.tan_left), math.atan(f.tan_right), math.atan(f.tan_up),
                            math.atan(f.tan_down)),
                sub_image=xr.SwapchainSubImage(swapchain=self._swapchain, image_rect=xr.Rect2Di(
                    offset=xr.Offset2Di(i * eye_w, 0), extent=xr.Extent2Di(eye_w, height)))))
        layer = xr.CompositionLayerProjection(space=self.space, views=views)
        xr.end_frame(self.session, xr.FrameEndInfo(
            display_time=self._frame_state.predicted_display_time,
            environment_blend_mode=xr.EnvironmentBlendMode.OPAQUE,
            layers=[ctypes.byref(layer)]))
        self._began = False

    def skip_frame(self) -> None:
        """End a begun frame with no layers (nothing new to show)."""
        if self._began:
            xr = self._xr
            xr.end_frame(self.session, xr.FrameEndInfo(
                display_time=self._frame_state.predicted_display_time,
                environment_blend_mode=xr.EnvironmentBlendMode.OPAQUE))
            self._began = False

    def _create_swapchain(self, width: int, height: int) -> None:
        xr = self._xr
        if self._swapchain is not None:
            xr.destroy_swapchain(self._swapchain)
        self._swapchain = xr.create_swapchain(self.session, xr.SwapchainCreateInfo(
            usage_flags=xr.SwapchainUsageFlags.COLOR_ATTACHMENT_BIT | xr.SwapchainUsageFlags.SAMPLED_BIT,
            format=GL_SRGB8_ALPHA8, sample_count=1, width=width, height=height, face_count=1, array_size=1,
            mip_count=1))
        self._images = list(xr.enumerate_swapchain_images(self._swapchain, xr.SwapchainImageOpenGLKHR))
        self._swapchain_size = (width, height)

    def close(self) -> None:
        xr = self._xr
        for name, destroy in (("_swapchain", "destroy_swapchain"), ("space", "destroy_space"),
                              ("session", "destroy_session"), ("instance", "destroy_instance")):
            handle = getattr(self, name, None)
            if handle is not None:
                try:
                    getattr(xr, destroy)(handle)
                except Exception:
                    log.debug("OpenXR %s failed", destroy, exc_info=True)
                setattr(self, name, None)
