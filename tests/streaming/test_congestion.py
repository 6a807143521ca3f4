"""CongestionController and frame_rate_for: the rule, on synthetic feedback (no network)."""

from __future__ import annotations

import itertools

import pytest

from farview.streaming.congestion import (
    ACCELERATE_AFTER,
    ACCELERATED_INCREASE_FACTOR,
    APP_LIMIT,
    DECREASE_INTERVAL_S,
    DRAIN_S,
    FAST_INCREASE_FACTOR,
    INCREASE_FACTOR,
    INCREASE_INTERVAL_S,
    MAX_CUT,
    MIN_FPS,
    PROBE_MARGIN,
    REMB_AFTER_RESTORE_S,
    BitrateLimits,
    CongestionController,
    NetworkFeedback,
    QueueDelayMeter,
    downlink_ms,
    frame_rate_for,
)

LIMITS = BitrateLimits(min_bitrate=500_000, max_bitrate=8_000_000)


class Feed:
    """Sends at ``rate`` bit/s in 60 frames a second, 1200-byte packets, on a fake clock."""

    def __init__(self, cc: CongestionController) -> None:
        self.cc = cc
        self.now = 10.0
        self.seq = 0

    def send(self, seconds: float, rate: float, loss: float = 0.0) -> None:
        frames = int(seconds * 60)
        for _ in range(frames):
            size = int(rate / 8 / 60)
            packets = max(1, size // 1200)
            self.now += 1 / 60
            self.cc.on_sent(packets, size, self.now)
            first = self.seq
            self.seq += packets
            lost = [s for s in range(first, self.seq) if loss and (s * 7919) % 100 < loss * 100]
            if lost:
                self.cc.on_nack(lost, self.now + 0.002)
            self.cc.tick(self.now)


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="min_bitrate 9000000 is above max_bitrate"):
        BitrateLimits(min_bitrate=9_000_000, max_bitrate=8_000_000)
    with pytest.raises(ValueError, match="max_bitrate must be"):
        BitrateLimits(max_bitrate=10)


def test_a_full_queue_cuts_within_a_second_and_at_most_by_max_cut_a_step() -> None:
    cc = CongestionController(LIMITS)
    feed = Feed(cc)
    feed.send(1.0, 6e6)
    assert cc.target == 8_000_000
    before = cc.target
    feed.send(0.2, 6e6, loss=0.5)
    assert cc.decreases >= 1 and cc.reason == "loss"
    assert cc.target >= (1 - MAX_CUT) * 6e6 * 0.9  # never more than MAX_CUT in one step
    feed.send(0.8, 6e6, loss=0.5)
    assert cc.target < 3_000_000 < before
    # a link that narrowed to a third: one cut lands under it
    cc = CongestionController(LIMITS)
    feed = Feed(cc)
    feed.send(1.0, 7.5e6)
    feed.send(0.2, 7.5e6, loss=0.65)
    assert cc.decreases == 1 and cc.target < 0.35 * 7.5e6


def test_random_loss_between_the_thresholds_holds_the_rate() -> None:
    cc = CongestionController(LIMITS, start=5_000_000)
    feed = Feed(cc)
    feed.send(3.0, 5e6, loss=0.05)
    assert cc.target == 5_000_000 and cc.decreases == 0 and cc.reason == "hold"


def test_growth_is_additive_near_the_last_congestion_then_multiplicative() -> None:
    cc = CongestionController(LIMITS)
    feed = Feed(cc)
    feed.send(1.0, 6e6)
    feed.send(0.1, 6e6, loss=0.5)  # a queue overflowed: one cut, to under what got through
    assert cc.decreases == 1
    cut = cc.target
    capacity = cc.capacity
    assert capacity is not None
    feed.send(DECREASE_INTERVAL_S, cut)  # no growth while the queue drains
    assert cc.target == cut
    feed.send(DECREASE_INTERVAL_S + INCREASE_INTERVAL_S * 3, cut)
    assert cc.reason == "probe" and cut < cc.target < capacity * 1.2
    feed.send(10.0, 7e6)  # the path carries more: past the margin it grows by 8 % steps to the max
    assert cc.target == 8_000_000 and cc.reason == "max"


def test_growth_goes_on_while_the_encoder_undershoots_up_to_a_limit() -> None:
    cc = CongestionController(LIMITS, start=1_000_000)
    feed = Feed(cc)
    feed.send(5.0, 0.5e6)  # x264 makes half of a low target: after a burst it must still climb
    assert 1_000_000 < cc.target <= APP_LIMIT * 0.5e6 * 1.1  # but not far past what is used
    stalled = cc.target
    cc.tick(feed.now + 5.0)  # no frame for 5 s: no evidence, no growth
    assert cc.target == stalled


