"""Patch 5 (``_aiortc_patches.BoundedInboundStream``) on synthetic SCTP DATA chunks: the cases a
loopback connection does not produce on its own (fragments out of order, tiny fragments, a
stream filled with incomplete messages, FORWARD TSN). The receiver below calls the stream the
way aiortc's ``RTCSctpTransport._receive_data_chunk`` does, including the receive-window
bookkeeping, which must come back to where it started once nothing is buffered.

Loopback connections with real aiortc peers: ``test_aiortc_patches.py``.
"""

from __future__ import annotations

import random

import pytest
from aiortc.rtcsctptransport import (
    SCTP_DATA_FIRST_FRAG,
    SCTP_DATA_LAST_FRAG,
    SCTP_DATA_UNORDERED,
    USERDATA_MAX_LENGTH,
    DataChunk,
)

from farview.streaming._aiortc_patches import MIN_AVERAGE_FRAGMENT, BoundedInboundStream, ReassemblyGuard

CAP = 4000
WINDOW = 1 << 20


class Receiver:
    """One inbound stream fed like aiortc feeds it."""

    def __init__(self, cap: int = CAP, max_stream_buffer: int = 64 * CAP) -> None:
        self.guard = ReassemblyGuard(max_message=cap, max_stream_buffer=max_stream_buffer)
        self.reasons: list[str] = []
        self.guard.on_drop = lambda stream_id, reason: self.reasons.append(reason)
        self.window = WINDOW
        self.stream = BoundedInboundStream(self.guard, 1, self._freed)
        self.delivered: list[bytes] = []
        self.max_buffered = 0

    def _freed(self, size: int) -> None:
        self.window += size

    def feed(self, chunk: DataChunk) -> None:
        # RTCSctpTransport._receive_data_chunk, after its duplicate check
        self.stream.add_chunk(chunk)
        self.window -= len(chunk.user_data)
        held = sum(len(c.user_data) for c in self.stream.reassembly)
        assert self.stream.buffered == held
        self.max_buffered = max(self.max_buffered, held)
        for _stream_id, _protocol, data in self.stream.pop_messages():
            self.window += len(data)
            self.delivered.append(data)

    def forward_tsn(self, tsn: int) -> None:
        # RTCSctpTransport._receive_forward_tsn_chunk's pruning
        for _stream_id, _protocol, data in self.stream.pop_messages():
            self.window += len(data)
            self.delivered.append(data)
        self.window += self.stream.prune_chunks(tsn)

    def assert_empty(self) -> None:
        assert self.stream.reassembly == []
        assert self.stream.buffered == 0
        assert self.window == WINDOW, "bytes dropped were not given back to the receive window"


def fragments(payload: bytes, first_tsn: int, seq: int, *, ordered: bool = True,
              size: int = USERDATA_MAX_LENGTH) -> list[DataChunk]:
    """How aiortc's RTCSctpTransport._send cuts a message."""
    out = []
    pieces = [payload[i:i + size] for i in range(0, len(payload), size)] or [b"\x00"]
    for i, piece in enumerate(pieces):
        chunk = DataChunk()
        chunk.flags = (0 if ordered else SCTP_DATA_UNORDERED) \
            | (SCTP_DATA_FIRST_FRAG if i == 0 else 0) | (SCTP_DATA_LAST_FRAG if i == len(pieces) - 1 else 0)
        chunk.tsn = (first_tsn + i) % 2**32
        chunk.stream_id = 1
        chunk.stream_seq = seq if ordered else 0
        chunk.protocol = 53
        chunk.user_data = piece
        out.append(chunk)
    return out


