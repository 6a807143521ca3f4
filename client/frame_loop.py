"""The one frame loop of every client front end: the viewer's window and headless runs, the
headset's window, headless and OpenXR runs, and ``farview bench``'s display.

Each iteration calls the front end's ``step`` (send the pose that is due, take the newest frame
from the stream's :class:`~farview.streaming.mailbox.LatestMailbox`, present it through its
presenter: a GLFW window, nothing when headless, or an OpenXR swapchain), then a **pacer**
decides when the next iteration starts:

- :func:`wake_on_frame`: wait on the mailbox until a frame arrives or a deadline passes (the
  viewer polls at most 240 times a second, and a frame that arrives meanwhile is shown at once);
- :func:`fixed_ticks`: an absolute schedule (a headset's refresh); after a stall it starts again
  from now rather than catching up with a burst;
- :func:`every`: one iteration per period from its start (a display refresh the bench models);
- :func:`unpaced`: the presenter itself waits (OpenXR's ``xrWaitFrame``, a window's vsync).

The loop ends when ``step`` returns False (the window closed), ``stop()`` says so (the stream
ended) or ``duration`` seconds pass. Main thread only; it holds no state of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from farview.streaming.mailbox import LatestMailbox

Pacer = Callable[[float], None]
"""Called with the iteration's start time (``time.perf_counter``); returns when the next
iteration may start."""


def wake_on_frame(mailbox: LatestMailbox[Any], until: Callable[[float], float]) -> Pacer:
    """Wait until ``until(start)`` unless a frame arrives in ``mailbox`` first."""

    def pace(start: float) -> None:
        spare = until(start) - time.perf_counter()
        if spare > 0:
            mailbox.wait(spare)

    return pace


def fixed_ticks(interval: float) -> Pacer:
    """An absolute schedule of one iteration every ``interval`` seconds."""
    next_tick: float | None = None

    def pace(start: float) -> None:
        nonlocal next_tick
        next_tick = (start if next_tick is None else next_tick) + interval
        delay = next_tick - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        else:
            next_tick = time.perf_counter()  # fell behind: no burst to catch up

    return pace


def every(period: float) -> Pacer:
    """The next iteration ``period`` seconds after this one started (or at once when late)."""

    def pace(start: float) -> None:
        delay = start + period - time.perf_counter()
        if delay > 0:
            time.sleep(delay)

    return pace


def unpaced(start: float) -> None:
    """The presenter paces the loop (it blocks in its own step)."""


def run_frame_loop(step: Callable[[], bool], pace: Pacer, *, duration: float | None = None,
                   stop: Callable[[], bool] = lambda: False, quiet_interrupt: bool = True) -> int:
    """Iterate ``step`` (see the module docstring); returns how many iterations ran. With
    ``quiet_interrupt``, ``KeyboardInterrupt`` ends the loop quietly (Ctrl+C closes a viewer);
    otherwise it propagates (a benchmark that was interrupted has no result)."""
    end = None if duration is None else time.perf_counter() + duration
    iterations = 0
    try:
        while end is None or time.perf_counter() < end:
            if stop():
                break
            started = time.perf_counter()
            if not step():
                break
            iterations += 1
            pace(started)
    except KeyboardInterrupt:
        if not quiet_interrupt:
            raise
    return iterations
