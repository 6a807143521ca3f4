"""Peer-connection setup shared by host and client: ICE config and the four data channels.

The client is the WHEP offerer, so it creates the data channels; the host receives them by
label. No STUN/TURN unless configured (``iceServers=[]``): aiortc would otherwise add a public
STUN server and wait up to 5 s for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpSender,
)

from farview.input.ice import IceServer
from farview.streaming._aiortc_patches import MAX_REASSEMBLED_MESSAGE, apply_global_patches

MAX_CHANNEL_MESSAGE = MAX_REASSEMBLED_MESSAGE
"""Largest data-channel message either side accepts, in bytes; bigger ones are counted and
dropped. Every peer made by :func:`create_peer_connection` drops them while SCTP reassembles
them (``_aiortc_patches`` patch 5), so a bigger message is never held in memory whole."""


@dataclass(frozen=True)
class ChannelSpec:
    label: str
    ordered: bool
    max_retransmits: int | None


POSE = ChannelSpec("pose", ordered=False, max_retransmits=0)
INPUT = ChannelSpec("input", ordered=True, max_retransmits=None)
CONTROL = ChannelSpec("control", ordered=True, max_retransmits=None)
FRAMES = ChannelSpec("frames", ordered=False, max_retransmits=0)
CHANNELS = (POSE, INPUT, CONTROL, FRAMES)


def h264_codecs() -> list[RTCRtpCodecCapability]:
    """The video codecs farview negotiates, for ``setCodecPreferences`` on either side: H.264
    with ``packetization-mode=1`` (the encoder emits constrained baseline, SPS ``42c0xx``),
    constrained baseline (``42e01f``) first, then baseline, and RTX."""
    codecs = RTCRtpSender.getCapabilities("video").codecs
    h264 = [c for c in codecs if c.mimeType.lower() == "video/h264"
            and c.parameters.get("packetization-mode") == "1"]
    h264.sort(key=lambda c: str(c.parameters.get("profile-level-id", "")).lower() != "42e01f")
    return h264 + [c for c in codecs if c.mimeType.lower() == "video/rtx"]


def create_peer_connection(ice_servers: Sequence[IceServer] = (), *,
                           relay_only: bool = False) -> RTCPeerConnection:
    """A peer connection with farview's ICE configuration and aiortc workarounds applied: the
    given STUN/TURN servers, none by default (aiortc would add a public STUN server).
    ``relay_only``: only TURN relay candidates (WebRTC's ``iceTransportPolicy: "relay"``)."""
    apply_global_patches()
    servers = [RTCIceServer(s.url, s.username, s.credential) for s in ice_servers]
    policy = RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL
    return RTCPeerConnection(RTCConfiguration(iceServers=servers, iceTransportPolicy=policy))
