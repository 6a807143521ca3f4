"""The session service's settings and where each one comes from.

Precedence, highest first: command line > environment (``FARVIEW_*``) > config file (``--config``,
TOML or JSON) > the ``DEFAULT_*`` constants below. :func:`load_settings` merges the layers once at
start-up; the resulting :class:`ServiceSettings` is frozen and shared read-only.

Config file keys are the field names below (``lease_unit_seconds = 1``), plus ``[[accounts]]``
tables with ``id`` and ``key`` (see :mod:`service.auth`).
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from farview.input.ice import IceServer, MediaNetwork, parse_port_range
from farview.input.launch import (
    DEFAULT_MAX_BITRATE,
    DEFAULT_MIN_BITRATE,
    check_bitrates,
    default_data_dir,
    parse_bitrate,
)
from farview.service.ratelimit import DEFAULT_CREATES_PER_MINUTE, DEFAULT_READS_PER_SECOND

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8400
DEFAULT_LEASE_UNIT_SECONDS = 60.0
"""One lease "minute" in seconds. ARR counts minutes; tests shorten the unit."""
DEFAULT_HOST_START_TIMEOUT = 60.0
DEFAULT_MAX_BODY_BYTES = 64 * 1024
DEFAULT_PAGE_SIZE = 100
DEFAULT_RETENTION_DAYS = 30.0
DEFAULT_MAX_SESSIONS = 4
"""Sessions (Starting or Ready, every account's) the service runs at once: each is a render
host process with its own GL context, encoder and, on llvmpipe, a core's worth of drawing."""


@dataclass(frozen=True, kw_only=True)
class ServiceSettings:
    host: str = DEFAULT_HOST
    """Address to bind. Non-loopback needs TLS or ``allow_insecure_remote``."""
    port: int = DEFAULT_PORT
    """Port to bind; 0 picks a free one (the real one goes to ``service.json``)."""
    data_dir: Path = field(default_factory=default_data_dir)
    """SQLite store, token key, account file, host logs, ``service.json``."""
    tls_cert: Path | None = None
    """PEM certificate for https (with ``tls_key``)."""
    tls_key: Path | None = None
    """PEM private key for https."""
    make_cert: bool = False
    """Write a self-signed certificate into the data dir and use it: it names the public URL's
    host, every bound address and the loopback names."""
    public_url: str | None = None
    """Where clients reach the service (``https://NAME:PORT``); sessions report its host and
    port. Default: the bound address (127.0.0.1 for a wildcard bind)."""
    allow_insecure_remote: bool = False
    """Allow plain http on a non-loopback address (credentials travel in clear)."""
    lease_unit_seconds: float = DEFAULT_LEASE_UNIT_SECONDS
    """Length of one lease "minute" in seconds (maxLeaseTimeMinutes and elapsedTimeMinutes)."""
    host_start_timeout: float = DEFAULT_HOST_START_TIMEOUT
    """Seconds a render host may take from spawn to a healthy ``/health``."""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    """Request bodies over this size get 413."""
    max_upload_bytes: int = 256 << 20
    """Largest model file a client may upload through the service (``PUT …/scene/upload/``);
    the host's own model budget (``FARVIEW_MAX_MODEL_BYTES``) applies too."""
    retention_days: float = DEFAULT_RETENTION_DAYS
    """Terminal sessions (Stopped, Expired, Error) are purged this long after they ended."""
    creates_per_minute: float = DEFAULT_CREATES_PER_MINUTE
    """Session creates one account may make a minute (bursts of a minute's worth); over it:
    429 with Retry-After. 0: no limit."""
    reads_per_second: float = DEFAULT_READS_PER_SECOND
    """Session reads (GET a session or the list) one account may make a second (bursts of two
    seconds' worth); over it: 429 with Retry-After. 0: no limit."""
    max_sessions: int = DEFAULT_MAX_SESSIONS
    """Sessions (Starting or Ready, all accounts together) the service runs at once; a create
    over it gets 503 ``TooManySessions``. 0: no limit."""
    max_sessions_per_account: int = 0
    """Sessions (Starting or Ready) one account may run at once, so that one account cannot
    take every one of ``max_sessions``; a create over it gets 403 ``TooManySessions``. 0: no
    limit."""
    model_sources: str = "auto"
    """Where render hosts may load models from: ``any`` (model store names, host paths, any
    http(s) URL), ``store`` (store names, and URLs whose host is in ``model_url_hosts``; no
    host paths), or ``auto``: ``store`` when the service binds a non-loopback address, else
    ``any``."""
    model_url_hosts: tuple[str, ...] = ()
    """URL host names models may be loaded from under the ``store`` policy."""
    ice_servers: tuple[str, ...] = ()
    """STUN/TURN server URLs clients are told to use (``Link`` headers of the session's WHEP
    resource): ``stun:host:port``, ``turn:host:port?transport=udp|tcp``, ``turns:host:port``."""
    turn_secret: str | None = field(default=None, repr=False)
    """The TURN server's shared secret (coturn ``--static-auth-secret``): each client gets
    credentials derived from it, valid a day (the TURN REST API scheme)."""
    media_addresses: tuple[str, ...] = ()
    """Local addresses hosts gather ICE candidates on (empty: every interface)."""
    media_ports: str | None = None
    """The UDP port range hosts bind media on, ``LOW-HIGH`` (None: ephemeral ports)."""
    announced_address: str | None = None
    """The public address a 1:1 NAT maps to this machine: hosts offer it beside their own."""
    accounts: tuple[tuple[str, str], ...] = ()
    """Configured (account id, account key) pairs; empty → a local account is created."""
    cors_origins: tuple[str, ...] = ()
    """Web origins (``https://player.example``) whose pages may call the API and WHEP (CORS):
    other web players, used deliberately. None by default: the web viewer is same-origin."""
    min_bitrate: int = DEFAULT_MIN_BITRATE
    """The least a stream's congestion control lowers the video bit rate to (bit/s)."""
    max_bitrate: int = DEFAULT_MAX_BITRATE
    """The video bit rate streams start at and never exceed (bit/s); clients may ask for less."""

    def __post_init__(self) -> None:
        for name in ("lease_unit_seconds", "host_start_timeout", "retention_days"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ValueError(f"{name} must be a number > 0, got {getattr(self, name)!r}")
        for name in ("creates_per_minute", "reads_per_second"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise ValueError(f"{name} must be a number >= 0 (0: no limit), got "
                                 f"{getattr(self, name)!r}")
        if self.max_upload_bytes <= 0:
            raise ValueError(f"max_upload_bytes must be > 0, got {self.max_upload_bytes}")
        for name in ("max_sessions", "max_sessions_per_account"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (0: no limit)")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} is out of range 0-65535")
        if self.model_sources not in ("auto", "any", "store"):
            raise ValueError(f"model_sources must be auto, any or store, got {self.model_sources!r}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("give both tls_cert and tls_key, or neither")
        for url in self.ice_servers:
            IceServer(url)  # raises ValueError naming the accepted schemes
        self.media_network()  # raises ValueError naming what is wrong
        for origin in self.cors_origins:
            check_origin(origin)
        check_bitrates(self.min_bitrate, self.max_bitrate)

    def media_network(self) -> MediaNetwork:
        """What every host is told about where its ICE candidates live."""
        return MediaNetwork(addresses=self.media_addresses, announced=self.announced_address,
                            ports=parse_port_range(self.media_ports) if self.media_ports else None)


_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


def check_origin(origin: str) -> str:
    """A web origin as browsers send it: ``scheme://host[:port]``, no path, no wildcard."""
    if not _ORIGIN.fullmatch(origin):
        raise ValueError(f"CORS origin {origin!r} must be scheme://host[:port] (http or https, no path, no "
                         "wildcard), e.g. https://player.example")
    return origin


_ENV: dict[str, tuple[str, Callable[[str], Any]]] = {
    "FARVIEW_HOST": ("host", str),
    "FARVIEW_PORT": ("port", int),
    "FARVIEW_DATA_DIR": ("data_dir", Path),
    "FARVIEW_TLS_CERT": ("tls_cert", Path),
    "FARVIEW_TLS_KEY": ("tls_key", Path),
    "FARVIEW_LEASE_UNIT_SECONDS": ("lease_unit_seconds", float),
    "FARVIEW_HOST_START_TIMEOUT": ("host_start_timeout", float),
    "FARVIEW_CREATES_PER_MINUTE": ("creates_per_minute", float),
    "FARVIEW_READS_PER_SECOND": ("reads_per_second", float),
    "FARVIEW_MAX_SESSIONS": ("max_sessions", int),
    "FARVIEW_MAX_SESSIONS_PER_ACCOUNT": ("max_sessions_per_account", int),
    "FARVIEW_MODEL_SOURCES": ("model_sources", str),
    "FARVIEW_PUBLIC_URL": ("public_url", str),
    "FARVIEW_TURN_SECRET": ("turn_secret", str),
    "FARVIEW_MIN_BITRATE": ("min_bitrate", parse_bitrate),
    "FARVIEW_MAX_BITRATE": ("max_bitrate", parse_bitrate),
    "FARVIEW_MAX_UPLOAD_BYTES": ("max_upload_bytes", int),
    "FARVIEW_CORS_ORIGINS": ("cors_origins", lambda v: tuple(o.strip() for o in v.split(",") if o.strip())),
}


_BITRATES = ("min_bitrate", "max_bitrate")


def _config_value(path: Path, key: str, kind: str, value: Any) -> Any:
    """``value`` of setting ``key`` (declared ``kind``) from a config file, checked: a value of
    the wrong type is refused naming the file, the key and what it takes."""
    def wrong(what: str) -> ValueError:
        return ValueError(f"{path}: {key} must be {what}, got {value!r}")

    optional = kind.endswith(" | None")
    kind = kind.removesuffix(" | None")
    if kind == "bool":
        if not isinstance(value, bool):
            raise wrong("true or false")
        return value
    if kind == "tuple[str, ...]":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise wrong('a list of strings (["a", "b"])')
        return tuple(value)
    if key in _BITRATES and isinstance(value, str):
        try:
            return parse_bitrate(value)
        except ValueError:
            raise wrong("a bit rate (8000000, 8M or 500k)") from None
    if kind in ("int", "float"):
        number = (int,) if kind == "int" else (int, float)
        if isinstance(value, bool) or not isinstance(value, number):
            raise wrong("a whole number" if kind == "int" else "a number")
        return value
    if kind in ("str", "Path"):
        if not isinstance(value, str) or (optional and not value):
            raise wrong("a string")
        return Path(value) if kind == "Path" else value
    raise wrong(kind)  # (a new field's kind: add it above)


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a TOML (``.toml``) or JSON config file into settings keywords."""
    text = path.read_text(encoding="utf-8")
    try:
        raw: Any = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except ValueError as exc:  # (json's and tomllib's decode errors both are)
        raise ValueError(f"{path} is not valid {'JSON' if path.suffix == '.json' else 'TOML'}: "
                         f"{exc}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a table/object at top level")
    kinds = {f.name: str(f.type) for f in fields(ServiceSettings)}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "accounts":
            if not isinstance(value, list) or not all(
                    isinstance(a, dict) and isinstance(a.get("id"), str) and a["id"]
                    and isinstance(a.get("key"), str) and a["key"] for a in value):
                raise ValueError(f"{path}: accounts must be a list of tables, each with a string "
                                 '"id" and "key" ([[accounts]] id = "...", key = "...")')
            out["accounts"] = tuple((a["id"], a["key"]) for a in value)
        elif key in kinds:
            out[key] = _config_value(path, key, kinds[key], value)
        else:
            raise ValueError(f"{path}: unknown setting {key!r}")
    return out


def load_settings(cli: Mapping[str, Any], *, config_file: Path | None = None,
                  environ: Mapping[str, str] | None = None) -> ServiceSettings:
    """Merge the layers. ``cli`` holds only options given on the command line (no None)."""
    env = os.environ if environ is None else environ
    merged: dict[str, Any] = {}
    if config_file is not None:
        merged.update(read_config_file(config_file))
    for name, (key, conv) in _ENV.items():
        if env.get(name):
            try:
                merged[key] = conv(env[name])
            except ValueError:
                raise ValueError(f"environment {name}={env[name]!r} is not a valid {key}") from None
    env_id, env_key = env.get("FARVIEW_ACCOUNT_ID"), env.get("FARVIEW_ACCOUNT_KEY")
    if env_id and env_key:
        merged["accounts"] = ((env_id, env_key),)
    merged.update({k: v for k, v in cli.items() if v is not None})
    return ServiceSettings(**merged)
