"""ARR's conversion settings file, ``<modelName>.ConversionSettings.json``, and what it does to
a model before it is written (:func:`apply`).

As in ARR, a file of that name beside the input ``<modelName>.<ext>`` configures the
conversion (``box.ConversionSettings.json`` for ``box.fbx``); its keys are ARR's schema's, and
a key the schema does not have fails the conversion (``additionalProperties: false``).

Applied:

- ``scaling`` (a number > 0, default 1) scales the model uniformly;
- ``recenterToOrigin`` (default false) moves the model so that its bounding box is centred on
  the origin (after scaling and ``axis``);
- ``axis`` (three of ``default``, ``+x`` … ``-z``; default ``default`` each) names, for the
  output's x, y and z, the input axis they are: ``["+x", "+z", "-y"]`` turns a z-up model
  y-up. A choice that mirrors the model is taken only with ``sceneGraphMode`` ``none``,
  where it is baked into the vertices (the renderer does not draw mirrored nodes);
- ``sceneGraphMode``: ``dynamic`` (the default) and ``static`` keep every node (farview's
  entities can all be moved; ``static`` changes nothing); ``none`` collapses the scene into
  one object: every mesh is moved into world space and merged with the others of its
  material, into meshes of at most 65,536 vertices (16-bit indices) made of parts that lie
  near one another, under one root node named after the model. Nothing of the collapsed
  scene can be picked, hidden or moved on its own, but a model of many small parts loads
  faster and takes far less memory;
- ``unlitMaterials`` (default false) makes every material unlit;
- ``opaqueMaterialDefaultSidedness`` (``SingleSided`` or ``DoubleSided``), when given, sets
  every opaque material's sidedness (when absent each material keeps the input's);
- ``gammaToLinearMaterial`` and ``gammaToLinearVertex`` (default false) take material colours
  and vertex colours as gamma-encoded (power 2.2) and make them linear.

- ``material-override`` names ARR's material override file in the input's folder (else
  ``<modelName>.MaterialOverrides.json`` beside the input is read when there is one:
  :mod:`host.material_overrides`); its changes come after the settings'.

Accepted and not applied (the conversion's ``warnings`` say so when the file sets them):
``metadataKeys`` (farview keeps no metadata), ``vertex`` (farview
chooses its vertex formats), ``fbxAssumeMetallic`` (FBX materials are made non-metallic),
``deduplicateMaterials`` set true (materials are written once each, not merged with equal
ones of another name), ``generateCollisionMesh`` set false (ray casts always work, on the
render meshes).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from farview.host import material_overrides, transforms
from farview.host.gltf import Material, Mesh, Model, Node, Primitive, node_world_matrices

SUFFIX = ".ConversionSettings.json"
MAX_FILE_BYTES = 1 << 20
MIN_SCALING, MAX_SCALING = 1e-9, 1e9
"""The scaling a settings file may give: nanometres to metres and back, and more. Past them a
model's coordinates leave float32 (1e308 made its node matrix infinite, and the recentring
overflowed) or vanish (1e-40 merged every vertex into nothing, and the conversion "succeeded"
with 0 triangles)."""

SCENE_GRAPH_MODES = ("dynamic", "static", "none")
SIDEDNESS = ("SingleSided", "DoubleSided")
AXES = ("default", "+x", "-x", "+y", "-y", "+z", "-z")
MERGED_MAX_VERTICES = 1 << 16
"""A merged mesh of ``sceneGraphMode`` ``none`` holds at most this many vertices (16-bit
indices); a mesh bigger than that on its own is moved into world space and kept whole."""

_KEYS = ("scaling", "recenterToOrigin", "opaqueMaterialDefaultSidedness", "material-override",
         "gammaToLinearMaterial", "gammaToLinearVertex", "sceneGraphMode",
         "generateCollisionMesh", "unlitMaterials", "fbxAssumeMetallic", "deduplicateMaterials",
         "axis", "vertex", "metadataKeys")
"""ARR's ConversionSettings schema's properties."""
_GAMMA = 2.2


class SettingsError(material_overrides.InputFileError):
    """The settings file is not valid: ``message`` says which setting and why."""


@dataclass(frozen=True)
class ConversionSettings:
    scaling: float = 1.0
    recenter_to_origin: bool = False
    axis: tuple[str, str, str] = ("default", "default", "default")
    scene_graph_mode: str = "dynamic"
    unlit_materials: bool = False
    sidedness: str | None = None
    """``opaqueMaterialDefaultSidedness`` when given."""
    gamma_to_linear_material: bool = False
    gamma_to_linear_vertex: bool = False
    not_applied: tuple[str, ...] = ()
    """Warnings: settings the file gives that farview does not apply."""
    given: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False, hash=False)
    """The file's settings as it gave them (ARR's info file holds a copy)."""

    def axis_matrix(self) -> npt.NDArray[np.float64]:
        """3×3: row i picks the signed input axis that becomes output axis i."""
        m = np.zeros((3, 3))
        for i, name in enumerate(self.axis):
            if name == "default":
                m[i, i] = 1.0
            else:
                m[i, "xyz".index(name[1])] = 1.0 if name[0] == "+" else -1.0
        return m

    def root_matrix(self) -> npt.NDArray[np.float64]:
        """Scaling and ``axis`` as one 4×4 (recentring comes after, from the bounds)."""
        m = np.eye(4)
        m[:3, :3] = self.scaling * self.axis_matrix()
        return m


def settings_path(src: Path) -> Path:
    """Where ARR looks for ``src``'s settings: ``<stem>.ConversionSettings.json`` beside it."""
    return src.with_name(src.stem + SUFFIX)


