"""Property-based fuzzing of the session service's REST API (shared by the suite and
``benchmarks/bench_rest_fuzz.py``).

:func:`requests` is a hypothesis strategy over every route (ARR 2021-01-01, the token exchange,
the legacy v1 routes, ``/openapi.json``) and a few that do not exist, with valid and invalid ids,
bodies (well-formed, wrong types, extra fields, not JSON, oversized), ``api-version`` values,
headers and credentials (right key, ``id:key``, access token, wrong key, another account's key
or token, expired or forged token, other schemes, none).

:class:`RestChecker` sends one :class:`FuzzRequest` with httpx and checks the answer against the
service's own OpenAPI document and ARR's error contract: never a 5xx; a 401 has
``WWW-Authenticate`` and no body; every other error is ``{"error": {"code", "message"}}``; a
success validates against the documented response schema; every response has ``MS-CV``; no
credential is echoed in a body or header. It also keeps the ledger that the record checks use:
every session the fuzz created must still be in the store afterwards, unchanged where no request
could have changed it (:func:`snapshot`, :func:`compare_snapshots`).

Synchronous (httpx.Client); one request at a time.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import httpx
import jsonschema
import jwt
from hypothesis import strategies as st

API_VERSION = "2021-01-01"
ALLOWED_ERROR_STATUSES = frozenset({400, 401, 404, 405, 409, 413, 422, 429})
SESSION_STATUSES = frozenset({"Starting", "Ready", "Stopped", "Expired", "Error"})
FUZZ_IDS = ("fz-a", "fz-b", "fz-c")
"""Valid session ids the fuzz may create: a small pool, so it starts at most three render hosts
through ARR's PUT (a retried create answers 200; other settings 409)."""


@dataclass(frozen=True)
class Accounts:
    """Credentials the fuzz draws from. ``other_*`` is a second real account of the service."""

    account_id: str
    account_key: str = field(repr=False)
    other_id: str
    other_key: str = field(repr=False)
    signing_key: str = field(repr=False)
    """The service's private token signing key (PEM)."""

    def token(self, account_id: str, ttl: float = 3600) -> str:
        now = int(time.time())
        return jwt.encode({"sub": account_id, "aud": "farview", "iat": now, "exp": now + int(ttl)},
                          self.signing_key, algorithm="ES256")

    def secrets(self) -> list[str]:
        """Strings that must never appear in a response (the keys; tokens are checked apart)."""
        return [self.account_key, self.other_key, *pem_secret_lines(self.signing_key)]


def pem_secret_lines(pem: str) -> list[str]:
    """The base64 lines of a PEM private key: none may ever appear anywhere."""
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


@dataclass(frozen=True)
class FuzzRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str] = field(repr=False)
    body: bytes | None
    auth_kind: str
    """Which credential: ``key``, ``idkey``, ``token``, ``none``, ``wrong``, ``other``, ..."""
    route: str
    """The route template it aims at (``put_session``, ``list``, ``unknown``, ...)."""
    authorized: bool
    """True when the credential is valid for the account in the path."""

    def describe(self) -> str:
        return (f"{self.method} {self.path} {self.query} auth={self.auth_kind} "
                f"body={(self.body or b'')[:120]!r}")


# -- strategies ----------------------------------------------------------------------------

_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
_json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63), st.floats(allow_nan=False),
                         _text)
_json_any = st.recursive(_json_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(_text, inner, max_size=4)), max_leaves=12)


def _session_ids() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(FUZZ_IDS), st.sampled_from(FUZZ_IDS), st.sampled_from(FUZZ_IDS),
        st.sampled_from(["", "x" * 257, "x" * 256, "a b", "../etc", "%00", "ü", "a/b", ":stop", "fz-a\n", "\n0",
                         "null", "0", "-", "_", "A" * 40, "fz-A"]),
        st.from_regex(r"\A[A-Za-z0-9_-]{1,20}\Z"),
        _text,
    )


def _versions() -> st.SearchStrategy[str | None]:
    return st.one_of(st.just(API_VERSION), st.just(API_VERSION), st.just(API_VERSION), st.just(API_VERSION), st.none(),
                     st.sampled_from(["2019-02-28-preview", "2021-01-02", "", "1", API_VERSION + " "]), _text)


