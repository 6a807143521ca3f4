"""Control channel messages (data channel ``control``, both ways, reliable and ordered).

JSON objects, UTF-8, at most :data:`MAX_CONTROL_BYTES`. Four shapes, all with ``"v": 1``::

    request  {"v":1, "id": 7, "method": "set_viewport", "params": {...}}
    result   {"v":1, "id": 7, "result": {...}}
    error    {"v":1, "id": 7, "error": {"code": "InvalidArgument", "message": "..."}}
    event    {"v":1, "event": "load_progress", "data": {...}}

An error to a message that had no usable id carries ``"id": null``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from farview.input.errors import ProtocolError
from farview.input.jsondepth import MAX_JSON_DEPTH, nests_deeper

CONTROL_VERSION = 1
MAX_CONTROL_BYTES = 64 * 1024


def _check_id(msg_id: object) -> int:
    if isinstance(msg_id, bool) or not isinstance(msg_id, int) or not 0 <= msg_id < 2**53:
        raise ProtocolError(f"control message id must be a non-negative integer, got {msg_id!r}")
    return msg_id


@dataclass(frozen=True)
class Request:
    """A call of a host method; answered by a :class:`Result` or an :class:`Error` with its id."""

    id: int
    """0..2^53-1 (JSON numbers are exact up to there); unique among the sender's open requests."""
    method: str
    """A method name, e.g. ``set_viewport``."""
    params: dict[str, Any] = field(default_factory=dict)
    """The method's named arguments."""

    def __post_init__(self) -> None:
        _check_id(self.id)
        if not isinstance(self.method, str) or not self.method:
            raise ProtocolError("control request 'method' must be a non-empty string")
        if not isinstance(self.params, dict):
            raise ProtocolError("control request 'params' must be an object")


@dataclass(frozen=True)
class Result:
    """The answer to the request with the same id: any JSON value."""

    id: int
    result: Any

    def __post_init__(self) -> None:
        _check_id(self.id)


@dataclass(frozen=True)
class Error:
    """A refused request: a stable ``code`` and a message that says what to do."""

    id: int | None
    """The request's id, or None when the message that failed had no usable id."""
    code: str
    message: str

    def __post_init__(self) -> None:
        if self.id is not None:
            _check_id(self.id)
        if not isinstance(self.code, str) or not isinstance(self.message, str):
            raise ProtocolError("control error needs an object with string 'code' and 'message'")


@dataclass(frozen=True)
class Event:
    """Something that happened (load progress, the connection closing); not answered."""

    event: str
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.event, str) or not isinstance(self.data, dict):
            raise ProtocolError("control event needs a string 'event' and an object 'data'")


ControlMessage = Request | Result | Error | Event


def _unsendable(value: Any, path: str) -> tuple[str, Any] | None:
    """Where in ``value`` the first number that is not finite, or the first object JSON cannot
    write, is (``params.max_distance``), and it; None if there is none."""
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, value)
    if isinstance(value, dict):
        for k, v in value.items():
            if (found := _unsendable(v, f"{path}.{k}" if path else str(k))) is not None:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            if (found := _unsendable(v, f"{path}[{i}]")) is not None:
                return found
        return None
    return (path, value)


def encode(msg: ControlMessage) -> str:
    body: dict[str, Any] = {"v": CONTROL_VERSION}
    if isinstance(msg, Request):
        body.update(id=msg.id, method=msg.method, params=msg.params)
    elif isinstance(msg, Result):
        body.update(id=msg.id, result=msg.result)
    elif isinstance(msg, Error):
        body.update(id=msg.id, error={"code": msg.code, "message": msg.message})
    else:
        body.update(event=msg.event, data=msg.data)
    try:
        text = json.dumps(body, separators=(",", ":"), allow_nan=False)
    except (ValueError, TypeError) as exc:  # NaN or infinity, or an object JSON has no form for
        where = _unsendable(body, "")
        what = f"{where[0].removeprefix('params.')} = {where[1]!r}" if where else str(exc)
        raise ProtocolError(f"cannot send {what}: numbers must be finite, and values plain "
                            "numbers, strings, lists or objects") from None
    if len(text.encode()) > MAX_CONTROL_BYTES:
        raise ProtocolError(f"control message is {len(text.encode())} bytes, the limit is {MAX_CONTROL_BYTES}")
    return text


def decode(data: str | bytes) -> ControlMessage:
    if len(data) > MAX_CONTROL_BYTES:
        raise ProtocolError(f"control message is {len(data)} bytes, the limit is {MAX_CONTROL_BYTES}")
    if nests_deeper(data):
        raise ProtocolError(f"control message nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"control message is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ProtocolError("control message must be a JSON object")
    if body.get("v") != CONTROL_VERSION:
        raise ProtocolError(f"control message version {body.get('v')!r} is not supported (expected {CONTROL_VERSION})")
    if "event" in body:
        return Event(body["event"], body.get("data", {}))
    if body.get("id") is None and isinstance(body.get("error"), dict):
        err = body["error"]
        return Error(None, str(err.get("code", "")), str(err.get("message", "")))
    msg_id = _check_id(body.get("id"))
    if "method" in body:
        return Request(msg_id, body["method"], body.get("params", {}))
    if "result" in body:
        return Result(msg_id, body["result"])
    if "error" in body:
        err = body["error"]
        code, message = (err.get("code"), err.get("message")) if isinstance(err, dict) else (0, 0)
        if not isinstance(code, str) or not isinstance(message, str):
            raise ProtocolError("control error needs an object with string 'code' and 'message'")
        return Error(msg_id, code, message)
    raise ProtocolError("control message is neither a request, a result, an error nor an event")