def read(src: Path) -> ConversionSettings | None:
    """The settings beside the input ``src``, or None when there is no such file. Raises
    :class:`SettingsError` (a link out of the input's folder, too)."""
    path = material_overrides.beside(src, SUFFIX)
    return None if path is None else read_file(
        material_overrides.inside_folder(src, path, SettingsError))


def read_file(path: Path) -> ConversionSettings:
    """The settings in ``path``. Raises :class:`SettingsError`."""
    return parse(material_overrides.read_json(path, MAX_FILE_BYTES, SettingsError), path.name)


def parse(doc: Any, name: str = "the settings file") -> ConversionSettings:
    """Check ``doc`` against ARR's schema; raises :class:`SettingsError`."""
    if not isinstance(doc, dict):
        raise SettingsError(f"{name} must hold a JSON object of settings")
    unknown = [k for k in doc if k not in _KEYS]
    if unknown:
        raise SettingsError(f"{name}: unknown setting {str(unknown[0])!r}; ARR's conversion "
                            f"settings are {', '.join(_KEYS)}")

    def flag(key: str, default: bool) -> bool:
        value = doc.get(key, default)
        if not isinstance(value, bool):
            raise SettingsError(f"{name}: {key} must be true or false")
        return value

    def choice(key: str, options: tuple[str, ...], default: str | None) -> str | None:
        value = doc.get(key, default)
        if value is not default and value not in options:
            raise SettingsError(f"{name}: {key} must be one of {', '.join(options)}")
        return value

    scaling = material_overrides.number(doc.get("scaling", 1.0), f"{name}: scaling",
                                        SettingsError)
    if not MIN_SCALING <= scaling <= MAX_SCALING:
        raise SettingsError(f"{name}: scaling must be a number from {MIN_SCALING:g} to "
                            f"{MAX_SCALING:g}, got {scaling:g}")
    axis = doc.get("axis", ["default"] * 3)
    if not isinstance(axis, list) or len(axis) != 3 or any(a not in AXES for a in axis):
        raise SettingsError(f"{name}: axis must be a list of three of {', '.join(AXES)}")
    picked = [i if a == "default" else "xyz".index(a[1]) for i, a in enumerate(axis)]
    if sorted(picked) != [0, 1, 2]:
        raise SettingsError(f"{name}: axis {axis} names an input axis twice; each of x, y and "
                            "z must appear once")
    mode = choice("sceneGraphMode", SCENE_GRAPH_MODES, "dynamic")
    settings = ConversionSettings(
        scaling=float(scaling), recenter_to_origin=flag("recenterToOrigin", False),
        axis=(axis[0], axis[1], axis[2]), scene_graph_mode=str(mode),
        unlit_materials=flag("unlitMaterials", False),
        sidedness=choice("opaqueMaterialDefaultSidedness", SIDEDNESS, None),
        gamma_to_linear_material=flag("gammaToLinearMaterial", False),
        gamma_to_linear_vertex=flag("gammaToLinearVertex", False))
    if np.linalg.det(settings.axis_matrix()) < 0 and mode != "none":
        raise SettingsError(f"{name}: axis {axis} mirrors the model; farview takes a mirroring "
                            "axis only with sceneGraphMode none (which bakes it into the "
                            "vertices), or use one that keeps handedness, such as "
                            '["+x", "+z", "-y"]')
    return dataclasses.replace(settings, not_applied=tuple(_not_applied(doc, name)),
                               given=dict(doc))


