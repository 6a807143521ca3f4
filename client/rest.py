"""REST clients for the session service: :class:`RemoteRenderingClient` (blocking) and
:class:`AsyncRemoteRenderingClient` (asyncio), both on httpx, speaking ARR 2021-01-01.

Authentication sends ``Authorization: Bearer <account_key>`` to the service (never in URLs);
:meth:`get_access_token` exchanges the key for a 24 h JWT for render hosts and caches it until
five minutes before it expires. Every service error becomes one of :mod:`client.errors`
(httpx's exceptions never escape). A client is one httpx connection pool: use one per thread
(sync) or per event loop (async), and close it (or use ``with``/``async with``).
"""

from __future__ import annotations

import os
import ssl
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import jwt

from farview.client.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    FarviewError,
    LeaseError,
    ServerError,
    ServiceError,
    SessionNotFoundError,
    TooManyRequestsError,
    TooManySessionsError,
)
from farview.client.local import find_local_service
from farview.client.session import AsyncRenderingSession, RenderingSession, SessionProperties
from farview.input.launch import SESSION_ID_RE

API_VERSION = "2021-01-01"
CLOSED_CLIENT = ("this client is closed (its `with` block ended, or close() was called); make a "
                 "new one")
DEFAULT_TIMEOUT = 30.0
DEFAULT_LEASE_MINUTES = 60
TOKEN_REFRESH_MARGIN = 300.0

VerifyTypes = bool | str | Path


def _verify(verify: VerifyTypes) -> bool | ssl.SSLContext:
    """True/False, or a CA/certificate file to trust (e.g. the service's self-signed cert)."""
    if isinstance(verify, bool):
        return verify
    try:
        return ssl.create_default_context(cafile=str(verify))
    except (OSError, ssl.SSLError) as exc:  # (a raw FileNotFoundError before)
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise FarviewError(f"cannot use {verify} as the certificate to trust ({why}); give the "
                           "file `farview serve --make-cert` printed (--ca-cert FILE, "
                           "verify=FILE)") from None


def _error_for(resp: httpx.Response, account_id: str) -> ServiceError:
    status = resp.status_code
    code: str | None = None
    message = ""
    body: Any = None
    try:
        body = resp.json()
        err = body.get("error") or {}
        code, message = err.get("code"), err.get("message", "")
    except (ValueError, AttributeError):
        message = resp.text[:300]
    kw: dict[str, Any] = {"status_code": status, "code": code, "body": body}
    if status in (403, 503) and code == "TooManySessions":  # (403: the account's own limit)
        return TooManySessionsError(message, **kw)
    if status in (401, 403):
        return AuthenticationError(
            f"the service refused the credential for account {account_id!r} (HTTP {status}); "
            "check the account id and key (FARVIEW_ACCOUNT_ID / FARVIEW_ACCOUNT_KEY, or the "
            "local account.json)", **kw)
    if status == 404:
        return SessionNotFoundError(message or "not found", **kw)
    if status == 409:
        return ConflictError(message, **kw)
    if status == 422:
        return LeaseError(message, **kw)
    if status == 429:
        retry = resp.headers.get("retry-after", "1")
        return TooManyRequestsError(message, retry_after=float(retry) if retry.isdigit() else 1.0,
                                    **kw)
    if 400 <= status < 500:
        return BadRequestError(message or f"HTTP {status}", **kw)
    return ServerError(f"the session service failed (HTTP {status}): {message}".rstrip(": "),
                       **kw)


def _token_expiry(token: str) -> float:
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
        return float(claims.get("exp", 0))
    except jwt.InvalidTokenError:
        return 0.0


