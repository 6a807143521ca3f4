"""farview's client: the REST client, sessions, the live connection and the scene API.

Importing this package stays light (no aiortc, PyAV or OpenGL): the connection and the viewer
are imported when first used.
"""

from farview.client.errors import (
    AlreadyConnectedError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ConnectError,
    ConnectionLostError,
    FarviewError,
    LeaseError,
    OtherClientConnectedError,
    RemoteError,
    ServerError,
    ServiceError,
    SessionNotFoundError,
    SessionStateError,
)
from farview.client.rest import AsyncRemoteRenderingClient, RemoteRenderingClient
from farview.client.session import AsyncRenderingSession, RenderingSession, SessionProperties

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
    "LeaseError",
    "OtherClientConnectedError",
    "RemoteError",
    "RemoteRenderingClient",
    "RenderingSession",
    "ServerError",
    "ServiceError",
    "SessionNotFoundError",
    "SessionProperties",
    "SessionStateError",
]
