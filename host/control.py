"""Control-channel RPC on the host: requests in, results or errors out.

Handlers are registered by method name (``@dispatcher.method("set_viewport")``) and get the
request's ``params`` dict. A handler refuses by raising any :class:`~farview.host.errors.HostError`
(its ``code`` and message are the answer; a :class:`~farview.input.errors.ProtocolError` from a
wire type is ``InvalidArgument``); any other exception becomes ``InternalError`` (logged) and
the host keeps running. Handlers run on the event loop; blocking work goes to an executor or the
render thread.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from farview.host.errors import INVALID_ARGUMENT, ControlError, HostError
from farview.input import control as wire
from farview.input.errors import ProtocolError

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[Any]]


class ControlDispatcher:
    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def method(self, name: str) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            self._handlers[name] = fn
            return fn
        return register

    def add(self, name: str, fn: Handler) -> None:
        self._handlers[name] = fn

    @property
    def methods(self) -> list[str]:
        return sorted(self._handlers)

    async def dispatch(self, request: wire.Request) -> wire.Result | wire.Error:
        handler = self._handlers.get(request.method)
        if handler is None:
            return wire.Error(request.id, "UnknownMethod",
                              f"unknown method {request.method!r}; known: {', '.join(self.methods)}")
        try:
            return wire.Result(request.id, await handler(request.params))
        except HostError as exc:
            return wire.Error(request.id, exc.code, exc.message)
        except ProtocolError as exc:  # a malformed value in the params
            return wire.Error(request.id, INVALID_ARGUMENT, str(exc))
        except Exception as exc:
            log.exception("control method %s failed", request.method)
            return wire.Error(request.id, "InternalError", f"{request.method} failed on the host: {exc}")


def require(params: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    """Fetch a typed parameter or raise InvalidArgument naming it."""
    if name not in params:
        raise ControlError("InvalidArgument", f"missing parameter {name!r}")
    value = params[name]
    if isinstance(value, bool) and kind is not bool and (kind is int or kind == (int, float)):
        raise ControlError("InvalidArgument", f"parameter {name!r} must be a number, got a boolean")
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise ControlError("InvalidArgument", f"parameter {name!r} must be {names}, got {type(value).__name__}")
    return value