class _ClientBase:
    def __init__(self, endpoint: str, account_id: str, account_key: str, *,
                 verify: VerifyTypes = True, timeout: float = DEFAULT_TIMEOUT) -> None:
        if not account_id or not account_key:
            raise AuthenticationError("an account id and key are needed; set "
                                      "FARVIEW_ACCOUNT_ID and FARVIEW_ACCOUNT_KEY")
        self.endpoint = endpoint.rstrip("/")
        self.account_id = account_id
        self._account_key = account_key
        self._verify = _verify(verify)
        self._timeout = timeout
        self._token: str | None = None
        self._token_exp = 0.0

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.endpoint} account={self.account_id!r}>"

    @property
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._account_key}"}

    _LIST = object()
    """``_path``'s session id for the list route (None is a caller's mistake, not the list)."""

    def _path(self, session_id: object = _LIST, suffix: str = "") -> str:
        base = f"/accounts/{quote(self.account_id, safe='')}/sessions"
        if session_id is not _ClientBase._LIST:
            if not isinstance(session_id, str):  # (None listed the sessions: KeyError 'id')
                raise BadRequestError(f"a session id is a string, got {session_id!r}",
                                      status_code=400, code="BadRequest")
            if not SESSION_ID_RE.match(session_id):  # (a '/' in it made "no such route")
                raise BadRequestError(f"session id {session_id[:80]!r} is not valid: it must be "
                                      "1-256 letters, digits, '-' or '_'", status_code=400,
                                      code="BadRequest")
            base += f"/{quote(session_id, safe='')}"
        return base + suffix

    def _token_path(self) -> str:
        return f"/accounts/{quote(self.account_id, safe='')}/token"

    def _cached_token(self) -> str | None:
        if self._token and self._token_exp - time.time() > TOKEN_REFRESH_MARGIN:
            return self._token
        return None

    def _store_token(self, resp: httpx.Response) -> str:
        token = str(resp.json()["AccessToken"])
        self._token, self._token_exp = token, _token_expiry(token)
        return token

    def _unreachable(self, exc: httpx.HTTPError) -> ServerError:
        if "CERTIFICATE_VERIFY_FAILED" in str(exc) or "certificate verify failed" in str(exc):
            return ServerError(f"the session service at {self.endpoint} has a TLS certificate this "
                               f"client does not trust ({exc}); pass the service's certificate "
                               "with --ca-cert FILE (verify=FILE in Python): `farview serve "
                               "--make-cert` prints where it is")
        text = str(exc)
        if self.endpoint.startswith("https://") and "WRONG_VERSION_NUMBER" in text:
            return ServerError(f"the session service at {self.endpoint} does not speak TLS ({exc}): "
                               f"it serves plain http; use http://{self.endpoint[8:]}")
        if self.endpoint.startswith("http://") and isinstance(exc, httpx.RemoteProtocolError):
            return ServerError(f"the session service at {self.endpoint} closed the connection "
                               f"without an answer ({exc}); a service started with a "
                               f"certificate serves https: use https://{self.endpoint[7:]}")
        return ServerError(f"cannot reach the session service at {self.endpoint} "
                           f"({type(exc).__name__}: {text}); is `farview serve` running?")

    def _check(self, resp: httpx.Response) -> httpx.Response:
        if resp.status_code >= 400:
            raise _error_for(resp, self.account_id)
        return resp

    @staticmethod
    def _create_body(max_lease_time_minutes: int, size: str,
                     models: list[str] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"maxLeaseTimeMinutes": max_lease_time_minutes, "size": size}
        if isinstance(models, (str, bytes, os.PathLike)):  # (a str was loaded letter by letter)
            raise BadRequestError(f"models is a list of model sources, got one: {models!r}; "
                                  f"give [{str(models)!r}]", status_code=400, code="BadRequest")
        if models:
            body["models"] = list(models)  # farview extension: loaded instead of the sample
        return body


