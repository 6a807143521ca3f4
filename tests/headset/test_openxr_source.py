"""The OpenXR path where there is no runtime (CI has pyopenxr but no runtime): the clear
message, not a traceback — through the API and through ``farview view --headset openxr``.

Real pyopenxr is imported only in a child process: importing it switches PyOpenGL to its GLX
platform, which would break the EGL render hosts other tests run in this process."""

from __future__ import annotations

import argparse
import sys
import types

import pytest

from farview.client.headset.openxr import (
    NO_PYOPENXR_MESSAGE,
    NO_RUNTIME_MESSAGE,
    OpenXRHeadset,
    OpenXRUnavailableError,
    call_error,
)


def test_missing_pyopenxr_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "xr", None)  # import xr → ImportError, installed or not
    with pytest.raises(OpenXRUnavailableError) as info:
        OpenXRHeadset.open()
    assert str(info.value) == NO_PYOPENXR_MESSAGE
    assert "pip install 'farview[openxr]'" in str(info.value) and "--headset sim" in str(info.value)


def _fake_xr_without_runtime() -> types.ModuleType:
    """pyopenxr's shape where the loader finds no runtime: every entry point raises
    RuntimeUnavailableError (what pyopenxr 1.1.6501 raises, checked by hand on this machine)."""

    class XrException(Exception):
        pass

    class RuntimeUnavailableError(XrException):
        pass

    def no_runtime(*_args: object, **_kw: object) -> None:
        raise RuntimeUnavailableError("The loader was unable to find or load a runtime.")

    xr = types.ModuleType("xr")
    xr.exception = types.SimpleNamespace(  # type: ignore[attr-defined]
        XrException=XrException, RuntimeUnavailableError=RuntimeUnavailableError)
    xr.enumerate_instance_extension_properties = no_runtime  # type: ignore[attr-defined]
    xr.create_instance = no_runtime  # type: ignore[attr-defined]
    return xr


def test_missing_runtime_gives_the_clear_message() -> None:
    """Real pyopenxr and its loader, pointed at a runtime file that does not exist."""
    import importlib.util
    import os
    import subprocess

    if importlib.util.find_spec("xr") is None:
        pytest.fail("pyopenxr is not installed: scripts/test installs it (FARVIEW_EXTRAS includes openxr)")
    code = ("from farview.client.headset.openxr import OpenXRHeadset, OpenXRUnavailableError\n"
            "try:\n    OpenXRHeadset.open()\nexcept OpenXRUnavailableError as e:\n    print('MESSAGE', e)\n")
    env = dict(os.environ, XR_RUNTIME_JSON="/nonexistent/openxr_runtime.json")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"MESSAGE {NO_RUNTIME_MESSAGE}" in out.stdout, out.stdout + out.stderr[-2000:]
    assert "XR_ERROR_RUNTIME_UNAVAILABLE" in NO_RUNTIME_MESSAGE and "monado-service" in NO_RUNTIME_MESSAGE


def test_missing_runtime_through_a_loader_stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "xr", _fake_xr_without_runtime())
    with pytest.raises(OpenXRUnavailableError) as info:
        OpenXRHeadset.open()
    assert str(info.value) == NO_RUNTIME_MESSAGE


def test_other_openxr_errors_are_translated_with_what_failed() -> None:
    err = call_error("xrCreateInstance", ValueError("boom"))
    assert isinstance(err, OpenXRUnavailableError)
    assert "OpenXR xrCreateInstance failed: ValueError (boom)" in str(err)


def test_view_headset_openxr_without_runtime_exits_with_the_message(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI branch: the clear message and exit code 5, no traceback (no session service needed:
    the session object is a stand-in, because OpenXR fails before any connection is made)."""
    from farview.client.cli import view as view_cli

    monkeypatch.setitem(sys.modules, "xr", None)
    p = argparse.ArgumentParser()
    p.add_argument("session_id")
    view_cli.add_viewer_options(p)
    args = p.parse_args(["s1", "--headset", "openxr", "--headless", "--no-prediction"])
    assert args.headset == "openxr" and args.prediction is False and args.reprojection is True
    with pytest.raises(OpenXRUnavailableError, match="pip install 'farview\\[openxr\\]'"):
        view_cli.run_viewer(types.SimpleNamespace(id="s1"), args, "t")
    # view_main turns every FarviewError into "farview: <message>" and exit code 5
    assert issubclass(OpenXRUnavailableError, view_cli.FarviewError)


@pytest.mark.parametrize(("argv", "message"), [
    (["--trace", "head.csv"], "--trace applies to headset mode only: add --headset sim"),
    (["--xr-graphics", "egl"], "--xr-graphics applies to headset mode only: add --headset openxr"),
    (["--no-prediction"], "--no-prediction applies to headset mode only: add --headset sim|openxr"),
    (["--headset", "openxr", "--trace", "head.csv"],
     "--trace applies to --headset sim only, not --headset openxr"),
    (["--headset", "sim", "--xr-graphics", "glx"],
     "--xr-graphics applies to --headset openxr only, not --headset sim"),
])
def test_headset_options_without_their_mode_are_refused(
        argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    """They were ignored: ``farview view S --trace my.csv`` showed the plain viewer. Refused
    before any request (exit 2), by view and demo alike."""
    from farview.client.cli import view as view_cli

    for main, args in ((view_cli.view_main, ["s1", *argv]), (view_cli.demo_main, argv)):
        with pytest.raises(SystemExit) as exit_:
            main(args)
        assert exit_.value.code == 2
        assert message in capsys.readouterr().err


def test_headset_options_with_their_mode_are_taken() -> None:
    from farview.client.cli import view as view_cli

    p = argparse.ArgumentParser()
    p.add_argument("session_id")
    view_cli.add_viewer_options(p)
    for argv in (["--headset", "sim", "--trace", "t.csv", "--no-reprojection"],
                 ["--headset", "openxr", "--xr-graphics", "egl", "--no-prediction"], []):
        view_cli.check_headset_options(p, p.parse_args(["s1", *argv]))


def test_size_sets_the_simulated_headsets_stereo_frame(capsys: pytest.CaptureFixture[str]) -> None:
    """``--headset sim --size 1280x720`` streamed 640x240 all the same (found by hand)."""
    from farview.client.cli import view as view_cli
    from farview.client.headset.app import headset_settings

    p = argparse.ArgumentParser()
    p.add_argument("session_id")
    view_cli.add_viewer_options(p)
    args = p.parse_args(["s1", "--headset", "sim", "--size", "1000x500"])
    view_cli.check_headset_options(p, args)
    assert headset_settings(args).headset.viewport == (1000, 500)
    default = p.parse_args(["s1", "--headset", "sim"])
    view_cli.check_headset_options(p, default)
    assert headset_settings(default).headset.viewport == (640, 240)
    for argv, says in ((["--headset", "sim", "--size", "999x500"], "give an even width"),
                       (["--headset", "openxr", "--size", "800x600"], "the runtime's eye size")):
        with pytest.raises(SystemExit):
            view_cli.check_headset_options(p, p.parse_args(["s1", *argv]))
        assert says in capsys.readouterr().err
