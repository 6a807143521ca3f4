"""``benchmarks/bench_scale.py`` generates its models and reports every column for each (no
speed assertions: the numbers are the benchmark's business)."""

from __future__ import annotations

import re

import pytest

from tests.bench import run_bench


@pytest.mark.timeout(180)
def test_bench_scale_reports_each_model() -> None:
    stdout = run_bench("bench_scale.py", "--triangles", "0.01", "--parts", "256:0.3", "--clouds",
                       "0.02", "--frames", "2")
    rows = re.findall(r"^\s+([\d,]+)\s+([\d,]+)\s+([\d.]+)(\s+-?[\d.,]+){20}\s*$", stdout, re.M)
    assert [(int(t.replace(",", "")) > 0, p) for t, p, *_ in rows] == [(True, "64"), (True, "256")], \
        stdout
    # a point cloud of 141 × 141 points: every column, and the ray cast hits a point
    clouds = re.findall(r"^\s+([\d,]+)(\s+-?[\d.]+){12}\s+(point|none)\s*$", stdout, re.M)
    assert [(n, hit) for n, _, hit in clouds] == [("19,881", "point")], stdout


@pytest.mark.timeout(180)
def test_bench_first_moves_reports_both_settings() -> None:
    """``bench_first_moves.py`` on a small model: a row with stand-in levels and one without,
    every column; with them the stand-ins came (a time), without them none is shown."""
    stdout = run_bench("bench_first_moves.py", "--triangles", "0.1", "--parts", "2",
                       "--seconds", "2")
    rows = re.findall(r"^\s+([\d,]+)\s+(\d+)\s+(on|off)((?:\s+(?:-|-?[\d.]+)){11})\s*$",
                      stdout, re.M)
    assert [(p, s) for _, p, s, _ in rows] == [("2", "on"), ("2", "off")], stdout
    on, off = (cells.split() for *_, cells in rows)
    assert on[3] != "-" and off[3] == "-", stdout  # "stand-ins s"
    assert int(on[-1]) > 0 and int(off[-1]) > 0  # moving frames drawn


def test_in_budget_needs_a_streak() -> None:
    """The first of five frames in a row within budget, not the first fast frame."""
    from benchmarks.bench_first_moves import in_budget, window_medians

    frames = [(0.5, 900.0), (1.0, 40.0), (1.1, 90.0)] + [(1.2 + 0.1 * k, 30.0) for k in range(5)]
    assert in_budget(frames, 50.0) == 1.2
    assert in_budget(frames[:7], 50.0) is None
    assert window_medians(frames)[:2] == [30.0, None]
