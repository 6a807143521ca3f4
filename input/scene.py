"""The scene API's wire types, defined once for both ends (host and client).

The ``control`` channel carries JSON (:mod:`farview.input.control`); the scene methods' params
and results are built from these frozen dataclasses. Each type validates at construction and
raises :class:`~farview.input.errors.ProtocolError` naming the field, so a value a host or a
client holds is always usable; ``to_wire()`` gives the JSON-ready dict and ``from_wire(d)``
reads one back (a malformed dict is a ``ProtocolError`` too, never a ``KeyError``).

Value types: :class:`Tint`, :class:`CutPlane`, :class:`CameraSettings`, :class:`Lighting`,
:class:`Bounds`. Results: :class:`EntityInfo`, :class:`EntityNode`, :class:`RayHit`,
:class:`LoadedModel`, :class:`CutPlaneInfo`, :class:`CameraOverride`. Vectors are tuples of
floats; rotations are unit quaternions (x, y, z, w). Pure code, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, cast

from farview.input.errors import ProtocolError
from farview.input.mathutil import FLOAT32_MAX, Quat, Vec3


def vec(name: str, value: Any, size: int, *, limit: float = FLOAT32_MAX) -> tuple[float, ...]:
    """``value`` as ``size`` finite floats within ±``limit`` (32-bit floats' range by default:
    what reaches GL), or a ProtocolError naming ``name``."""
    # Fast path (scenes of 100,000 parts check millions of these): a tuple of plain floats
    # whose sum is finite has only finite elements (an inf or NaN makes the sum inf or NaN).
    if (type(value) is tuple and len(value) == size and all(type(v) is float for v in value)
            and math.isfinite(sum(value))
            and (limit == math.inf or (-limit <= min(value) and max(value) <= limit))):
        return value
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ProtocolError(f"{name} must be {size} numbers, got {value!r}")
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value):
        raise ProtocolError(f"{name} must be {size} numbers, got {value!r}")
    out = tuple(float(v) for v in value)
    if len(out) != size or not all(math.isfinite(v) for v in out):
        raise ProtocolError(f"{name} must be {size} finite numbers, got {value!r}")
    if not all(abs(v) <= limit for v in out):  # (1e39 was kept, an infinity in GL)
        bound = "3.4e38 (32-bit floats)" if limit == FLOAT32_MAX else f"{limit:g}"
        raise ProtocolError(f"{name} must be within ±{bound}, got {value!r}")
    return out


def vec3(name: str, value: Any) -> Vec3:
    x, y, z = vec(name, value, 3)
    return (x, y, z)


def unit_quat(name: str, value: Any) -> Quat:
    """A quaternion normalised to unit length (a zero quaternion is refused)."""
    v = vec(name, value, 4, limit=math.inf)  # (normalised below: any size is a rotation)
    x, y, z, w = v
    n = math.hypot(x, y, z, w)  # (scaled: the squares of (1e200, 1e200, 0, 0) overflowed to inf)
    if n < 1e-9:
        raise ProtocolError(f"{name} is a zero quaternion; use a unit quaternion (x, y, z, w)")
    if n == 1.0:  # already unit: the same tuple (no four new floats an entity)
        return cast(Quat, v)
    return (x / n, y / n, z / n, w / n)


def number(name: str, value: Any, lo: float = -math.inf, hi: float = math.inf) -> float:
    """A finite number within ``lo..hi`` (booleans are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ProtocolError(f"{name} must be a finite number, got {value!r}")
    if not lo <= value <= hi:
        raise ProtocolError(f"{name} must be in {lo:g}..{hi:g}, got {value!r}")
    return float(value)


def _field(d: Any, key: str, what: str) -> Any:
    if not isinstance(d, Mapping):
        raise ProtocolError(f"{what} must be a JSON object, got {type(d).__name__}")
    if key not in d:
        raise ProtocolError(f"{what} lacks {key!r}")
    return d[key]


def _int(d: Any, key: str, what: str) -> int:
    v = _field(d, key, what)
    if isinstance(v, bool) or not isinstance(v, int):
        raise ProtocolError(f"{what} {key!r} must be an integer, got {v!r}")
    return v


def _str(d: Any, key: str, what: str) -> str:
    v = _field(d, key, what)
    if not isinstance(v, str):
        raise ProtocolError(f"{what} {key!r} must be a string, got {v!r}")
    return v


def _opt_bool(d: Mapping[str, Any], key: str, what: str) -> bool | None:
    v = d.get(key)
    if v is not None and not isinstance(v, bool):
        raise ProtocolError(f"{what} {key!r} must be true, false or null, got {v!r}")
    return v


# -- values -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tint:
    """Tint override: the base colour is blended towards ``color`` by ``weight`` (0..1)."""

    color: Vec3
    """Linear RGB, each 0..1."""
    weight: float = 1.0
    """0 removes an inherited tint; 1 replaces the colour."""

    def __post_init__(self) -> None:
        c = vec3("tint colour", self.color)
        if not all(0.0 <= v <= 1.0 for v in c):
            raise ProtocolError(f"tint colour components must be in 0..1, got {self.color!r}")
        object.__setattr__(self, "color", c)
        object.__setattr__(self, "weight", number("tint weight", self.weight, 0.0, 1.0))

    def to_wire(self) -> dict[str, Any]:
        return {"color": list(self.color), "weight": self.weight}

    @classmethod
    def from_wire(cls, d: Any) -> Tint:
        if not isinstance(d, Mapping) or "color" not in d:
            raise ProtocolError('tint must be {"color": [r, g, b], "weight": 0..1} or null '
                                "(inherit)")
        return cls(d["color"], d.get("weight", 1.0))


@dataclass(frozen=True)
class MaterialOverride:
    """Material edits for an entity and the parts under it (ARR's material edits): each field
    that is set replaces the glTF material's value; None keeps the file's. ``color`` replaces
    the base colour factor (linear RGB; a base colour texture still multiplies it). An override
    with no field set removes an inherited one."""

    color: Vec3 | None = None
    metallic: float | None = None
    roughness: float | None = None
    emissive: Vec3 | None = None
    """Linear RGB, 0..100 each (glTF's emissive factor times its strength)."""
    unlit: bool | None = None

    FIELDS = ("color", "metallic", "roughness", "emissive", "unlit")

    def __post_init__(self) -> None:
        if self.color is not None:
            c = vec3("material colour", self.color)
            if not all(0.0 <= v <= 1.0 for v in c):
                raise ProtocolError(f"material colour components must be in 0..1, got {c!r}")
            object.__setattr__(self, "color", c)
        if self.emissive is not None:
            e = vec3("material emissive", self.emissive)
            if not all(0.0 <= v <= 100.0 for v in e):
                raise ProtocolError(f"material emissive components must be in 0..100, got {e!r}")
            object.__setattr__(self, "emissive", e)
        for name in ("metallic", "roughness"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, number(f"material {name}", getattr(self, name),
                                                      0.0, 1.0))
        if self.unlit is not None and not isinstance(self.unlit, bool):
            raise ProtocolError(f"material unlit must be true, false or null, got {self.unlit!r}")

    @property
    def empty(self) -> bool:
        return all(getattr(self, f) is None for f in self.FIELDS)

    def to_wire(self) -> dict[str, Any]:
        return {f: (list(v) if isinstance(v, tuple) else v)
                for f in self.FIELDS if (v := getattr(self, f)) is not None}

    @classmethod
    def from_wire(cls, d: Any) -> MaterialOverride:
        if not isinstance(d, Mapping):
            raise ProtocolError('material must be an object of any of color, metallic, roughness, '
                                'emissive, unlit ({} removes an inherited one), or null (inherit)')
        unknown = set(d) - set(cls.FIELDS)
        if unknown:
            raise ProtocolError(f"unknown material fields: {', '.join(sorted(map(str, unknown)))}; "
                                f"known: {', '.join(cls.FIELDS)}")
        return cls(**{f: d.get(f) for f in cls.FIELDS})


@dataclass(frozen=True)
class CutPlane:
    """Removes the geometry on the side of the plane that ``normal`` points to (world space)."""

    normal: Vec3
    """Unit vector (normalised on construction) pointing into the half-space that is cut."""
    point: Vec3
    """Any point on the plane."""

    def __post_init__(self) -> None:
        n = vec3("cut plane normal", self.normal)
        length = math.sqrt(sum(c * c for c in n))
        if length < 1e-9:
            raise ProtocolError("cut plane normal must not be the zero vector")
        object.__setattr__(self, "normal", (n[0] / length, n[1] / length, n[2] / length))
        object.__setattr__(self, "point", vec3("cut plane point", self.point))

    @property
    def equation(self) -> tuple[float, float, float, float]:
        """(a, b, c, d) with a·x + b·y + c·z + d > 0 on the cut side."""
        a, b, c = self.normal
        return (a, b, c, -(a * self.point[0] + b * self.point[1] + c * self.point[2]))

    def cuts(self, p: Sequence[float]) -> bool:
        a, b, c, d = self.equation
        return a * p[0] + b * p[1] + c * p[2] + d > 0.0

    def to_wire(self) -> dict[str, Any]:
        return {"normal": list(self.normal), "point": list(self.point)}

    @classmethod
    def from_wire(cls, d: Any) -> CutPlane:
        return cls(_field(d, "normal", "cut plane"), _field(d, "point", "cut plane"))


@dataclass(frozen=True)
class CameraSettings:
    """Host-side camera overrides: when set they replace the near/far (and, for a single
    view, the vertical field of view) that each pose message carries."""

    near: float = 0.05
    far: float = 1000.0
    fov_y: float | None = None
    """Vertical field of view in degrees (0 < fov_y < 179), or None to keep the client's."""

    def __post_init__(self) -> None:
        # (a far plane of 1e300 was taken by the host, and every later pose was refused: the
        # wire carries 32-bit floats)
        near = number("near", self.near, -FLOAT32_MAX, FLOAT32_MAX)
        far = number("far", self.far, -FLOAT32_MAX, FLOAT32_MAX)
        if not 0.0 < near < far:
            raise ProtocolError(f"camera planes need 0 < near < far (finite), got near={self.near} "
                                f"far={self.far}")
        if self.fov_y is not None:
            fov = number("field of view", self.fov_y)
            if not 0 < fov < 179:
                raise ProtocolError(f"field of view must be in (0, 179) degrees, got {self.fov_y}")
            object.__setattr__(self, "fov_y", fov)
        object.__setattr__(self, "near", near)
        object.__setattr__(self, "far", far)


@dataclass(frozen=True)
class CameraOverride:
    """What ``set_camera``/``get_camera``/``reset_camera`` answer."""

    override: bool
    """False: each pose message's own near/far/field of view are used."""
    near: float | None
    far: float | None
    fov_y: float | None

    @classmethod
    def of(cls, settings: CameraSettings | None) -> CameraOverride:
        if settings is None:
            return cls(False, None, None, None)
        return cls(True, settings.near, settings.far, settings.fov_y)

    def to_wire(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_wire(cls, d: Any) -> CameraOverride:
        override = _field(d, "override", "camera")
        if not isinstance(override, bool):
            raise ProtocolError(f"camera 'override' must be true or false, got {override!r}")
        if not override:
            return cls(False, None, None, None)
        s = CameraSettings(_field(d, "near", "camera"), _field(d, "far", "camera"), d.get("fov_y"))
        return cls.of(s)


LIGHT_TYPES = ("directional", "point", "spot")
MAX_LIGHTS = 8
"""Point, spot and directional lights drawn at once (the scene's and the models' together)."""
ENVIRONMENTS = ("studio", "outdoor", "none")
"""Built-in environments for image-based lighting (host/environment.py makes them); ``none``
keeps only the lights and a hemisphere ambient."""

DEFAULT_POINT_SIZE = 2.0
"""Pixels across each point of a point cloud, until ``set_point_size`` changes it."""
POINT_SIZES = (1.0, 64.0)
"""The point sizes ``set_point_size`` takes (pixels, inclusive)."""

DETAIL_MODES = ("auto", "full")
"""``set_level_of_detail`` modes: ``auto`` lets the host draw big parts coarser while the camera
moves (full detail again when it rests); ``full`` pins full detail."""


@dataclass(frozen=True)
class Light:
    """A punctual light, as glTF's KHR_lights_punctual defines them (ARR's point and spot
    lights): ``intensity`` in candela for point and spot lights (lit = intensity / distance²),
    in lux for directional ones."""

    type: str = "point"
    position: Vec3 = (0.0, 0.0, 0.0)
    """World position (point, spot)."""
    direction: Vec3 = (0.0, 0.0, -1.0)
    """Direction the light travels (spot, directional)."""
    color: Vec3 = (1.0, 1.0, 1.0)
    """Linear RGB, 0..1 each."""
    intensity: float = 1.0
    range: float | None = None
    """Distance at which a point or spot light's effect ends (None: no limit)."""
    inner_cone: float = 0.0
    """Spot: angle (radians) of full intensity from the axis."""
    outer_cone: float = math.pi / 4
    """Spot: angle (radians) where the light ends; inner < outer <= π/2."""

    def __post_init__(self) -> None:
        if self.type not in LIGHT_TYPES:
            raise ProtocolError(f"light type must be one of {', '.join(LIGHT_TYPES)}, "
                                f"got {self.type!r}")
        object.__setattr__(self, "position", vec3("light position", self.position))
        d = vec3("light direction", self.direction)
        if sum(c * c for c in d) < 1e-12:
            raise ProtocolError("light direction must not be the zero vector")
        object.__setattr__(self, "direction", d)
        c = vec3("light color", self.color)
        if not all(0.0 <= v <= 1.0 for v in c):
            raise ProtocolError(f"light color components must be in 0..1, got {c!r}")
        object.__setattr__(self, "color", c)
        object.__setattr__(self, "intensity", number("light intensity", self.intensity, 0.0,
                                                     1e6))
        if self.range is not None:
            object.__setattr__(self, "range", number("light range", self.range, 1e-6, 1e9))
        inner = number("light inner_cone", self.inner_cone, 0.0, math.pi / 2)
        outer = number("light outer_cone", self.outer_cone, 0.0, math.pi / 2)
        if not inner < outer:
            raise ProtocolError(f"light cones need inner_cone < outer_cone, got {inner} and {outer}")
        object.__setattr__(self, "inner_cone", inner)
        object.__setattr__(self, "outer_cone", outer)

    def to_wire(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_wire(cls, d: Any) -> Light:
        if not isinstance(d, Mapping):
            raise ProtocolError(f"a light must be a JSON object, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ProtocolError(f"unknown light fields: {', '.join(sorted(map(str, unknown)))}; "
                                f"known: {', '.join(sorted(known))}")
        return cls(**d)


@dataclass(frozen=True)
class Lighting:
    """Scene lighting: a key directional light, a fill light, up to :data:`MAX_LIGHTS` point,
    spot and directional lights, and an environment for image-based lighting (or a hemisphere
    ambient with ``environment="none"``)."""

    key_direction: Vec3 = (-0.4, -0.8, -0.45)
    """Direction the key light travels (world space; need not be unit length)."""
    key_color: Vec3 = (1.0, 0.97, 0.92)
    key_intensity: float = 2.6
    fill_direction: Vec3 = (0.6, -0.2, 0.7)
    fill_intensity: float = 0.5
    ambient: float = 0.22
    """Hemisphere ambient (with ``environment="none"``)."""
    lights: tuple[Light, ...] = ()
    environment: str = "studio"
    """One of :data:`ENVIRONMENTS`."""
    environment_intensity: float = 1.0

    OPTIONAL = ("lights", "environment", "environment_intensity")
    """Fields a wire message may leave out (added after the first version)."""

    def __post_init__(self) -> None:
        for name in ("key_direction", "fill_direction"):
            v = vec3(name, getattr(self, name))
            if sum(c * c for c in v) < 1e-12:
                raise ProtocolError(f"{name} must not be the zero vector")
            object.__setattr__(self, name, v)
        object.__setattr__(self, "key_color", vec3("key_color", self.key_color))
        for name in ("key_intensity", "fill_intensity", "ambient", "environment_intensity"):
            object.__setattr__(self, name, number(name, getattr(self, name), 0.0, 100.0))
        lights = self.lights
        if not isinstance(lights, (list, tuple)):
            raise ProtocolError(f"lights must be a list of lights, got {lights!r}")
        if len(lights) > MAX_LIGHTS:
            raise ProtocolError(f"at most {MAX_LIGHTS} lights, got {len(lights)}")
        object.__setattr__(self, "lights", tuple(
            x if isinstance(x, Light) else Light.from_wire(x) for x in lights))
        if self.environment not in ENVIRONMENTS:
            raise ProtocolError(f"environment must be one of {', '.join(ENVIRONMENTS)}, got "
                                f"{self.environment!r}")

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = ([x.to_wire() for x in v] if f.name == "lights"
                           else list(v) if isinstance(v, tuple) else v)
        return out

    @classmethod
    def from_wire(cls, d: Any) -> Lighting:
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in cls.OPTIONAL:
                kwargs[f.name] = _field(d, f.name, "lighting")
            elif f.name in d:
                kwargs[f.name] = d[f.name]
        return cls(**kwargs)

    def replace(self, changes: Mapping[str, Any]) -> Lighting:
        """A copy with some fields changed; unknown names are a ProtocolError naming them."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ProtocolError(f"unknown lighting settings: {', '.join(sorted(unknown))}; "
                                f"known: {', '.join(sorted(known))}")
        current = {f.name: getattr(self, f.name) for f in fields(self)}
        return Lighting(**{**current, **changes})


@dataclass(frozen=True)
class Bounds:
    """Axis-aligned box."""

    min: Vec3
    max: Vec3

    def __post_init__(self) -> None:
        object.__setattr__(self, "min", vec3("bounds min", self.min))
        object.__setattr__(self, "max", vec3("bounds max", self.max))

    @property
    def center(self) -> Vec3:
        return ((self.min[0] + self.max[0]) / 2, (self.min[1] + self.max[1]) / 2,
                (self.min[2] + self.max[2]) / 2)

    @property
    def size(self) -> Vec3:
        return (self.max[0] - self.min[0], self.max[1] - self.min[1], self.max[2] - self.min[2])

    def to_wire(self) -> dict[str, Any]:
        return {"min": list(self.min), "max": list(self.max)}

    @classmethod
    def from_wire(cls, d: Any) -> Bounds:
        return cls(_field(d, "min", "bounds"), _field(d, "max", "bounds"))

    @classmethod
    def union(cls, boxes: Sequence[Bounds]) -> Bounds | None:
        """The box around all of ``boxes`` (None when there are none)."""
        if not boxes:
            return None
        lo = tuple(min(b.min[i] for b in boxes) for i in range(3))
        hi = tuple(max(b.max[i] for b in boxes) for i in range(3))
        return cls((lo[0], lo[1], lo[2]), (hi[0], hi[1], hi[2]))


# -- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntityInfo:
    """One entity as the host has it. State overrides are ``None`` when inherited."""

    id: int
    name: str
    parent: int | None
    children: tuple[int, ...]
    position: Vec3
    rotation: Quat
    """Unit quaternion (x, y, z, w)."""
    scale: Vec3
    has_mesh: bool
    is_model_root: bool
    hidden: bool | None
    selected: bool | None
    see_through: bool | None
    collision_disabled: bool | None
    tint: Tint | None
    material: MaterialOverride | None = None

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "parent": self.parent,
            "children": list(self.children), "position": list(self.position),
            "rotation": list(self.rotation), "scale": list(self.scale),
            "has_mesh": self.has_mesh, "is_model_root": self.is_model_root,
            "hidden": self.hidden, "selected": self.selected, "see_through": self.see_through,
            "collision_disabled": self.collision_disabled,
            "tint": None if self.tint is None else self.tint.to_wire(),
            "material": None if self.material is None else self.material.to_wire(),
        }

    @classmethod
    def from_wire(cls, d: Any) -> EntityInfo:
        what = "entity"
        entity_id, name = _int(d, "id", what), _str(d, "name", what)
        parent = _field(d, "parent", what)
        if parent is not None and (isinstance(parent, bool) or not isinstance(parent, int)):
            raise ProtocolError(f"entity 'parent' must be an id or null, got {parent!r}")
        children = _field(d, "children", what)
        if not isinstance(children, list) or any(
                isinstance(c, bool) or not isinstance(c, int) for c in children):
            raise ProtocolError(f"entity 'children' must be a list of ids, got {children!r}")
        tint, material = d.get("tint"), d.get("material")
        return cls(entity_id, name, parent, tuple(children),
                   vec3("entity position", _field(d, "position", what)),
                   unit_quat("entity rotation", _field(d, "rotation", what)),
                   vec3("entity scale", _field(d, "scale", what)),
                   bool(_field(d, "has_mesh", what)), bool(d.get("is_model_root", False)),
                   _opt_bool(d, "hidden", what), _opt_bool(d, "selected", what),
                   _opt_bool(d, "see_through", what), _opt_bool(d, "collision_disabled", what),
                   None if tint is None else Tint.from_wire(tint),
                   None if material is None else MaterialOverride.from_wire(material))


@dataclass(frozen=True)
class EntityNode:
    """A node of an entity tree; ``more`` is True when its children were left out (ask for the
    tree of that node)."""

    id: int
    name: str
    children: tuple[EntityNode, ...] = ()
    more: bool = False

    def to_wire(self) -> dict[str, Any]:
        def shallow(n: EntityNode) -> dict[str, Any]:
            out: dict[str, Any] = {"id": n.id, "name": n.name, "children": []}
            if n.more:
                out["more"] = True
            return out

        top = shallow(self)
        stack = [(self, top)]  # without recursion, as from_wire
        while stack:
            node, wire = stack.pop()
            for child in node.children:
                child_wire = shallow(child)
                wire["children"].append(child_wire)
                stack.append((child, child_wire))
        return top

    @classmethod
    def from_wire(cls, d: Any) -> EntityNode:
        # built children first, without recursion: a deep tree must not exhaust the stack
        order: list[Any] = []
        stack = [d]
        while stack:
            node = stack.pop()
            children = node.get("children", []) if isinstance(node, Mapping) else None
            if not isinstance(children, list):
                raise ProtocolError(f"entity tree 'children' must be a list, got {children!r}")
            order.append(node)
            stack.extend(children)
        built: dict[int, EntityNode] = {}
        for node in reversed(order):
            kids = tuple(built.pop(id(c)) for c in node.get("children", []))
            built[id(node)] = cls(_int(node, "id", "entity tree node"),
                                  _str(node, "name", "entity tree node"), kids,
                                  bool(node.get("more", False)))
        return built[id(d)]

    def walk(self) -> Iterator[EntityNode]:
        """This node and its descendants, depth first."""
        stack = [self]
        while stack:
            n = stack.pop()
            yield n
            stack.extend(reversed(n.children))

    def find(self, name: str) -> EntityNode | None:
        """The first node (depth first) called ``name``."""
        return next((n for n in self.walk() if n.name == name), None)

    def __len__(self) -> int:
        return sum(1 for _ in self.walk())


@dataclass(frozen=True)
class RayHit:
    entity_id: int
    entity_name: str
    position: Vec3
    """World-space hit point."""
    normal: Vec3
    """Unit world normal of the hit triangle (front side by its counter-clockwise winding);
    for a point, the ray's direction reversed."""
    distance: float
    """From the ray origin, in world units (for a point: along the ray, to where it passes
    the point)."""
    front_face: bool
    """The ray hit the triangle's front side (True for a point: drawn facing the view)."""
    hit_type: str = ""
    """ARR's ``RayHitType``: ``TriangleFrontFace``, ``TriangleBackFace`` or ``Point`` (a
    point of a point cloud, whose :attr:`position` is the point itself). Empty: from
    :attr:`front_face` (hits from hosts before point clouds were hit carry none)."""

    def __post_init__(self) -> None:
        if not self.hit_type:
            object.__setattr__(self, "hit_type", "TriangleFrontFace" if self.front_face
                               else "TriangleBackFace")
        if self.hit_type not in RAY_HIT_TYPES:
            raise ProtocolError(f"ray hit type must be one of {', '.join(RAY_HIT_TYPES)}, "
                                f"got {self.hit_type!r}")

    def to_wire(self) -> dict[str, Any]:
        return {"id": self.entity_id, "name": self.entity_name, "position": list(self.position),
                "normal": list(self.normal), "distance": self.distance,
                "front_face": self.front_face, "hit_type": self.hit_type}

    @classmethod
    def from_wire(cls, d: Any) -> RayHit:
        kind = d.get("hit_type", "") if isinstance(d, Mapping) else ""
        if not isinstance(kind, str):
            raise ProtocolError(f"ray hit 'hit_type' must be a string, got {kind!r}")
        return cls(_int(d, "id", "ray hit"), _str(d, "name", "ray hit"),
                   vec3("ray hit position", _field(d, "position", "ray hit")),
                   vec3("ray hit normal", _field(d, "normal", "ray hit")),
                   number("ray hit distance", _field(d, "distance", "ray hit")),
                   bool(_field(d, "front_face", "ray hit")), kind)


RAY_HIT_TYPES = ("TriangleFrontFace", "TriangleBackFace", "Point")
"""ARR's ``RayHitType`` values, as :attr:`RayHit.hit_type` names them."""


@dataclass(frozen=True)
class LoadedModel:
    root_id: int
    name: str
    source: str
    triangles: int
    entity_count: int
    """Entities created, the root included."""
    load_ms: float
    """Host-side time: fetch/read, parse, instantiate."""
    tree: EntityNode
    points: int = 0
    """Points of its point clouds (each counts against the session's size as a triangle)."""

    def to_wire(self) -> dict[str, Any]:
        wire = {"root": self.root_id, "name": self.name, "source": self.source,
                "triangles": self.triangles, "entity_count": self.entity_count,
                "load_ms": self.load_ms, "tree": self.tree.to_wire()}
        if self.points:  # only point clouds say it (the message is as before otherwise)
            wire["points"] = self.points
        return wire

    @classmethod
    def from_wire(cls, d: Any) -> LoadedModel:
        what = "loaded model"
        return cls(_int(d, "root", what), _str(d, "name", what), _str(d, "source", what),
                   _int(d, "triangles", what), _int(d, "entity_count", what),
                   number("load_ms", d.get("load_ms", 0.0)),
                   EntityNode.from_wire(_field(d, "tree", what)),
                   _int(d, "points", what) if "points" in d else 0)


@dataclass(frozen=True)
class CutPlaneInfo:
    """An active cut plane and its id (what the cut plane methods answer)."""

    id: int
    normal: Vec3
    """Points into the half-space that is removed."""
    point: Vec3

    def __post_init__(self) -> None:
        plane = CutPlane(self.normal, self.point)  # validates and normalises
        object.__setattr__(self, "normal", plane.normal)
        object.__setattr__(self, "point", plane.point)

    @property
    def plane(self) -> CutPlane:
        return CutPlane(self.normal, self.point)

    def to_wire(self) -> dict[str, Any]:
        return {"id": self.id, "normal": list(self.normal), "point": list(self.point)}

    @classmethod
    def from_wire(cls, d: Any) -> CutPlaneInfo:
        return cls(_int(d, "id", "cut plane"), _field(d, "normal", "cut plane"),
                   _field(d, "point", "cut plane"))


__all__ = [
    "Bounds",
    "CameraOverride",
    "CameraSettings",
    "CutPlane",
    "CutPlaneInfo",
    "EntityInfo",
    "EntityNode",
    "Lighting",
    "LoadedModel",
    "RayHit",
    "Tint",
    "number",
    "unit_quat",
    "vec",
    "vec3",
]
