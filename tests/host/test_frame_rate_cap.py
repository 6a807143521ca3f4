"""FrameRateCap (pure scheduling code): no added wait for a pose stream at the cap's rate, even
after a stall; a faster stream is held to the cap on average."""

from __future__ import annotations

import itertools

import pytest

from farview.host.render_loop import FrameRateCap


def simulate(cap: FrameRateCap, arrivals: list[float], render_s: float) -> list[float]:
    """The render thread's schedule: each pose starts when it has arrived, the previous frame
    is done, and the cap allows; returns each rendered pose's wait (latest-only is not needed
    here: every pose arrives after the previous frame is done)."""
    waits, free_at = [], 0.0
    for a in arrivals:
        now = max(a, free_at)
        now += cap.delay(now)
        cap.started(now)
        waits.append(now - a)
        free_at = now + render_s
    return waits


def test_a_stream_at_the_cap_rate_never_waits() -> None:
    cap = FrameRateCap(60)
    arrivals = [0.003 + i / 60 for i in range(600)]
    assert max(simulate(cap, arrivals, render_s=0.011)) == 0.0


def test_jitter_and_a_stall_do_not_lock_in_a_wait() -> None:
    cap = FrameRateCap(60)
    # one long frame (a stall) and then ±2 ms of arrival jitter around 60 Hz
    arrivals = [i / 60 + (0.002 if i % 2 else -0.002) for i in range(1, 600)]
    waits = []
    free_at = 0.0
    for i, a in enumerate(arrivals):
        now = max(a, free_at)
        now += cap.delay(now)
        cap.started(now)
        waits.append(now - a)
        free_at = now + (0.040 if i == 100 else 0.011)
    assert max(waits[110:]) == 0.0  # once the stall is over, poses start on arrival again
    # a fixed 1/60 s interval since the last start would hold every later pose: check that
    assert sum(waits[110:]) == 0.0


def test_a_faster_stream_is_held_to_the_cap_on_average() -> None:
    cap = FrameRateCap(60)
    starts = []
    now = 0.0
    for _ in range(1200):  # a pose every 5 ms (200 Hz), each rendered in 1 ms
        now += 0.005
        t = now + cap.delay(now)
        cap.started(t)
        starts.append(t)
        now = t + 0.001
    span = starts[-1] - starts[0]
    assert (len(starts) - 1) / span == pytest.approx(60, rel=0.02)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.5 / 60 - 1e-9  # never closer than half an interval


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        FrameRateCap(0)
    with pytest.raises(ValueError):
        FrameRateCap(60, burst=0.5)


def test_a_frame_charged_for_its_time_on_the_link_holds_the_next_ones_back() -> None:
    """A keyframe four frames' budget big at 15 fps (given room at a low bit rate) takes four
    frames' time on the link: the next frame starts four frame times after it, whatever burst
    the cap had saved, and the stream goes on at its rate from there."""
    cap = FrameRateCap(15)
    arrivals = [i / 15 for i in range(1, 40)]
    starts, free_at = [], 0.0
    for i, a in enumerate(arrivals):
        now = max(a, free_at)
        now += cap.delay(now)
        cap.started(now)
        starts.append(now)
        if i == 10:
            cap.charge(3.0, now)  # four frames' time in all
        free_at = now + 0.01
    assert [round((b - a) * 15, 3) for a, b in itertools.pairwise(starts[:11])] == [1.0] * 10
    assert starts[11] - starts[10] == pytest.approx(4 / 15)
    assert starts[-1] - starts[11] == pytest.approx((len(starts) - 12) / 15, abs=0.01)
