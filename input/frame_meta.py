"""Frame metadata wire format (data channel ``frames``, host → client).

One message per encoded video frame, sent just before the frame's packets. It lets the client
match the decoded frame (by pts, which the receiver rebases to the first frame it got) to the
pose it was rendered with, and report the host's stage durations without clock sync.

Layout (little-endian), version 2::

    u8 version (=2)  u8 flags (bit 0: keyframe)  u16 width  u16 height
    u16 target_bitrate (the encoder's target when it encoded the frame, in 100 kbit/s; 0: not
                        reported, as with the stock-aiortc baseline; this was a reserved 0 before)
    u32 pts (90 kHz, from 0 at each connection)  u32 pose_sequence
    u64 pose_client_time_us (echo of the pose's client timestamp)
    u32 render_us  u32 readback_us  u32 convert_us  u32 encode_us  u32 size_bytes
    u32 wait_us (the frame's queueing on the host: pose arrival → start of its render, plus
                 picture ready → start of its encode)

Version 1 (44 bytes, without ``wait_us``) is refused with a message naming both versions: host
and client ship together, so a mismatch means one of them is out of date.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from farview.input.errors import ProtocolError

FRAME_META_VERSION = 2
_FMT = struct.Struct("<BBHHHIIQIIIIII")


@dataclass(frozen=True)
class FrameMetadata:
    """What the host tells the client about one video frame."""

    pts: int
    pose_sequence: int
    pose_client_time_us: int
    width: int
    height: int
    keyframe: bool = False
    render_us: int = 0
    readback_us: int = 0
    convert_us: int = 0
    encode_us: int = 0
    size_bytes: int = 0
    wait_us: int = 0
    """From the pose's arrival at the host to the start of its render (the render thread was
    busy, or the frame-rate cap held it back)."""
    target_bitrate: int = 0
    """The encoder's target bit rate for this frame (bit/s, to 100 kbit/s; 0: not reported)."""
    version: int = FRAME_META_VERSION

    def __post_init__(self) -> None:
        if self.version != FRAME_META_VERSION:
            raise ProtocolError(f"frame metadata version {self.version} is not supported")
        for name in ("pts", "pose_sequence", "render_us", "readback_us", "convert_us", "encode_us", "size_bytes",
                     "wait_us"):
            v = getattr(self, name)
            if not 0 <= v < 2**32:
                raise ProtocolError(f"frame metadata {name}={v} is outside 0..2^32-1")
        if not 0 <= self.target_bitrate < 2**32:
            raise ProtocolError(f"frame metadata target_bitrate={self.target_bitrate} is outside 0..2^32-1")
        if not (0 <= self.width < 65536 and 0 <= self.height < 65536):
            raise ProtocolError(f"frame size {self.width}x{self.height} is out of range")

    def encode(self) -> bytes:
        return _FMT.pack(
            self.version, 1 if self.keyframe else 0, self.width, self.height,
            min(65535, (self.target_bitrate + 50_000) // 100_000), self.pts,
            self.pose_sequence, self.pose_client_time_us, self.render_us, self.readback_us,
            self.convert_us, self.encode_us, self.size_bytes, self.wait_us,
        )

    @classmethod
    def decode(cls, data: bytes) -> FrameMetadata:
        if not data:
            raise ProtocolError("frame metadata is empty")
        if data[0] != FRAME_META_VERSION:
            raise ProtocolError(f"frame metadata version {data[0]} is not supported (expected "
                                f"{FRAME_META_VERSION}): update farview on the client or the host")
        if len(data) != _FMT.size:
            raise ProtocolError(f"frame metadata must be {_FMT.size} bytes, got {len(data)}")
        (v, flags, w, h, target, pts, seq, t_us, ren, rb, conv, enc, size, wait) = _FMT.unpack(data)
        return cls(pts, seq, t_us, w, h, bool(flags & 1), ren, rb, conv, enc, size, wait, target * 100_000, v)
