"""The launch contract between the session service, its render hosts and local clients.

Defined once, here, in pure code that pulls in neither side's dependencies:

- the service starts a host as ``python -m farview.host`` (:data:`HOST_MODULE`) and writes one
  JSON line, a :class:`HostConfig`, to its stdin (secrets never go on the command line, where
  ``ps`` shows them); it keeps stdin open and may write one more line,
  :func:`stopping_line`, to say why the host is about to be stopped;
- the host binds ``--bind``:``--port`` (0 = any free port) and prints exactly one line on
  stdout once its HTTP server listens, :func:`listening_line`; everything else it says goes to
  stderr (logging);
- access tokens are JWTs for the audience :data:`TOKEN_AUDIENCE`;
- ``farview demo`` and ``farview bench`` start a local service as ``python -m farview.service``
  (:data:`SERVICE_MODULE`); in its data directory (:func:`default_data_dir`) the service writes
  :data:`SERVICE_FILE` while it runs and :data:`ACCOUNT_FILE` (mode 0600) for a local account.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST_MODULE = "farview.host"
"""``python -m`` target that runs one render host."""
SERVICE_MODULE = "farview.service"
"""``python -m`` target that runs the session service."""
TOKEN_AUDIENCE = "farview"
"""The ``aud`` claim of every access token the service issues and hosts accept."""
SERVICE_FILE = "service.json"
"""In the data directory while the service runs: ``{"url", "pid", "cert", ...}``."""
ACCOUNT_FILE = "account.json"
"""In the data directory (mode 0600) when the service made a local account:
``{"account_id", "account_key"}``."""
DATA_DIR_ENV = "FARVIEW_DATA_DIR"


def default_data_dir() -> Path:
    """``$FARVIEW_DATA_DIR`` or ``~/.local/share/farview``."""
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env) if env else Path.home() / ".local" / "share" / "farview"


@dataclass(frozen=True, kw_only=True)
class HostConfig:
    """What a render host is told on its stdin when it starts."""

    session_id: str
    """The session this host serves."""
    account_id: str
    """Only access tokens issued to this account may use the host."""
    token_key: bytes = field(repr=False)
    """HS256 key the session service signs access tokens with."""
    models: tuple[str, ...] = ()
    """Models to load as soon as the host is up (names, paths or URLs)."""

    @classmethod
    def from_json(cls, line: str) -> HostConfig:
        try:
            raw: Any = json.loads(line)
            return cls(
                session_id=str(raw["session_id"]),
                account_id=str(raw["account_id"]),
                token_key=bytes.fromhex(raw["token_key"]),
                models=tuple(str(m) for m in raw.get("models", ())),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"host configuration on stdin is invalid: {exc}") from None

    def to_json(self) -> str:
        return json.dumps({
            "session_id": self.session_id,
            "account_id": self.account_id,
            "token_key": self.token_key.hex(),
            "models": list(self.models),
        })


def listening_line(host: str, port: int) -> str:
    """The host's one stdout line once it listens."""
    return json.dumps({"event": "listening", "host": host, "port": port})


def parse_listening(line: str | bytes) -> tuple[str, int]:
    """``(host, port)`` from :func:`listening_line`; ValueError naming what came instead."""
    try:
        event = json.loads(line)
        if event.get("event") == "listening":
            return str(event["host"]), int(event["port"])
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    text = line.decode(errors="replace") if isinstance(line, bytes) else line
    raise ValueError(f"the render host said {text[:200]!r} instead of listening")


def stopping_line(reason: str) -> str:
    """The service's second stdin line: why the host is about to be stopped."""
    return json.dumps({"event": "stopping", "reason": reason})


def parse_stopping(line: str) -> str | None:
    """The reason in a :func:`stopping_line`, or None for any other line."""
    try:
        msg = json.loads(line)
    except ValueError:
        return None
    if isinstance(msg, dict) and msg.get("event") == "stopping":
        return str(msg.get("reason", ""))
    return None
