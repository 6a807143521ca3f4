"""``benchmarks/bench_scale.py`` generates its models and reports every column for each (no
speed assertions: the numbers are the benchmark's business)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(180)
def test_bench_scale_reports_each_model() -> None:
    out = subprocess.run([sys.executable, "benchmarks/bench_scale.py", "--triangles", "0.01",
                          "--parts", "256", "--frames", "2"],
                         cwd=REPO, capture_output=True, text=True, timeout=170)
    assert out.returncode == 0, out.stderr
    rows = re.findall(r"^\s+([\d,]+)\s+([\d,]+)\s+([\d.]+)(\s+-?[\d.]+){15}\s*$", out.stdout, re.M)
    assert [(int(t.replace(",", "")) > 0, p) for t, p, *_ in rows] == [(True, "64"), (True, "256")], \
        out.stdout
