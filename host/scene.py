"""The session's scene graph: entities with transforms, meshes and state overrides.

Owns entity identity (integer ids, unique for the scene's lifetime and never reused, so ids a
client holds stay valid across reconnects), the hierarchy, local TRS transforms, hierarchical
state overrides (hidden, tint, selected, see-through, collision disabled; ``None`` means
"inherit from the parent", as ARR's ``InheritFromParent``), lighting, and geometric queries
(world matrices, world bounds). No GPU resources: the renderer caches buffers per
``Mesh.key``.

Threading: not thread-safe. The scene belongs to the render thread; control requests that
change it are handed to that thread (or run under the caller's own lock around ``render``).
``Scene.version`` increases on every change so a render loop can tell a still scene.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import cast

import numpy as np
import numpy.typing as npt

from farview.host import transforms
from farview.host.errors import LIMIT_EXCEEDED, NOT_FOUND, SceneError
from farview.host.gltf import Mesh, Model, Node, gc_paused
from farview.input import scene as wire_scene
from farview.input.errors import ProtocolError
from farview.input.mathutil import Quat, Vec3
from farview.input.scene import (
    DEFAULT_POINT_SIZE,
    DETAIL_MODES,
    POINT_SIZES,
    Bounds,
    CameraSettings,
    CutPlane,
    Light,
    Lighting,
    MaterialOverride,
    Tint,
)


def _vec(name: str, value: Sequence[float], size: int) -> tuple[float, ...]:
    try:
        return wire_scene.vec(name, value, size)
    except ProtocolError as exc:
        raise SceneError(str(exc)) from None


def _quat(value: Sequence[float]) -> Quat:
    try:
        return wire_scene.unit_quat("rotation", value)
    except ProtocolError as exc:
        raise SceneError(str(exc)) from None


def _node_transform(node: Node) -> tuple[Vec3, Quat, Vec3]:
    """A glTF node's local transform as an entity's (position, unit rotation, scale), or a
    SceneError naming the node when it has none (a sheared matrix, one too large to split, or
    values that are not finite)."""
    where = f"node {node.index} ({node.name})"
    if node.matrix is not None:
        try:
            with np.errstate(all="ignore"):  # overflow shows as inf/NaN, checked below
                t, r, s, residual = transforms.decompose(node.local_matrix())
        except (ValueError, np.linalg.LinAlgError) as exc:
            raise SceneError(f"{where} has a matrix that cannot be decomposed ({exc})") from None
        values = (*t, *r, *s, residual)
        if not all(math.isfinite(v) for v in values):
            raise SceneError(f"{where} has a matrix too large to decompose into translation, "
                             "rotation and scale")
        if residual > 1e-4 * max(1.0, max(abs(c) for c in s)):
            raise SceneError(f"{where} has a sheared matrix, which glTF does not allow and "
                             "entities cannot represent; export the model again with the "
                             "shear applied to its vertices")
    else:
        t, r, s = node.translation, node.rotation, node.scale
    try:
        # the node's own tuples when they are valid (vec returns them): an entity of a
        # 100,000-part model held copies (12 MB)
        return (cast(Vec3, _vec("position", t, 3)), _quat(r), cast(Vec3, _vec("scale", s, 3)))
    except SceneError as exc:
        raise SceneError(f"{where}: {exc.message}") from None


_DEFAULT_NODE = Node(0, "")
_NO_TRANSFORM: tuple[Vec3, Quat, Vec3] = (_DEFAULT_NODE.translation, _DEFAULT_NODE.rotation,
                                          _DEFAULT_NODE.scale)
"""A glTF node's defaults (the same tuples, shared by every part that has them)."""


