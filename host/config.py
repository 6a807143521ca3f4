"""The render host's start-up configuration.

The session service starts ``farview host`` and writes one JSON line to its stdin (secrets never
go on the command line, where ``ps`` shows them)::

    {"session_id": "...", "account_id": "...", "token_key": "<hex>", "models": ["..."]}

The host binds ``--bind``:``--port`` (0 = any free port) and prints exactly one JSON line to
stdout once its HTTP server listens: ``{"event": "listening", "host": "127.0.0.1", "port": N}``.
Everything else it says goes to stderr (logging).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, kw_only=True)
class HostConfig:
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
