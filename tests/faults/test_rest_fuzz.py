"""REST fuzzing (short run): hypothesis-generated requests to every route of a real service with
two accounts, valid and invalid ids, bodies, versions, headers and credentials. No 5xx, every
answer matches the service's OpenAPI document or ARR's error contract, and no record is lost or
corrupted (the store before and after, and the API's list against the store).

The long run is ``benchmarks/bench_rest_fuzz.py``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import httpx
import pytest
from hypothesis import HealthCheck, given, seed, settings

from tests.faults.conftest import ACCOUNT_B
from tests.faults.restfuzz import (
    API_VERSION,
    Accounts,
    FuzzRequest,
    RestChecker,
    compare_snapshots,
    list_all,
    requests,
    snapshot,
)
from tests.service.conftest import RunningService, insert_record

pytestmark = pytest.mark.slow

EXAMPLES = 500


def _accounts(svc: RunningService, key_b: str) -> Accounts:
    signing_key = (svc.data_dir / "token-signing-key.pem").read_text()
    return Accounts(svc.account_id, svc.account_key, ACCOUNT_B, key_b, signing_key)


def test_rest_fuzz_no_5xx_schema_and_records_intact(accounts_service: tuple[RunningService, str],
                                                    figure: Callable[[str, object], None]) -> None:
    svc, key_b = accounts_service
    accounts = _accounts(svc, key_b)
    # records that exist before the fuzz: terminal ones for both accounts, and a live session
    for i in range(5):
        insert_record(svc, f"old-{i}", status=("Stopped", "Expired", "Error")[i % 3])
        insert_record(svc, f"old-b-{i}", account_id=ACCOUNT_B)
    with httpx.Client(base_url=svc.url, timeout=60) as http:
        auth = {"Authorization": f"Bearer {svc.account_key}"}
        r = http.put(f"/accounts/{svc.account_id}/sessions/live-1", params={"api-version": API_VERSION},
                     json={"maxLeaseTimeMinutes": 600, "size": "Standard"}, headers=auth)
        assert r.status_code == 201, r.text
        openapi = http.get("/openapi.json", headers=auth).json()
    before = snapshot(svc.data_dir / "sessions.db")
    checker = RestChecker(svc.url, accounts, openapi)

    @seed(8)
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(requests(accounts))
    def fuzz(req: FuzzRequest) -> None:
        checker.send(req)
        for sid in checker.legacy_created:  # bound the number of live render hosts
            checker.client.delete(f"/v1/accounts/{svc.account_id}/sessions/{sid}", headers=auth)
        checker.legacy_created.clear()

    started = time.monotonic()
    try:
        fuzz()
    finally:
        checker.close()
    elapsed = time.monotonic() - started
    after = snapshot(svc.data_dir / "sessions.db")
    problems = compare_snapshots(before, after, checker.created)
    assert not problems, problems
    with httpx.Client(base_url=svc.url, timeout=60) as http:
        for account, key in ((svc.account_id, svc.account_key), (ACCOUNT_B, key_b)):
            listed = {s["id"]: s for s in list_all(http, account, key)}
            stored = {sid: row for (acc, sid), row in after.items() if acc == account}
            assert set(listed) == set(stored), f"list and store differ for {account}"
            for sid, row in stored.items():
                if row["status"] in ("Stopped", "Expired", "Error"):
                    assert listed[sid]["status"] == row["status"]
        # the service still works normally afterwards
        with contextlib.suppress(httpx.HTTPError):
            http.post(f"/accounts/{svc.account_id}/sessions/live-1/:stop", params={"api-version": API_VERSION},
                      headers={"Authorization": f"Bearer {svc.account_key}"})
    figure("rest_fuzz_cases", checker.tried)
    figure("rest_fuzz_statuses", dict(sorted(checker.statuses.items())))
    figure("rest_fuzz_records_before_after", f"{len(before)} → {len(after)}, lost 0")
    figure("rest_fuzz_seconds", round(elapsed, 1))
    assert checker.tried >= EXAMPLES // 2