def _matrix_transforms(nodes: Sequence[Node]) -> list[tuple[Vec3, Quat, Vec3]]:
    """:func:`_node_transform` of nodes given as matrices, decomposed together: one at a time
    took 7 s for a converted file's 100,000 parts. An identity rotation or unit scale is
    the one shared tuple (as a node's defaults are), not new floats for each part."""
    if not nodes:
        return []
    try:
        t, q, s, residual = transforms.decompose_column_major(
            [cast("tuple[float, ...]", n.matrix) for n in nodes])
    except np.linalg.LinAlgError:
        return [_node_transform(n) for n in nodes]  # (each says what it cannot split)
    with np.errstate(all="ignore"):
        ok = (np.isfinite(t).all(axis=1) & np.isfinite(q).all(axis=1)
              & np.isfinite(s).all(axis=1)
              & (residual <= 1e-4 * np.maximum(1.0, np.abs(s).max(axis=1))))
    if not ok.all():
        bad = nodes[int(np.flatnonzero(~ok)[0])]
        _node_transform(bad)  # raises, naming the node and what is wrong
        raise SceneError(f"node {bad.index} ({bad.name}) has a matrix that cannot be "
                         "decomposed into translation, rotation and scale")
    no_rotation, unit_scale = _NO_TRANSFORM[1], _NO_TRANSFORM[2]
    out: list[tuple[Vec3, Quat, Vec3]] = []
    for tt, qq, ss in zip(t.tolist(), q.tolist(), s.tolist(), strict=True):
        rotation = tuple(qq)
        scale = tuple(ss)
        out.append((cast(Vec3, tuple(tt)),
                    no_rotation if rotation == no_rotation else cast(Quat, rotation),
                    unit_scale if scale == unit_scale else cast(Vec3, scale)))
    return out


@dataclass(frozen=True)
class ResolvedState:
    """An entity's effective state after inheritance (what the renderer and ray casts use)."""

    hidden: bool = False
    tint: Tint | None = None
    selected: bool = False
    see_through: bool = False
    collision_disabled: bool = False
    material: MaterialOverride | None = None


_BOUNDS_CHUNK_VERTICES = 1 << 18
"""Small parts' vertices transformed together for bounds, at most this many at a time (each
takes its part's 3×3 matrix along: ~100 bytes a vertex while the chunk is worked on)."""

STATE_LOG_MAX = 4096
"""A scene lists at most this many state changes for :meth:`Scene.draw_items_changed`; past
that its caller takes the whole draw list again."""

MAX_CUT_PLANES = 8
"""At most this many cut planes are active at once (ARR's limit)."""


_NO_CHILDREN = cast("list[Entity]", ())
"""The children of every entity that has none (:attr:`Entity._children`)."""