def test_remb_falling_cuts_and_an_implausible_one_is_ignored() -> None:
    cc = CongestionController(LIMITS)
    feed = Feed(cc)
    feed.send(1.0, 6e6)
    cc.on_remb(7_000_000, feed.now)
    cc.on_remb(4_000_000, feed.now + 0.01)  # falling: the receiver saw a queue build
    assert cc.target == 4_000_000 and cc.reason == "remb"
    feed.send(1.0, 4e6)
    cc.on_remb(10_000, feed.now)
    cc.on_remb(5_000, feed.now + 0.6)  # far under what arrives without loss: not believed
    assert cc.target >= 4_000_000 and cc.remb_ignored == 2


def test_a_falling_remb_does_not_cut_while_farviews_client_sees_no_queue() -> None:
    """Found by hand between two namespaces: after a loss burst or a cap, on a clean link,
    aiortc's REMB followed what arrived; each cut to it lowered what arrived and so the next
    REMB, and 8 Mbit/s slid to the 0.5 floor in 10 s and stayed there while farview's client
    measured no queue. With the client's fresh reports saying no queue, a falling REMB does not
    cut and the target climbs back; when it reports a queue, the REMB cuts as before."""
    cc = CongestionController(LIMITS, start=3_000_000)
    feed = Feed(cc)
    remb = 2_700_000.0
    for _ in range(40):  # 20 s: the estimate falls by a tenth every 0.5 s, on no queue
        cc.on_queue_delay(0.002, feed.now)
        cc.on_remb(int(remb), feed.now)
        remb = max(0.9 * remb, 0.55 * cc.sent_rate(feed.now) if cc.sent_rate(feed.now) else 0)
        feed.send(0.5, cc.target)
    assert cc.decreases == 0 and cc.target == 8_000_000, (cc.target, cc.reason)
    cc.on_queue_delay(0.02, feed.now)  # a queue: the estimate is believed again
    cc.on_remb(7_000_000, feed.now + 0.005)
    cc.on_remb(6_000_000, feed.now + 0.01)
    assert cc.decreases == 1 and cc.target == 6_000_000 and cc.reason == "remb"


def test_a_report_soon_after_a_cut_only_holds() -> None:
    cc = CongestionController(LIMITS)
    feed = Feed(cc)
    feed.send(1.0, 6e6)
    feed.send(0.5, 6e6, loss=0.5)
    cut, decreases = cc.target, cc.decreases
    cc.on_report(0.4, 0.001, feed.now + 0.6)  # covers the time before the cut
    assert (cc.target, cc.decreases, cc.reason) == (cut, decreases, "hold")
    assert cc.snapshot()["report_loss"] == 0.4


def test_the_target_stays_within_the_limits() -> None:
    cc = CongestionController(BitrateLimits(min_bitrate=1_000_000, max_bitrate=2_000_000))
    feed = Feed(cc)
    assert cc.target == 2_000_000
    for _ in range(10):
        feed.send(0.6, 2e6, loss=0.8)
    assert cc.target == 1_000_000 and cc.reason == "min"


def test_frame_rate_drops_only_below_the_bits_per_pixel_floor() -> None:
    assert frame_rate_for(8_000_000, 1280, 720, 60) == 60
    assert frame_rate_for(1_000_000, 1280, 720, 60) < 60
    assert frame_rate_for(100_000, 1280, 720, 60) == MIN_FPS
    assert frame_rate_for(100_000, 1280, 720, 10) == 10  # never above max_fps


def test_a_queue_seen_in_the_round_trip_stops_growth_and_a_long_one_cuts() -> None:
    cc = CongestionController(LIMITS, start=4_000_000)
    feed = Feed(cc)
    feed.send(1.0, 4e6)
    cc.on_report(0.0, 0.002, feed.now)  # the path's own round trip
    feed.send(1.0, 4e6)
    grown = cc.target
    assert grown > 4_000_000  # no loss, no queue: it grows
    cc.on_report(0.0, 0.025, feed.now)  # 23 ms of queue: hold
    feed.send(1.0, 4e6)
    assert cc.target == grown
    cc.on_report(0.0, 0.060, feed.now)  # 58 ms: cut under what is sent
    assert cc.reason == "delay" and cc.target <= 0.85 * 4.1e6
    assert cc.snapshot()["queue_delay_ms"] == 58.0


