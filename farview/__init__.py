"""farview: self-hosted remote rendering. The public API in one place::

    from farview import RemoteRenderingClient, Pose

The subpackages follow the architecture (``docs/architecture.md``): :mod:`farview.input` (pure
wire formats and pose math), :mod:`farview.streaming` (WebRTC for both ends),
:mod:`farview.host` (the render host), :mod:`farview.service` (the session service) and
:mod:`farview.client` (this API, the commands, the viewer).

Importing ``farview`` loads nothing: each name is imported from its subpackage when first used,
so ``import farview.input`` stays pure, and no aiortc, PyAV, OpenGL or glfw is loaded until a
connection or a window is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from farview._lazy import lazy_exports

if TYPE_CHECKING:
    from farview.client import (
        AlreadyConnectedError,
        AsyncRemoteRenderingClient,
        AsyncRenderingSession,
        AuthenticationError,
        BadRequestError,
        ConflictError,
        ConnectError,
        ConnectionLostError,
        FarviewError,
        Frame,
        FrameStatistics,
        LeaseError,
        ModelLoadError,
        OtherClientConnectedError,
        ProtocolError,
        RemoteError,
        RemoteRenderingClient,
        RenderingSession,
        ServerError,
        ServiceError,
        SessionNotFoundError,
        SessionProperties,
        SessionStateError,
        TimedOutError,
        TooManyRequestsError,
        TooManySessionsError,
    )
    from farview.input import Action, EventKind, Fov, InputEvent, Pose, PoseMessage, PoseRequest, View

_HOMES = {
    "AlreadyConnectedError": "farview.client",
    "AsyncRemoteRenderingClient": "farview.client",
    "AsyncRenderingSession": "farview.client",
    "AuthenticationError": "farview.client",
    "BadRequestError": "farview.client",
    "ConflictError": "farview.client",
    "ConnectError": "farview.client",
    "ConnectionLostError": "farview.client",
    "FarviewError": "farview.client",
    "Frame": "farview.client",
    "FrameStatistics": "farview.client",
    "LeaseError": "farview.client",
    "ModelLoadError": "farview.client",
    "OtherClientConnectedError": "farview.client",
    "ProtocolError": "farview.client",
    "RemoteError": "farview.client",
    "RemoteRenderingClient": "farview.client",
    "RenderingSession": "farview.client",
    "ServerError": "farview.client",
    "ServiceError": "farview.client",
    "SessionNotFoundError": "farview.client",
    "SessionProperties": "farview.client",
    "SessionStateError": "farview.client",
    "TimedOutError": "farview.client",
    "TooManyRequestsError": "farview.client",
    "TooManySessionsError": "farview.client",
    "Action": "farview.input",
    "EventKind": "farview.input",
    "Fov": "farview.input",
    "InputEvent": "farview.input",
    "Pose": "farview.input",
    "PoseMessage": "farview.input",
    "PoseRequest": "farview.input",
    "View": "farview.input",
}
"""Where each public name lives."""

__all__ = [
    "Action",
    "AlreadyConnectedError",
    "AsyncRemoteRenderingClient",
    "AsyncRenderingSession",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "ConnectError",
    "ConnectionLostError",
    "EventKind",
    "FarviewError",
    "Fov",
    "Frame",
    "FrameStatistics",
    "InputEvent",
    "LeaseError",
    "ModelLoadError",
    "OtherClientConnectedError",
    "Pose",
    "PoseMessage",
    "PoseRequest",
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
    "View",
]


__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
