"""Session records in SQLite: the service's only durable state.

One file, ``<data-dir>/sessions.db``, in WAL mode. A record is keyed by (account id, session id);
``seq`` orders the list and is the paging cursor. Times are Unix seconds (floats, wall clock).

Durability: ``synchronous=FULL``: a commit is on disk (the WAL is synced) before the call
returns, so a power loss cannot take back a session the API already answered for. A
transaction whose ``COMMIT`` fails (disk full, I/O error) is rolled back before the error goes
up: the store stays usable and the record keeps its last committed state.

Concurrency: one connection guarded by a ``threading.Lock``; every mutation is one transaction.
The service calls the store from worker threads (``asyncio.to_thread``), so a slow disk or an
outside lock (up to ``busy_timeout``) never stalls its event loop. Callers that need
read-modify-write atomicity across awaits (create) hold their own asyncio lock as well.

Invariants: ``status`` is one of :data:`STATUSES`; terminal records have ``ended_at`` set;
``ready_at`` is set iff the session ever became Ready.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

STARTING, READY, STOPPED, EXPIRED, ERROR = "Starting", "Ready", "Stopped", "Expired", "Error"
STATUSES = (STARTING, READY, STOPPED, EXPIRED, ERROR)
TERMINAL = frozenset({STOPPED, EXPIRED, ERROR})
DB_FILE = "sessions.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    status TEXT NOT NULL,
    size TEXT NOT NULL,
    max_lease_minutes INTEGER NOT NULL,
    created_at REAL NOT NULL,
    ready_at REAL,
    ended_at REAL,
    hostname TEXT,
    handshake_port INTEGER,
    inspector_port INTEGER,
    host_pid INTEGER,
    error_code TEXT,
    error_message TEXT,
    models TEXT NOT NULL DEFAULT '[]',
    model_status TEXT NOT NULL DEFAULT '[]',
    UNIQUE (account_id, session_id)
);
CREATE INDEX IF NOT EXISTS sessions_status ON sessions (status);
CREATE TABLE IF NOT EXISTS service_state (
    key TEXT PRIMARY KEY,
    value REAL NOT NULL
);
"""


def open_db(path: Path, schema: str,
            connection_class: type[sqlite3.Connection] = sqlite3.Connection) -> sqlite3.Connection:
    """The service's SQLite file (WAL, synced commits, a 5 s busy wait) with ``schema``
    applied; shared by every table's store."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None,
                         factory=connection_class)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA busy_timeout=5000")
    db.executescript(schema)
    return db


@contextmanager
def transaction(db: sqlite3.Connection, lock: threading.Lock) -> Iterator[sqlite3.Connection]:
    """One ``BEGIN IMMEDIATE`` … ``COMMIT`` under ``lock``, rolled back on any failure."""
    with lock:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            # also when COMMIT itself failed: left open, the transaction would make every
            # later BEGIN fail ("cannot start a transaction within a transaction")
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise


@dataclass(frozen=True, kw_only=True)
class SessionRecord:
    account_id: str
    session_id: str
    status: str
    size: str
    """``Standard`` or ``Premium``."""
    max_lease_minutes: int
    """Lease length in lease units (minutes unless the service shortens the unit)."""
    created_at: float
    ready_at: float | None = None
    """When the host first answered its health check; the lease counts from here."""
    ended_at: float | None = None
    """When the session became Stopped, Expired or Error."""
    hostname: str | None = None
    handshake_port: int | None = None
    inspector_port: int | None = None
    host_pid: int | None = None
    """The render host's process id (diagnostics, restart clean-up, tests)."""
    error_code: str | None = None
    error_message: str | None = None
    models: tuple[str, ...] = ()
    model_status: tuple[dict[str, str], ...] = ()
    """The start-up models' loading states, as the host reported them
    (:class:`~farview.input.launch.ModelStatus` wire dicts)."""
    seq: int = 0

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown session status {self.status!r}")

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


_COLUMNS = ("seq", "account_id", "session_id", "status", "size", "max_lease_minutes",
            "created_at", "ready_at", "ended_at", "hostname", "handshake_port", "inspector_port",
            "host_pid", "error_code", "error_message", "models", "model_status")


def _row_to_record(row: tuple[Any, ...]) -> SessionRecord:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["models"] = tuple(json.loads(values["models"]))
    values["model_status"] = tuple(json.loads(values["model_status"]))
    return SessionRecord(**values)