def test_the_client_meter_reports_the_lower_quartile_over_its_floor_ten_times_a_second() -> None:
    meter = QueueDelayMeter()
    meter.on_frame(5.0, 0.0)
    assert meter.report(0.0) == 0.0  # the first frame is its own floor
    for i, ms in enumerate((5.0, 25.0, 30.0, 35.0)):
        meter.on_frame(ms, 0.01 * (i + 1))
    assert meter.report(0.05) is None  # not due yet
    assert meter.report(0.1) == 20.0  # the lower quartile of 0, 20, 25, 30 above the 5 ms floor
    assert meter.report(0.3) is None  # nothing new
    meter.on_frame(2.0, 40.0)  # the old floor has left the window; a new, lower one
    assert meter.report(40.0) == 0.0


def test_the_meter_measures_the_downlink_alone_whatever_the_clocks_offset() -> None:
    """Frames sent every 1/60 s (pts) after 2-5 ms of encoding; the client's clock is 1,000 s
    ahead of the host's. The trip down is 20 ms, then 35 ms for the last frames (a queue of
    15 ms): the reports say 0, then 15 ms, whatever the encoding took."""
    meter = QueueDelayMeter()
    reports = []
    for i in range(24):
        pts = i * 1500  # 90 kHz, 60 frames a second
        encode_us = 2000 + (i % 4) * 1000
        sent = pts / 90000 + encode_us / 1e6  # host clock
        down = 0.020 if i < 12 else 0.035
        received_at = 1000.0 + sent + down
        meter.on_frame(downlink_ms(received_at, pts, encode_us), received_at)
        report = meter.report(received_at)
        if report is not None:
            reports.append(round(report, 6))
    assert reports[0] == 0.0 and reports[-1] == 15.0, reports


def test_the_client_reports_from_metadata_while_no_frame_arrives_whole() -> None:
    """Frames every 1/60 s; for a second (a loss burst) none arrives whole, but their metadata
    does, 20 ms later than before: the client goes on reporting, ten times a second, from the
    metadata (no receive rate: no frame says one). Once frames arrive again, they speak."""
    fb = NetworkFeedback()
    sent: list[tuple[float, dict[str, float]]] = []

    def frame(i: int, down: float, *, whole: bool) -> None:
        pts, enc = i * 1500, 3000
        at = 50.0 + pts / 90000 + enc / 1e6 + down  # the client's clock runs 50 s ahead
        for event in (fb.on_metadata(pts, enc, at - 0.002),
                      fb.on_frame(at, pts, enc, 15000, at) if whole else None):
            if event is not None:
                sent.append((at, event))

    for i in range(60):
        frame(i, 0.010, whole=True)
    settled = [e for at, e in sent if at > 50.3]  # the receive rate needs a quarter second
    assert len(settled) >= 6 and all(set(e) == {"queue_ms", "received_kbps"} for e in settled)
    assert all(e["queue_ms"] < 1 for _, e in sent)
    before = len(sent)
    for i in range(60, 120):
        frame(i, 0.030, whole=False)
    burst = sent[before:]
    assert len(burst) >= 9 and all(set(e) == {"queue_ms"} for _, e in burst)
    assert burst[-1][1]["queue_ms"] == pytest.approx(20, abs=0.5)  # the metadata's queue
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(burst)]
    assert max(gaps) < 0.13
    before = len(sent)
    for i in range(120, 150):
        frame(i, 0.010, whole=True)
    assert "received_kbps" in sent[-1][1] and all("received_kbps" in e for _, e in sent[before + 1:])


def test_frames_that_waited_for_a_resend_say_nothing_about_a_queue() -> None:
    """Under heavy random loss nearly every frame that arrives whole waited for a
    retransmission: 40 ms more on its trip, the NACK's round trip, not a queue. The client
    reports the queue from the frames that did not wait (here: none for a second, so from the
    metadata, which shows no queue), never 40 ms."""
    fb = NetworkFeedback()
    sent: list[dict[str, float]] = []

    def frame(i: int, *, waited: bool) -> None:
        pts, enc = i * 1500, 3000
        at = 50.0 + pts / 90000 + enc / 1e6 + 0.010
        meta = fb.on_metadata(pts, enc, at - 0.002)
        whole = fb.on_frame(at + (0.040 if waited else 0.0), pts, enc, 15000,
                            at + (0.040 if waited else 0.0), waited=waited)
        sent.extend(e for e in (meta, whole) if e is not None)

    for i in range(60):
        frame(i, waited=False)
    before = len(sent)
    for i in range(60, 120):
        frame(i, waited=True)
    during = sent[before:]
    assert len(during) >= 9  # the metadata's reports went on, ten times a second
    assert all(e["queue_ms"] < 1 for e in during), during


