"""farview's one exception tree. Every error a user of :mod:`client` can see is one of these.

::

    FarviewError                     (defined in :mod:`farview.input.errors`)
    ├── ProtocolError                an argument or message that breaks the wire format, refused
    │                                before sending (also a ValueError): NaN in a pose, a viewport
    │                                of 0 pixels, a quaternion of zeros
    ├── TimedOutError                a reply or frame did not come in time (also a TimeoutError);
    │                                the connection may still be up
    ├── ServiceError                 the session service answered with an error
    │   ├── BadRequestError          400: malformed body, invalid id, unknown api-version
    │   ├── AuthenticationError      401/403: missing, wrong or expired credential
    │   ├── SessionNotFoundError     404: no such session for this account
    │   ├── ConflictError            409: the id exists with other settings
    │   ├── LeaseError               422: a lease that is not larger / out of range
    │   ├── TooManyRequestsError     429: over the account's rate limit (``retry_after`` seconds)
    │   ├── TooManySessionsError     503/403: the service, or the account, runs as many
    │   │                            sessions as it may
    │   └── ServerError              5xx, or the service could not be reached
    ├── SessionStateError            the session is not Ready (Stopped, Expired, Error, timed out)
    ├── ModelLoadError               a model the session was created with failed to load
    ├── ConnectError                 connecting to the render host failed
    │   ├── OtherClientConnectedError   409: another client holds the host
    │   └── AlreadyConnectedError       this session object is already connected
    ├── ConnectionLostError          the stream dropped or the session ended while connected
    └── RemoteError                  the host refused a control request (code, message, target)

Third-party exceptions (httpx, aiortc) are translated at the boundary; messages say what to do.
"""

from __future__ import annotations

from typing import Any

from farview.input.errors import FarviewError as FarviewError
from farview.input.errors import ProtocolError as ProtocolError


class ServiceError(FarviewError):
    """The session service answered with an error (or could not be reached)."""

    def __init__(self, message: str, *, status_code: int | None = None, code: str | None = None,
                 body: Any = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.body = body


class BadRequestError(ServiceError):
    """400: the request was malformed."""


class AuthenticationError(ServiceError):
    """401/403: the credential is missing, wrong or expired."""


class SessionNotFoundError(ServiceError):
    """404: no such session for this account."""


class ConflictError(ServiceError):
    """409: the session id exists with other settings."""


class LeaseError(ServiceError):
    """422: the lease change is not allowed (not larger, or out of range)."""


class TooManyRequestsError(ServiceError):
    """429: the account is over a rate limit; ``retry_after`` says how many seconds to wait."""

    def __init__(self, message: str, *, retry_after: float = 1.0, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class TooManySessionsError(ServiceError):
    """``TooManySessions``: the service already runs as many sessions as its operator allows
    (503, ``farview serve --max-sessions``), or the account does (403, ``farview serve
    --max-sessions-per-account``); stop one, or create again when one has ended."""


class ServerError(ServiceError):
    """5xx, or the service could not be reached."""


class SessionStateError(FarviewError):
    """The session is not in a state that allows the operation (e.g. not Ready)."""


class ModelLoadError(FarviewError):
    """A start-up model of the session failed to load; the message is the loader's."""


class ConnectError(FarviewError):
    """Connecting to the session's render host failed."""


class OtherClientConnectedError(ConnectError):
    """Another client is connected to this session's host; only one may be."""


class AlreadyConnectedError(ConnectError):
    """This session object already has a live connection."""


class TimedOutError(FarviewError, TimeoutError):
    """A reply or a frame did not come in time. The connection may still be up
    (``conn.is_connected`` says; a lost one raises :class:`ConnectionLostError`), and a request
    that timed out may still be carried out by the host (a ``load_model`` goes on)."""


class ConnectionLostError(FarviewError):
    """The stream dropped, or the session ended while connected."""


class RemoteError(FarviewError):
    """The render host refused a control request."""

    def __init__(self, code: str, message: str, *, target: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.target = target
