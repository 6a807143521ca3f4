"""ICE servers as WHIP/WHEP Link headers, and TURN REST credentials (coturn's --use-auth-secret)."""

from __future__ import annotations

import pytest

from farview.input.ice import (
    IceServer,
    MediaNetwork,
    announce_address,
    parse_link_headers,
    parse_port_range,
    servers_for,
    turn_rest_credentials,
)
from farview.input.launch import HostConfig


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


ANSWER = (
    "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 97\r\n"
    "a=candidate:8bd4f2a1 1 udp 2130706431 10.0.0.5 50101 typ host\r\n"
    "a=candidate:1f0c2b33 1 udp 1694498815 198.51.100.7 50101 typ srflx raddr 10.0.0.5 rport 50101\r\n"
    "a=end-of-candidates\r\n"
)


def test_announce_address_adds_the_public_copy_of_each_host_candidate() -> None:
    out = announce_address(ANSWER, "203.0.113.9")
    lines = out.split("\r\n")
    i = lines.index("a=candidate:8bd4f2a1 1 udp 2130706431 10.0.0.5 50101 typ host")
    assert lines[i + 1] == "a=candidate:8bd4f2a1n 1 udp 2130706430 203.0.113.9 50101 typ host"
    assert out.count("typ srflx") == 1 and out.count("203.0.113.9") == 1  # srflx untouched
    assert announce_address(ANSWER, "10.0.0.5") == ANSWER  # already the host's own


def test_media_network_checks_its_values() -> None:
    assert parse_port_range("50000-50100") == (50000, 50100)
    assert parse_port_range(" 50000 - 50000 ") == (50000, 50000)
    for bad in ("50000", "50100-50000", "80-90", "50000-70000", "a-b", ""):
        with pytest.raises(ValueError, match="port range"):
            parse_port_range(bad)
    with pytest.raises(ValueError, match=r"'example\.com' is not an IP address"):
        MediaNetwork(announced="example.com")
    with pytest.raises(ValueError, match="'eth0' is not an IP address"):
        MediaNetwork(addresses=("eth0",))


def test_host_config_carries_the_media_network() -> None:
    media = MediaNetwork(addresses=("10.0.0.5",), ports=(50000, 50010), announced="203.0.113.9")
    config = HostConfig(session_id="s", account_id="a", token_public_key="k", media=media)
    assert HostConfig.from_json(config.to_json()).media == media
    assert HostConfig.from_json(HostConfig(session_id="s", account_id="a",
                                           token_public_key="k").to_json()).media == MediaNetwork()