def test_a_queue_cut_goes_under_what_the_client_received() -> None:
    """GCC's rule: the delay cut takes 85 % of the receive rate when farview's client reports
    it (a narrowed link delivers only what it carries), so one cut lands under the link."""
    cc = CongestionController(LIMITS, start=6_000_000)
    feed = Feed(cc)
    feed.send(1.0, 6e6)
    cc.on_queue_delay(0.045, feed.now, received=3_000_000)  # the link now carries 3 Mbit/s
    assert cc.reason == "delay" and cc.target == int(0.85 * 3_000_000)
    assert cc.snapshot()["received_bitrate"] == 3_000_000
    # a receive rate above what is sent (bursty arrivals) does not raise the cut's base
    cc2 = CongestionController(LIMITS, start=6_000_000)
    feed2 = Feed(cc2)
    feed2.send(1.0, 4e6)
    cc2.on_queue_delay(0.045, feed2.now, received=9_000_000)
    assert cc2.target <= 0.85 * 4.1e6


def test_the_client_meter_measures_its_receive_rate() -> None:
    meter = QueueDelayMeter()
    assert meter.received_rate(0.0) is None
    for i in range(60):  # 60 frames a second of 12,500 bytes: 6 Mbit/s
        meter.on_frame(5.0, i / 60, 12_500)
    assert meter.received_rate(59 / 60) == pytest.approx(6e6, rel=0.1)
    for i in range(60, 90):  # then half the bytes
        meter.on_frame(5.0, i / 60, 6_250)
    assert meter.received_rate(89 / 60) == pytest.approx(3e6, rel=0.1)
    assert meter.received_rate(5.0) is None  # nothing lately


def test_growth_is_faster_while_the_client_sees_no_queue() -> None:
    slow, fast = CongestionController(LIMITS, start=1_000_000), CongestionController(LIMITS, start=1_000_000)
    for cc, queue in ((slow, None), (fast, 0.0)):
        feed = Feed(cc)
        for _ in range(10):
            feed.send(0.1, 1e6)
            if queue is not None:
                cc.on_queue_delay(queue, feed.now)
    assert fast.target > slow.target > 1_000_000


def test_heavy_loss_without_a_queue_shrinks_the_frames_and_restores_the_rate_after_it() -> None:
    """A radio losing half the packets while nothing queues is not congestion: no cut, but
    smaller frames while it lasts (a quarter of the rate at 50 %), with resends budgeted from
    the rate held; as soon as the NACKs stop, the rate held comes back at once (no climb)."""
    cc = CongestionController(LIMITS, start=6_000_000)
    feed = Feed(cc)
    feed.send(1.0, 6e6)
    before = cc.target
    for _ in range(10):
        cc.on_queue_delay(0.0, feed.now)
        feed.send(0.1, cc.target, loss=0.5)
    assert cc.decreases == 0 and cc.random_loss_holds > 0
    assert cc.reason == "lossy" and cc.held == before and cc.budget_bitrate == before
    assert cc.target == pytest.approx(before * 0.25, rel=0.15)
    cc.on_queue_delay(0.0, feed.now)
    feed.send(0.45, cc.target)  # the loss is over: the window empties, then stays calm 0.3 s
    assert cc.held == before
    feed.send(0.5, cc.target)
    assert cc.target == before and cc.held is None and cc.reason in ("restore", "max", "increase")
    assert cc.decreases == 0
    for _ in range(10):  # the same loss with 20 ms of queue: congestion, a cut
        cc.on_queue_delay(0.02, feed.now)
        feed.send(0.1, 6e6, loss=0.5)
    assert cc.target < before and cc.decreases > 0 and cc.held is None


def _shrunk_by_a_burst(rounds: int = 10) -> tuple[CongestionController, Feed]:
    """8 Mbit/s, then 50 % loss the client sees no queue in: shrunk for random loss."""
    cc = CongestionController(LIMITS, start=8_000_000)
    feed = Feed(cc)
    feed.send(1.0, 6e6)
    for _ in range(rounds):
        cc.on_queue_delay(0.0, feed.now)
        feed.send(0.1, cc.target, loss=0.5)
    assert cc.held == 8_000_000
    return cc, feed


def test_a_cut_while_shrunk_for_random_loss_is_not_undone() -> None:
    """Shrunk for random loss, then a queue (congestion after all): the cut stands, and the
    loss ending restores nothing."""
    cc, feed = _shrunk_by_a_burst(5)
    cc.on_queue_delay(0.05, feed.now)  # a long queue: a delay cut
    assert cc.decreases == 1 and cc.held is None and cc.reason == "delay"
    cut = cc.target
    cc.on_queue_delay(0.0, feed.now)
    feed.send(0.3, cut)
    assert cc.target <= cut * FAST_INCREASE_FACTOR and cc.held is None