def _create_bodies() -> st.SearchStrategy[bytes]:
    valid = st.fixed_dictionaries(
        {"maxLeaseTimeMinutes": st.integers(0, 3), "size": st.sampled_from(["Standard", "Premium"])},
        optional={"models": st.just([])})
    broken = st.one_of(
        st.fixed_dictionaries({"maxLeaseTimeMinutes": st.one_of(st.integers(-10, 2000), st.floats(), _text,
                                                                  st.none(), st.booleans()),
                               "size": st.one_of(st.sampled_from(["standard", "Large", ""]), _text, st.integers())}),
        st.fixed_dictionaries({"maxLeaseTimeMinutes": st.integers(0, 3), "size": st.just("Standard"),
                               "extra": _json_any}),
        st.fixed_dictionaries({"maxLeaseTimeMinutes": st.integers(0, 3), "size": st.just("Standard"),
                               "models": st.one_of(st.lists(_text, min_size=17, max_size=20), _json_any)}),
        _json_any,
    )
    return st.one_of(valid.map(_dump), valid.map(_dump), broken.map(_dump), _raw_bodies())


def _update_bodies() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.fixed_dictionaries({"maxLeaseTimeMinutes": st.one_of(st.integers(-5, 1500), st.integers(),
                                                                 st.floats(), _text, st.none())}).map(_dump),
        _json_any.map(_dump), _raw_bodies())


def _legacy_bodies() -> st.SearchStrategy[bytes]:
    hms = st.one_of(st.sampled_from(["0:0:1", "0:0:0", "4:0:0", "24:0:1", "9999:99:99", "1:2", "", " 0:0:2 "]),
                    _text)
    return st.one_of(
        st.fixed_dictionaries({"maxLeaseTime": hms},
                              optional={"size": st.one_of(st.sampled_from(["standard", "premium", "huge"]), _text),
                                        "models": st.just([])}).map(_dump),
        _json_any.map(_dump), _raw_bodies())


def _raw_bodies() -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=64), st.just(b""), st.just(b"{"), st.just(b"\xff\xfe{}"),
                     st.just(b'{"maxLeaseTimeMinutes": 1e400}'), st.just(b"[" * 5000 + b"]" * 5000),
                     st.just(b'{"a":' + b"1" * 70_000 + b"}"))


def _dump(value: Any) -> bytes:
    return json.dumps(value).encode()


