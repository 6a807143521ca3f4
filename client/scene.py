"""The remote scene, driven over the ``control`` channel (ARR's RenderingConnection scene API).

``conn.scene`` is a :class:`RemoteScene`; entities are :class:`RemoteEntity` handles (a host
id plus the scene; ids stay valid across reconnects while the session runs). Every method is
one control request; results are the wire types of :mod:`farview.input.scene`
(:class:`EntityInfo`, :class:`EntityNode`, :class:`Bounds`, :class:`RayHit`,
:class:`LoadedModel`, …), defined once for host and client. A refusal raises
:class:`~farview.client.errors.RemoteError` with the host's code and message, and ``target`` naming
what failed (``"entity 42"``, ``"cut plane 3"``, the model source). Non-finite numbers are
refused before sending with :class:`ValueError` (JSON cannot carry them).

Camera settings (:meth:`RemoteScene.set_camera`) are stored on the host and override the
near/far (and field of view) of every pose message until :meth:`RemoteScene.reset_camera`, so
they survive reconnects like the rest of the scene; the connection's ``near``/``far``
attributes are updated too, so that what the client sends agrees with what is rendered.

:func:`load_model_http` loads a model through the host's HTTP route (no stream needed: for the
command line while another client holds the stream).

Concurrency: coroutine methods on the connection's event loop; :func:`load_model_http` is a
plain blocking function.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx

from farview.client.errors import AuthenticationError, ConnectError, FarviewError, RemoteError
from farview.input.errors import ProtocolError
from farview.input.mathutil import FLOAT32_MAX, Vec3, quat_rotate, vec_length, vec_scale
from farview.input.pose import PoseMessage, View
from farview.input.scene import (
    Bounds,
    CameraOverride,
    CameraSettings,
    CutPlane,
    CutPlaneInfo,
    EntityInfo,
    EntityNode,
    Light,
    Lighting,
    LoadedModel,
    MaterialOverride,
    RayHit,
    Tint,
    vec,
    vec3,
)
from farview.streaming.whep import Verify

if TYPE_CHECKING:
    from farview.client.connection import RenderingConnection

DEFAULT_LOAD_TIMEOUT = 300.0
"""Seconds a model load may take (download + parse) before the client gives up waiting."""


def _finite(name: str, value: Sequence[float], size: int) -> list[float]:
    """``value`` as ``size`` finite floats for the wire (ValueError before anything is sent):
    within 32-bit floats' range, but a rotation of any size (the host normalises it)."""
    return list(vec(name, value, size, limit=math.inf if name == "rotation" else FLOAT32_MAX))


def pixel_ray(view: View, size: tuple[int, int], x: float,
              y: float) -> tuple[Vec3, Vec3]:
    """World-space ray (origin, unit direction) through pixel (``x``, ``y``) of an image of
    ``size`` (width, height; top row first) rendered with ``view``."""
    w, h = size
    f = view.fov
    tan_x = f.tan_left + (x + 0.5) / w * (f.tan_right - f.tan_left)
    tan_y = f.tan_up - (y + 0.5) / h * (f.tan_up - f.tan_down)
    # camera space looks down -z with y up; Pose keeps its quaternion unit length
    d = quat_rotate(view.pose.orientation, (tan_x, tan_y, -1.0))
    return view.pose.position, vec_scale(d, 1.0 / vec_length(d))


# -- handles ------------------------------------------------------------------------------------