class RemoteRenderingClient(_ClientBase):
    """Blocking client: ``RemoteRenderingClient(endpoint, account_id, account_key)``."""

    def __init__(self, endpoint: str, account_id: str, account_key: str, *,
                 verify: VerifyTypes = True, timeout: float = DEFAULT_TIMEOUT) -> None:
        super().__init__(endpoint, account_id, account_key, verify=verify, timeout=timeout)
        self._http = httpx.Client(base_url=self.endpoint, verify=self._verify, timeout=timeout,
                                  trust_env=False)

    @classmethod
    def local(cls, *, data_dir: str | os.PathLike[str] | None = None,
              timeout: float = DEFAULT_TIMEOUT
              ) -> RemoteRenderingClient:
        """A client for the service ``farview serve`` runs on this machine, with its account."""
        svc = find_local_service(data_dir)
        if not svc.account_id or not svc.account_key:
            raise AuthenticationError("the local service has no local account file; set "
                                      "FARVIEW_ACCOUNT_ID and FARVIEW_ACCOUNT_KEY")
        return cls(svc.url, svc.account_id, svc.account_key, verify=svc.cert or True,
                   timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RemoteRenderingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, *, json: Any = None,
                 params: dict[str, Any] | None = None) -> httpx.Response:
        query = {"api-version": API_VERSION, **(params or {})}
        if self._http.is_closed:
            raise FarviewError(CLOSED_CLIENT)
        try:
            resp = self._http.request(method, path, json=json, params=query,
                                      headers=self._headers)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        return self._check(resp)

    def _session(self, resp: httpx.Response) -> RenderingSession:
        return RenderingSession(self, SessionProperties.from_json(resp.json()))

    def create_session(self, session_id: str | None = None, *,
                       max_lease_time_minutes: int = DEFAULT_LEASE_MINUTES,
                       size: str = "Standard", models: list[str] | None = None
                       ) -> RenderingSession:
        """Create (or idempotently retry creating) a session; it starts as Starting.

        ``models`` (a farview extension) are loaded by the host as soon as it is up, instead of
        the shipped sample: names in the host's model store, host paths or http(s) URLs.
        """
        sid = str(uuid.uuid4()) if session_id is None else session_id  # ("" is refused)
        return self._session(self._request(
            "PUT", self._path(sid), json=self._create_body(max_lease_time_minutes, size, models)))

    def get_session(self, session_id: str) -> RenderingSession:
        return self._session(self._request("GET", self._path(session_id)))

    open_rendering_session = get_session

    def update_session(self, session_id: str, *, max_lease_time_minutes: int
                       ) -> RenderingSession:
        return self._session(self._request("PATCH", self._path(session_id),
                                           json={"maxLeaseTimeMinutes": max_lease_time_minutes}))

    def stop_session(self, session_id: str) -> None:
        self._request("POST", self._path(session_id, "/:stop"))

    def iter_sessions(self, *, page_size: int | None = None, include_ended: bool = False
                      ) -> Iterator[RenderingSession]:
        """The account's Starting and Ready sessions (ARR's list), following ``@nextLink``;
        ``include_ended``: the ended ones too (Stopped, Expired, Error; kept 30 days)."""
        params = _list_params(page_size, include_ended)
        resp = self._request("GET", self._path(), params=params)
        while True:
            body = resp.json()
            for raw in body.get("sessions", []):
                yield RenderingSession(self, SessionProperties.from_json(raw))
            next_link = body.get("@nextLink")
            if not next_link:
                return
            try:
                resp = self._check(self._http.get(next_link, headers=self._headers))
            except httpx.HTTPError as exc:
                raise self._unreachable(exc) from None

    def list_sessions(self, *, page_size: int | None = None, include_ended: bool = False
                      ) -> list[RenderingSession]:
        """:meth:`iter_sessions` as a list."""
        return list(self.iter_sessions(page_size=page_size, include_ended=include_ended))

    def get_access_token(self) -> str:
        """A JWT for render hosts from the token exchange (cached until 5 min before ``exp``)."""
        if (token := self._cached_token()) is not None:
            return token
        if self._http.is_closed:
            raise FarviewError(CLOSED_CLIENT)
        try:
            resp = self._http.get(self._token_path(), headers={
                "Authorization": f"Bearer {self.account_id}:{self._account_key}"})
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        return self._store_token(self._check(resp))


def _list_params(page_size: int | None, include_ended: bool) -> dict[str, Any] | None:
    params: dict[str, Any] = {}
    if page_size:
        params["maxpagesize"] = page_size
    if include_ended:
        params["includeEnded"] = "true"
    return params or None


