"""The session service's ASGI app: ARR's 2021-01-01 session REST API, the legacy v1 routes, the
token exchange and the OpenAPI document (FastAPI).

Every request passes :class:`_Envelope` (pure ASGI middleware) which

- authenticates the bearer credential against the account in the path (every route, including
  ``/openapi.json``; ``/docs`` is off) → 401 with ``WWW-Authenticate`` and no body. The one
  exception is the web viewer's static files (``GET /viewer/…``; ``/`` redirects there): they
  hold no data and no secret, the page signs in itself, and they go out with a strict
  Content-Security-Policy (:data:`WEB_HEADERS`),
- refuses bodies over ``max_body_bytes`` → 413 (a model upload, ``PUT …/scene/upload/{name}``,
  over ``max_upload_bytes``; its body streams on to the host, never held whole),
- sets ``MS-CV`` (echoed from the request or new) on every response,
- turns an unexpected exception into a 500 error body (the service keeps running).

Every error body is ARR's ``{"error": {"code", "message"}}``; FastAPI's validation errors are
mapped to 400 ``BadRequest`` naming the field. Handlers are async and run on the event loop;
state lives in :class:`~service.lifecycle.SessionManager`.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import math
import os
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import httpx
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Match, Router
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from farview.input.launch import SESSION_ID_RE
from farview.service.auth import Authenticator
from farview.service.conversions import (
    ENV_STORAGE_ROOT,
    ConversionManager,
    ConversionRequestError,
    ConversionStore,
    conversion_json,
)
from farview.service.errors import ApiError, bad_request, conflict
from farview.service.gateway import MAX_UPLOADS_PER_ACCOUNT, UPLOAD_TIMEOUT, HostGateway
from farview.service.lifecycle import MAX_LEASE_MINUTES, SessionManager
from farview.service.ratelimit import RateLimiter
from farview.service.store import SessionRecord

log = logging.getLogger(__name__)

API_VERSION = "2021-01-01"
TOKEN_API_VERSIONS = frozenset({"2019-02-28-preview", API_VERSION})
MAX_PAGE_SIZE = 1000
# \Z, not $: "$" also matches before a trailing newline ("abc\n" was a valid id), and DOTALL so
# that a newline inside a path cannot make the account pattern miss (the fuzz found both).
TERAFLOPS = {"Standard": 2.0, "Premium": 8.0}
WEB_DIR = Path(__file__).with_name("web")
"""The web viewer: static files shipped in the package (no build step)."""
WEB_PREFIX = "/viewer"
WEB_HEADERS = (
    (b"content-security-policy", b"default-src 'none'; script-src 'self'; style-src 'self'; "
     b"img-src 'self' data: blob:; media-src 'self' blob: mediastream:; connect-src 'self'; "
     b"manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"xr-spatial-tracking=(self), camera=(), microphone=(), geolocation=()"),
)
"""Headers on every web viewer file: scripts and styles from this origin only (no inline code),
requests to this origin only, never framed."""

_UPLOAD_PATH = re.compile(r"^/accounts/[^/]+/sessions/[^/]+/scene/upload/[^/]+\Z")
DEFAULT_MAX_UPLOAD_BYTES = 256 << 20
"""Largest model file the service passes on to a host (the hosts' default model budget)."""
_ACCOUNT_PATH = re.compile(r"^/(?:v1/)?[Aa]ccounts/([^/]+)(/.*)?\Z", re.DOTALL)
_SESSION_PATH = re.compile(r"/accounts/[^/]+/sessions/[^/]+")
KEYS_ONLY = "farview_keys_only"
"""Attribute set on a route's endpoint that accepts account keys only (the token exchange:
an access token must never buy a fresh one). The envelope reads it from the route the router
itself matches, so the auth check and the routing agree by construction."""


def keys_only(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a route's endpoint as taking account keys only (see :data:`KEYS_ONLY`)."""
    setattr(endpoint, KEYS_ONLY, True)
    return endpoint


def _has_control_characters(path: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in path)


# -- request and response bodies (also the OpenAPI document) -------------------------------

class CreateSessionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    maxLeaseTimeMinutes: int = Field(ge=0, le=MAX_LEASE_MINUTES,
                                     description="lease in minutes, counted from Ready")
    size: Literal["Standard", "Premium"]
    models: list[str] = Field(default_factory=list, max_length=16,
                              description="farview extension: models the host loads as soon as "
                              "it is up (names, host paths or http(s) URLs) instead of the "
                              "shipped sample")


class UpdateSessionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    maxLeaseTimeMinutes: int = Field(description="larger than the current value, at most 1440")


class ErrorDetail(BaseModel):
    code: str
    message: str


class ModelStatusBody(BaseModel):
    source: str
    status: Literal["Loading", "Loaded", "Failed"]
    code: str | None = Field(None, description="the loader's error code (Failed only)")
    message: str | None = Field(None, description="the loader's message (Failed only)")


class SessionProperties(BaseModel):
    id: str
    status: Literal["Starting", "Ready", "Stopped", "Expired", "Error"]
    size: Literal["Standard", "Premium"]
    maxLeaseTimeMinutes: int
    elapsedTimeMinutes: int
    hostname: str | None
    handshakePort: int | None
    arrInspectorPort: int | None
    teraflops: float
    creationTime: str
    error: ErrorDetail | None
    modelStatus: list[ModelStatusBody] = Field(
        default_factory=list, description="farview extension: the start-up models (the "
        "create request's `models`, or the shipped sample) and whether each is Loading, Loaded "
        "or Failed (with the loader's code and message); the session is Ready meanwhile")


class SessionsList(BaseModel):
    sessions: list[SessionProperties]
    nextLink: str | None = Field(None, alias="@nextLink")


class LegacyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    maxLeaseTime: str = Field(description='"H:M:S"')
    models: list[str] = Field(default_factory=list,
                              description="models the host loads as soon as it is up")
    size: str = "standard"


class LegacyUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    maxLeaseTime: str


# -- helpers -------------------------------------------------------------------------------

def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds") \
        .replace("+00:00", "Z")


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _parse_hms(text: str) -> int:
    match = re.fullmatch(r"(\d{1,4}):(\d{1,2}):(\d{1,2})", text.strip())
    if not match:
        raise bad_request(f"maxLeaseTime {text!r} is not \"H:M:S\" (e.g. \"4:0:0\")",
                          target="maxLeaseTime")
    h, m, s = (int(g) for g in match.groups())
    minutes = math.ceil((h * 3600 + m * 60 + s) / 60)
    if minutes > MAX_LEASE_MINUTES:
        raise bad_request(f"maxLeaseTime {text!r} is over 24:0:0", target="maxLeaseTime")
    return minutes


def _check_session_id(session_id: str, kind: str = "session") -> None:
    if not SESSION_ID_RE.match(session_id):
        raise bad_request(f"{kind} id must be 1-256 letters, digits, '-' or '_'",
                          target=f"{kind}Id")


def _page_start(token: str | None) -> int:
    """The record sequence number a list continues after (0: from the start)."""
    if token is None:
        return 0
    # ASCII digits that fit SQLite's int64 (str.isdigit takes a superscript two; 2**63
    # overflows: both were 500s)
    if not re.fullmatch(r"[0-9]{1,18}", token):
        raise bad_request("continuationToken is not one this service issued; "
                          "follow @nextLink as given", target="continuationToken")
    return int(token)


def _page(request: Request, key: str, items: list[dict[str, Any]], seqs: list[int],
          size: int) -> Response:
    """One page of ``items`` (fetched one past ``size``), with ``@nextLink`` when there is
    more."""
    body: dict[str, Any] = {key: items[:size]}
    if len(items) > size:
        body["@nextLink"] = str(request.url.include_query_params(
            continuationToken=str(seqs[size - 1])))
    return JSONResponse(body)


def _check_version(version: str | None, allowed: frozenset[str] = frozenset({API_VERSION})
                   ) -> None:
    if version not in allowed:
        shown = "missing" if version is None else repr(version)
        raise bad_request(f"api-version is {shown}; use ?api-version={API_VERSION}",
                          target="api-version")


def _error_response(err: ApiError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers)


def _validation_message(exc: RequestValidationError, content_type: str = "application/json"
                        ) -> tuple[str, str | None]:
    errors = exc.errors()
    if not errors:
        return "the request is malformed", None
    first = errors[0]
    kind = str(first.get("type", ""))
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
    field = ".".join(loc) or None
    if kind == "json_invalid":
        return f"the request body is not valid JSON ({first.get('ctx', {}).get('error', '')})", \
            None
    if kind == "extra_forbidden":
        return f"unknown field {field!r}", field
    if kind == "missing":
        return ("the request body is missing" if field is None else
                f"field {field!r} is required"), field
    if field is None:
        if "json" not in content_type.lower():  # (curl -d sends a form; FastAPI then reads no
            # JSON at all, and "Input should be a valid dictionary" blamed the JSON)
            shown = content_type.split(";")[0].strip() or "none"
            return (f"the request body is read as JSON only: send it with Content-Type: "
                    f"application/json (this request's Content-Type: {shown})"), None
        return f"the request body is malformed: {first.get('msg')}", None
    return f"field {field!r}: {first.get('msg')}", field


# -- the envelope middleware ---------------------------------------------------------------

class _Envelope:
    def __init__(self, app: ASGIApp, *, auth: Authenticator, max_body_bytes: int,
                 router: Router, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES) -> None:
        self.app = app
        self.auth = auth
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes
        self.router = router

    def _keys_only(self, scope: Scope) -> bool:
        """Whether the route the router will run for ``scope`` takes account keys only. A path
        no route takes (it will be a 404) takes keys only when it names the token exchange
        (``/accounts//token``, say): no path that looks like it ever accepts a token."""
        for route in self.router.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return bool(getattr(getattr(route, "endpoint", None), KEYS_ONLY, False))
        return str(scope["path"]).rstrip("/").lower().endswith("/token")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        cv = headers.get("ms-cv") or base64.b64encode(secrets.token_bytes(12)).decode() + ".0"
        started = False

        async def send_with_cv(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []),
                                      (b"ms-cv", cv.encode("latin-1"))]
            await send(message)

        path: str = scope["path"]
        if scope["method"] in ("GET", "HEAD") and (path == "/" or path == WEB_PREFIX
                                                   or path.startswith(WEB_PREFIX + "/")):
            async def send_web(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", []), *WEB_HEADERS]
                await send_with_cv(message)

            await self.app(scope, receive, send_web)
            return
        match = _ACCOUNT_PATH.match(path)
        account = self.auth.authenticate(headers.get("authorization"),
                                         match.group(1) if match else None,
                                         allow_token=not self._keys_only(scope))
        if account is None:
            await Response(status_code=401, headers={
                "WWW-Authenticate": 'Bearer error="invalid_token"'})(scope, receive, send_with_cv)
            return
        scope.setdefault("state", {})["account_id"] = account
        if _has_control_characters(path):
            await _error_response(bad_request(
                "the path contains control characters; no farview route has any"))(
                scope, receive, send_with_cv)
            return

        try:
            declared = int(headers.get("content-length", "0"))
        except ValueError:
            declared = 0
        upload = scope["method"] == "PUT" and _UPLOAD_PATH.match(path) is not None
        limit = self.max_upload_bytes if upload else self.max_body_bytes
        if declared > limit:
            await self._too_large(scope, receive, send_with_cv, limit, upload=upload)
            return
        if scope["method"] in ("POST", "PUT", "PATCH", "DELETE") and not upload:
            chunks: list[bytes] = []
            total = 0
            more = True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                total += len(chunk)
                if total > self.max_body_bytes:
                    await self._too_large(scope, receive, send_with_cv)
                    return
                chunks.append(chunk)
                more = message.get("more_body", False)
            body = b"".join(chunks)
            delivered = False

            async def replay() -> Message:
                nonlocal delivered
                if not delivered:
                    delivered = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            receive = replay
        try:
            await self.app(scope, receive, send_with_cv)
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], path)
            if not started:
                await _error_response(ApiError(
                    500, "InternalServerError",
                    "the service failed on this request; try again, and report it with the "
                    f"MS-CV {cv} if it persists"))(scope, receive, send_with_cv)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, limit: int | None = None,
                         *, upload: bool = False) -> None:
        message = f"the request body is over {limit or self.max_body_bytes:,} bytes"
        if upload:  # (it said only that: no way forward for a big model)
            message = (f"the model is over this service's upload limit of {limit or 0:,} bytes "
                       "(its operator sets it: farview serve --max-upload-bytes); convert it "
                       "first (farview convert makes it smaller), or load it from where the "
                       "render host can reach it (a URL or a model store name)")
        await _error_response(ApiError(413, "PayloadTooLarge", message))(scope, receive, send)