class RemoteEntity:
    """A handle on a host entity. Cheap: holds the id; every method asks the host."""

    def __init__(self, scene: RemoteScene, entity_id: int, name: str = "",
                 model: LoadedModel | None = None) -> None:
        self.scene = scene
        self.id = entity_id
        self.name = name
        self.model = model
        """Set on the root returned by :meth:`RemoteScene.load_model`."""

    def __repr__(self) -> str:
        return f"RemoteEntity(id={self.id}, name={self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemoteEntity) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    async def _call(self, method: str, **params: Any) -> Any:
        return await self.scene._call(method, f"entity {self.id}", id=self.id, **params)

    async def _info_call(self, method: str, **params: Any) -> EntityInfo:
        info = EntityInfo.from_wire(await self._call(method, **params))
        self.name = info.name
        return info

    # -- queries
    async def info(self) -> EntityInfo:
        return await self._info_call("get_entity")

    async def children(self) -> list[RemoteEntity]:
        tree = await self.tree(depth=1)
        return [RemoteEntity(self.scene, c.id, c.name) for c in tree.children]

    async def tree(self, depth: int | None = None) -> EntityNode:
        params = {} if depth is None else {"depth": depth}
        return EntityNode.from_wire(await self._call("get_tree", **params))

    async def find(self, name: str | None = None, *, hidden: bool | None = None,
                   selected: bool | None = None, see_through: bool | None = None,
                   collision_disabled: bool | None = None) -> list[RemoteEntity]:
        """Descendants (and self) called ``name`` and/or with a state set on themselves
        (:meth:`RemoteScene.find`)."""
        return await self.scene.find(name, hidden=hidden, selected=selected,
                                     see_through=see_through,
                                     collision_disabled=collision_disabled, _under=self)

    async def bounds(self, space: Literal["local", "world"] = "world") -> Bounds | None:
        """AABB of the subtree's geometry in the entity's own space or in world space."""
        b = await self._call("get_bounds", space=space)
        return None if b is None else Bounds.from_wire(b)

    # -- transform
    async def set_transform(self, *, position: Sequence[float] | None = None,
                            rotation: Sequence[float] | None = None,
                            scale: Sequence[float] | None = None) -> EntityInfo:
        params: dict[str, Any] = {}
        if position is not None:
            params["position"] = _finite("position", position, 3)
        if rotation is not None:
            params["rotation"] = _finite("rotation", rotation, 4)
        if scale is not None:
            params["scale"] = _finite("scale", scale, 3)
        return await self._info_call("set_transform", **params)

    async def set_position(self, position: Sequence[float]) -> EntityInfo:
        return await self.set_transform(position=position)

    async def set_rotation(self, rotation: Sequence[float]) -> EntityInfo:
        """Quaternion (x, y, z, w); normalised by the host."""
        return await self.set_transform(rotation=rotation)

    async def set_scale(self, scale: Sequence[float]) -> EntityInfo:
        return await self.set_transform(scale=scale)

    async def set_parent(self, parent: RemoteEntity | int | None, *,
                         keep_world: bool = False) -> EntityInfo:
        parent_id = parent.id if isinstance(parent, RemoteEntity) else parent
        return await self._info_call("set_parent", parent=parent_id, keep_world=keep_world)

    # -- state overrides (None = inherit from the parent)
    async def set_state(self, **overrides: Any) -> EntityInfo:
        """Any of hidden, selected, see_through, collision_disabled (bool or None), tint
        (``(color, weight)``, a :class:`Tint`, or None) and material (a
        :class:`MaterialOverride`, a dict of its fields, or None)."""
        if isinstance(overrides.get("material"), MaterialOverride):
            overrides["material"] = overrides["material"].to_wire()
        if "tint" in overrides and overrides["tint"] is not None:
            t = overrides["tint"]
            overrides["tint"] = (t if isinstance(t, Tint) else Tint(*t)).to_wire()
        return await self._info_call("set_state", **overrides)

    async def set_hidden(self, hidden: bool | None) -> EntityInfo:
        return await self.set_state(hidden=hidden)

    async def set_selected(self, selected: bool | None) -> EntityInfo:
        return await self.set_state(selected=selected)

    async def set_see_through(self, see_through: bool | None) -> EntityInfo:
        return await self.set_state(see_through=see_through)

    async def set_collision_disabled(self, disabled: bool | None) -> EntityInfo:
        return await self.set_state(collision_disabled=disabled)

    async def set_tint(self, color: Sequence[float] | None, weight: float = 1.0) -> EntityInfo:
        """Blend towards ``color`` (linear RGB 0..1) by ``weight``; None inherits again."""
        return await self.set_state(tint=None if color is None else Tint(vec3("tint colour", color), weight))

    async def set_material(self, *, color: Sequence[float] | None = None,
                           metallic: float | None = None, roughness: float | None = None,
                           emissive: Sequence[float] | None = None,
                           unlit: bool | None = None) -> EntityInfo:
        """Edit the materials of this entity's parts and those under it: each argument given
        replaces the glTF material's value (``color`` the base colour factor, linear RGB 0..1;
        ``emissive`` linear RGB). With no argument, an inherited edit is removed; use
        :meth:`inherit_material` to inherit again."""
        override = MaterialOverride(None if color is None else vec3("material colour", color),
                                    metallic, roughness,
                                    None if emissive is None else vec3("material emissive",
                                                                       emissive), unlit)
        return await self.set_state(material=override)

    async def inherit_material(self) -> EntityInfo:
        """Drop this entity's material edit: it inherits its parent's again."""
        return await self.set_state(material=None)

    # -- lifetime
    async def destroy(self) -> None:
        """Remove the entity and its children from the scene."""
        await self._call("destroy_entity")

    async def unload(self) -> None:
        """Unload the model this entity is the root of."""
        await self._call("unload_model")


