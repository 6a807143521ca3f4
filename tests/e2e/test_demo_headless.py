"""``farview demo MODEL --headless --screenshot`` as a user runs it on a server: the user's own
(textured) model streams, the view frames it whole, and the picture is written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.hosting import REPO, SHARED_MODELS, model_mask

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def test_headless_demo_frames_a_users_textured_model(tmp_path: Path) -> None:
    shot = tmp_path / "duck.png"
    env = {**os.environ, "FARVIEW_DATA_DIR": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1"}
    for key in ("FARVIEW_URL", "FARVIEW_ACCOUNT_ID", "FARVIEW_ACCOUNT_KEY", "DISPLAY"):
        env.pop(key, None)
    out = subprocess.run(
        [sys.executable, "-m", "farview", "demo", str(SHARED_MODELS / "Duck.glb"), "--headless",
         "--size", "320x240", "--duration", "4", "--screenshot", str(shot)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "frames presented; pose → present p50" in out.stdout + out.stderr
    rgb = np.asarray(Image.open(shot).convert("RGB"))
    assert rgb.shape == (240, 320, 3)
    mask = model_mask(rgb)
    ys, xs = np.nonzero(mask)
    # framed whole: the duck (1.6 units tall, nothing like the sample engine) is neither cut by
    # the picture's edges nor a speck in it
    assert 0.02 < mask.mean() < 0.6, mask.mean()
    assert ys.min() > 5 and xs.min() > 5 and ys.max() < 234 and xs.max() < 314, \
        (ys.min(), ys.max(), xs.min(), xs.max())
    # in its texture's colours (untextured it would be white)
    red, green, blue = np.median(rgb[mask].astype(int), axis=0)
    assert red > blue + 80 and green > blue + 50, (red, green, blue)