# -- the app -------------------------------------------------------------------------------

def create_app(manager: SessionManager, auth: Authenticator, *, max_body_bytes: int = 64 * 1024,
               on_started: Callable[[], Awaitable[None] | None] | None = None,
               limiter: RateLimiter | None = None, public_url: str | None = None,
               ice_servers: tuple[str, ...] = (), turn_secret: str | None = None,
               cors_origins: tuple[str, ...] = (), max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
               conversions: ConversionManager | None = None) -> FastAPI:
    """The service's app. ``public_url`` is where clients reach the service: sessions report
    its host and port as their ``hostname``/``handshakePort`` (the service is every session's
    one public endpoint; hosts listen on loopback only). ``cors_origins``: web origins allowed
    to call the API and WHEP from their own pages (CORS); none by default (same origin only)."""
    limits = limiter or RateLimiter()
    gateway = HostGateway(manager, auth, ice_servers=ice_servers, turn_secret=turn_secret)
    if conversions is None:
        db_path = manager.store.path
        web_hosts = frozenset(h.lower() for h in manager.model_url_hosts) \
            if manager.model_sources == "store" else None  # the model source policy's hosts
        conversions = ConversionManager(ConversionStore(db_path), Path(
            os.environ.get(ENV_STORAGE_ROOT) or db_path.parent / "storage"), web_hosts=web_hosts)
    converter = conversions
    manager.storage_root = conversions.storage_root  # hosts may load their account's files
    public = httpx.URL(public_url) if public_url else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await manager.start()
        await converter.start()
        if on_started is not None:
            result = on_started()
            if result is not None:
                await result
        try:
            yield
        finally:
            await gateway.close()
            await converter.close()
            await manager.close()

    app = FastAPI(title="farview session service", version=API_VERSION, docs_url=None,
                  redoc_url=None, lifespan=lifespan,
                  description="Azure Remote Rendering 2021-01-01 session API, self-hosted. "
                  "Every route needs 'Authorization: Bearer <account key or access token>'.")

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return _error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        message, target = _validation_message(exc, request.headers.get("content-type", ""))
        return _error_response(bad_request(message, target=target))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        codes = {400: "BadRequest", 404: "NotFound", 405: "MethodNotAllowed"}
        message = str(exc.detail) if exc.status_code != 404 else \
            f"no such route: {request.method} {request.url.path}"
        if exc.status_code == 400 and message == "There was an error parsing the body":
            message = ("the request body could not be parsed as JSON (nested too deep, or "
                       "not JSON); send a JSON object")  # (FastAPI's words, code "Error")
        if exc.status_code == 405 and request.method == "DELETE" and \
                _SESSION_PATH.fullmatch(request.url.path):
            message += "; a session is stopped with POST …/sessions/{id}/:stop"
        headers = None
        if exc.status_code == 405:  # it names what the resource takes (RFC 9110, 15.5.6): every
            # route of the path, not only the first one's (Starlette's own Allow), which it lacked
            allowed = {m for r in app.routes if isinstance(r, APIRoute)
                       and r.path_regex.match(request.url.path) for m in (r.methods or ())}
            headers = {"Allow": ", ".join(sorted(allowed))} if allowed else None
        return _error_response(ApiError(exc.status_code, codes.get(exc.status_code, "Error"),
                                        message, headers=headers))

    def account_of(request: Request) -> str:
        account: str = request.state.account_id
        return account

    def session_json(rec: SessionRecord) -> dict[str, Any]:
        return {
            "id": rec.session_id,
            "status": rec.status,
            "size": rec.size,
            "maxLeaseTimeMinutes": rec.max_lease_minutes,
            "elapsedTimeMinutes": manager.elapsed_minutes(rec),
            "hostname": (public.host if public and rec.hostname else rec.hostname),
            "handshakePort": (public.port or (443 if public.scheme == "https" else 80))
            if public and rec.handshake_port else rec.handshake_port,
            "arrInspectorPort": rec.inspector_port,
            "teraflops": TERAFLOPS.get(rec.size, 0.0),
            "creationTime": _iso(rec.created_at),
            "error": None if rec.error_code is None else
            {"code": rec.error_code, "message": rec.error_message or ""},
            "modelStatus": list(rec.model_status),
        }

    version_q = Query(None, alias="api-version", description=f"must be {API_VERSION}")
    created_responses: dict[int | str, dict[str, Any]] = {
        200: {"model": SessionProperties}, 201: {"model": SessionProperties}}
    session_responses: dict[int | str, dict[str, Any]] = {200: {"model": SessionProperties}}

    # -- ARR 2021-01-01 ------------------------------------------------------------------

    @app.put("/accounts/{account_id}/sessions/{session_id}", status_code=201,
             responses=created_responses, tags=["sessions"])
    async def create_session(request: Request, account_id: str, session_id: str,
                             settings: CreateSessionSettings,
                             api_version: str | None = version_q) -> Response:
        _check_version(api_version)
        _check_session_id(session_id)
        limits.check(account_of(request), "create")
        rec, created = await manager.create(account_of(request), session_id, size=settings.size,
                                            max_lease_minutes=settings.maxLeaseTimeMinutes,
                                            models=tuple(settings.models))
        return JSONResponse(session_json(rec), status_code=201 if created else 200)

    @app.get("/accounts/{account_id}/sessions/{session_id}", responses=session_responses,
             tags=["sessions"])
    async def get_session(request: Request, account_id: str, session_id: str,
                          api_version: str | None = version_q) -> Response:
        _check_version(api_version)
        _check_session_id(session_id)
        limits.check(account_of(request), "read")
        return JSONResponse(session_json(await manager.get(account_of(request), session_id)))

    @app.patch("/accounts/{account_id}/sessions/{session_id}", responses=session_responses,
               tags=["sessions"])
    async def update_session(request: Request, account_id: str, session_id: str,
                             settings: UpdateSessionSettings,
                             api_version: str | None = version_q) -> Response:
        _check_version(api_version)
        _check_session_id(session_id)
        rec = await manager.update(account_of(request), session_id,
                             max_lease_minutes=settings.maxLeaseTimeMinutes)
        return JSONResponse(session_json(rec))

    @app.post("/accounts/{account_id}/sessions/{session_id}/:stop", status_code=204,
              tags=["sessions"])
    async def stop_session(request: Request, account_id: str, session_id: str,
                           api_version: str | None = version_q) -> Response:
        _check_version(api_version)
        _check_session_id(session_id)
        await manager.stop(account_of(request), session_id)
        return Response(status_code=204)

    # -- the signaling gateway (service/gateway.py) --------------------------------------

    @app.post("/accounts/{account_id}/sessions/{session_id}/whep", status_code=201,
              tags=["signaling"], responses={
                  201: {"description": "the SDP answer (application/sdp); Location names the "
                        "connection's WHEP resource"},
                  409: {"description": "another client is connected, or the session is not Ready"},
                  415: {"description": "the offer is not application/sdp"},
                  502: {"description": "the session's render host did not answer"}})
    async def whep_offer(request: Request, account_id: str, session_id: str) -> Response:
        """WHEP: post an SDP offer (``application/sdp``) to stream the session."""
        _check_session_id(session_id)
        return await gateway.forward(account_of(request), session_id, "POST", "/whep",
                                     body=await request.body(),
                                     content_type=request.headers.get("content-type"))

    @app.options("/accounts/{account_id}/sessions/{session_id}/whep", status_code=204,
                 tags=["signaling"])
    async def whep_options(request: Request, account_id: str, session_id: str) -> Response:
        """The ICE servers to use for this session, as ``Link`` headers (ask before the offer)."""
        _check_session_id(session_id)
        await manager.get(account_of(request), session_id)
        return Response(status_code=204, headers={**gateway.link_headers(account_of(request)),
                                                  "Accept-Post": "application/sdp"})

    @app.get("/accounts/{account_id}/sessions/{session_id}/whep", status_code=204,
             tags=["signaling"])
    @app.get("/accounts/{account_id}/sessions/{session_id}/whep/{resource}", status_code=204,
             tags=["signaling"])
    async def whep_get(request: Request, account_id: str, session_id: str,
                       resource: str | None = None) -> Response:
        """WHEP (as RFC 9725 for WHIP): the endpoint and a connection's resource have no
        representation: ``204``."""
        _check_session_id(session_id)
        if resource is not None:
            _check_session_id(resource, "resource")
        await manager.get(account_of(request), session_id)
        return Response(status_code=204)

    @app.delete("/accounts/{account_id}/sessions/{session_id}/whep/{resource}", status_code=204,
                tags=["signaling"])
    async def whep_end(request: Request, account_id: str, session_id: str,
                       resource: str) -> Response:
        """WHEP: end the connection ``resource``."""
        _check_session_id(session_id)
        _check_session_id(resource, "resource")
        return await gateway.forward(account_of(request), session_id, "DELETE",
                                     f"/whep/{resource}")

    uploads: dict[str, int] = {}  # account → model uploads in flight (MAX_UPLOADS_PER_ACCOUNT)

    @app.put("/accounts/{account_id}/sessions/{session_id}/scene/upload/{name}", tags=["signaling"], responses={
        200: {"description": "the loaded model (as load_model answers)"},
        411: {"description": "no Content-Length"}, 413: {"description": "over the upload limit or the model budget"},
        422: {"description": "not a usable glTF 2.0 model"}})
    async def scene_upload(request: Request, account_id: str, session_id: str, name: str) -> Response:
        """Upload a ``.glb`` file (the body) into the session's scene; it loads as ``name``."""
        _check_session_id(session_id)
        declared = request.headers.get("content-length", "")
        if not declared.isdigit():
            raise ApiError(411, "LengthRequired", "send the model with a Content-Length header")
        account = account_of(request)
        if uploads.get(account, 0) >= MAX_UPLOADS_PER_ACCOUNT:
            raise ApiError(429, "TooManyRequests", f"{MAX_UPLOADS_PER_ACCOUNT} model uploads from "
                           "this account are in progress; wait for one to finish, then upload "
                           "again", headers={"Retry-After": "1"})
        uploads[account] = uploads.get(account, 0) + 1
        try:
            return await gateway.forward(account, session_id, "PUT",
                                         f"/scene/upload/{quote(name, safe='')}", body=request.stream(),
                                         content_type="application/octet-stream",
                                         content_length=int(declared), timeout=UPLOAD_TIMEOUT)
        finally:
            uploads[account] -= 1
            if not uploads[account]:
                del uploads[account]

    @app.post("/accounts/{account_id}/sessions/{session_id}/scene/models", tags=["signaling"])
    async def scene_models(request: Request, account_id: str, session_id: str) -> Response:
        """Load a model into the session's scene: JSON ``{"source": name, path or URL}``."""
        _check_session_id(session_id)
        return await gateway.forward(account_of(request), session_id, "POST", "/scene/models",
                                     body=await request.body(), content_type="application/json")

    @app.get("/accounts/{account_id}/sessions", response_model=None,
             responses={200: {"model": SessionsList}}, tags=["sessions"])
    async def list_sessions(request: Request, account_id: str,
                            api_version: str | None = version_q,
                            maxpagesize: int = Query(100, ge=1, le=MAX_PAGE_SIZE),
                            continuationToken: str | None = Query(None),
                            includeEnded: bool = Query(
                                False, description="farview extension: ended sessions too "
                                "(Stopped, Expired, Error; kept 30 days). ARR lists Starting "
                                "and Ready ones only, as this route does without it")
                            ) -> Response:
        """The account's sessions in Starting or Ready state (ARR's list: ended ones are not
        listed; ``includeEnded=true`` adds them)."""
        _check_version(api_version)
        after = _page_start(continuationToken)
        limits.check(account_of(request), "read")
        records = await manager.list_sessions(account_of(request), after_seq=after,
                                              limit=maxpagesize + 1,
                                              include_ended=includeEnded)
        return _page(request, "sessions", [session_json(r) for r in records],
                     [r.seq for r in records], maxpagesize)

    # -- conversions (ARR 2021-01-01; service/conversions.py) ----------------------------

    @app.put("/accounts/{account_id}/conversions/{conversion_id}", status_code=201,
             tags=["conversions"])
    async def create_conversion(request: Request, account_id: str, conversion_id: str,
                                api_version: str | None = version_q) -> Response:
        """Convert a model file in a storage container (a folder in the account's storage,
        ``<data-dir>/storage/<account id>``) into a ``.glb``: ``{"settings": {"inputLocation": {storageContainerUri,
        relativeInputAssetPath, [blobPrefix]}, "outputLocation": {storageContainerUri,
        [blobPrefix], [outputAssetFilename]}}}``."""
        _check_version(api_version)
        _check_session_id(conversion_id, "conversion")
        limits.check(account_of(request), "create")
        try:
            body = json.loads(await request.body())
        except ValueError:
            raise bad_request("the body is not JSON; send {\"settings\": {...}}") from None
        if not isinstance(body, dict) or not isinstance(body.get("settings"), dict):
            raise bad_request("the body needs a settings object with inputLocation and "
                              "outputLocation", target="settings")
        try:
            rec, created = await converter.create(account_of(request), conversion_id,
                                                  body["settings"])
        except ConversionRequestError as e:
            raise bad_request(e.message, target=e.target) from None
        if created is None:
            raise conflict(f"conversion {conversion_id} exists with other settings; use a new "
                           "conversion id")
        return JSONResponse(conversion_json(rec, _iso), status_code=201 if created else 200)

    @app.get("/accounts/{account_id}/conversions/{conversion_id}", tags=["conversions"])
    async def get_conversion(request: Request, account_id: str, conversion_id: str,
                             api_version: str | None = version_q) -> Response:
        _check_version(api_version)
        _check_session_id(conversion_id, "conversion")
        limits.check(account_of(request), "read")
        rec = await converter.get(account_of(request), conversion_id)
        if rec is None:
            raise ApiError(404, "NotFound", f"no conversion {conversion_id} in this account")
        return JSONResponse(conversion_json(rec, _iso))

    @app.get("/accounts/{account_id}/conversions", tags=["conversions"])
    async def list_conversions(request: Request, account_id: str,
                               api_version: str | None = version_q,
                               maxpagesize: int = Query(100, ge=1, le=MAX_PAGE_SIZE),
                               continuationToken: str | None = Query(None)) -> Response:
        _check_version(api_version)
        after = _page_start(continuationToken)
        limits.check(account_of(request), "read")
        records = await converter.list_for(account_of(request), after_seq=after,
                                           limit=maxpagesize + 1)
        return _page(request, "conversions", [conversion_json(r, _iso) for r in records],
                     [r.seq for r in records], maxpagesize)

    # -- token exchange (ARR's STS) ------------------------------------------------------

    async def token(request: Request, account_id: str,
                    api_version: str | None = version_q) -> Response:
        if api_version is not None:
            _check_version(api_version, TOKEN_API_VERSIONS)
        return JSONResponse({"AccessToken": auth.issue_token(account_of(request))})

    keys_only(token)
    app.get("/accounts/{account_id}/token", tags=["auth"])(token)
    app.get("/Accounts/{account_id}/token", tags=["auth"], include_in_schema=False)(token)

    # -- legacy v1 (the 2020 seed) -------------------------------------------------------

    def legacy_json(rec: SessionRecord) -> dict[str, Any]:
        message = rec.error_message if rec.error_code else ""
        return {
            "sessionId": rec.session_id,
            "sessionStatus": rec.status,
            "sessionSize": rec.size,
            "sessionHostname": rec.hostname or "",
            "sessionElapsedTime": _hms(manager.elapsed_seconds(rec)),
            "sessionMaxLeaseTime": _hms(rec.max_lease_minutes * 60),
            "message": message,
        }

    @app.post("/v1/accounts/{account_id}/sessions/create", status_code=202, tags=["v1"])
    async def legacy_create(request: Request, account_id: str, body: LegacyCreate) -> Response:
        size = body.size.capitalize()
        if size not in TERAFLOPS:
            raise bad_request(f"size {body.size!r} is not standard or premium", target="size")
        limits.check(account_of(request), "create")
        rec, _ = await manager.create(account_of(request), None, size=size,
                                      max_lease_minutes=_parse_hms(body.maxLeaseTime),
                                      models=tuple(body.models))
        return JSONResponse({"sessionId": rec.session_id}, status_code=202, headers={
            "Location": f"/v1/accounts/{account_id}/sessions/{rec.session_id}"})

    @app.get("/v1/accounts/{account_id}/sessions/{session_id}/properties", tags=["v1"])
    async def legacy_properties(request: Request, account_id: str, session_id: str) -> Response:
        _check_session_id(session_id)
        limits.check(account_of(request), "read")
        return JSONResponse(legacy_json(await manager.get(account_of(request), session_id)))

    @app.patch("/v1/accounts/{account_id}/sessions/{session_id}", tags=["v1"])
    async def legacy_update(request: Request, account_id: str, session_id: str,
                            body: LegacyUpdate) -> Response:
        _check_session_id(session_id)
        rec = await manager.update(account_of(request), session_id,
                             max_lease_minutes=_parse_hms(body.maxLeaseTime))
        return JSONResponse(legacy_json(rec))

    @app.delete("/v1/accounts/{account_id}/sessions/{session_id}", status_code=204, tags=["v1"])
    async def legacy_delete(request: Request, account_id: str, session_id: str) -> Response:
        _check_session_id(session_id)
        await manager.stop(account_of(request), session_id)
        return Response(status_code=204)

    @app.get("/v1/accounts/{account_id}/sessions", tags=["v1"])
    async def legacy_list(request: Request, account_id: str) -> Response:
        limits.check(account_of(request), "read")
        records = await manager.list_sessions(account_of(request), after_seq=0, limit=10_000)
        return JSONResponse({"sessions": [legacy_json(r) for r in records]})

    @app.get("/", include_in_schema=False)
    async def root() -> Response:
        return RedirectResponse(WEB_PREFIX + "/", status_code=302)

    app.mount(WEB_PREFIX, StaticFiles(directory=WEB_DIR, html=True), name="viewer")
    app.add_middleware(_Envelope, auth=auth, max_body_bytes=max_body_bytes, router=app.router,
                       max_upload_bytes=max_upload_bytes)
    if cors_origins:
        # outside the envelope: a preflight carries no credential
        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_credentials=False,
                           allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
                           allow_headers=["Authorization", "Content-Type", "MS-CV", "If-Match"],
                           expose_headers=["Location", "Link", "ETag", "MS-CV", "Retry-After"], max_age=600)
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _document_errors(default_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


class ErrorBody(BaseModel):
    """ARR's error body."""

    error: ErrorDetail


def _document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Describe the errors the service really answers: ARR's body with 400 (validation errors,
    not FastAPI's 422 ``HTTPValidationError``), 401 (no body), 404, 409 on create, 413 (any body
    over the limit), 422 on lease updates."""
    schema = json.loads(json.dumps(schema))
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["ErrorBody"] = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    components["ErrorBody"].pop("$defs", None)
    body = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            errors = {"400": "malformed request (the message names the field)", "404": "no such session",
                      "413": "request body over the size limit",
                      "429": "too many creates or reads for the account; Retry-After says when to retry"}
            if method == "put":
                errors["409"] = "the session id exists with other settings"
            if (method == "put" and "/sessions/" in path) or path.endswith("/sessions/create"):
                errors["503"] = ("TooManySessions: the service runs as many sessions as it may "
                                 "(farview serve --max-sessions); stop one or try again later")
                errors["403"] = ("TooManySessions: the account runs as many sessions as one "
                                 "may (farview serve --max-sessions-per-account); stop one")
            if method == "patch":
                errors["422"] = "the lease cannot be changed that way (not larger, over 1440, or ended)"
            for status, description in errors.items():
                responses[status] = {"description": description, "content": body}
            responses["401"] = {"description": 'missing or invalid credential: no body, '
                                'WWW-Authenticate: Bearer error="invalid_token"'}
    return schema


def dumps_openapi(app: FastAPI) -> str:
    return json.dumps(app.openapi(), indent=2)
