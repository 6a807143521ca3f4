"""The one client frame loop and its pacers (pure timing code; generous bounds, no speed asserts)."""

from __future__ import annotations

import threading
import time

import pytest

from farview.client.frame_loop import every, fixed_ticks, run_frame_loop, unpaced, wake_on_frame
from farview.streaming.mailbox import LatestMailbox


def test_the_loop_ends_on_step_false_on_stop_and_after_its_duration() -> None:
    steps: list[int] = []
    assert run_frame_loop(lambda: len(steps) < 3 and not steps.append(1), unpaced) == 3
    assert run_frame_loop(lambda: True, unpaced, stop=lambda: True) == 0
    started = time.perf_counter()
    n = run_frame_loop(lambda: True, every(0.01), duration=0.1)
    assert 0.1 <= time.perf_counter() - started < 2.0 and 1 <= n <= 11


def test_interrupts_are_quiet_only_when_asked() -> None:
    def interrupted() -> bool:
        raise KeyboardInterrupt

    assert run_frame_loop(interrupted, unpaced) == 0
    with pytest.raises(KeyboardInterrupt):
        run_frame_loop(interrupted, unpaced, quiet_interrupt=False)


def test_fixed_ticks_do_not_burst_after_a_stall() -> None:
    pace = fixed_ticks(0.01)
    start = time.perf_counter()
    pace(start)
    time.sleep(0.1)  # a stall of ten ticks
    after_stall = time.perf_counter()
    pace(after_stall)  # late: returns at once and restarts the schedule from now
    t = time.perf_counter()
    pace(t)
    assert time.perf_counter() - t >= 0.005  # the next tick waits again, no catch-up burst


def test_wake_on_frame_returns_when_a_frame_arrives() -> None:
    box: LatestMailbox[int] = LatestMailbox()
    pace = wake_on_frame(box, lambda start: start + 30.0)
    threading.Timer(0.05, box.put, args=(1,)).start()
    started = time.perf_counter()
    pace(started)
    assert time.perf_counter() - started < 20.0 and box.take() == 1
