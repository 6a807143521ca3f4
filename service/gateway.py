"""The signaling gateway: the service is the one public endpoint of every session.

A client reaches a session's WHEP resource and scene upload at the service's own origin, with
the same credentials as the REST API (account key or access token, checked by the envelope):

- ``POST   /accounts/{account}/sessions/{id}/whep`` (``application/sdp`` offer) → the host's
  answer, ``201`` with ``Location: /accounts/{account}/sessions/{id}/whep/{resource}``;
- ``DELETE /accounts/{account}/sessions/{id}/whep/{resource}`` → ends that connection;
- ``POST   /accounts/{account}/sessions/{id}/scene/models`` (JSON ``{"source"}``);
- ``PUT    /accounts/{account}/sessions/{id}/scene/upload/{name}.glb`` (the model file, streamed
  through to the host, up to the service's ``max_upload_bytes``).

The gateway forwards each to the session's render host, which keeps listening on loopback only,
with a short-lived access token of the session's account; the host's status and body come back
as they are (``409`` while another client is connected, ``400``/``413``/``415`` for a bad offer),
with the ``Location`` moved under the service's origin. A session that is not Ready answers
``409`` saying what it is; one the account does not have, ``404``; a host that does not answer,
``502``. Bodies are bounded by the service's envelope (64 KiB). Media then flows peer to peer
over ICE, not through here.

Concurrency: coroutines on the service's event loop; one pooled httpx client.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
from fastapi.responses import Response

from farview.input.ice import servers_for
from farview.service.auth import Authenticator
from farview.service.errors import ApiError
from farview.service.lifecycle import SessionManager
from farview.service.store import READY, STARTING

log = logging.getLogger(__name__)

FORWARD_TIMEOUT = 30.0
"""Seconds a host may take to answer an offer (it gathers its ICE candidates first)."""
UPLOAD_TIMEOUT = 600.0
"""Seconds an upload may take to reach the host and load there."""
MAX_UPLOADS_PER_ACCOUNT = 2
"""Model uploads one account may have in flight through the service (a load each on a host,
which runs two at once): 100 stalled uploads from one account took every connection the
service forwards through, and every other account's scene loads failed."""
FORWARD_TOKEN_SECONDS = 120
"""Lifetime of the access token the gateway shows the host for one forwarded request."""
_PASSED_HEADERS = ("content-type", "link", "etag")


class HostGateway:
    """Forwards a session's WHEP signaling and scene uploads to its render host."""

    def __init__(self, manager: SessionManager, auth: Authenticator, *,
                 ice_servers: tuple[str, ...] = (), turn_secret: str | None = None) -> None:
        self._manager = manager
        self._auth = auth
        self._ice_servers = ice_servers
        self._turn_secret = turn_secret
        self._http = httpx.AsyncClient(trust_env=False, timeout=FORWARD_TIMEOUT)

    def link_headers(self, account_id: str) -> dict[str, str]:
        """The configured STUN/TURN servers as one ``Link`` header (TURN credentials derived
        for ``account_id`` from the shared secret); empty when none are configured."""
        servers = servers_for(self._ice_servers, turn_secret=self._turn_secret, user=account_id)
        return {"Link": ", ".join(s.link_header() for s in servers)} if servers else {}

    async def close(self) -> None:
        await self._http.aclose()

    async def forward(self, account_id: str, session_id: str, method: str, host_path: str, *,
                      body: bytes | AsyncIterator[bytes] = b"", content_type: str | None = None,
                      content_length: int | None = None, timeout: float = FORWARD_TIMEOUT) -> Response:
        """Send ``method host_path`` to the session's host; its answer, as the client sees it.
        ``body`` may be a stream (an upload: passed on as it arrives, never held whole)."""
        record = await self._manager.get(account_id, session_id)
        if record.status != READY or not record.hostname or not record.handshake_port:
            what = ("wait until it is Ready" if record.status == STARTING
                    else "create a new session")
            # (the WHEP draft: a stream not live yet is a 409 with Retry-After)
            retry = {"Retry-After": "1"} if record.status == STARTING else None
            raise ApiError(409, "SessionNotReady", f"session {session_id} is {record.status}; {what}",
                           headers=retry)
        token = self._auth.issue_token(account_id, lifetime=FORWARD_TOKEN_SECONDS)
        headers = {"Authorization": f"Bearer {token}"}
        if content_type:
            headers["Content-Type"] = content_type
        if content_length is not None:
            headers["Content-Length"] = str(content_length)
        url = f"http://{record.hostname}:{record.handshake_port}{host_path}"
        try:
            answer = await self._http.request(method, url, content=body, headers=headers, timeout=timeout)
        except httpx.HTTPError as exc:
            log.warning("session %s: its render host did not answer %s %s: %s", session_id,
                        method, host_path, exc)
            raise ApiError(502, "BadGateway", f"session {session_id}'s render host did not answer "
                           f"({type(exc).__name__}); try again, or create a new session") from None
        if answer.status_code == 401:  # the gateway's own token refused: never the client's fault
            log.error("session %s: the render host refused the gateway's token: %s", session_id,
                      answer.text[:200])
            raise ApiError(502, "BadGateway", f"session {session_id}'s render host refused the "
                           "service; create a new session")
        passed = {k: v for k, v in answer.headers.items() if k.lower() in _PASSED_HEADERS}
        location = answer.headers.get("location")
        if location and location.startswith("/whep/"):
            passed["Location"] = (f"/accounts/{quote(account_id, safe='')}/sessions/{session_id}"
                                  f"/whep/{location.removeprefix('/whep/')}")
            passed.update(self.link_headers(account_id))
        return Response(answer.content, status_code=answer.status_code, headers=passed)
