"""The host's outgoing video track: hands pre-encoded ``av.Packet``s to aiortc.

Concurrency: packets are pushed on the event loop (the render thread hops there with
``call_soon_threadsafe``); aiortc's RTP task awaits :meth:`PacketTrack.recv`. aiortc then only
packetizes. Packets are never dropped here (each P-frame needs its predecessor): if the queue
ever backs up past :data:`MAX_QUEUED`, it is cleared and a keyframe is requested instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

log = logging.getLogger(__name__)

MAX_QUEUED = 8


class PacketTrack(MediaStreamTrack):  # type: ignore[misc]
    """A video track whose ``recv()`` returns encoded packets."""

    kind = "video"

    def __init__(self, on_backlog: Callable[[], None] | None = None) -> None:
        super().__init__()
        self._queue: asyncio.Queue[av.Packet[Any] | None] = asyncio.Queue()
        self._on_backlog = on_backlog
        self.packets_dropped = 0

    def push(self, packet: av.Packet[Any]) -> None:
        if self._queue.qsize() >= MAX_QUEUED:
            while not self._queue.empty():
                self._queue.get_nowait()
                self.packets_dropped += 1
            log.warning("video send queue backed up; dropped %d packets, forcing a keyframe",
                        self.packets_dropped)
            if self._on_backlog is not None:
                self._on_backlog()
            return
        self._queue.put_nowait(packet)

    async def recv(self) -> av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        packet = await self._queue.get()
        if packet is None:
            raise MediaStreamError
        return packet

    def stop(self) -> None:
        super().stop()
        self._queue.put_nowait(None)
