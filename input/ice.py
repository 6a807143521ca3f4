"""ICE servers (STUN/TURN) as WHIP/WHEP carry them: ``Link`` headers, and TURN credentials
derived from a shared secret (the "TURN REST API" scheme coturn implements with
``--use-auth-secret``).

A WHEP endpoint lists the servers a client should use in ``Link`` headers (the WHEP draft,
draft-ietf-wish-whep, as RFC 9725 does for WHIP)::

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
import ipaddress
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


@dataclass(frozen=True)
class MediaNetwork:
    """Where a render host's own ICE candidates live: which local addresses it gathers on
    (empty: every interface but loopback), which UDP ports it binds (None: ephemeral), and the
    public address a 1:1 NAT maps to it, announced beside the private one."""

    addresses: tuple[str, ...] = ()
    ports: tuple[int, int] | None = None
    announced: str | None = None

    def __post_init__(self) -> None:
        for address in (*self.addresses, *((self.announced,) if self.announced else ())):
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ValueError(f"{address!r} is not an IP address") from None
        if self.ports is not None:
            low, high = self.ports
            if not 1024 <= low <= high <= 65535:
                raise ValueError(f"a media port range is LOW-HIGH within 1024-65535, got {low}-{high}")


def parse_port_range(text: str) -> tuple[int, int]:
    """``"50000-50100"`` → (50000, 50100); a ValueError that says the form otherwise."""
    match = re.fullmatch(r"\s*(\d{1,5})\s*-\s*(\d{1,5})\s*", text)
    if not match:
        raise ValueError(f"a port range is LOW-HIGH (e.g. 50000-50100), got {text!r}")
    low, high = int(match.group(1)), int(match.group(2))
    MediaNetwork(ports=(low, high))  # the bounds check
    return low, high


_HOST_CANDIDATE = re.compile(r"^a=candidate:(\S+) (\d+) (udp|UDP) (\d+) (\S+) (\d+) typ host(.*)$")


def announce_address(sdp: str, public: str) -> str:
    """``sdp`` with, after each host candidate, the same candidate at ``public`` (a 1:1 NAT keeps
    the port): a client outside reaches the public one, one inside the private one. The copy
    ranks just below its original and has its own foundation."""
    out = []
    for line in sdp.splitlines(keepends=True):
        out.append(line)
        match = _HOST_CANDIDATE.match(line.rstrip("\r\n"))
        if match and match.group(5) != public:
            foundation, component, transport, priority, _, port, rest = match.groups()
            ending = line[len(line.rstrip("\r\n")):]
            out.append(f"a=candidate:{foundation}n {component} {transport} {int(priority) - 1} "
                       f"{public} {port} typ host{rest}{ending}")
    return "".join(out)