def test_as_a_loss_burst_ends_its_stale_loss_does_not_cut_without_a_real_queue() -> None:
    """A burst of 50 % loss the client reports no queue through (from its frames' metadata),
    then, as it ends, the loss windows still full of it and the first frames (which waited for
    resends) reporting a few ms of queue: the rate holds. A queue over 10 ms still cuts."""
    cc = CongestionController(LIMITS, start=8_000_000)
    feed = Feed(cc)
    feed.send(1.0, 6e6)
    for _ in range(10):
        cc.on_queue_delay(0.0, feed.now)
        feed.send(0.1, 6e6, loss=0.5)
    for _ in range(3):  # the burst's tail: stale loss, and a short queue of late frames
        cc.on_queue_delay(0.007, feed.now)
        feed.send(0.1, 6e6, loss=0.5)
    assert cc.decreases == 0 and cc.held == 8_000_000  # shrunk for random loss, not cut
    feed.send(1.0, 6e6)
    assert cc.target == 8_000_000 and cc.decreases == 0
    for _ in range(10):
        cc.on_queue_delay(0.0, feed.now)
        feed.send(0.1, 6e6, loss=0.5)
    cc.on_queue_delay(0.015, feed.now)
    feed.send(0.1, 6e6, loss=0.5)
    assert cc.target < 8_000_000 and cc.decreases == 1 and cc.held is None


def test_at_a_caps_onset_an_empty_report_from_before_the_loss_does_not_hold_it_off() -> None:
    """The last report before a cap's queue overflowed said no queue: the first heavy loss is
    held, but the report after it (the queue filling, under the 10 ms the memory of random loss
    would need) no longer holds it: the target is cut within a few tenths of a second."""
    cc = CongestionController(LIMITS, start=8_000_000)
    feed = Feed(cc)
    feed.send(1.0, 6e6)
    cc.on_queue_delay(0.0, feed.now)
    feed.send(0.05, 6e6, loss=0.5)
    assert cc.target == 8_000_000 and cc.random_loss_holds > 0
    cc.on_queue_delay(0.008, feed.now + 0.1)
    feed.send(0.3, 6e6, loss=0.5)
    assert cc.target < 8_000_000 and cc.reason == "loss"


def test_random_loss_without_a_queue_does_not_hold_the_rate_at_the_floor() -> None:
    """One cut to the floor (a noisy early estimate), then steady 5 % random loss: while the
    client sees no queue the target climbs back; with a queue it holds."""
    grows, holds = CongestionController(LIMITS, start=500_000), CongestionController(LIMITS, start=500_000)
    for cc, queue in ((grows, 0.0), (holds, 0.02)):
        feed = Feed(cc)
        for _ in range(60):
            cc.on_queue_delay(queue, feed.now)
            feed.send(0.1, cc.target * 0.8, loss=0.05)
    assert holds.target == 500_000
    assert grows.target == 8_000_000 and grows.decreases == 0


def test_after_a_queue_loss_cut_growth_is_additive_up_to_what_the_client_received() -> None:
    """A link narrowed to 3 Mbit/s: the client's receive rate says where the link is, so the
    cut stops at 85 % of it (without it, the share NACKed takes the cut to ~1.5), and growth
    creeps up to it instead of multiplying into its queue."""
    informed, blind = CongestionController(LIMITS, start=7_000_000), CongestionController(LIMITS, start=7_000_000)
    for cc, received in ((informed, 3_000_000), (blind, None)):
        feed = Feed(cc)
        feed.send(1.0, 6e6)
        cc.on_queue_delay(0.008, feed.now, received=received)  # fresh: a queue, under the hold
        feed.send(0.2, 6e6, loss=0.6)
        assert cc.decreases == 1
    assert informed.target == int(0.85 * 3_000_000) and informed.capacity == 3_000_000
    assert blind.target < 2_500_000
    assert blind.capacity is not None and blind.capacity < 2_500_000


