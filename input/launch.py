"""The launch contract between the session service, its render hosts and local clients.

Defined once, here, in pure code that pulls in neither side's dependencies:

- the service starts a host as ``python -m farview.host`` (:data:`HOST_MODULE`) and writes one
  JSON line, a :class:`HostConfig`, to its stdin (secrets never go on the command line, where
  ``ps`` shows them); it keeps stdin open and may write one more line,
  :func:`stopping_line`, to say why the host is about to be stopped;
- the host binds ``--bind``:``--port`` (0 = any free port) and prints one line on stdout once
  its HTTP server listens, :func:`listening_line`; then it loads its start-up models (the host
  answers first: a slow load never delays Ready) and prints a :class:`ModelStatus` line
  (:func:`model_status_line`) as each one starts loading, loads or fails; everything else it
  says goes to stderr (logging);
- access tokens are JWTs for the audience :data:`TOKEN_AUDIENCE`;
- the service and ``farview convert`` run a conversion as ``python -m farview.host.convert
  --progress`` (:data:`CONVERT_MODULE`), which writes a :func:`conversion_progress_line` on
  stderr as each step goes on;
- ``farview demo`` and ``farview bench`` start a local service as ``python -m farview.service``
  (:data:`SERVICE_MODULE`); in its data directory (:func:`default_data_dir`) the service writes
  :data:`SERVICE_FILE` while it runs and :data:`ACCOUNT_FILE` (mode 0600) for a local account.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from farview.input.ice import MediaNetwork

HOST_MODULE = "farview.host"


def python_module(module: str) -> list[str]:
    """The command that runs ``python -m module`` as farview's child processes do: with ``-P``,
    so that the working directory is not put first on the module path (a ``resource.py`` in
    the folder ``farview serve`` was started from ran as every conversion's code)."""
    return [sys.executable, "-P", "-m", module]
"""``python -m`` target that runs one render host."""
SERVICE_MODULE = "farview.service"
CONVERT_MODULE = "farview.host.convert"
"""``python -m`` target that runs the session service."""
TOKEN_AUDIENCE = "farview"
"""The ``aud`` claim of every access token the service issues and hosts accept."""
TOKEN_ALGORITHM = "ES256"
"""Access tokens are signed with the service's private key (ECDSA P-256); hosts get only the
public key, so a compromised host (it parses untrusted files) cannot mint tokens."""
SERVICE_FILE = "service.json"
"""In the data directory while the service runs: ``{"url", "pid", "cert", ...}``."""
ACCOUNT_FILE = "account.json"
"""In the data directory (mode 0600) when the service made a local account:
``{"account_id", "account_key"}``."""
DATA_DIR_ENV = "FARVIEW_DATA_DIR"
MODEL_SOURCES = ("any", "store")
"""Model source policies (see :attr:`HostConfig.model_sources`)."""
SCENE_TRIANGLES: dict[str, int | None] = {"Standard": 20_000_000, "Premium": None}
"""Triangles a session's whole scene may hold, by session size, as ARR defined them (Standard:
20 million; Premium: bounded only by the machine)."""


def default_data_dir() -> Path:
    """``$FARVIEW_DATA_DIR`` or ``~/.local/share/farview``."""
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env) if env else Path.home() / ".local" / "share" / "farview"


DEFAULT_MIN_BITRATE = 500_000
DEFAULT_MAX_BITRATE = 8_000_000
SESSION_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}\Z")
"""A session id the service takes (ARR's rule): the service answers 400 to any other, and the
client refuses one before sending it."""
BITRATE_RANGE = (100_000, 200_000_000)
"""What ``--min-bitrate`` / ``--max-bitrate`` may be (bit/s)."""


def parse_bitrate(text: str) -> int:
    """A video bit rate in bit/s from ``3000000``, ``3M`` or ``500k``; ValueError saying what
    is wrong otherwise (or when it is outside :data:`BITRATE_RANGE`)."""
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:].lower(), 1)
    try:
        value = int(float(text[:-1] if scale > 1 else text) * scale)
    except ValueError:
        raise ValueError(f"bit rate must look like 3000000, 3M or 500k, got {text!r}") from None
    low, high = BITRATE_RANGE
    if not low <= value <= high:
        raise ValueError(f"bit rate {value} is outside {low}..{high} bit/s")
    return value


