"""The host's per-channel rate limits (``host/connection.py``), on a ``HostConnection`` with
stand-in channels and a stand-in clock, so the token bucket's arithmetic is checked exactly.

On a real host and client: ``test_channel_fuzz.py::test_a_flood_of_valid_control_messages_is_rate_limited_not_fatal``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from aiortc import RTCPeerConnection

from farview.host import connection as host_connection
from farview.host.connection import HostConnection, RateLimit
from farview.input import control as wire


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeChannel:
    def __init__(self, label: str, channel_id: int) -> None:
        self.label = label
        self.id = channel_id
        self.readyState = "open"
        self.sent: list[str | bytes] = []
        self.handlers: dict[str, Callable[[Any], None]] = {}

    def on(self, event: str, handler: Callable[[Any], None]) -> None:
        self.handlers[event] = handler

    def send(self, data: str | bytes) -> None:
        self.sent.append(data)

    def receive(self, data: str | bytes) -> None:
        self.handlers["message"](data)

    def control_sent(self) -> list[dict[str, Any]]:
        return [json.loads(m) for m in self.sent]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(host_connection.time, "monotonic", c)
    return c


async def _connection(limits: dict[str, RateLimit]) -> tuple[HostConnection, FakeChannel, FakeChannel]:
    dispatched: list[wire.Request] = []

    async def dispatch(request: wire.Request) -> wire.Result:
        dispatched.append(request)
        return wire.Result(request.id, {"ok": True})

    poses: list[object] = []
    runtime = SimpleNamespace(
        render_loop=SimpleNamespace(request_keyframe=lambda: None, submit_pose=poses.append,
                                    set_network_queue=lambda seconds: None,
                                    client_sends_poses=lambda: None),
        control=SimpleNamespace(dispatch=dispatch))
    pc = RTCPeerConnection()
    conn = HostConnection(runtime, pc, on_closed=lambda c: None, rate_limits=limits)  # type: ignore[arg-type]
    control, pose = FakeChannel("control", 3), FakeChannel("pose", 1)
    conn._on_datachannel(control)
    conn._on_datachannel(pose)
    return conn, control, pose


LIMIT = RateLimit(per_second=10, burst=5)
RATE_KIND = "message dropped: over the rate limit of 10 messages/s (burst 5)"


async def test_over_the_burst_messages_are_dropped_counted_and_reported_once(clock: Clock) -> None:
    conn, control, pose = await _connection({"control": LIMIT, "pose": LIMIT})
    try:
        ping = wire.encode(wire.Event("ping", {}))
        for _ in range(5 + 7):
            control.receive(ping)
        assert conn.bad.counts == {"control: message dropped: over the rate limit of": 7}
        events = [m for m in control.control_sent() if m.get("event") == "bad_message"]
        assert [e["data"] for e in events] == [{"channel": "control", "message": RATE_KIND}]
        # the bucket refills at the rate: 0.25 s later two more pass, the third does not
        clock.now += 0.25
        for _ in range(3):
            control.receive(ping)
        assert conn.bad.counts["control: message dropped: over the rate limit of"] == 8
        # never more than the burst, however long the channel was quiet
        clock.now += 3600
        for _ in range(6):
            control.receive(ping)
        assert conn.bad.counts["control: message dropped: over the rate limit of"] == 9
        # each channel has its own bucket; pose drops are their own kind, reported once too
        for _ in range(7):
            pose.receive(b"\x00")  # dropped for the rate before it is even decoded
        assert conn.bad.counts["pose: message dropped: over the rate limit of"] == 2
        assert not conn._closed
    finally:
        await conn.pc.close()


async def test_a_request_over_the_limit_is_refused_not_run(clock: Clock) -> None:
    conn, control, _pose = await _connection({"control": LIMIT})
    try:
        for i in range(5):
            control.receive(wire.encode(wire.Event("ping", {"i": i})))
        control.receive(wire.encode(wire.Request(41, "get_stats", {})))
        control.receive(wire.encode(wire.Event("ping", {})))  # an event: nobody waits, no answer
        control.receive('{"v":1,"method":"x"}')  # looks like a request but is not valid: no answer
        errors = [m for m in control.control_sent() if "error" in m]
        assert errors == [{"v": 1, "id": 41, "error": {
            "code": "RateLimited",
            "message": "over the control channel's limit of 10 messages/s (burst 5); get_stats was not run, "
                       "try again later"}}]
        assert conn.bad.counts == {"control: message dropped: over the rate limit of": 3}
        # the answers to refused requests are limited too: after the burst, requests go unanswered
        for i in range(10):
            control.receive(wire.encode(wire.Request(100 + i, "get_stats", {})))
        refused = [m["id"] for m in control.control_sent() if "error" in m]
        assert refused == [41, 100, 101, 102, 103]
    finally:
        await conn.pc.close()


def test_the_default_limits() -> None:
    limits = host_connection.RATE_LIMITS
    assert set(limits) == {"pose", "input", "control", "frames"}
    assert limits["pose"] == RateLimit(1000, 1000) and limits["input"] == RateLimit(1000, 1000)
    assert limits["control"] == RateLimit(200, 400)
    assert limits["frames"] == RateLimit(100, 100)  # network_feedback: ten a second
