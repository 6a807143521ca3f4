"""Input event wire format (data channel ``input``, client → host, reliable and ordered).

Layout (little-endian), version 1::

    u8 version (=1)  u8 kind  u16 modifiers  u64 client_time_us  then by kind:
      KEY     (1): i32 key  u8 action (0 release, 1 press, 2 repeat)
      BUTTON  (2): u8 button  u8 action  f32 x  f32 y
      POINTER (3): f32 x  f32 y            (normalised 0..1 in the viewport)
      SCROLL  (4): f32 dx  f32 dy

Key codes are GLFW's (printable keys are their ASCII upper-case code).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from enum import IntEnum

from farview.input.errors import ProtocolError

INPUT_VERSION = 1
_HEAD = struct.Struct("<BBHQ")


class EventKind(IntEnum):
    KEY = 1
    BUTTON = 2
    POINTER = 3
    SCROLL = 4


class Action(IntEnum):
    RELEASE = 0
    PRESS = 1
    REPEAT = 2


_BODIES = {
    EventKind.KEY: struct.Struct("<iB"),
    EventKind.BUTTON: struct.Struct("<BBff"),
    EventKind.POINTER: struct.Struct("<ff"),
    EventKind.SCROLL: struct.Struct("<ff"),
}


@dataclass(frozen=True)
class InputEvent:
    """One key, button, pointer or scroll event."""

    kind: EventKind
    client_time_us: int = 0
    modifiers: int = 0
    key: int = 0
    button: int = 0
    action: Action = Action.PRESS
    x: float = 0.0
    """Pointer x, or scroll dx."""
    y: float = 0.0
    """Pointer y, or scroll dy."""
    version: int = INPUT_VERSION

    def __post_init__(self) -> None:
        if self.version != INPUT_VERSION:
            raise ProtocolError(f"input event version {self.version} is not supported")
        if not (math.isfinite(self.x) and math.isfinite(self.y)):
            raise ProtocolError(f"input event coordinates must be finite, got {self.x}, {self.y}")
        if not 0 <= self.modifiers < 65536:
            raise ProtocolError(f"modifiers {self.modifiers} out of range")
        if not 0 <= self.button < 256:
            raise ProtocolError(f"button {self.button} out of range")
        if not -(2**31) <= self.key < 2**31:
            raise ProtocolError(f"key {self.key} out of range")

    @classmethod
    def key_event(cls, key: int, action: Action, modifiers: int = 0, t_us: int = 0) -> InputEvent:
        return cls(EventKind.KEY, t_us, modifiers, key=key, action=action)

    @classmethod
    def button_event(cls, button: int, action: Action, x: float, y: float, modifiers: int = 0,
                     t_us: int = 0) -> InputEvent:
        return cls(EventKind.BUTTON, t_us, modifiers, button=button, action=action, x=x, y=y)

    @classmethod
    def pointer(cls, x: float, y: float, t_us: int = 0) -> InputEvent:
        return cls(EventKind.POINTER, t_us, x=x, y=y)

    @classmethod
    def scroll(cls, dx: float, dy: float, t_us: int = 0) -> InputEvent:
        return cls(EventKind.SCROLL, t_us, x=dx, y=dy)

    def encode(self) -> bytes:
        head = _HEAD.pack(self.version, int(self.kind), self.modifiers, self.client_time_us)
        body = _BODIES[self.kind]
        if self.kind is EventKind.KEY:
            return head + body.pack(self.key, int(self.action))
        if self.kind is EventKind.BUTTON:
            return head + body.pack(self.button, int(self.action), self.x, self.y)
        return head + body.pack(self.x, self.y)

    @classmethod
    def decode(cls, data: bytes) -> InputEvent:
        if not data:
            raise ProtocolError("input event is empty")
        if data[0] != INPUT_VERSION:
            raise ProtocolError(f"input event version {data[0]} is not supported (expected {INPUT_VERSION})")
        if len(data) < _HEAD.size:
            raise ProtocolError(f"input event truncated: {len(data)} bytes, header needs {_HEAD.size}")
        version, kind_raw, mods, t_us = _HEAD.unpack_from(data)
        try:
            kind = EventKind(kind_raw)
        except ValueError:
            raise ProtocolError(f"unknown input event kind {kind_raw}") from None
        body = _BODIES[kind]
        if len(data) != _HEAD.size + body.size:
            raise ProtocolError(f"{kind.name} event must be {_HEAD.size + body.size} bytes, got {len(data)}")
        vals = body.unpack_from(data, _HEAD.size)
        try:
            if kind is EventKind.KEY:
                return cls(kind, t_us, mods, key=vals[0], action=Action(vals[1]), version=version)
            if kind is EventKind.BUTTON:
                return cls(kind, t_us, mods, button=vals[0], action=Action(vals[1]), x=vals[2], y=vals[3],
                           version=version)
        except ValueError as exc:
            raise ProtocolError(f"{kind.name} event has an unknown action: {exc}") from None
        return cls(kind, t_us, mods, x=vals[0], y=vals[1], version=version)
