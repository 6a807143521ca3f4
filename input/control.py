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
from dataclasses import dataclass, field
from typing import Any

from farview.input.errors import ProtocolError

CONTROL_VERSION = 1
MAX_CONTROL_BYTES = 64 * 1024


@dataclass(frozen=True)
class Request:
    id: int
    method: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Result:
    id: int
    result: Any


@dataclass(frozen=True)
class Error:
    id: int | None
    code: str
    message: str


@dataclass(frozen=True)
class Event:
    event: str
    data: dict[str, Any] = field(default_factory=dict)


ControlMessage = Request | Result | Error | Event


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
    text = json.dumps(body, separators=(",", ":"), allow_nan=False)
    if len(text.encode()) > MAX_CONTROL_BYTES:
        raise ProtocolError(f"control message is {len(text.encode())} bytes, the limit is {MAX_CONTROL_BYTES}")
    return text


def decode(data: str | bytes) -> ControlMessage:
    if len(data) > MAX_CONTROL_BYTES:
        raise ProtocolError(f"control message is {len(data)} bytes, the limit is {MAX_CONTROL_BYTES}")
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"control message is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ProtocolError("control message must be a JSON object")
    if body.get("v") != CONTROL_VERSION:
        raise ProtocolError(f"control message version {body.get('v')!r} is not supported (expected {CONTROL_VERSION})")
    if "event" in body:
        if not isinstance(body["event"], str) or not isinstance(body.get("data", {}), dict):
            raise ProtocolError("control event needs a string 'event' and an object 'data'")
        return Event(body["event"], body.get("data", {}))
    msg_id = body.get("id")
    if isinstance(msg_id, bool) or not isinstance(msg_id, int) or not 0 <= msg_id < 2**53:
        if "error" in body and msg_id is None:
            err = body["error"]
            if isinstance(err, dict):
                return Error(None, str(err.get("code", "")), str(err.get("message", "")))
        raise ProtocolError(f"control message id must be a non-negative integer, got {msg_id!r}")
    if "method" in body:
        if not isinstance(body["method"], str) or not body["method"]:
            raise ProtocolError("control request 'method' must be a non-empty string")
        params = body.get("params", {})
        if not isinstance(params, dict):
            raise ProtocolError("control request 'params' must be an object")
        return Request(msg_id, body["method"], params)
    if "result" in body:
        return Result(msg_id, body["result"])
    if "error" in body:
        err = body["error"]
        if not isinstance(err, dict) or not isinstance(err.get("code"), str) or not isinstance(err.get("message"), str):
            raise ProtocolError("control error needs an object with string 'code' and 'message'")
        return Error(msg_id, err["code"], err["message"])
    raise ProtocolError("control message is neither a request, a result, an error nor an event")
