"""Model conversion (ARR's conversion service, self-hosted): a model file in, one ``.glb`` out
that farview loads fast.

Inputs: glTF 2.0 (``.glb``, ``.gltf``: read by :mod:`host.gltf`, with its budgets) and the
formats the Open Asset Import Library reads (:data:`ASSIMP_FORMATS`: FBX, OBJ, STL, PLY,
COLLADA, 3DS, OFF; through the ``assimp-py`` wheel, which bundles the library), and point
clouds: LAS, LAZ, E57 and XYZ (:mod:`host.pointclouds`) and PLY files without faces. What is kept:
the node hierarchy with its names and transforms, triangle meshes with normals (generated when
missing), point clouds with their colours (``POINTS`` primitives, ``COLOR_0``), materials (base
colour, metallic, roughness, emissive, alpha, double-sided, unlit). From a glTF, everything its
materials draw with: every texture (base colour, metallic-roughness, normal with its scale,
occlusion with its strength, emissive), each on its texture coordinate set and with its
``KHR_texture_transform``, and vertex colours and tangents. For the other formats: the first
texture coordinate set and the diffuse (or base colour) image file a material names, read
from the input's folder (PNG, JPEG, TGA, BMP or TIFF; an absolute path from the machine the
model was made on is looked up by its file name there; nothing outside the folder is read).
Textures embedded in the file (an FBX file's, named ``*N``) are read with pyassimp
(:mod:`host._embedded_textures`: ``assimp-py`` does not hand them out); where they cannot be
(no ``libassimp5``), the result's ``warnings`` say so, as they say which named images were not
found. A PNG or JPEG
image used at its own size is written as it came; others as lossless PNG
(:func:`encode_png`). Lines are dropped.

The output: one ``.glb`` whose vertices are de-duplicated per primitive, whose meshes are
written once however many copies the input had (the same vertices, indices and materials: the
copies' nodes use the one mesh, keeping their names and places), whose normals and tangents
are quantized to 8 bits (``KHR_mesh_quantization``) and texture coordinates within 0..1 and
colours to 16 (:meth:`_Writer.attribute`), and whose vertex and index buffers are compressed
with ``EXT_meshopt_compression`` (meshoptimizer's codec, which the loader decodes; arrays of
at most :data:`SMALL_VIEW_BYTES` are written plain into views shared with others of their kind,
and parts of at most :data:`SMALL_VERTICES` vertices keep float positions and normals), whose
indices are 16-bit where a primitive's vertices allow, with each position accessor's bounds,
and levels of detail for big triangle
meshes (``MSFT_lod``; the levels carry the mesh's texture coordinates, vertex colours and
tangents). ARR's settings file beside the input (``<stem>.ConversionSettings.json``) is
applied (:mod:`host.conversion_settings`: scaling, recentring, axis, material settings, and
``sceneGraphMode`` ``none``, which merges the meshes into one object), and so is ARR's
material override file (:mod:`host.material_overrides`). Textures with a side of at least
512 pixels are also written block-compressed with their mips (normal maps as BC5), as DDS images
of ``MSFT_texture_dds`` (:mod:`host.texture_codec`), which farview's loader takes instead of
the PNG or JPEG. Not done: resizing textures below the loader's 4,096-pixel side; merging
different meshes while keeping the nodes (they are the parts a user picks and hides).

Hostile input: the file's size and triangle count are budgeted (:class:`Budgets`); the service
runs each conversion in a child process (``python -m farview.host.convert``) with a memory
limit and a timeout, and ``farview convert`` in one too (:func:`cli_main`), so that an
importer that crashes or runs away takes only that process down. A PLY file's header is
checked first (:mod:`host.ply_check`): the importer trusted its counts, and a malformed one
took 14 GB. So is a binary FBX file's structure (:mod:`host.fbx_check`): the importer allocates
each array at its declared size, and a 637-byte file took 6.2 GB. The output is written to a
temporary file beside the target and renamed into place only when complete: a failed
conversion leaves nothing behind.
"""

from __future__ import annotations

import argparse
import codecs
import hashlib
import io
import json
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import numpy.typing as npt

from farview.host import (
    conversion_settings,
    fbx_check,
    material_overrides,
    obj_check,
    ply_check,
    pointclouds,
    transforms,
)
from farview.host.errors import ModelError
from farview.host.gltf import (
    BACK_CLUSTERS,
    DEFAULT_MATERIAL,
    IDENTITY_UV,
    MAX_TEXTURE_BYTES,
    MAX_VALUE,
    Material,
    Mesh,
    Model,
    Node,
    Primitive,
    Texture,
    TextureInfo,
    image_pixels,
    load_model,
    pack_glb,
    worst_value,
)
from farview.host.lod import (
    LOD_ASKED_MIN_TRIANGLES,
    LOD_MIN_TRIANGLES,
    cache_order,
    cluster_order,
    morton_order,
    simplify,
)
from farview.host.texture_codec import DDS_MIME, DECODED, MIN_COMPRESSED_SIDE, compress, write_dds
from farview.input.launch import (
    CONVERT_MODULE,
    conversion_progress_line,
    parse_conversion_progress,
    python_module,
)

ASSIMP_FORMATS = (".fbx", ".obj", ".stl", ".ply", ".dae", ".3ds", ".off")
GLTF_FORMATS = (".glb", ".gltf")
FORMATS = GLTF_FORMATS + ASSIMP_FORMATS + pointclouds.POINT_CLOUD_FORMATS
MAX_OVERRIDE_WARNINGS = 20
"""Warnings of each kind a material override file adds to a conversion's (10,000 entries
naming no material had made 10,000 lines)."""
"""File extensions :func:`convert_file` takes."""


Progress = Callable[[str, float], None]
"""Told what a conversion does now (one of :data:`STEPS`) and how much of the whole is done,
0 to 1, never going back (:func:`convert_file`)."""

STEPS = ("reading the input", "writing the meshes", "making levels of detail",
         "writing the textures", "writing the file")
"""The converter's steps, in order (``writing the textures`` only for a model with any)."""

Ranges = dict[str, tuple[float, float]]
"""The share of the whole each step covers, (start, end) within 0 to 1."""

FIXED: Ranges = {"reading the input": (0.0, 0.15), "writing the file": (0.98, 1.0)}
"""Reading's and writing's shares (reading took 3 % of a 2 M-triangle glb's conversion, 30 %
of a 0.5 M-triangle OBJ's); the steps between share the rest (:func:`_ranges`)."""

SECONDS_PER_UNIT = {"writing the meshes": 0.34e-6, "making levels of detail": 0.4e-6,
                    "writing the textures": 0.27e-6}
"""About how long each middle step takes here for one unit of its work: a vertex or an index
of a mesh written; of a mesh given levels of detail; a pixel of a texture (measured on a 2 M-
triangle glb in 64 parts, 5.6 s in all, and a glb with four 4096-pixel textures, 20 s)."""


def _ranges(work: dict[str, float]) -> Ranges:
    """:data:`FIXED`, and the middle steps' shares in proportion to their estimated time."""
    seconds = {step: work.get(step, 0.0) * rate for step, rate in SECONDS_PER_UNIT.items()}
    total = sum(seconds.values()) or 1.0
    start, end = FIXED["reading the input"][1], FIXED["writing the file"][0]
    ranges = dict(FIXED)
    for step, spent in seconds.items():
        ranges[step] = (start, start + (end - start) * spent / total)
        start = ranges[step][1]
    return ranges


def _no_progress(step: str, done: float) -> None:
    pass


def _at(progress: Progress, step: str, within: float = 0.0, ranges: Ranges = FIXED) -> None:
    """``progress`` told that ``within`` (0 to 1) of ``step`` is done."""
    start, end = ranges[step]
    progress(step, start + (end - start) * min(max(within, 0.0), 1.0))


