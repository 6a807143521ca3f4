"""``farview demo`` as a user runs it, under Xvfb: the window shows the model (pixels grabbed
from the X server, outside the process), a real mouse drag changes the view, and quitting ends
every process the demo started."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from tests.e2e.xgrab import grab_window
from tests.hosting import REPO, model_mask

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def _find_window(display: str, name: str, timeout: float) -> str | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", name], capture_output=True, text=True,
                             env={**os.environ, "DISPLAY": display})
        if out.stdout.split():
            return out.stdout.split()[0]
        time.sleep(0.2)
    return None


def _farview_processes(data_dir: Path) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if str(data_dir) in cmd or ("farview.host" in cmd and p.ppid() == 1):
            out.append(p)
    return out


def _model_visible(rgb: np.ndarray) -> bool:
    return float(model_mask(rgb[40:-40, 40:-40]).mean()) > 0.02


def test_demo_shows_the_model_follows_a_drag_and_cleans_up(xvfb_display: str, tmp_path: Path) -> None:
    if shutil.which("xwd") is None or shutil.which("xdotool") is None:
        pytest.fail("xwd and xdotool are needed (apt-get install x11-apps xdotool)")
    data_dir = tmp_path / "data"
    env = {**os.environ, "DISPLAY": xvfb_display, "FARVIEW_DATA_DIR": str(data_dir),
           "PYTHONUNBUFFERED": "1"}
    for key in ("FARVIEW_URL", "FARVIEW_ACCOUNT_ID", "FARVIEW_ACCOUNT_KEY"):
        env.pop(key, None)
    log_path = tmp_path / "demo.log"
    with log_path.open("wb") as log:
        demo = subprocess.Popen([sys.executable, "-m", "farview", "demo", "--size", "640x360",
                                 "--duration", "120"], cwd=REPO, env=env, stdout=log, stderr=log)
    try:
        wid = _find_window(xvfb_display, "farview demo", 90)
        assert wid is not None, f"no demo window appeared:\n{log_path.read_text()}"
        deadline = time.monotonic() + 60
        before = grab_window(wid, xvfb_display)
        while not _model_visible(before) and time.monotonic() < deadline:
            time.sleep(0.3)
            before = grab_window(wid, xvfb_display)
        assert _model_visible(before), f"the model never appeared:\n{log_path.read_text()}"
        x11 = {**os.environ, "DISPLAY": xvfb_display}
        subprocess.run(["xdotool", "mousemove", "--window", wid, "200", "180", "sleep", "0.1",
                        "mousedown", "1", "sleep", "0.1",
                        "mousemove", "--window", wid, "300", "180", "sleep", "0.1",
                        "mousemove", "--window", wid, "420", "180", "sleep", "0.1", "mouseup", "1"],
                       check=True, timeout=20, env=x11)
        changed = False
        deadline = time.monotonic() + 30
        while not changed and time.monotonic() < deadline:
            time.sleep(0.3)
            after = grab_window(wid, xvfb_display)
            # compare the model regions: a drag of 220 px turns the view well over 30°
            diff = np.abs(after.astype(int) - before.astype(int)).max(axis=-1)
            changed = float((diff > 40).mean()) > 0.01
        assert changed, "dragging the mouse did not change the rendered view"
        subprocess.run(["xdotool", "key", "--window", wid, "Escape"], check=True, timeout=10, env=x11)
        demo.wait(60)
        output = log_path.read_text()
        assert demo.returncode == 0, output
        assert "stopping the session service" in output
        assert "pose → present p50" in output
    finally:
        if demo.poll() is None:
            demo.send_signal(signal.SIGINT)
            try:
                demo.wait(30)
            except subprocess.TimeoutExpired:
                demo.kill()
    time.sleep(0.5)
    left = [p for p in _farview_processes(data_dir) if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not left, f"processes left behind: {[p.cmdline() for p in left]}"