@st.composite
def requests(draw: st.DrawFn, accounts: Accounts) -> FuzzRequest:
    """One request to any route, with any credential."""
    route = draw(st.sampled_from([
        "put_session", "put_session", "put_session", "get_session", "get_session", "patch_session",
        "patch_session", "stop_session", "list", "token", "token_upper", "v1_create", "v1_properties", "v1_update",
        "v1_delete", "v1_list", "openapi", "unknown"]))
    in_path = draw(st.sampled_from(["own"] * 8 + ["other", "nobody", "weird"]))
    account = {"own": accounts.account_id, "other": accounts.other_id, "nobody": "nobody",
               "weird": draw(st.sampled_from(["", "%2F", "LOCAL", accounts.account_id.upper() + "x"]))}[in_path]
    sid = draw(_session_ids())
    a, s = quote(account, safe=""), quote(sid, safe="")
    query: dict[str, str] = {}
    body: bytes | None = None
    method = "GET"
    version = draw(_versions())
    if version is not None:
        query["api-version"] = version
    if route == "put_session":
        method, path, body = "PUT", f"/accounts/{a}/sessions/{s}", draw(_create_bodies())
    elif route == "get_session":
        path = f"/accounts/{a}/sessions/{s}"
    elif route == "patch_session":
        method, path, body = "PATCH", f"/accounts/{a}/sessions/{s}", draw(_update_bodies())
    elif route == "stop_session":
        method, path = "POST", f"/accounts/{a}/sessions/{s}/:stop"
    elif route == "list":
        path = f"/accounts/{a}/sessions"
        if draw(st.booleans()):
            query["maxpagesize"] = draw(st.one_of(st.integers(-2, 1002).map(str), _text))
        if draw(st.booleans()):
            query["continuationToken"] = draw(st.one_of(st.integers(0, 10**20).map(str), _text))
    elif route in ("token", "token_upper"):
        path = f"/{'accounts' if route == 'token' else 'Accounts'}/{a}/token"
    elif route == "v1_create":
        method, path, body = "POST", f"/v1/accounts/{a}/sessions/create", draw(_legacy_bodies())
    elif route == "v1_properties":
        path = f"/v1/accounts/{a}/sessions/{s}/properties"
    elif route == "v1_update":
        method, path, body = "PATCH", f"/v1/accounts/{a}/sessions/{s}", draw(_legacy_bodies())
    elif route == "v1_delete":
        method, path = "DELETE", f"/v1/accounts/{a}/sessions/{s}"
    elif route == "v1_list":
        path = f"/v1/accounts/{a}/sessions"
    elif route == "openapi":
        path = "/openapi.json"
    else:
        path = draw(st.sampled_from([f"/accounts/{a}", f"/accounts/{a}/sessions/{s}/:start", "/", "/docs",
                                     f"/accounts/{a}/sessions/{s}/extra/x", f"/v2/accounts/{a}/sessions",
                                     f"/accounts/{a}/sessions/{s}", f"/v1/accounts/{a}/sessions/create"]))
        methods = ["GET", "PUT", "POST", "PATCH", "DELETE", "OPTIONS", "HEAD"]
        if path == f"/accounts/{a}/sessions/{s}":  # a real route: only the methods it does not have
            methods = ["POST", "DELETE", "OPTIONS"]
        elif path == f"/v1/accounts/{a}/sessions/create":
            methods = ["GET", "PUT", "PATCH", "DELETE", "OPTIONS"]
        method = draw(st.sampled_from(methods))
        body = draw(st.one_of(st.none(), _raw_bodies()))
    auth_kind = draw(st.sampled_from(["key"] * 12 + ["idkey"] * 3 + ["token"] * 3 + [
        "none", "wrong", "other", "other_token", "expired", "forged", "basic", "empty", "idkey_other", "garbage"]))
    credential = {
        "key": f"Bearer {accounts.account_key}",
        "idkey": f"Bearer {accounts.account_id}:{accounts.account_key}",
        "token": f"Bearer {accounts.token(accounts.account_id)}",
        "wrong": f"Bearer {accounts.account_key[:-2]}xx",
        "other": f"Bearer {accounts.other_key}",
        "other_token": f"Bearer {accounts.token(accounts.other_id)}",
        "expired": f"Bearer {accounts.token(accounts.account_id, ttl=-60)}",
        "forged": "Bearer " + jwt.encode({"sub": accounts.account_id, "aud": "farview",
                                          "exp": int(time.time()) + 60}, b"k" * 32, algorithm="HS256"),
        "basic": f"Basic {accounts.account_key}",
        "empty": "Bearer",
        "idkey_other": f"Bearer {accounts.account_id}:{accounts.other_key}",
        "garbage": draw(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60)).strip()
        or None,
        "none": None,
    }[auth_kind]
    headers: dict[str, str] = {}
    if credential is not None:
        headers["Authorization"] = credential
    if body is not None:
        headers["Content-Type"] = draw(st.sampled_from(["application/json", "application/json", "text/plain",
                                                        "application/json; charset=latin-1", "application/sdp"]))
    if draw(st.integers(0, 9)) == 0:
        headers["MS-CV"] = draw(st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=40))
    authorized = _authorized(route, path, in_path if account else "none", auth_kind)
    return FuzzRequest(method, path, query, headers, body, auth_kind, route, authorized)


def _authorized(route: str, path: str, in_path: str, auth_kind: str) -> bool:
    """Whether the service must accept this credential (mirrors the documented auth rules)."""
    own = auth_kind in ("key", "idkey", "token")
    other = auth_kind in ("other", "other_token")
    token_route = route in ("token", "token_upper")
    if token_route and auth_kind in ("token", "other_token"):
        return False  # the token exchange takes keys only
    has_account = path.startswith(("/accounts/", "/Accounts/", "/v1/accounts/")) and in_path != "none"
    if not has_account:
        return own or other  # no account in the path: any account's credential
    return (in_path == "own" and own) or (in_path == "other" and other)


# -- checking ------------------------------------------------------------------------------

class FuzzFailure(AssertionError):
    pass


OPERATIONS = {
    "put_session": ("put", "/accounts/{account_id}/sessions/{session_id}"),
    "get_session": ("get", "/accounts/{account_id}/sessions/{session_id}"),
    "patch_session": ("patch", "/accounts/{account_id}/sessions/{session_id}"),
    "stop_session": ("post", "/accounts/{account_id}/sessions/{session_id}/:stop"),
    "list": ("get", "/accounts/{account_id}/sessions"),
    "token": ("get", "/accounts/{account_id}/token"),
    "v1_create": ("post", "/v1/accounts/{account_id}/sessions/create"),
    "v1_properties": ("get", "/v1/accounts/{account_id}/sessions/{session_id}/properties"),
    "v1_update": ("patch", "/v1/accounts/{account_id}/sessions/{session_id}"),
    "v1_delete": ("delete", "/v1/accounts/{account_id}/sessions/{session_id}"),
    "v1_list": ("get", "/v1/accounts/{account_id}/sessions"),
}
"""Fuzz route → the OpenAPI operation whose documented statuses its answers must use."""


