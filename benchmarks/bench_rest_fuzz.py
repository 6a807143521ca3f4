"""Long REST fuzz run: the suite's fuzz (``tests/faults/restfuzz.py``) with many more cases,
against its own ``farview serve`` (two accounts, real render hosts, 1 s lease unit).

    python3 benchmarks/bench_rest_fuzz.py [--cases 5000] [--seed 1]

Prints how many cases it tried, the status codes seen, the store's record counts before and
after and any failure (a 5xx, a response that breaks the OpenAPI document or ARR's error
contract, a lost or corrupted record). Exit status 1 on a failure.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from hypothesis import HealthCheck, given, seed, settings

from tests.faults.conftest import ACCOUNT_B, two_account_service
from tests.faults.restfuzz import (
    API_VERSION,
    Accounts,
    FuzzFailure,
    FuzzRequest,
    RestChecker,
    compare_snapshots,
    list_all,
    requests,
    snapshot,
)
from tests.service.conftest import insert_record


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        svc, key_b = two_account_service(Path(tmp) / "data")
        try:
            return run(svc, key_b, args.cases, args.seed)
        finally:
            svc.stop()


def run(svc, key_b: str, cases: int, seed_value: int) -> int:  # type: ignore[no-untyped-def]
    signing_key = (svc.data_dir / "token-signing-key.pem").read_text()
    accounts = Accounts(svc.account_id, svc.account_key, ACCOUNT_B, key_b, signing_key)
    auth = {"Authorization": f"Bearer {svc.account_key}"}
    for i in range(20):
        insert_record(svc, f"old-{i}", status=("Stopped", "Expired", "Error")[i % 3])
        insert_record(svc, f"old-b-{i}", account_id=ACCOUNT_B)
    with httpx.Client(base_url=svc.url, timeout=60) as http:
        openapi = http.get("/openapi.json", headers=auth).json()
    before = snapshot(svc.data_dir / "sessions.db")
    checker = RestChecker(svc.url, accounts, openapi)
    failures: list[str] = []

    @seed(seed_value)
    @settings(max_examples=cases, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(requests(accounts))
    def fuzz(req: FuzzRequest) -> None:
        checker.send(req)
        for sid in checker.legacy_created:
            checker.client.delete(f"/v1/accounts/{svc.account_id}/sessions/{sid}", headers=auth)
        checker.legacy_created.clear()

    started = time.monotonic()
    try:
        fuzz()
    except FuzzFailure as exc:
        failures.append(str(exc))
    finally:
        checker.close()
    elapsed = time.monotonic() - started
    after = snapshot(svc.data_dir / "sessions.db")
    failures += compare_snapshots(before, after, checker.created)
    with httpx.Client(base_url=svc.url, timeout=60) as http:
        for account, key in ((svc.account_id, svc.account_key), (ACCOUNT_B, key_b)):
            listed = {s["id"] for s in list_all(http, account, key)}
            stored = {sid for (acc, sid) in after if acc == account}
            if listed != stored:
                failures.append(f"list and store differ for {account}: {listed ^ stored}")
        for sid in {sid for (acc, sid), row in after.items() if acc == svc.account_id
                    and row["status"] in ("Starting", "Ready")}:
            http.post(f"/accounts/{svc.account_id}/sessions/{sid}/:stop", params={"api-version": API_VERSION},
                      headers=auth)
    print(f"REST fuzz: {checker.tried} cases in {elapsed:.1f} s (seed {seed_value})")
    print(f"  statuses: {dict(sorted(checker.statuses.items()))}")
    print(f"  records: {len(before)} before, {len(after)} after, {len(checker.created)} created by the fuzz, "
          f"lost {sum('lost' in f for f in failures)}")
    print(f"  5xx: {sum(v for k, v in checker.statuses.items() if k >= 500)}")
    for failure in failures:
        print(f"  FAILURE: {failure}")
    print("verdict:", "FAIL" if failures else "ok")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
