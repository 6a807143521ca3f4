"""Data-channel fuzzing while streaming: random, truncated, oversized, wrong-version and
wrong-type messages on every channel (``pose``, ``input``, ``control``, ``frames`` and an
unknown label), sent at a high rate from a real client to a real render host.

The host must keep streaming (the client keeps receiving and decoding frames during the flood
and a good pose afterwards still gets its frame), count every bad message by kind
(``get_stats``), log each kind exactly once (the host's stderr) and report it once to the client
(``bad_message`` event). Extends ``tests/stream/test_stream_e2e.py::test_bad_input_keeps_the_stream_alive``
(a handful of messages) to thousands, generated from a fixed seed.

The flood is faster than the host's per-channel rate limits (``host/connection.py``
``RATE_LIMITS``) allow on ``control``: every message is then counted either by what is wrong
with it or as over the rate limit. A second test floods ``control`` with valid messages only.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from farview.client.connection import RenderingConnection, connect_to_host
from farview.client.errors import RemoteError
from farview.host.bad_messages import _kind_of
from farview.input import control as wire
from farview.input.errors import ProtocolError
from farview.input.events import Action, EventKind, InputEvent
from farview.input.pose import Pose
from farview.streaming.peer import MAX_CHANNEL_MESSAGE
from tests.hosting import RunningHost, start_host

pytestmark = pytest.mark.slow

VIEWPORT = (320, 240)
SEED = 8
ROUNDS = 250
"""Each round sends one bad message per generator (9 kinds) and one good pose."""

Message = bytes | str

RATE_LIMITED = "message dropped: over the rate limit of"
"""The kind (``bad_messages`` key after the channel) of messages dropped for a rate limit."""
FLOOD = 3000
"""Valid ``ping`` events sent on ``control`` at once: far more than the limit's burst."""


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    running = start_host(tmp_path_factory.mktemp("fuzzhost"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
async def conn(host: RunningHost) -> AsyncIterator[RenderingConnection]:
    c = await connect_to_host(host.whep_url, host.token(), viewport=VIEWPORT, timeout=30)
    try:
        yield c
    finally:
        await c.close()


async def get_stats(conn: RenderingConnection) -> dict[str, object]:
    """``get_stats``, asked again while the host refuses it for the control rate limit."""
    for _ in range(40):
        try:
            stats: dict[str, object] = await conn.request("get_stats", timeout=20)
            return stats
        except RemoteError as exc:
            if exc.code != "RateLimited":
                raise
            await asyncio.sleep(0.25)
    raise AssertionError("get_stats was refused for the rate limit 40 times")


def split_counts(bad_messages: dict[str, int]) -> tuple[Counter[str], Counter[str]]:
    """Per channel: (bad messages by what is wrong with them, messages over the rate limit)."""
    bad: Counter[str] = Counter()
    limited: Counter[str] = Counter()
    for kind, n in bad_messages.items():
        channel, _, what = kind.partition(": ")
        (limited if what == RATE_LIMITED else bad)[channel] += n
    return bad, limited


async def frame_after_pose(conn: RenderingConnection, x: float) -> None:
    """Send a new pose and wait for the frame rendered with it (or a later one)."""
    after = conn.send_pose(Pose((x, 0.1, 1.6)), keyframe=True)  # a new pose: repeats are skipped
    deadline = time.monotonic() + 20
    while True:
        frame = await conn.next_frame(timeout=20)
        if frame.pose is not None and frame.pose.sequence >= after.sequence:
            return
        assert time.monotonic() < deadline, "no frame for the pose sent after the flood"


def _rejected(decode: Callable[[bytes], object], data: Message) -> bool:
    """True when the host must reject ``data`` (text on a binary channel, or a decode error)."""
    if isinstance(data, str):
        return True
    if len(data) > MAX_CHANNEL_MESSAGE:
        return True
    try:
        decode(data)
    except ProtocolError:
        return True
    return False


def bad_messages(rng: random.Random, good_pose: bytes, good_input: bytes) -> dict[str, list[Message]]:
    """One round of bad messages per channel, each certainly invalid for the host."""
    def rand_bytes(n: int) -> bytes:
        return bytes(rng.getrandbits(8) for _ in range(n))

    pose = [
        rand_bytes(rng.randint(0, 120)),                          # random
        good_pose[: rng.randint(0, len(good_pose) - 1)],          # truncated
        bytes([rng.randint(2, 255)]) + good_pose[1:],             # wrong version
        good_pose + rand_bytes(rng.randint(1, 40)),               # trailing garbage
        "a pose as text",                                          # wrong type
    ]
    inputs = [
        rand_bytes(rng.randint(0, 40)),
        good_input[: rng.randint(0, len(good_input) - 1)],
        bytes([rng.randint(2, 255)]) + good_input[1:],
        bytes([1, rng.randint(5, 255)]) + good_input[2:],         # unknown kind
        "text input",
    ]
    request = wire.encode(wire.Request(7, "ping", {}))
    control: list[Message] = [
        rand_bytes(rng.randint(1, 60)) + b"\xff",                  # not UTF-8 / not JSON
        request[: rng.randint(1, len(request) - 1)],              # truncated JSON
        json.dumps({"v": rng.randint(2, 99), "id": 1, "method": "ping"}),
        json.dumps([1, 2, 3]),                                     # not an object
        json.dumps({"v": 1, "id": 3, "result": {}}),               # a result from the client
    ]
    return {"pose": pose, "input": inputs, "control": control}


async def test_flood_of_bad_messages_on_every_channel_while_streaming(
        conn: RenderingConnection, host: RunningHost, figure: Callable[[str, object], None]) -> None:
    from farview.input.pose import PoseMessage

    rng = random.Random(SEED)
    log_start = len(host.log())  # other tests' connections to this host logged their own kinds
    await conn.next_frame(timeout=30)
    good = conn.send_pose(Pose((0.0, 0.1, 1.6)))
    good_pose = good.encode()
    good_input = InputEvent(EventKind.KEY, 1, 0, key=65, action=Action.PRESS).encode()
    evil = conn.pc.createDataChannel("evil")  # a label the host does not know (opens in-band)

    expected: Counter[str] = Counter()
    frames_before = conn.statistics().frames_received_total
    sent = 0
    started = time.monotonic()
    def control_from_client(data: bytes) -> object:
        msg = wire.decode(data)
        if not isinstance(msg, wire.Request | wire.Event):
            raise ProtocolError("the host takes only requests and events")
        return msg

    decoders: dict[str, Callable[[bytes], object]] = {
        "pose": PoseMessage.decode, "input": InputEvent.decode, "control": control_from_client}
    for i in range(ROUNDS):
        for label, messages in bad_messages(rng, good_pose, good_input).items():
            for data in messages:
                assert _rejected(decoders[label], data), (label, data)
                conn.send_raw(label, data)
                expected[label] += 1
                sent += 1
        conn.send_raw("frames", bytes(rng.getrandbits(8) for _ in range(16)))  # host → client only
        sent += 1
        if i % 50 == 0:  # oversized: one per channel now and then
            for label in ("pose", "input", "control"):
                conn.send_raw(label, b"{" + b"x" * (MAX_CHANNEL_MESSAGE + 10) + b"}")
                expected[label] += 1
                sent += 1
        if i % 10 == 0 and evil.readyState == "open":
            evil.send(b"hello")
            sent += 1
        conn.send_pose(Pose((0.1 * (i % 5 - 2), 0.1, 1.6)))
        await asyncio.sleep(0.01)  # let the loop run: the flood stays far above any real client's rate
    flood_seconds = time.monotonic() - started
    frames_during = conn.statistics().frames_received_total - frames_before

    await frame_after_pose(conn, 0.33)
    assert conn.is_connected

    # every bad message on the reliable channels is counted, by what is wrong with it or as
    # over the rate limit (which may also take a few of the client's heartbeats); the pose
    # channel is unreliable (maxRetransmits=0), so loopback may drop a few under this load
    deadline = time.monotonic() + 20
    while True:
        stats = await get_stats(conn)
        kinds = stats["bad_messages"]
        assert isinstance(kinds, dict)
        counted, limited = split_counts(kinds)
        if all(counted[label] + limited[label] >= expected[label] for label in ("input", "control")) \
                or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    for label in ("input", "control"):
        assert counted[label] <= expected[label] <= counted[label] + limited[label], (label, counted, limited, expected)
    assert counted["input"] + limited["input"] == expected["input"], (counted, limited, expected)
    assert counted["pose"] + limited["pose"] >= 0.5 * expected["pose"], (counted, limited, expected)
    assert counted["pose"] <= expected["pose"]
    assert counted["datachannel"] >= 1, "the unknown channel label was not counted"

    # each kind is logged exactly once, and every counted kind was logged
    logged: Counter[str] = Counter()
    for line in host.log()[log_start:].splitlines():
        m = re.search(r"bad message on (\w+) channel \((.*)\); further ones", line)
        if m:
            logged[f"{m.group(1)}: {_kind_of(m.group(2))}"] += 1
    assert logged, "no bad message was logged"
    assert max(logged.values()) == 1, f"a kind was logged more than once: {logged}"
    assert set(logged) == set(kinds), (set(logged) ^ set(kinds))
    reported = [d for name, d in conn.events if name == "bad_message"]
    assert len(reported) >= min(len(logged) - 1, 60)  # the unknown label has no control reply

    figure("channel_fuzz_messages", sent)
    figure("channel_fuzz_rate_per_s", round(sent / flood_seconds))
    figure("channel_fuzz_frames_during_flood", frames_during)
    figure("channel_fuzz_counted", dict(counted))
    figure("channel_fuzz_over_rate_limit", dict(limited))
    figure("channel_fuzz_kinds_logged_once", len(logged))
    assert frames_during >= 5, f"only {frames_during} frames arrived during the flood"


async def test_a_flood_of_valid_control_messages_is_rate_limited_not_fatal(
        conn: RenderingConnection, host: RunningHost, figure: Callable[[str, object], None]) -> None:
    """3,000 valid ``ping`` events at once: the host drops what is over the control channel's
    rate limit, counts it, reports it once, and keeps the connection and the stream."""
    await conn.next_frame(timeout=30)
    ping = wire.encode(wire.Event("ping", {}))
    for _ in range(FLOOD):
        conn.send_raw("control", ping)
    # A request behind the flood is answered or refused, never left without an answer (the
    # client's heartbeat is such a request: unanswered for 3 s, the client would hang up).
    try:
        await conn.request("get_stats", timeout=20)
    except RemoteError as exc:
        assert exc.code == "RateLimited", exc
        assert "get_stats was not run" in exc.message
    await frame_after_pose(conn, 0.21)
    assert conn.is_connected

    deadline = time.monotonic() + 20
    while True:
        stats = await get_stats(conn)
        kinds = stats["bad_messages"]
        assert isinstance(kinds, dict)
        counted, limited = split_counts(kinds)
        if limited["control"] > 0 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    figure("control_flood_dropped_over_rate_limit", limited["control"])
    assert 0 < limited["control"] < FLOOD, kinds
    # every message was valid: counted only as over the limit, on the control channel only
    assert counted["control"] == 0, kinds
    assert set(kinds) == {f"control: {RATE_LIMITED}"}, kinds
    reported = [d for name, d in conn.events if name == "bad_message"]
    assert len(reported) == 1, reported
    assert reported[0]["channel"] == "control" and reported[0]["message"].startswith(RATE_LIMITED)

    # the connection outlives the flood: frames still come after several heartbeats
    await asyncio.sleep(4)
    await frame_after_pose(conn, -0.21)
    assert conn.is_connected
