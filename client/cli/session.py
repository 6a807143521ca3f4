"""``farview session create|show|list|renew|stop``: sessions from the command line.

Finds the service and account in this order: ``--url``/``--account-id``/``--account-key-file``
> ``FARVIEW_URL``/``FARVIEW_ACCOUNT_ID``/``FARVIEW_ACCOUNT_KEY`` > the local service's
``service.json`` and ``account.json`` (see :mod:`farview.client.local`) > a prompt (on a
terminal). The key is never taken on the command line, where ``ps`` shows it to other users,
and never appears in output. Prints a readable summary, or the service's JSON with ``--json``.
Exit status: 0 ok, 1 the service refused or failed, 2 usage.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from farview.client.errors import AuthenticationError, FarviewError
from farview.client.local import find_local_service
from farview.client.rest import RemoteRenderingClient
from farview.client.session import SessionProperties
from farview.input.launch import lease_argument

KEY_ON_COMMAND_LINE = ("--account-key is not taken: a key on the command line is visible to "
                       "every local user (ps); put it in FARVIEW_ACCOUNT_KEY or a file for "
                       "--account-key-file")


class RefuseKeyOnCommandLine(argparse.Action):
    """``--account-key VALUE``: refused with what to do instead, the value never echoed."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        parser.error(KEY_ON_COMMAND_LINE)


def add_account_key_options(g: argparse._ArgumentGroup) -> None:
    """``--account-key-file`` (and a refusal of ``--account-key``)."""
    g.add_argument("--account-key-file", type=Path, metavar="PATH",
                   help="file holding the account key (or env FARVIEW_ACCOUNT_KEY; on a terminal "
                   "farview asks for it; never give a key on the command line)")
    # nargs="?": a key that starts with "-" is refused the same way, never echoed as an extra argument
    g.add_argument("--account-key", action=RefuseKeyOnCommandLine, nargs="?", help=argparse.SUPPRESS)


def add_service_options(parser: argparse.ArgumentParser) -> None:
    """Where the session service is and which account to use (shared by every client command)."""
    g = parser.add_argument_group("service")
    g.add_argument("--url", help="service URL (env FARVIEW_URL; default: the local service)")
    g.add_argument("--account-id", help="account id (env FARVIEW_ACCOUNT_ID)")
    add_account_key_options(g)
    g.add_argument("--data-dir", type=Path,
                   help="the local service's data dir (default $FARVIEW_DATA_DIR or "
                   "~/.local/share/farview)")
    g.add_argument("--ca-cert", "--verify", dest="verify", metavar="FILE",
                   help="CA/certificate file to trust for https (what `farview serve --make-cert` "
                   "printed; --verify is the old spelling)")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    add_service_options(common)
    common.add_argument("--json", action="store_true", help="print the service's JSON")

    p = argparse.ArgumentParser(prog="farview session", description="Manage rendering sessions.",
                                allow_abbrev=False)
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("create", parents=[common], allow_abbrev=False, help="create a session")
    c.add_argument("session_id", nargs="?", help="id (default: a new uuid)")
    c.add_argument("--lease", type=lease_argument, default=60, help="max lease in minutes (default 60)")
    c.add_argument("--size", default="Standard", choices=["Standard", "Premium"])
    c.add_argument("--model", action="append", metavar="NAME_PATH_OR_URL",
                   help="a model the host loads at start instead of the sample (repeatable)")
    c.add_argument("--wait", action="store_true", help="wait until the session is Ready")
    c.add_argument("--timeout", type=float, default=120.0, help="seconds --wait waits")
    s = sub.add_parser("show", parents=[common], allow_abbrev=False, help="show one session")
    s.add_argument("session_id")
    ls = sub.add_parser("list", parents=[common], allow_abbrev=False,
                        help="list the account's Starting and Ready sessions")
    ls.add_argument("--all", action="store_true",
                    help="the ended ones too (Stopped, Expired, Error: kept 30 days)")
    r = sub.add_parser("renew", parents=[common], allow_abbrev=False, help="extend a session's lease")
    r.add_argument("session_id")
    r.add_argument("--lease", type=lease_argument, help="new max lease in minutes (default: +15)")
    m = sub.add_parser("load-model", parents=[common], allow_abbrev=False,
                       help="load a model into a running session's scene")
    m.add_argument("session_id")
    m.add_argument("source", help="a name in the host's model store, a path on the host, or an http(s) URL")
    u = sub.add_parser("upload-model", parents=[common], allow_abbrev=False,
                       help="send a .glb file from this machine into a running session's scene")
    u.add_argument("session_id")
    u.add_argument("file", type=Path, help="a .glb file here (it is loaded as it arrives, not kept)")
    t = sub.add_parser("stop", parents=[common], allow_abbrev=False, help="stop a session and its host")
    t.add_argument("session_id")
    return p


def service_url(args: argparse.Namespace) -> str | None:
    """The service named by --url or ``FARVIEW_URL``; None: the local one."""
    return args.url or os.environ.get("FARVIEW_URL") or None