class ConversionError(Exception):
    """The input cannot be converted; ``code`` is ARR-style (``InvalidInput``,
    ``LimitExceeded``), ``message`` says what and what to do."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Budgets:
    max_bytes: int = 1 << 30
    """Size of the input file."""
    max_triangles: int = 20_000_000
    """Triangles and points (a point counts as a triangle, as in a session's size)."""


@dataclass(frozen=True)
class Result:
    triangles: int
    points: int
    nodes: int
    """Nodes written: those the shown scene reaches (see :func:`write_glb`)."""
    meshes: int
    """Meshes written: a mesh and its copies are one (see :func:`write_glb`)."""
    materials: int
    """Materials written (a library's unused ones are not: it said 13 for an OBJ that wrote 1)."""
    input_bytes: int
    output_bytes: int
    warnings: tuple[str, ...] = ()
    """What was not kept (a texture embedded in an FBX file, an image file not found)."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = self.__dict__.copy()
        out["warnings"] = list(self.warnings)
        return out


def convert_file(src: Path, dst: Path, budgets: Budgets = Budgets(),
                 settings_file: Path | None = None, info: bool = False,
                 progress: Progress = _no_progress) -> Result:
    """Convert ``src`` into ``dst`` (a ``.glb``), atomically, with the settings of ARR's
    ``<stem>.ConversionSettings.json`` beside ``src`` (or ``settings_file``; see
    :mod:`host.conversion_settings`); with ``info``, ARR's info file too,
    ``<dst stem>.info.json`` beside it (:func:`conversion_info`); ``progress`` is told each
    step as it goes. Raises :class:`ConversionError`."""
    _at(progress, "reading the input")
    ext = src.suffix.lower()
    if src.is_dir():
        raise ConversionError("InvalidInput", f"{src.name} is a folder; give the model file "
                              "in it")
    if ext not in FORMATS:
        raise ConversionError("InvalidInput", f"{src.name}: unsupported format {ext or '(none)'};"
                              f" farview converts {', '.join(FORMATS)}")
    try:
        size = src.stat().st_size
    except OSError as e:
        raise ConversionError("InvalidInput", f"cannot read {src.name}: {e.strerror}") from None
    if size > budgets.max_bytes:
        raise ConversionError("LimitExceeded", f"{src.name} is {size:,} bytes, over the "
                              f"{budgets.max_bytes:,}-byte input budget")
    try:
        settings = (conversion_settings.read_file(settings_file) if settings_file is not None
                    else conversion_settings.read(src))
        where = material_overrides.overrides_path(
            src, settings.given if settings is not None else None)
        overrides = material_overrides.read(where) if where is not None else None
    except (conversion_settings.SettingsError, material_overrides.OverrideError) as e:
        raise ConversionError("InvalidInput", e.message) from None
    extras: dict[str, Any] = {}
    warnings: list[str] = list(settings.not_applied) if settings is not None else []
    if ext in GLTF_FORMATS:
        try:
            model = load_model(src, max_triangles=budgets.max_triangles,
                               max_file_bytes=budgets.max_bytes)
        except ModelError as e:
            raise ConversionError("LimitExceeded" if e.code == "LimitExceeded" else "InvalidInput",
                                  f"{src.name}: {e.message}") from None
    elif ext in pointclouds.POINT_CLOUD_FORMATS:
        model, origin = _import_point_cloud(src, budgets)
        extras["origin"] = list(origin)
    else:
        model = _import_assimp(src, budgets, warnings)
    before = model
    applied = conversion_settings.Applied(model, None)
    try:
        if settings is not None or overrides is not None:
            applied = conversion_settings.apply(
                model, settings or conversion_settings.ConversionSettings(), overrides)
            model = applied.model
        unused = [] if overrides is None else overrides.unused({m.name for m in before.materials})
    except material_overrides.OverrideError as e:  # (a pattern that ran too long)
        raise ConversionError("InvalidInput", e.message) from None
    if overrides is not None:
        warnings += list(overrides.warnings[:MAX_OVERRIDE_WARNINGS])
        warnings += [f"{overrides.file}: no material is named {material_overrides.shown(e.name)!r}"
                     if e.pattern is None else f"{overrides.file}: the pattern "
                     f"{material_overrides.shown(e.name)!r} matches no material"
                     for e in unused[:MAX_OVERRIDE_WARNINGS]]
        if len(overrides.warnings) > MAX_OVERRIDE_WARNINGS or len(unused) > MAX_OVERRIDE_WARNINGS:
            warnings.append(f"{overrides.file}: and more of the same (not shown)")
    counts: dict[str, int] = {}
    data = write_glb(model, extras, counts, progress)
    _at(progress, "writing the file")
    report = (json.dumps(conversion_info(src, dst, before, applied, settings, overrides,
                                         counts, data), indent=2).encode() if info else None)
    try:
        write_atomically(dst, data)
    except OSError as e:  # (the file's name only: for the service, its folder is its storage)
        raise ConversionError("InternalServerError",
                              f"cannot write the output {dst.name}: {e.strerror}") from None
    if report is not None:
        try:
            write_atomically(dst.with_name(dst.stem + ".info.json"), report)
        except BaseException:
            dst.unlink(missing_ok=True)  # all or nothing
            raise
    _at(progress, "writing the file", 1.0)
    return Result(model.triangle_count, model.point_count, counts["nodes"], counts["meshes"],
                  counts["materials"], size, len(data), tuple(warnings))


def write_atomically(dst: Path, data: bytes) -> None:
    """``data`` into ``dst`` through a temporary file beside it, renamed when complete."""
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".part", dir=dst.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as an ordinary new file (mkstemp makes it private)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _format(src: Path, model: Model) -> tuple[str, str]:
    """(description, version) of the input's format, for the info file."""
    ext = src.suffix.lower()
    if ext in GLTF_FORMATS:
        return "glTF 2.0 (farview's loader)", model.asset[0]
    if ext in pointclouds.POINT_CLOUD_FORMATS:
        return f"{ext[1:].upper()} point cloud", ""
    return f"{ext[1:].upper()} (Open Asset Import Library)", ""


def conversion_info(src: Path, dst: Path, before: Model,
                    applied: conversion_settings.Applied,
                    settings: conversion_settings.ConversionSettings | None,
                    overrides: material_overrides.Overrides | None, counts: dict[str, int],
                    data: bytes) -> dict[str, Any]:
    """ARR's info file (``<name>.info.json``) for a conversion: the input's format and
    statistics, the output's. A "mesh" of ARR's statistics is a mesh part (one material):
    farview's primitive."""
    from importlib.metadata import PackageNotFoundError, version

    after, offset = applied.model, applied.offset

    parts = [p for m in before.meshes for p in m.primitives]
    faces = [p.primitive_count for p in parts]
    depth = 0
    stack = [(i, 1) for i in before.roots]
    seen: set[int] = set()
    while stack:
        i, d = stack.pop()
        if i in seen:
            continue
        seen.add(i)
        depth = max(depth, d)
        stack.extend((c, d + 1) for c in before.nodes[i].children)
    usages = sum(len(n.mesh.primitives) for n in before.nodes if n.mesh is not None)
    written = _reachable(after)
    created = sum(len(m.primitives) for i in written if (m := after.nodes[i].mesh) is not None)
    distinct = {id(p) for i in written if (m := after.nodes[i].mesh) is not None
                for p in m.primitives}
    box = conversion_settings.world_bounds(after, np.eye(4))
    fmt, fmt_version = _format(src, before)
    try:
        tool = f"farview {version('farview')}"
    except PackageNotFoundError:  # pragma: no cover - run from a source tree
        tool = "farview"
    out: dict[str, Any] = {
        "files": {"input": src.name, "output": dst.name},
        "conversionSettings": settings.given if settings is not None else {},
        "inputInfo": {"sourceAssetExtension": src.suffix.lower(),
                      "sourceAssetFormat": fmt, "sourceAssetFormatVersion": fmt_version,
                      "sourceAssetGenerator": before.asset[1]},
        "inputStatistics": {
            "numMeshes": len(parts), "numFaces": sum(faces),
            "numVertices": sum(len(p.positions) for p in parts),
            "numMaterial": len(before.materials),
            "numFacesSmallestMesh": min(faces, default=0),
            "numFacesBiggestMesh": max(faces, default=0),
            "numNodes": len(before.nodes), "numMeshUsagesInScene": usages,
            "maxNodeDepth": depth},
        "outputInfo": {"conversionToolVersion": tool,
                       "conversionHash": hashlib.sha256(data).hexdigest()[:16].upper()},
        "outputStatistics": {
            "numMeshPartsCreated": created, "numMeshPartsInstanced": created - len(distinct),
            "recenteringOffset": list(offset) if offset is not None else [0.0, 0.0, 0.0],
            "boundingBox": ({"min": [float(v) for v in box[0]],
                             "max": [float(v) for v in box[1]]} if box is not None else None),
            "numMeshesWritten": counts["meshes"], "numNodesWritten": counts["nodes"]}}
    if overrides is not None:
        out["materialOverrides"] = {"numOverrides": len(overrides.entries),
                                    "numOverriddenMaterials": applied.overridden}
    return out


def _import_point_cloud(src: Path, budgets: Budgets) -> tuple[Model, tuple[float, float, float]]:
    """The cloud as one POINTS primitive around the origin, and where its centre was (y-up, in
    the file's units): georeferenced coordinates (millions of metres) would lose centimetres
    in the renderer's float32 arithmetic, so the output keeps them in ``asset.extras.origin``
    instead of a node translation."""
    try:
        cloud = pointclouds.read(src, budgets.max_triangles)
        positions, colors, centre = pointclouds.to_points(cloud, src.name)
    except pointclouds.PointCloudError as e:
        raise ConversionError(e.code, e.message) from None
    prim = Primitive(positions, np.zeros((0, 3), np.float32), np.zeros(0, np.uint32),
                     DEFAULT_MATERIAL, colors=colors, points=True)
    mesh = Mesh(src.stem, (prim,))
    return Model(src.stem, (Node(0, src.stem, mesh=mesh),), (0,), (mesh,),
                 (DEFAULT_MATERIAL,)), centre


# -- importing through assimp ---------------------------------------------------------------


def _is_utf8(path: Path) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as f:
        try:
            while chunk := f.read(1 << 24):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True


def _text_copy(src: Path, dst: Path, drop: tuple[bytes, ...] = ()) -> int:
    """``src`` (a text file) written to ``dst`` in UTF-8, read as Latin-1 (cp1252 where it
    defines a byte) if it is not UTF-8, less the lines whose first word is in ``drop``;
    returns how many lines were left out."""
    utf8 = _is_utf8(src)
    if not drop and utf8:
        shutil.copyfile(src, dst)
        return 0
    encoding = "utf-8" if utf8 else "cp1252"
    dropped = 0
    with src.open("rb") as f, dst.open("wb") as out:
        for line in f:
            words = line.split(None, 1)
            if words and words[0] in drop:
                dropped += 1
                continue
            if encoding != "utf-8":  # (cp1252 leaves five bytes undefined: Latin-1 there)
                try:
                    line = line.decode(encoding).encode("utf-8")
                except UnicodeDecodeError:
                    line = line.decode("latin-1").encode("utf-8")
            out.write(line)
    return dropped


def _obj_rewritten(src: Path, folder: Path) -> tuple[Path, int]:
    """An OBJ file written again to ``folder`` for the importer's binding, which refuses two
    things the format allows: names not in UTF-8 (``Terraind\xe6k`` in Latin-1, from older
    exporters; the file and the material libraries it names, in its folder or below, are
    written in UTF-8) and line and point elements (``l``, ``p``: CAD exports' edges; left
    out). Returns the copy and how many elements were left out. Textures are still looked up
    beside the original."""
    dst = folder / src.name
    dropped = _text_copy(src, dst, drop=(b"l", b"p"))
    base = src.parent.resolve()
    with dst.open("rb") as f:
        libraries = [line[6:].split(b"#", 1)[0].strip() for line in f
                     if line.startswith(b"mtllib") and line[6:7].isspace()]
    for raw in libraries:
        path = _mtl_library(src, raw.decode("utf-8"))
        if path is not None:
            target = folder / path.relative_to(base)
            target.parent.mkdir(parents=True, exist_ok=True)
            _text_copy(path, target)
    return dst, dropped


def _check_coordinates(src: Path, mesh: int, pos: npt.NDArray[np.float32]) -> None:
    """Refuse NaN, infinite, and values past ±:data:`~farview.host.gltf.MAX_VALUE` (random
    bytes in a binary STL or PLY gave coordinates up to 2.7e35, which the importer read as
    they were)."""
    worst = worst_value(pos)
    if worst is None:
        return
    if math.isnan(worst):
        raise ConversionError("InvalidInput", f"{src.name}: mesh {mesh} has NaN or infinite "
                              "coordinates")
    raise ConversionError("InvalidInput", f"{src.name}: mesh {mesh} has a coordinate of "
                          f"{worst:.3g}, past the ±{MAX_VALUE:.0e} that any model's are within: "
                          "its data is damaged; export it again")


def _check_binary_stl(src: Path) -> None:
    """Refuse a binary STL whose size is not what its triangle count makes (84 + 50 bytes a
    triangle): the importer said only "Failed to determine STL storage representation". A
    file that starts with ``solid`` and has no zero byte in its first KiB is ASCII."""
    with src.open("rb") as f:
        head = f.read(1024)
        size = f.seek(0, 2)
    if len(head) < 84 or (head.lstrip().startswith(b"solid") and b"\0" not in head):
        return  # (ASCII, or too short for a header: the importer says what is wrong)
    count = int.from_bytes(head[80:84], "little")
    if size != 84 + 50 * count:
        raise ConversionError("InvalidInput", (
            f"{src.name}: its header declares {count:,} triangles (84 + 50 bytes each: "
            f"{84 + 50 * count:,} bytes), but it has {size:,} bytes: it is cut short or "
            "damaged; export it again"))


def _mtl_library(src: Path, named: str) -> Path | None:
    """The material library an ``mtllib`` line names (the whole rest of its line, or each
    word), in the OBJ's folder or below; None when there is none."""
    base = src.parent.resolve()
    for candidate in (named, *named.split()):
        path = (src.parent / candidate).resolve()
        if path.is_file() and path.is_relative_to(base):
            return path
    return None


def _undefined_materials(src: Path, obj: obj_check.ObjScan, warnings: list[str]) -> None:
    """A warning for ``usemtl`` names no material library defined (the importer draws them
    in its default grey and says nothing)."""
    found = [_mtl_library(src, named) for named in obj.libraries]
    missing = obj_check.undefined(obj.materials_used, [p for p in found if p is not None])
    if not missing:
        return
    shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    absent = [named for named, path in zip(obj.libraries, found, strict=True) if path is None]
    if absent or not obj.libraries:
        why = (f"its material library {absent[0]} is not beside it" if absent
               else "it names no material library (mtllib)")
        fix = "put the .mtl file beside the model"
    else:
        why = f"{', '.join(obj.libraries)} does not define them (is it cut short?)"
        fix = "check the .mtl file"
    warnings.append(f"{src.name} uses materials {shown}, but {why}: they are drawn in the "
                    f"default grey; {fix}")


def _import_assimp(src: Path, budgets: Budgets, warnings: list[str] | None = None) -> Model:
    try:
        import assimp_py
    except ImportError:  # pragma: no cover - a dependency of the package
        raise ConversionError("InvalidInput", "the assimp-py package is not installed") from None
    try:
        if src.suffix.lower() == ".ply":  # the library trusts a PLY header's counts
            ply_check.check(src, budgets.max_triangles)
        elif src.suffix.lower() == ".fbx":  # and a binary FBX array's declared size
            fbx_check.check(src, fbx_check.array_budget(budgets.max_triangles))
    except (ply_check.PlyHeaderError, fbx_check.FbxError) as e:
        raise ConversionError("LimitExceeded" if e.limit else "InvalidInput",
                              f"{src.name}: {e.message}" + (
                                  "" if e.limit else "; export it again")) from None
    if src.suffix.lower() == ".stl":
        _check_binary_stl(src)
    obj = obj_check.scan(src) if src.suffix.lower() == ".obj" else None
    if obj is not None and obj.cut:
        raise ConversionError("InvalidInput", f"{src.name} looks cut short: {obj.cut}; copy "
                              "or export it again")
    flags = (assimp_py.Process_Triangulate | assimp_py.Process_JoinIdenticalVertices
             | assimp_py.Process_GenSmoothNormals | assimp_py.Process_SortByPType
             | assimp_py.Process_ValidateDataStructure)

    def read(path: Path) -> Any:
        try:
            return assimp_py.import_file(str(path), flags)
        except RuntimeError as e:
            if "contains no faces" not in str(e):
                raise
            # a point cloud (a PLY of vertices only): the validator wants faces; the indices
            # it would check are not used for points, and the vertices are checked below (and
            # the nodes' meshes, which the validator checked too)
            return assimp_py.import_file(str(path), flags & ~assimp_py.Process_ValidateDataStructure)

    try:
        try:
            scene = read(src)
        except ValueError as e:
            # the binding reads every name as UTF-8 (older exporters wrote Latin-1 ones) and
            # takes faces only (lines and points, which SortByPType puts in meshes of their own)
            lines = "assumes triangulated faces" in str(e)
            if not (lines or isinstance(e, UnicodeDecodeError)):
                raise
            if src.suffix.lower() != ".obj":
                if isinstance(e, UnicodeDecodeError):
                    raise ConversionError(
                        "InvalidInput", f"{src.name} names a material, mesh or node in a text "
                        f"encoding other than UTF-8 (byte 0x{e.object[e.start]:02x}); export it "
                        "again with UTF-8 names") from None
                raise ConversionError("InvalidInput", f"{src.name} has faces of fewer than three "
                                      "corners (lines or points), which farview does not draw; "
                                      "export its triangles and polygons only"
                                      ) from None
            with tempfile.TemporaryDirectory(prefix="farview-obj-") as tmp:
                copy, dropped = _obj_rewritten(src, Path(tmp))
                scene = read(copy)
            if dropped and warnings is not None:
                warnings.append(f"{src.name}: {dropped:,} line and point elements (l, p) were "
                                "left out (farview draws faces and points)")
    except (RuntimeError, ValueError, OSError) as e:
        # the file's name, not its path on this machine (the service's storage, a temporary
        # copy): the message reaches REST clients
        why = re.sub(r"loading '[^']*'", lambda _: f"loading '{src.name}'",
                     str(e).replace(str(src), src.name))[:200]
        if why.endswith("': "):  # the library gave no reason
            why += ("no reason given; a file with no geometry at all, only cameras or lights, "
                    "ends so")
        raise ConversionError("InvalidInput", f"{src.name} could not be read "
                              f"({why}); check that it is a valid "
                              f"{src.suffix.lower().lstrip('.').upper()} file") from None
    images = _ImageFiles(src, [] if warnings is None else warnings)
    materials = tuple(_material(i, m, images) for i, m in enumerate(scene.materials))
    if obj is not None and warnings is not None:
        _undefined_materials(src, obj, warnings)
    meshes: list[Mesh] = []
    triangles = 0
    ply = src.suffix.lower() == ".ply"
    for i, m in enumerate(scene.meshes):
        # copies: the importer's buffers live only as long as its objects
        idx = np.array(m.indices if m.indices is not None else (), dtype=np.uint32)
        pos = np.array(m.vertices, dtype=np.float32).reshape(-1, 3)
        mat = materials[m.material_index] if 0 <= m.material_index < len(materials) \
            else DEFAULT_MATERIAL
        if not len(idx) and len(pos):  # a point cloud
            triangles += len(pos)
            if triangles > budgets.max_triangles:
                raise _over_budget(src, budgets)
            _check_coordinates(src, i, pos)
            meshes.append(Mesh(m.name or f"mesh_{i}", (Primitive(
                pos, np.zeros((0, 3), np.float32), idx, mat, colors=_vertex_colours(m, len(pos), ply),
                points=True),)))
            continue
        if len(idx) % 3 or not len(pos):
            meshes.append(Mesh(m.name or f"mesh_{i}", ()))  # lines only
            continue
        triangles += len(idx) // 3
        if triangles > budgets.max_triangles:
            raise _over_budget(src, budgets)
        if len(idx) and int(idx.max()) >= len(pos):
            raise ConversionError("InvalidInput", f"{src.name}: mesh {i} has an index past its "
                                  "vertices")
        nrm = (np.array(m.normals, dtype=np.float32).reshape(-1, 3)
               if m.normals is not None else np.zeros_like(pos))
        uv = None
        if m.texcoords:
            comps = m.num_uv_components[0] if m.num_uv_components else 2
            raw = np.array(m.texcoords[0], dtype=np.float32).reshape(len(pos), -1)
            uv = np.ascontiguousarray(raw[:, :2]) if comps >= 2 else None
            if uv is not None:
                uv[:, 1] = 1.0 - uv[:, 1]  # assimp's v runs up, glTF's down
        _check_coordinates(src, i, pos)
        if not np.isfinite(nrm).all():
            raise ConversionError("InvalidInput", f"{src.name}: mesh {i} has NaN or infinite "
                                  "normals")
        # (a scan's colours, a PLY's say, were dropped: the mesh came out white)
        meshes.append(Mesh(m.name or f"mesh_{i}", (Primitive(
            pos, nrm, idx, mat, uv, colors=_vertex_colours(m, len(pos), ply)),)))
    nodes: list[Node] = []
    stack: list[tuple[Any, int]] = [(scene.root_node, -1)]
    parents: dict[int, list[int]] = {}
    while stack:
        node, parent = stack.pop()
        index = len(nodes)
        m4 = np.asarray(node.transformation, dtype=np.float64).reshape(4, 4)  # row-major
        if not np.isfinite(m4).all():
            raise ConversionError("InvalidInput", f"{src.name}: node {node.name!r} has a "
                                  "non-finite transform")
        mesh_ids = list(node.mesh_indices)
        if not all(0 <= k < len(meshes) for k in mesh_ids):
            raise ConversionError("InvalidInput", f"{src.name}: node {node.name!r} names a "
                                  "mesh it does not have")
        name = node.name or f"node_{index}"
        if index == 0 and (not node.name or re.fullmatch(r"<[A-Za-z0-9_ ]*>", node.name)):
            name = src.stem  # (the importer's placeholder, <STL_BINARY> say, or none)
        nodes.append(Node(index, name,
                          matrix=tuple(float(x) for x in m4.T.reshape(-1)),
                          mesh=meshes[mesh_ids[0]] if len(mesh_ids) == 1 else None))
        if parent >= 0:
            parents.setdefault(parent, []).append(index)
        if len(mesh_ids) > 1:  # one glTF node holds one mesh: one child node per extra mesh
            for k in mesh_ids:
                child = len(nodes)
                nodes.append(Node(child, meshes[k].name, mesh=meshes[k]))
                parents.setdefault(index, []).append(child)
        stack.extend((c, index) for c in reversed(list(node.children)))
    nodes = [Node(n.index, n.name, n.translation, n.rotation, n.scale, n.matrix, n.mesh,
                  tuple(parents.get(n.index, ()))) for n in nodes]
    return Model(src.stem, tuple(nodes), (0,), tuple(meshes), materials)


def _vertex_colours(mesh: Any, count: int, display: bool) -> npt.NDArray[np.float32] | None:
    """An imported mesh's first vertex colours as RGBA floats, or None. ``display``: they are
    display (sRGB) values, made linear here (a PLY's 8-bit colours, which the importer divides
    by 255); other formats' are taken as linear, as ARR took them (``gammaToLinearVertex``
    off)."""
    if not mesh.colors:
        return None
    c = np.array(mesh.colors[0], dtype=np.float32).reshape(count, 4)
    colors = np.ascontiguousarray(np.clip(np.nan_to_num(c), 0.0, 1.0))
    if display:
        colors[:, :3] **= 2.2
    return colors


def _over_budget(src: Path, budgets: Budgets) -> ConversionError:
    return ConversionError("LimitExceeded", f"{src.name} has more than "
                           f"{budgets.max_triangles:,} triangles and points, over the budget")


TEXTURE_TYPES = (12, 1)
"""assimp's ``aiTextureType_BASE_COLOR`` and ``aiTextureType_DIFFUSE``, in that order."""
IMAGE_FORMATS = ("PNG", "JPEG", "TGA", "BMP", "TIFF")
MAX_IMAGE_FILE_BYTES = 256 << 20


class _ImageFiles:
    """The image files an imported model's materials name, read from its folder (each once)."""

    def __init__(self, src: Path, warnings: list[str]) -> None:
        self.src = src
        self.folder = src.parent.resolve()
        self.warnings = warnings
        self._read: dict[Path, Texture] = {}
        self._decoded = 0
        self._embedded: dict[int, Texture | None] | None = None
        """The file's own textures (``*N``), read when a material first names one."""

    def texture(self, ref: str) -> Texture | None:
        ref = ref.replace("\\", "/").strip()
        if not ref:
            return None
        if ref.startswith("*"):
            return self._embedded_texture(ref)
        path = self._find(ref)
        if path is None:
            self.warnings.append(f"the texture {ref!r} is not in the folder of {self.src.name}: "
                                 "it was not kept; put the image file beside the model")
            return None
        if path not in self._read:
            pixels, encoded = self._decode(path)
            self._read[path] = Texture(path.name, pixels, encoded=encoded)
        return self._read[path]

    def _find(self, ref: str) -> Path | None:
        rel = PurePosixPath(ref)
        candidates = [rel] if not rel.is_absolute() and ".." not in rel.parts else []
        candidates.append(PurePosixPath(rel.name))  # a path on the machine it was made on
        for c in candidates:
            path = (self.folder / c).resolve()
            if self.folder in path.parents and path.is_file():
                return path
        return None

    def _embedded_texture(self, ref: str) -> Texture | None:
        """The texture ``*N`` the file itself holds (:mod:`host._embedded_textures`); None,
        with a warning, when it cannot be read here."""
        from farview.host._embedded_textures import EmbeddedTexturesUnavailable, read

        if self._embedded is None:
            self._embedded = {}
            try:
                found = read(self.src, MAX_IMAGE_FILE_BYTES)
            except EmbeddedTexturesUnavailable as e:
                self.warnings.append(f"{self.src.name} embeds its textures, which cannot be read "
                                     f"here ({e}): they were not kept; install that, or export "
                                     "the model with its textures as files beside it")
                return None
            except ValueError as e:
                raise ConversionError("LimitExceeded", str(e)) from None
            except RuntimeError as e:
                self.warnings.append(f"the textures embedded in {self.src.name} could not be "
                                     f"read ({str(e)[:200]}): they were not kept")
                return None
            for i, t in enumerate(found):
                # (an uncompressed one goes through a PNG: the same checks and size limit)
                data = t.data if t.data is not None else encode_png(t.pixels)  # type: ignore[arg-type]
                pixels, encoded = self._decode_bytes(data, t.name)
                self._embedded[i] = Texture(t.name, pixels, encoded=encoded)
        try:
            index = int(ref[1:])
        except ValueError:
            index = -1
        texture = self._embedded.get(index)
        if texture is None:
            self.warnings.append(f"a material of {self.src.name} names the embedded texture "
                                 f"{ref!r}, which the file does not hold: it was not kept")
        return texture

    def _decode(self, path: Path) -> tuple[npt.NDArray[np.uint8], tuple[str, bytes] | None]:
        """:meth:`_decode_bytes` of an image file."""
        if path.stat().st_size > MAX_IMAGE_FILE_BYTES:
            raise ConversionError("LimitExceeded", f"the texture {path.name} is over "
                                  f"{MAX_IMAGE_FILE_BYTES >> 20} MiB")
        return self._decode_bytes(path.read_bytes(), path.name)

    def _decode_bytes(self, data: bytes, name: str) -> tuple[npt.NDArray[np.uint8], tuple[str, bytes] | None]:
        """The image's RGBA pixels, and the image itself (MIME type, bytes) when it is a PNG
        or JPEG used at its own size (written out as it is)."""
        from PIL import Image

        try:
            with Image.open(io.BytesIO(data), formats=list(IMAGE_FORMATS)) as img:
                size, kind = img.size, img.format
                pixels = image_pixels(img, f"the texture {name}", owner=self.src.name)
        except ModelError as e:
            raise ConversionError("LimitExceeded", e.message) from None
        except Exception as e:  # Pillow refuses malformed data with many exception types
            raise ConversionError("InvalidInput", f"the texture {name} is not an image "
                                  f"the converter reads ({type(e).__name__}); use PNG or "
                                  "JPEG") from None
        pixels = self._checked(pixels, name)
        encoded = None
        if pixels.shape[1::-1] == size and kind in ("PNG", "JPEG"):
            encoded = ("image/png" if kind == "PNG" else "image/jpeg", data)
        return pixels, encoded

    def _checked(self, pixels: npt.NDArray[np.uint8], name: str) -> npt.NDArray[np.uint8]:
        """``pixels``, counted against the model's budget for decoded textures."""
        self._decoded += pixels.nbytes
        if self._decoded > MAX_TEXTURE_BYTES:
            raise ConversionError("LimitExceeded", f"the model's textures decode to over "
                                  f"{MAX_TEXTURE_BYTES >> 20} MiB (at {name}); use smaller textures")
        return pixels


def _material(i: int, m: dict[str, Any], images: _ImageFiles | None = None) -> Material:
    diffuse = m.get("COLOR_DIFFUSE") or [0.8, 0.8, 0.8]
    opacity = float(m.get("OPACITY", 1.0))
    emissive = m.get("COLOR_EMISSIVE") or [0.0, 0.0, 0.0]
    shininess = float(m.get("SHININESS", 0.0) or 0.0)

    def clamp(v: float) -> float:
        return min(max(float(v), 0.0), 1.0) if math.isfinite(float(v)) else 0.0

    # Phong shininess to roughness, as a glTF exporter would (0: rough)
    roughness = clamp(math.sqrt(2.0 / (shininess + 2.0))) if shininess > 0 else 0.8
    texture = None
    refs = m.get("TEXTURES")
    if images is not None and isinstance(refs, dict):
        ref = next((r[0] for t in TEXTURE_TYPES if (r := refs.get(t))
                    and isinstance(r, list) and isinstance(r[0], str)), None)
        texture = None if ref is None else images.texture(ref)
    return Material(str(m.get("NAME") or f"material_{i}"),
                    (clamp(diffuse[0]), clamp(diffuse[1]), clamp(diffuse[2]), clamp(opacity)),
                    0.0, roughness, emissive=(clamp(emissive[0]), clamp(emissive[1]),
                                              clamp(emissive[2])),
                    alpha_mode="BLEND" if opacity < 1.0 else "OPAQUE",
                    base_color_texture=None if texture is None else TextureInfo(texture))


# -- writing ------------------------------------------------------------------------------


SMALL_VERTICES = 64
"""A part with at most this many vertices keeps float positions and normals (see
:data:`SMALL_VIEW_BYTES`)."""
SMALL_VIEW_BYTES = 1024
"""Buffer views this small are written as they are, not compressed: the loader reads many
small plain ones together."""


_TARGETS = {"ATTRIBUTES": 34962, "TRIANGLES": 34963}
"""A buffer view's ``target``: ARRAY_BUFFER for vertex rows, ELEMENT_ARRAY_BUFFER for indices."""


class _Writer:
    def __init__(self) -> None:
        self.blob = bytearray()
        self.views: list[dict[str, Any]] = []
        self.accessors: list[dict[str, Any]] = []
        self.quantized = False
        """Some accessor needs ``KHR_mesh_quantization`` (8-bit normals or tangents)."""
        self.meshopt = False
        """Some buffer view is compressed (``EXT_meshopt_compression``)."""
        self._pools: dict[int | None, tuple[int, bytearray]] = {}
        """Small arrays written as they are share a buffer view, one for indices (``None``)
        and one for each vertex row size (its byteStride): (view, bytes)."""
        self._small_indices: dict[tuple[bytes, int], int] = {}
        """Small index arrays already written (parts of a CAD export often share a topology):
        their bytes and component type → accessor."""

    def attribute(self, name: str, column: npt.NDArray[np.float32]) -> int:
        """A vertex attribute's accessor, quantized where that keeps what is drawn (as
        gltfpack does): normals and tangents as normalized 8-bit integers (under half a degree
        off; ``KHR_mesh_quantization``), texture coordinates within 0..1 and colours as
        normalized 16-bit ones (core glTF). Positions stay 32-bit floats: quantized ones need
        their scale in the nodes' transforms, which users read."""
        col = np.ascontiguousarray(column, dtype=np.float32)
        width = col.shape[1]
        if len(col) <= SMALL_VERTICES and name in ("POSITION", "NORMAL"):
            # a small part's: plain floats, which the loader reads many of together
            return self.compressed(col, "ATTRIBUTES", f"VEC{width}", 5126, name == "POSITION")
        if name in ("NORMAL", "TANGENT"):
            # each row padded to 4 bytes (vertex attributes are 4-byte aligned)
            packed = np.zeros((len(col), 4), np.int8)
            packed[:, :width] = np.clip(np.round(col * 127.0), -127, 127)
            self.quantized = True
            return self.compressed(packed, "ATTRIBUTES", f"VEC{width}", 5120, normalized=True)
        if name.startswith("TEXCOORD_") and len(col) and col.min() >= 0.0 and col.max() <= 1.0:
            return self.compressed(np.round(col * 65535.0).astype(np.uint16), "ATTRIBUTES",
                                   f"VEC{width}", 5123, normalized=True)
        if name == "COLOR_0":
            # each row padded to 8 bytes: an RGB row of 6 would break the 4-byte alignment
            # (and meshopt's codec refuses it)
            packed16 = np.zeros((len(col), 4), np.uint16)
            packed16[:, :width] = np.round(np.clip(col, 0.0, 1.0) * 65535.0)
            return self.compressed(packed16, "ATTRIBUTES", f"VEC{width}", 5123, normalized=True)
        return self.compressed(col, "ATTRIBUTES", f"VEC{width}", 5126, name == "POSITION")

    def _view(self, data: bytes) -> tuple[int, int]:
        self.blob.extend(b"\0" * (-len(self.blob) % 4))
        start = len(self.blob)
        self.blob.extend(data)
        return start, len(data)

    def compressed(self, arr: npt.NDArray[Any], mode: str, atype: str, ctype: int,
                   bounds: bool = False, *, normalized: bool = False) -> int:
        """An accessor over an EXT_meshopt_compression buffer view of ``arr``."""
        import meshopt

        rows = np.ascontiguousarray(arr)
        stride = rows.nbytes // max(len(rows), 1)
        if rows.nbytes <= SMALL_VIEW_BYTES:
            # as it is, in a view shared with other small arrays of its kind: compressing a
            # few hundred bytes saves little, each compressed view is decoded alone, and a view
            # each made a file of 20,000 different small parts bigger than its input and slower
            # to load
            data = rows.tobytes()
            if mode != "ATTRIBUTES":
                done = self._small_indices.get((data, ctype))
                if done is not None:
                    return done
            key = stride if mode == "ATTRIBUTES" else None
            if key not in self._pools:
                self.views.append({"buffer": 0, "byteOffset": 0, "byteLength": 0,
                                   **({"byteStride": stride} if key else {}),
                                   "target": _TARGETS[mode]})
                self._pools[key] = (len(self.views) - 1, bytearray())
            view_index, pool = self._pools[key]
            pool.extend(b"\0" * (-len(pool) % 4))
            offset = len(pool)
            pool.extend(data)
            acc = self._accessor(view_index, rows, atype, ctype, bounds, normalized)
            if offset:
                self.accessors[acc]["byteOffset"] = offset
            if mode != "ATTRIBUTES":
                self._small_indices[(data, ctype)] = acc
            return acc
        self.meshopt = True
        start, length = self._view(meshopt.encode_gltf_buffer(rows, mode) if len(rows) else b"")
        view: dict[str, Any] = {
            "buffer": 1, "byteLength": rows.nbytes, "target": _TARGETS[mode],
            "extensions": {"EXT_meshopt_compression": {
                "buffer": 0, "byteOffset": start, "byteLength": length, "byteStride": stride,
                "count": len(rows), "mode": mode}}}
        if mode == "ATTRIBUTES":
            view["byteStride"] = stride
        self.views.append(view)
        return self._accessor(len(self.views) - 1, rows, atype, ctype, bounds, normalized)

    def _accessor(self, view: int, rows: npt.NDArray[Any], atype: str, ctype: int,
                  bounds: bool, normalized: bool) -> int:
        acc: dict[str, Any] = {"bufferView": view, "componentType": ctype,
                               "count": len(rows), "type": atype}
        if normalized:
            acc["normalized"] = True
        if bounds and len(rows):
            acc["min"] = rows.min(axis=0).tolist()
            acc["max"] = rows.max(axis=0).tolist()
        self.accessors.append(acc)
        return len(self.accessors) - 1

    def plain(self, arr: npt.NDArray[Any], atype: str, ctype: int) -> int:
        """An accessor over a buffer view of ``arr`` as it is (no target: not vertex data)."""
        rows = np.ascontiguousarray(arr)
        return self._accessor(self.raw(rows.tobytes()), rows, atype, ctype, False, False)

    def raw(self, data: bytes) -> int:
        start, length = self._view(data)
        self.views.append({"buffer": 0, "byteOffset": start, "byteLength": length})
        return len(self.views) - 1

    def finish(self) -> None:
        """Write the shared views of small arrays (:meth:`compressed`) into the buffer."""
        for view_index, pool in self._pools.values():
            start, length = self._view(bytes(pool))
            self.views[view_index].update(byteOffset=start, byteLength=length)
        self._pools.clear()


def _write_indices(w: _Writer, idx: npt.NDArray[np.uint32], vertices: int) -> int:
    """A triangle list's indices: 16-bit where its vertices allow (at most 65,535: glTF keeps
    the type's largest value for primitive restart), else 32-bit."""
    if vertices <= 0xFFFF:
        return w.compressed(idx.astype(np.uint16), "TRIANGLES", "SCALAR", 5123)
    return w.compressed(idx, "TRIANGLES", "SCALAR", 5125)


def _dedupe(prim: Primitive) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint32]]:
    """The primitive's vertices (rows of :meth:`Primitive.vertex_layout`: position, normal and
    whichever of both texture coordinate sets, colours and tangents it has) without
    duplicates, and its indices into them, in vertex-cache order
    (:func:`host.lod.cache_order`)."""
    verts = np.ascontiguousarray(np.concatenate([c for _, c in prim.vertex_columns()], axis=1),
                                 dtype=np.float32)
    # np.unique sorts the vertices; cache_order then numbers them in the order they are first
    # used (sorted, neighbours in the index buffer sat far apart in memory, and a software
    # rasteriser drew the converted model at half the speed of its input)
    unique, inverse = np.unique(verts, axis=0, return_inverse=True)
    verts, idx = cache_order(unique, inverse.reshape(-1).astype(np.uint32)[prim.indices])
    return verts, idx


