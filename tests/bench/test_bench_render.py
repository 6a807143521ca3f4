"""``benchmarks/bench_render.py`` runs and reports both chroma paths at both sizes, and the
render back to back against paced (no speed assertions: the numbers are the benchmark's
business)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(120)
def test_bench_render_reports_both_chroma_paths() -> None:
    out = subprocess.run([sys.executable, "benchmarks/bench_render.py", "--frames", "10",
                          "--warmup", "2", "--pacing-blocks", "1", "--pacing-block-s", "0.4",
                          "--feature-frames", "4"],
                         cwd=REPO, capture_output=True, text=True, timeout=110)
    assert out.returncode == 0, out.stderr
    assert "the default chroma path here: cpu" in out.stdout  # llvmpipe on this machine
    for size in ("1280x720", "1920x1080"):
        for mode in ("cpu", "gpu"):
            line = re.search(rf"^{size} chroma={mode}: render p50 +([\d.]+).*"
                             rf"convert\+readback p50 +([\d.]+)", out.stdout, re.M)
            assert line is not None, out.stdout
            assert all(float(v) > 0 for v in line.groups())
    paced = re.search(r"^1280x720 render back to back: p50 +([\d.]+).*paced at 60 fps: p50 +"
                      r"([\d.]+).*paced / back to back ([\d.]+)x", out.stdout, re.M)
    assert paced is not None, out.stdout
    assert all(float(v) > 0 for v in paced.groups())
    # the feature-cost table: every lighting configuration, each against its own base row
    rows = re.findall(r"^  (sample|truck).*?p50 +([\d.]+).*x([\d.]+) of its no-environment row$",
                      out.stdout, re.M)
    assert len(rows) == (8 if (REPO.parent / "shared" / "models" / "CesiumMilkTruck.glb").exists() else 6), out.stdout
    assert all(float(p50) > 0 and float(ratio) > 0 for _, p50, ratio in rows), rows
