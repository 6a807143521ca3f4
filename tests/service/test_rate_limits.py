"""Per-account rate limits on a real service: 429 with Retry-After and ARR's error body (creates
and reads), other accounts unaffected, the client backs off while it waits (unit tests of the
bucket beside them)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from farview.client.errors import TooManyRequestsError
from farview.service.errors import ApiError
from farview.service.ratelimit import RateLimiter
from tests.service.conftest import RunningService

V = {"api-version": "2021-01-01"}


def test_the_bucket_lets_bursts_through_and_names_the_wait() -> None:
    now = [0.0]
    limiter = RateLimiter(creates_per_minute=6, reads_per_second=2, clock=lambda: now[0])
    for _ in range(4):  # a bucket of two seconds' reads
        limiter.check("a", "read")
    with pytest.raises(ApiError) as info:
        limiter.check("a", "read")
    assert info.value.status == 429 and info.value.code == "TooManyRequests"
    assert info.value.headers == {"Retry-After": "1"}
    limiter.check("b", "read")  # another account has its own budget
    now[0] += 0.5
    limiter.check("a", "read")  # refilled at 2/s
    for _ in range(6):
        limiter.check("a", "create")
    with pytest.raises(ApiError, match=r"the limit is 6 a minute\); retry after 10 s"):
        limiter.check("a", "create")
    RateLimiter(creates_per_minute=0, reads_per_second=0).check("a", "read")  # 0: no limit


@pytest.mark.slow
def test_a_service_answers_429_with_retry_after_and_the_client_backs_off(
        start_service: Callable[..., RunningService]) -> None:
    svc = start_service(env={"FARVIEW_READS_PER_SECOND": "2", "FARVIEW_CREATES_PER_MINUTE": "2"})
    with httpx.Client(base_url=svc.url, headers=svc.auth, timeout=30) as http:
        statuses = [http.get(f"/accounts/{svc.account_id}/sessions", params=V) for _ in range(8)]
        limited = [r for r in statuses if r.status_code == 429]
        assert limited and statuses[0].status_code == 200
        assert int(limited[0].headers["retry-after"]) >= 1
        assert limited[0].json()["error"]["code"] == "TooManyRequests"
        assert "retry after" in limited[0].json()["error"]["message"]
        body = {"maxLeaseTimeMinutes": 10, "size": "Standard"}
        creates = [http.put(f"/accounts/{svc.account_id}/sessions/rl-{i}", params=V, json=body)
                   for i in range(3)]
        assert [r.status_code for r in creates] == [201, 201, 429]
        time.sleep(1.5)
    with svc.client() as client:
        session = client.get_session("rl-0")
        # polls at 10/s against 2/s allowed: it must back off on 429 and still see Ready
        props = session.wait_until_ready(60, poll_interval=0.1)
        assert props.status == "Ready"
        with pytest.raises(TooManyRequestsError) as info:
            for _ in range(10):
                client.get_session("rl-0")
        assert info.value.retry_after >= 1
        client.stop_session("rl-0")
        client.stop_session("rl-1")