class AsyncRemoteRenderingClient(_ClientBase):
    """The asyncio twin of :class:`RemoteRenderingClient` (same methods, awaitable)."""

    def __init__(self, endpoint: str, account_id: str, account_key: str, *,
                 verify: VerifyTypes = True, timeout: float = DEFAULT_TIMEOUT) -> None:
        super().__init__(endpoint, account_id, account_key, verify=verify, timeout=timeout)
        self._http = httpx.AsyncClient(base_url=self.endpoint, verify=self._verify,
                                       timeout=timeout, trust_env=False)

    @classmethod
    def local(cls, *, data_dir: str | os.PathLike[str] | None = None,
              timeout: float = DEFAULT_TIMEOUT
              ) -> AsyncRemoteRenderingClient:
        svc = find_local_service(data_dir)
        if not svc.account_id or not svc.account_key:
            raise AuthenticationError("the local service has no local account file; set "
                                      "FARVIEW_ACCOUNT_ID and FARVIEW_ACCOUNT_KEY")
        return cls(svc.url, svc.account_id, svc.account_key, verify=svc.cert or True,
                   timeout=timeout)

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncRemoteRenderingClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _request(self, method: str, path: str, *, json: Any = None,
                       params: dict[str, Any] | None = None) -> httpx.Response:
        query = {"api-version": API_VERSION, **(params or {})}
        if self._http.is_closed:
            raise FarviewError(CLOSED_CLIENT)
        try:
            resp = await self._http.request(method, path, json=json, params=query,
                                            headers=self._headers)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        return self._check(resp)

    def _session(self, resp: httpx.Response) -> AsyncRenderingSession:
        return AsyncRenderingSession(self, SessionProperties.from_json(resp.json()))

    async def create_session(self, session_id: str | None = None, *,
                             max_lease_time_minutes: int = DEFAULT_LEASE_MINUTES,
                             size: str = "Standard", models: list[str] | None = None
                             ) -> AsyncRenderingSession:
        sid = str(uuid.uuid4()) if session_id is None else session_id  # ("" is refused)
        return self._session(await self._request(
            "PUT", self._path(sid), json=self._create_body(max_lease_time_minutes, size, models)))

    async def get_session(self, session_id: str) -> AsyncRenderingSession:
        return self._session(await self._request("GET", self._path(session_id)))

    open_rendering_session = get_session

    async def update_session(self, session_id: str, *, max_lease_time_minutes: int
                             ) -> AsyncRenderingSession:
        return self._session(await self._request(
            "PATCH", self._path(session_id), json={"maxLeaseTimeMinutes": max_lease_time_minutes}))

    async def stop_session(self, session_id: str) -> None:
        await self._request("POST", self._path(session_id, "/:stop"))

    async def list_sessions(self, *, page_size: int | None = None, include_ended: bool = False
                            ) -> list[AsyncRenderingSession]:
        """The account's Starting and Ready sessions (ARR's list); ``include_ended``: the
        ended ones too."""
        params = _list_params(page_size, include_ended)
        resp = await self._request("GET", self._path(), params=params)
        out: list[AsyncRenderingSession] = []
        while True:
            body = resp.json()
            out += [AsyncRenderingSession(self, SessionProperties.from_json(raw))
                    for raw in body.get("sessions", [])]
            next_link = body.get("@nextLink")
            if not next_link:
                return out
            try:
                resp = self._check(await self._http.get(next_link, headers=self._headers))
            except httpx.HTTPError as exc:
                raise self._unreachable(exc) from None

    async def get_access_token(self) -> str:
        if (token := self._cached_token()) is not None:
            return token
        if self._http.is_closed:
            raise FarviewError(CLOSED_CLIENT)
        try:
            resp = await self._http.get(self._token_path(), headers={
                "Authorization": f"Bearer {self.account_id}:{self._account_key}"})
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        return self._store_token(self._check(resp))