def _first_use_order(verts: npt.NDArray[np.float32], idx: npt.NDArray[np.uint32]
                     ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint32]]:
    """The vertices renumbered in the order the triangles first use them (unused ones left
    out), as meshoptimizer's ``optimizeVertexFetch`` does: after the triangles were put in
    back-face clusters, the vertex order of plain vertex-cache order no longer followed them,
    and meshopt's codecs compressed the 20 M-triangle model's file to 146 MB instead of 131."""
    used, first = np.unique(idx, return_index=True)
    order = used[np.argsort(first, kind="stable")]
    remap = np.zeros(len(verts), dtype=np.uint32)
    remap[order] = np.arange(len(order), dtype=np.uint32)
    return np.ascontiguousarray(verts[order]), remap[idx]


def _reachable(model: Model) -> list[int]:
    """The indices of the nodes the shown scene reaches (its roots and their descendants), in
    file order."""
    seen: set[int] = set()
    stack = list(model.roots)
    while stack:
        i = stack.pop()
        if i not in seen:
            seen.add(i)
            stack.extend(model.nodes[i].children)
    return sorted(seen)


def _levels(mesh: Mesh) -> list[list[tuple[npt.NDArray[np.float32], npt.NDArray[np.uint32]]]]:
    """Coarser levels of ``mesh`` (per level, one per primitive), when every primitive is a
    big triangle mesh (:data:`host.lod.LOD_MIN_TRIANGLES`: what the renderer would simplify
    itself at once; mid-size parts get levels only when moving frames ask, and a file does not
    carry them: at 1 M triangles in 64 parts they took the converted model from 96 to 108
    bytes a triangle): the input's own
    (``Primitive.lods``) or made here with :func:`host.lod.simplify`, carrying every vertex
    attribute the primitive has (rows of :meth:`Primitive.vertex_columns`)."""
    prims = mesh.primitives
    if not _gets_levels(mesh):
        return []
    per_prim = [list(p.lods) or _simplified(p) for p in prims]
    count = min(len(levels) for levels in per_prim)
    return [[levels[k] for levels in per_prim] for k in range(count)]


