"""``farview serve``: run the session service (REST API, SQLite store, local host pool).

Writes ``<data-dir>/service.json`` once it accepts requests (removed on a clean exit)::

    {"url": "http://127.0.0.1:8400", "pid": 1234, "host": "127.0.0.1", "port": 8400,
     "tls": false, "cert": null, "account_file": ".../account.json", "data_dir": "...",
     "api_version": "2021-01-01"}

With no accounts configured (``--config`` file or ``FARVIEW_ACCOUNT_ID``/``FARVIEW_ACCOUNT_KEY``)
it uses/creates ``<data-dir>/account.json`` (0600, ``{"account_id", "account_key"}``) and prints
its path, never the key. SIGTERM/SIGINT stop every render host before the service exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import fcntl
import ipaddress
import json
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from farview.input.launch import ACCOUNT_FILE, SERVICE_FILE, bitrate_argument
from farview.service._uvicorn_shutdown import http_protocol
from farview.service.app import API_VERSION, create_app
from farview.service.auth import (
    Authenticator,
    load_or_create_local_account,
    load_or_create_signing_key,
    write_private,
)
from farview.service.config import (
    DEFAULT_HOST,
    DEFAULT_HOST_START_TIMEOUT,
    DEFAULT_LEASE_UNIT_SECONDS,
    DEFAULT_MAX_SESSIONS,
    DEFAULT_PORT,
    ServiceSettings,
    load_settings,
)
from farview.service.lifecycle import SessionManager
from farview.service.pool import LocalHostPool
from farview.service.ratelimit import RateLimiter
from farview.service.store import DB_FILE, SessionStore
from farview.service.tls import fingerprint, make_self_signed, names_for

log = logging.getLogger(__name__)



def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _count(text: str) -> int:
    """A whole number ≥ 0 for argparse (which then names the flag)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more (0: no limit), got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="farview serve",
        description="Run the farview session service (ARR 2021-01-01 session API). "
        "Precedence: command line > FARVIEW_* environment > --config file > default.")
    p.add_argument("--host", help=f"address to bind (default {DEFAULT_HOST}; env FARVIEW_HOST)")
    p.add_argument("--port", type=int,
                   help=f"port (default {DEFAULT_PORT}; 0 = any free port; env FARVIEW_PORT)")
    p.add_argument("--data-dir", type=Path,
                   help="store, keys and logs (default $FARVIEW_DATA_DIR or "
                   "~/.local/share/farview)")
    p.add_argument("--config", type=Path, help="settings and accounts file (.toml or .json)")
    p.add_argument("--tls-cert", type=Path, help="PEM certificate for https")
    p.add_argument("--tls-key", type=Path, help="PEM private key for https")
    p.add_argument("--public-url", metavar="URL",
                   help="where clients reach this service (e.g. https://render.example:8400); "
                   "sessions name its host and port, --make-cert names its host (default: the "
                   "bound address, or 127.0.0.1 for a wildcard)")
    p.add_argument("--make-cert", action="store_true", default=None,
                   help="make (or reuse) a self-signed certificate in the data dir and serve "
                   "https with it; it names the loopback names, --public-url's host and the "
                   "bound address (every local address for a wildcard), and its path and "
                   "SHA-256 fingerprint are printed for clients (--ca-cert FILE)")
    p.add_argument("--allow-insecure-remote", action="store_true", default=None,
                   help="allow plain http on a non-loopback address (not recommended)")
    p.add_argument("--model-sources", choices=("auto", "any", "store"),
                   help="where hosts may load models from: any (store names, host paths, any "
                   "URL), store (store names and URLs on --model-url-host only), auto (store when "
                   "binding a non-loopback address; the default)")
    p.add_argument("--model-url-host", action="append", dest="model_url_hosts", metavar="HOST",
                   help="a host name model URLs, and conversions' http(s) storage, may use under "
                   "--model-sources store (repeatable)")
    p.add_argument("--ice-server", action="append", dest="ice_servers", metavar="URL",
                   help="a STUN/TURN server clients use for media (stun:HOST:PORT, "
                   "turn:HOST:PORT?transport=udp|tcp, turns:HOST:PORT; repeatable); given to "
                   "clients in the WHEP resource's Link headers")
    p.add_argument("--cors-origin", action="append", dest="cors_origins", metavar="ORIGIN",
                   help="a web origin (https://player.example) whose pages may call the API and WHEP "
                   "(CORS; repeatable; env FARVIEW_CORS_ORIGINS, comma-separated); none by default: "
                   "the web viewer at /viewer/ is same-origin")
    p.add_argument("--turn-secret-file", type=Path, metavar="PATH",
                   help="file holding the TURN server's shared secret (coturn --static-auth-secret; "
                   "or env FARVIEW_TURN_SECRET): clients get credentials derived from it")
    p.add_argument("--media-address", action="append", dest="media_addresses", metavar="IP",
                   help="a local address render hosts offer media on (repeatable; default: every "
                   "interface's)")
    p.add_argument("--media-ports", metavar="LOW-HIGH",
                   help="the UDP port range render hosts bind media on, for firewalls (e.g. "
                   "50000-50100; default: ephemeral ports)")
    p.add_argument("--announce-address", dest="announced_address", metavar="IP",
                   help="the public address a 1:1 NAT maps to this machine; hosts offer it beside "
                   "their own (the NAT must keep ports)")
    p.add_argument("--max-bitrate", type=bitrate_argument, metavar="BPS",
                   help="the video bit rate streams start at and never exceed, bit/s (3M, 500k; default 8M; "
                   "env FARVIEW_MAX_BITRATE); clients may ask for less")
    p.add_argument("--min-bitrate", type=bitrate_argument, metavar="BPS",
                   help="the least a stream's congestion control lowers the bit rate to (default 500k; env "
                   "FARVIEW_MIN_BITRATE)")
    p.add_argument("--max-upload-bytes", type=int, metavar="N",
                   help="the largest model file a client may upload through the service, bytes "
                   "(default 268435456, 256 MiB; env FARVIEW_MAX_UPLOAD_BYTES); the session's "
                   "model budget applies too")
    p.add_argument("--max-sessions", type=_count, metavar="N",
                   help=f"sessions (Starting or Ready, all accounts together) this service runs at "
                   f"once; a create over it is refused with 503 TooManySessions (default "
                   f"{DEFAULT_MAX_SESSIONS}; 0: no limit; env FARVIEW_MAX_SESSIONS)")
    p.add_argument("--max-sessions-per-account", type=_count, metavar="N",
                   help="sessions (Starting or Ready) one account may run at once, so that one "
                   "account cannot take every one of --max-sessions; a create over it is refused "
                   "with 403 TooManySessions (default 0: no limit; env "
                   "FARVIEW_MAX_SESSIONS_PER_ACCOUNT)")
    p.add_argument("--lease-unit-seconds", type=float,
                   help=f"seconds per lease minute (default {DEFAULT_LEASE_UNIT_SECONDS:g}; "
                   "env FARVIEW_LEASE_UNIT_SECONDS); tests shorten it")
    p.add_argument("--host-start-timeout", type=float,
                   help=f"seconds a render host may take to become healthy (default "
                   f"{DEFAULT_HOST_START_TIMEOUT:g})")
    p.add_argument("--log-level", default="info", type=str.lower,
                   choices=("debug", "info", "warning", "error"),
                   help="what the service logs to stderr (default info)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s serve %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per health poll otherwise
    try:
        turn_secret = args.turn_secret_file.read_text().strip() if args.turn_secret_file else None
    except OSError as exc:
        print(f"farview serve: cannot read --turn-secret-file: {exc}", file=sys.stderr)
        return 2
    cli: dict[str, Any] = {
        "host": args.host, "port": args.port, "data_dir": args.data_dir,
        "tls_cert": args.tls_cert, "tls_key": args.tls_key, "make_cert": args.make_cert,
        "allow_insecure_remote": args.allow_insecure_remote,
        "model_sources": args.model_sources,
        "public_url": args.public_url,
        "ice_servers": tuple(args.ice_servers) if args.ice_servers else None,
        "cors_origins": tuple(args.cors_origins) if args.cors_origins else None,
        "turn_secret": turn_secret,
        "model_url_hosts": tuple(args.model_url_hosts) if args.model_url_hosts else None,
        "media_addresses": tuple(args.media_addresses) if args.media_addresses else None,
        "media_ports": args.media_ports,
        "announced_address": args.announced_address,
        "lease_unit_seconds": args.lease_unit_seconds,
        "min_bitrate": args.min_bitrate,
        "max_bitrate": args.max_bitrate,
        "host_start_timeout": args.host_start_timeout,
        "max_sessions": args.max_sessions,
        "max_sessions_per_account": args.max_sessions_per_account,
        "max_upload_bytes": args.max_upload_bytes,
    }
    try:
        settings = load_settings(cli, config_file=args.config)
    except (ValueError, OSError) as exc:
        print(f"farview serve: {exc}", file=sys.stderr)
        return 2
    if any(u.startswith(("turn:", "turns:")) for u in settings.ice_servers) and not settings.turn_secret:
        log.warning("TURN servers are configured without --turn-secret-file: clients get no "
                    "TURN credentials, so a server that requires them will refuse every client")
    try:
        return asyncio.run(serve(settings))
    except _StartupError as exc:
        print(f"farview serve: {exc}", file=sys.stderr)
        return 2


class _StartupError(Exception):
    pass


def _check_tls_files(cert: Path, key: Path | None) -> None:
    """Load the certificate and key as the server will, so that a missing or malformed file
    stops the start with a message naming it (it was uvicorn's traceback)."""
    import ssl

    for path in (cert, key):
        if path is not None and not Path(path).is_file():
            raise _StartupError(f"cannot read the TLS file {path}: it does not exist")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            str(cert), str(key) if key else None)
    except ssl.SSLError as exc:
        raise _StartupError(f"the TLS certificate {cert} and key {key or cert} do not load "
                            f"({exc.reason or exc}): give a PEM certificate (chain) and the PEM "
                            "private key that matches it") from None
    except OSError as exc:
        raise _StartupError(f"cannot read the TLS files {cert}, {key}: {exc.strerror}") from None