def test_the_cut_takes_the_median_of_the_clients_recent_receive_rates() -> None:
    """One 100-ms window can read a third over the link (the client counts packets as its
    loop reads them, in clumps): the cut's floor is 85 % of the median report of the last
    quarter second, not of the last one (over a 1 Mbit/s cap the floor was 1.1 Mbit/s); a
    report older than that no longer counts."""
    cc = CongestionController(LIMITS, start=7_000_000)
    feed = Feed(cc)
    feed.send(1.0, 6e6)
    cc.on_queue_delay(0.008, feed.now, received=1_000_000)  # old: forgotten by the cut
    feed.send(0.3, 6e6)
    cc.on_queue_delay(0.008, feed.now, received=3_000_000)
    feed.send(0.1, 6e6)
    cc.on_queue_delay(0.008, feed.now, received=3_900_000)  # a clump: 30 % over
    assert cc.received == 3_000_000  # (the lower of two)
    cc.on_queue_delay(0.008, feed.now, received=3_100_000)
    assert cc.received == 3_100_000  # the median of three
    feed.send(0.1, 6e6, loss=0.6)
    assert cc.decreases == 1 and cc.target == int(0.85 * 3_100_000)


def test_a_queue_growing_report_after_report_cuts_before_it_is_long() -> None:
    cc = CongestionController(LIMITS, start=3_200_000)
    feed = Feed(cc)
    feed.send(1.0, 3.2e6)
    for delay in (0.008, 0.011, 0.014):  # over the hold, growing: not yet three rises
        cc.on_queue_delay(delay, feed.now, received=3_000_000)
        feed.send(0.1, 3.2e6)
    assert cc.decreases == 0
    cc.on_queue_delay(0.017, feed.now, received=3_000_000)  # the third rise, at 17 ms
    assert cc.decreases == 1 and cc.reason == "delay" and cc.target == int(0.85 * 3_000_000)
    # a queue that jitters round a level does not cut, nor do round-trip queues (no trend)
    calm = CongestionController(LIMITS, start=3_000_000)
    feed = Feed(calm)
    feed.send(1.0, 3e6)
    for delay in (0.015, 0.018, 0.016, 0.019, 0.017, 0.020, 0.018):
        calm.on_queue_delay(delay, feed.now, received=3_000_000)
        feed.send(0.1, 3e6)
    for delay in (0.012, 0.015, 0.018, 0.021):
        calm.on_queue_delay(delay, feed.now, client=False)
        feed.send(0.1, 3e6)
    assert calm.decreases == 0


def test_after_a_deep_cut_growth_is_multiplicative_back_to_the_top() -> None:
    """A loss burst with a short queue cut the target to the floor: the client said it got
    6 Mbit/s as the burst began, then what got through (every packet counted: 0.35 Mbit/s).
    Once the loss is over and the client sees no queue, the target climbs back in steps of
    15 %, not additively near a rate that was the burst's."""
    cc = CongestionController(LIMITS, start=7_000_000)
    feed = Feed(cc)
    feed.send(1.0, 6.5e6)
    for k in range(5):
        cc.on_queue_delay(0.008, feed.now, received=6_000_000 if k == 0 else 350_000)
        feed.send(0.1, 6.5e6, loss=0.95)
    assert cc.target == LIMITS.min_bitrate and cc.decreases >= 2
    steps = []
    for _ in range(60):
        cc.on_queue_delay(0.0, feed.now)
        before = cc.target
        feed.send(0.1, cc.target * 0.8)
        if cc.target > before:
            steps.append((cc.reason, cc.target / before))
    assert cc.target == LIMITS.max_bitrate
    assert "probe" not in [r for r, _ in steps]
    ratios = [ratio for _, ratio in steps[:-1]]
    assert ratios[:ACCELERATE_AFTER] == pytest.approx([FAST_INCREASE_FACTOR] * ACCELERATE_AFTER,
                                                      rel=1e-3)
    assert ratios[ACCELERATE_AFTER:] == pytest.approx(
        [ACCELERATED_INCREASE_FACTOR] * (len(ratios) - ACCELERATE_AFTER), rel=1e-3)
    assert len(ratios) > ACCELERATE_AFTER


def test_a_queue_ends_accelerated_growth() -> None:
    """Accelerated steps follow only a run of fast ones: a queue the client reports (a hold)
    ends the run, and growth after it starts again at :data:`FAST_INCREASE_FACTOR`."""
    cc = CongestionController(LIMITS, start=600_000)
    feed = Feed(cc)

    def grow(steps: int) -> list[float]:
        ratios: list[float] = []
        while len(ratios) < steps:
            cc.on_queue_delay(0.0, feed.now)
            before = cc.target
            feed.send(0.05, cc.target * 0.9)
            if cc.target > before:
                ratios.append(cc.target / before)
        return ratios

    feed.send(0.5, 550_000)
    first = grow(ACCELERATE_AFTER + 1)
    assert first == pytest.approx([FAST_INCREASE_FACTOR] * ACCELERATE_AFTER
                                  + [ACCELERATED_INCREASE_FACTOR], rel=1e-3)
    cc.on_queue_delay(0.012, feed.now)  # over the hold: no growth for a while
    held = cc.target
    feed.send(1.0, held * 0.9)
    assert cc.target == held
    feed.now += 1.0
    after = grow(2)
    assert after == pytest.approx([FAST_INCREASE_FACTOR] * 2, rel=1e-3)