def _gets_levels(mesh: Mesh) -> bool:
    """Whether :func:`_levels` gives ``mesh`` levels: every primitive a big triangle mesh."""
    return bool(mesh.primitives) and all(not p.points and p.triangle_count >= LOD_MIN_TRIANGLES
                                         for p in mesh.primitives)


def _simplified(prim: Primitive) -> list[tuple[npt.NDArray[np.float32], npt.NDArray[np.uint32]]]:
    """:func:`host.lod.simplify` of a primitive with its other attributes along; the tangents
    (averaged by the simplifier) made unit length again, their handedness a sign, as glTF
    requires."""
    columns = prim.vertex_columns()
    extra = (np.concatenate([c for _, c in columns[2:]], axis=1) if len(columns) > 2 else None)
    levels = simplify(prim.positions, prim.indices, extra)
    if prim.tangents is not None:  # the last column group
        for rows, _ in levels:
            xyz = rows[:, -4:-1]
            length = np.linalg.norm(xyz, axis=1, keepdims=True)
            rows[:, -4:-1] = np.where(length > 1e-12, xyz / np.maximum(length, 1e-12),
                                      np.array([1.0, 0.0, 0.0], dtype=np.float32))
            rows[:, -1] = np.where(rows[:, -1] >= 0.0, 1.0, -1.0)
    return levels


