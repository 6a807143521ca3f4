"""The SQLite store survives a failing COMMIT (disk full, I/O error): the failed change is gone,
every committed record is intact, and the next write works (a real SQLite file; the fault is
injected at the sqlite3 layer, where a full disk would raise it)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from farview.service.store import STOPPED, SessionRecord, SessionStore


class _FailingCommits(sqlite3.Connection):
    """A real connection whose next ``COMMIT`` fails once, as SQLite does on a full disk."""

    fail_next = False

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql == "COMMIT" and _FailingCommits.fail_next:
            _FailingCommits.fail_next = False
            raise sqlite3.OperationalError("database or disk is full")
        return super().execute(sql, *args)


def _record(session_id: str) -> SessionRecord:
    return SessionRecord(account_id="acct", session_id=session_id, status="Starting", size="Standard",
                         max_lease_minutes=10, created_at=1.0)


def test_a_failed_commit_is_rolled_back_and_the_store_keeps_working(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "sessions.db", connection_class=_FailingCommits)
    store.insert_if_absent(_record("a"))
    before = store.get("acct", "a")

    _FailingCommits.fail_next = True
    with pytest.raises(sqlite3.OperationalError, match="disk is full"):
        store.update("acct", "a", status=STOPPED, ended_at=2.0)
    assert store.get("acct", "a") == before  # the failed change is not there

    # the next transactions work (before the fix: "cannot start a transaction within a transaction")
    store.insert_if_absent(_record("b"))
    updated = store.update("acct", "a", status=STOPPED, ended_at=3.0)
    assert updated is not None and updated.status == STOPPED
    _FailingCommits.fail_next = True
    with pytest.raises(sqlite3.OperationalError):
        store.insert_if_absent(_record("c"))
    assert store.get("acct", "c") is None
    assert [r.session_id for r in store.list_sessions("acct")] == ["a", "b"]
    store.close()

    reopened = SessionStore(tmp_path / "sessions.db")  # and all of it is on disk
    assert [(r.session_id, r.status) for r in reopened.list_sessions("acct")] == [("a", STOPPED), ("b", "Starting")]
    reopened.close()
