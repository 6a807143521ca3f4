"""``benchmarks/bench_textures.py`` generates its textured model, converts it and reports each
file (no speed assertions: the numbers are the benchmark's business)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(180)
def test_bench_textures_reports_the_input_and_the_converted_file() -> None:
    out = subprocess.run([sys.executable, "benchmarks/bench_textures.py", "--textures", "1",
                          "--size", "512", "--frames", "2"],
                         cwd=REPO, capture_output=True, text=True, timeout=170)
    assert out.returncode == 0, out.stderr
    rows = re.findall(r"^(input|converted)\s+([\d.]+)(\s+[\d.]+){4}\s+(S3TC in GL|no S3TC)",
                      out.stdout, re.M)
    assert [r[0] for r in rows] == ["input", "converted"], out.stdout
    # the converted file carries the blocks beside the JPEG: bigger
    assert float(rows[1][1]) > float(rows[0][1]), out.stdout
    assert re.search(r"^conversion: [\d.]+ s$", out.stdout, re.M), out.stdout