def _points_json(w: _Writer, prim: Primitive, material: int) -> dict[str, Any]:
    """A POINTS primitive: positions and, if any, colours (normalized 16-bit RGBA: linear
    colours need more than 8 bits in the dark), the points along a Morton curve of their box
    (``lod.morton_order``): neighbours together, so that ray casts take the file's order in
    chunks as it is (no sort, 4 bytes a point, when a host loads it)."""
    order = morton_order(prim.positions) if len(prim.positions) > 1 else None
    positions = prim.positions if order is None else prim.positions[order]
    attrs = {"POSITION": w.attribute("POSITION", positions)}
    if prim.colors is not None:
        attrs["COLOR_0"] = w.attribute("COLOR_0", prim.colors if order is None
                                       else prim.colors[order])
    return {"attributes": attrs, "mode": 0, "material": material}


def encode_png(pixels: npt.NDArray[np.uint8]) -> bytes:
    """``pixels`` (RGBA) as a lossless PNG, as small as cheaply possible: RGB when every pixel
    is opaque, and a palette when there are at most 256 colours (the Cesium milk truck's
    2048 × 2048 texture has 136: 868 KB as RGBA, 463 KB as a palette; its input had 428 KB)."""
    from PIL import Image

    out = io.BytesIO()
    if not (pixels[..., 3] == 255).all():
        Image.fromarray(pixels, "RGBA").save(out, format="PNG")
        return out.getvalue()
    rgb = np.ascontiguousarray(pixels[..., :3])
    img = Image.fromarray(rgb, "RGB")
    colours = img.getcolors(256)
    if colours is None:
        img.save(out, format="PNG")
        return out.getvalue()
    palette = np.array([c for _, c in colours], np.uint8).reshape(-1, 3)
    keys = (palette[:, 0].astype(np.int32) << 16) | (palette[:, 1].astype(np.int32) << 8) \
        | palette[:, 2]
    order = np.argsort(keys)
    keys, palette = keys[order], palette[order]
    key = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    indexed = Image.fromarray(np.searchsorted(keys, key).astype(np.uint8), "P")
    indexed.putpalette(palette.reshape(-1).tolist())
    indexed.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _mesh_digest(mesh: Mesh) -> bytes:
    """What makes two meshes copies of one another: each primitive's material (the same
    object) and vertex data, as a 128-bit BLAKE2b digest."""
    h = hashlib.blake2b(digest_size=16)
    for prim in mesh.primitives:
        h.update(b"P" + id(prim.material).to_bytes(8, "little") + bytes([prim.points]))
        for name, column in (("p", prim.positions), ("n", prim.normals), ("i", prim.indices),
                             ("t", prim.texcoords), ("u", prim.texcoords1),
                             ("c", prim.colors), ("g", prim.tangents)):
            if column is not None:
                data = np.ascontiguousarray(column)
                h.update(f"{name}{data.dtype.str}{data.shape}".encode())
                h.update(data.tobytes())
        h.update(f"lods{len(prim.lods)}".encode())
        for rows, index in prim.lods:
            h.update(np.ascontiguousarray(rows).tobytes())
            h.update(np.ascontiguousarray(index).tobytes())
    return h.digest()


