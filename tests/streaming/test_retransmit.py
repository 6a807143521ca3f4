"""RetransmitPolicy: each NACKed packet resent a few times, a round trip apart, while it can help."""

from farview.streaming.retransmit import MAX_AGE_S, MAX_TRIES, MEMORY, RetransmitPolicy


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
