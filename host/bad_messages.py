"""Counting malformed messages from a peer: each kind is counted always and logged once."""

from __future__ import annotations

import logging
from collections import Counter

log = logging.getLogger(__name__)


class BadMessageCounter:
    """Counts bad messages per (channel, reason kind); logs the first of each kind."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def record(self, channel: str, reason: str) -> bool:
        """Count one; returns True when it is the first of its kind (the caller may report it)."""
        kind = f"{channel}: {_kind_of(reason)}"
        self.counts[kind] += 1
        first = self.counts[kind] == 1
        if first:
            log.warning("bad message on %s channel (%s); further ones of this kind are counted, not logged",
                        channel, reason)
        return first

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _kind_of(reason: str) -> str:
    """Group messages by their reason text up to the first digit (sizes and values vary)."""
    out = []
    for ch in reason:
        if ch.isdigit():
            break
        out.append(ch)
    return "".join(out).strip()[:80] or reason[:80]