def texture_transform(m: tuple[float, float, float, float, float, float]) -> dict[str, Any]:
    """A texture-coordinate matrix (:attr:`TextureInfo.transform`: the top two rows of
    ``translation · rotation · scale``) as ``KHR_texture_transform``'s offset, rotation and
    scale (exact for any matrix made that way, a mirroring scale included)."""
    a, b, tx, c, d, ty = m
    rotation = math.atan2(c, a)
    sx = math.hypot(a, c)
    sy = -b * math.sin(rotation) + d * math.cos(rotation)
    return {"offset": [tx, ty], "rotation": rotation, "scale": [sx, sy]}


def _node_trs(nodes: list[Node]) -> list[tuple[list[float] | None, tuple[float, ...],
                                                tuple[float, ...], tuple[float, ...]]]:
    """Each node's transform as glTF's translation, rotation and scale: its own, or its
    matrix decomposed (all at once). A matrix that TRS does not reproduce (sheared, or not
    finite) is kept: (the matrix, column-major, and the defaults)."""
    out: list[tuple[list[float] | None, tuple[float, ...], tuple[float, ...],
                    tuple[float, ...]]] = [(None, n.translation, n.rotation, n.scale)
                                           for n in nodes]
    given = [i for i, n in enumerate(nodes) if n.matrix is not None]
    if not given:
        return out
    columns = np.array([nodes[i].matrix for i in given], dtype=np.float64).reshape(-1, 16)
    t, q, s, residual = transforms.decompose_column_major(columns)
    with np.errstate(all="ignore"):
        exact = residual <= 1e-6 * np.maximum(1.0, np.abs(columns).max(axis=1))
    for k, i in enumerate(given):
        out[i] = ((None, tuple(t[k].tolist()), tuple(q[k].tolist()), tuple(s[k].tolist()))
                  if exact[k] else (columns[k].tolist(), *out[i][1:]))
    return out