def _not_applied(doc: dict[str, Any], name: str) -> list[str]:
    out = []
    override = doc.get("material-override", "")
    if not isinstance(override, str):
        raise SettingsError(f"{name}: material-override must be a file name")
    keys = doc.get("metadataKeys", [])
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise SettingsError(f"{name}: metadataKeys must be a list of strings")
    if keys:
        out.append(f"{name}: metadataKeys is not applied: farview keeps no metadata")
    vertex = doc.get("vertex")
    if vertex is not None:
        if not isinstance(vertex, dict):
            raise SettingsError(f"{name}: vertex must be an object of attribute formats")
        out.append(f"{name}: vertex is not applied: farview writes float positions, 8-bit "
                   "normals and tangents and 16-bit texture coordinates and colours")
    for key, applied_when in (("fbxAssumeMetallic", None), ("deduplicateMaterials", False),
                              ("generateCollisionMesh", True)):
        if key not in doc:
            continue
        if not isinstance(doc[key], bool):
            raise SettingsError(f"{name}: {key} must be true or false")
        if doc[key] is applied_when:
            continue
        why = {"fbxAssumeMetallic": "FBX materials are made non-metallic",
               "deduplicateMaterials": "materials are not merged with equal ones",
               "generateCollisionMesh": "ray casts always work, on the render meshes"}[key]
        out.append(f"{name}: {key} {str(doc[key]).lower()} is not applied: {why}")
    return out


# -- applying them ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Applied:
    model: Model
    offset: tuple[float, float, float] | None
    """When the model was recentred, the translation that would move it back (ARR's
    ``recenteringOffset``)."""
    overridden: int = 0
    """Materials an override entry changed."""


def apply(model: Model, settings: ConversionSettings,
          overrides: material_overrides.Overrides | None = None) -> Applied:
    """``model`` with ``settings`` and then the material ``overrides`` applied (module
    docstring; the input is not changed)."""
    model, overridden = _materials(model, settings, overrides)
    if settings.gamma_to_linear_vertex:
        model = _with_primitives(model, lambda p: p if p.colors is None else
                                 dataclasses.replace(p, colors=_linear_rgba(p.colors)))
    root = settings.root_matrix()
    offset = None
    if settings.recenter_to_origin:
        box = world_bounds(model, root)
        if box is not None:
            centre = (box[0] + box[1]) / 2.0
            root[:3, 3] -= centre
            offset = (float(centre[0]), float(centre[1]), float(centre[2]))
    if settings.scene_graph_mode == "none":
        return Applied(_collapsed(model, root), offset, overridden)
    if np.allclose(root, np.eye(4), rtol=0.0, atol=0.0):
        return Applied(model, offset, overridden)
    nodes = list(model.nodes)
    for i in model.roots:
        nodes[i] = _moved(nodes[i], root)
    return Applied(dataclasses.replace(model, nodes=tuple(nodes)), offset, overridden)


