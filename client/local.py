"""Finding the local session service and its account (what ``farview serve`` wrote).

The data directory is ``$FARVIEW_DATA_DIR`` or ``~/.local/share/farview``. While the service runs
it holds ``service.json`` (``{"url", "pid", "cert", ...}``); ``account.json`` (mode 0600)
holds ``{"account_id", "account_key"}`` when the service created a local account.
Pure file reads; no network.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from client.errors import ServerError

SERVICE_FILE = "service.json"
ACCOUNT_FILE = "account.json"


def data_dir() -> Path:
    env = os.environ.get("FARVIEW_DATA_DIR")
    return Path(env) if env else Path.home() / ".local" / "share" / "farview"


@dataclass(frozen=True)
class LocalService:
    url: str
    """Base URL, e.g. ``http://127.0.0.1:8400``."""
    pid: int | None
    cert: str | None
    """The self-signed certificate to trust for https, if the service made one."""
    account_id: str | None
    account_key: str | None = field(repr=False)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ServerError(f"cannot read {path}: {exc}") from None
    return raw if isinstance(raw, dict) else None


def find_local_service(directory: Path | None = None) -> LocalService:
    """Read ``service.json`` and ``account.json``; raise :class:`ServerError` if not running."""
    base = directory or data_dir()
    info = _read_json(base / SERVICE_FILE)
    if info is None or "url" not in info:
        raise ServerError(f"no local farview service found ({base / SERVICE_FILE} is missing); "
                          "start one with `farview serve`, or give --url")
    account = _read_json(base / ACCOUNT_FILE) or {}
    return LocalService(url=str(info["url"]), pid=info.get("pid"), cert=info.get("cert"),
                        account_id=account.get("account_id"),
                        account_key=account.get("account_key"))