def write_glb(model: Model, extras: dict[str, Any] | None = None,
              counts: dict[str, int] | None = None, progress: Progress = _no_progress) -> bytes:
    """``model`` as one ``.glb`` with meshopt-compressed buffers (module docstring);
    ``extras``: the asset's ``extras`` (a point cloud's ``origin``); ``counts`` gets
    ``meshes``, the meshes written (copies written once; levels of detail not counted), and
    ``nodes``, the nodes written (levels' not counted), and ``materials``, those written.

    Only the nodes the shown scene reaches, and their meshes, are written: an input's
    level-of-detail nodes (``MSFT_lod``: their geometry is in their mesh's
    ``Primitive.lods`` now, written again as this file's levels) were written again as empty
    nodes and unused meshes, and a converted file grew with each conversion."""
    w = _Writer()
    order = _reachable(model)
    new_index = {old: i for i, old in enumerate(order)}
    used = {mesh.key for i in order if (mesh := model.nodes[i].mesh) is not None}
    textures: dict[int, int] = {}
    images: list[dict[str, Any]] = []
    samplers: list[dict[str, Any]] = []
    tex_specs: list[dict[str, Any]] = []

    normal_maps: set[int] = set()
    """Keys of the textures materials use as normal maps and nothing else (BC5, not BC1: x
    and y kept apart, z made again when drawn)."""
    compressed_any = False
    done_pixels = 0  # (of the textures written: progress)

    def texture(t: Texture) -> int:
        nonlocal compressed_any, done_pixels
        if t.key not in textures:
            # an image used at its own size goes out as it came (a JPEG photo stays a JPEG:
            # as a lossless PNG it grew several times); others as the smallest lossless PNG
            if t.encoded is None and t.compressed is not None and \
                    t.compressed.format not in DECODED:
                raise ConversionError("InvalidInput", f"the texture {t.name!r} is {t.compressed.format} "
                                      "blocks without a PNG or JPEG beside them, and farview "
                                      "does not re-encode those: give the texture a PNG or JPEG "
                                      "source as well")
            mime, data = t.encoded or ("image/png", encode_png(t.rgba()))
            images.append({"bufferView": w.raw(data), "mimeType": mime})
            samplers.append({"magFilter": t.mag_filter, "minFilter": t.min_filter,
                             "wrapS": t.wrap_s, "wrapT": t.wrap_t})
            spec: dict[str, Any] = {"source": len(images) - 1, "sampler": len(samplers) - 1}
            # a big texture also goes out block-compressed with its mips, which farview's
            # loader takes instead (module host.texture_codec): a normal map as BC5
            blocks = t.compressed
            if blocks is None and max(t.size) >= MIN_COMPRESSED_SIDE:
                blocks = compress(t.rgba(), normal_map=t.key in normal_maps)
            if blocks is not None:
                images.append({"bufferView": w.raw(write_dds(blocks)), "mimeType": DDS_MIME})
                spec["extensions"] = {"MSFT_texture_dds": {"source": len(images) - 1}}
                compressed_any = True
            tex_specs.append(spec)
            textures[t.key] = len(tex_specs) - 1
            done_pixels += pixels.get(t.key, 0)
            _at(progress, "writing the textures", done_pixels / total_pixels, ranges)
        return textures[t.key]

    transformed = False

    def texture_info(info: TextureInfo) -> dict[str, Any]:
        nonlocal transformed
        out: dict[str, Any] = {"index": texture(info.texture), "texCoord": info.texcoord}
        if info.transform != IDENTITY_UV:
            out["extensions"] = {"KHR_texture_transform": texture_transform(info.transform)}
            transformed = True
        return out

    materials: list[Material] = []
    mat_index: dict[int, int] = {}

    def material(m: Material) -> int:
        if id(m) not in mat_index:
            materials.append(m)
            mat_index[id(m)] = len(materials) - 1
        return mat_index[id(m)]

    meshes_json: list[dict[str, Any]] = []
    mesh_index: dict[int, int] = {}
    clustered = False
    # meshes that are copies of one another (the same vertices, indices and materials: a CAD
    # export often writes each bolt of an assembly out again) are written once, and every
    # node of a copy uses that one: its nodes keep their names and places
    first_of: dict[bytes, Mesh] = {}
    same_as: dict[int, int] = {}
    for mesh in model.meshes:
        if mesh.key not in used:
            continue
        twin = first_of.setdefault(_mesh_digest(mesh), mesh)
        if twin is not mesh:
            same_as[mesh.key] = twin.key
    written = [mesh for mesh in model.meshes if mesh.key not in same_as and mesh.key in used]
    work = [sum(len(p.positions) + len(p.indices) for p in mesh.primitives) for mesh in written]
    lod_work = [w if _gets_levels(mesh) else 0 for mesh, w in zip(written, work, strict=True)]
    pixels = {info.texture.key: info.texture.size[0] * info.texture.size[1]  # (for progress)
              for mesh in written for prim in mesh.primitives
              for _, info in prim.material.textures()}
    total_pixels = max(sum(pixels.values()), 1)
    ranges = _ranges({"writing the meshes": sum(work), "making levels of detail": sum(lod_work),
                      "writing the textures": sum(pixels.values())})
    total_work = max(sum(work), 1)
    done_work = 0
    _at(progress, "writing the meshes", 0.0, ranges)
    for mesh, mesh_work in zip(written, work, strict=True):
        prims = []
        for prim in mesh.primitives:
            if prim.points:
                prims.append(_points_json(w, prim, material(prim.material)))
                continue
            verts, idx = _dedupe(prim)
            clusters = None
            if len(idx) // 3 >= LOD_ASKED_MIN_TRIANGLES:  # its back-face clusters
                idx, clusters = cluster_order(verts[:, :3], idx)
                verts, idx = _first_use_order(verts, idx)
            attrs = {attribute: w.attribute(attribute, verts[:, start:start + width])
                     for attribute, start, width in prim.vertex_layout()}
            prim_json: dict[str, Any] = {"attributes": attrs,
                                         "material": material(prim.material)}
            if clusters is not None:
                starts, bounds = clusters
                prim_json["extensions"] = {BACK_CLUSTERS: {
                    "starts": w.plain(starts.astype(np.uint32), "SCALAR", 5125),
                    "spheres": w.plain(bounds[:, :4].astype(np.float32), "VEC4", 5126),
                    "cones": w.plain(bounds[:, 4:].astype(np.float32), "VEC4", 5126)}}
                clustered = True
            prim_json["indices"] = _write_indices(w, idx, len(verts))
            prims.append(prim_json)
        mesh_index[mesh.key] = len(meshes_json)
        meshes_json.append({"name": mesh.name, "primitives": prims})
        done_work += mesh_work
        _at(progress, "writing the meshes", done_work / total_work, ranges)
    for key, twin_key in same_as.items():
        mesh_index[key] = mesh_index[twin_key]
    if counts is not None:
        counts["meshes"] = len(meshes_json)
    # levels of detail (MSFT_lod): for each big plain mesh, one coarser mesh per level, each
    # held by a node that no scene reaches; the mesh's nodes name them
    lod_meshes: dict[int, list[int]] = {}
    done_work, total_work = 0, max(sum(lod_work), 1)
    _at(progress, "making levels of detail", 0.0, ranges)
    for mesh, mesh_work in zip(written, lod_work, strict=True):
        levels = _levels(mesh)
        for k, level in enumerate(levels):
            lod_prims = []
            for prim, (interleaved, index) in zip(mesh.primitives, level, strict=True):
                attrs = {attribute: w.attribute(attribute, interleaved[:, start:start + width])
                         for attribute, start, width in prim.vertex_layout()}
                lod_prims.append({"attributes": attrs,
                                  "indices": _write_indices(w, index, len(interleaved)),
                                  "material": material(prim.material)})
            lod_meshes.setdefault(mesh.key, []).append(len(meshes_json))
            meshes_json.append({"name": f"{mesh.name} LOD {k + 1}", "primitives": lod_prims})
        done_work += mesh_work
        _at(progress, "making levels of detail", done_work / total_work, ranges)
    mats_json = []
    other_uses = {info.texture.key for m in materials
                  for info in (m.base_color_texture, m.metallic_roughness_texture,
                               m.occlusion_texture, m.emissive_texture) if info is not None}
    normal_maps.update(m.normal_texture.texture.key for m in materials
                       if m.normal_texture is not None)
    normal_maps.difference_update(other_uses)  # (one texture in two roles stays BC1)
    if pixels:
        _at(progress, "writing the textures", 0.0, ranges)
    for m in materials:
        pbr: dict[str, Any] = {"baseColorFactor": list(m.base_color),
                               "metallicFactor": m.metallic, "roughnessFactor": m.roughness}
        if m.base_color_texture is not None:
            pbr["baseColorTexture"] = texture_info(m.base_color_texture)
        if m.metallic_roughness_texture is not None:
            pbr["metallicRoughnessTexture"] = texture_info(m.metallic_roughness_texture)
        spec: dict[str, Any] = {"name": m.name, "pbrMetallicRoughness": pbr,
                                "doubleSided": m.double_sided, "alphaMode": m.alpha_mode}
        if m.normal_texture is not None:
            spec["normalTexture"] = {**texture_info(m.normal_texture),
                                     "scale": m.normal_texture.scale}
        if m.occlusion_texture is not None:
            spec["occlusionTexture"] = {**texture_info(m.occlusion_texture),
                                        "strength": m.occlusion_texture.scale}
        if m.emissive_texture is not None:
            spec["emissiveTexture"] = texture_info(m.emissive_texture)
        if m.alpha_mode == "MASK":
            spec["alphaCutoff"] = m.alpha_cutoff
        if any(m.emissive):
            scale = max(m.emissive)
            spec["emissiveFactor"] = [c / max(scale, 1.0) for c in m.emissive]
            if scale > 1.0:
                spec["extensions"] = {"KHR_materials_emissive_strength": {
                    "emissiveStrength": scale}}
        if m.unlit:
            spec.setdefault("extensions", {})["KHR_materials_unlit"] = {}
        mats_json.append(spec)
    if counts is not None:
        counts["materials"] = len(mats_json)
    nodes_json = []
    kept = [model.nodes[i] for i in order]
    trs = _node_trs(kept)
    for n, (matrix, t, r, s) in zip(kept, trs, strict=True):
        node: dict[str, Any] = {"name": n.name}
        if matrix is not None:  # a sheared matrix, which TRS cannot express: as it came
            node["matrix"] = matrix
        else:  # (read without decomposing anything: a matrix a part took 7 s at 100,000)
            for field_name, value, default in (("translation", t, (0.0, 0.0, 0.0)),
                                               ("rotation", r, (0.0, 0.0, 0.0, 1.0)),
                                               ("scale", s, (1.0, 1.0, 1.0))):
                # (np.allclose's test, without its cost three times a part)
                if any(abs(v - d) > 1e-8 + 1e-5 * abs(d) for v, d in zip(value, default,
                                                                          strict=True)):
                    node[field_name] = [float(x) for x in value]
        if n.mesh is not None:
            node["mesh"] = mesh_index[n.mesh.key]
        if n.children:
            node["children"] = [new_index[c] for c in n.children]
        nodes_json.append(node)
    if counts is not None:
        counts["nodes"] = len(nodes_json)
    lod_nodes: dict[int, list[int]] = {}  # mesh key -> its level nodes (shared by its nodes)
    for node, n in zip(nodes_json[:len(kept)], kept, strict=True):
        if n.mesh is None:
            continue
        key = same_as.get(n.mesh.key, n.mesh.key)
        if key not in lod_meshes:
            continue
        if key not in lod_nodes:
            lod_nodes[key] = []
            for k, level_mesh in enumerate(lod_meshes[key]):
                lod_nodes[key].append(len(nodes_json))
                nodes_json.append({"name": f"{n.name} LOD {k + 1}", "mesh": level_mesh})
        node["extensions"] = {"MSFT_lod": {"ids": lod_nodes[key]}}
    w.finish()
    w.blob.extend(b"\0" * (-len(w.blob) % 4))
    fallback = sum(v["byteLength"] for v in w.views if "extensions" in v)
    doc: dict[str, Any] = {
        "asset": {"version": "2.0", "generator": "farview convert",
                  **({"extras": extras} if extras else {})},
        "extensionsUsed": [*(["EXT_meshopt_compression"] if w.meshopt else []),
                           "KHR_materials_emissive_strength",
                           "KHR_materials_unlit", *(["MSFT_lod"] if lod_nodes else []),
                           *([BACK_CLUSTERS] if clustered else []),
                           *(["KHR_texture_transform"] if transformed else []),
                           *(["MSFT_texture_dds"] if compressed_any else []),
                           *(["KHR_mesh_quantization"] if w.quantized else [])],
        "extensionsRequired": [*(["EXT_meshopt_compression"] if w.meshopt else []),
                               *(["KHR_mesh_quantization"] if w.quantized else [])],
        "scene": 0, "scenes": [{"nodes": [new_index[r] for r in model.roots]}],
        "nodes": nodes_json,
        "meshes": meshes_json, "materials": mats_json, "accessors": w.accessors,
        "bufferViews": w.views,
        "buffers": [{"byteLength": len(w.blob)},
                    *([{"byteLength": fallback,
                        "extensions": {"EXT_meshopt_compression": {"fallback": True}}}]
                      if w.meshopt else [])],
    }
    if not doc["extensionsRequired"]:
        del doc["extensionsRequired"]  # (glTF: present only with at least one)
    if tex_specs:
        doc.update(textures=tex_specs, images=images, samplers=samplers)
    return pack_glb(doc, bytes(w.blob))