class Entity:
    """A node of the scene. Create through :class:`Scene`; never construct directly.

    Transform and state setters validate (finite numbers, unit quaternion, …) and raise
    :class:`SceneError`. State overrides are ``None`` to inherit from the parent.
    """

    __slots__ = (
        "_children", "_collision_disabled", "_hidden", "_material", "_parent",
        "_position", "_rotation", "_scale", "_scene", "_see_through", "_selected", "_tint", "id",
        "light", "mesh", "name",
    )

    def __init__(self, scene: Scene, entity_id: int, name: str) -> None:
        self._scene: Scene | None = scene
        self.id = entity_id
        """Unique in the scene for its whole lifetime; never reused."""
        self.name = name
        self.mesh: Mesh | None = None
        self.light: Light | None = None
        """A light from the model's file (KHR_lights_punctual), placed by the entity."""
        self._parent: Entity | None = None
        self._children: list[Entity] = _NO_CHILDREN
        """Its own list once it has a child (:meth:`Scene._attach`); until then a shared empty
        one, never appended to (a list a part took 5 MB at 100,000 parts)."""
        self._position: Vec3 = (0.0, 0.0, 0.0)
        self._rotation: Quat = (0.0, 0.0, 0.0, 1.0)
        self._scale: Vec3 = (1.0, 1.0, 1.0)
        self._hidden: bool | None = None
        self._tint: Tint | None = None
        self._selected: bool | None = None
        self._see_through: bool | None = None
        self._collision_disabled: bool | None = None
        self._material: MaterialOverride | None = None

    def __repr__(self) -> str:
        return f"Entity(id={self.id}, name={self.name!r})"

    def _touch(self, state: bool = False) -> None:
        """Count a change; ``state``: a state override (not a transform or the structure),
        which leaves world matrices as they were."""
        if self._scene is None:
            raise SceneError(f"entity {self.id} ({self.name}) was removed from the scene",
                             code=NOT_FOUND)
        self._scene.version += 1
        if state:
            self._scene._state_changes += 1
            self._scene._log_state(self)

    @property
    def alive(self) -> bool:
        """False once the entity (or an ancestor) was removed."""
        return self._scene is not None

    @property
    def parent(self) -> Entity | None:
        return self._parent

    @property
    def children(self) -> tuple[Entity, ...]:
        return tuple(self._children)

    # -- transform ------------------------------------------------------------------------------

    @property
    def position(self) -> Vec3:
        return self._position

    @position.setter
    def position(self, value: Sequence[float]) -> None:
        x, y, z = _vec("position", value, 3)
        self._touch()
        self._position = (x, y, z)

    @property
    def rotation(self) -> Quat:
        """Unit quaternion (x, y, z, w); set any non-zero quaternion, it is normalised."""
        return self._rotation

    @rotation.setter
    def rotation(self, value: Sequence[float]) -> None:
        q = _quat(value)
        self._touch()
        self._rotation = q

    @property
    def scale(self) -> Vec3:
        return self._scale

    @scale.setter
    def scale(self, value: Sequence[float]) -> None:
        x, y, z = _vec("scale", value, 3)
        self._touch()
        self._scale = (x, y, z)

    def local_matrix(self) -> transforms.Mat4:
        """Position, rotation and scale as one matrix (a new one each time: the draw list
        makes all of them at once, :meth:`Scene.draw_list`)."""
        return transforms.compose(self._position, self._rotation, self._scale)

    # -- state overrides (None = inherit) ------------------------------------------------------

    @property
    def hidden(self) -> bool | None:
        return self._hidden

    @hidden.setter
    def hidden(self, value: bool | None) -> None:
        self._touch(state=True)
        self._hidden = None if value is None else bool(value)

    @property
    def tint(self) -> Tint | None:
        """``None`` inherits; ``Tint(color, 0.0)`` explicitly removes an inherited tint."""
        return self._tint

    @tint.setter
    def tint(self, value: Tint | None) -> None:
        if value is not None and not isinstance(value, Tint):
            raise SceneError(f"tint must be a Tint or None, got {value!r}")
        self._touch(state=True)
        self._tint = value

    @property
    def material(self) -> MaterialOverride | None:
        """``None`` inherits; an empty override explicitly removes an inherited one."""
        return self._material

    @material.setter
    def material(self, value: MaterialOverride | None) -> None:
        if value is not None and not isinstance(value, MaterialOverride):
            raise SceneError(f"material must be a MaterialOverride or None, got {value!r}")
        self._touch(state=True)
        self._material = value

    @property
    def selected(self) -> bool | None:
        return self._selected

    @selected.setter
    def selected(self, value: bool | None) -> None:
        self._touch(state=True)
        self._selected = None if value is None else bool(value)

    @property
    def see_through(self) -> bool | None:
        return self._see_through

    @see_through.setter
    def see_through(self, value: bool | None) -> None:
        self._touch(state=True)
        self._see_through = None if value is None else bool(value)

    @property
    def collision_disabled(self) -> bool | None:
        return self._collision_disabled

    @collision_disabled.setter
    def collision_disabled(self, value: bool | None) -> None:
        self._touch(state=True)
        self._collision_disabled = None if value is None else bool(value)

    def _resolve(self, parent: ResolvedState) -> ResolvedState:
        if (self._hidden is None and self._tint is None and self._selected is None
                and self._see_through is None and self._collision_disabled is None
                and self._material is None):
            return parent  # nothing overridden (most parts of a big model): shared, not copied
        return ResolvedState(
            parent.hidden if self._hidden is None else self._hidden,
            parent.tint if self._tint is None else (self._tint if self._tint.weight > 0 else None),
            parent.selected if self._selected is None else self._selected,
            parent.see_through if self._see_through is None else self._see_through,
            parent.collision_disabled if self._collision_disabled is None
            else self._collision_disabled,
            parent.material if self._material is None
            else (None if self._material.empty else self._material),
        )


class PlaceIndex:
    """Entity id → place in a list of draw items, for ids lowest..highest of the list (ids are
    never reused: after models are unloaded the live ids are the newer ones, and an array from
    0 would grow with every load of a session)."""

    __slots__ = ("first", "places")

    def __init__(self, items: list[DrawItem]) -> None:
        ids = np.fromiter((it.entity.id for it in items), dtype=np.int64, count=len(items))
        self.first = int(ids.min()) if len(ids) else 0
        self.places = np.full(int(ids.max()) - self.first + 1 if len(ids) else 0, -1,
                              dtype=np.int32)
        self.places[ids - self.first] = np.arange(len(ids), dtype=np.int32)

    def __getitem__(self, entity_id: int) -> int:
        """The place of ``entity_id``, -1 when it is not in the list."""
        i = entity_id - self.first
        return int(self.places[i]) if 0 <= i < len(self.places) else -1


