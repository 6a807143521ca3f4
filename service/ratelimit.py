"""Per-account rate limits, answered as ARR answered them: ``429 Too Many Requests`` with a
``Retry-After`` header (whole seconds) and ARR's error body.

Two budgets per account, each a token bucket: **creates** (``PUT`` a new session, the legacy
create) and **reads** (``GET`` a session or the list: what a client polls). Defaults are
:data:`DEFAULT_CREATES_PER_MINUTE` and :data:`DEFAULT_READS_PER_SECOND`; a bucket holds one
minute's creates or two seconds' reads, so bursts pass and only a sustained flood waits.
Settings: ``creates_per_minute`` / ``reads_per_second`` (``--config``, ``FARVIEW_*``; 0 turns a
limit off). Runs on the service's event loop only (no lock).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from farview.service.errors import ApiError

DEFAULT_CREATES_PER_MINUTE = 30.0
DEFAULT_READS_PER_SECOND = 50.0

Kind = Literal["create", "read"]


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    def __init__(self, *, creates_per_minute: float = DEFAULT_CREATES_PER_MINUTE,
                 reads_per_second: float = DEFAULT_READS_PER_SECOND,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if creates_per_minute < 0 or reads_per_second < 0:
            raise ValueError("rate limits must be >= 0 (0 turns a limit off)")
        # (tokens per second, bucket size) per kind
        self._rates: dict[str, tuple[float, float]] = {
            "create": (creates_per_minute / 60.0, max(1.0, creates_per_minute)),
            "read": (reads_per_second, max(1.0, 2.0 * reads_per_second)),
        }
        self._clock = clock
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def check(self, account_id: str, kind: Kind) -> None:
        """Take one request from ``account_id``'s ``kind`` budget, or raise a 429 ApiError whose
        ``Retry-After`` says when the next one fits."""
        rate, size = self._rates[kind]
        if rate == 0:
            return
        now = self._clock()
        bucket = self._buckets.setdefault((account_id, kind), _Bucket(size, now))
        bucket.tokens = min(size, bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return
        retry_after = max(1, math.ceil((1.0 - bucket.tokens) / rate))
        # (conversions share the budgets: a conversion's 429 said "session creates")
        what = ("creates (sessions and conversions)" if kind == "create"
                else "reads (sessions and conversions)")
        limit = (f"{rate * 60:g} a minute" if kind == "create" else f"{rate:g} a second")
        raise ApiError(429, "TooManyRequests",
                       f"too many {what} for this account (the limit is {limit}); retry after "
                       f"{retry_after} s", headers={"Retry-After": str(retry_after)})
