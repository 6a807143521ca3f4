"""The render host's one exception tree. Every refusal carries a stable ``code``, which the
control channel and the host's HTTP routes answer with (mapped by type, never by message)::

    HostError                  code: InternalError (the default; anything unexpected)
    ├── ControlError           a refused control request: the code it is given
    ├── SceneError             InvalidArgument; NotFound (unknown entity or cut plane);
    │                          LimitExceeded (a ninth cut plane)
    ├── ModelError             InvalidModel; LimitExceeded (over a triangle or size budget)
    ├── SourceError            where a model comes from: NotFound, InvalidArgument,
    │                          FetchFailed, Timeout, LimitExceeded, Forbidden (the service's
    │                          model source policy refuses it)
    └── EglError               RendererUnavailable: no usable OpenGL context

Malformed wire values (:class:`~farview.input.errors.ProtocolError`) are ``InvalidArgument``.
Messages say what was wrong and what to do.
"""

from __future__ import annotations

INVALID_ARGUMENT = "InvalidArgument"
NOT_FOUND = "NotFound"
LIMIT_EXCEEDED = "LimitExceeded"
INVALID_MODEL = "InvalidModel"
FETCH_FAILED = "FetchFailed"
TIMEOUT = "Timeout"
INTERNAL_ERROR = "InternalError"


class HostError(Exception):
    """Root of the host's errors; ``code`` is what a client is answered with."""

    default_code = INTERNAL_ERROR

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code


class ControlError(HostError):
    """A refused control request: ``ControlError(code, message)``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code)


class SceneError(HostError, ValueError):
    """An invalid scene operation; the message names the entity and the reason."""

    default_code = INVALID_ARGUMENT


BUDGET_TRIANGLES = "triangles"
BUDGET_BYTES = "bytes"
BUDGET_DECODED = "decoded"
"""The decoded-bytes budget: what a model's accessors and images take once decoded."""


class ModelError(HostError, ValueError):
    """A model file is malformed, unsupported, or over a budget; the message says which.
    ``budget`` names the budget it is over (:data:`BUDGET_TRIANGLES`, :data:`BUDGET_BYTES`)."""

    default_code = INVALID_MODEL

    def __init__(self, message: str, *, code: str | None = None, budget: str | None = None
                 ) -> None:
        super().__init__(message, code=code)
        self.budget = budget


class SourceError(HostError):
    """A model source that cannot be used: ``SourceError(code, message)``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code)


class EglError(HostError, RuntimeError):
    """EGL could not give us a usable GL context; the message says which step failed."""

    default_code = "RendererUnavailable"


__all__ = [
    "ControlError",
    "EglError",
    "HostError",
    "ModelError",
    "SceneError",
    "SourceError",
]