def bitrate_argument(text: str) -> int:
    """:func:`parse_bitrate` as an argparse ``type`` (``--max-bitrate`` and ``--min-bitrate``)."""
    import argparse

    try:
        return parse_bitrate(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def check_bitrates(min_bitrate: int, max_bitrate: int) -> None:
    """Raise ValueError naming what is wrong with a (min, max) video bit rate pair."""
    low, high = BITRATE_RANGE
    for name, v in (("min_bitrate", min_bitrate), ("max_bitrate", max_bitrate)):
        if not low <= v <= high:
            raise ValueError(f"{name} must be {low}..{high} bit/s, got {v}")
    if min_bitrate > max_bitrate:
        raise ValueError(f"min_bitrate {min_bitrate} is above max_bitrate {max_bitrate}")


@dataclass(frozen=True, kw_only=True)
class HostConfig:
    """What a render host is told on its stdin when it starts."""

    session_id: str
    """The session this host serves."""
    account_id: str
    """Only access tokens issued to this account may use the host."""
    token_public_key: str
    """PEM public key that verifies the service's access tokens (:data:`TOKEN_ALGORITHM`)."""
    models: tuple[str, ...] = ()
    """Models to load as soon as the host is up (names, paths or URLs)."""
    model_sources: str = "any"
    """Where models may come from: ``any`` (store names, host paths, any http(s) URL) or
    ``store`` (store names, and URLs on :attr:`model_url_hosts` only; no host paths, no
    redirects off the list, no proxies)."""
    model_url_hosts: tuple[str, ...] = ()
    """Host names URLs may name when ``model_sources`` is ``store``."""
    account_storage: str | None = None
    """The session's account's conversion storage (a folder on this machine): under the
    ``store`` policy its files may be loaded too, a conversion's ``outputAssetUri`` among them;
    no other account's, no other path."""
    media: MediaNetwork = field(default_factory=MediaNetwork)
    """Where the host's ICE candidates live (addresses, UDP port range, 1:1 NAT address)."""
    size: str = "Standard"
    """The session's size (ARR's): ``Standard`` bounds the scene's triangles
    (:data:`SCENE_TRIANGLES`), ``Premium`` only the machine does."""
    min_bitrate: int = DEFAULT_MIN_BITRATE
    """The least the stream's congestion control lowers the video bit rate to (bit/s)."""
    max_bitrate: int = DEFAULT_MAX_BITRATE
    """The video bit rate a stream starts at and never exceeds (bit/s); a client may ask for
    less (``configure_stream``), not more."""

    def __post_init__(self) -> None:
        if self.model_sources not in MODEL_SOURCES:
            raise ValueError(f"model sources must be one of {', '.join(MODEL_SOURCES)}, "
                             f"got {self.model_sources!r}")
        check_bitrates(self.min_bitrate, self.max_bitrate)
        if self.size not in SCENE_TRIANGLES:
            raise ValueError(f"session size must be one of {', '.join(SCENE_TRIANGLES)}, "
                             f"got {self.size!r}")

    @classmethod
    def from_json(cls, line: str) -> HostConfig:
        try:
            raw: Any = json.loads(line)
            return cls(
                session_id=str(raw["session_id"]),
                account_id=str(raw["account_id"]),
                token_public_key=str(raw["token_public_key"]),
                models=tuple(str(m) for m in raw.get("models", ())),
                size=str(raw.get("size", "Standard")),
                min_bitrate=int(raw.get("min_bitrate", DEFAULT_MIN_BITRATE)),
                max_bitrate=int(raw.get("max_bitrate", DEFAULT_MAX_BITRATE)),
                model_sources=str(raw.get("model_sources", "any")),
                model_url_hosts=tuple(str(h) for h in raw.get("model_url_hosts", ())),
                account_storage=str(raw["account_storage"]) if raw.get("account_storage") else None,
                media=MediaNetwork(
                    addresses=tuple(str(a) for a in raw.get("media_addresses", ())),
                    ports=(int(raw["media_ports"][0]), int(raw["media_ports"][1]))
                    if raw.get("media_ports") else None,
                    announced=str(raw["announced_address"]) if raw.get("announced_address") else None),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"host configuration on stdin is invalid: {exc}") from None

    def to_json(self) -> str:
        return json.dumps({
            "session_id": self.session_id,
            "account_id": self.account_id,
            "token_public_key": self.token_public_key,
            "models": list(self.models),
            "size": self.size,
            "model_sources": self.model_sources,
            "model_url_hosts": list(self.model_url_hosts),
            "account_storage": self.account_storage,
            "media_addresses": list(self.media.addresses),
            "media_ports": list(self.media.ports) if self.media.ports else None,
            "announced_address": self.media.announced,
            "min_bitrate": self.min_bitrate,
            "max_bitrate": self.max_bitrate,
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


MODEL_LOADING, MODEL_LOADED, MODEL_FAILED = "Loading", "Loaded", "Failed"
MODEL_STATUSES = (MODEL_LOADING, MODEL_LOADED, MODEL_FAILED)


@dataclass(frozen=True)
class ModelStatus:
    """Where one start-up model is: ``Loading``, ``Loaded`` or ``Failed`` (with the loader's
    error code and message). The host reports it on stdout, to its client (the
    ``get_model_status`` control method and ``model_status`` events) and the service shows it in
    the session's properties (``modelStatus``)."""

    source: str
    status: str
    code: str = ""
    message: str = ""

    def __post_init__(self) -> None:
        if self.status not in MODEL_STATUSES:
            raise ValueError(f"model status must be one of {', '.join(MODEL_STATUSES)}, "
                             f"got {self.status!r}")

    def to_wire(self) -> dict[str, str]:
        out = {"source": self.source, "status": self.status}
        if self.status == MODEL_FAILED:
            out.update(code=self.code, message=self.message)
        return out

    @classmethod
    def from_wire(cls, d: Any) -> ModelStatus:
        if not isinstance(d, dict):
            raise ValueError(f"a model status is an object, got {type(d).__name__}")
        return cls(str(d.get("source", "")), str(d.get("status", "")), str(d.get("code", "")),
                   str(d.get("message", "")))


def model_status_line(status: ModelStatus) -> str:
    """A host's stdout line about one start-up model."""
    return json.dumps({"event": "model_status", **status.to_wire()})


def parse_model_status(line: str | bytes) -> ModelStatus | None:
    """The status in a :func:`model_status_line`, or None for any other line."""
    try:
        event = json.loads(line)
        if isinstance(event, dict) and event.get("event") == "model_status":
            return ModelStatus.from_wire(event)
    except ValueError:
        pass
    return None


def conversion_progress_line(step: str, fraction: float) -> str:
    """A converter's stderr line: what it does now, and how much of the whole is done (0 to
    1)."""
    return json.dumps({"event": "conversion_progress", "step": step,
                       "fraction": round(fraction, 3)})


def parse_conversion_progress(line: str | bytes) -> tuple[str, float] | None:
    """(step, fraction) of a :func:`conversion_progress_line`, or None for any other line."""
    try:
        msg = json.loads(line)
        if isinstance(msg, dict) and msg.get("event") == "conversion_progress":
            step, fraction = msg["step"], float(msg["fraction"])
            if isinstance(step, str) and 0.0 <= fraction <= 1.0:
                return step[:100], fraction
    except (ValueError, KeyError, TypeError):
        pass
    return None


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


def lease_argument(text: str) -> int:
    """An argparse ``type`` for ``--lease``: whole minutes, 1 to 1,440 (ARR's 24 hours; a lease
    of 0 minutes ended the session as soon as it was Ready)."""
    import argparse

    try:
        minutes = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a lease is whole minutes, got {text!r}") from None
    if not 1 <= minutes <= 1440:
        raise argparse.ArgumentTypeError(f"a lease is 1 to 1440 minutes, got {minutes}")
    return minutes


def seconds_argument(text: str) -> float:
    """An argparse ``type`` for a positive number of seconds (``--duration``)."""
    import argparse
    import math

    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seconds must be a number, got {text!r}") from None
    if not (math.isfinite(seconds) and seconds > 0):
        raise argparse.ArgumentTypeError(f"seconds must be more than 0, got {text}")
    return seconds
