"""The scene API served on the ``control`` channel (ARR's RenderingConnection scene calls).

:class:`SceneService` owns model loading and registers the scene control methods on the
host's :class:`~host.control.ControlDispatcher`. Runs on the host's event loop; parsing happens
in an executor, scene mutation under ``runtime.scene_lock``, and every change marks the render
loop dirty so the next frame shows it.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from host.control import ControlDispatcher, ControlError, require

if TYPE_CHECKING:
    from host.runtime import HostRuntime

log = logging.getLogger(__name__)


class SceneService:
    def __init__(self, runtime: HostRuntime) -> None:
        self.runtime = runtime

    def register(self, dispatcher: ControlDispatcher) -> None:
        dispatcher.add("load_model", self._load_model)

    async def load(self, source: str) -> Any:
        """Load a model by local path; returns its root entity."""
        from host.gltf import ModelError, load_model

        path = Path(source)
        try:
            model = await asyncio.get_running_loop().run_in_executor(None, load_model, path)
        except ModelError as exc:
            raise ControlError("InvalidModel", f"{source}: {exc}") from None
        with self.runtime.scene_lock:
            root = self.runtime.scene.add_model(model, path.stem)
        self.runtime.render_loop.mark_dirty()
        log.info("loaded model %s (%d triangles)", path.name, model.triangle_count)
        return root

    async def _load_model(self, params: dict[str, Any]) -> Any:
        source = require(params, "source", str)
        root = await self.load(source)
        return {"root": root.id, "name": root.name}
