"""The render host's session state: scene, renderer and signaling (grown by the stream work).

For now the runtime owns nothing that streams: ``signaling`` is None and ``/whep`` answers 503.
"""

from __future__ import annotations

from typing import Any

from host.config import HostConfig


class HostRuntime:
    def __init__(self, config: HostConfig) -> None:
        self.config = config
        self.signaling: Any = None

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None