@dataclass
class RestChecker:
    """Sends fuzz requests and checks every answer; keeps counts and the ledger of creates."""

    base_url: str
    accounts: Accounts
    openapi: dict[str, Any]
    client: httpx.Client = field(init=False)
    tried: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    created: set[tuple[str, str]] = field(default_factory=set)
    """(account, session id) of every create that answered 200/201/202."""
    legacy_created: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.base_url, timeout=60.0)

    def close(self) -> None:
        self.client.close()

    def _validate(self, schema_name: str, value: Any, req: FuzzRequest) -> None:
        schema = {"$ref": f"#/components/schemas/{schema_name}", "components": self.openapi["components"]}
        try:
            jsonschema.validate(value, schema)
        except jsonschema.ValidationError as exc:
            raise FuzzFailure(f"{req.describe()}: response breaks the documented {schema_name}: "
                              f"{exc.message}") from None

    def send(self, req: FuzzRequest) -> httpx.Response:
        resp = self.client.request(req.method, req.path, params=req.query, headers=req.headers,
                                   content=req.body)
        self.tried += 1
        self.statuses[resp.status_code] = self.statuses.get(resp.status_code, 0) + 1
        self.check(req, resp)
        return resp

    def documented(self, req: FuzzRequest) -> set[int] | None:
        """The statuses the OpenAPI document gives the request's operation (None: no operation,
        or a path that does not reach it, e.g. an empty id that routes elsewhere)."""
        op = OPERATIONS.get(req.route)
        if op is None or "//" in req.path or httpx.URL("http://h" + req.path).path != req.path:
            return None  # routed elsewhere (an empty id, or dot segments the client normalises)
        responses = self.openapi["paths"].get(op[1], {}).get(op[0], {}).get("responses", {})
        return {int(code) for code in responses if code.isdigit()}

    def check(self, req: FuzzRequest, resp: httpx.Response) -> None:
        status = resp.status_code
        what = f"{req.describe()} → {status} {resp.text[:300]!r}"
        if status >= 500:
            raise FuzzFailure(f"server error: {what}")
        if 300 <= status < 400:  # Starlette's trailing-slash redirect (only with a valid credential)
            if status not in (307, 308) or not resp.headers.get("location", "").startswith(self.base_url) \
                    or not req.authorized:
                raise FuzzFailure(f"unexpected redirect: {what}")
            return
        documented = self.documented(req)
        if documented is not None and status not in documented and status != 405:
            raise FuzzFailure(f"status {status} is not in the OpenAPI document's {sorted(documented)}: {what}")
        if "ms-cv" not in resp.headers:
            raise FuzzFailure(f"no MS-CV header: {what}")
        raw = resp.content.decode("latin-1") + " ".join(f"{k}:{v}" for k, v in resp.headers.items())
        for secret in self.accounts.secrets():
            if secret in raw:
                raise FuzzFailure(f"a credential is echoed in the response: {req.describe()}")
        if not req.authorized and status != 401:
            raise FuzzFailure(f"a request without a valid credential was not refused: {what}")
        if status == 401:
            if req.authorized:
                raise FuzzFailure(f"a valid credential was refused: {what}")
            if resp.content or 'Bearer error="invalid_token"' not in resp.headers.get("www-authenticate", ""):
                raise FuzzFailure(f"401 must have WWW-Authenticate and no body: {what}")
            return
        if status >= 400:
            if status not in ALLOWED_ERROR_STATUSES:
                raise FuzzFailure(f"unexpected status: {what}")
            if req.method == "HEAD":
                return
            try:
                err = resp.json()["error"]
            except (ValueError, KeyError, TypeError):
                raise FuzzFailure(f"error body is not ARR's {{'error': {{code, message}}}}: {what}") from None
            if not (isinstance(err.get("code"), str) and isinstance(err.get("message"), str) and err["message"]):
                raise FuzzFailure(f"error body lacks code/message: {what}")
            if "ErrorBody" in self.openapi.get("components", {}).get("schemas", {}):
                self._validate("ErrorBody", resp.json(), req)
            else:
                self._validate("ErrorDetail", {"code": err["code"], "message": err["message"]}, req)
            return
        self._check_success(req, resp, what)

    def _check_success(self, req: FuzzRequest, resp: httpx.Response, what: str) -> None:
        status, route = resp.status_code, req.route
        parts = req.path.split("/")
        account = unquote(parts[3] if req.path.startswith("/v1/") else parts[2]) if len(parts) > 3 else ""
        if route == "put_session":
            if status not in (200, 201):
                raise FuzzFailure(f"create answered {status}: {what}")
            body = resp.json()
            self._validate("SessionProperties", body, req)
            self.created.add((account, body["id"]))
        elif route in ("get_session", "patch_session"):
            if status != 200:
                raise FuzzFailure(f"unexpected success status: {what}")
            self._validate("SessionProperties", resp.json(), req)
        elif route in ("stop_session", "v1_delete"):
            if status != 204 or resp.content:
                raise FuzzFailure(f"stop must answer 204 with no body: {what}")
        elif route == "list":
            body = resp.json()
            self._validate("SessionsList", body, req)
            next_link = body.get("@nextLink")
            if next_link is not None and not next_link.startswith(self.base_url):
                raise FuzzFailure(f"@nextLink is not an absolute URL of this service: {what}")
        elif route in ("token", "token_upper"):
            token = resp.json().get("AccessToken")
            if not isinstance(token, str) or token.count(".") != 2:
                raise FuzzFailure(f"token exchange gave no JWT: {what}")
        elif route == "v1_create":
            body = resp.json()
            if status != 202 or not isinstance(body.get("sessionId"), str) or "location" not in resp.headers:
                raise FuzzFailure(f"legacy create answer is malformed: {what}")
            self.created.add((account, body["sessionId"]))
            self.legacy_created.append(body["sessionId"])
        elif route in ("v1_properties", "v1_update"):
            body = resp.json()
            want = {"sessionId", "sessionStatus", "sessionSize", "sessionHostname", "sessionElapsedTime",
                    "sessionMaxLeaseTime", "message"}
            if set(body) != want or body["sessionStatus"] not in SESSION_STATUSES:
                raise FuzzFailure(f"legacy properties are malformed: {what}")
        elif route == "v1_list":
            if not isinstance(resp.json().get("sessions"), list):
                raise FuzzFailure(f"legacy list is malformed: {what}")
        elif route == "openapi":
            if "openapi" not in resp.json():
                raise FuzzFailure(f"/openapi.json is not an OpenAPI document: {what}")
        elif req.method not in ("HEAD", "OPTIONS"):
            raise FuzzFailure(f"an unknown route succeeded: {what}")