class RemoteScene:
    """The scene of the connected host (``conn.scene``)."""

    def __init__(self, connection: RenderingConnection) -> None:
        self._conn = connection
        self._pose_planes: tuple[float, float] | None = None
        self._fov_y: float | None = None
        """The connection's own near/far before :meth:`set_camera`, for :meth:`reset_camera`."""

    async def _call(self, method: str, target: str | None, *, timeout: float = 10.0,
                    **params: Any) -> Any:
        try:
            return await self._conn.request(method, timeout=timeout, **params)
        except RemoteError as exc:
            raise RemoteError(exc.code, exc.message, target=target) from None

    def entity(self, entity_id: int, name: str = "") -> RemoteEntity:
        """A handle on an entity id (not checked until used)."""
        return RemoteEntity(self, entity_id, name)

    # -- models
    async def load_model(self, source: str, *, parent: RemoteEntity | int | None = None,
                         timeout: float = DEFAULT_LOAD_TIMEOUT) -> RemoteEntity:
        """Load a model by store name, host path or http(s) URL; returns its root entity
        (``.model`` describes it, with its tree). Progress arrives as ``load_progress`` events
        ``{source, fraction, bytes}`` on the connection."""
        params: dict[str, Any] = {"source": source}
        if parent is not None:
            params["parent"] = parent.id if isinstance(parent, RemoteEntity) else parent
        model = LoadedModel.from_wire(
            await self._call("load_model", source, timeout=timeout, **params))
        return RemoteEntity(self, model.root_id, model.name, model)

    async def list_models(self) -> list[str]:
        """Names in the host's model store."""
        result = await self._call("list_models", None)
        return list(result["names"])

    # -- entities
    async def roots(self, depth: int = 0) -> list[EntityNode]:
        result = await self._call("get_roots", None, depth=depth)
        return [EntityNode.from_wire(r) for r in result["roots"]]

    async def find(self, name: str | None = None, *, hidden: bool | None = None,
                   selected: bool | None = None, see_through: bool | None = None,
                   collision_disabled: bool | None = None,
                   _under: RemoteEntity | None = None) -> list[RemoteEntity]:
        """Entities called ``name``, and/or whose own state is as given (``hidden=True``: the
        parts someone hid, in this connection or an earlier one; the scene is the session's,
        not the connection's). At least one of them must be given."""
        states = {flag: value for flag, value in (
            ("hidden", hidden), ("selected", selected), ("see_through", see_through),
            ("collision_disabled", collision_disabled)) if value is not None}
        if name is None and not states:
            raise ProtocolError("find needs a name, a state (e.g. hidden=True) or both")
        params: dict[str, Any] = dict(states)
        if name is not None:
            params["name"] = name
        if _under is not None:
            params["under"] = _under.id
        result = await self._call("find_entities", None if _under is None
                                  else f"entity {_under.id}", **params)
        names = result.get("names") or [name or ""] * len(result["ids"])
        return [RemoteEntity(self, i, n) for i, n in zip(result["ids"], names, strict=True)]

    async def create_entity(self, name: str = "entity", *,
                            parent: RemoteEntity | int | None = None,
                            position: Sequence[float] = (0.0, 0.0, 0.0),
                            rotation: Sequence[float] = (0.0, 0.0, 0.0, 1.0),
                            scale: Sequence[float] = (1.0, 1.0, 1.0)) -> RemoteEntity:
        """An empty entity (a group to parent others under)."""
        parent_id = parent.id if isinstance(parent, RemoteEntity) else parent
        target = None if parent_id is None else f"entity {parent_id}"
        d = await self._call("create_entity", target, name=name, parent=parent_id,
                             position=_finite("position", position, 3),
                             rotation=_finite("rotation", rotation, 4),
                             scale=_finite("scale", scale, 3))
        return RemoteEntity(self, int(d["id"]), str(d["name"]))

    # -- queries
    async def raycast(self, origin: Sequence[float], direction: Sequence[float], *,
                      mode: Literal["closest", "all"] = "closest", max_hits: int = 100,
                      max_distance: float | None = None) -> list[RayHit]:
        """Hits sorted by distance: at most one for ``closest``, up to ``max_hits`` for
        ``all``. Hidden and collision-disabled entities and cut-away geometry are not hit.
        Points of a point cloud are hit where the ray passes within a drawn point's width in
        the current view (``hit_type`` ``Point``, ``position`` the point itself)."""
        params: dict[str, Any] = {"origin": _finite("origin", origin, 3),
                                  "direction": _finite("direction", direction, 3),
                                  "mode": mode, "max_hits": max_hits}
        if max_distance is not None:
            params["max_distance"] = max_distance
        result = await self._call("raycast", None, **params)
        return [RayHit.from_wire(h) for h in result["hits"]]

    async def pick(self, frame_pose: PoseMessage, x: float, y: float) -> RayHit | None:
        """The closest hit under pixel (``x``, ``y``) of a frame rendered with ``frame_pose``
        (``frame.pose``; pixels of the viewport that pose asked for, ``frame_pose.viewport``,
        top row first; in stereo the eye is chosen by ``x``). A frame sent at a lower resolution
        than its viewport (a link too narrow for it) is smaller: scale its pixels by
        viewport / frame size. Uses the field of view set by :meth:`set_camera` if any."""
        w, h = frame_pose.viewport
        eyes = len(frame_pose.views)
        eye_w = w / eyes
        eye = min(int(x // eye_w), eyes - 1)
        view = frame_pose.views[eye]
        if self._fov_y is not None and eyes == 1:
            view = View(view.pose, view.fov.with_vertical(self._fov_y))
        origin, direction = pixel_ray(view, (int(eye_w), h), x - eye * eye_w, y)
        hits = await self.raycast(origin, direction, max_distance=frame_pose.far)
        return hits[0] if hits else None

    # -- cut planes
    async def add_cut_plane(self, normal: Sequence[float], point: Sequence[float]
                            ) -> CutPlaneInfo:
        """Cut away what lies on the ``normal`` side of the plane through ``point`` (at most 8
        planes; a ninth raises RemoteError ``LimitExceeded``)."""
        n, p = _finite("normal", normal, 3), _finite("point", point, 3)
        result = await self._call("add_cut_plane", None, normal=n, point=p)
        return CutPlaneInfo(int(result["id"]), (n[0], n[1], n[2]), (p[0], p[1], p[2]))

    async def set_cut_plane(self, plane: CutPlaneInfo | int, normal: Sequence[float],
                            point: Sequence[float]) -> CutPlaneInfo:
        plane_id = plane.id if isinstance(plane, CutPlaneInfo) else plane
        n, p = _finite("normal", normal, 3), _finite("point", point, 3)
        await self._call("set_cut_plane", f"cut plane {plane_id}", id=plane_id, normal=n,
                         point=p)
        return CutPlaneInfo(plane_id, (n[0], n[1], n[2]), (p[0], p[1], p[2]))

    async def remove_cut_plane(self, plane: CutPlaneInfo | int) -> None:
        plane_id = plane.id if isinstance(plane, CutPlaneInfo) else plane
        await self._call("remove_cut_plane", f"cut plane {plane_id}", id=plane_id)

    async def cut_planes(self) -> list[CutPlaneInfo]:
        result = await self._call("list_cut_planes", None)
        return [CutPlaneInfo.from_wire(p) for p in result["planes"]]

    # -- camera and lighting
    async def set_camera(self, near: float, far: float,
                         fov_y: float | None = None) -> CameraOverride:
        """Override near/far (0 < near < far) and optionally the vertical field of view
        (degrees) for every frame, on the host; also updates ``connection.near``/``far``.
        Planes past ±3.4e38 (32-bit floats, as poses carry them) raise ProtocolError."""
        CameraSettings(near, far, fov_y)  # checked here, before the host or the planes change
        result = await self._call("set_camera", None, near=near, far=far, fov_y=fov_y)
        if self._pose_planes is None:
            self._pose_planes = (self._conn.near, self._conn.far)
        self._conn.near, self._conn.far = float(near), float(far)
        self._fov_y = fov_y
        return CameraOverride.from_wire(result)

    async def get_camera(self) -> CameraOverride:
        return CameraOverride.from_wire(await self._call("get_camera", None))

    async def reset_camera(self) -> CameraOverride:
        """Go back to the near/far/field of view of each pose message (and the connection's
        near/far from before :meth:`set_camera`)."""
        result = CameraOverride.from_wire(await self._call("reset_camera", None))
        if self._pose_planes is not None:
            self._conn.near, self._conn.far = self._pose_planes
            self._pose_planes = None
        self._fov_y = None
        return result

    async def set_level_of_detail(self, mode: str) -> str:
        """``"full"`` pins full detail; ``"auto"`` (the default) lets the host draw big parts
        coarser while the camera moves, to keep frames within its budget (full detail again
        as soon as the camera rests). Returns the mode now in force."""
        result = await self._call("set_level_of_detail", None, mode=mode)
        return str(result["mode"])

    async def get_level_of_detail(self) -> str:
        return str((await self._call("get_level_of_detail", None))["mode"])

    async def set_point_size(self, size: float) -> float:
        """Pixels across each point of the scene's point clouds (1 to 64; 2 by default)."""
        return float((await self._call("set_point_size", None, size=size))["size"])

    async def get_point_size(self) -> float:
        return float((await self._call("get_point_size", None))["size"])

    async def set_lighting(self, **settings: Any) -> Lighting:
        """Any of key_direction, key_color, key_intensity, fill_direction, fill_intensity,
        ambient, lights (:class:`~farview.input.scene.Light` values or their dicts, at most
        8: they replace the scene's lights), environment (``studio``, ``outdoor`` or ``none``)
        and environment_intensity (see :class:`farview.input.scene.Lighting`)."""
        wire: dict[str, Any] = {}
        for k, v in settings.items():
            if k == "lights":
                if isinstance(v, (str, bytes)) or not isinstance(v, Sequence):
                    raise ProtocolError(f"lights must be a list of Light values (or their "
                                        f"dicts), at most 8; [] for none; got {v!r}")
                v = [x.to_wire() if isinstance(x, Light) else x for x in v]
            wire[k] = list(v) if isinstance(v, tuple) else v
        return Lighting.from_wire(await self._call("set_lighting", None, **wire))

    async def get_lighting(self) -> Lighting:
        return Lighting.from_wire(await self._call("get_lighting", None))


def load_model_http(scene_url: str, token: str, source: str, *, verify: Verify = True,
                    timeout: float = DEFAULT_LOAD_TIMEOUT) -> LoadedModel:
    """Load a model into a running session through the service's
    ``POST /accounts/{account}/sessions/{id}/scene/models`` (``session.scene_url``; works while
    another client holds the stream); ``token`` an access token (or the account key).

    Raises :class:`RemoteError` (code, message, target=source) when the host refuses,
    :class:`AuthenticationError` for a bad token, :class:`ConnectError` when unreachable.
    """
    try:
        response = httpx.post(scene_url, json={"source": source}, timeout=timeout, verify=verify,
                              headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        raise ConnectError(f"could not reach the session service at {scene_url}: {exc}") from None
    return _loaded(response, source)


def upload_model_http(upload_url: str, token: str, path: str | os.PathLike[str], *,
                      verify: Verify = True, timeout: float = DEFAULT_LOAD_TIMEOUT) -> LoadedModel:
    """Send a ``.glb`` file from this machine into a running session's scene through the
    service's ``PUT …/scene/upload/{name}`` (``session.upload_url(name)``; works while another
    client holds the stream). The model is loaded as it arrives, not kept: to load it again,
    upload it again. The service's ``max_upload_bytes`` and the session's model budget apply.

    Raises as :func:`load_model_http` does, and :class:`FarviewError` when ``path`` cannot be
    read.
    """
    file = Path(path)
    try:
        size = file.stat().st_size
        with file.open("rb") as body:
            response = httpx.put(upload_url, content=body, timeout=timeout, verify=verify,
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/octet-stream",
                                          "Content-Length": str(size)})
    except httpx.HTTPError as exc:
        raise ConnectError(f"could not reach the session service at {upload_url}: {exc}") from None
    except OSError as exc:
        raise FarviewError(f"cannot read {file} to upload it: {exc.strerror or exc}") from None
    return _loaded(response, file.name)


def _loaded(response: httpx.Response, source: str) -> LoadedModel:
    """The loaded model a scene route answered, or the error it answered, as farview's."""
    if response.status_code in (401, 403):
        raise AuthenticationError(f"the render host refused the access token "
                                  f"({response.status_code}); get a fresh token for the session",
                                  status_code=response.status_code)
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200:
        err = body.get("error", {}) if isinstance(body, dict) else {}
        raise RemoteError(str(err.get("code", f"HTTP{response.status_code}")),
                          str(err.get("message", response.text[:200])), target=source)
    return LoadedModel.from_wire(body)


__all__ = [
    "Bounds",
    "CameraOverride",
    "CutPlane",
    "CutPlaneInfo",
    "EntityInfo",
    "EntityNode",
    "Lighting",
    "LoadedModel",
    "RayHit",
    "RemoteEntity",
    "RemoteScene",
    "Tint",
    "load_model_http",
    "pixel_ray",
    "upload_model_http",
]
