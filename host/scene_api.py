"""The scene API served on the ``control`` channel (ARR's RenderingConnection scene calls).

:class:`SceneService` loads models (store name, host path or http(s) URL; see
:mod:`host.model_store`) and registers the scene control methods on the host's
:class:`~host.control.ControlDispatcher`:

=====================  =========================================================================
method                 params → result
=====================  =========================================================================
``load_model``         source, [parent] → model (root id, name, triangles, load_ms, tree)
``unload_model``       id (a model root) → {}
``list_models``        → {names: [...]} (the model store)
``get_roots``          [depth] → {roots: [tree node, ...]}
``get_entity``         id → entity
``get_tree``           id, [depth] → tree node {id, name, children: [...]} (``more`` when cut)
``find_entities``      [name], [under], any of hidden / selected / see_through /
                       collision_disabled (true or false: set on the entity itself) → {ids,
                       names}: the entities matching all that is given (a name or a state at
                       least)
``create_entity``      [name], [parent], [position], [rotation], [scale] → entity
``destroy_entity``     id → {} (with its children)
``set_transform``      id, [position], [rotation] (x, y, z, w), [scale] → entity
``set_parent``         id, parent (id or null), [keep_world] → entity
``set_state``          id, any of hidden / selected / see_through / collision_disabled (bool or
                       null = inherit), tint ({color, weight} or null), material ({color,
                       metallic, roughness, emissive, unlit}, any subset, or null) → entity
``get_bounds``         id, [space: local|world] → {min, max} or null (no geometry)
``raycast``            origin, direction, [mode: closest|all], [max_hits], [max_distance]
                       → {hits: [{id, name, position, normal, distance, front_face,
                       hit_type}]}: triangles, and points within a drawn point's width
``add_cut_plane``      normal, point → {id}; ``set_cut_plane`` id, normal, point;
                       ``remove_cut_plane`` id; ``list_cut_planes`` → {planes: [...]}
``set_camera``         near, far, [fov_y] → camera; ``get_camera``; ``reset_camera``
``set_lighting``       any Lighting field → lighting; ``get_lighting``
``set_level_of_detail`` mode (auto|full) → {mode}; ``get_level_of_detail``: ``full`` pins full
                       detail while the camera moves (``auto``, the default, lets the host
                       draw big parts coarser to keep moving frames within its budget)
``set_point_size``     size (pixels, 1..64) → {size}; ``get_point_size``: point clouds
=====================  =========================================================================

Params and results are the wire types of :mod:`farview.input.scene`. Error codes (by the
type of :mod:`farview.host.errors` raised): ``InvalidArgument``, ``NotFound`` (unknown entity or
cut plane id, unknown model name, missing file), ``InvalidModel`` (not glTF, truncated,
malformed), ``LimitExceeded`` (triangle/size budget, ninth cut plane), ``FetchFailed``,
``Timeout``. A refused request changes nothing.

Concurrency: handlers run on the host's event loop. The scene is shared with the render thread
under ``runtime.scene_lock``: a handler takes it at once when it is free, otherwise waits for it
in an executor thread (never blocking the loop behind a frame). Parsing and ray casts run in
executors (ray casts on a draw-list snapshot, outside the lock). Every change calls
``render_loop.mark_dirty()`` so the next frame shows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from farview.host.control import ControlDispatcher, require
from farview.host.errors import (
    BUDGET_DECODED,
    BUDGET_TRIANGLES,
    INVALID_ARGUMENT,
    LIMIT_EXCEEDED,
    ControlError,
    HostError,
    ModelError,
)
from farview.host.gltf import Mesh, Model, load_model, load_model_bytes
from farview.host.model_store import (
    ENV_MAX_DECODED_BYTES,
    ENV_MAX_MODEL_BYTES,
    ENV_MAX_TRIANGLES,
    LoadBudgets,
    ModelStore,
    SourcePolicy,
    classify,
    fetch_url,
    resolve_path,
)
from farview.host.raycast import RayCaster
from farview.host.scene import Entity
from farview.input.launch import SCENE_TRIANGLES
from farview.input.scene import (
    DETAIL_MODES,
    POINT_SIZES,
    CameraOverride,
    CameraSettings,
    CutPlane,
    CutPlaneInfo,
    EntityInfo,
    EntityNode,
    LoadedModel,
    MaterialOverride,
    RayHit,
    Tint,
)

if TYPE_CHECKING:
    from farview.host.runtime import HostRuntime

log = logging.getLogger(__name__)

T = TypeVar("T")
CONVERTIBLE = (".fbx", ".obj", ".stl", ".ply", ".dae", ".3ds", ".off")
"""What ``farview convert`` takes (host.convert's ``ASSIMP_FORMATS``): such a file given to
the loader is told to be converted (it was told only "bad magic")."""
MAX_CONCURRENT_LOADS = 2
"""Model loads one host runs at once (each can take a core and the model's memory); a further
request is refused, with what to do, until one ends."""
MAX_TREE_NODES = 1000
"""Tree nodes in one answer (control messages are at most 64 KiB); deeper parts say ``more``."""
MAX_RAY_HITS = 1000
_STATE_FLAGS = ("hidden", "selected", "see_through", "collision_disabled")


class SceneService:
    """Model loading and the scene control methods of one host (see the module docstring)."""

    def __init__(self, runtime: HostRuntime, *, budgets: LoadBudgets | None = None,
                 store: ModelStore | None = None, size: str | None = None,
                 policy: SourcePolicy | None = None) -> None:
        self.runtime = runtime
        self.store = store or ModelStore.from_env()
        config = getattr(runtime, "config", None)
        self.size = size or (config.size if config is not None else "Standard")
        """The session's size: it bounds the whole scene (:data:`SCENE_TRIANGLES`) and sets
        each model's budgets (:meth:`LoadBudgets.for_size`)."""
        self.budgets = budgets or LoadBudgets.for_size(self.size)
        self.scene_triangles = SCENE_TRIANGLES[self.size]
        self.policy = policy or (SourcePolicy(
            store_only=config.model_sources == "store",
            url_hosts=frozenset(h.lower() for h in config.model_url_hosts),
            folders=(Path(config.account_storage),) if config.account_storage else ())
            if config is not None else SourcePolicy())
        """Where models may come from (the service's setting, from the launch contract)."""
        self.raycaster = RayCaster()
        self._priming: set[asyncio.Future[None]] = set()
        """Background jobs making a loaded model's ray-cast boxes (kept until done)."""
        self._model_roots: dict[int, str] = {}  # root entity id → source
        self._loads_in_progress = 0

    # -- locking ------------------------------------------------------------------------------
    async def _locked(self, fn: Callable[[], T], *, changes: bool = True) -> T:
        """Run ``fn`` under the scene lock (its HostErrors pass through to the caller)."""
        lock = self.runtime.scene_lock
        if lock.acquire(blocking=False):
            try:
                result = fn()
            finally:
                lock.release()
        else:
            def with_lock() -> T:
                with lock:
                    return fn()
            result = await asyncio.get_running_loop().run_in_executor(None, with_lock)
        if changes:
            self.runtime.render_loop.mark_dirty()
        return result

    def _entity(self, params: dict[str, Any], name: str = "id") -> Entity:
        """The entity named by an id parameter (call under the lock)."""
        entity_id = require(params, name, int)
        return self.runtime.scene.get(entity_id)

    # -- models -------------------------------------------------------------------------------
    def _progress(self, source: str) -> Callable[[float | None, int], None]:
        def report(fraction: float | None, received: int) -> None:
            conn = self.runtime.connection
            if conn is not None:
                conn.send_event("load_progress", {"source": source, "fraction": fraction,
                                                  "bytes": received})
        return report

    async def load(self, source: str, parent: int | None = None, *, data: bytes | None = None) -> dict[str, Any]:
        """Load a model (store name, host path or URL; or ``data``, the bytes of an uploaded
        ``.glb`` whose file name is ``source``) into the scene; returns its description.

        Raises a :class:`~farview.host.errors.HostError` naming the problem; the scene is
        unchanged then.
        """
        with self.load_slot(source):
            return await self._load(source, parent, data)

    @contextlib.contextmanager
    def load_slot(self, source: str) -> Iterator[None]:
        """One of the :data:`MAX_CONCURRENT_LOADS` loads a host runs at once, held from before an
        upload's body is read (six stalled 250 MiB uploads held 1.7 GB before any was a load),
        or a :class:`ControlError` (``LimitExceeded``) when none is free."""
        if self._loads_in_progress >= MAX_CONCURRENT_LOADS:
            raise ControlError(LIMIT_EXCEEDED, f"{MAX_CONCURRENT_LOADS} model loads are in "
                               "progress on this host; wait for one to finish, then load "
                               f"{source}")
        self._loads_in_progress += 1
        try:
            yield
        finally:
            self._loads_in_progress -= 1

    async def load_reserved(self, source: str, data: bytes) -> dict[str, Any]:
        """:meth:`load` of an upload whose :meth:`load_slot` the caller holds."""
        return await self._load(source, None, data)

    def _triangles_in_scene(self) -> int:
        """Triangles and points (a point counts as a triangle does: ARR's "primitives")."""
        return sum(e.mesh.primitive_count for e in self.runtime.scene.entities()
                   if e.mesh is not None)

    async def _load(self, source: str, parent: int | None, upload: bytes | None = None) -> dict[str, Any]:
        t0 = time.perf_counter()
        budgets = self.budgets
        room = None  # triangles the session size leaves for this model
        if self.scene_triangles is not None:
            room = self.scene_triangles - await self._locked(self._triangles_in_scene,
                                                             changes=False)
            if room < budgets.max_triangles:
                budgets = replace(budgets, max_triangles=max(room, 1))
        progress = self._progress(source)
        loop = asyncio.get_running_loop()
        progress(0.0, 0)
        try:
            if upload is not None:  # the user's own file, sent with this request: no source policy
                if len(upload) > budgets.max_bytes:
                    raise ModelError(f"{source} is {len(upload):,} bytes, over the {budgets.max_bytes:,}-byte "
                                     "model budget", code=LIMIT_EXCEEDED)
                data, name, kind = upload, Path(source).stem or "model", "url"
            else:
                kind = classify(source)
                self.policy.check(source, kind)
                if kind == "url":
                    data = await fetch_url(source, budgets, progress, policy=self.policy)
                    name = Path(source.split("?", 1)[0].rstrip("/")).stem or "model"
            if kind == "url":  # bytes in memory: fetched or uploaded
                model: Model = await loop.run_in_executor(None, lambda: load_model_bytes(
                    data, name=name, max_triangles=budgets.max_triangles,
                    max_file_bytes=budgets.max_bytes, max_decoded_bytes=budgets.max_decoded_bytes))
            else:
                path = (self.store.resolve(source, paths_allowed=not self.policy.store_only)
                        if kind == "name" else resolve_path(source))
                model = await loop.run_in_executor(None, lambda: load_model(
                    path, max_triangles=budgets.max_triangles, max_file_bytes=budgets.max_bytes,
                    max_decoded_bytes=budgets.max_decoded_bytes))
        except ModelError as exc:
            if exc.code == LIMIT_EXCEEDED and exc.budget == BUDGET_TRIANGLES and \
                    budgets.max_triangles < self.budgets.max_triangles:
                raise ModelError(self._over_size(source, room), code=exc.code,
                                 budget=exc.budget) from None
            if exc.code == LIMIT_EXCEEDED and exc.budget == BUDGET_TRIANGLES and \
                    self.scene_triangles is not None and \
                    budgets.max_triangles >= self.scene_triangles:  # (it said to set the host's environment,
                # which the session's bound refused next, and a remote user cannot set)
                raise ModelError(f"{source}: {exc.message}; a {self.size} session holds at most "
                                 f"{self.scene_triangles:,} triangles: use a Premium session "
                                 "(size Premium; farview session create --size Premium)",
                                 code=exc.code, budget=exc.budget) from None
            if exc.code == LIMIT_EXCEEDED:
                env = {BUDGET_TRIANGLES: ENV_MAX_TRIANGLES,
                       BUDGET_DECODED: ENV_MAX_DECODED_BYTES}.get(exc.budget or "", ENV_MAX_MODEL_BYTES)
                raise ModelError(f"{source}: {exc.message} (set {env} on the host to raise it)",
                                 code=exc.code, budget=exc.budget) from None
            suffix = Path(source.split("?", 1)[0]).suffix.lower()
            hint = ("; farview loads glTF only: convert it first (farview convert, or the "
                    "conversion API)" if suffix in CONVERTIBLE else "")
            raise ModelError(f"{source} is not a usable glTF 2.0 model: {exc.message}{hint}",
                             code=exc.code) from None

        def add() -> tuple[Entity, int, dict[str, Any]]:
            scene = self.runtime.scene
            if self.scene_triangles is not None:  # loads may have run side by side
                left = self.scene_triangles - self._triangles_in_scene()
                if model.primitive_count > left:
                    raise ModelError(self._over_size(source, left, model.primitive_count),
                                     code=LIMIT_EXCEEDED, budget=BUDGET_TRIANGLES)
            parent_entity = scene.get(parent) if parent is not None else None
            root = scene.add_model(model, model.name, parent_entity)
            self._model_roots[root.id] = source
            return root, sum(1 for _ in _subtree(root)), _tree(root, math.inf)

        root, entity_count, tree = await self._locked(add)
        # the ray casts' boxes of its meshes and of the draw list, made in the background: the
        # first click on a 100,000-part model would otherwise wait for them
        primed = asyncio.ensure_future(self._prime_rays(list(model.meshes)))
        primed.add_done_callback(_log_failure)
        self._priming.add(primed)
        primed.add_done_callback(self._priming.discard)
        loaded = LoadedModel(root.id, root.name, source, model.triangle_count, entity_count,
                             round((time.perf_counter() - t0) * 1000, 2),
                             EntityNode.from_wire(tree), model.point_count)
        progress(1.0, 0)
        log.info("loaded model %s (%d triangles, %d entities) in %.0f ms", source,
                 loaded.triangles, loaded.entity_count, loaded.load_ms)
        return loaded.to_wire()

    def _over_size(self, source: str, room: int | None, triangles: int | None = None) -> str:
        has = f"has {triangles:,} triangles" if triangles is not None else "has more triangles"
        return (f"{source} {has}, more than the {max(room or 0, 0):,} its {self.size} session "
                f"has room for (a {self.size} session holds at most {self.scene_triangles:,} "
                "triangles in all, a point of a point cloud counting as one, as ARR's did); "
                "unload models you do not need, or use a "
                "Premium session")

    # -- registration -------------------------------------------------------------------------
    def register(self, dispatcher: ControlDispatcher) -> None:
        for name in ("load_model", "unload_model", "list_models", "get_roots", "get_entity",
                     "get_tree", "find_entities", "create_entity", "destroy_entity",
                     "set_transform", "set_parent", "set_state", "get_bounds", "raycast",
                     "add_cut_plane", "set_cut_plane", "remove_cut_plane", "list_cut_planes",
                     "set_camera", "get_camera", "reset_camera", "set_lighting",
                     "get_lighting", "set_level_of_detail", "get_level_of_detail",
                     "set_point_size", "get_point_size"):
            dispatcher.add(name, getattr(self, "_" + name))

    # -- handlers: models ---------------------------------------------------------------------
    async def _load_model(self, params: dict[str, Any]) -> Any:
        source = require(params, "source", str)
        parent = params.get("parent")
        if parent is not None:
            parent = require(params, "parent", int)
        return await self.load(source, parent)

    async def _unload_model(self, params: dict[str, Any]) -> Any:
        def unload() -> dict[str, Any]:
            entity = self._entity(params)
            if entity.id not in self._model_roots:
                raise ControlError(INVALID_ARGUMENT, f"entity {entity.id} ({entity.name}) is "
                                   "not a model root; use destroy_entity (in Python: "
                                   "entity.destroy()) for other entities")
            self.runtime.scene.remove(entity)
            del self._model_roots[entity.id]
            return {}

        result = await self._locked(unload)
        self.raycaster.prune(self.runtime.scene.meshes())
        return result

    async def _list_models(self, params: dict[str, Any]) -> Any:
        return {"names": self.store.names(),
                "loaded": [{"root": r, "source": s} for r, s in self._model_roots.items()]}

    # -- handlers: entities -------------------------------------------------------------------
    async def _get_roots(self, params: dict[str, Any]) -> Any:
        depth = _depth(params, default=0)
        return await self._locked(lambda: {"roots": [
            _tree(r, depth) for r in self.runtime.scene.roots]}, changes=False)

    async def _get_entity(self, params: dict[str, Any]) -> Any:
        return await self._locked(lambda: self._info(self._entity(params)), changes=False)

    async def _get_tree(self, params: dict[str, Any]) -> Any:
        depth = _depth(params, default=math.inf)
        return await self._locked(lambda: _tree(self._entity(params), depth), changes=False)

    async def _find_entities(self, params: dict[str, Any]) -> Any:
        name = require(params, "name", str) if params.get("name") is not None else None
        flags: dict[str, bool] = {}
        for flag in _STATE_FLAGS:
            if flag in params:
                if not isinstance(params[flag], bool):
                    raise ControlError(INVALID_ARGUMENT, f"parameter {flag!r} must be true or "
                                       "false (the state an entity sets itself)")
                flags[flag] = params[flag]
        unknown = set(params) - {"name", "under", *_STATE_FLAGS}
        if unknown:
            raise ControlError(INVALID_ARGUMENT, f"unknown parameters: "
                               f"{', '.join(sorted(unknown))}; known: name, under, "
                               f"{', '.join(_STATE_FLAGS)}")
        if name is None and not flags:
            raise ControlError(INVALID_ARGUMENT, "find_entities needs a name, a state (e.g. "
                               "hidden: true) or both")

        def find() -> dict[str, Any]:
            scene = self.runtime.scene
            entities = (_subtree(self._entity(params, "under")) if params.get("under")
                        is not None else scene.entities())
            found = [e for e in entities if (name is None or e.name == name)
                     and all(getattr(e, f) is v for f, v in flags.items())]
            return {"ids": [e.id for e in found], "names": [e.name for e in found]}

        return await self._locked(find, changes=False)

    async def _create_entity(self, params: dict[str, Any]) -> Any:
        name = params.get("name", "entity")
        if not isinstance(name, str):
            raise ControlError(INVALID_ARGUMENT, "parameter 'name' must be str")

        def create() -> dict[str, Any]:
            scene = self.runtime.scene
            parent = self._entity(params, "parent") if params.get("parent") is not None else None
            e = scene.create_entity(name, parent,
                                    position=params.get("position", (0.0, 0.0, 0.0)),
                                    rotation=params.get("rotation", (0.0, 0.0, 0.0, 1.0)),
                                    scale=params.get("scale", (1.0, 1.0, 1.0)))
            return self._info(e)

        return await self._locked(create)

    async def _destroy_entity(self, params: dict[str, Any]) -> Any:
        def destroy() -> dict[str, Any]:
            entity = self._entity(params)
            removed = {e.id for e in _subtree(entity)}
            self.runtime.scene.remove(entity)
            for root in removed & set(self._model_roots):
                del self._model_roots[root]
            return {}

        result = await self._locked(destroy)
        self.raycaster.prune(self.runtime.scene.meshes())
        return result

    async def _set_transform(self, params: dict[str, Any]) -> Any:
        def apply() -> dict[str, Any]:
            e = self._entity(params)
            # validate all before changing any: a refused request changes nothing
            old = (e.position, e.rotation, e.scale)
            try:
                if "position" in params:
                    e.position = _seq(params, "position")
                if "rotation" in params:
                    e.rotation = _seq(params, "rotation")
                if "scale" in params:
                    e.scale = _seq(params, "scale")
            except HostError:
                e.position, e.rotation, e.scale = old
                raise
            return self._info(e)

        return await self._locked(apply)

    async def _set_parent(self, params: dict[str, Any]) -> Any:
        keep_world = params.get("keep_world", False)
        if not isinstance(keep_world, bool):
            raise ControlError(INVALID_ARGUMENT, "parameter 'keep_world' must be bool")
        if "parent" not in params:
            raise ControlError(INVALID_ARGUMENT, "missing parameter 'parent' (an id, or null "
                               "for a root)")

        def apply() -> dict[str, Any]:
            scene = self.runtime.scene
            e = self._entity(params)
            parent = self._entity(params, "parent") if params["parent"] is not None else None
            scene.set_parent(e, parent, keep_world=keep_world)
            return self._info(e)

        return await self._locked(apply)

    async def _set_state(self, params: dict[str, Any]) -> Any:
        changes: dict[str, Any] = {}
        for flag in _STATE_FLAGS:
            if flag in params:
                value = params[flag]
                if value is not None and not isinstance(value, bool):
                    raise ControlError(INVALID_ARGUMENT, f"parameter {flag!r} must be true, "
                                       "false or null (inherit)")
                changes[flag] = value
        if "tint" in params:
            changes["tint"] = None if params["tint"] is None else Tint.from_wire(params["tint"])
        if "material" in params:
            changes["material"] = (None if params["material"] is None
                                   else MaterialOverride.from_wire(params["material"]))
        unknown = set(params) - {"id", "tint", "material", *_STATE_FLAGS}
        if unknown:
            raise ControlError(INVALID_ARGUMENT, f"unknown state overrides: "
                               f"{', '.join(sorted(unknown))}; known: tint, material, "
                               f"{', '.join(_STATE_FLAGS)}")

        def apply() -> dict[str, Any]:
            e = self._entity(params)
            for name, value in changes.items():
                setattr(e, name, value)
            return self._info(e)

        return await self._locked(apply)

    async def _get_bounds(self, params: dict[str, Any]) -> Any:
        space = params.get("space", "world")
        if space not in ("local", "world"):
            raise ControlError(INVALID_ARGUMENT, f"space must be 'local' or 'world', got "
                               f"{space!r}")

        def bounds() -> dict[str, Any] | None:
            scene = self.runtime.scene
            e = self._entity(params)
            b = scene.local_bounds(e) if space == "local" else scene.world_bounds(e)
            return None if b is None else b.to_wire()

        return await self._locked(bounds, changes=False)

    async def _prime_rays(self, meshes: list[Mesh]) -> None:
        """:meth:`RayCaster.prime` for a model just loaded, then :meth:`RayCaster.prepare` for
        the scene's draw list as it is then (the render loop has usually made it already),
        all in a worker thread: a first walk of 100,000 parts takes 0.2-0.5 s, which the
        event loop must not wait for."""
        scene, lock = self.runtime.scene, self.runtime.scene_lock

        def job() -> None:
            self.raycaster.prime(meshes)
            with lock:
                items, key = scene.draw_list(), (id(scene), scene.structure_version)
            self.raycaster.prepare(items, key)

        await asyncio.get_running_loop().run_in_executor(None, job)

    # -- handlers: queries --------------------------------------------------------------------
    async def _raycast(self, params: dict[str, Any]) -> Any:
        origin = _finite_seq(params, "origin", 3)
        direction = _finite_seq(params, "direction", 3)
        if sum(c * c for c in direction) < 1e-18:
            raise ControlError(INVALID_ARGUMENT, "ray direction must not be the zero vector")
        mode = params.get("mode", "closest")
        if mode not in ("closest", "all"):
            raise ControlError(INVALID_ARGUMENT, f"mode must be 'closest' or 'all', got {mode!r}")
        max_hits = 1 if mode == "closest" else params.get("max_hits", 100)
        if isinstance(max_hits, bool) or not isinstance(max_hits, int) or not (
                1 <= max_hits <= MAX_RAY_HITS):
            raise ControlError(INVALID_ARGUMENT, f"max_hits must be an integer in "
                               f"1..{MAX_RAY_HITS}, got {max_hits!r}")
        max_distance = params.get("max_distance", math.inf)
        if max_distance is None:
            max_distance = math.inf
        if isinstance(max_distance, bool) or not isinstance(max_distance, (int, float)) or not (
                max_distance > 0):
            raise ControlError(INVALID_ARGUMENT, f"max_distance must be a positive number, "
                               f"got {max_distance!r}")
        t0 = time.perf_counter()
        scene = self.runtime.scene
        items, planes, key = await self._locked(
            lambda: (scene.draw_list(), list(scene.cut_planes.values()),
                     (id(scene), scene.structure_version)), changes=False)
        tolerance = self._point_tolerance()
        hits = await asyncio.get_running_loop().run_in_executor(None, lambda: self.raycaster.cast(
            items, origin, direction, max_distance=float(max_distance), max_hits=max_hits,
            cut_planes=planes, worlds_key=key, point_tolerance=tolerance))
        return {"hits": [RayHit(h.entity_id, h.entity_name, h.position, h.normal, h.distance,
                                h.front_face, h.hit_type).to_wire() for h in hits],
                "host_ms": round((time.perf_counter() - t0) * 1000, 3)}

    def _point_tolerance(self) -> float:
        """How wide a drawn point is, as the tangent of the angle from its centre to its
        square's corner in the current view (the last pose's field of view, or the camera
        override's, over the height of the picture rendered): :meth:`RayCaster.cast`'s
        ``point_tolerance``, so that a ray through a pixel a point covers hits that point."""
        scene = self.runtime.scene
        loop = self.runtime.render_loop
        pose = loop.last_pose
        camera = scene.camera
        fov = pose.views[0].fov
        if camera is not None and camera.fov_y is not None and len(pose.views) == 1:
            fov = fov.with_vertical(camera.fov_y)  # as the renderer draws it
        span = fov.tan_up - fov.tan_down
        rendered = loop.stream_resolution()
        height = rendered[1][1] if rendered is not None and rendered[1] is not None \
            else pose.viewport[1]
        return scene.point_size * math.sqrt(0.5) * span / max(1, height)

    # -- handlers: cut planes, camera, lighting ------------------------------------------------
    async def _add_cut_plane(self, params: dict[str, Any]) -> Any:
        plane = _cut_plane(params)
        return await self._locked(lambda: {"id": self.runtime.scene.add_cut_plane(plane)})

    async def _set_cut_plane(self, params: dict[str, Any]) -> Any:
        plane_id = require(params, "id", int)
        plane = _cut_plane(params)
        def apply() -> dict[str, Any]:
            self.runtime.scene.set_cut_plane(plane_id, plane)
            return {}

        return await self._locked(apply)

    async def _remove_cut_plane(self, params: dict[str, Any]) -> Any:
        plane_id = require(params, "id", int)
        def apply() -> dict[str, Any]:
            self.runtime.scene.remove_cut_plane(plane_id)
            return {}

        return await self._locked(apply)

    async def _list_cut_planes(self, params: dict[str, Any]) -> Any:
        planes = self.runtime.scene.cut_planes
        return {"planes": [CutPlaneInfo(i, p.normal, p.point).to_wire()
                           for i, p in planes.items()]}

    async def _set_camera(self, params: dict[str, Any]) -> Any:
        near = require(params, "near", (int, float))
        far = require(params, "far", (int, float))
        fov_y = params.get("fov_y")
        if fov_y is not None:
            fov_y = float(require(params, "fov_y", (int, float)))
        camera = CameraSettings(float(near), float(far), fov_y)

        def apply() -> dict[str, Any]:
            self.runtime.scene.camera = camera
            return CameraOverride.of(camera).to_wire()

        return await self._locked(apply)

    async def _get_camera(self, params: dict[str, Any]) -> Any:
        return CameraOverride.of(self.runtime.scene.camera).to_wire()

    async def _reset_camera(self, params: dict[str, Any]) -> Any:
        def apply() -> dict[str, Any]:
            self.runtime.scene.camera = None
            return CameraOverride.of(None).to_wire()

        return await self._locked(apply)

    async def _set_lighting(self, params: dict[str, Any]) -> Any:
        def apply() -> dict[str, Any]:
            scene = self.runtime.scene
            scene.lighting = scene.lighting.replace(params)
            return scene.lighting.to_wire()

        return await self._locked(apply)

    async def _get_lighting(self, params: dict[str, Any]) -> Any:
        return self.runtime.scene.lighting.to_wire()

    async def _set_level_of_detail(self, params: dict[str, Any]) -> Any:
        mode = require(params, "mode", str)
        if mode not in DETAIL_MODES:
            raise ControlError(INVALID_ARGUMENT, f"mode must be one of "
                               f"{', '.join(DETAIL_MODES)}, got {mode[:40]!r}")

        def apply() -> dict[str, Any]:
            self.runtime.scene.detail = mode
            return {"mode": mode}

        return await self._locked(apply)

    async def _get_level_of_detail(self, params: dict[str, Any]) -> Any:
        return {"mode": self.runtime.scene.detail}

    async def _set_point_size(self, params: dict[str, Any]) -> Any:
        size = require(params, "size", (int, float))
        lo, hi = POINT_SIZES
        if not (math.isfinite(size) and lo <= size <= hi):
            raise ControlError(INVALID_ARGUMENT, f"size must be {lo:g} to {hi:g} pixels, "
                               f"got {size!r}")

        def apply() -> dict[str, Any]:
            self.runtime.scene.point_size = float(size)
            return {"size": self.runtime.scene.point_size}

        return await self._locked(apply)

    async def _get_point_size(self, params: dict[str, Any]) -> Any:
        return {"size": self.runtime.scene.point_size}

    # -- descriptions -------------------------------------------------------------------------
    def _info(self, e: Entity) -> dict[str, Any]:
        """An entity's wire description (call under the lock)."""
        return EntityInfo(
            e.id, e.name, e.parent.id if e.parent is not None else None,
            tuple(c.id for c in e.children), e.position, e.rotation, e.scale,
            e.mesh is not None, e.id in self._model_roots, e.hidden, e.selected, e.see_through,
            e.collision_disabled, e.tint, e.material).to_wire()


# -- helpers (pure) -------------------------------------------------------------------------------


def _log_failure(job: asyncio.Future[None]) -> None:
    """A background job's error goes to the log (nobody awaits it)."""
    if not job.cancelled() and job.exception() is not None:
        log.error("making ray-cast boxes failed", exc_info=job.exception())


def _subtree(root: Entity) -> list[Entity]:
    out, stack = [], [root]
    while stack:
        e = stack.pop()
        out.append(e)
        stack.extend(reversed(e.children))
    return out


def _tree(root: Entity, depth: float) -> dict[str, Any]:
    """``{id, name, children: [...]}`` breadth-first up to ``depth`` levels and
    :data:`MAX_TREE_NODES` nodes; a node whose children were left out has ``"more": true``."""
    top: dict[str, Any] = {"id": root.id, "name": root.name, "children": []}
    queue = [(root, top, 0)]
    count = 1
    while queue:
        e, node, level = queue.pop(0)
        kids = e.children
        if kids and (level >= depth or count + len(kids) > MAX_TREE_NODES):
            node["more"] = True
            continue
        for c in kids:
            child: dict[str, Any] = {"id": c.id, "name": c.name, "children": []}
            node["children"].append(child)
            queue.append((c, child, level + 1))
        count += len(kids)
    return top


def _depth(params: dict[str, Any], default: float) -> float:
    depth = params.get("depth")
    if depth is None:
        return default
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise ControlError(INVALID_ARGUMENT, f"depth must be a non-negative integer, got "
                           f"{depth!r}")
    return float(depth)


def _seq(params: dict[str, Any], name: str) -> list[Any]:
    value = params[name]
    if not isinstance(value, list):
        raise ControlError(INVALID_ARGUMENT, f"parameter {name!r} must be a list of numbers")
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value):
        raise ControlError(INVALID_ARGUMENT, f"parameter {name!r} must contain only numbers, "
                           f"got {value!r}")
    return value


def _finite_seq(params: dict[str, Any], name: str, size: int) -> tuple[float, ...]:
    if name not in params:
        raise ControlError(INVALID_ARGUMENT, f"missing parameter {name!r}")
    value = _seq(params, name)
    if len(value) != size or not all(math.isfinite(v) for v in value):
        raise ControlError(INVALID_ARGUMENT, f"{name} must be {size} finite numbers, got "
                           f"{value!r}")
    return tuple(float(v) for v in value)


def _cut_plane(params: dict[str, Any]) -> CutPlane:
    n, p = _finite_seq(params, "normal", 3), _finite_seq(params, "point", 3)
    return CutPlane((n[0], n[1], n[2]), (p[0], p[1], p[2]))