def test_the_client_counts_every_packet_for_its_receive_rate() -> None:
    """With the byte count of every packet that arrived (resends too), the receive rate is
    what the path delivered over the last tenth of a second, and it is reported from the
    metadata too, while no frame arrives whole."""
    count = [0]
    fb = NetworkFeedback(lambda: count[0])
    events = []
    t = 10.0
    for i in range(60):  # 3 Mbit/s delivered: 6,250 bytes every 1/60 s; no frame whole
        t += 1 / 60
        count[0] += 6250
        event = fb.on_metadata(i * 1500, 3000, t)
        if event is not None:
            events.append(event)
    rates = [e["received_kbps"] for e in events if "received_kbps" in e]
    assert len(rates) >= 8 and all(abs(r - 3000) < 400 for r in rates), events


def test_while_shrunk_for_random_loss_a_falling_remb_does_not_cut() -> None:
    """The receiver's REMB follows the shrunk rate and the loss: while the client sees no
    queue it does not cut (a cut would leave the stream to climb back from it after the loss);
    with a queue it does."""
    cc, feed = _shrunk_by_a_burst(10)  # long enough for the rate sent to be the shrunk one
    shrunk = cc.target
    cc.on_remb(int(shrunk * 0.9), feed.now)
    cc.on_remb(int(shrunk * 0.7), feed.now + 0.01)
    assert cc.remb == int(shrunk * 0.7) and cc.remb_ignored == 0
    assert cc.target == shrunk and cc.decreases == 0 and cc.held == 8_000_000
    cc.on_queue_delay(0.02, feed.now + 0.02)  # a queue: congestion after all
    cc.on_remb(int(shrunk * 0.6), feed.now + 0.05)
    assert cc.decreases >= 1 and cc.held is None and cc.target < shrunk


def _restored_after_a_burst() -> tuple[CongestionController, Feed]:
    """8 Mbit/s shrunk through a 50 % loss burst the client saw no queue in, then restored."""
    cc, feed = _shrunk_by_a_burst(10)
    for _ in range(8):  # the loss is over: the held rate comes back
        cc.on_queue_delay(0.0, feed.now)
        feed.send(0.1, cc.target)
    assert cc.held is None and cc.target == 8_000_000 and cc.decreases == 0
    return cc, feed


def test_just_after_the_held_rate_comes_back_a_falling_remb_does_not_cut() -> None:
    """aiortc's estimate follows the shrink and the loss, and fell again half a second after a
    burst ended: for REMB_AFTER_RESTORE_S after the restore it does not cut (unless the client
    reports a queue); after that, a falling REMB cuts as before."""
    cc, feed = _restored_after_a_burst()
    feed.send(0.3, 8e6)
    cc.on_remb(6_000_000, feed.now)
    cc.on_remb(4_500_000, feed.now + 0.01)
    assert cc.remb == 4_500_000 and cc.target == 8_000_000 and cc.decreases == 0
    cc.on_queue_delay(0.02, feed.now + 0.02)  # a queue: congestion after all
    cc.on_remb(4_400_000, feed.now + 0.03)
    assert cc.decreases == 1 and cc.target == 4_400_000

    cc, feed = _restored_after_a_burst()
    feed.send(REMB_AFTER_RESTORE_S + 0.1, 8e6)
    cc.on_remb(6_000_000, feed.now)
    cc.on_remb(4_500_000, feed.now + 0.01)
    assert cc.decreases == 1 and cc.target == 4_500_000


def _cut_at_3_mbit(start: int = 7_000_000) -> tuple[CongestionController, Feed]:
    """A link narrowed to 3 Mbit/s: a queue overflowed, the client got 3 Mbit/s; one cut."""
    cc = CongestionController(LIMITS, start=start)
    feed = Feed(cc)
    feed.send(1.0, 6e6)
    cc.on_queue_delay(0.008, feed.now, received=3_000_000)
    feed.send(0.2, 6e6, loss=0.6)
    assert cc.decreases == 1 and cc.capacity == 3_000_000
    return cc, feed


