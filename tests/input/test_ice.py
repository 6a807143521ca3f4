"""ICE servers as WHIP/WHEP Link headers, and TURN REST credentials (coturn's --use-auth-secret)."""

from __future__ import annotations

import pytest

from farview.input.ice import IceServer, parse_link_headers, servers_for, turn_rest_credentials


def test_link_headers_round_trip_and_ignore_other_relations() -> None:
    servers = [IceServer("stun:stun.example:3478"),
               IceServer("turn:turn.example:3478?transport=udp", "1733000000:acct", "c2VjcmV0Lw=="),
               IceServer("turns:turn.example:5349", "u", "p")]
    header = ", ".join(s.link_header() for s in servers)
    assert servers[1].link_header() == ('<turn:turn.example:3478?transport=udp>; rel="ice-server"; '
                                        'username="1733000000:acct"; credential="c2VjcmV0Lw=="; '
                                        'credential-type="password"')
    assert parse_link_headers([header]) == servers
    other = '<https://example/whep/abc>; rel="urn:ietf:params:whep:ext:core:server-sent-events"'
    assert parse_link_headers([other, servers[0].link_header()]) == servers[:1]
    assert parse_link_headers(['<http://not-ice>; rel="ice-server"']) == []  # not a STUN/TURN URL


def test_turn_rest_credentials_follow_the_shared_secret_scheme() -> None:
    # username "<expiry>:<user>", credential base64(HMAC-SHA1(secret, username)): the vector is
    # what coturn computes for --static-auth-secret=north (checked by the TURN test in
    # tests/network, where a real coturn accepts these credentials)
    username, credential = turn_rest_credentials("north", "acct", lifetime=3600, now=1_700_000_000)
    assert username == "1700003600:acct"
    assert credential == "3EIlwA3lWRT8cCNvV2MEidgn+8Y="
    (stun, turn) = servers_for(("stun:s:3478", "turn:t:3478"), turn_secret="north", user="acct")
    assert stun.username is None and turn.username is not None and turn.username.endswith(":acct")
    with pytest.raises(ValueError, match="starts with stun:"):
        IceServer("http://x")