@dataclass(frozen=True, slots=True)
class DrawItem:
    """One entity with a mesh, as the renderer needs it. Its world matrix is row ``row`` of
    ``worlds`` (read-only), the array the draw list made for all of them: a matrix an item
    took 15 MB more at 100,000 parts (:func:`stack_worlds` takes them back together)."""

    entity: Entity
    mesh: Mesh
    worlds: npt.NDArray[np.float64]
    row: int
    state: ResolvedState

    @property
    def world(self) -> transforms.Mat4:
        """The entity's world matrix (read-only)."""
        m: transforms.Mat4 = self.worlds[self.row]
        return m


def stack_worlds(items: Sequence[DrawItem]) -> npt.NDArray[np.float64]:
    """The world matrices of ``items``, (n, 4, 4): one gather when they are rows of one array,
    as a draw list's are."""
    if not items:
        return np.zeros((0, 4, 4))
    base = items[0].worlds
    if all(it.worlds is base for it in items):
        return base[np.fromiter((it.row for it in items), dtype=np.intp, count=len(items))]
    return np.stack([it.world for it in items])


_ROOT_STATE = ResolvedState()


class Scene:
    """The entity forest of one session."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._entities: dict[int, Entity] = {}
        self._roots: list[Entity] = []
        self.version = 0
        """Increases on every change (transform, state, structure, lighting)."""
        self._state_changes = 0
        """How many of those changes were entities' state overrides (hidden, tint, …)."""
        self._worlds: tuple[int, list[DrawItem], PlaceIndex] | None = None
        """The count of changes other than state overrides that the last full draw list is
        for, that list and its index: the world matrices of entities with a mesh, kept while
        only state overrides change (see :meth:`draw_list`)."""
        self._draw_cache: tuple[int, list[DrawItem], tuple[int, int, int],
                                PlaceIndex] | None = None
        """The last draw list: for :attr:`version`, its state mark, entity id → place."""
        self._state_log: list[Entity] = []
        """Entities whose state overrides were set since the last change of anything else
        (at most STATE_LOG_MAX; see :meth:`draw_items_changed`)."""
        self._state_log_key = 0
        """The :attr:`structure_version` the log is for."""
        self._state_epoch = 0
        """Moves whenever the log is started again (a marks taken before is then stale)."""
        self._lighting = Lighting()
        self._cut_planes: dict[int, CutPlane] = {}
        self._cut_plane_ids = itertools.count(1)
        self._camera: CameraSettings | None = None
        self._detail = "auto"
        self._point_size = DEFAULT_POINT_SIZE

    # -- structure ----------------------------------------------------------------------------

    @property
    def lighting(self) -> Lighting:
        return self._lighting

    @lighting.setter
    def lighting(self, value: Lighting) -> None:
        self._lighting = value
        self.version += 1

    @property
    def camera(self) -> CameraSettings | None:
        """Host-side camera overrides, or None to use each pose message's own values."""
        return self._camera

    @camera.setter
    def camera(self, value: CameraSettings | None) -> None:
        self._camera = value
        self.version += 1

    @property
    def detail(self) -> str:
        """``auto``: big parts may be drawn coarser while the camera moves (the renderer keeps
        frames within its budget); ``full``: always full detail (pinned by the user)."""
        return self._detail

    @detail.setter
    def detail(self, value: str) -> None:
        if value not in DETAIL_MODES:
            raise ValueError(f"detail must be one of {', '.join(DETAIL_MODES)}, got {value!r}")
        self._detail = value
        self.version += 1

    @property
    def point_size(self) -> float:
        """Pixels across each point of a point cloud (:data:`POINT_SIZES` bounds it)."""
        return self._point_size

    @point_size.setter
    def point_size(self, value: float) -> None:
        lo, hi = POINT_SIZES
        if not lo <= value <= hi:
            raise ValueError(f"point size must be {lo} to {hi} pixels, got {value}")
        self._point_size = float(value)
        self.version += 1

    @property
    def cut_planes(self) -> dict[int, CutPlane]:
        """Active cut planes by id (a copy)."""
        return dict(self._cut_planes)

    def add_cut_plane(self, plane: CutPlane) -> int:
        """Activate ``plane``; returns its id. At most :data:`MAX_CUT_PLANES`."""
        if len(self._cut_planes) >= MAX_CUT_PLANES:
            raise SceneError(f"at most {MAX_CUT_PLANES} cut planes can be active; remove one "
                             "first", code=LIMIT_EXCEEDED)
        plane_id = next(self._cut_plane_ids)
        self._cut_planes[plane_id] = plane
        self.version += 1
        return plane_id

    def set_cut_plane(self, plane_id: int, plane: CutPlane) -> None:
        if plane_id not in self._cut_planes:
            raise SceneError(f"unknown cut plane id {plane_id}", code=NOT_FOUND)
        self._cut_planes[plane_id] = plane
        self.version += 1

    def remove_cut_plane(self, plane_id: int) -> None:
        if self._cut_planes.pop(plane_id, None) is None:
            raise SceneError(f"unknown cut plane id {plane_id}", code=NOT_FOUND)
        self.version += 1

    @property
    def roots(self) -> tuple[Entity, ...]:
        return tuple(self._roots)

    def __len__(self) -> int:
        return len(self._entities)

    def __contains__(self, entity: object) -> bool:
        return isinstance(entity, Entity) and self._entities.get(entity.id) is entity

    def get(self, entity_id: int) -> Entity:
        try:
            return self._entities[entity_id]
        except KeyError:
            raise SceneError(f"unknown entity id {entity_id}", code=NOT_FOUND) from None

    def entities(self) -> Iterator[Entity]:
        """All entities, depth first, parents before children."""
        stack = list(reversed(self._roots))
        while stack:
            e = stack.pop()
            yield e
            stack.extend(reversed(e._children))

    def create_entity(
        self, name: str, parent: Entity | None = None, *, mesh: Mesh | None = None,
        position: Sequence[float] = (0.0, 0.0, 0.0),
        rotation: Sequence[float] = (0.0, 0.0, 0.0, 1.0),
        scale: Sequence[float] = (1.0, 1.0, 1.0),
    ) -> Entity:
        if parent is not None:
            self._check_member(parent)
        e = Entity(self, next(self._ids), str(name))
        e.position, e.rotation, e.scale = position, rotation, scale
        e.mesh = mesh
        self._entities[e.id] = e
        self._attach(e, parent)
        self.version += 1
        return e

    def add_model(self, model: Model, name: str | None = None,
                  parent: Entity | None = None) -> Entity:
        """Instantiate ``model``'s node forest under a new root entity named ``name``.

        Nodes given as a matrix are decomposed into TRS; a sheared matrix cannot be expressed
        and is refused (glTF allows it only for non-animated nodes, and no sample uses it).

        Atomic: every node's transform is checked before the first entity is created, and
        anything failing after that removes what was added, so a refused model leaves the
        scene's entities as they were (only ``version`` may have moved). Iterative, so
        hierarchies of any depth load.
        """
        if parent is not None:
            self._check_member(parent)
        # Pass 1, nothing changes yet: each node's transform, depth first with children in
        # order (the order entities are created in, so ids follow the file as before), and the
        # index in ``plan`` of its parent (-1: the model's root entity).
        plan: list[tuple[int, int, Vec3, Quat, Vec3]] = []
        matrix_slots: list[int] = []  # the places in ``plan`` of nodes given as matrices
        visited: set[int] = set()
        stack = [(r, -1) for r in reversed(model.roots)]
        while stack:
            index, parent_slot = stack.pop()
            if not 0 <= index < len(model.nodes):
                raise SceneError(f"model {model.name!r} refers to node {index}, which it lacks")
            if index in visited:
                raise SceneError(f"node {index} of model {model.name!r} is reached twice; the "
                                 "node hierarchy must be a forest")
            visited.add(index)
            node = model.nodes[index]
            if node.matrix is None:
                plan.append((index, parent_slot, *_node_transform(node)))
            else:  # decomposed below, with the model's other matrices
                plan.append((index, parent_slot, *_NO_TRANSFORM))
                matrix_slots.append(len(plan) - 1)
            slot = len(plan) - 1
            stack.extend((c, slot) for c in reversed(node.children))
        for slot, (t, r, s) in zip(matrix_slots, _matrix_transforms(
                [model.nodes[plan[k][0]] for k in matrix_slots]), strict=True):
            plan[slot] = (plan[slot][0], plan[slot][1], t, r, s)
        # Pass 2: create the entities; undo on any failure.
        root = self.create_entity(name or model.name, parent)
        try:
            with gc_paused():
                self._create_planned(model, plan, root)
        except BaseException:
            self.remove(root)
            raise
        return root

    def _create_planned(self, model: Model, plan: list[tuple[int, int, Vec3, Quat, Vec3]],
                        root: Entity) -> None:
        """:meth:`add_model`'s entities, from its checked plan. The transforms were checked
        and the parents are the root or entities made here: each entity is made directly, not
        through :meth:`create_entity`'s checks again (a third of adding a 100,000-part
        model)."""
        created: list[Entity] = []
        ids = self._ids
        for index, parent_slot, t, r, s in plan:
            node = model.nodes[index]
            e = Entity(self, next(ids), str(node.name))
            e._position, e._rotation, e._scale = t, r, s
            e.mesh, e.light = node.mesh, node.light
            self._entities[e.id] = e
            self._attach(e, root if parent_slot < 0 else created[parent_slot])
            created.append(e)
        self.version += 1

    def remove(self, entity: Entity) -> None:
        """Remove ``entity`` and its subtree; their ids are never reused."""
        self._check_member(entity)
        self._detach(entity)
        stack = [entity]
        while stack:
            e = stack.pop()
            stack.extend(e._children)
            del self._entities[e.id]
            e._scene = None
        self.version += 1

    def set_parent(self, entity: Entity, parent: Entity | None, *,
                   keep_world: bool = False) -> None:
        """Reparent; ``keep_world`` adjusts the local transform so the entity does not move."""
        self._check_member(entity)
        if parent is not None:
            self._check_member(parent)
            p: Entity | None = parent
            while p is not None:
                if p is entity:
                    raise SceneError(f"cannot parent entity {entity.id} ({entity.name}) under "
                                     f"its own descendant {parent.id} ({parent.name})")
                p = p._parent
        world = self.world_matrix(entity) if keep_world else None
        self._detach(entity)
        self._attach(entity, parent)
        if world is not None:
            parent_world = self.world_matrix(parent) if parent is not None else np.eye(4)
            t, r, s, _ = transforms.decompose(np.linalg.inv(parent_world) @ world)
            entity.position, entity.rotation, entity.scale = t, r, s
        self.version += 1

    def _check_member(self, entity: Entity) -> None:
        if entity not in self:
            raise SceneError(f"entity {entity.id} ({entity.name}) is not in this scene")

    def _attach(self, e: Entity, parent: Entity | None) -> None:
        e._parent = parent
        if parent is None:
            self._roots.append(e)
        elif parent._children is _NO_CHILDREN:
            parent._children = [e]
        else:
            parent._children.append(e)

    def _detach(self, e: Entity) -> None:
        siblings = e._parent._children if e._parent is not None else self._roots
        siblings.remove(e)
        e._parent = None

    # -- queries ------------------------------------------------------------------------------

    def world_matrix(self, entity: Entity) -> transforms.Mat4:
        self._check_member(entity)
        m = entity.local_matrix()
        p = entity._parent
        while p is not None:
            m = p.local_matrix() @ m
            p = p._parent
        return m

    def resolved_state(self, entity: Entity) -> ResolvedState:
        """Effective overrides: each one from the nearest entity (self first) that sets it."""
        self._check_member(entity)
        chain = []
        e: Entity | None = entity
        while e is not None:
            chain.append(e)
            e = e._parent
        state = _ROOT_STATE
        for e in reversed(chain):
            state = e._resolve(state)
        return state

    def local_bounds(self, entity: Entity) -> Bounds | None:
        """AABB of the subtree's vertices in ``entity``'s own space (None without meshes)."""
        inverse = np.asarray(np.linalg.inv(self.world_matrix(entity)), dtype=np.float64)
        return self._bounds(entity, inverse)

    def world_bounds(self, entity: Entity) -> Bounds | None:
        """AABB of the world-space vertices of ``entity`` and its descendants."""
        return self._bounds(entity, np.eye(4))

    def _bounds(self, entity: Entity, to_space: transforms.Mat4) -> Bounds | None:
        self._check_member(entity)
        lo = np.full(3, np.inf)
        hi = np.full(3, -np.inf)
        parent_world = self.world_matrix(entity._parent) if entity._parent else np.eye(4)
        # Exact: every vertex is transformed, not the mesh's box corners, so rotated parts do
        # not report inflated bounds. Small parts go in chunks, each vertex with its part's
        # matrix (one NumPy pass for thousands of parts: 100,000 took 2.8 s one by one).
        chunk: list[tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]]] = []
        chunk_vertices = 0

        def flush() -> None:
            nonlocal lo, hi, chunk_vertices
            if not chunk:
                return
            mats = np.stack([m for m, _ in chunk])
            owner = np.repeat(np.arange(len(chunk)), [len(p) for _, p in chunk])
            points = np.concatenate([p for _, p in chunk]).astype(np.float64)
            pts = np.einsum("vij,vj->vi", mats[:, :3, :3][owner], points) + mats[:, :3, 3][owner]
            lo = np.minimum(lo, pts.min(axis=0))
            hi = np.maximum(hi, pts.max(axis=0))
            chunk.clear()
            chunk_vertices = 0

        for item in self._walk([entity], parent_world, _ROOT_STATE):
            m = to_space @ item.world
            for prim in item.mesh.primitives:
                n = len(prim.positions)
                if n > _BOUNDS_CHUNK_VERTICES // 16:  # a big part: on its own
                    pts = transforms.transform_points(m, prim.positions)
                    lo = np.minimum(lo, pts.min(axis=0))
                    hi = np.maximum(hi, pts.max(axis=0))
                elif n:
                    chunk.append((m, prim.positions))
                    chunk_vertices += n
                    if chunk_vertices >= _BOUNDS_CHUNK_VERTICES:
                        flush()
        flush()
        if not np.isfinite(lo).all():
            return None
        return Bounds((float(lo[0]), float(lo[1]), float(lo[2])),
                      (float(hi[0]), float(hi[1]), float(hi[2])))

    @property
    def structure_version(self) -> int:
        """Moves with every change but an entity's state override (hidden, tint, selected,
        see-through, collision, material edit): what world matrices and meshes depend on."""
        return self.version - self._state_changes

    def _log_state(self, entity: Entity) -> None:
        key = self.structure_version
        if key != self._state_log_key or len(self._state_log) >= STATE_LOG_MAX:
            self._state_log = []
            self._state_log_key = key
            self._state_epoch += 1
        self._state_log.append(entity)

    def state_mark(self) -> tuple[int, int, int]:
        """Where the scene stands now, for :meth:`draw_items_changed`."""
        key = self.structure_version
        if key != self._state_log_key:  # the next state change starts a new log
            return key, self._state_epoch + 1, 0
        return key, self._state_epoch, len(self._state_log)

    def draw_items_changed(self, mark: tuple[int, int, int]) -> list[DrawItem] | None:
        """The draw items whose resolved state may differ from what it was at ``mark`` (a
        :meth:`state_mark`): every entity with a mesh under an entity whose state overrides
        were set since, with its world matrix and state as :meth:`draw_list` gives them.
        ``None`` when something else changed since (a transform, the structure, …), when
        more than STATE_LOG_MAX state changes were made, or when :meth:`draw_list` has not
        been called for this structure: then the caller takes the whole :meth:`draw_list`.
        Selecting a part of 100,000 thus costs its own subtree, not a walk of all of them."""
        key, epoch, start = mark
        if key != self.structure_version or self._worlds is None or self._worlds[0] != key:
            return None
        if key != self._state_log_key:
            return [] if epoch == self._state_epoch + 1 else None  # no state change since
        if epoch != self._state_epoch:
            return None
        changed = {e.id: e for e in self._state_log[start:] if e._scene is self}
        item_of = self._item_of
        out: list[DrawItem] = []
        with gc_paused():
            for e in changed.values():
                chain = []
                a = e._parent
                covered = False
                while a is not None:
                    if a.id in changed:
                        covered = True  # the ancestor's walk takes this entity too
                        break
                    chain.append(a)
                    a = a._parent
                if covered:
                    continue
                state = _ROOT_STATE
                for a in reversed(chain):
                    state = a._resolve(state)
                out.extend(self._walk_states(e, item_of, state))
        return out

    def draw_list(self) -> list[DrawItem]:
        """Every entity with a mesh, with its world matrix (read-only) and resolved state, in
        one pass (a new list; the items are shared). World matrices are kept while only state
        overrides change: selecting or tinting a part of a 100,000-part model does not multiply
        100,000 matrices again. The list itself is kept too: asked again with nothing changed
        it is copied, and after state changes only the items under the entities that changed
        are made again (:meth:`draw_items_changed`; a walk of 100,000 parts took 0.15-0.35 s,
        each ray cast takes a draw list)."""
        cached = self._draw_cache
        if cached is not None:
            version, items, mark, index = cached
            if version == self.version:
                return list(items)
            changed = self.draw_items_changed(mark)
            places = [index[it.entity.id] for it in changed] if changed is not None else [-1]
            if changed is not None and min(places, default=0) >= 0:
                for place, it in zip(places, changed, strict=True):
                    items[place] = it
                self._draw_cache = (self.version, items, self.state_mark(), index)
                return list(items)
        out: list[DrawItem] = []
        key = self.structure_version
        with gc_paused():
            if self._worlds is not None and self._worlds[0] == key:
                item_of = self._item_of
                for root in self._roots:
                    out.extend(self._walk_states(root, item_of))
            else:
                out = self._walk(self._roots, np.eye(4), _ROOT_STATE)
        index = PlaceIndex(out)
        self._worlds = key, out, index
        self._draw_cache = (self.version, out, self.state_mark(), index)
        return list(out)

    def _item_of(self, entity_id: int) -> DrawItem:
        """An entity with a mesh as the last full draw list gave it (its world matrix)."""
        assert self._worlds is not None
        _, items, index = self._worlds
        return items[index[entity_id]]

    @staticmethod
    def _walk(starts: Sequence[Entity], parent_world: npt.NDArray[np.float64],
              parent_state: ResolvedState) -> list[DrawItem]:
        """The entities with a mesh under each of ``starts`` (whose parent's world matrix and
        state are given), depth first; their world matrices are read-only rows of one array.
        The matrices are made together (:func:`transforms.compose_many`, then one product a
        level of the tree): one matrix and one product a part took 0.35 s at 100,000 parts,
        and each entity kept its local matrix (24 MB)."""
        entities: list[Entity] = []
        parents: list[int] = []  # the parent's place in ``entities``; -1 for a start
        depths: list[int] = []
        drawn: list[tuple[int, ResolvedState]] = []  # (place, state) of each entity with a mesh
        for start in starts:
            stack: list[tuple[Entity, int, int, ResolvedState]] = [(start, -1, 0, parent_state)]
            while stack:
                e, parent, depth, ps = stack.pop()
                state = e._resolve(ps)
                place = len(entities)
                entities.append(e)
                parents.append(parent)
                depths.append(depth)
                if e.mesh is not None:
                    drawn.append((place, state))
                if e._children:
                    stack.extend([(c, place, depth + 1, state) for c in e._children])
        if not drawn:
            return []
        n = len(entities)
        local = transforms.compose_many(
            np.array([e._position for e in entities], dtype=np.float64).reshape(n, 3),
            np.array([e._rotation for e in entities], dtype=np.float64).reshape(n, 4),
            np.array([e._scale for e in entities], dtype=np.float64).reshape(n, 3))
        level = np.array(depths)
        up = np.array(parents)
        worlds = np.empty_like(local)
        # the places level by level (one sort: a scan of all places a level would make a deep
        # chain of parts quadratic)
        by_level = np.argsort(level, kind="stable")
        firsts = np.searchsorted(level[by_level], np.arange(int(level.max()) + 2))
        top = by_level[:firsts[1]]
        worlds[top] = parent_world @ local[top]
        for d in range(1, len(firsts) - 1):
            at = by_level[firsts[d]:firsts[d + 1]]
            worlds[at] = worlds[up[at]] @ local[at]
        worlds.flags.writeable = False
        return [DrawItem(entities[place], cast("Mesh", entities[place].mesh), worlds, place,
                         state) for place, state in drawn]

    @staticmethod
    def _walk_states(start: Entity, item_of: Callable[[int], DrawItem],
                     parent_state: ResolvedState = _ROOT_STATE) -> Iterator[DrawItem]:
        """:meth:`_walk` with the world matrices it made last time."""
        stack = [(start, parent_state)]
        while stack:
            e, ps = stack.pop()
            state = e._resolve(ps)
            if e.mesh is not None:
                was = item_of(e.id)
                yield DrawItem(e, e.mesh, was.worlds, was.row, state)
            stack.extend((c, state) for c in e._children)

    def light_list(self) -> list[Light]:
        """The models' lights (entities with a light, not hidden), placed in the world: at
        the entity's origin, shining down its -z."""
        out: list[Light] = []
        if all(e.light is None for e in self._entities.values()):
            return out  # the common case: no walk (it costs ~25 µs a part)
        stack = [(r, np.eye(4), _ROOT_STATE) for r in self._roots]
        while stack:
            e, pw, ps = stack.pop()
            world = pw @ e.local_matrix()
            state = e._resolve(ps)
            if e.light is not None and not state.hidden:
                d = world[:3, :3] @ np.array([0.0, 0.0, -1.0])
                if np.linalg.norm(d) > 1e-9 and np.isfinite(world).all():
                    out.append(replace(e.light, position=tuple(world[:3, 3]),
                                       direction=tuple(d / np.linalg.norm(d))))
            stack.extend((c, world, state) for c in e._children)
        return out

    def meshes(self) -> set[int]:
        """Keys of the meshes in use (the renderer frees buffers for the others)."""
        return {e.mesh.key for e in self._entities.values() if e.mesh is not None}
