"""``benchmarks/bench_impairment.py``'s table of medians over repeated runs (pure code: the
benchmark itself needs root and network namespaces and asserts nothing)."""

from __future__ import annotations

from benchmarks.bench_impairment import Condition, medians_table


def _rows(fps: tuple[float, float], gap: tuple[float, float], right_fps: float | None = None
          ) -> dict[str, dict[str, float | None]]:
    return {"farview": {"fps": fps[0], "longest_gap": gap[0], "freezes": 0, "kbps": 7000.0, "p99": None,
                        "correct_fps": fps[0]},
            "stock_aiortc": {"fps": fps[1], "longest_gap": gap[1], "freezes": 1, "kbps": 3500.0, "p99": None,
                             "correct_fps": fps[1] if right_fps is None else right_fps}}


def _cells(line: str) -> list[str]:
    """A table line's cells after the condition and mode (12 characters each)."""
    return [line[i:i + 12].strip() for i in range(37, len(line), 12)]


def test_medians_and_runs_won_per_column() -> None:
    clean, lossy = Condition("clean"), Condition("5 % loss", {"loss": 0.05})
    runs = [_rows((60, 59), (30, 40)), _rows((57, 59), (111, 107)),  # run 1: clean, loss
            _rows((59, 60), (25, 31)), _rows((59, 67.8), (75, 94), right_fps=52.9),  # run 2
            _rows((61, 58), (26, 30)), _rows((58, 58), (60, 157))]  # run 3
    lines = medians_table([clean, lossy], runs, 3)
    table = {line[:37].rstrip(): _cells(line) for line in lines[2:]}  # condition, mode: cells
    loss_farview = table["5 % loss               farview"]
    assert loss_farview[:4] == ["58.0", "75", "0", "—"]  # fps, longest gap, freezes, p50 (none)
    assert loss_farview[5] == "7.00"  # Mbit/s
    assert table["5 % loss               stock_aiortc"][:2] == ["59.0", "107"]
    # fps: 57 < 59, 59 < 67.8, 58 = 58; longest gap: 111 > 107, 75 < 94, 60 < 157
    assert table["5 % loss               farview better"][:3] == ["0-1-2", "2-0-1", "3-0-0"]
    # the pictures that showed their own pose: stock's 67.8 fps was 52.9 of them
    assert table["5 % loss               stock_aiortc"][10] == "58.0"
    assert table["5 % loss               farview better"][10] == "1-1-1"
    assert table["5 % loss               farview better"][5] == ""  # Mbit/s: neither better
    assert table["clean                  farview better"][:2] == ["2-0-1", "3-0-0"]
    assert len(lines) == 2 + 2 * 3
