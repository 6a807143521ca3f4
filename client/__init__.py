"""farview's client library: the REST client, sessions, the live connection and the scene API.

Importing this package loads nothing (each name is imported from its module when first used),
so the commands start fast and ``farview serve`` never loads the client library; the connection
(:mod:`farview.client.connection`: aiortc, PyAV) is imported when first used. The commands
live in :mod:`farview.client.cli`, the desktop viewer in :mod:`farview.client.viewer`, headset
mode in :mod:`farview.client.headset`, ``farview bench`` in :mod:`farview.client.bench`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from farview._lazy import lazy_exports

if TYPE_CHECKING:
    from farview.client.errors import (
        AlreadyConnectedError,
        AuthenticationError,
        BadRequestError,
        ConflictError,
        ConnectError,
        ConnectionLostError,
        FarviewError,
        LeaseError,
        ModelLoadError,
        OtherClientConnectedError,
        ProtocolError,
        RemoteError,
        ServerError,
        ServiceError,
        SessionNotFoundError,
        SessionStateError,
        TimedOutError,
        TooManyRequestsError,
        TooManySessionsError,
    )
    from farview.client.rest import AsyncRemoteRenderingClient, RemoteRenderingClient
    from farview.client.session import AsyncRenderingSession, RenderingSession, SessionProperties
    from farview.streaming.frame import Frame
    from farview.streaming.stats import FrameStatistics

_HOMES = {
    "AlreadyConnectedError": "farview.client.errors",
    "AsyncRemoteRenderingClient": "farview.client.rest",
    "AsyncRenderingSession": "farview.client.session",
    "AuthenticationError": "farview.client.errors",
    "BadRequestError": "farview.client.errors",
    "ConflictError": "farview.client.errors",
    "ConnectError": "farview.client.errors",
    "ConnectionLostError": "farview.client.errors",
    "FarviewError": "farview.client.errors",
    "Frame": "farview.streaming.frame",
    "FrameStatistics": "farview.streaming.stats",
    "LeaseError": "farview.client.errors",
    "ModelLoadError": "farview.client.errors",
    "OtherClientConnectedError": "farview.client.errors",
    "ProtocolError": "farview.client.errors",
    "RemoteError": "farview.client.errors",
    "RemoteRenderingClient": "farview.client.rest",
    "RenderingSession": "farview.client.session",
    "ServerError": "farview.client.errors",
    "ServiceError": "farview.client.errors",
    "SessionNotFoundError": "farview.client.errors",
    "SessionProperties": "farview.client.session",
    "SessionStateError": "farview.client.errors",
    "TimedOutError": "farview.client.errors",
    "TooManyRequestsError": "farview.client.errors",
    "TooManySessionsError": "farview.client.errors",
}
"""Where each public name lives."""

__all__ = [
    "AlreadyConnectedError",
    "AsyncRemoteRenderingClient",
    "AsyncRenderingSession",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "ConnectError",
    "ConnectionLostError",
    "FarviewError",
    "Frame",
    "FrameStatistics",
    "LeaseError",
    "ModelLoadError",
    "OtherClientConnectedError",
    "ProtocolError",
    "RemoteError",
    "RemoteRenderingClient",
    "RenderingSession",
    "ServerError",
    "ServiceError",
    "SessionNotFoundError",
    "SessionProperties",
    "SessionStateError",
    "TimedOutError",
    "TooManyRequestsError",
    "TooManySessionsError",
]

__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