def _linear_rgba(c: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    out = np.array(c, dtype=np.float32)
    out[:, :3] = np.clip(out[:, :3], 0.0, 1.0) ** _GAMMA
    return out


def _materials(model: Model, s: ConversionSettings,
               overrides: material_overrides.Overrides | None) -> tuple[Model, int]:
    """The materials with the settings' changes, then the overrides'; and how many materials
    an override changed. Parts whose material's override says ``useVertexColor`` false lose
    their vertex colours."""
    if not (s.unlit_materials or s.sidedness or s.gamma_to_linear_material or overrides):
        return model, 0
    overridden: set[int] = set()
    no_colours: set[int] = set()

    def changed(m: Material) -> Material:
        if s.unlit_materials:
            m = dataclasses.replace(m, unlit=True)
        if s.sidedness is not None and m.alpha_mode == "OPAQUE":
            m = dataclasses.replace(m, double_sided=s.sidedness == "DoubleSided")
        if s.gamma_to_linear_material:
            r, g, b, a = m.base_color
            m = dataclasses.replace(m, base_color=(r ** _GAMMA, g ** _GAMMA, b ** _GAMMA, a),
                                    emissive=tuple(c ** _GAMMA for c in m.emissive))
        if overrides is not None and overrides.entry_for(m.name) is not None:
            m, colours = overrides.apply(m)
            overridden.add(id(m))
            if not colours:
                no_colours.add(id(m))
        return m

    new = {id(m): changed(m) for m in model.materials}

    def material(m: Material) -> Material:
        if id(m) not in new:  # a primitive's default material, not in the list
            new[id(m)] = changed(m)
        return new[id(m)]

    def primitive(p: Primitive) -> Primitive:
        m = material(p.material)
        colours = None if id(m) in no_colours else p.colors
        return dataclasses.replace(p, material=m, colors=colours)

    model = _with_primitives(model, primitive)
    return (dataclasses.replace(model, materials=tuple(new[id(m)] for m in model.materials)),
            len(overridden))


def _with_primitives(model: Model, change: Any) -> Model:
    """``model`` with each primitive replaced by ``change(primitive)`` (meshes made anew, the
    nodes pointing at them)."""
    meshes = {m.key: Mesh(m.name, tuple(change(p) for p in m.primitives)) for m in model.meshes}
    for n in model.nodes:  # a node's mesh that the list lacks (not expected)
        if n.mesh is not None and n.mesh.key not in meshes:
            meshes[n.mesh.key] = Mesh(n.mesh.name, tuple(change(p) for p in n.mesh.primitives))
    nodes = tuple(n if n.mesh is None else dataclasses.replace(n, mesh=meshes[n.mesh.key])
                  for n in model.nodes)
    return dataclasses.replace(model, nodes=nodes,
                               meshes=tuple(meshes[m.key] for m in model.meshes))


def _moved(node: Node, root: npt.NDArray[np.float64]) -> Node:
    """``node`` (a root) under ``root``: as translation, rotation and scale when it had them
    and the result has them (a proper rotation and uniform scale keep them), else a matrix."""
    m = root @ node.local_matrix()
    if node.matrix is None:
        t, q, s, residual = transforms.decompose(m)
        if residual < 1e-9 * max(1.0, float(np.abs(m).max())) and min(s) > 0:
            return dataclasses.replace(node, translation=t, rotation=q, scale=s)
    return dataclasses.replace(node, matrix=tuple(float(x) for x in m.T.reshape(-1)),
                               translation=(0.0, 0.0, 0.0), rotation=(0.0, 0.0, 0.0, 1.0),
                               scale=(1.0, 1.0, 1.0))


def _placed(model: Model, root: npt.NDArray[np.float64]
            ) -> list[tuple[Mesh, npt.NDArray[np.float64]]]:
    """Every mesh the shown scene draws with its world matrix (``root`` above the roots), in
    node order."""
    worlds = node_world_matrices(model)
    return [(mesh, root @ worlds[i]) for i in sorted(worlds)
            if (mesh := model.nodes[i].mesh) is not None]


def world_bounds(model: Model, root: npt.NDArray[np.float64]
                  ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None:
    lo = np.full(3, np.inf)
    hi = np.full(3, -np.inf)
    for mesh, world in _placed(model, root):
        for p in mesh.primitives:
            if len(p.positions):
                pts = p.positions @ world[:3, :3].T.astype(np.float32) + world[:3, 3]
                lo = np.minimum(lo, pts.min(axis=0))
                hi = np.maximum(hi, pts.max(axis=0))
    return None if not np.isfinite(lo).all() else (lo, hi)


def _collapsed(model: Model, root: npt.NDArray[np.float64]) -> Model:
    """``sceneGraphMode`` ``none``: one root node named after the model, holding merged meshes
    (module docstring)."""
    groups: dict[tuple[Any, ...], list[tuple[Primitive, npt.NDArray[np.float64]]]] = {}
    for mesh, world in _placed(model, root):
        if not np.isfinite(world).all() or abs(np.linalg.det(world[:3, :3])) < 1e-30:
            continue  # a node scaled to nothing draws nothing
        for p in mesh.primitives:
            if not len(p.positions):
                continue
            key = (id(p.material), p.points, p.texcoords is not None,
                   p.texcoords1 is not None, p.colors is not None, p.tangents is not None)
            groups.setdefault(key, []).append((p, world))
    merged: list[Primitive] = []
    for members in groups.values():
        merged.extend(_merge_group(members))
    nodes = [Node(0, model.name, children=tuple(range(1, len(merged) + 1)))]
    meshes = []
    for k, prim in enumerate(merged, start=1):
        mesh = Mesh(f"{model.name} {k}", (prim,))
        meshes.append(mesh)
        nodes.append(Node(k, mesh.name, mesh=mesh))
    return Model(model.name, tuple(nodes), (0,), tuple(meshes), model.materials, model.asset)


def _merge_group(members: list[tuple[Primitive, npt.NDArray[np.float64]]]) -> list[Primitive]:
    """One group's primitives (one material, one set of attributes) in world space, merged
    into primitives of at most :data:`MERGED_MAX_VERTICES` vertices, neighbours together
    (parts ordered along a Morton curve through a 64³ grid of their centres)."""
    centres = np.array([(w[:3, :3] @ ((p.positions.min(axis=0) + p.positions.max(axis=0)) / 2)
                         + w[:3, 3]) for p, w in members])
    lo, hi = centres.min(axis=0), centres.max(axis=0)
    cells = ((centres - lo) / np.maximum(hi - lo, 1e-30) * 63.999).astype(np.uint64)
    code = np.zeros(len(members), dtype=np.uint64)
    for bit in range(6):
        for axis in range(3):
            code |= ((cells[:, axis] >> np.uint64(bit)) & np.uint64(1)) \
                << np.uint64(3 * bit + axis)
    out: list[Primitive] = []
    chunk: list[tuple[Primitive, npt.NDArray[np.float64]]] = []
    count = 0
    for k in np.argsort(code, kind="stable"):
        p, w = members[int(k)]
        n = len(p.positions)
        if chunk and (count + n > MERGED_MAX_VERTICES or p.points != chunk[0][0].points):
            out.append(_concatenated(chunk))
            chunk, count = [], 0
        chunk.append((p, w))
        count += n
    if chunk:
        out.append(_concatenated(chunk))
    return out


def _concatenated(chunk: list[tuple[Primitive, npt.NDArray[np.float64]]]) -> Primitive:
    positions, normals, indices, tangents = [], [], [], []
    base = 0
    for p, w in chunk:
        m3 = w[:3, :3]
        positions.append((p.positions @ m3.T + w[:3, 3]).astype(np.float32))
        if not p.points:
            nrm = p.normals @ np.linalg.inv(m3)  # (inverse transpose) applied to rows
            length = np.linalg.norm(nrm, axis=1, keepdims=True)
            normals.append((nrm / np.where(length > 1e-20, length, 1.0)).astype(np.float32))
            tri = p.indices.reshape(-1, 3).astype(np.uint32)
            mirrored = np.linalg.det(m3) < 0
            if mirrored:  # a mirror turns the winding round
                tri = tri[:, [0, 2, 1]]
            indices.append(tri.reshape(-1) + np.uint32(base))
            if p.tangents is not None:
                xyz = p.tangents[:, :3] @ m3.T
                length = np.linalg.norm(xyz, axis=1, keepdims=True)
                t = np.empty_like(p.tangents)
                t[:, :3] = xyz / np.where(length > 1e-20, length, 1.0)
                t[:, 3] = -p.tangents[:, 3] if mirrored else p.tangents[:, 3]
                tangents.append(t)
        base += len(p.positions)
    first = chunk[0][0]

    def joined(name: str) -> npt.NDArray[np.float32] | None:
        columns = [getattr(p, name) for p, _ in chunk]
        return None if columns[0] is None else np.concatenate(columns).astype(np.float32)

    return Primitive(
        np.concatenate(positions),
        np.concatenate(normals) if normals else np.zeros((0, 3), np.float32),
        np.concatenate(indices) if indices else np.zeros(0, np.uint32),
        first.material, texcoords=joined("texcoords"), texcoords1=joined("texcoords1"),
        colors=joined("colors"), tangents=np.concatenate(tangents) if tangents else None,
        points=first.points)
