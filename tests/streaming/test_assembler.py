"""FrameAssembler: whole frames in order, a round trip's wait for a lost packet, then a keyframe."""

from __future__ import annotations

from aiortc.rtp import RtpPacket

from farview.streaming.assembler import (
    LOSSY_MAX_WAIT,
    LOSSY_MEMORY_S,
    MAX_HELD_PACKETS,
    RESYNC_REASK_S,
    TAIL_PROBE_MAX_S,
    TAIL_PROBE_MIN_S,
    EncodedFrame,
    FrameAssembler,
    has_idr,
)

KEY = b"\x00\x00\x00\x01\x67sps\x00\x00\x00\x01\x68pps\x00\x00\x00\x01\x65idr"
P = b"\x00\x00\x00\x01\x41p"


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def pkt(seq: int, ts: int, marker: bool, data: bytes) -> RtpPacket:
    p = RtpPacket(sequence_number=seq & 0xFFFF, timestamp=ts, marker=int(marker))
    p._data = data  # type: ignore[attr-defined]
    return p


def frame(seq: int, ts: int, data: bytes, parts: int = 2) -> list[RtpPacket]:
    """One frame cut into ``parts`` packets from ``seq`` on."""
    cut = [data[i * len(data) // parts:(i + 1) * len(data) // parts] for i in range(parts)]
    return [pkt(seq + i, ts, i == parts - 1, c) for i, c in enumerate(cut)]


def make() -> tuple[FrameAssembler, list[EncodedFrame], Clock]:
    got: list[EncodedFrame] = []
    clock = Clock()
    return FrameAssembler(got.append, clock=clock), got, clock


def test_whole_frames_from_the_first_keyframe_on() -> None:
    asm, got, _ = make()
    for p in frame(1, 50, P):  # joined mid-stream: a P-frame before any keyframe is not shown
        assert asm.add(p) == (False, None)
    for p in frame(3, 100, KEY) + frame(5, 200, P) + frame(7, 300, P):
        asm.add(p)
    assert [(f.rtp_timestamp, f.data) for f in got] == [(100, KEY), (200, P), (300, P)]
    assert asm.frames_completed == 3 and asm.give_ups == 0


def test_a_lost_packet_waits_for_its_retransmission_and_loses_nothing() -> None:
    asm, got, clock = make()
    packets = frame(10, 100, KEY, 3) + frame(13, 200, P) + frame(15, 300, P)
    lost = packets.pop(1)  # the keyframe's middle packet
    for p in packets:
        clock.t += 0.002
        assert asm.add(p) == (False, None)
    assert got == []  # frames after the gap wait behind it, in order
    clock.t += 0.01
    assert asm.add(lost) == (False, None)  # the NACKed retransmission arrives in time
    assert [f.rtp_timestamp for f in got] == [100, 200, 300]
    assert got[0].data == KEY and got[0].waited
    assert asm.frames_recovered == 1 and asm.frames_discarded == 0 and asm.packets_lost == 0


def test_a_gap_past_the_wait_asks_for_a_keyframe_and_shows_nothing_broken() -> None:
    asm, got, clock = make()
    asm.set_rtt(0.01)  # wait 2.5 round trips, at least MIN_MAX_WAIT
    for p in frame(1, 100, KEY):
        asm.add(p)
    packets = frame(3, 200, P) + frame(5, 300, P) + frame(7, 400, P)
    del packets[0]
    for p in packets:
        assert asm.add(p) == (False, None)
    clock.t += asm.max_wait + 1e-6
    assert asm.poll() is True  # given up: a keyframe is wanted
    assert asm.packets_lost == 1 and asm.give_ups == 1 and asm.frames_discarded >= 1
    asm.add(pkt(3, 200, False, P[:3]))  # too late: its frame is gone
    for p in frame(9, 500, P):  # chains from the lost frame: never shown
        asm.add(p)
    for p in frame(11, 600, KEY):
        asm.add(p)
    assert [f.rtp_timestamp for f in got] == [100, 600]
    assert all(has_idr(f.data) or f.rtp_timestamp not in (200, 300, 400, 500) for f in got)


def test_an_unanswered_keyframe_request_is_repeated() -> None:
    asm, got, clock = make()
    for p in frame(1, 100, P):
        asm.add(p)
    clock.t += RESYNC_REASK_S
    wanted = [asm.add(p)[0] for p in frame(3, 200, P)]
    assert wanted == [True, False]
    assert got == []


def test_sequence_numbers_wrap() -> None:
    asm, got, _ = make()
    for p in frame(0xFFFE, 100, KEY, 3) + frame(0x10001, 200, P):
        asm.add(p)
    assert [f.rtp_timestamp for f in got] == [100, 200]


def test_held_packets_are_bounded() -> None:
    asm, got, _ = make()
    for p in frame(1, 100, KEY):
        asm.add(p)
    wanted = False
    for i in range(MAX_HELD_PACKETS + 10):  # a gap at seq 3 that never fills
        wanted |= asm.add(pkt(4 + i, 200 + i, False, b"x"))[0]
    assert wanted and asm.give_ups == 1
    assert len(asm._packets) <= 512 + 1
    assert [f.rtp_timestamp for f in got] == [100]


def test_a_keyframe_that_stays_broken_is_given_up_once_and_the_next_one_shows() -> None:
    asm, got, clock = make()
    broken = frame(1, 100, KEY, 4)
    del broken[2]  # never retransmitted
    for p in broken + frame(5, 200, P):
        asm.add(p)
    clock.t += asm.max_wait + 1e-6
    assert asm.poll() is True
    for _ in range(3):  # no new give-up loops over the same broken keyframe
        clock.t += asm.max_wait + 1e-6
        assert asm.poll() is False
    assert asm.give_ups == 1 and asm.packets_lost == 1
    for p in frame(7, 300, KEY) + frame(9, 400, P):
        asm.add(p)
    assert [f.rtp_timestamp for f in got] == [300, 400]


def test_a_gap_that_stays_open_is_asked_for_again() -> None:
    asm, got, clock = make()
    asked: list[list[int]] = []
    asm.send_nack = asked.append
    for p in frame(1, 100, KEY):
        asm.add(p)
    packets = frame(3, 200, P, 3)
    lost = packets.pop(1)
    for p in packets:
        asm.add(p)
    assert asked == []  # aiortc's receiver sent the first NACK
    clock.t += asm.renack_interval
    assert asm.poll() is False and asked == [[4]]
    clock.t += asm.renack_interval / 2
    assert asm.poll() is False and asked == [[4]]  # not again before the interval
    asm.add(lost)
    assert [f.rtp_timestamp for f in got] == [100, 200] and asm.renacks == 1


def test_frames_whole_behind_a_gap_count_as_waited_and_only_the_gap_as_recovered() -> None:
    """A frame that was whole but waited behind an earlier frame's lost packet has a trip that
    includes that wait: it says nothing about a network queue (``waited``)."""
    asm, got, clock = make()
    packets = frame(10, 100, KEY, 3) + frame(13, 200, P) + frame(15, 300, P)
    lost = packets.pop(1)
    for p in packets:
        clock.t += 0.002
        asm.add(p)
    clock.t += 0.05
    asm.add(lost)
    assert [(f.rtp_timestamp, f.waited) for f in got] == [(100, True), (200, True), (300, True)]
    assert asm.frames_recovered == 1
    for p in frame(17, 400, P):  # the next frame, with nothing lost before it
        asm.add(p)
    assert got[-1].rtp_timestamp == 400 and not got[-1].waited


def test_after_a_give_up_gaps_wait_longer_and_every_ask_is_counted() -> None:
    """Soon after a give-up (a lossy link) a gap waits LOSSY_MAX_WAIT, not the round-trip
    wait: each give-up costs a keyframe. Every ask (give-up, repeat) is counted, for the pose
    flag that repeats it."""
    asm, got, clock = make()
    asm.set_rtt(0.001)
    assert asm.max_wait < LOSSY_MAX_WAIT
    for p in frame(1, 100, KEY):
        asm.add(p)
    packets = frame(3, 200, P) + frame(5, 300, P)
    del packets[0]
    for p in packets:
        asm.add(p)
    clock.t += asm.max_wait + 1e-6
    assert asm.poll() is True and asm.keyframe_asks == 1
    gave_up = clock.t
    clock.t += RESYNC_REASK_S
    assert asm.add(pkt(7, 400, True, P)) == (True, None)  # still no keyframe: asked again
    assert asm.keyframe_asks == 2
    for p in frame(8, 500, KEY) + frame(10, 600, P):
        asm.add(p)
    assert [f.rtp_timestamp for f in got] == [100, 500, 600]
    packets = frame(12, 700, P) + frame(14, 800, P)
    del packets[0]
    for p in packets:
        asm.add(p)
    clock.t += asm.max_wait + 1e-6
    assert clock.t - gave_up < LOSSY_MEMORY_S
    assert asm.poll() is False  # within LOSSY_MEMORY_S of the give-up: it waits on
    clock.t += LOSSY_MAX_WAIT - asm.max_wait
    assert asm.poll() is True and asm.keyframe_asks == 3


def test_a_lost_tail_is_asked_for_before_the_next_frame_shows_the_gap() -> None:
    """A frame whose last packets were lost has no later packet to reveal the gap: after
    a few of its usual packet spacings of silence the next number is NACKed (a tail-loss
    probe), and the retransmission completes the frame a frame interval sooner."""
    asm, got, clock = make()
    asked: list[list[int]] = []
    asm.send_nack = asked.append
    for p in frame(1, 100, KEY):
        clock.t += 0.0005
        asm.add(p)
    packets = frame(3, 200, P, 4)
    tail = packets.pop()  # seq 6, the marker packet
    for p in packets:
        clock.t += 0.0005
        asm.add(p)
    assert asm.tail_delay() == TAIL_PROBE_MIN_S  # packets half a millisecond apart
    clock.t += TAIL_PROBE_MIN_S / 2
    assert asm.poll() is False and asked == []  # not yet: it may still be on its way
    clock.t += TAIL_PROBE_MIN_S / 2 + 1e-9
    assert asm.poll() is False and asked == [[6]] and asm.tail_probes == 1
    assert asm.poll() is False and asked == [[6]]  # once per interval
    clock.t += 0.002
    asm.add(tail)
    assert [f.rtp_timestamp for f in got] == [100, 200]
    clock.t += 0.05
    assert asm.poll() is False and asked == [[6]]  # nothing open: no more probes


def test_tail_probes_follow_the_packet_spacing_and_stop() -> None:
    asm, got, clock = make()
    asked: list[list[int]] = []
    for p in frame(1, 100, KEY):
        asm.add(p)
    packets = frame(3, 200, P * 12, 12)[:-1]
    for p in packets:
        clock.t += 0.003  # a narrow link spreads a frame's packets
        asm.add(p)
    assert abs(asm.tail_delay() - min(TAIL_PROBE_MAX_S, 3 * asm._spacing + 0.001)) < 1e-12
    assert asm.tail_delay() > 0.006
    clock.t += 0.006
    assert asm.poll() is False and asked == []  # no way to ask yet: nothing is sent
    asm.send_nack = asked.append
    assert asm.poll() is False and asked == []  # within the wider delay
    clock.t += TAIL_PROBE_MAX_S
    asm.poll()
    assert asked == [[14]]
    for _ in range(20):  # asked again a few times, then left to the next frame
        clock.t += asm.renack_interval
        asm.poll()
    assert 2 <= len(asked) <= 1 + asm.max_wait / asm.renack_interval + 1
    assert got[-1].rtp_timestamp == 100


def test_a_gap_is_asked_for_again_a_few_round_trips_later() -> None:
    """Before the round trip is known a gap is asked for again every 25 ms (the host spaces
    resends 20 ms apart then); on a 1 ms LAN after 8 ms (a frame at 60 fps is 16.7 ms long),
    on a long path after two round trips and 3 ms."""
    asm, _, _ = make()
    assert asm.renack_interval == 0.025
    asm.set_rtt(0.001)
    assert asm.renack_interval == 0.008
    asm.set_rtt(0.04)
    assert abs(asm.renack_interval - 0.083) < 1e-9