def client_from_args(args: argparse.Namespace) -> RemoteRenderingClient:
    """A REST client from --url/--account-*/--verify, the environment, or the local service.

    The local service's account (``account.json``) is used only for the local service: with no
    URL, or the URL ``service.json`` names. Another service needs its own account id and key
    (a missing one was taken from the local account, which sent this machine's key there)."""
    url = service_url(args)
    account_id = args.account_id or os.environ.get("FARVIEW_ACCOUNT_ID")
    account_key = (read_key_file(args.account_key_file) if args.account_key_file
                   else os.environ.get("FARVIEW_ACCOUNT_KEY"))
    verify: bool | str = args.verify or True
    local = None
    if not (url and account_id and account_key):
        if url is None:
            local = find_local_service(args.data_dir)  # (none: says to start one or give --url)
        else:
            with contextlib.suppress(FarviewError):
                local = find_local_service(args.data_dir)
            if local is not None and not same_service(url, local.url):
                local = None
    if local is not None:
        url = url or local.url
        if account_id in (None, local.account_id):
            account_id, account_key = local.account_id, account_key or local.account_key
        if args.verify is None and local.cert and same_service(url, local.url):
            verify = local.cert
    assert url is not None
    if account_id and not account_key and sys.stdin.isatty():
        account_key = getpass.getpass(f"account key for {account_id} at {url}: ")
    if not (account_id and account_key):
        missing = ("an account id and key are" if not account_id
                   else f"the key of account {account_id} is")
        raise AuthenticationError(
            f"{missing} needed for {url}: --account-id ID (or FARVIEW_ACCOUNT_ID) and the key "
            "in FARVIEW_ACCOUNT_KEY or --account-key-file FILE (asked for on a terminal); this "
            "machine's own account is used only for its own service")
    return RemoteRenderingClient(url, account_id, account_key, verify=verify)


def same_service(a: str, b: str) -> bool:
    """Whether two service URLs name the same service: scheme, host and port, with the
    loopback names taken as one."""
    def key(url: str) -> tuple[str, str, int | None]:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower()
        if host in ("localhost", "::1") or host.startswith("127."):
            host = "127.0.0.1"
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
        return parts.scheme.lower(), host, port
    try:
        return key(a) == key(b)
    except ValueError:  # (a malformed port)
        return False


def read_key_file(path: Path) -> str:
    """An account key from a file (its first line, stripped)."""
    try:
        key = path.read_text(encoding="utf-8").strip().splitlines()
    except OSError as exc:
        raise AuthenticationError(f"cannot read the account key file {path}: {exc.strerror}") from None
    if not key or not key[0].strip():
        raise AuthenticationError(f"the account key file {path} is empty")
    return key[0].strip()


def _describe(props: SessionProperties, scheme: str = "http") -> str:
    lines = [f"session   {props.id}",
             f"status    {props.status}",
             f"size      {props.size}",
             f"lease     {props.elapsed_time_minutes} of {props.max_lease_time_minutes} min used",
             f"created   {props.creation_time}"]
    if props.host_url:
        lines.append(f"host      {props.endpoint_url(scheme)}")
    if props.error:
        lines.append(f"error     {props.error.get('code')}: {props.error.get('message')}")
    for m in props.model_status:  # (a model that failed showed only with --json)
        what = f"{m.status} ({m.code}: {m.message})" if m.status == "Failed" else m.status
        lines.append(f"model     {m.source}: {what}")
    return "\n".join(lines)


def _emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    print(json.dumps(payload, indent=2) if args.json else text)


def run(args: argparse.Namespace) -> int:
    with client_from_args(args) as client:
        scheme = str(client.endpoint).split(":", 1)[0]  # (the properties do not say)
        if args.command == "create":
            session = client.create_session(args.session_id, max_lease_time_minutes=args.lease,
                                            size=args.size, models=args.model)
            if args.wait:
                try:
                    session.wait_until_ready(args.timeout)
                    session.wait_for_models(args.timeout)
                except FarviewError as exc:
                    # (as demo, view and bench do: a session left Ready would run its lease out)
                    print(f"farview session: {exc}", file=sys.stderr)
                    print(f"farview session: stopping session {session.id}", file=sys.stderr)
                    try:
                        session.stop()
                    except FarviewError as stop_exc:
                        print(f"farview session: could not stop session {session.id}: {stop_exc}",
                              file=sys.stderr)
                    return 1
            _emit(args, session.properties.to_json(), _describe(session.properties, scheme))
        elif args.command == "show":
            props = client.get_session(args.session_id).properties
            _emit(args, props.to_json(), _describe(props, scheme))
        elif args.command == "list":
            sessions = [s.properties for s in client.iter_sessions(include_ended=args.all)]
            table = [f"{'ID':<38} {'STATUS':<9} {'SIZE':<9} LEASE"]
            table += [f"{p.id:<38} {p.status:<9} {p.size:<9} "
                      f"{p.elapsed_time_minutes}/{p.max_lease_time_minutes} min" for p in sessions]
            _emit(args, {"sessions": [p.to_json() for p in sessions]},
                  "\n".join(table) if sessions else
                  "no sessions" if args.all else "no sessions running (--all lists ended ones too)")
        elif args.command == "renew":
            session = client.get_session(args.session_id)
            props = session.renew(args.lease)
            _emit(args, props.to_json(), _describe(props, scheme))
        elif args.command in ("load-model", "upload-model"):
            from farview.client.scene import load_model_http, upload_model_http

            session = client.get_session(args.session_id)
            session.wait_until_ready(timeout=5.0)
            if args.command == "load-model":
                loaded = load_model_http(session.scene_url, client.get_access_token(),
                                         args.source, verify=session.verify)
            else:
                loaded = upload_model_http(session.upload_url(args.file.name),
                                           client.get_access_token(), args.file,
                                           verify=session.verify)
            _emit(args, {"root": loaded.root_id, "name": loaded.name, "triangles": loaded.triangles},
                  f"loaded {loaded.name} into session {args.session_id}: entity {loaded.root_id}, "
                  f"{loaded.triangles} triangles")
        elif args.command == "stop":
            client.stop_session(args.session_id)
            props = client.get_session(args.session_id).properties
            _emit(args, props.to_json(), f"session {props.id} is {props.status}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except FarviewError as exc:
        print(f"farview session: {exc}", file=sys.stderr)
        return 1
