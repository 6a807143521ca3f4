"""The host's outgoing video track: hands pre-encoded ``av.Packet``s to aiortc.

Concurrency: packets are pushed on the event loop (the render thread hops there with
``call_soon_threadsafe``); aiortc's RTP task awaits :meth:`PacketTrack.recv`. aiortc then only
packetizes. Packets are never dropped here (each P-frame needs its predecessor): if the queue
ever backs up past :data:`MAX_QUEUED`, it is cleared and a keyframe is requested instead.

``push(packet, on_sent)`` reports when aiortc has sent the packet's RTP packets: its RTP task
calls :meth:`PacketTrack.recv` again only after that (aiortc 1.16.0, see
``streaming/_aiortc_patches.py``; ``tests/streaming/test_aiortc_patches.py`` fails if it stops
being so). Dropped packets and those a stopped track still held are reported too, so a waiter
never waits for a packet that will not be sent.
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
        self._queue: asyncio.Queue[tuple[av.Packet[Any], Callable[[], None] | None] | None] = (
            asyncio.Queue())
        self._on_backlog = on_backlog
        self._sending: Callable[[], None] | None = None
        self.packets_dropped = 0

    def push(self, packet: av.Packet[Any], on_sent: Callable[[], None] | None = None) -> None:
        """Queue ``packet``; ``on_sent`` (if any) runs on the event loop once aiortc has sent
        all its RTP packets (when its RTP task asks for the next packet), or when the packet
        is dropped or the track stops."""
        if self.readyState != "live":  # stopped: nothing will send it
            if on_sent is not None:
                on_sent()
            return
        if self._queue.qsize() >= MAX_QUEUED:
            while not self._queue.empty():
                item = self._queue.get_nowait()
                self.packets_dropped += 1
                if item is not None and item[1] is not None:
                    item[1]()
            log.warning("video send queue backed up; dropped %d packets, forcing a keyframe",
                        self.packets_dropped)
            if self._on_backlog is not None:
                self._on_backlog()
            if on_sent is not None:
                on_sent()
            return
        self._queue.put_nowait((packet, on_sent))

    def _sent(self) -> None:
        done, self._sending = self._sending, None
        if done is not None:
            done()

    async def recv(self) -> av.Packet[Any]:
        # aiortc's RTP task calls recv() again only after it has sent every RTP packet of the
        # previous one: that is when the previous packet is out
        self._sent()
        if self.readyState != "live":
            raise MediaStreamError
        item = await self._queue.get()
        if item is None:
            raise MediaStreamError
        packet, self._sending = item
        return packet

    def stop(self) -> None:
        super().stop()
        self._sent()
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not None and item[1] is not None:
                item[1]()
        self._queue.put_nowait(None)
