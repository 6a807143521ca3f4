"""Shared fixtures. ``xvfb_display``: one Xvfb server for the whole session (viewer e2e tests).

Xvfb is a hard requirement of the e2e tier: when it is missing the tests fail with a message
saying what to install, rather than skipping and hiding that the window was never tested.
"""

from __future__ import annotations

import os

# One pytest process runs both the render host's EGL code and GLFW windows. PyOpenGL picks its
# platform at first import; EGL serves both (GLVND dispatches GL calls to whichever context is
# current), while GLX would make every later EGL display fail.
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

XVFB_START_TIMEOUT_S = 10.0
ALONE_ENV = "FARVIEW_TESTS_ALONE"
"""``skip``: leave out the tests marked ``alone``; ``only``: run only them (``scripts/test``
runs the others in two workers, then these in one process, with nothing beside them)."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    part = os.environ.get(ALONE_ENV, "")
    if part not in ("skip", "only"):
        return
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        (keep if (item.get_closest_marker("alone") is not None) == (part == "only") else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def _free_display_number() -> int:
    for number in range(90, 200):
        socket, lock = Path(f"/tmp/.X11-unix/X{number}"), Path(f"/tmp/.X{number}-lock")
        if not socket.exists() and not lock.exists():
            return number
    raise RuntimeError("no free X display number in :90..:199")


@pytest.fixture(scope="session")
def xvfb_display() -> Iterator[str]:
    """Start ``Xvfb :N -screen 0 1280x1024x24``, set DISPLAY to it, stop it at the end."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.fail("Xvfb is not installed; the viewer e2e tests need it (apt-get install xvfb)")
    previous = os.environ.get("DISPLAY")
    # stderr to a file, not a pipe: a chatty Xvfb would block once a pipe's buffer filled.
    log_file = tempfile.TemporaryFile()  # noqa: SIM115 (closed in the finally below)
    for _attempt in range(3):  # another process may take the number between check and start
        number = _free_display_number()
        proc = subprocess.Popen(
            [xvfb, f":{number}", "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL, stderr=log_file,
        )
        socket = Path(f"/tmp/.X11-unix/X{number}")
        deadline = time.monotonic() + XVFB_START_TIMEOUT_S
        while time.monotonic() < deadline and proc.poll() is None and not socket.exists():
            time.sleep(0.02)
        if proc.poll() is None and socket.exists():
            break
        proc.kill()
        proc.wait()
    else:
        log_file.seek(0)
        err = log_file.read().decode(errors="replace")
        log_file.close()
        pytest.fail(f"Xvfb did not start: {err[-500:]}")
    display = f":{number}"
    os.environ["DISPLAY"] = display
    try:
        yield display
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log_file.close()
        if previous is None:
            os.environ.pop("DISPLAY", None)
        else:
            os.environ["DISPLAY"] = previous