class SessionStore:
    """SQLite-backed session records (the interface a PostgreSQL store would also implement)."""

    def __init__(self, path: Path, *, connection_class: type[sqlite3.Connection] = sqlite3.Connection
                 ) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = open_db(path, _SCHEMA, connection_class)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(sessions)")}
        if "model_status" not in columns:  # a store made before start-up models were reported
            self._db.execute("ALTER TABLE sessions ADD COLUMN model_status TEXT NOT NULL "
                             "DEFAULT '[]'")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self._db, self._lock)

    def get(self, account_id: str, session_id: str) -> SessionRecord | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM sessions WHERE account_id=? AND session_id=?",
                (account_id, session_id)).fetchone()
        return _row_to_record(row) if row else None

    def insert_if_absent(self, record: SessionRecord) -> tuple[SessionRecord, bool]:
        """Insert ``record`` unless the id exists; return (the stored record, inserted?)."""
        with self._tx() as db:
            row = db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM sessions WHERE account_id=? AND session_id=?",
                (record.account_id, record.session_id)).fetchone()
            if row:
                return _row_to_record(row), False
            cols = _COLUMNS[1:]
            values = [getattr(record, c) for c in cols]
            values[cols.index("models")] = json.dumps(list(record.models))
            values[cols.index("model_status")] = json.dumps(list(record.model_status))
            cur = db.execute(
                f"INSERT INTO sessions ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                values)
            return replace(record, seq=int(cur.lastrowid or 0)), True

    def update(self, account_id: str, session_id: str, *, only_if_status: frozenset[str] | None
               = None, **changes: Any) -> SessionRecord | None:
        """Apply ``changes``; with ``only_if_status``, only when the current status is in it.

        Returns the updated record, or None when absent or the status guard failed.
        """
        if not changes:
            return self.get(account_id, session_id)
        bad = set(changes) - set(_COLUMNS[1:])
        if bad:
            raise ValueError(f"unknown columns {sorted(bad)}")
        for column in ("models", "model_status"):
            if column in changes:
                changes[column] = json.dumps(list(changes[column]))
        sets = ", ".join(f"{c}=?" for c in changes)
        where = "account_id=? AND session_id=?"
        params: list[Any] = [*changes.values(), account_id, session_id]
        if only_if_status is not None:
            where += f" AND status IN ({', '.join('?' * len(only_if_status))})"
            params += sorted(only_if_status)
        with self._tx() as db:
            cur = db.execute(f"UPDATE sessions SET {sets} WHERE {where}", params)
            if cur.rowcount == 0:
                return None
            row = db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM sessions WHERE account_id=? AND session_id=?",
                (account_id, session_id)).fetchone()
        return _row_to_record(row)

    def list_sessions(self, account_id: str, *, after_seq: int = 0, limit: int = 100,
                      live_only: bool = False) -> list[SessionRecord]:
        """The account's sessions in creation order; ``live_only``: Starting and Ready ones
        (ARR's list)."""
        live = f" AND status IN ('{STARTING}', '{READY}')" if live_only else ""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM sessions WHERE account_id=? AND seq>?{live} "
                "ORDER BY seq LIMIT ?", (account_id, after_seq, limit)).fetchall()
        return [_row_to_record(r) for r in rows]

    def with_status(self, statuses: frozenset[str]) -> list[SessionRecord]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM sessions "
                f"WHERE status IN ({', '.join('?' * len(statuses))}) ORDER BY seq",
                sorted(statuses)).fetchall()
        return [_row_to_record(r) for r in rows]

    def set_alive(self, at: float) -> None:
        """Record that the service was alive at ``at`` (its heartbeat)."""
        with self._tx() as db:
            db.execute("INSERT INTO service_state (key, value) VALUES ('alive_at', ?) "
                       "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (at,))

    def alive_at(self) -> float | None:
        """When a service last recorded that it was alive (None: never)."""
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM service_state WHERE key='alive_at'").fetchone()
        return None if row is None else float(row[0])

    def purge(self, *, older_than: float) -> int:
        """Delete terminal records that ended before ``older_than``; return how many."""
        with self._tx() as db:
            cur = db.execute(
                f"DELETE FROM sessions WHERE status IN ({', '.join('?' * len(TERMINAL))}) "
                "AND ended_at IS NOT NULL AND ended_at < ?", (*sorted(TERMINAL), older_than))
            return cur.rowcount