# -- the store, before and after -----------------------------------------------------------

Row = dict[str, Any]


def snapshot(db_path: Path) -> dict[tuple[str, str], Row]:
    """Every session record in the store, keyed by (account, session id)."""
    with contextlib.closing(sqlite3.connect(db_path, timeout=30)) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute("SELECT * FROM sessions").fetchall()
    return {(r["account_id"], r["session_id"]): dict(r) for r in rows}


TERMINAL = frozenset({"Stopped", "Expired", "Error"})


def compare_snapshots(before: dict[tuple[str, str], Row], after: dict[tuple[str, str], Row],
                      created: set[tuple[str, str]]) -> list[str]:
    """Problems: a record lost, a terminal record changed, a created session missing, a bad row."""
    problems = []
    for key, row in before.items():
        if key not in after:
            problems.append(f"record {key} was lost")
        elif row["status"] in TERMINAL and after[key] != row:
            problems.append(f"terminal record {key} changed: {row} → {after[key]}")
        elif after[key]["created_at"] != row["created_at"] or after[key]["size"] != row["size"]:
            problems.append(f"record {key} was corrupted: {row} → {after[key]}")
    for key in created:
        if key not in after:
            problems.append(f"session {key} was created (2xx) but is not in the store")
    for key, row in after.items():
        if row["status"] not in SESSION_STATUSES or row["size"] not in ("Standard", "Premium") \
                or not 0 <= row["max_lease_minutes"] <= 1440:
            problems.append(f"record {key} holds invalid values: {row}")
    return problems


def list_all(client: httpx.Client, account_id: str, key: str, page: int = 7) -> list[dict[str, Any]]:
    """Every session of ``account_id`` through the API, ended ones included, following
    ``@nextLink``."""
    out: list[dict[str, Any]] = []
    url: str | None = (f"/accounts/{account_id}/sessions?api-version={API_VERSION}"
                       f"&maxpagesize={page}&includeEnded=true")
    while url:
        resp = client.get(url, headers={"Authorization": f"Bearer {key}"})
        resp.raise_for_status()
        body = resp.json()
        out.extend(body["sessions"])
        url = body.get("@nextLink")
    return out
