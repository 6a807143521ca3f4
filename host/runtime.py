"""The render host's session state: scene, render thread, signaling and control methods.

Everything here lives on the host's one asyncio loop except the render thread
(:mod:`host.render_loop`). The scene is shared with that thread under ``scene_lock``. The
scene outlives client connections; it is discarded only when the host process ends (the
session stops).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from aiortc import RTCSessionDescription

from farview.assets import SAMPLE_MODEL
from farview.host.connection import HostConnection
from farview.host.control import ControlDispatcher, require
from farview.host.errors import ControlError, HostError
from farview.host.render_loop import RenderLoop, StreamSettings, clamp_viewport
from farview.host.scene_api import SceneService
from farview.input.events import InputEvent
from farview.input.launch import (
    MODEL_FAILED,
    MODEL_LOADED,
    MODEL_LOADING,
    HostConfig,
    ModelStatus,
)
from farview.input.pose import MAX_VIEWPORT
from farview.streaming.whep import WhepConnection, WhepEndpoint

log = logging.getLogger(__name__)



class _ContextRenderer:
    """A :class:`~host.renderer.Renderer` together with the EGL context it draws with (both
    live and die on the render thread), and which GL path was taken."""

    def __init__(self) -> None:
        from farview.host.egl import EglContext
        from farview.host.renderer import Renderer

        self.context = EglContext()
        # FARVIEW_LIGHTING=pixel|vertex and FARVIEW_CHROMA=cpu|gpu override the choices made
        # for the GL path (see Renderer)
        self.renderer = Renderer(1280, 720, os.environ.get("FARVIEW_LIGHTING") or "auto",
                                 os.environ.get("FARVIEW_CHROMA") or "auto")
        self.info = {"egl_path": self.context.path, "gl_renderer": self.context.renderer,
                     "lighting": self.renderer.lighting, "chroma": self.renderer.chroma}
        log.info("renderer ready: EGL path %s, %s, %s lighting, 4:2:0 chroma on the %s",
                 self.context.path, self.context.renderer, self.renderer.lighting,
                 self.renderer.chroma.upper())

    def resize(self, width: int, height: int) -> None:
        self.renderer.resize(width, height)

    def render(self, scene: Any, views: Any, near: float, far: float, *,
               moving: bool = False, abort: Callable[[], bool] | None = None) -> None:
        self.renderer.render(scene, views, near, far, moving=moving, abort=abort)

    @property
    def last_reduced(self) -> bool:
        """The last frame drew some part at a coarser level of detail."""
        return self.renderer.last_reduced

    @property
    def last_aborted(self) -> bool:
        """The last frame was given up (its ``abort`` said so)."""
        return self.renderer.last_aborted

    def read_frame(self) -> Any:
        return self.renderer.read_frame()

    @property
    def last_timings(self) -> Any:
        return self.renderer.last_timings

    def close(self) -> None:
        self.renderer.close()
        self.context.release()


class HostRuntime:
    def __init__(self, config: HostConfig, *, stream_settings: StreamSettings | None = None) -> None:
        from farview.host.scene import Scene

        self.config = config
        self.scene = Scene()
        self.scene_lock = threading.RLock()
        # FARVIEW_ENCODE_THREAD=on|off overrides "auto" (its own thread on a GPU only)
        self.render_loop = RenderLoop(self.scene, self.scene_lock, _ContextRenderer,
                                      os.environ.get("FARVIEW_ENCODE_THREAD") or "auto")
        self.default_stream_settings = stream_settings or StreamSettings(
            min_bitrate=config.min_bitrate, max_bitrate=config.max_bitrate)
        """What each new connection starts with (``configure_stream`` changes one connection's)."""
        self.stream_settings = self.default_stream_settings
        self.control = ControlDispatcher()
        self.connection: HostConnection | None = None
        self.connections_accepted = 0
        self.input_events: list[InputEvent] = []
        self.started_at = time.monotonic()
        self.stop_reason = "the session is stopping"
        self.signaling = WhepEndpoint(
            self._accept,
            busy_message=(f"another client is connected to session {config.session_id}; only one "
                          "client may be connected at a time: wait until it disconnects"),
        )
        self.model_status: dict[str, ModelStatus] = {}
        """The start-up models by source (see :meth:`load_startup_models`)."""
        self.scene_api = SceneService(self)
        self._register_control()
        self.scene_api.register(self.control)

    async def start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.render_loop.start)

    async def load_startup_models(self, report: Callable[[ModelStatus], None]) -> None:
        """Load the session's start-up models (the shipped sample when it names none), one
        after another, after the host listens; each change goes to ``report`` (the service),
        to the client as a ``model_status`` event, and to ``get_model_status``."""
        # the sample by its model store name: a store name passes every source policy
        models = list(self.config.models) or ([SAMPLE_MODEL.stem] if SAMPLE_MODEL.exists() else [])

        def update(status: ModelStatus) -> None:
            self.model_status[status.source] = status
            report(status)
            if self.connection is not None:
                self.connection.send_event("model_status", status.to_wire())

        for model in models:
            update(ModelStatus(model, MODEL_LOADING))
        for model in models:
            try:
                await self.load_model(model)
            except HostError as exc:
                log.error("could not load model %s at start-up: %s", model, exc.message)
                update(ModelStatus(model, MODEL_FAILED, exc.code, exc.message))
            except Exception as exc:
                log.exception("could not load model %s at start-up", model)
                update(ModelStatus(model, MODEL_FAILED, "InternalError",
                                   f"loading {model} failed on the host ({type(exc).__name__})"))
            else:
                update(ModelStatus(model, MODEL_LOADED))

    def set_stop_reason(self, reason: str) -> None:
        """Why the service is about to stop this host (told to the client on close)."""
        self.stop_reason = reason or self.stop_reason

    async def stop(self) -> None:
        if self.connection is not None:
            await self.connection.close(self.stop_reason)
        self.render_loop.stop()

    async def load_model(self, source: str) -> Any:
        """Load a model into the scene (see :class:`host.scene_api.SceneService`)."""
        return await self.scene_api.load(source)

    # -- signaling ---------------------------------------------------------------------------
    async def _accept(self, offer: RTCSessionDescription) -> tuple[RTCSessionDescription, WhepConnection]:
        # configure_stream's changes (the aiortc baseline, the pixel marker, bit rates) are for
        # one connection only
        self.stream_settings = self.default_stream_settings
        answer, conn = await HostConnection.accept(self, offer, on_closed=self._on_closed,
                                                   settings=self.stream_settings)
        self.connection = conn
        self.connections_accepted += 1
        return answer, conn

    def _on_closed(self, conn: HostConnection) -> None:
        if self.connection is conn:
            self.connection = None
        self.signaling.release(conn)

    def _video_stats(self) -> dict[str, Any]:
        """The stream's bit rate control and keyframes (``get_stats``' ``video``)."""
        rl = self.render_loop
        settings = self.stream_settings
        conn = self.connection
        cc = conn.congestion if conn is not None else None
        scale, size = rl.stream_resolution() or (1.0, None)
        return {
            "congestion_control": ("off (fixed bit rate)" if not settings.congestion_control
                                   else "aiortc's own (stock baseline)" if settings.stock_aiortc
                                   else "farview (REMB and loss)"),
            "target_bitrate": rl.stream_bitrate(),
            "frame_rate": rl.stream_frame_rate(),
            # the fraction of the viewport's sides sent (lowered where even the lowest frame
            # rate would starve each frame of bits), and the size rendered
            "resolution_scale": scale,
            "size": list(size) if size else None,
            "min_bitrate": settings.min_bitrate,
            "max_bitrate": settings.max_bitrate,
            "congestion": cc.snapshot() if cc is not None else None,
            "keyframes_sent": rl.keyframes_sent,
            # keyframes given room for a picture at a low bit rate: frames after each waited
            "frames_over_budget": rl.frames_over_budget,
            "keyframe_requests": rl.keyframe_requests,
            "keyframe_requests_merged": rl.keyframe_requests_merged,
            "intra_refresh": settings.intra_refresh,
            "keyframe_requests_left_to_refresh": rl.keyframe_requests_refreshed,
            "retransmissions": ({"requested": conn.retransmit.requested, "sent": conn.retransmit.resent,
                                 "given_up": conn.retransmit.given_up}
                                if conn is not None else None),
            "keyframes_for_lost_packets": conn.keyframes_for_lost_packets if conn is not None else 0,
            # frames' last packets sent again as nothing followed them (streaming patch 10)
            "tail_probes": conn.tail_probes if conn is not None else 0,
            # the client's numbered network_feedback reports dropped as copies
            "feedback_repeated": conn.feedback_repeated if conn is not None else 0,
        }

    def on_input(self, event: InputEvent) -> None:
        self.input_events.append(event)
        del self.input_events[:-256]

    # -- control methods ---------------------------------------------------------------------
    def _register_control(self) -> None:
        c = self.control

        @c.method("ping")
        async def ping(params: dict[str, Any]) -> Any:
            return {"t": params.get("t")}

        @c.method("set_viewport")
        async def set_viewport(params: dict[str, Any]) -> Any:
            width = require(params, "width", int)
            height = require(params, "height", int)
            if width <= 0 or height <= 0:
                raise ControlError("InvalidArgument", f"viewport must be at least 1x1 pixels, got {width}x{height}")
            w, h = clamp_viewport(width, height)
            last = self.render_loop.last_pose
            from dataclasses import replace

            self.render_loop.submit_pose(replace(last, viewport=(min(width, 65535), min(height, 65535))))
            return {"width": w, "height": h, "clamped": (w, h) != (width, height),
                    "max": MAX_VIEWPORT}

        @c.method("get_model_status")
        async def get_model_status(params: dict[str, Any]) -> Any:
            return {"models": [s.to_wire() for s in self.model_status.values()]}

        @c.method("request_keyframe")
        async def request_keyframe(params: dict[str, Any]) -> Any:
            self.render_loop.request_keyframe()
            return {}

        @c.method("configure_stream")
        async def configure_stream(params: dict[str, Any]) -> Any:
            from dataclasses import asdict, replace

            current = self.stream_settings
            changes: dict[str, Any] = {}
            fields = {"max_bitrate": int, "min_bitrate": int, "congestion_control": bool, "max_fps": int,
                      "prefer_hardware": bool, "intra_refresh": bool, "stock_aiortc": bool,
                      "verify_marker": bool}
            for name, kind in fields.items():
                if name in params:
                    changes[name] = require(params, name, kind)
            unknown = set(params) - set(fields)
            if unknown:
                raise ControlError("InvalidArgument", f"unknown stream settings: {', '.join(sorted(unknown))}")
            ceiling = self.config.max_bitrate
            if changes.get("max_bitrate", 0) > ceiling:
                raise ControlError("InvalidArgument", f"max_bitrate {changes['max_bitrate']} is above this host's "
                                   f"limit of {ceiling} bit/s (farview serve --max-bitrate)")
            try:
                new = replace(current, **changes)
            except ValueError as exc:
                raise ControlError("InvalidArgument", str(exc)) from None
            self.stream_settings = new
            self.render_loop.reconfigure(new)
            if self.connection is not None:
                self.connection.reconfigure(new)
            return asdict(new)

        @c.method("get_stats")
        async def get_stats(params: dict[str, Any]) -> Any:
            rl = self.render_loop
            conn = self.connection
            return {
                "frames_rendered": rl.frames_rendered,
                "poses_received": rl.poses_received,
                "poses_dropped": rl.poses_dropped,
                "poses_stale": rl.poses_stale,
                "poses_repeated": rl.poses_repeated,
                "poses_unchanged": rl.poses_unchanged,
                "refinements_abandoned": rl.refinements_abandoned,
                "renderer": rl.renderer_info,
                "encoder": rl.encoder_path,
                "bad_messages": dict(conn.bad.counts) if conn else {},
                "input_events": conn.input_events if conn else 0,
                "connections_accepted": self.connections_accepted,
                "video": self._video_stats(),
            }