def test_probes_are_placed_by_what_is_sent_then_grow_gently_past_the_old_capacity() -> None:
    """x264 makes about 80 % of its target: a target 8 % past the link's last rate has sent
    under it. Growth stays additive until what is sent is past the margin; the multiplicative
    steps after it are 8 %, not the 15 % of an empty queue, for a while."""
    cc, feed = _cut_at_3_mbit()
    capacity = 3_000_000
    steps: list[tuple[str, float, float]] = []  # reason, ratio, the rate sent then
    for _ in range(80):
        cc.on_queue_delay(0.0, feed.now)  # the client sees no queue: empty, "fast" growth
        before = cc.target
        feed.send(0.1, 0.8 * cc.target)
        if cc.target > before:
            steps.append((cc.reason, cc.target / before, 0.8 * before))
    probes = [sent for reason, _, sent in steps if reason == "probe"]
    # (what is sent is measured over a window: it trails the rate asked for by a few %)
    assert probes and max(probes) < capacity * (1 + PROBE_MARGIN) * 1.05
    assert max(probes) / 0.8 > 1.25 * capacity  # the target itself went far past the margin
    first = next(i for i, (reason, _, sent) in enumerate(steps)
                 if reason == "increase" and sent > capacity)
    assert steps[first][2] >= capacity * (1 + PROBE_MARGIN) * 0.95  # sent, not target, decided
    gentle = [ratio for _, ratio, _ in steps[first:first + 3]]
    assert gentle == pytest.approx([INCREASE_FACTOR] * 3, rel=1e-3)
    assert any(ratio == pytest.approx(FAST_INCREASE_FACTOR, rel=1e-3) for _, ratio, _ in steps[first:])


def test_a_queue_while_probing_past_the_old_capacity_cuts_before_it_is_long() -> None:
    """Sending at or past where the link was full last time, a queue over the hold (12 ms,
    steady: no trend) is the limit found again: a cut, not 30 ms of queue first. Sending under
    it, the same queue only holds growth."""
    for sent, cuts in ((3.1e6, True), (2.7e6, False)):
        cc, feed = _cut_at_3_mbit()
        feed.send(DRAIN_S + 0.5, sent)
        before = cc.decreases
        cc.on_queue_delay(0.012, feed.now, received=3_000_000)
        assert (cc.decreases == before + 1) is cuts, (sent, cc.reason)
        if cuts:
            assert cc.reason == "delay" and cc.target <= 0.85 * 3_000_000


def test_the_queue_a_cut_found_draining_does_not_cut_again() -> None:
    """After a cut to under the link's rate, the queue that cut found takes a while to drain
    (reports say 40 ms for a few hundred ms): no second cut on it, which would take the
    capacity estimate under the link. A queue that outlasts the drain time does cut."""
    cc, feed = _cut_at_3_mbit()
    cut, capacity = cc.target, cc.capacity
    feed.send(DECREASE_INTERVAL_S + 0.05, 0.8 * cut)
    cc.on_queue_delay(0.04, feed.now, received=2_500_000)
    assert cc.decreases == 1 and cc.target == cut and cc.capacity == capacity
    feed.send(DRAIN_S, 0.8 * cut)
    cc.on_queue_delay(0.04, feed.now, received=2_000_000)
    assert cc.decreases == 2 and cc.reason == "delay"


def test_resolution_goes_down_only_where_even_the_lowest_frame_rate_starves_a_frame() -> None:
    from farview.streaming.congestion import RESOLUTION_SCALES, SCALE_UP_MARGIN, resolution_scale_for, scaled_size

    floor_720p = MIN_FPS * 1280 * 720 * 0.025  # 345,600 bit/s: 15 fps at the bits-per-pixel floor
    assert resolution_scale_for(8_000_000, 1280, 720) == 1.0
    assert resolution_scale_for(int(floor_720p), 1280, 720) == 1.0  # the frame rate drops first
    assert resolution_scale_for(int(floor_720p) - 1, 1280, 720) == 0.75
    assert resolution_scale_for(150_000, 1280, 720) == 0.5
    assert resolution_scale_for(1, 1280, 720) == RESOLUTION_SCALES[-1]  # no lower than that
    # back up only with SCALE_UP_MARGIN to spare (each change costs a keyframe)
    assert resolution_scale_for(int(floor_720p) + 1, 1280, 720, current=0.75) == 0.75
    assert resolution_scale_for(int(floor_720p * SCALE_UP_MARGIN) + 1, 1280, 720, current=0.75) == 1.0
    assert resolution_scale_for(500_000, 0, 0) == 1.0
    assert scaled_size(1280, 720, 0.75) == (960, 540)
    assert scaled_size(1280, 720, 1.0) == (1280, 720)
    assert scaled_size(1001, 99, 0.25) == (250, 64)  # even sides, at least 64
    assert scaled_size(40, 30, 0.25) == (40, 30)  # never more than the side itself
