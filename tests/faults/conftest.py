"""Fixtures for the fault, fuzz, load and security tests: a real session service with two
accounts (``--config`` accounts file), real render hosts, and a way to report figures.

``two_account_service(data_dir)`` starts ``farview serve`` with accounts ``acct-a`` and
``acct-b``; the returned :class:`~tests.service.conftest.RunningService` acts as ``acct-a``
and :data:`OTHER` holds ``acct-b``'s credentials. The service ignores ``account.json`` when
accounts are configured; the helper writes one (0600) only so that ``launch_service`` finds the
first account's key.

``figure(name, value)`` prints a measured figure (run with ``-s`` to see them) and records it as
a junit property; ``docs/reliability.md`` quotes them.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from farview.service.auth import write_private
from tests.service.conftest import RunningService, launch_service

ACCOUNT_A = "acct-a"
ACCOUNT_B = "acct-b"


def two_account_service(data_dir: Path, *extra: str, env: dict[str, str] | None = None
                        ) -> tuple[RunningService, str]:
    """Start a service with two accounts (``env`` added to its environment and its hosts');
    returns (service as acct-a, acct-b's key)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir.parent / f"{data_dir.name}-accounts.json"
    key_a, key_b = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    if config.exists():  # a restart keeps the same accounts
        raw = json.loads(config.read_text())
        key_a, key_b = raw["accounts"][0]["key"], raw["accounts"][1]["key"]
    else:
        write_private(config, json.dumps({"accounts": [{"id": ACCOUNT_A, "key": key_a},
                                                       {"id": ACCOUNT_B, "key": key_b}]}).encode())
    write_private(data_dir / "account.json", json.dumps({"account_id": ACCOUNT_A,
                                                         "account_key": key_a}).encode())
    return launch_service(data_dir, "--config", str(config), *extra, env=env), key_b


@pytest.fixture
def figure(record_property: Callable[[str, object], None]) -> Callable[[str, object], None]:
    def report(name: str, value: object) -> None:
        print(f"\nFIGURE {name}: {value}")
        record_property(name, value)

    return report


@pytest.fixture(scope="module")
def accounts_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningService, str]]:
    svc, key_b = two_account_service(tmp_path_factory.mktemp("svc") / "data")
    try:
        yield svc, key_b
    finally:
        svc.stop()
