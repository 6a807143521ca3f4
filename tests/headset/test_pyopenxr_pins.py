"""The pyopenxr behaviours ``client/headset/_pyopenxr.py`` depends on (see its docstring): these
fail when a pyopenxr release changes one, before a user with a headset finds out.

They run in a child process: importing pyopenxr switches PyOpenGL to its GLX platform, which
would break the EGL render hosts other tests run in this process (that switch is pinned too)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from farview.client.headset._pyopenxr import PYOPENXR_VERSION, SESSION_STATES

PROBE = textwrap.dedent("""
    import ctypes, inspect, json, os
    os.environ["PYOPENGL_PLATFORM"] = "egl"
    import OpenGL.platform
    before = type(OpenGL.platform.PLATFORM).__name__
    from importlib.metadata import version
    import xr
    import xr.platform.linux as linux
    out = {"version": version("pyopenxr"), "platform_before": before,
           "platform_after": type(OpenGL.platform.PLATFORM).__name__}
    # the timespec conversion returns a ctypes Time: .value works, int() does not
    out["convert_returns"] = str(inspect.signature(linux.convert_timespec_time_to_time_khr).return_annotation)
    t = xr.Time(123456789)
    out["time_value"] = t.value
    try:
        int(t)
        out["int_of_time"] = "ok"
    except (TypeError, ValueError) as exc:
        out["int_of_time"] = type(exc).__name__
    out["gl_requirements"] = [n for n in ("get_opengl_graphics_requirements_khr",
                                          "get_open_gl_graphics_requirements_khr") if hasattr(xr, n)]
    out["egl_binding_fields"] = [f for f, _ in xr.GraphicsBindingEGLMNDX._fields_]
    egl_fields = dict(xr.GraphicsBindingEGLMNDX._fields_)
    out["egl_proc_type"] = egl_fields["get_proc_address"] is xr.PFN_xrEglGetProcAddressMNDX
    out["glx_binding_fields"] = [f for f, _ in linux.GraphicsBindingOpenGLXlibKHR._fields_]
    out["event_unavailable"] = issubclass(xr.EventUnavailable, Exception)
    out["frame_state"] = [(f, t.__name__) for f, t in xr.FrameState._fields_]
    fs = xr.FrameState()
    out["frame_state_reads"] = type(fs.predicted_display_time).__name__
    out["session_states"] = [s.name for s in sorted(xr.SessionState, key=int)]
    out["state_event_fields"] = [f for f, _ in xr.EventDataSessionStateChanged._fields_]
    out["swapchain_image_gl"] = [f for f, _ in xr.SwapchainImageOpenGLKHR._fields_]
    out["view_fields"] = [f for f, _ in xr.View._fields_]
    out["locate_views_returns"] = str(inspect.signature(xr.locate_views).return_annotation)
    out["view_config_fields"] = [f for f, _ in xr.ViewConfigurationView._fields_]
    out["projection_view_fields"] = [f for f, _ in xr.CompositionLayerProjectionView._fields_]
    out["result_enum"] = xr.exception.SessionLostError.get_result_enum().name
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def probe() -> dict[str, Any]:
    if importlib.util.find_spec("xr") is None:
        pytest.fail("pyopenxr is not installed: scripts/test installs it (the openxr extra)")
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_the_pinned_version_is_installed(probe: dict[str, Any]) -> None:
    assert probe["version"] == PYOPENXR_VERSION


def test_importing_pyopenxr_switches_pyopengl_to_glx(probe: dict[str, Any]) -> None:
    assert probe["platform_before"] == "EGLPlatform" and probe["platform_after"] == "GLXPlatform"


def test_time_conversion_returns_a_ctypes_time(probe: dict[str, Any]) -> None:
    assert "Time" in probe["convert_returns"] or "c_long" in probe["convert_returns"]
    assert probe["time_value"] == 123456789 and probe["int_of_time"] != "ok"


def test_binding_and_requirements_names(probe: dict[str, Any]) -> None:
    assert probe["gl_requirements"] == ["get_opengl_graphics_requirements_khr"]
    assert probe["egl_binding_fields"][-4:] == ["get_proc_address", "display", "config", "context"]
    assert probe["egl_proc_type"] is True
    assert probe["glx_binding_fields"][-5:] == ["x_display", "visualid", "glx_fbconfig", "glx_drawable",
                                                "glx_context"]


def test_frame_loop_structures(probe: dict[str, Any]) -> None:
    assert probe["event_unavailable"] is True
    assert [f for f, _ in probe["frame_state"]][-3:] == ["predicted_display_time", "predicted_display_period",
                                                         "should_render"]
    assert probe["frame_state_reads"] == "int"
    assert tuple(probe["session_states"][:9]) == SESSION_STATES
    assert "_state" in probe["state_event_fields"]
    assert probe["swapchain_image_gl"][-1] == "image"
    assert probe["view_fields"][-2:] == ["pose", "fov"]
    assert "Sequence" in probe["locate_views_returns"] and "ViewState" in probe["locate_views_returns"]
    assert {"recommended_image_rect_width", "recommended_image_rect_height"} <= set(probe["view_config_fields"])
    assert probe["projection_view_fields"][-3:] == ["pose", "fov", "sub_image"]
    assert probe["result_enum"] == "ERROR_SESSION_LOST"
