"""``benchmarks/bench_impairment.py``'s table of medians over repeated runs (pure code: the
benchmark itself needs root and network namespaces and asserts nothing)."""

from __future__ import annotations

from benchmarks.bench_impairment import Condition, medians_table


def _rows(fps: tuple[float, float], gap: tuple[float, float]) -> dict[str, dict[str, float | None]]:
    return {"farview": {"fps": fps[0], "longest_gap": gap[0], "freezes": 0, "kbps": 7000.0, "p99": None},
            "stock_aiortc": {"fps": fps[1], "longest_gap": gap[1], "freezes": 1, "kbps": 3500.0, "p99": None}}


def test_medians_and_runs_won_per_column() -> None:
    clean, lossy = Condition("clean"), Condition("5 % loss", {"loss": 0.05})
    runs = [_rows((60, 59), (30, 40)), _rows((57, 59), (111, 107)),  # run 1: clean, loss
            _rows((59, 60), (25, 31)), _rows((59, 57), (75, 94)),  # run 2
            _rows((61, 58), (26, 30)), _rows((58, 58), (60, 157))]  # run 3
    lines = medians_table([clean, lossy], runs, 3)
    table = {line[:37].rstrip(): line[37:].split() for line in lines[2:]}  # condition, mode: cells
    loss_farview = table["5 % loss               farview"]
    assert loss_farview[:4] == ["58.0", "75", "0", "—"]  # fps, longest gap, freezes, p50 (none)
    assert loss_farview[5] == "7.00"  # Mbit/s
    assert table["5 % loss               stock_aiortc"][:2] == ["58.0", "107"]
    # fps: 57 < 59, 59 > 57, 58 = 58 (a tie is not better); longest gap: 111 > 107, 75 < 94, 60 < 157
    assert table["5 % loss               farview better"][:3] == ["1-1-1", "2-0-1", "3-0-0"]
    assert table["clean                  farview better"][:2] == ["2-0-1", "3-0-0"]
    assert len(lines) == 2 + 2 * 3
