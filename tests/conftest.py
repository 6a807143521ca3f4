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
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator

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


@pytest.fixture(scope="session")
def xvfb_display() -> Iterator[str]:
    """Start ``Xvfb -screen 0 1280x1024x24`` on a display number it picks itself
    (``-displayfd``), set DISPLAY to it, stop it at the end. (Picking a free number here raced
    with the suite's other worker: both took :90, and when one worker's session ended and
    stopped its Xvfb, the other's windows could not open the display.)"""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.fail("Xvfb is not installed; the viewer e2e tests need it (apt-get install xvfb)")
    previous = os.environ.get("DISPLAY")
    # stderr to a file, not a pipe: a chatty Xvfb would block once a pipe's buffer filled.
    log_file = tempfile.TemporaryFile()  # noqa: SIM115 (closed in the finally below)
    read_end, write_end = os.pipe()
    proc = subprocess.Popen(
        [xvfb, "-displayfd", str(write_end), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL, stderr=log_file, pass_fds=(write_end,),
    )
    os.close(write_end)
    told = b""
    deadline = time.monotonic() + XVFB_START_TIMEOUT_S
    with os.fdopen(read_end, "rb", buffering=0) as reader:
        while not told.endswith(b"\n") and time.monotonic() < deadline:
            ready, _, _ = select.select([reader], [], [], max(0.0, deadline - time.monotonic()))
            chunk = reader.read(16) if ready else b""
            if not chunk:
                break  # (Xvfb exited, or the time ran out)
            told += chunk
    if not told.strip().isdigit():
        proc.kill()
        proc.wait()
        log_file.seek(0)
        err = log_file.read().decode(errors="replace")
        log_file.close()
        pytest.fail(f"Xvfb did not start: {err[-500:]}")
    number = int(told)
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