def _describe_sources(sources: str, settings: ServiceSettings) -> str:
    if sources == "any":
        return "the model store, host paths and any http(s) URL"
    if not settings.model_url_hosts:
        return ("the model store only, no URL (--model-sources store; --model-url-host HOST "
                "allows a host's URLs)")
    return (f"the model store and URLs on {', '.join(settings.model_url_hosts)} only "
            "(--model-sources store)")


LOCK_FILE = "service.lock"


def _lock_data_dir(data_dir: Path) -> int:
    """Take ``<data-dir>/service.lock`` exclusively for this process's lifetime: a second
    ``farview serve`` on the same data directory would mark the first one's live sessions
    Error and kill their hosts. Returns the open descriptor (closing it releases the lock)."""
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        owner = ""
        with contextlib.suppress(OSError, ValueError):
            info = json.loads((data_dir / SERVICE_FILE).read_text())
            owner = f" (pid {info['pid']}, {info['url']})"
        raise _StartupError(
            f"another farview serve is running on the data directory {data_dir}{owner}; stop it, "
            "or give this one another --data-dir") from None
    os.set_inheritable(fd, False)
    return fd


async def serve(settings: ServiceSettings) -> int:
    data_dir = settings.data_dir.expanduser().resolve()
    plain = settings.tls_cert is None and not settings.make_cert
    if not _is_loopback(settings.host) and plain and not settings.allow_insecure_remote:
        raise _StartupError(
            f"refusing to serve plain http on {settings.host}: account keys would cross the "
            "network in clear. Give --tls-cert/--tls-key or --make-cert, or "
            "--allow-insecure-remote if you really mean it")
    if data_dir.exists() and not data_dir.is_dir():
        raise _StartupError(f"the data directory {data_dir} is a file; give a folder as "
                            "--data-dir (or FARVIEW_DATA_DIR)")
    # The store and its journal, keys, host logs and conversion outputs: only the service's
    # user may read what it writes. An existing data directory keeps its own mode (it may be
    # shared, e.g. /tmp); the files in one were 0644.
    os.umask(0o077)
    if not data_dir.exists():
        data_dir.mkdir(parents=True, mode=0o700)
    lock = _lock_data_dir(data_dir)  # held (open) until the process ends
    # bound before anything is written into the data directory: a busy port left a new
    # account, key and store behind
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
    # without it every response waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
    except OSError as exc:
        sock.close()
        raise _StartupError(f"cannot bind {settings.host}:{settings.port}: {exc}") from None
    sock.listen(256)
    sock.set_inheritable(False)
    port = sock.getsockname()[1]
    cert, key = settings.tls_cert, settings.tls_key
    public_host = httpx.URL(settings.public_url).host if settings.public_url else None
    if settings.make_cert and cert is None:
        cert, key = make_self_signed(data_dir, names_for(settings.host, public_host))
        print(f"farview serve: https with the self-signed certificate {cert} (SHA-256 "
              f"{fingerprint(cert)}); clients trust it with --ca-cert {cert}", flush=True)
    if cert is not None:
        _check_tls_files(cert, key)

    account_file: Path | None = None
    if settings.accounts:
        accounts = dict(settings.accounts)
    else:
        account_id, account_key, created = load_or_create_local_account(data_dir)
        accounts = {account_id: account_key}
        account_file = data_dir / ACCOUNT_FILE
        verb = "created a local account" if created else "using the local account"
        print(f"farview serve: {verb} {account_id!r}; its key is in {account_file} (mode 0600)",
              flush=True)
    auth = Authenticator(accounts=accounts, signing_key=load_or_create_signing_key(data_dir))
    store = SessionStore(data_dir / DB_FILE)
    sources = settings.model_sources
    if sources == "auto":
        sources = "any" if _is_loopback(settings.host) else "store"
    print(f"farview serve: models load from {_describe_sources(sources, settings)}", flush=True)
    manager = SessionManager(store, LocalHostPool(data_dir), auth,
                             lease_unit_seconds=settings.lease_unit_seconds,
                             host_start_timeout=settings.host_start_timeout,
                             max_sessions=settings.max_sessions,
                             max_sessions_per_account=settings.max_sessions_per_account,
                             retention_days=settings.retention_days, model_sources=sources,
                             model_url_hosts=settings.model_url_hosts, media=settings.media_network(),
                             bitrates=(settings.min_bitrate, settings.max_bitrate))

    scheme = "https" if cert else "http"
    url_host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "localhost") else settings.host
    if ":" in url_host:
        url_host = f"[{url_host}]"
    url = settings.public_url or f"{scheme}://{url_host}:{port}"
    service_file = data_dir / SERVICE_FILE

    def on_started() -> None:
        info = {"url": url, "pid": os.getpid(), "host": settings.host, "port": port,
                "tls": cert is not None, "cert": str(cert) if cert else None,
                "account_file": str(account_file) if account_file else None,
                "data_dir": str(data_dir), "api_version": API_VERSION,
                "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
        write_private(service_file, json.dumps(info, indent=2).encode() + b"\n")
        print(f"farview serve: listening on {url} (data in {data_dir})", flush=True)

    app = create_app(manager, auth, max_body_bytes=settings.max_body_bytes, on_started=on_started,
                     limiter=RateLimiter(creates_per_minute=settings.creates_per_minute,
                                         reads_per_second=settings.reads_per_second),
                     public_url=url, ice_servers=settings.ice_servers,
                     turn_secret=settings.turn_secret, cors_origins=settings.cors_origins,
                     max_upload_bytes=settings.max_upload_bytes)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                            ssl_certfile=str(cert) if cert else None,
                            ssl_keyfile=str(key) if key else None,
                            timeout_graceful_shutdown=5, http=http_protocol())
    server = uvicorn.Server(config)
    # Our own handlers: uvicorn's would re-raise the signal after shutdown and skip clean-up.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # (HUP: its terminal closed)
        loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
    try:
        await server.serve(sockets=[sock])
    finally:
        store.close()
        os.close(lock)
        try:
            if json.loads(service_file.read_text()).get("pid") == os.getpid():
                service_file.unlink()
        except (OSError, ValueError):
            pass
    if not server.started:
        return 1
    print("farview serve: stopped", flush=True)
    return 0
