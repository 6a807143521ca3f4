"""ICE servers (STUN/TURN) as WHIP/WHEP carry them: ``Link`` headers, and TURN credentials
derived from a shared secret (the "TURN REST API" scheme coturn implements with
``--use-auth-secret``).

A WHEP endpoint lists the servers a client should use in ``Link`` headers (RFC 9725, section
4.4, and the WHEP draft)::

    Link: <turn:turn.example:3478?transport=udp>; rel="ice-server"; username="1733000000:acct";
          credential="...base64..."; credential-type="password"

A TURN REST credential is ``username = "<expiry unix time>:<user>"`` and
``credential = base64(HMAC-SHA1(secret, username))``: the TURN server checks it with the same
secret, and it stops working at the expiry. Pure functions.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass, field

DEFAULT_TURN_CREDENTIAL_SECONDS = 24 * 3600
"""How long a derived TURN credential stays valid."""
_LINK = re.compile(r'\s*<([^>]*)>\s*((?:;\s*[\w-]+\s*=\s*(?:"[^"]*"|[^;,]*)\s*)*)')
_PARAM = re.compile(r';\s*([\w-]+)\s*=\s*(?:"([^"]*)"|([^;,]*))')


@dataclass(frozen=True)
class IceServer:
    """One STUN or TURN server for a peer connection."""

    url: str
    """``stun:host:port``, ``turn:host:port?transport=udp|tcp`` or ``turns:host:port``."""
    username: str | None = None
    credential: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.url.startswith(("stun:", "stuns:", "turn:", "turns:")):
            raise ValueError(f"an ICE server URL starts with stun:, stuns:, turn: or turns:, "
                             f"got {self.url!r}")

    def link_header(self) -> str:
        """This server as a WHIP/WHEP ``Link`` header value."""
        value = f'<{self.url}>; rel="ice-server"'
        if self.username is not None and self.credential is not None:
            value += (f'; username="{self.username}"; credential="{self.credential}"; '
                      'credential-type="password"')
        return value


def turn_rest_credentials(secret: str, user: str, *, lifetime: float = DEFAULT_TURN_CREDENTIAL_SECONDS,
                          now: float | None = None) -> tuple[str, str]:
    """(username, credential) for ``user``, valid ``lifetime`` seconds (TURN REST API)."""
    expiry = int((time.time() if now is None else now) + lifetime)
    username = f"{expiry}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def servers_for(urls: tuple[str, ...], *, turn_secret: str | None, user: str,
                lifetime: float = DEFAULT_TURN_CREDENTIAL_SECONDS) -> list[IceServer]:
    """The configured servers for ``user``: TURN ones with fresh credentials from the secret."""
    out = []
    for url in urls:
        if url.startswith(("turn:", "turns:")) and turn_secret:
            username, credential = turn_rest_credentials(turn_secret, user, lifetime=lifetime)
            out.append(IceServer(url, username, credential))
        else:
            out.append(IceServer(url))
    return out


def parse_link_headers(values: list[str]) -> list[IceServer]:
    """The ``rel="ice-server"`` entries of ``Link`` header values (others are ignored)."""
    servers = []
    for value in values:
        for match in _LINK.finditer(value):
            params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3).strip()
                      for m in _PARAM.finditer(match.group(2))}
            if params.get("rel") != "ice-server":
                continue
            try:
                servers.append(IceServer(match.group(1), params.get("username"),
                                         params.get("credential")))
            except ValueError:
                continue
    return servers
