"""WHEP-style signaling over HTTP, both ends.

Server (:class:`WhepEndpoint`, mounted by the host's Starlette app): ``POST`` an SDP offer
(``application/sdp``) → ``201 Created`` with the SDP answer and ``Location: /whep/{id}``;
``DELETE`` that location ends the connection. Exactly one connection at a time: a ``POST``
while one is live → ``409`` naming the reason. Errors are JSON ``{"error": {code, message}}``.

Client (:func:`whep_connect`): creates the offer (ICE gathering completes inside aiortc's
``setLocalDescription``: no trickle), posts it, applies the answer, returns the location.
"""

from __future__ import annotations

import logging
import secrets
import ssl
from collections.abc import Awaitable, Callable
from typing import Protocol

import httpx
from aiortc import RTCPeerConnection, RTCSessionDescription
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from farview.input.ice import IceServer, parse_link_headers

log = logging.getLogger(__name__)

MAX_SDP_BYTES = 64 * 1024
Verify = bool | str | ssl.SSLContext
"""What an https client trusts: the system's CAs (True), nothing (False), a CA file, a context."""


def check_offer(sdp: str) -> None:
    """Refuse (ValueError, the reason) an offer the host cannot answer as a WHEP player
    expects, before anything is set up: aiortc would answer it with a partial success
    (``inactive`` video) or a BUNDLE group the offer never asked for.

    - exactly one video section, ``recvonly`` or ``sendrecv`` (the WHEP draft: a player MUST NOT
      offer ``sendonly`` or ``inactive``; RFC 9725, WHIP, which it follows: tracks the endpoint
      cannot take are refused with 400 or 422), listing H.264 in an ``a=rtpmap``;
    - its media bundled (``a=group:BUNDLE``) when it has more than one section (both: clients
      use max-bundle).
    """
    sections: list[list[str]] = []
    session: list[str] = []
    for line in sdp.splitlines():
        line = line.strip()
        if line.startswith("m="):
            sections.append([line])
        elif sections:
            sections[-1].append(line)
        else:
            session.append(line)
    video = [s for s in sections if s[0].startswith("m=video ")]
    if not video:
        raise ValueError("the offer has no video section; add a recvonly video transceiver")
    if len(video) > 1:
        raise ValueError(f"the offer has {len(video)} video sections; a session sends one "
                         "stream: offer one recvonly video transceiver")
    lines = video[0]
    if not any(ln.startswith("a=rtpmap:") and " H264/" in ln.upper() for ln in lines):
        raise ValueError("the offer has no H.264 video; farview streams H.264 only")
    direction = next((ln[2:] for ln in lines if ln in ("a=sendonly", "a=inactive")), None)
    if direction is not None:
        raise ValueError(f"the offer's video is {direction}; a player receives the stream: offer "
                         "it recvonly (or sendrecv)")
    if len(sections) > 1 and not any(ln.startswith("a=group:BUNDLE ") for ln in session):
        raise ValueError("the offer does not bundle its media (no a=group:BUNDLE): WHEP "
                         "players use max-bundle")


