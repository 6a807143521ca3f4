"""Congestion control on the host: the encoder's target bit rate and frame rate from the
receiver's feedback. Pure code: the host's connection feeds it RTCP events on its event loop
(``streaming/_aiortc_patches.py`` patch 7) and applies :attr:`CongestionController.target`.

Three signals, as in WebRTC's Google Congestion Control (GCC):

- **REMB**, the receiver's estimate of what the path carries (aiortc's receiver computes it from
  abs-send-time delay trends; browsers send it too). A falling REMB means the receiver saw
  queues build (delay-based overuse): the target drops to it at once, unless farview's client,
  which measures the queue itself, says lately that there is none worth holding for (the
  estimate follows what arrives, so each cut lowered the next one, to the floor). A REMB is not a ceiling
  for growth, though: aiortc's estimator never reports more than 1.5 times what it received and
  then climbs additively (by its own formula about 30 kbit/s a second at 0.5 Mbit/s), so after
  a cap is lifted it would hold the stream low for a minute; after a stall it reported a few
  kbit/s for seconds while the path carried a megabit without loss (one under half the sent
  rate is ignored and counted). Growth is the loss-based rule's.
- **Loss from NACKs**: the share of the packets sent in the last :data:`LOSS_WINDOW_S` that the
  receiver reported missing (each sequence number once). This reacts within a fraction of a
  second, where RTCP receiver reports come every 0.5-1.5 s.
- **Loss from receiver reports** (``fraction lost``), the same rule on the slower signal.
- **Queueing delay**, as GCC's delay-based controller uses it: farview's client measures how
  much longer than its least its frames take from the host to it (:func:`downlink_ms`, one way:
  the pose's trip up does not count, so jitter on the uplink does not look like a filling queue;
  :class:`QueueDelayMeter`, sent ten
  times a second as the ``network_feedback`` control event), and each receiver report's round
  trip over the least of the last :data:`MIN_RTT_WINDOW_S` says the same for any client (the
  sender reports cross the same queue as the video; about once a second). Over
  :data:`QUEUE_DELAY_HOLD_S` the target stops growing for a while; over
  :data:`QUEUE_DELAY_CUT_S` it drops to 85 % of the rate sent, or, as GCC does, of the rate the
  receiver got when farview's client reports it (its frames' bytes over the last
  :data:`RECEIVE_WINDOW_S`): a link that narrowed delivers only what it now carries, so one cut
  lands under it, before its queue overflows. Loss-free probing does not fill a bottleneck's
  queue and leave it full.

The rule (GCC's loss-based controller, on the rate actually sent): loss over :data:`HIGH_LOSS`
(unless farview's client says its frames wait in no queue: loss without congestion, which
shrinks the frames while it lasts instead, :data:`LOSSY_POWER`) cuts the
target by half the loss fraction, at most once per :data:`DECREASE_INTERVAL_S`; loss over
:data:`QUEUE_LOSS` (a bottleneck's queue overflowing) sets it just under what got through, in one
step of at most :data:`MAX_CUT`, and cuts again as soon as the loss on what was sent after that cut took
hold is still that high (the cut fell short). Loss under
:data:`LOW_LOSS` raises it by :data:`INCREASE_FACTOR` every :data:`INCREASE_INTERVAL_S` (by
:data:`FAST_INCREASE_FACTOR` while farview's client sees no queue at all, and
:data:`ACCELERATED_INCREASE_FACTOR` after :data:`ACCELERATE_AFTER` of those in a row), but only
additively near the rate the path delivered when congestion last struck (:data:`PROBE_STEP` of
it a step from :data:`NEAR_CAPACITY` of it up to it, :data:`PROBE_STEP_PAST` past it), until the target has gone
:data:`PROBE_MARGIN` past it without loss (the link widened), and while it is under
:data:`APP_LIMIT` times what the encoder sends (x264 makes about half of a low target: GCC's
1.5 times left the stream at its floor after a loss burst). Loss in between holds it (random
loss that fewer bits would not cure), unless farview's client says its frames wait in no queue:
then it grows as under :data:`LOW_LOSS` (at 5 % random loss, one cut to the floor at a stream's
start, before the client's first report, held the stream there at 20 fps for the whole run;
growth into a bottleneck fills its queue, which stops it). The target stays within the
configured ``[min_bitrate, max_bitrate]``.

Below a floor of :data:`MIN_BITS_PER_PIXEL` per pixel per frame the frame rate is lowered first
(:func:`frame_rate_for`, down to :data:`MIN_FPS`), so each frame keeps enough bits to stay a
picture; where even :data:`MIN_FPS` frames a second would get too few, the resolution is
lowered too (:func:`resolution_scale_for`: the host renders and encodes a smaller picture of
the same view, which the clients scale up to their viewport).
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from farview.input.launch import DEFAULT_MAX_BITRATE, DEFAULT_MIN_BITRATE, check_bitrates

LOSS_WINDOW_S = 0.3
MIN_PACKETS_FOR_LOSS = 10
MIN_PACKETS_FOR_EPISODE = 30
"""A link that narrows overflows its queue at once, and from then on loses a steady share of
what is sent: the loss over the packets sent since the window's first NACK (a round trip and
:data:`EPISODE_LEAD_S` before it), once there are this many, says how much without the
lossless time before it diluting it. Random loss is far from :data:`QUEUE_LOSS` over so many."""
EPISODE_LEAD_S = 0.005
"""Fewer packets sent in the window than this: no loss estimate from it."""
NACK_MEMORY_S = 3.0
NACK_MEMORY = 8192
"""How long, and how many, NACKed sequence numbers are remembered so a repeat counts once."""
HIGH_LOSS = 0.10
LOW_LOSS = 0.02
QUEUE_LOSS = 0.25
"""Loss above this is a full queue at a bottleneck (random loss is rarely so high): the target
goes just under what got through, in one step."""
MAX_CUT = 0.9
"""The most one loss cut takes off the rate sent. A link that narrows from 8 to 3 Mbit/s loses
about two thirds of what is sent: halving (GCC's limit) left the target over the link, and the
next cut waited for new feedback while every frame lost packets (a second of freeze). With
three quarters, a 640×360 stream (4.4 Mbit/s) capped at 1 Mbit/s was cut to 1.1 Mbit/s, where
x264's undershoot left no loss to cut again: the target stayed over the cap."""
DECREASE_INTERVAL_S = 0.5
RECUT_AFTER_S = 0.15
SETTLE_S = 0.1
"""Feedback on packets sent within this (plus a round trip) of a cut describes the queue the cut
found, not the new rate."""
MIN_LOSS_SPAN_S = 0.1
REPORT_STALE_S = 1.5
REPORT_HOLD_S = 0.5
"""A receiver report's loss holds growth this long; then the NACK window's (fresher) counts."""
MIN_RTT_WINDOW_S = 30.0
QUEUE_DELAY_HOLD_S = 0.010
"""A receiver report whose round trip is this much over the least: no growth for
:data:`QUEUE_HOLD_S`."""
QUEUE_HOLD_S = 1.5
FEEDBACK_INTERVAL_S = 0.1
QUEUE_DELAY_CUT_S = 0.03
"""This much over the least: the target drops to 85 % of what is being sent."""
DRAIN_S = 1.5
"""For this long after a cut, a queue while less is sent than the link delivered at the cut is
the old queue draining: no cut for it."""
QUEUE_TREND_REPORTS = 3
QUEUE_TREND_STEP_S = 0.002
"""A queue over :data:`QUEUE_DELAY_HOLD_S` that grew by at least this in each of the client's
last :data:`QUEUE_TREND_REPORTS` reports (a tenth of a second apart) is a link being overfilled
now: the same cut, before the queue reaches :data:`QUEUE_DELAY_CUT_S`. A probe 5 % past a
3 Mbit/s cap fills its queue by about 4 ms a report; 40 ± 10 ms of jitter moves the client's
lower-quartile measure by less, and seldom up three times running."""
"""An RTCP receiver report this soon after a decrease may describe the time before it."""
INCREASE_INTERVAL_S = 0.2
INCREASE_FACTOR = 1.08
APP_LIMIT = 2.5
"""No growth while the target is over this many times what the encoder sends (GCC uses 1.5;
x264 makes about half of a low target, and 1.5 left the stream at its floor after a burst)."""
FAST_INCREASE_FACTOR = 1.15
"""The step instead while the client reports (within :data:`QUEUE_FRESH_S`) under
:data:`EMPTY_QUEUE_S` of queueing: far below what the path carries. The same report makes heavy
loss a hold, not a cut: packets lost while none wait in a queue are a lossy radio or a burst,
and fewer bits would not cure it (without the client's reports, as with a browser, loss cuts)."""
ACCELERATE_AFTER = 4
ACCELERATED_INCREASE_FACTOR = 1.3
"""After :data:`ACCELERATE_AFTER` :data:`FAST_INCREASE_FACTOR` steps in a row (the client saw
no queue at each, nothing held or cut growth between them, and no last capacity was near),
the steps are this: a link that came back after a deep cap (0.4 Mbit/s) took 4-5 s of 15 %
steps from 0.25 to 6 Mbit/s. A queue, a hold, a cut, a probe step or gentle growth ends the
run; near the last capacity growth is capped at :data:`NEAR_CAPACITY` of it whatever the
step."""
EMPTY_QUEUE_S = 0.005
QUEUE_FRESH_S = 0.45
"""A client report older than this says nothing about the queue now. Reports go ten a second
on an unreliable channel: under 50 % loss, a gap of 0.25 s (two lost in a row) came one time
in four and let the loss be taken for congestion; four in a row, one in sixteen."""
RANDOM_LOSS_MEMORY_S = 1.5
"""After loss held as random (no queue), heavy loss cuts within this only when the client
reports a queue over :data:`QUEUE_DELAY_HOLD_S`: as a 50 % burst ended, feedback on packets
sent during it (NACK windows, a receiver report covering the last second) arrived with the first
frames, which waited for retransmissions and looked like a short queue, and cut the target to
its floor just when the path had healed (then seconds at 20-30 fps, the frame rate a low bit
rate allows). Only a report made a feedback interval after the heavy loss began arms it: at a
cap's onset the last report was empty too, made before the queue filled."""
LOSSY_POWER = 2
"""Under heavy loss that is not congestion (the memory of random loss armed: the client saw no
queue a feedback interval into it), the target shrinks to the rate held before it times
``(1 - loss) ** LOSSY_POWER`` (a quarter at 50 % loss) and comes back to it at once when the
NACK window's loss has been under :data:`HIGH_LOSS` again for :data:`RESTORE_CALM_S`; it does
not grow meanwhile, and a falling REMB (which follows the shrink) does not cut it unless the
client reports a queue. Holding 8 Mbit/s through a 50 % burst, no frame of ~14 packets
arrived whole (its resends, limited to a quarter of the target, could not keep up), nor the
keyframes asked for then: 1.5-2 s without a picture. Smaller frames need fewer resends; a
restore, unlike a cut, needs no climb back."""
RESTORE_CALM_S = 0.3
"""The rate held comes back once the NACK window has said under :data:`HIGH_LOSS` for this
long: one calm window is not enough (while a keyframe is held back the host sends nothing, no
new gap is NACKed, and a window read 0 % in the middle of a 50 % burst: the restored 8 Mbit/s
keyframe that followed was lost)."""
REMB_AFTER_RESTORE_S = 2.0
"""For this long after the held rate comes back, a falling REMB does not cut it either unless the
client reports a queue: aiortc's estimate, which followed the shrink and the loss, fell again
half a second after a 50 % burst ended and cut the restored rate by half on a path that had
healed."""
LOSSY_MIN_STEP = 0.9
"""A shrink that takes less than this off the current target is not made (no change per NACK)."""
PROBE_STEP = 0.03
"""Additive step up to the rate the path delivered when congestion last struck, as a fraction
of that rate."""
PROBE_STEP_PAST = 0.02
"""Additive step past it (until :data:`PROBE_MARGIN` past): slow, where the queue overflowed."""
PROBE_MARGIN = 0.08
"""How far past the last capacity what is sent must go without loss before the target grows
multiplicatively again."""
GENTLE_S = 1.0
"""For this long after that (when probe steps led there), the steps are :data:`INCREASE_FACTOR`, not
:data:`FAST_INCREASE_FACTOR`: a link that was full just under there may be full just over it
(15 % steps overshot a 3 Mbit/s cap by a fifth before the queue's report came back)."""
NEAR_CAPACITY = 0.7
"""Under this share of that rate growth is multiplicative again: additive steps from a deep cut
(a loss burst takes the target to the floor, 0.5 Mbit/s, under a path that carries 7) took the
rest of the run."""
RECEIVE_WINDOW_S = 0.25
"""The client's receive rate is measured over this (a queue building delays every frame: what
arrives in it is what the path now carries)."""
RECEIVED_MEMORY_S = 0.25
"""The host takes the median of the client's receive rates reported in this long (three
reports at ten a second)."""
PACKET_RECEIVE_WINDOW_S = 0.1
"""The receive rate counted from every packet (:class:`NetworkFeedback` with a byte count)
is measured over this: at a bottleneck, packets arrive paced by it, so a short window is steady
and describes the link after a cut, not before."""
MIN_BITS_PER_PIXEL = 0.025
MIN_FPS = 15
RESOLUTION_SCALES = (1.0, 0.75, 0.5, 0.375, 0.25)
"""The fractions of the viewport's width and height a stream is rendered at (the smallest
where the bit rate allows no more)."""
SCALE_UP_MARGIN = 1.25
"""A finer resolution is taken again only with this much more than its floor: each change
costs a keyframe, and a rate near a step would otherwise switch back and forth."""
MIN_SCALED_SIDE = 64


@dataclass(frozen=True)
class BitrateLimits:
    """The range congestion control moves the encoder's target in (bit/s)."""

    min_bitrate: int = DEFAULT_MIN_BITRATE
    max_bitrate: int = DEFAULT_MAX_BITRATE

    def __post_init__(self) -> None:
        check_bitrates(self.min_bitrate, self.max_bitrate)


def resolution_scale_for(bitrate: int, width: int, height: int, current: float = 1.0) -> float:
    """The largest of :data:`RESOLUTION_SCALES` at which :data:`MIN_FPS` frames a second of a
    ``width`` × ``height`` viewport still get :data:`MIN_BITS_PER_PIXEL` per pixel at
    ``bitrate``: 1.0 unless even the lowest frame rate would starve each frame. A scale finer
    than ``current`` needs :data:`SCALE_UP_MARGIN` more (hysteresis)."""
    if width <= 0 or height <= 0:
        return 1.0
    for scale in RESOLUTION_SCALES:
        need = MIN_FPS * width * height * scale * scale * MIN_BITS_PER_PIXEL
        if scale > current:
            need *= SCALE_UP_MARGIN
        if bitrate >= need:
            return scale
    return RESOLUTION_SCALES[-1]


def scaled_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """``width`` × ``height`` at ``scale``: even sides (4:2:0 video), at least
    :data:`MIN_SCALED_SIDE` (or the side itself, if smaller)."""
    if scale >= 1.0:
        return width, height

    def side(v: int) -> int:
        return min(v, max(MIN_SCALED_SIDE, round(v * scale / 2) * 2))
    return side(width), side(height)


def frame_rate_for(bitrate: int, width: int, height: int, max_fps: int) -> int:
    """The frame rate that gives each frame at least :data:`MIN_BITS_PER_PIXEL` per pixel at
    ``bitrate``, between :data:`MIN_FPS` (or ``max_fps`` if lower) and ``max_fps``."""
    if width <= 0 or height <= 0:
        return max_fps
    fps = math.floor(bitrate / (width * height * MIN_BITS_PER_PIXEL))
    return max(min(MIN_FPS, max_fps), min(max_fps, fps))


class CongestionController:
    """The target bit rate from REMB and loss feedback. Times are monotonic seconds."""

    def __init__(self, limits: BitrateLimits, *, start: int | None = None) -> None:
        self.limits = limits
        self.target = self._clamp(limits.max_bitrate if start is None else start)
        self.remb: int | None = None
        self.loss: float = 0.0
        """The last loss fraction acted on (NACK window or receiver report)."""
        self.nack_loss = 0.0
        self.report_loss = 0.0
        self.rtt: float | None = None
        self.reason = "start"
        """Why the target is what it is: start, remb, loss, delay, probe, increase, hold,
        lossy (shrunk for random loss), restore, min, max."""
        self.decreases = 0
        self.capacity: int | None = None
        """What the path delivered when congestion last struck (bit/s): growth is additive
        near it, multiplicative once past it by :data:`PROBE_MARGIN` without loss."""
        self.random_loss_holds = 0
        """Heavy loss not answered with a cut: the client's frames waited in no queue."""
        self._random_until = -math.inf
        self._calm_since: float | None = None
        """While shrunk: since when the NACK window has read under :data:`HIGH_LOSS`."""
        self.held: int | None = None
        """While the target is shrunk for heavy random loss (:data:`LOSSY_POWER`): the target
        before it, restored when the loss ends."""
        self._restored_at = -math.inf
        """When the held rate last came back (:data:`REMB_AFTER_RESTORE_S`)."""
        self._heavy_since: float | None = None
        """When the current run of heavy loss (over :data:`HIGH_LOSS`) began."""
        self.remb_ignored = 0
        """REMBs too far below what is being sent to be believed (see :meth:`on_remb`)."""
        self._last_decrease = -math.inf
        self._last_increase = -math.inf
        self._sent: deque[tuple[float, int, int]] = deque()
        self._first_sent: float | None = None
        self._report_at = -math.inf
        self._rtts: deque[tuple[float, float]] = deque()
        self._hold_until = -math.inf
        self._gentle_until = -math.inf
        self._probed = False
        """Probe steps were taken since the last cut (:data:`GENTLE_S`)."""
        self._fast_steps = 0
        """:data:`FAST_INCREASE_FACTOR` steps in a row (:data:`ACCELERATE_AFTER`)."""
        """Until then growth takes :data:`INCREASE_FACTOR` steps even with an empty queue."""
        self._queue_at = -math.inf
        self._client_queue_at = -math.inf
        """When farview's client last reported the queue its frames wait in (not a receiver
        report's round trip)."""
        self._trend: deque[float] = deque(maxlen=QUEUE_TREND_REPORTS + 1)
        """The client's last queue delays, for :data:`QUEUE_TREND_REPORTS`."""
        self.queue_delay = 0.0
        """The last receiver report's round trip over the least of the last
        :data:`MIN_RTT_WINDOW_S` (seconds): the queue the video waits in."""
        self.received: int | None = None
        """What farview's client said it received lately (bit/s), if it says: the median of
        its reports in the last :data:`RECEIVED_MEMORY_S` (the lower of two)."""
        self._received_log: deque[tuple[float, int]] = deque()
        self._sent_packets = 0
        self._sent_bytes = 0
        self._nacked: dict[int, float] = {}
        """Sequence number → when it was first reported missing. aiortc's receiver repeats every
        still-missing number in each NACK (a retransmission lost at a full queue is asked for
        again and again): each counts once, when first reported."""

    def _clamp(self, bitrate: float) -> int:
        return int(max(self.limits.min_bitrate, min(self.limits.max_bitrate, bitrate)))

    # -- signals --------------------------------------------------------------------------------
    def on_sent(self, packets: int, size_bytes: int, now: float) -> None:
        """``packets`` RTP packets carrying ``size_bytes`` of video left at ``now``."""
        if self._first_sent is None:
            self._first_sent = now
        self._sent.append((now, packets, size_bytes))
        self._sent_packets += packets
        self._sent_bytes += size_bytes
        self._expire(now)

    def sent_rate(self, now: float) -> float | None:
        """Video bit/s sent over the last :data:`LOSS_WINDOW_S` (None: too little to tell)."""
        self._expire(now)
        if len(self._sent) < 3 or self._first_sent is None:
            return None
        span = min(LOSS_WINDOW_S, now - self._first_sent)
        if span < MIN_LOSS_SPAN_S:
            return None
        return self._sent_bytes * 8 / span

    def on_nack(self, sequence_numbers: list[int], now: float) -> None:
        """The receiver reported these sequence numbers missing."""
        for seq in sequence_numbers:
            self._nacked.setdefault(seq, now)
        loss, episode = self._window_loss(now, episode=True)
        if episode is not None and episode > QUEUE_LOSS and (loss is None or episode > loss):
            loss = episode  # a queue overflowing now: no need to wait for the window to fill
        if loss is not None:
            self.nack_loss = loss
            self._on_loss(loss, now, fresh=True)

    @property
    def budget_bitrate(self) -> int:
        """What resends are budgeted from (``RetransmitPolicy.set_budget``): the target, or
        while it is shrunk for random loss the rate held before (the path carried it, and the
        loss is what the resends are for)."""
        return self.target if self.held is None else self.held

    def _window_loss(self, now: float, episode: bool = False
                     ) -> tuple[float | None, float | None]:
        """The NACKed share of the packets sent in the last :data:`LOSS_WINDOW_S` (None: too
        few), and with ``episode`` the same NACKs over only the packets sent since the loss
        began (:data:`MIN_PACKETS_FOR_EPISODE`; else None), from one pass over them. Only
        feedback on what was sent since the last cut took hold counts: before that, the loss
        describes the rate the cut already answered."""
        self._expire(now)
        since = max(now - LOSS_WINDOW_S, self._last_decrease + self._settle())
        nacked, first = 0, math.inf
        for at in self._nacked.values():
            if at >= since:
                nacked += 1
                first = min(first, at)
        start = max(since, first - (self.rtt or 0.0) - EPISODE_LEAD_S) if episode else math.inf
        sent = in_episode = 0
        for at, packets, _ in self._sent:
            if at >= since:
                sent += packets
                if at >= start:
                    in_episode += packets
        window = (min(1.0, nacked / sent) if sent >= MIN_PACKETS_FOR_LOSS
                  and now - since >= MIN_LOSS_SPAN_S else None)
        ep = (min(1.0, nacked / in_episode) if nacked and in_episode >= MIN_PACKETS_FOR_EPISODE
              else None)
        return window, ep

    def _settle(self) -> float:
        """How long after a cut its effect reaches the feedback: a round trip and a queue."""
        return SETTLE_S + (self.rtt or 0.0)

    def on_report(self, fraction_lost: float, rtt: float | None, now: float) -> None:
        """An RTCP receiver report: the fraction lost since the last one, and the round trip.
        A report covers 0.5-1.5 s before it: one soon after a decrease describes what the
        decrease already answered, so it only holds growth (no second cut)."""
        if rtt is not None and rtt >= 0:
            self.rtt = rtt
            self._on_rtt(rtt, now)
        self.report_loss = max(0.0, min(1.0, fraction_lost))
        self._report_at = now
        if now - self._last_decrease < REPORT_STALE_S and self.report_loss > HIGH_LOSS:
            self.loss = self.report_loss
            self.reason = "hold"
            return
        self._on_loss(self.report_loss, now)

    def on_remb(self, bitrate: int, now: float) -> None:
        """The receiver's estimate of what the path carries: a falling one below the target cuts
        it (at most once per :data:`DECREASE_INTERVAL_S`). One under half of what is being sent
        is not believed (nor one while nothing is being sent): aiortc's estimator, after a stall,
        reports a few kbit/s for many seconds while the same path carries megabits without
        loss."""
        sent = self.sent_rate(now)
        if sent is None or bitrate < 0.5 * sent:
            self.remb_ignored += 1
            return
        previous, self.remb = self.remb, int(bitrate)
        falling = previous is not None and self.remb < previous
        if ((self.held is not None or now - self._restored_at < REMB_AFTER_RESTORE_S)
                and not self._queue_full(now)):
            return  # shrunk for random loss (or just back from it): the estimate follows that
            # shrink and the loss
        if self._client_queue_at > now - QUEUE_FRESH_S and not self._queue_full(now):
            return  # farview's client measures the queue on its frames and sees none worth
            # holding for: aiortc's estimate follows what it receives, so each cut it made
            # lowered the next (by hand, on a clean link after a loss or a cap: 8 Mbit/s slid
            # to the 0.5 floor in 10 s, and stayed there)
        if falling and self.remb < self.target and self._may_decrease(now):
            self._decreased(now, self.remb / 0.85, self.loss)
            self._set(self.remb, "remb")

    def _on_rtt(self, rtt: float, now: float) -> None:
        """A round trip well over the least seen lately is a queue on the path (the reports
        cross the same queue as the video)."""
        self._rtts.append((now, rtt))
        while self._rtts and now - self._rtts[0][0] > MIN_RTT_WINDOW_S:
            self._rtts.popleft()
        self.on_queue_delay(rtt - min(r for _, r in self._rtts), now, client=False)

    def on_queue_delay(self, delay: float, now: float, received: float | None = None, *,
                       client: bool = True) -> None:
        """The video waits ``delay`` seconds in a queue on the path (measured by farview's
        client on its frames, ``QueueDelayMeter``; or, ``client`` False, from the round trip of
        a receiver report): over :data:`QUEUE_DELAY_HOLD_S` growth stops for a while; over
        :data:`QUEUE_DELAY_CUT_S`, or over the hold and growing in each of the client's last
        :data:`QUEUE_TREND_REPORTS` reports, the target drops to 85 % of what is being sent,
        or of ``received`` (bit/s the client got lately) when that is less."""
        self.queue_delay = max(0.0, delay)
        self._queue_at = now
        if client:
            self._client_queue_at = now
        if received is not None and received > 0:
            # the median of the last few reports (the lower of two): one window can read a
            # third over the link (the client counts packets as its loop reads them, in
            # clumps), and a cut's floor of 85 % of that landed over a 1 Mbit/s cap (1.1;
            # test_lossy_network); the least of them took cuts to the floor
            self._received_log.append((now, int(received)))
            while now - self._received_log[0][0] > RECEIVED_MEMORY_S:
                self._received_log.popleft()
            rates = sorted(r for _, r in self._received_log)
            self.received = rates[(len(rates) - 1) // 2]
        growing = False
        if client:
            self._trend.append(self.queue_delay)
            growing = len(self._trend) > QUEUE_TREND_REPORTS and all(
                b >= a + QUEUE_TREND_STEP_S for a, b in itertools.pairwise(self._trend))
        if self.queue_delay > QUEUE_DELAY_HOLD_S:
            self._hold_until = now + QUEUE_HOLD_S
        held = self.queue_delay > QUEUE_DELAY_HOLD_S
        over = self.queue_delay > QUEUE_DELAY_CUT_S or (growing and held)
        if held and self.capacity is not None:
            sent = self.sent_rate(now)
            if sent is not None and sent >= self.capacity:
                # probing at or past where the link was full last time, and a queue again:
                # the probe found the limit (sent a few % over it, the queue grew by ~15 ms
                # a second: it sat at 10-28 ms for a second or two before reaching 30 ms)
                over = True
            elif sent is not None and now - self._last_decrease < DRAIN_S:
                # sent under what the link delivered at the last cut: the queue that cut
                # found, draining (a second cut on it put the estimate at two thirds of a
                # 3 Mbit/s cap, and the probes from there climbed past the cap unchecked)
                over = False
        if over and self._may_decrease(now):
            base = self._cut_base(now)
            if received is not None and 0 < received < base:
                base = received
            self._decreased(now, base)
            self._set(0.85 * base, "delay")
            self._trend.clear()

    # -- the rule -------------------------------------------------------------------------------
    def _cut_base(self, now: float) -> float:
        """What a cut is taken from: the rate actually sent, when it is under the target."""
        sent = self.sent_rate(now)
        return self.target if sent is None else min(self.target, sent)

    def _queue_empty(self, now: float) -> bool:
        """farview's client said lately (:data:`QUEUE_FRESH_S`) that its frames wait in no queue
        (under :data:`EMPTY_QUEUE_S`): the path has room."""
        return self._queue_at > now - QUEUE_FRESH_S and self.queue_delay < EMPTY_QUEUE_S

    def _queue_full(self, now: float) -> bool:
        """farview's client said lately that its frames wait in a queue of over
        :data:`QUEUE_DELAY_HOLD_S`."""
        return self._queue_at > now - QUEUE_FRESH_S and self.queue_delay > QUEUE_DELAY_HOLD_S

    def _may_decrease(self, now: float, loss: float = 0.0) -> bool:
        """Once per :data:`DECREASE_INTERVAL_S`; sooner when the loss measured only on what was
        sent after the last cut took hold is still over :data:`QUEUE_LOSS`: that cut fell short
        (made as the queue began to overflow, or limited by :data:`MAX_CUT`)."""
        since = now - self._last_decrease
        if since >= DECREASE_INTERVAL_S:
            return True
        return since >= max(RECUT_AFTER_S, self._settle() + MIN_LOSS_SPAN_S) and loss > QUEUE_LOSS

    def _decreased(self, now: float, capacity: float, loss: float = 0.0) -> None:
        self.held = None  # shrunk for random loss? congestion after all: the cut stands
        self._last_decrease = now
        self._probed = False
        self.capacity = int(capacity)
        self.decreases += 1

    def _on_loss(self, loss: float, now: float, fresh: bool = False) -> None:
        """Act on a loss fraction; ``fresh``: from the NACK window (every packet, the last
        :data:`LOSS_WINDOW_S`), not a receiver report covering the last second or so."""
        self.loss = loss
        if loss <= HIGH_LOSS:
            self._heavy_since = None
            if fresh:
                self._calm(now)
        elif self._heavy_since is None:
            self._heavy_since = now
        if loss > HIGH_LOSS:
            empty = self._queue_empty(now)
            if empty or (now < self._random_until and not self._queue_full(now)):
                self.reason = "hold"  # packets lost, but none waited: loss, not congestion
                self.random_loss_holds += 1
                if empty and self._heavy_since is not None and \
                        self._queue_at >= self._heavy_since + FEEDBACK_INTERVAL_S:
                    self._random_until = now + RANDOM_LOSS_MEMORY_S
                if fresh and now < self._random_until:
                    self._shrink(loss)
                self._calm_since = None
                return
            if not self._may_decrease(now, loss):
                return
            base = self._cut_base(now)
            # a queue overflowing: aim under what got through (at most MAX_CUT of the rate)
            new = (max((1 - MAX_CUT) * base, 0.9 * base * (1 - loss)) if loss > QUEUE_LOSS
                   else base * (1 - 0.5 * loss))
            if (loss > QUEUE_LOSS and self.received is not None
                    and self._queue_at > now - QUEUE_FRESH_S):
                # A queue overflowing: no lower than 85 % of what the client received lately
                # (every packet: what the link delivered; GCC's rule). The NACKed share
                # overstates the loss while resends fill the same bottleneck (0.58-0.88
                # measured where a 3 Mbit/s cap took 0.4-0.55 of what was sent), and such a
                # cut landed at half the link.
                new = max(new, 0.85 * min(self.received, base))
            capacity = new / 0.9
            if (loss > QUEUE_LOSS and self.received is not None
                    and self._queue_at > now - QUEUE_FRESH_S):
                # What the client got while the queue overflowed is what the link carries.
                # The cut often goes deeper (the NACKed share overstates the loss); growth is
                # then additive up to the link, not multiplicative into its queue (which, with
                # 15 % steps, filled a 3 Mbit/s cap's 50 ms queue five seconds after the cut).
                sent = self.sent_rate(now)
                capacity = max(capacity, min(self.received, base if sent is None else sent))
            self._decreased(now, capacity, loss)
            self._set(new, "loss")
        elif loss < LOW_LOSS or self._queue_empty(now):
            self.tick(now)
        else:
            self.reason = "hold"

    def _shrink(self, loss: float) -> None:
        """Heavy random loss: smaller frames (see :data:`LOSSY_POWER`)."""
        held = self.target if self.held is None else self.held
        new = self._clamp(held * (1 - loss) ** LOSSY_POWER)
        if new < LOSSY_MIN_STEP * self.target:
            self.held = held
            self.target = new
        if self.held is not None:
            self.reason = "lossy"

    def _calm(self, now: float) -> None:
        """The NACK window reads under :data:`HIGH_LOSS`: once it has for
        :data:`RESTORE_CALM_S`, the heavy random loss is over and the rate held comes back at
        once."""
        if self.held is None:
            return
        if self._calm_since is None:
            self._calm_since = now
        if now - self._calm_since < RESTORE_CALM_S:
            return
        self.target, self.held, self._calm_since = self.held, None, None
        self._restored_at = now
        self.reason = "restore"
        self._last_increase = now

    def tick(self, now: float) -> None:
        """Grow the target when the path allows; call it often (each frame sent, each
        feedback): it acts at most every :data:`INCREASE_INTERVAL_S`. A target shrunk for
        random loss does not grow: it is restored once the NACK window's loss has been under
        :data:`HIGH_LOSS` for :data:`RESTORE_CALM_S`."""
        if self.held is not None:
            self._fast_steps = 0
            loss, _ = self._window_loss(now)
            if loss is not None and loss <= HIGH_LOSS:
                self.nack_loss = loss
                self._heavy_since = None
                self._calm(now)
            elif loss is not None:
                self._calm_since = None
            return  # no growth from a shrunk target: the held rate comes back whole
        if now - self._last_increase < INCREASE_INTERVAL_S:
            return
        loss, _ = self._window_loss(now)  # no NACKs lately: the loss is over
        if loss is not None:
            self.nack_loss = loss
            if loss <= HIGH_LOSS:
                self._heavy_since = None
        if loss is not None and now - self._report_at > REPORT_HOLD_S:
            self.loss = loss
        fast_steps, self._fast_steps = self._fast_steps, 0  # each way out below ends a run
        if self.loss >= LOW_LOSS and not (self.loss <= HIGH_LOSS and self._queue_empty(now)):
            return
        if now - self._last_decrease < 2 * DECREASE_INTERVAL_S or now < self._hold_until:
            return  # let the queue drain before probing again
        self._last_increase = now
        sent = self.sent_rate(now)
        if sent is None or self.target > APP_LIMIT * sent:
            return  # the encoder uses far less than the target (or nothing): more is untested
        capacity = self.capacity
        fast = self._queue_empty(now) and now >= self._gentle_until
        factor = (INCREASE_FACTOR if not fast else ACCELERATED_INCREASE_FACTOR
                  if fast_steps >= ACCELERATE_AFTER else FAST_INCREASE_FACTOR)
        # Where the probe stands is judged by what is sent, not by the target: x264 makes
        # about 80 % of a target near a 3 Mbit/s cap, so a target 8 % past the link's rate had
        # sent under it, and the growth that followed went into the queue (see PROBE_MARGIN).
        used = min(1.0, sent / self.target) if self.target > 0 else 1.0
        if capacity is not None and sent < NEAR_CAPACITY * capacity:
            self._set(min(self.target * factor, NEAR_CAPACITY * capacity / max(used, 0.5)),
                      "increase")
            self._fast_steps = fast_steps + 1 if fast else 0
        elif capacity is not None and sent < capacity * (1 + PROBE_MARGIN):
            step = PROBE_STEP if sent < capacity else PROBE_STEP_PAST
            self._set(self.target + capacity * step / max(used, 0.5), "probe")  # steps in sent
            self._probed = True
        else:
            if self._probed:  # walked up past where the link was full: gently at first
                self._gentle_until = now + GENTLE_S
                self._probed = False
                factor, fast = INCREASE_FACTOR, False
            self.capacity = None
            self._set(self.target * factor, "increase")
            self._fast_steps = fast_steps + 1 if fast else 0

    def _set(self, bitrate: float, reason: str) -> None:
        new = self._clamp(bitrate)
        self.reason = ("max" if new == self.limits.max_bitrate and reason == "increase"
                       else "min" if new == self.limits.min_bitrate and bitrate <= new else reason)
        self.target = new

    def _expire(self, now: float) -> None:
        while self._sent and now - self._sent[0][0] > LOSS_WINDOW_S:
            _, packets, size = self._sent.popleft()
            self._sent_packets -= packets
            self._sent_bytes -= size
        # oldest first (a dict keeps insertion order, and each number is stamped when first
        # seen): stop at the first one still remembered, so a frame costs no scan of them all
        while self._nacked:
            seq, at = next(iter(self._nacked.items()))
            if len(self._nacked) <= NACK_MEMORY and now - at <= NACK_MEMORY_S:
                break
            del self._nacked[seq]

    def snapshot(self) -> dict[str, object]:
        """For statistics: the target, why, and the signals behind it."""
        return {"target_bitrate": self.target, "reason": self.reason, "remb": self.remb,
                "remb_ignored": self.remb_ignored, "random_loss_holds": self.random_loss_holds,
                "capacity": self.capacity, "held_bitrate": self.held,
                "loss": round(self.loss, 4), "nack_loss": round(self.nack_loss, 4),
                "report_loss": round(self.report_loss, 4),
                "rtt_ms": None if self.rtt is None else round(self.rtt * 1000, 1),
                "queue_delay_ms": round(self.queue_delay * 1000, 1),
                "received_bitrate": self.received,
                "decreases": self.decreases, "min_bitrate": self.limits.min_bitrate,
                "max_bitrate": self.limits.max_bitrate}


def downlink_ms(received_at: float, pts: int, encode_us: int) -> float:
    """A frame's trip from the host to the client, in ms, up to a constant: when its last
    packet arrived (client clock, seconds) less when the host sent it (its pts, 90 kHz from the
    stream's first frame at the start of encoding, plus the encoding). The two clocks differ by
    an unknown offset, the same for every frame of a stream; :class:`QueueDelayMeter` measures
    over the least of a window, which takes it out. (Clocks drift apart by parts per million:
    tens of microseconds over its window.)"""
    return received_at * 1000.0 - pts / 90.0 - encode_us / 1000.0


class QueueDelayMeter:
    """Client side: how long frames wait in a queue on the network, from each frame's one-way
    time (:func:`downlink_ms`) over the least of the last
    :data:`MIN_RTT_WINDOW_S`. :meth:`report` gives the lower quartile of the excess of the frames
    since the last report, every :data:`FEEDBACK_INTERVAL_S`: a queue delays every frame, while
    a frame that waited for a retransmitted packet is one of a few. Pure code; times are
    seconds."""

    def __init__(self) -> None:
        self._floor: deque[tuple[float, float]] = deque()
        """(time, network ms), increasing ms: the window's least is at the front."""
        self._pending: list[float] = []
        self._reported_at: float | None = None
        self._arrivals: deque[tuple[float, int]] = deque()
        """(time, bytes) of the frames of the last :data:`RECEIVE_WINDOW_S`."""
        self._arrived_bytes = 0
        self._first_at: float | None = None

    def on_frame(self, network_ms: float, now: float, size_bytes: int = 0) -> None:
        if self._first_at is None:
            self._first_at = now
        self._arrivals.append((now, size_bytes))
        self._arrived_bytes += size_bytes
        self._expire_arrivals(now)
        while self._floor and self._floor[-1][1] >= network_ms:
            self._floor.pop()
        self._floor.append((now, network_ms))
        while now - self._floor[0][0] > MIN_RTT_WINDOW_S:
            self._floor.popleft()
        self._pending.append(network_ms - self._floor[0][1])

    def report(self, now: float) -> float | None:
        """The queueing (ms, lower quartile) of the frames since the last report, when one is due."""
        if self._reported_at is not None and now - self._reported_at < FEEDBACK_INTERVAL_S:
            return None
        if not self._pending:
            return None
        self._reported_at = now
        values = sorted(self._pending)
        self._pending = []
        return values[len(values) // 4]

    def _expire_arrivals(self, now: float) -> None:
        while self._arrivals and now - self._arrivals[0][0] > RECEIVE_WINDOW_S:
            self._arrived_bytes -= self._arrivals.popleft()[1]

    def received_rate(self, now: float) -> float | None:
        """Bit/s of the frames received in the last :data:`RECEIVE_WINDOW_S` (None until a
        whole window has passed, or when the frames said no sizes)."""
        if self._first_at is None or now - self._first_at < RECEIVE_WINDOW_S:
            return None
        self._expire_arrivals(now)
        return self._arrived_bytes * 8 / RECEIVE_WINDOW_S if self._arrived_bytes else None


class NetworkFeedback:
    """Client side: the ``network_feedback`` events farview's client sends the host, ten times
    a second: the queue its frames wait in (:class:`QueueDelayMeter` on each frame's one-way
    trip) and the rate it receives. While no frame has arrived whole for a feedback interval (a
    loss burst that lets none through), the queue comes from the frames' metadata messages'
    own trip down instead: they are small and sent twice, so most cross a path that delivers
    no frame, and without a report the host would take the loss for a full queue and cut the
    bit rate to its floor (then climb back for seconds). Pure code; times are seconds."""

    def __init__(self, bytes_received: Callable[[], int] | None = None) -> None:
        self.frames = QueueDelayMeter()
        self.metadata = QueueDelayMeter()
        self._sent_at = -math.inf
        self._frame_at = -math.inf
        self._bytes_received = bytes_received
        """A count of the video bytes that arrived (every RTP packet, resends too): the receive
        rate then says what the path delivered, during heavy loss too; without it, the bytes of
        the frames that arrived whole."""
        self._counts: deque[tuple[float, int]] = deque()

    def received_rate(self, now: float) -> float | None:
        """Bit/s received lately (None until a window has passed)."""
        if self._bytes_received is None:
            return self.frames.received_rate(now)
        self._counts.append((now, self._bytes_received()))
        while len(self._counts) > 1 and now - self._counts[1][0] >= PACKET_RECEIVE_WINDOW_S:
            self._counts.popleft()
        (t0, b0), (t1, b1) = self._counts[0], self._counts[-1]
        if t1 - t0 < PACKET_RECEIVE_WINDOW_S:
            return None
        return (b1 - b0) * 8 / (t1 - t0)

    def on_frame(self, received_at: float, pts: int, encode_us: int, size_bytes: int,
                 now: float, *, waited: bool = False) -> dict[str, float] | None:
        """A frame arrived whole (its last packet at ``received_at``): the event to send, if
        one is due. One that ``waited`` for a retransmission says nothing about a queue (its
        trip includes the NACK's round trip: under 50 % random loss nearly every whole frame
        waited, the queue read 10 ms and more, and the host took the loss for a full queue and
        cut the bit rate to its floor) and does not count as a frame that spoke: the metadata's
        reports go on."""
        if waited:
            return None
        self.frames.on_frame(downlink_ms(received_at, pts, encode_us), now, size_bytes)
        self._frame_at = now
        queue_ms = self.frames.report(now)
        if queue_ms is None:
            return None
        self.metadata.report(now)  # frames spoke: the metadata's samples are not needed
        self._sent_at = now
        return self._feedback(queue_ms, now)

    def on_metadata(self, pts: int, encode_us: int, now: float) -> dict[str, float] | None:
        """A frame's metadata message arrived at ``now``: the event to send, if no frame has
        spoken for a feedback interval."""
        self.metadata.on_frame(downlink_ms(now, pts, encode_us), now)
        if now - max(self._sent_at, self._frame_at) < FEEDBACK_INTERVAL_S:
            return None
        queue_ms = self.metadata.report(now)
        if queue_ms is None:
            return None
        self._sent_at = now
        return self._feedback(queue_ms, now) if self._bytes_received is not None else \
            {"queue_ms": round(queue_ms, 2)}

    def _feedback(self, queue_ms: float, now: float) -> dict[str, float]:
        feedback = {"queue_ms": round(queue_ms, 2)}
        received = self.received_rate(now)
        if received is not None:
            feedback["received_kbps"] = round(received / 1000, 1)
        return feedback
