"""The render host's HTTP surface: health and WHEP-style signaling.

Routes (all need ``Authorization: Bearer <access token>``):

- ``GET /health`` → 200 ``{"status": "ok", "session_id": ...}``
- ``POST /whep`` (``application/sdp`` offer) → 201, the SDP answer, ``Location: /whep/{id}``;
  409 while another client is connected; 400 for an SDP that is not an offer.
- ``DELETE /whep/{id}`` → 204.
- ``POST /scene/models`` JSON ``{"source": "name | host path | http(s) URL"}`` → 200
  ``{"root": id, "name": ..., ...}`` (see :meth:`host.scene_api.SceneService.load`), or 400/404/
  413/422/504 with ``{"error": {"code", "message"}}``; loads a model into a running session
  without a streaming connection (``farview`` CLI).
- ``PUT /scene/upload/{name}.glb`` (the file as the body, up to the model budget) → the same
  answers; loads an uploaded model (the web viewer's "Upload").

Runs on the host's single asyncio loop (uvicorn's), which also runs aiortc.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from farview.host.auth import verify_bearer
from farview.host.errors import HostError
from farview.input.jsondepth import nests_deeper
from farview.input.launch import HostConfig
from farview.streaming.whep import read_body

log = logging.getLogger(__name__)

UPLOAD_NAME = re.compile(r"[A-Za-z0-9._-]{1,124}\.glb", re.IGNORECASE)
"""What an uploaded model may be called: a plain ``.glb`` file name (one file; a ``.gltf`` with
files beside it cannot be sent as one body)."""
MAX_JSON_BODY_BYTES = 64 * 1024
"""Largest JSON body a host route reads (the scene upload takes a source name, path or URL)."""


def _unauthorized(reason: str) -> Response:
    return JSONResponse(
        {"error": {"code": "Unauthorized", "message": reason}},
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def create_app(config: HostConfig, signaling: Any = None, scene_api: Any = None) -> Starlette:
    """Build the host's ASGI app. ``signaling`` handles ``/whep`` (None: answer 503);
    ``scene_api`` (a :class:`host.scene_api.SceneService`) serves ``/scene/models``."""

    def check(request: Request) -> Response | None:
        reason = verify_bearer(request.headers.get("authorization"), key=config.token_public_key,
                               account_id=config.account_id)
        return _unauthorized(reason) if reason else None

    async def health(request: Request) -> Response:
        if (denied := check(request)) is not None:
            return denied
        return JSONResponse({"status": "ok", "session_id": config.session_id})

    async def whep_post(request: Request) -> Response:
        if (denied := check(request)) is not None:
            return denied
        if signaling is None:
            return JSONResponse(
                {"error": {"code": "ServiceUnavailable",
                           "message": "this host does not stream yet"}}, status_code=503)
        result: Response = await signaling.post(request)
        return result

    async def whep_delete(request: Request) -> Response:
        if (denied := check(request)) is not None:
            return denied
        if signaling is None:
            return Response(status_code=404)
        result: Response = await signaling.delete(request, request.path_params["conn_id"])
        return result

    def scene_denied(request: Request) -> Response | None:
        """401 for a bad token, 503 on a host without a scene API; None: go on."""
        if (denied := check(request)) is not None:
            return denied
        if scene_api is None:
            return JSONResponse({"error": {"code": "ServiceUnavailable",
                                           "message": "this host has no scene API"}},
                                status_code=503)
        return None

    async def scene_models_post(request: Request) -> Response:
        if (denied := scene_denied(request)) is not None:
            return denied
        raw = await read_body(request, MAX_JSON_BODY_BYTES)
        if raw is None:
            return JSONResponse({"error": {"code": "PayloadTooLarge", "message":
                                           f"the body is over {MAX_JSON_BODY_BYTES} bytes"}},
                                status_code=413)
        body: Any = None
        if not nests_deeper(raw):  # json.loads recurses: a deep body must not reach it
            with contextlib.suppress(ValueError):
                body = json.loads(raw)
        if not isinstance(body, dict) or not isinstance(body.get("source"), str):
            return JSONResponse({"error": {"code": "InvalidArgument", "message":
                                           'body must be JSON {"source": "<name, path or URL>"}'}},
                                status_code=400)
        return await _loaded(lambda: scene_api.load(body["source"]))

    async def scene_upload_put(request: Request) -> Response:
        """``PUT /scene/upload/{name}``: the body is a ``.glb`` file; it is loaded as ``name``."""
        if (denied := scene_denied(request)) is not None:
            return denied
        name = request.path_params["name"]
        if not UPLOAD_NAME.fullmatch(name):
            return JSONResponse({"error": {"code": "InvalidArgument", "message":
                                           f"upload name {name[:80]!r} must be a file name ending in .glb "
                                           "(letters, digits, '.', '-', '_'; at most 128); convert other formats "
                                           "first (farview convert)"}}, status_code=400)
        limit = scene_api.budgets.max_bytes
        try:
            with scene_api.load_slot(name):  # before the body is read: a free load, or "busy"
                raw = await read_body(request, limit)
                if raw is None:
                    return JSONResponse({"error": {"code": "PayloadTooLarge", "message":
                                                   f"the model is over the host's {limit:,}-byte model "
                                                   "budget (FARVIEW_MAX_MODEL_BYTES on the host)"}},
                                        status_code=413)
                return await _loaded(lambda: scene_api.load_reserved(name, raw))
        except HostError as exc:  # (only load_slot's: _loaded answers the load's own)
            return JSONResponse({"error": {"code": exc.code, "message": exc.message}},
                                status_code=429, headers={"Retry-After": "1"})

    async def _loaded(load: Any) -> Response:
        try:
            result = await load()
        except HostError as exc:
            status = {"NotFound": 404, "Forbidden": 403, "LimitExceeded": 413, "InvalidModel": 422,
                      "FetchFailed": 502, "Timeout": 504}.get(exc.code, 400)
            return JSONResponse({"error": {"code": exc.code, "message": exc.message}},
                                status_code=status)
        return JSONResponse(result)

    return Starlette(routes=[
        Route("/scene/models", scene_models_post, methods=["POST"]),
        Route("/scene/upload/{name}", scene_upload_put, methods=["PUT"]),
        Route("/health", health, methods=["GET"]),
        Route("/whep", whep_post, methods=["POST"]),
        Route("/whep/{conn_id}", whep_delete, methods=["DELETE"]),
    ])
