"""The remote scene, driven over the ``control`` channel (ARR's RenderingConnection scene API).

``conn.scene`` is a :class:`RemoteScene`. Every method is a control request; refusals raise
:class:`~client.errors.RemoteError` with the host's code and message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from client.connection import RenderingConnection


class RemoteScene:
    def __init__(self, connection: RenderingConnection) -> None:
        self._conn = connection

    async def load_model(self, source: str) -> dict[str, Any]:
        """Load a model by path on the host; returns ``{"root": id, "name": ...}``."""
        result: dict[str, Any] = await self._conn.request("load_model", source=source, timeout=120.0)
        return result