def payload(index: int, size: int) -> bytes:
    return (index.to_bytes(4, "big") * (size // 4 + 1))[:size]


def test_at_the_cap_arrives_one_byte_over_does_not() -> None:
    rx = Receiver()
    tsn = 100
    for i, size in enumerate([CAP, CAP + 1, 10]):
        for chunk in fragments(payload(i, size), tsn, i):
            rx.feed(chunk)
            tsn += 1
    assert rx.delivered == [payload(0, CAP), payload(2, 10)]
    assert rx.guard.messages_dropped == 1 and len(rx.reasons) == 1
    assert rx.reasons[0] == f"message dropped during reassembly: larger than {CAP} bytes"
    assert rx.max_buffered <= CAP
    assert rx.stream.sequence_number == 3
    rx.assert_empty()


@pytest.mark.parametrize("ordered", [True, False])
def test_a_huge_message_is_never_held_and_the_next_one_arrives(ordered: bool) -> None:
    rx = Receiver()
    big = fragments(payload(0, 1024 * 1024), 2**32 - 300, 0, ordered=ordered)  # TSNs wrap around
    after = fragments(payload(1, 3000), big[-1].tsn + 1, 1, ordered=ordered)
    for chunk in big + after:
        rx.feed(chunk)
    assert rx.delivered == [payload(1, 3000)]
    assert rx.max_buffered <= CAP
    assert rx.guard.messages_dropped == 1
    assert rx.guard.fragments_dropped == len(big)
    assert rx.guard.bytes_dropped == 1024 * 1024
    rx.assert_empty()


def test_tiny_fragments_are_capped_by_count() -> None:
    rx = Receiver()
    limit = rx.guard.max_fragments
    assert limit == CAP // MIN_AVERAGE_FRAGMENT + 1
    small_pieces = fragments(payload(0, 2 * limit), 1, 0, size=1)  # under the byte cap
    ok = fragments(payload(1, limit), 1 + len(small_pieces), 1, size=1)  # exactly `limit` fragments
    for chunk in small_pieces + ok:
        rx.feed(chunk)
    assert rx.delivered == [payload(1, limit)]
    assert rx.reasons == [f"message dropped during reassembly: in more fragments than {limit}"]
    assert len(rx.stream.reassembly) == 0
    rx.assert_empty()


@pytest.mark.parametrize("ordered", [True, False])
@pytest.mark.parametrize("seed", range(40))
def test_fragments_in_any_order(ordered: bool, seed: int) -> None:
    """Messages around the cap, fragments shuffled within a window (a reliable stream: all
    arrive): exactly the ones within the cap are delivered (in order when ordered), nothing
    stays buffered, and the receive window is whole again."""
    rng = random.Random(seed)
    rx = Receiver()
    sizes = [rng.choice([10, 900, CAP - 1, CAP, CAP + 1, 2 * CAP, 9 * CAP]) for _ in range(12)]
    chunks: list[DataChunk] = []
    tsn = rng.randrange(2**32)
    for i, size in enumerate(sizes):
        frag = rng.choice([USERDATA_MAX_LENGTH, 500])
        message = fragments(payload(i, size), tsn, i, ordered=ordered, size=frag)
        chunks += message
        tsn = (tsn + len(message)) % 2**32
    window = rng.choice([2, 5, 30])
    order = sorted(range(len(chunks)), key=lambda i: i + rng.uniform(0, window))
    for i in order:
        rx.feed(chunks[i])
    expected = [payload(i, size) for i, size in enumerate(sizes) if size <= CAP]
    if ordered:
        assert rx.delivered == expected
    else:
        assert sorted(rx.delivered) == sorted(expected)
    assert rx.guard.messages_dropped == len(rx.reasons) == sum(size > CAP for size in sizes)
    assert rx.stream._discarding == []
    rx.assert_empty()


def test_a_stream_full_of_incomplete_messages_is_bounded() -> None:
    """Unordered first fragments that never get their last one: aiortc would keep them all."""
    rx = Receiver(max_stream_buffer=20 * CAP)
    tsn = 1
    for i in range(200):
        chunk = fragments(payload(i, 3000), tsn, 0, ordered=False)[0]  # first of three
        rx.feed(chunk)
        tsn += 3  # the rest never comes
    assert rx.max_buffered <= 20 * CAP
    assert any(r.startswith("fragment dropped: stream buffer over") for r in rx.reasons)
    # a complete message still gets through once the peer's FORWARD TSN prunes the rest
    rx.forward_tsn(tsn - 1)
    for chunk in fragments(payload(999, 2000), tsn, 0, ordered=False):
        rx.feed(chunk)
    assert rx.delivered == [payload(999, 2000)]
    rx.assert_empty()


def test_forward_tsn_forgets_a_dropped_message() -> None:
    """An unreliable stream: the rest of a dropped message is abandoned by the sender."""
    rx = Receiver()
    big = fragments(payload(0, 3 * CAP), 10, 0, ordered=False)
    for chunk in big[:6]:
        rx.feed(chunk)
    assert rx.guard.messages_dropped == 1 and rx.stream._discarding
    rx.forward_tsn(big[-1].tsn)
    assert rx.stream._discarding == []
    for chunk in fragments(payload(1, 100), big[-1].tsn + 1, 0, ordered=False):
        rx.feed(chunk)
    assert rx.delivered == [payload(1, 100)]
    rx.assert_empty()
