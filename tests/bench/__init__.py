"""Tests of the benchmarks' scripts (they run and report; no speed is asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_bench(script: str, *args: str, timeout: float = 170) -> str:
    """``benchmarks/<script>`` with ``args`` from the repository's root: its stdout (it must
    exit 0)."""
    out = subprocess.run([sys.executable, f"benchmarks/{script}", *args], cwd=REPO,
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr
    return out.stdout
