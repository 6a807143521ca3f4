"""RetransmitPolicy: each NACKed packet resent a few times, a round trip apart, while it can help."""

from farview.streaming.retransmit import MAX_AGE_S, MAX_TRIES, MEMORY, STUCK_S, RetransmitPolicy


def test_a_repeated_nack_is_resent_once_per_round_trip() -> None:
    policy = RetransmitPolicy()
    assert policy.select([10, 11], 0.0, rtt=0.05) == [10, 11]
    assert policy.select([10, 11, 12], 0.01, rtt=0.05) == [12]  # 10, 11 were just resent
    assert policy.select([10], 0.07, rtt=0.05) == []  # not within 1.5 round trips
    assert policy.select([10], 0.08, rtt=0.05) == [10]  # then once more


def test_on_a_lan_a_lost_resend_can_be_asked_for_again_within_a_frame() -> None:
    """With a 1 ms round trip a packet whose resend was lost too goes out again 5 ms later
    (at 60 fps a frame is 16.7 ms: the frame is still out before the next one); not sooner,
    and 20 ms apart while the round trip is unknown."""
    policy = RetransmitPolicy()
    assert policy.select([7], 0.0, rtt=0.001) == [7]
    assert policy.select([7], 0.004, rtt=0.001) == []
    assert policy.select([7], 0.006, rtt=0.001) == [7]
    assert policy.select([8], 0.0) == [8]
    assert policy.select([8], 0.015) == []
    assert policy.select([8], 0.021) == [8]


def test_resends_stop_after_max_tries_and_max_age() -> None:
    policy = RetransmitPolicy()
    t = 0.0
    resent = 0
    for _ in range(MAX_TRIES + 3):
        resent += len(policy.select([5], t))
        t += 0.03
    assert resent == MAX_TRIES
    assert policy.select([6], 1.0) == [6]
    assert policy.select([6], 1.0 + MAX_AGE_S + 0.01) == []  # the client gave up on it by now
    assert policy.requested == MAX_TRIES + 3 + 2 and policy.resent == MAX_TRIES + 1


def test_memory_is_bounded() -> None:
    policy = RetransmitPolicy()
    for seq in range(MEMORY + 100):
        policy.select([seq], 0.0)
    assert len(policy._seen) == MEMORY


def test_resends_keep_within_a_share_of_the_target() -> None:
    policy = RetransmitPolicy()
    policy.set_budget(960_000)  # a quarter: 240 kbit/s, 25 packets a second, bursts of 2.5
    first = policy.select(list(range(100)), 0.0)
    assert len(first) == 2 and policy.over_budget == 98
    later = policy.select(list(range(200, 300)), 1.0)  # a second on: 25 more tokens, burst-capped
    assert len(later) == 2


def test_a_packet_still_missed_after_resends_stopped_makes_a_keyframe_due() -> None:
    """A client that keeps NACKing a packet the host no longer resends (Chromium waits up to
    3 s before it asks for a keyframe) gets one STUCK_S after that packet's first NACK, unless
    a keyframe is asked for meanwhile; packets first NACKed before that request are moot."""
    policy = RetransmitPolicy()
    for i in range(MAX_TRIES):
        assert policy.select([5], 0.01 * i, rtt=0.001) == [5]
    assert policy.keyframe_due() is None  # resends were still going out
    assert policy.select([5], 0.05, rtt=0.001) == []  # tried enough: still missed
    assert policy.given_up == 1 and policy.keyframe_due() == STUCK_S
    assert policy.select([6], 0.06, rtt=0.001) == [6]  # a later loss does not move it
    assert policy.keyframe_due() == STUCK_S
    policy.keyframe_requested(0.1)  # the client asked itself (or the host sent one)
    assert policy.keyframe_due() is None
    assert policy.select([5], 0.2, rtt=0.001) == []  # an old NACK again: before the keyframe
    assert policy.keyframe_due() is None
    # too old to resend: given up at once, and due from its first NACK
    assert policy.select([9], 1.0, rtt=0.001) == [9]
    assert policy.select([9], 1.0 + MAX_AGE_S + 0.01, rtt=0.001) == []
    assert policy.keyframe_due() == 1.0 + STUCK_S