def main(argv: list[str] | None = None) -> int:
    """``python -m farview.host.convert SRC DST``: one conversion; prints the result as JSON on
    stdout (exit 0), or the error as JSON ``{"code", "message"}`` on stderr (exit 1)."""
    ap = argparse.ArgumentParser(prog="python -m farview.host.convert", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("--max-bytes", type=int, default=Budgets.max_bytes)
    ap.add_argument("--max-triangles", type=int, default=Budgets.max_triangles)
    ap.add_argument("--settings", type=Path)
    ap.add_argument("--info", action="store_true", help="write ARR's DST-stem.info.json too")
    ap.add_argument("--progress", action="store_true",
                    help="write each step and how much is done on stderr (JSON lines: "
                    "farview.input.launch.conversion_progress_line)")
    args = ap.parse_args(argv)
    try:
        result = convert_file(args.src, args.dst, Budgets(args.max_bytes, args.max_triangles),
                              args.settings, info=args.info,
                              progress=_ProgressLines() if args.progress else _no_progress)
    except ConversionError as e:
        print(json.dumps({"code": e.code, "message": e.message}), file=sys.stderr)
        return 1
    except MemoryError:
        print(json.dumps({"code": "LimitExceeded", "message": "the conversion ran out of its "
                          "memory budget; the model is too large for this machine"}),
              file=sys.stderr)
        return 1
    print(json.dumps(result.to_json()))
    return 0


class _ProgressLines:
    """A :data:`Progress` that writes :func:`~farview.input.launch.conversion_progress_line`
    on stderr: one for each new step and one at the end; between them, one for every
    hundredth done, at most ten a second."""

    def __init__(self) -> None:
        self._step = ""
        self._done = -1.0
        self._at = 0.0

    def __call__(self, step: str, done: float) -> None:
        now = time.monotonic()
        if step == self._step and done < 1.0 and (done - self._done < 0.01
                                                   or now - self._at < 0.1):
            return
        self._step, self._done, self._at = step, done, now
        sys.stderr.write(conversion_progress_line(step, done) + "\n")
        sys.stderr.flush()


def _convert_in_child(src: Path, dst: Path, budgets: Budgets,
                      settings_file: Path | None, progress: Progress = _no_progress) -> Result:
    """:func:`convert_file` in a child process (:func:`main`) with at most half the machine's
    memory, as the service runs it: an importer that crashes on a malformed file (the Open
    Asset Import Library died of a bus error on a PLY face line starting with ``-``) or runs
    away with memory takes only the child down, and the user gets a message instead of a core
    dump or a machine out of memory. ``progress`` is told the child's steps. Raises
    :class:`ConversionError`."""
    cmd = [*python_module(CONVERT_MODULE), str(src), str(dst), "--progress",
           "--max-bytes", str(budgets.max_bytes), "--max-triangles", str(budgets.max_triangles)]
    if settings_file is not None:
        cmd += ["--settings", str(settings_file)]
    limit = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2

    def limits() -> None:  # in the child, before exec: half the machine, as the service's
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            errors="replace", preexec_fn=limits)
    assert proc.stdout is not None and proc.stderr is not None
    stdout: list[str] = []
    reader = threading.Thread(target=lambda out=proc.stdout: stdout.append(out.read()),
                              daemon=True)
    lines: list[str] = []
    try:
        reader.start()
        for line in proc.stderr:  # the child's progress as it goes, and anything else it says
            told = parse_conversion_progress(line)
            if told is not None:
                progress(*told)
            else:
                lines.append(line.rstrip("\n"))
        proc.wait()
        reader.join()
    except BaseException:  # Ctrl+C, or SIGTERM (cli_main's _Stopped): the child goes too (it
        # went on and wrote the output after the command had ended), and its unfinished file
        proc.kill()
        proc.wait()
        for part in dst.parent.glob(f".{dst.name}.*.part"):
            part.unlink(missing_ok=True)
        raise
    if proc.returncode == 0:
        sys.stderr.write("".join(line + "\n" for line in lines))  # (warnings of libraries)
        data = json.loads("".join(stdout).strip().splitlines()[-1])
        return Result(**{**data, "warnings": tuple(data["warnings"])})
    try:
        reported = json.loads(lines[-1])
        error = ConversionError(str(reported["code"]), str(reported["message"]))
    except (IndexError, ValueError, KeyError, TypeError):
        for part in dst.parent.glob(f".{dst.name}.*.part"):  # (a crash while writing)
            part.unlink(missing_ok=True)
        how = (f"signal {signal.Signals(-proc.returncode).name}"
               if -proc.returncode in signal.valid_signals() else f"status {proc.returncode}")
        error = ConversionError("ConversionFailed", (
            f"{src.name}: the converter crashed ({how}) reading it; the file is probably "
            "malformed: export it again, or in another format"))
    sys.stderr.write("".join(line + "\n" for line in lines[:-1]))
    raise error


class _Steps:
    """A :data:`Progress` for ``farview convert``'s stderr: a line for each step; on a
    terminal, the share done too, written over as it grows."""

    def __init__(self) -> None:
        self._tty = sys.stderr.isatty()
        self._step = ""

    def __call__(self, step: str, done: float) -> None:
        if step != self._step:
            if self._tty and self._step:  # (it ended: not left at its last share, "97%")
                sys.stderr.write(f"\rfarview convert: {self._step} done\n")
            self._step = step
            if not self._tty:
                sys.stderr.write(f"farview convert: {step}\n")
        if self._tty:
            sys.stderr.write(f"\rfarview convert: {step} {done:4.0%}")
        sys.stderr.flush()

    def end(self) -> None:
        if self._tty and self._step:
            sys.stderr.write("\n")
            self._step = ""


class _Stopped(Exception):
    """SIGTERM while ``farview convert`` runs."""


def _stop(signum: int, frame: object) -> None:
    raise _Stopped


def _budget(text: str) -> int:
    """A budget on the command line: a whole number, at least 1."""
    try:
        value = int(text.replace(",", "").replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def cli_main(argv: list[str] | None = None) -> int:
    """``farview convert INPUT [-o OUTPUT]``: convert a file on this machine (the service's
    conversion API runs the same converter: ``PUT /accounts/{id}/conversions/{id}``)."""
    ap = argparse.ArgumentParser(
        prog="farview convert",
        description="Convert a model (" + ", ".join(FORMATS) + ") into one .glb that farview "
        "loads fast: node names and hierarchy, materials (a glTF's with all their textures, "
        "vertex colours and tangents; for other formats the base colour texture, an image "
        "file beside the input or embedded in it) and bounds kept, vertices "
        "de-duplicated, buffers compressed with EXT_meshopt_compression, textures of 512 "
        "pixels a side and more also block-compressed with their mips (BC1/BC3/BC5 DDS, "
        "MSFT_texture_dds; the PNG/JPEG is kept beside). Point clouds (LAS, "
        "LAZ, E57, XYZ, PLY without faces) become glTF POINTS with their colours. As in ARR, "
        "INPUT's settings are read from STEM.ConversionSettings.json beside it when there is "
        "one (scaling, recenterToOrigin, axis, sceneGraphMode, unlitMaterials, "
        "opaqueMaterialDefaultSidedness, gammaToLinearMaterial, gammaToLinearVertex).")
    ap.add_argument("input", type=Path, help="the model file")
    ap.add_argument("-o", "--output", type=Path,
                    help="the .glb to write (default: beside the input, its name with .glb for "
                    "its extension, or NAME-converted.glb for a .glb input: engine.fbx gives "
                    "engine.glb); never the input itself")
    ap.add_argument("--max-bytes", type=_budget, default=Budgets.max_bytes,
                    help=f"largest input file (default {Budgets.max_bytes:,})")
    ap.add_argument("--max-triangles", type=_budget, default=Budgets.max_triangles,
                    help=f"most triangles and points (default {Budgets.max_triangles:,})")
    ap.add_argument("--settings", type=Path, metavar="FILE",
                    help="ARR conversion settings (JSON) to use instead of "
                    "STEM.ConversionSettings.json beside the input")
    args = ap.parse_args(argv)
    if not args.input.is_file():
        what = "is a folder" if args.input.is_dir() else "does not exist"
        print(f"farview convert: {args.input} {what}; give the model file", file=sys.stderr)
        return 1
    out = args.output or args.input.with_name(
        args.input.stem + ("-converted.glb" if args.input.suffix.lower() == ".glb" else ".glb"))
    if not out.parent.is_dir():
        print(f"farview convert: the output's folder {out.parent} does not exist; make it, or "
              "give another --output", file=sys.stderr)
        return 1
    if out.resolve() == args.input.resolve():
        ap.error(f"the output {out} is the input; give another --output")
    previous = signal.signal(signal.SIGTERM, _stop)
    steps = _Steps()
    try:
        r = _convert_in_child(args.input, out, Budgets(args.max_bytes, args.max_triangles),
                              args.settings, steps)
    except ConversionError as e:
        steps.end()
        print(f"farview convert: {e.message}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, _Stopped) as e:
        steps.end()
        print("farview convert: stopped; nothing was written", file=sys.stderr)
        return 130 if isinstance(e, KeyboardInterrupt) else 143
    finally:
        signal.signal(signal.SIGTERM, previous)
    steps.end()
    points = f"{r.points:,} points, " if r.points else ""
    print(f"{out}: {r.triangles:,} triangles, {points}{r.nodes} nodes, {r.meshes} meshes, "
          f"{r.materials} materials; {r.input_bytes:,} -> {r.output_bytes:,} bytes")
    for warning in r.warnings:
        print(f"farview convert: warning: {warning}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
