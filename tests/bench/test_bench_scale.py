"""``benchmarks/bench_scale.py`` generates its models and reports every column for each (no
speed assertions: the numbers are the benchmark's business)."""

from __future__ import annotations

import re

import pytest

from tests.bench import run_bench


@pytest.mark.timeout(180)
def test_bench_scale_reports_each_model() -> None:
    stdout = run_bench("bench_scale.py", "--triangles", "0.01", "--parts", "256", "--clouds",
                       "0.02", "--frames", "2")
    rows = re.findall(r"^\s+([\d,]+)\s+([\d,]+)\s+([\d.]+)(\s+-?[\d.,]+){19}\s*$", stdout, re.M)
    assert [(int(t.replace(",", "")) > 0, p) for t, p, *_ in rows] == [(True, "64"), (True, "256")], \
        stdout
    # a point cloud of 141 × 141 points: every column, and the ray cast hits a point
    clouds = re.findall(r"^\s+([\d,]+)(\s+-?[\d.]+){12}\s+(point|none)\s*$", stdout, re.M)
    assert [(n, hit) for n, _, hit in clouds] == [("19,881", "point")], stdout