class SignalingError(Exception):
    """The host refused the offer. ``status`` is the HTTP status (409: another client)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class WhepConnection(Protocol):
    """What the endpoint needs of a live connection."""

    @property
    def is_live(self) -> bool: ...

    async def close(self, reason: str) -> None: ...


Accept = Callable[[RTCSessionDescription], Awaitable[tuple[RTCSessionDescription, WhepConnection]]]


def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it passes ``limit`` bytes (a declared
    Content-Length over it is refused before reading; nothing over it is ever buffered)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class WhepEndpoint:
    """The host side of WHEP with single-client exclusivity.

    ``accept(offer)`` builds the connection and returns ``(answer, connection)``; it is called
    with the slot already reserved, so two racing offers cannot both win.
    """

    def __init__(self, accept: Accept, *, busy_message: str = "another client is connected to this session") -> None:
        self._accept = accept
        self._busy_message = busy_message
        self._current: tuple[str, WhepConnection] | None = None
        self._reserved = False

    @property
    def current(self) -> WhepConnection | None:
        if self._current is not None and not self._current[1].is_live:
            self._current = None
        return None if self._current is None else self._current[1]

    async def post(self, request: Request) -> Response:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/sdp":
            return _error(415, "UnsupportedMediaType",
                          f"send the SDP offer with Content-Type application/sdp, not {ctype or 'nothing'}")
        body = await read_body(request, MAX_SDP_BYTES)
        if body is None:
            return _error(413, "PayloadTooLarge", f"SDP offer over {MAX_SDP_BYTES} bytes")
        try:
            sdp = body.decode("utf-8")
        except UnicodeDecodeError:
            return _error(400, "BadRequest", "SDP offer is not UTF-8 text")
        if not sdp.startswith("v=0") or "m=" not in sdp:
            return _error(400, "BadRequest",
                          "body is not an SDP offer (it must start with 'v=0' and have media sections)")
        if self._reserved or self.current is not None:
            return _error(409, "Conflict", self._busy_message)
        self._reserved = True
        try:
            answer, connection = await self._accept(RTCSessionDescription(sdp=sdp, type="offer"))
        except ValueError as exc:
            return _error(400, "BadRequest", f"SDP offer was refused: {exc}")
        finally:
            self._reserved = False
        conn_id = secrets.token_urlsafe(12)
        self._current = (conn_id, connection)
        return Response(answer.sdp, status_code=201, media_type="application/sdp",
                        headers={"Location": f"/whep/{conn_id}"})

    async def delete(self, request: Request, conn_id: str) -> Response:
        if self._current is None or self._current[0] != conn_id:
            return _error(404, "NotFound", f"no connection {conn_id} on this host")
        _, connection = self._current
        self._current = None
        await connection.close("client ended the connection")
        return Response(status_code=204)

    def release(self, connection: WhepConnection) -> None:
        """Free the slot when ``connection`` ended on its own (dropped client)."""
        if self._current is not None and self._current[1] is connection:
            self._current = None


async def whep_connect(pc: RTCPeerConnection, url: str, token: str, *,
                       verify: Verify = True, timeout: float = 10.0) -> str:
    """Offer ``pc`` to the WHEP endpoint at ``url``; returns the connection's absolute URL."""
    offer = await pc.createOffer()
    await pc.setLocalDescription(offer)
    async with httpx.AsyncClient(verify=verify, timeout=timeout) as http:
        try:
            resp = await http.post(url, content=pc.localDescription.sdp.encode(), headers={
                "Content-Type": "application/sdp", "Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            raise SignalingError(0, "Unreachable", f"render host at {url} did not answer: {exc}") from None
    if resp.status_code != 201:
        code, message = "Error", resp.text
        try:
            err = resp.json()["error"]
            code, message = err["code"], err["message"]
        except (ValueError, KeyError, TypeError):
            pass
        raise SignalingError(resp.status_code, code, message)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=resp.text, type="answer"))
    location = resp.headers.get("location", "")
    return str(httpx.URL(url).join(location))


async def whep_ice_servers(url: str, token: str, *, verify: Verify = True,
                           timeout: float = 10.0) -> list[IceServer]:
    """The ICE servers a WHEP endpoint tells its clients to use (``OPTIONS``, ``Link`` headers),
    asked before the offer is made: without trickle ICE the offer must carry relay candidates
    already. An endpoint that lists none (or does not answer ``OPTIONS``) gives none."""
    async with httpx.AsyncClient(verify=verify, timeout=timeout, trust_env=False) as http:
        try:
            resp = await http.options(url, headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            raise SignalingError(0, "Unreachable", f"{url} did not answer: {exc}") from None
    if resp.status_code >= 400:
        return []
    return parse_link_headers(resp.headers.get_list("link"))


async def whep_disconnect(location: str, token: str, *, verify: Verify = True) -> None:
    """``DELETE`` the connection; errors are logged, not raised (the host also detects drops)."""
    try:
        async with httpx.AsyncClient(verify=verify, timeout=3.0) as http:
            await http.delete(location, headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        log.info("could not tell the host we are leaving: %s", exc)
