"""glTF 2.0 loading (``.glb`` and ``.gltf``) into plain numpy data; no GL here.

Owns: parsing the container, resolving buffers (GLB BIN chunk, ``data:`` URIs, external files
next to the model), decoding accessors (byteStride, sparse, u8/u16/u32 indices, quantized
attributes), compressed geometry (``KHR_draco_mesh_compression`` through DracoPy,
``EXT_meshopt_compression`` through meshopt), the node forest with stable names, triangle
meshes, glTF 2.0 materials, ``KHR_lights_punctual`` lights, and the budgets (file size,
triangles, vertices, decoded bytes, JSON nesting). Every malformed input raises
:class:`ModelError` with a message that names the problem; nothing else escapes for bad data.

Budgets are checked before the work or the memory they bound is spent, since a few hundred bytes
of glTF can declare gigabytes (an accessor without a ``bufferView`` is zero-filled to its
``count``):

- file size (``max_file_bytes``): the file plus the external buffers and images it reads;
- decoded bytes (``max_decoded_bytes``, default :data:`DEFAULT_MAX_DECODED_BYTES`): every
  accessor's decoded size (count × components × component size, plus its sparse indices and
  values) and every image's RGBA size, counted over the model before each allocation. An
  accessor decoded for two primitives counts twice: each primitive gets arrays of its own;
- triangles (``max_triangles``): per node instance, and a mesh no node uses once (it is decoded);
- vertices: at most ``max(3 × max_triangles, MIN_VERTEX_BUDGET)`` POSITION elements over the
  triangle primitives (a triangle list never needs more than three per triangle), refused with
  the triangle budget's name;
- JSON nesting: at most :data:`MAX_JSON_DEPTH` levels, scanned before parsing.

Node hierarchies are walked without recursion, so any depth that fits the budgets loads.

Compressed geometry is budgeted like the rest: the accessors a Draco primitive decodes into are
sized (and refused when over a budget) before decoding, and what Draco returns must match
their declared counts; a meshopt buffer view's ``count × byteStride`` is charged to the
decoded-bytes budget before it is decoded. (Draco's own allocations while decoding are bounded
only by the compressed data, itself within the file budget.)

Materials: base colour, metallic-roughness, normal, occlusion and emissive textures (PNG or
JPEG, through Pillow) with their samplers, ``TEXCOORD_0``/``TEXCOORD_1`` sets and
``KHR_texture_transform``; ``emissiveFactor`` with ``KHR_materials_emissive_strength``; alpha
modes; ``doubleSided``; ``KHR_materials_unlit``. Vertex colours (``COLOR_0``) are read. A
normal-mapped primitive without ``TANGENT`` gets tangents from its texture coordinates
(:func:`generate_tangents`). An image larger than ``MAX_TEXTURE_SIDE`` on a side is reduced
to fit. Textures that use a set past ``TEXCOORD_1`` are drawn without (logged).

What is deliberately not loaded: skins, morph targets, animations, cameras, and material
extensions other than the ones above (clearcoat, transmission, sheen, ...: drawn as the core
material). Primitives that are points or lines are skipped (logged); triangle strips and fans
are converted to triangle lists. ``extensionsRequired`` may list only
:data:`SUPPORTED_EXTENSIONS`; any other is refused with a message naming it.

Threading: pure functions over immutable results; safe from any thread. Loading is CPU work
that the host runs off its event loop.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import ctypes
import dataclasses
import functools
import gc
import io
import itertools
import json
import logging
import math
import os
import re
import stat
import struct
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeGuard, cast

import numpy as np
import numpy.typing as npt
from PIL import Image

from farview.host import transforms
from farview.host.errors import BUDGET_BYTES, BUDGET_DECODED, BUDGET_TRIANGLES, LIMIT_EXCEEDED, ModelError
from farview.host.texture_codec import DECODED, CompressedImage, DdsError, decompress, read_dds
from farview.input.errors import ProtocolError
from farview.input.scene import LIGHT_TYPES, Light

log = logging.getLogger(__name__)

DEFAULT_MAX_TRIANGLES = 10_000_000
"""Default triangle budget for one model."""
DEFAULT_MAX_FILE_BYTES = 1 << 30
"""Default size budget for one model including its external buffers (1 GiB)."""
DEFAULT_MAX_DECODED_BYTES = 1 << 30
"""Default budget of decoded accessor and image data for one model (1 GiB), counted before each
allocation; see the module's docstring."""
MIN_VERTEX_BUDGET = 1 << 16
"""The vertex budget is three per triangle of the triangle budget, but never less than this."""
MAX_VALUE = 1e18
"""Largest magnitude a vertex attribute's value may have. Past it float32 keeps no useful
detail (a step of about 10¹¹), and no model has such coordinates; a damaged file does (64
random bytes in a buffer, a throwaway survey of damaged files on 2026-12-06: positions up to
1.9e38, which made the model's bounds, and so the camera's framing, useless)."""


def worst_value(arr: npt.NDArray[Any]) -> float | None:
    """None when every value of ``arr`` is finite and within ±:data:`MAX_VALUE`; else NaN
    when one is not finite, or the value of the largest magnitude."""
    if not arr.size or (arr.max() <= MAX_VALUE and arr.min() >= -MAX_VALUE):
        return None
    if not np.isfinite(arr).all():
        return math.nan
    return float(arr.flat[np.abs(arr).argmax()])


MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays and objects the JSON may have (the top-level object is level 1).
glTF itself needs fewer than ten; the rest is room for ``extras``. Python's parser recurses once
per level and fails with RecursionError near a thousand, so the depth is scanned first."""

GLB_MAGIC = b"glTF"
_CHUNK_JSON = 0x4E4F534A
_CHUNK_BIN = 0x004E4942

_COMPONENT_DTYPES: dict[int, np.dtype[Any]] = {
    5120: np.dtype("<i1"),
    5121: np.dtype("<u1"),
    5122: np.dtype("<i2"),
    5123: np.dtype("<u2"),
    5125: np.dtype("<u4"),
    5126: np.dtype("<f4"),
}
_TYPE_SIZES = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
_INDEX_TYPES = (5121, 5123, 5125)
_MODE_POINTS = 0
MAX_BACK_CLUSTERS_BASE = 2048
"""A primitive's :data:`BACK_CLUSTERS` may have this many clusters plus one for every 32
triangles (``host.lod.cluster_order`` makes at most 1,024 cells plus one cluster for every
256 triangles): each is tested every frame, in float64."""
BACK_CLUSTERS = "FARVIEW_back_clusters"
"""farview's primitive extension (``farview convert`` writes it; not required): the
primitive's triangles are in back-face clusters (``host.lod.cluster_order``), and it names
three accessors: ``starts`` (SCALAR uint32, each cluster's first triangle and the triangle
count after the last), ``spheres`` (VEC4 float, each cluster's bounding sphere: centre, radius)
and ``cones`` (VEC4 float, each cluster's normal cone: unit axis, sine of the half-angle; a
sine over 1 for a cluster never left out), in the mesh's own space."""
_MODE_LINES = (1, 2, 3)
_MODE_TRIANGLES, _MODE_STRIP, _MODE_FAN = 4, 5, 6

_mesh_keys = itertools.count(1)
_texture_keys = itertools.count(1)

MAX_TEXTURE_SIDE = 4096
"""Larger images are reduced by an integer factor to fit (GPU memory, upload time)."""
MAX_IMAGE_PIXELS = 1 << 26
"""An image declaring more pixels than this is refused before it is decoded (a decompression
bomb: a few KB of PNG can declare gigabytes of pixels)."""
MAX_TEXTURE_BYTES = 1 << 29
"""Decoded texture memory one model may hold (RGBA, after any reduction): 512 MiB."""

# glTF sampler constants (the GL enums)
NEAREST, LINEAR = 9728, 9729
LINEAR_MIPMAP_LINEAR = 9987
REPEAT, CLAMP_TO_EDGE, MIRRORED_REPEAT = 10497, 33071, 33648
_MIN_FILTERS = (9728, 9729, 9984, 9985, 9986, 9987)
_WRAPS = (REPEAT, CLAMP_TO_EDGE, MIRRORED_REPEAT)
_IMAGE_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG"}
# Component types each vertex attribute may have (floats, or KHR_mesh_quantization's integers)
_POSITION_TYPES = (5126, 5120, 5121, 5122, 5123)
_DIRECTION_TYPES = (5126, 5120, 5122)
_TEXCOORD_TYPES = (5126, 5120, 5121, 5122, 5123)
_COLOR_TYPES = (5126, 5121, 5123)

SUPPORTED_EXTENSIONS = ("EXT_meshopt_compression", "KHR_draco_mesh_compression",
                        "KHR_lights_punctual", "KHR_materials_emissive_strength",
                        "KHR_materials_unlit", "KHR_mesh_quantization", "KHR_texture_transform",
                        "MSFT_lod", "MSFT_texture_dds")
"""Extensions a file may list in ``extensionsRequired``."""


@dataclass(frozen=True, eq=False)
class Texture:
    """A decoded texture and its sampler, or its block-compressed DDS image
    (``MSFT_texture_dds``: :attr:`compressed`, then nothing is decoded). ``key`` is unique in
    the process: the renderer caches its GL texture by it."""

    name: str
    pixels: npt.NDArray[np.uint8] | None
    """(height, width, 4) RGBA as stored (sRGB-encoded for colours), top row first (glTF's uv
    origin is the image's top-left corner); None when the texture is :attr:`compressed` (see
    :meth:`rgba`)."""
    mag_filter: int = LINEAR
    min_filter: int = LINEAR_MIPMAP_LINEAR
    wrap_s: int = REPEAT
    wrap_t: int = REPEAT
    key: int = field(default_factory=lambda: next(_texture_keys))
    encoded: tuple[str, bytes] | None = None
    """The PNG or JPEG file as it came (MIME type, bytes), where the image was used at its own
    size: what a conversion writes again, and what :meth:`rgba` decodes again once the
    renderer has dropped :attr:`pixels` (:meth:`release_pixels`)."""
    compressed: CompressedImage | None = None
    """The BC1/BC3/BC5/BC7 blocks of every mip level, from the texture's ``MSFT_texture_dds``
    image."""

    def rgba(self) -> npt.NDArray[np.uint8]:
        """:attr:`pixels`; once released, decoded again from :attr:`encoded`; for a
        :attr:`compressed` texture, its level 0 decoded (on each call), or for BC7 blocks,
        which farview does not decode, the PNG/JPEG beside them (:class:`ModelError` without
        one)."""
        pixels = self.pixels
        if pixels is not None:
            return pixels
        if self.compressed is not None and self.compressed.format in DECODED:
            return decompress(self.compressed)
        if self.encoded is None:
            fmt = self.compressed.format if self.compressed is not None else "no"
            raise ModelError(f"texture {self.name!r} holds {fmt} blocks, which farview passes "
                             "to GL but does not decode, and no PNG or JPEG beside them")
        with Image.open(io.BytesIO(self.encoded[1]), formats=list(_IMAGE_TYPES.values())) as img:
            return image_pixels(img, f"texture {self.name!r}")

    def release_pixels(self) -> bool:
        """Drop :attr:`pixels` (the renderer does once it has uploaded them: a 4,096² texture
        held 64 MB of them beside its copy in GL) where :attr:`encoded` can give them again;
        True if dropped."""
        if self.pixels is None or self.encoded is None:
            return False
        # the one field that changes: a cache of what ``encoded`` holds
        object.__setattr__(self, "pixels", None)
        return True

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        if self.compressed is not None:
            return self.compressed.width, self.compressed.height
        pixels = self.pixels
        if pixels is not None:
            return pixels.shape[1], pixels.shape[0]
        assert self.encoded is not None  # (kept only for an image used at its own size)
        with Image.open(io.BytesIO(self.encoded[1])) as img:
            return img.size


IDENTITY_UV = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
"""The identity texture-coordinate transform (see :attr:`TextureInfo.transform`)."""


@dataclass(frozen=True)
class TextureInfo:
    """A material's use of a texture: which ``TEXCOORD_n`` set, the ``KHR_texture_transform``
    and the texture's scalar (``normalTexture.scale``, ``occlusionTexture.strength``)."""

    texture: Texture
    texcoord: int = 0
    """``TEXCOORD_0`` or ``TEXCOORD_1`` (the transform's ``texCoord`` override applied)."""
    transform: tuple[float, float, float, float, float, float] = IDENTITY_UV
    """The top two rows of the 3×3 matrix ``translation · rotation · scale`` that
    ``KHR_texture_transform`` applies to ``(u, v, 1)``, row-major."""
    scale: float = 1.0


ALPHA_MODES = ("OPAQUE", "MASK", "BLEND")


@dataclass(frozen=True)
class Material:
    """glTF 2.0 metallic-roughness material; colours are linear as in glTF.

    Textures: base colour and emissive are sRGB-encoded, metallic-roughness (G roughness,
    B metallic), normal (tangent space) and occlusion (R) are linear."""

    name: str
    base_color: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    """``pbrMetallicRoughness.baseColorFactor``."""
    metallic: float = 1.0
    """``metallicFactor`` (glTF's default is 1)."""
    roughness: float = 1.0
    """``roughnessFactor``."""
    double_sided: bool = False
    base_color_texture: TextureInfo | None = None
    """``baseColorTexture``, multiplied with ``base_color``."""
    metallic_roughness_texture: TextureInfo | None = None
    normal_texture: TextureInfo | None = None
    """``normalTexture``; its ``scale`` scales the map's x and y."""
    occlusion_texture: TextureInfo | None = None
    """``occlusionTexture``; its ``scale`` is the strength."""
    emissive: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """``emissiveFactor`` times ``KHR_materials_emissive_strength``."""
    emissive_texture: TextureInfo | None = None
    alpha_mode: str = "OPAQUE"
    """``OPAQUE`` (alpha ignored), ``MASK`` (cut out below ``alpha_cutoff``) or ``BLEND``."""
    alpha_cutoff: float = 0.5
    unlit: bool = False
    """``KHR_materials_unlit``: the base colour is shown as it is, without lighting."""

    def __post_init__(self) -> None:
        if len(self.base_color) != 4 or not all(math.isfinite(c) for c in self.base_color):
            raise ModelError(f"material {self.name!r}: baseColorFactor must be 4 finite numbers")
        for what, v in (("metallicFactor", self.metallic), ("roughnessFactor", self.roughness)):
            if not (math.isfinite(v) and 0.0 <= v <= 1.0):
                raise ModelError(f"material {self.name!r}: {what} {v} is outside 0..1")
        if len(self.emissive) != 3 or not all(math.isfinite(c) and c >= 0 for c in self.emissive):
            raise ModelError(f"material {self.name!r}: emissive must be 3 finite numbers >= 0")
        if self.alpha_mode not in ALPHA_MODES:
            raise ModelError(f"material {self.name!r}: alphaMode {_short(self.alpha_mode)} is "
                             "not OPAQUE, MASK or BLEND")
        if not (math.isfinite(self.alpha_cutoff) and self.alpha_cutoff >= 0.0):
            raise ModelError(f"material {self.name!r}: alphaCutoff must be a number >= 0")

    def textures(self) -> tuple[tuple[str, TextureInfo], ...]:
        """The textures it uses, by role (``base``, ``mr``, ``normal``, ``occlusion``,
        ``emissive``)."""
        roles = (("base", self.base_color_texture), ("mr", self.metallic_roughness_texture),
                 ("normal", self.normal_texture), ("occlusion", self.occlusion_texture),
                 ("emissive", self.emissive_texture))
        return tuple((role, info) for role, info in roles if info is not None)

    def texcoord_sets(self) -> frozenset[int]:
        return frozenset(info.texcoord for _, info in self.textures())


DEFAULT_MATERIAL = Material("default", (0.8, 0.8, 0.8, 1.0), 0.0, 0.6)
"""Used for primitives without a material (glTF says: a default material)."""


LEVEL_ATTRIBUTES = ("TEXCOORD_0", "TEXCOORD_1", "COLOR_0", "TANGENT")
"""The vertex attributes after position and normal that levels of detail carry, in their rows'
order (:meth:`Primitive.vertex_columns`)."""


@dataclass(frozen=True, eq=False, slots=True)
class Primitive:
    """One indexed triangle list with one material, or (``points``) a point cloud: one point
    per vertex, drawn unlit in its vertex colour (or the material's base colour)."""

    positions: npt.NDArray[np.float32]
    """(N, 3) float32 vertex positions in the mesh's local space."""
    normals: npt.NDArray[np.float32]
    """(N, 3) float32 unit normals (computed when the file has none)."""
    indices: npt.NDArray[np.uint32]
    """(3·T,) uint32 vertex indices, three per triangle."""
    material: Material
    texcoords: npt.NDArray[np.float32] | None = None
    """(N, 2) float32 ``TEXCOORD_0``, when one of the material's textures uses it."""
    texcoords1: npt.NDArray[np.float32] | None = None
    """(N, 2) float32 ``TEXCOORD_1``, when one of the material's textures uses it."""
    colors: npt.NDArray[np.float32] | None = None
    """(N, 4) float32 linear RGBA ``COLOR_0`` (alpha 1 for a VEC3 accessor), or None."""
    tangents: npt.NDArray[np.float32] | None = None
    """(N, 4) float32 tangents (xyz, handedness w) when the material has a normal texture:
    the file's ``TANGENT``, or generated from the normal texture's coordinates."""
    points: bool = False
    """A point cloud (glTF mode POINTS): ``indices`` is empty, ``normals`` are unused."""
    lods: tuple[tuple[npt.NDArray[np.float32], npt.NDArray[np.uint32]], ...] = ()
    """Coarser levels made ahead of time (a converted file's ``MSFT_lod`` nodes), finest
    first: interleaved vertices (float32 rows of the :meth:`vertex_columns` the primitive has)
    and uint32 indices. Empty: the renderer makes its own (``host.lod``)."""
    clusters: tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]] | None = None
    """Back-face clusters of :attr:`indices` made ahead (a converted file's
    :data:`BACK_CLUSTERS`; ``host.lod.Clusters``), or None: the renderer makes its own."""

    def release_levels(self) -> None:
        """Drop :attr:`lods` (the renderer calls this once they are uploaded: the loaded model
        no longer holds a second copy of them; a converted 20 M-triangle model kept about
        200 MB so). A renderer that uploads the primitive again makes its own levels."""
        object.__setattr__(self, "lods", ())

    def vertex_layout(self) -> list[tuple[str, int, int]]:
        """(glTF attribute name, first float, floats) of each of :meth:`vertex_columns` in
        a row of them."""
        out = []
        start = 0
        for name, column in self.vertex_columns():
            out.append((name, start, column.shape[1]))
            start += column.shape[1]
        return out

    def vertex_columns(self) -> list[tuple[str, npt.NDArray[np.float32]]]:
        """POSITION, NORMAL, then each of :data:`LEVEL_ATTRIBUTES` the primitive has, in that
        order (glTF attribute name, (N, width) column): the layout of its levels' rows."""
        out = [("POSITION", self.positions), ("NORMAL", self.normals)]
        for name, column in zip(LEVEL_ATTRIBUTES, (self.texcoords, self.texcoords1,
                                                   self.colors, self.tangents), strict=True):
            if column is not None:
                out.append((name, column))
        return out

    def uv(self, texcoord: int) -> npt.NDArray[np.float32] | None:
        return self.texcoords if texcoord == 0 else self.texcoords1 if texcoord == 1 else None

    def usable(self, info: TextureInfo | None) -> bool:
        """The primitive has the texture coordinates (and, for a normal map, the tangents)
        that ``info`` needs: what it lacks is drawn without that texture."""
        if info is None or self.uv(info.texcoord) is None:
            return False
        return info is not self.material.normal_texture or self.tangents is not None

    @property
    def texture(self) -> Texture | None:
        """The base colour texture this primitive is drawn with."""
        info = self.material.base_color_texture
        return info.texture if info is not None and self.usable(info) else None

    @property
    def triangle_count(self) -> int:
        return len(self.indices) // 3

    @property
    def point_count(self) -> int:
        return len(self.positions) if self.points else 0

    @property
    def plain(self) -> bool:
        """Triangles in one opaque colour: no texture drawn, no vertex colours, not a point
        cloud (what the renderer batches and simplifies)."""
        return (not self.points and self.colors is None and self.material.alpha_mode == "OPAQUE"
                and not any(self.usable(info) for _, info in self.material.textures()))

    @property
    def base_textured(self) -> bool:
        """Opaque triangles whose only drawn texture is a base colour one on ``TEXCOORD_0`` (no
        vertex colours): simplified with its texture coordinates."""
        if self.points or self.colors is not None or self.material.alpha_mode != "OPAQUE":
            return False
        drawn = [(role, info) for role, info in self.material.textures() if self.usable(info)]
        return len(drawn) == 1 and drawn[0][0] == "base" and drawn[0][1].texcoord == 0

    @property
    def primitive_count(self) -> int:
        """Triangles and points: what a session's size limits (ARR counted both)."""
        return self.triangle_count + self.point_count


BOUNDS_KEPT_VERTICES = 65536
"""A mesh of more vertices keeps its :meth:`Mesh.local_bounds` once measured."""


@dataclass(frozen=True, eq=False, slots=True)
class Mesh:
    """A glTF mesh. ``key`` is unique in the process: the renderer caches GPU buffers by it."""

    name: str
    primitives: tuple[Primitive, ...]
    key: int = field(default_factory=lambda: next(_mesh_keys))
    _bounds: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None = field(
        default=None, repr=False)
    """:meth:`local_bounds`, kept once measured for a mesh of more than
    :data:`BOUNDS_KEPT_VERTICES` vertices."""

    @property
    def triangle_count(self) -> int:
        return sum(p.triangle_count for p in self.primitives)

    @property
    def point_count(self) -> int:
        return sum(p.point_count for p in self.primitives)

    @property
    def primitive_count(self) -> int:
        """Triangles and points (see :attr:`Primitive.primitive_count`)."""
        return sum(p.primitive_count for p in self.primitives)

    def local_bounds(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None:
        """(min, max) of all vertex positions (read-only), or None for a mesh without
        vertices. A mesh of more than :data:`BOUNDS_KEPT_VERTICES` vertices keeps them: the
        scene, the ray caster and the renderer each ask, and measuring took the renderer
        0.6 s of the first frame of a 20 M-triangle model (its 64 parts). A small mesh does
        not: a pair of arrays a mesh took 40 MB at 100,000 parts."""
        if self._bounds is not None:
            return self._bounds
        pts = [p.positions for p in self.primitives if len(p.positions)]
        if not pts:
            return None
        allp = pts[0] if len(pts) == 1 else np.concatenate(pts)  # the usual part: no copy
        lo, hi = allp.min(axis=0).astype(np.float64), allp.max(axis=0).astype(np.float64)
        lo.flags.writeable = hi.flags.writeable = False
        if len(allp) > BOUNDS_KEPT_VERTICES:
            object.__setattr__(self, "_bounds", (lo, hi))
        return lo, hi


def local_bounds_of(meshes: Sequence[Mesh]) -> tuple[
        npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """:meth:`Mesh.local_bounds` of many meshes, in their order: (n, 3) lows and highs, and
    whether each mesh has vertices (its rows are zero where it has none). A mesh listed twice
    is measured once. Small meshes go in one pass over all their vertices (two NumPy
    reductions a mesh took 1.3 s for 100,000 small parts), big ones (over 65,536 vertices) on
    their own. Nothing is made a mesh (a pair of arrays a mesh took 40 MB at 100,000 parts,
    which the process kept after they were freed)."""
    n = len(meshes)
    lo, hi = np.zeros((n, 3)), np.zeros((n, 3))
    has = np.zeros(n, dtype=bool)
    first: dict[int, int] = {}
    again: list[int] = []  # places of meshes listed before
    small: list[int] = []  # places of the small meshes
    counts: list[int] = []  # their vertices
    arrays: list[npt.NDArray[np.float32]] = []  # their positions, primitive by primitive
    for i, m in enumerate(meshes):
        if first.setdefault(m.key, i) != i:
            again.append(i)
            continue
        pts = [p.positions for p in m.primitives if len(p.positions)]
        count = sum(len(a) for a in pts)
        if count > BOUNDS_KEPT_VERTICES:
            bounds = m.local_bounds()
            if bounds is not None:
                lo[i], hi[i] = bounds
                has[i] = True
        elif count:
            small.append(i)
            counts.append(count)
            arrays.extend(pts)
    if small:
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        allp = np.concatenate(arrays)
        lo[small] = np.minimum.reduceat(allp, starts, axis=0)
        hi[small] = np.maximum.reduceat(allp, starts, axis=0)
        has[small] = True
    if again:
        src = [first[meshes[i].key] for i in again]
        lo[again], hi[again], has[again] = lo[src], hi[src], has[src]
    return lo, hi, has


@dataclass(frozen=True, slots=True)
class Node:
    """A glTF node: name, local transform, optional mesh, children (node indices)."""

    index: int
    name: str
    """The file's name; without one, its mesh's name, or ``node_<index>`` when neither has
    one (stable across loads)."""
    translation: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rotation: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)
    scale: tuple[float, float, float] = (1.0, 1.0, 1.0)
    matrix: tuple[float, ...] | None = None
    """Column-major 4×4 when the file gives ``matrix`` instead of TRS."""
    mesh: Mesh | None = None
    children: tuple[int, ...] = ()
    light: Light | None = None
    """``KHR_lights_punctual`` light attached to the node: it sits at the node's origin and
    shines down the node's -z (``position`` and ``direction`` are the scene's to set)."""

    def local_matrix(self) -> transforms.Mat4:
        if self.matrix is not None:
            return np.array(self.matrix, dtype=np.float64).reshape(4, 4).T
        return transforms.compose(self.translation, self.rotation, self.scale)


@dataclass(frozen=True)
class Model:
    """A loaded glTF: the node forest of its default scene plus its meshes and materials."""

    name: str
    nodes: tuple[Node, ...]
    """All nodes of the file, by glTF index."""
    roots: tuple[int, ...]
    """Root node indices of the scene that is shown (``scene``, else scene 0, else parentless)."""
    meshes: tuple[Mesh, ...]
    materials: tuple[Material, ...]
    asset: tuple[str, str] = ("", "")
    """The file's ``asset.version`` and ``asset.generator`` (empty where it has none, or the
    model was not read from a glTF)."""

    @property
    def triangle_count(self) -> int:
        """Triangles drawn: each mesh counted once per node that instances it."""
        return sum(n.mesh.triangle_count for n in self.nodes if n.mesh is not None)

    @property
    def point_count(self) -> int:
        """Points drawn (point clouds), counted as :attr:`triangle_count` is."""
        return sum(n.mesh.point_count for n in self.nodes if n.mesh is not None)

    @property
    def primitive_count(self) -> int:
        """Triangles and points drawn: what a session's size limits."""
        return sum(n.mesh.primitive_count for n in self.nodes if n.mesh is not None)


# --------------------------------------------------------------------------------------------
# Public entry points


def load_model(
    path: str | os.PathLike[str],
    *,
    max_triangles: int = DEFAULT_MAX_TRIANGLES,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    missing_normals: Literal["flat", "smooth"] = "flat",
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
) -> Model:
    """Load a ``.glb`` or ``.gltf`` file; external buffers are read relative to it. The budgets
    are those of :func:`load_model_bytes`."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as e:
        raise ModelError(f"cannot read model {str(p)!r}: {e.strerror}") from None
    if size > max_file_bytes:
        raise ModelError(
            f"model {p.name!r} is {size} bytes, over the file size budget of {max_file_bytes} bytes",
            code=LIMIT_EXCEEDED, budget=BUDGET_BYTES)
    data = p.read_bytes()
    return load_model_bytes(
        data, name=p.stem, base_dir=p.parent, max_triangles=max_triangles,
        max_file_bytes=max_file_bytes, missing_normals=missing_normals,
        max_decoded_bytes=max_decoded_bytes,
    )


def pack_glb(doc: dict[str, Any], bin_chunk: bytes = b"") -> bytes:
    """A ``.glb`` of ``doc`` (the JSON chunk, space-padded) and ``bin_chunk`` (the BIN chunk,
    zero-padded; none when empty): the container :func:`load_model_bytes` reads."""
    j = json.dumps(doc, separators=(",", ":")).encode()
    j += b" " * (-len(j) % 4)
    b = bin_chunk + b"\0" * (-len(bin_chunk) % 4)
    chunks = struct.pack("<II", len(j), _CHUNK_JSON) + j
    if b:
        chunks += struct.pack("<II", len(b), _CHUNK_BIN) + b
    return struct.pack("<4sII", GLB_MAGIC, 2, 12 + len(chunks)) + chunks


def load_model_bytes(
    data: bytes,
    *,
    name: str = "model",
    base_dir: str | os.PathLike[str] | None = None,
    max_triangles: int = DEFAULT_MAX_TRIANGLES,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    missing_normals: Literal["flat", "smooth"] = "flat",
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
) -> Model:
    """Load a model from memory (e.g. fetched over http). GLB is recognised by its magic.

    ``base_dir`` is where relative buffer URIs are resolved; without it only GLB and ``data:``
    URIs work. URIs may not leave ``base_dir`` (no absolute paths, no ``..`` escapes) and must
    name regular files.

    Budgets (see the module's docstring): ``max_triangles`` (and the vertex budget derived from
    it), ``max_file_bytes`` and ``max_decoded_bytes``. Over one: :class:`ModelError` with code
    ``LimitExceeded`` and ``budget`` naming it (``"triangles"`` or ``"bytes"``).

    Each texture keeps its PNG or JPEG file's bytes (``Texture.encoded``) where the image was
    used at its own size: a conversion writes them as they came, and the renderer drops the
    decoded pixels once they are uploaded.
    """
    if max_triangles < 0 or max_file_bytes < 0 or max_decoded_bytes < 0:
        raise ValueError("budgets must be non-negative")
    if len(data) > max_file_bytes:
        raise ModelError(
            f"model {name!r} is {len(data)} bytes, over the file size budget of "
            f"{max_file_bytes} bytes", code=LIMIT_EXCEEDED, budget=BUDGET_BYTES)
    model = _load_bytes(data, base_dir, name, max_triangles, max_file_bytes, missing_normals,
                        max_decoded_bytes)
    if len(data) >= TRIM_AFTER_BYTES:
        return_freed_memory()
    return model


def _load_bytes(data: bytes, base_dir: str | os.PathLike[str] | None, name: str,
                max_triangles: int, max_file_bytes: int,
                missing_normals: Literal["flat", "smooth"], max_decoded_bytes: int) -> Model:
    def parse() -> tuple[dict[str, Any], bytes | None]:
        if data[:4] == GLB_MAGIC:
            return _split_glb(data)
        if not _JSON_START.match(data):
            raise ModelError("not a glTF file: bad magic (neither 'glTF' binary nor JSON)")
        return _parse_json(data), None

    def load(doc: dict[str, Any], bin_chunk: bytes | None) -> Model:
        budget = _Budget(max_file_bytes - len(data))
        loader = _Loader(doc, bin_chunk, base_dir, name, budget, max_triangles,
                         missing_normals, max_decoded_bytes)
        try:
            return loader.load()
        except ModelError:
            raise
        except (KeyError, TypeError, AttributeError, IndexError, ValueError,
                OverflowError) as e:
            # A safety net: the checks above should name every problem; anything that slips
            # through is still reported as a malformed model, never as an internal error.
            raise ModelError(f"malformed glTF: {type(e).__name__}: {e}") from e

    with gc_paused():
        doc, bin_chunk = parse()
        try:
            return load(doc, bin_chunk)
        except ModelError as first:
            # JSON Schema's integers include 1.0 and 1e0, and the glTF-Validator takes them;
            # rare enough that only a file that failed is read again with them made ints (a
            # pass over every file's JSON would cost load time at 100,000 parts)
            if first.code == LIMIT_EXCEEDED or not _FLOAT_INDEX.search(data):
                raise
            del doc
            doc, bin_chunk = parse()
            if not _ints_from_integral_floats(doc):
                raise
            try:
                return load(doc, bin_chunk)
            except ModelError:
                raise first from None


_INT_KEYS = frozenset((
    "bufferView", "buffer", "byteOffset", "byteLength", "byteStride", "componentType", "count",
    "mode", "indices", "material", "mesh", "skin", "camera", "source", "sampler", "texCoord",
    "index", "scene", "light", "magFilter", "minFilter", "wrapS", "wrapT"))
"""The glTF properties that hold integers (indices, counts, enums), and (below) those whose
members or values are indices."""
_INT_MEMBER_KEYS = frozenset(("attributes", "children", "nodes", "joints", "targets"))
_FLOAT_INDEX = re.compile(rb'"(?:' + b"|".join(re.escape(k.encode()) for k in sorted(
    _INT_KEYS)) + rb'|[A-Z]+_?[0-9]*)"\s*:\s*-?[0-9]+(?:\.[0-9]*)?[eE.]|'
    rb'"(?:children|nodes|joints)"\s*:\s*\[[^\]]*[0-9][eE.]')
"""A number with a point or an exponent where glTF has an integer (a quick test of the raw
JSON before it is walked)."""


def _ints_from_integral_floats(doc: Any) -> int:
    """Make every whole-number float in ``doc``'s integer properties an int, in place;
    returns how many were changed."""
    changed = 0
    stack: list[tuple[Any, bool]] = [(doc, False)]
    while stack:
        node, ints = stack.pop()
        if isinstance(node, dict):
            for k, v in node.items():
                if isinstance(v, float) and (ints or k in _INT_KEYS) and v.is_integer():
                    node[k] = int(v)
                    changed += 1
                elif isinstance(v, (dict, list)):
                    stack.append((v, k in _INT_MEMBER_KEYS))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                if isinstance(v, float) and ints and v.is_integer():
                    node[i] = int(v)
                    changed += 1
                elif isinstance(v, (dict, list)):
                    stack.append((v, ints and isinstance(v, dict)))
    return changed


TRIM_AFTER_BYTES = 16 * 2**20
"""After loading a file this big, the C heap's free pages are given back to the system (see
:func:`return_freed_memory`)."""


def return_freed_memory() -> None:
    """Give the C heap's free pages back to the system (glibc's ``malloc_trim``; nothing where
    the C library has none). A big file's JSON is millions of small objects, freed once its
    model is made; glibc keeps their pages for later use and the process's resident memory
    stays up: 59 of 276 MB after a 100,000-part model loaded."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return cast("Callable[[int], int]", ctypes.CDLL(None).malloc_trim)
    except (AttributeError, OSError):
        return None


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cycle collector off while a model loads, or while the scene or the renderer
    makes an object for each of its parts. A big file's JSON is millions of objects (lists and
    dicts, none in a cycle), and each full collection walks all the objects there are: ten of
    them took a quarter of a 100,000-part load (9.0 s → 6.8 s), and with such a model loaded,
    making 100,000 small lists took 0.2 s with the collector on, 0.01 s with it off. What is
    made meanwhile needs no collecting; reference counting still frees what it drops. If the
    collector is already off (paused by another thread, say), it is left as it is."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


# --------------------------------------------------------------------------------------------
# Container


_JSON_START = re.compile(rb"[ \t\r\n]*\{")
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
"""A JSON string, escapes included, or an unterminated one to the end of the data (so that a
match never fails after scanning: failing, each quote inside it would start another scan,
quadratic in its length). Bytes: UTF-8 never puts '"' or '\\' inside a multi-byte character."""
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_SCAN_CHUNK = 1 << 24


def _json_depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in ``raw``, brackets inside strings aside.
    Anything after an unterminated string is ignored: the parser refuses the string first.
    Vectorised, unlike :func:`farview.input.jsondepth.nests_deeper` (which measures messages
    of at most a few hundred KiB token by token): a glTF's JSON can be tens of MiB."""
    if b"\\" not in raw:  # no escapes (the usual file): every quote opens or closes a string
        return _json_depth_unescaped(raw)
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return _bracket_depth(np.frombuffer(brackets, dtype=np.uint8))


_NOT_QUOTES_BRACKETS = bytes(b for b in range(256) if b not in b'"[]{}')


def _json_depth_unescaped(raw: bytes) -> int:
    """:func:`_json_depth` of JSON without backslashes: a bracket is outside strings when an
    even number of quotes came before it."""
    c = np.frombuffer(raw.translate(None, _NOT_QUOTES_BRACKETS), dtype=np.uint8)
    quote = c == ord('"')
    outside = (np.cumsum(quote, dtype=np.int64) & 1) == 0
    return _bracket_depth(c[outside & ~quote])


def _bracket_depth(b: npt.NDArray[np.uint8]) -> int:
    """The deepest nesting of a sequence of bracket characters."""
    depth = deepest = 0
    for start in range(0, len(b), _SCAN_CHUNK):  # bounded temporaries for huge files
        chunk = b[start:start + _SCAN_CHUNK]
        steps = np.where((chunk == ord("[")) | (chunk == ord("{")), 1, -1).astype(np.int64)
        levels = np.cumsum(steps) + depth
        deepest = max(deepest, int(levels.max()))
        depth = int(levels[-1])
    return deepest


def _json_int(text: str) -> int | float:
    """A JSON integer; one of more than 20 characters (beyond any count, offset or index a file
    can mean) becomes a float, which every such check refuses with the value in its message.
    As ints, Python refuses them past 4300 digits (a ValueError from the parser) and arithmetic
    on them grows without bound."""
    return int(text) if len(text) <= 20 else float(text)


def _fast_json(raw: bytes) -> Any:
    """``raw`` parsed by orjson (several times faster than :mod:`json` on a big glTF's JSON);
    ValueError where it refuses. Integers past 64 bits become floats, as :func:`_json_int`
    makes them (the pinned behaviour ``tests/host/test_gltf_json.py`` checks)."""
    import orjson

    return orjson.loads(raw)


def _parse_json(raw: bytes) -> dict[str, Any]:
    depth = _json_depth(raw)
    if depth > MAX_JSON_DEPTH:
        raise ModelError(f"not a usable glTF file: its JSON nests deeper than {MAX_JSON_DEPTH} "
                         f"levels ({depth}); glTF needs fewer than ten")
    try:
        doc = _fast_json(raw)
    except ValueError:  # orjson refuses some JSON that Python takes (a lone surrogate in a
        doc = None      # string, 1e400): the standard parser decides, and words the error
    try:
        if doc is None:
            doc = json.loads(raw.decode("utf-8"), parse_int=_json_int)
    except (ValueError, RecursionError) as e:
        # ValueError: bad UTF-8 or bad JSON. RecursionError cannot happen below
        # MAX_JSON_DEPTH, but must not escape if it did.
        raise ModelError(f"not a glTF file: JSON does not parse ({_clip(str(e), 200)})") from None
    if not isinstance(doc, dict):
        raise ModelError("not a glTF file: the JSON top level is not an object")
    version = str(doc.get("asset", {}).get("version", "")) if isinstance(
        doc.get("asset"), dict) else ""
    if not version.startswith("2."):
        raise ModelError("not a glTF 2.0 file: asset.version is "
                         f"{_short(version or 'missing')}")
    return doc


def _split_glb(data: bytes) -> tuple[dict[str, Any], bytes | None]:
    if len(data) < 12:
        raise ModelError(f"truncated .glb: {len(data)} bytes, the header needs 12")
    _, version, length = struct.unpack_from("<4sII", data)
    if version != 2:
        raise ModelError(f"unsupported .glb container version {version} (expected 2)")
    size = len(data)
    end = min(length, size)
    pos = 12
    doc: dict[str, Any] | None = None
    bin_chunk: bytes | None = None
    while pos < end:
        if pos + 8 > end:
            raise ModelError(f"truncated .glb: chunk header at byte {pos} runs past the end")
        clen, ctype = struct.unpack_from("<II", data, pos)
        pos += 8
        if pos + clen > size:
            raise ModelError(f"truncated .glb: chunk length {clen} exceeds file size {size}")
        chunk = data[pos:pos + clen]
        pos += clen
        if doc is None:
            if ctype != _CHUNK_JSON:
                raise ModelError("malformed .glb: the first chunk is not JSON")
            doc = _parse_json(chunk)
        elif ctype == _CHUNK_BIN and bin_chunk is None:
            bin_chunk = chunk
        # Unknown chunk types are skipped, as the spec asks.
    if length > size:
        raise ModelError(f"truncated .glb: header length {length} exceeds file size {size}")
    if doc is None:
        raise ModelError("malformed .glb: no JSON chunk")
    return doc, bin_chunk


# --------------------------------------------------------------------------------------------
# Decoding


@dataclass
class _Budget:
    bytes_left: int


def _is_num(v: object) -> TypeGuard[float]:
    # type() rather than isinstance: JSON gives exact ints and floats (bool is an int subclass,
    # and refused), and this runs millions of times on a big model
    return (type(v) is float or type(v) is int) and math.isfinite(v)  # type: ignore[arg-type]


def _is_int(v: object) -> TypeGuard[int]:
    return type(v) is int


def _short(v: object, limit: int = 60) -> str:
    """``repr(v)`` cut to ``limit`` characters, for messages that quote values from the file
    (which may be huge)."""
    return _clip(repr(v), limit)


def _clip(s: str, limit: int) -> str:
    s = _text(s)
    return s if len(s) <= limit else s[:limit - 1] + "…"


def _text(s: str) -> str:
    """``s`` with lone surrogates (valid in JSON's escapes, not in UTF-8) escaped, so that names
    and messages from the file can be encoded, logged and sent."""
    return s.encode("utf-8", "backslashreplace").decode("utf-8")


def _name(v: object, default: str) -> str:
    """The file's ``name`` for an object when it is a non-empty string, else ``default``."""
    return _text(v) if isinstance(v, str) and v else default


@dataclass(frozen=True)
class _AccessorInfo:
    """An accessor's validated header and its decoded size, known before anything is read."""

    index: int
    spec: dict[str, Any]
    dtype: np.dtype[Any]
    type: str
    ncomp: int
    count: int
    sparse_count: int
    """Elements the sparse object overrides (0 without one)."""
    size: int
    """Bytes decoding allocates at most: the elements, plus the sparse values and indices (as
    int64)."""

    @property
    def elem_size(self) -> int:
        return self.dtype.itemsize * self.ncomp

    def describe(self, what: str) -> str:
        sparse = f" with {self.sparse_count} sparse" if self.sparse_count else ""
        return (f"accessor {self.index} ({what}): {self.count} × {self.type} of "
                f"{self.dtype.itemsize}-byte components{sparse}")


_DECODE_TOGETHER_VERTICES = 16_384
"""Accessors of at most this many vertices are decoded together (see
:meth:`_Loader._decode_plain_floats`): what that saves is a per-accessor cost."""
_DECODE_GROUP_FLOATS = 1 << 22
"""... at most about this many floats at a time (16 MiB, and its checks' temporaries)."""

_COMPONENT_NAMES = {5120: "byte", 5121: "unsigned byte", 5122: "short", 5123: "unsigned short",
                    5126: "float"}


class _Loader:
    def __init__(
        self, doc: dict[str, Any], bin_chunk: bytes | None, base_dir: str | os.PathLike[str] | None,
        name: str, budget: _Budget, max_triangles: int, missing_normals: str,
        max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
    ) -> None:
        self.doc = doc
        self.bin_chunk = bin_chunk
        self.base_dir = Path(base_dir).resolve() if base_dir is not None else None
        self.name = name
        self.budget = budget
        self.max_triangles = max_triangles
        self.max_vertices = max(3 * max_triangles, MIN_VERTEX_BUDGET)
        self.missing_normals = missing_normals
        self.max_decoded_bytes = max_decoded_bytes
        self.decoded_bytes = 0
        """Decoded data charged so far (see :meth:`_charge`)."""
        self._arrays: dict[str, list[Any]] = {}
        self._buffers: dict[int, bytes] = {}
        self._textures: dict[int, Texture | None] = {}
        self._by_image: dict[tuple[object, ...], Texture] = {}
        self._texture_bytes = 0
        self._index_arrays: dict[object, tuple[npt.NDArray[np.uint32], int]] = {}
        """Decoded indices accessors (and their largest index), by accessor index or, for one
        that plainly reads a buffer view, by what it reads (see :meth:`_indices`)."""
        self._plain_floats: dict[int, npt.NDArray[np.float32]] = {}
        """POSITION and NORMAL accessors decoded together ahead of their primitives (see
        :meth:`_decode_plain_floats`), by index."""
        self._unit_rows: set[int] = set()
        """Those of them whose rows are all unit length (normals that need no normalising)."""
        self._views: dict[int, tuple[bytes, int, int]] = {}
        """Checked buffer views: (data, offset, length), by index (see :meth:`_view_bytes`)."""
        self._infos: dict[int, _AccessorInfo] = {}
        """Validated accessor headers, by index."""
        self._meshopt: dict[int, bytes] = {}
        """Decoded EXT_meshopt_compression buffer views, by index."""
        self._draco: dict[int, npt.NDArray[Any]] = {}
        """Accessors decoded from KHR_draco_mesh_compression data, by index."""

    # -- helpers -------------------------------------------------------------------------------

    def _array(self, key: str) -> list[Any]:
        """The top-level array ``key``, checked once (every reference goes through here, so
        checking it each time would make loading quadratic in the file's size)."""
        cached = self._arrays.get(key)
        if cached is not None:
            return cached
        v = self.doc.get(key, [])
        if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
            raise ModelError(f"'{key}' must be an array of objects")
        self._arrays[key] = v
        return v

    def _item(self, key: str, index: object, what: str) -> dict[str, Any]:
        items = self._arrays.get(key)
        if items is None:
            items = self._array(key)
        if type(index) is not int or not 0 <= index < len(items):
            singular = {"meshes": "mesh", "accessors": "accessor", "bufferViews": "buffer view"}
            raise ModelError(f"{what} refers to {singular.get(key, key[:-1])} {_short(index)}, "
                             "which does not exist "
                             f"(the file has {len(items)})")
        item: dict[str, Any] = items[index]
        return item

    def _charge(self, nbytes: int, what: str | Callable[[], str]) -> None:
        """Count ``nbytes`` of decoded data against the model's budget; called before the
        allocation it stands for. ``what`` (or what it returns) names it in the error."""
        self.decoded_bytes += nbytes
        if self.decoded_bytes > self.max_decoded_bytes:
            if callable(what):
                what = what()
            raise ModelError(f"{what} takes the model's decoded data to {self.decoded_bytes} "
                             f"bytes, over the decoded-bytes budget of {self.max_decoded_bytes} "
                             "bytes", code=LIMIT_EXCEEDED, budget=BUDGET_DECODED)

    def _buffer(self, index: object, what: str) -> bytes:
        buf = self._item("buffers", index, what)
        assert isinstance(index, int)
        if index in self._buffers:
            return self._buffers[index]
        length = buf.get("byteLength")
        if not _is_int(length) or length < 0:
            raise ModelError(f"buffer {index} has no valid byteLength")
        uri = buf.get("uri")
        if uri is None:
            if index != 0 or self.bin_chunk is None:
                raise ModelError(f"buffer {index} has no uri and there is no GLB BIN chunk")
            data = self.bin_chunk
        elif not isinstance(uri, str):
            raise ModelError(f"buffer {index} uri must be a string, not {_short(uri)}")
        elif uri.startswith("data:"):
            data = _decode_data_uri(uri, f"buffer {index}")
        else:
            data = self._read_external(uri, f"buffer {index}")
        if len(data) < length:
            raise ModelError(
                f"buffer {index} is {len(data)} bytes but declares byteLength {length}")
        self._buffers[index] = data
        return data

    def _read_external(self, uri: str, what: str) -> bytes:
        if self.base_dir is None:
            raise ModelError(f"{what} refers to external file {uri!r} but the model was not "
                             "loaded from a folder; use a .glb or embedded data: URIs")
        quoted = _short(uri)
        rel = urllib.parse.unquote(uri)
        if not rel or "\0" in rel:
            raise ModelError(f"{what} uri {quoted} is not a file name")
        if "://" in rel or os.path.isabs(rel):
            raise ModelError(f"{what} uri {quoted} must be a relative path next to the model")
        try:
            target = (self.base_dir / rel).resolve()
        except (OSError, ValueError, RuntimeError) as e:  # too long, unencodable, link loop
            raise ModelError(f"{what} uri {quoted} cannot be resolved ({e})") from None
        if self.base_dir not in target.parents:
            raise ModelError(f"{what} uri {quoted} points outside the model's folder")
        try:
            # Non-blocking, so that a FIFO cannot stall the open; not following links, so the
            # resolved (checked) path is the file read; fstat, so that what is checked is what
            # is read.
            fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
            try:
                info = os.fstat(fd)
                if not stat.S_ISREG(info.st_mode):
                    raise ModelError(f"{what} uri {quoted} is not a regular file")
                size = info.st_size
                if size > self.budget.bytes_left:
                    raise ModelError(f"{what} {quoted} ({size} bytes) takes the model over the "
                                     "file size budget", code=LIMIT_EXCEEDED, budget=BUDGET_BYTES)
                self.budget.bytes_left -= size
                with open(fd, "rb", closefd=False) as f:
                    return f.read(size)
            finally:
                os.close(fd)
        except ModelError:
            raise
        except (OSError, ValueError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise ModelError(f"{what}: cannot read {quoted}: {reason}") from None

    def _accessor_info(self, index: object, what: str) -> _AccessorInfo:
        """Validate accessor ``index``'s header and size it; refuses an accessor that alone is
        over the decoded-bytes budget. Reads nothing. Validated once per accessor."""
        if isinstance(index, int) and index in self._infos:
            return self._infos[index]
        acc = self._item("accessors", index, what)
        assert isinstance(index, int)
        ctype = acc.get("componentType")
        atype = acc.get("type")
        count = acc.get("count")
        if not _is_int(ctype) or ctype not in _COMPONENT_DTYPES:
            raise ModelError(f"accessor {index} has unknown componentType {_short(ctype)}")
        if not isinstance(atype, str) or atype not in _TYPE_SIZES:
            raise ModelError(f"accessor {index} has unknown type {_short(atype)}")
        if not _is_int(count) or count < 0:
            raise ModelError(f"accessor {index} has invalid count {_short(count)}")
        if atype.startswith("MAT") and ctype != 5126:
            raise ModelError(f"accessor {index}: padded integer matrices are not supported")
        dtype = _COMPONENT_DTYPES[ctype]
        ncomp = _TYPE_SIZES[atype]
        sparse_count = 0
        if "sparse" in acc:
            sparse = acc["sparse"]
            if not isinstance(sparse, dict) or not _is_int(sparse.get("count")):
                raise ModelError(f"accessor {index} has a malformed sparse object")
            sparse_count = sparse["count"]
            if not 1 <= sparse_count <= count:
                raise ModelError(f"accessor {index}: sparse count {sparse_count} is outside "
                                 f"1..{count} (its count)")
            idx_spec, val_spec = sparse.get("indices"), sparse.get("values")
            if not isinstance(idx_spec, dict) or not isinstance(val_spec, dict):
                raise ModelError(f"accessor {index} sparse needs indices and values")
            if idx_spec.get("componentType") not in _INDEX_TYPES:
                raise ModelError(f"accessor {index} sparse indices have an invalid "
                                 "componentType")
        elem_size = dtype.itemsize * ncomp
        info = _AccessorInfo(index, acc, dtype, atype, ncomp, count, sparse_count,
                             count * elem_size + sparse_count * (elem_size + 8))
        if info.size > self.max_decoded_bytes:
            raise ModelError(f"{info.describe(what)} is {info.size} bytes decoded, over the "
                             f"decoded-bytes budget of {self.max_decoded_bytes} bytes",
                             code=LIMIT_EXCEEDED, budget=BUDGET_DECODED)
        self._infos[index] = info
        return info

    def _accessor(self, index: object, what: str) -> npt.NDArray[Any]:
        """Decode accessor ``index`` to an (count, components) array (or (count,) scalars),
        its size charged to the decoded-bytes budget first."""
        info = self._accessor_info(index, what)
        self._charge(info.size, lambda: info.describe(what))
        acc, count, ncomp, dtype = info.spec, info.count, info.ncomp, info.dtype
        if info.index in self._draco:
            out = self._draco[info.index]
        elif "bufferView" in acc:
            out = self._read_view(acc, info.index, dtype, ncomp, count, info.elem_size)
        else:  # no bufferView: zeros (the spec's rule), usually with a sparse override
            out = np.zeros((count, ncomp), dtype=dtype)
        if info.sparse_count:
            out = self._apply_sparse(info, out)
        return out if ncomp > 1 else out.reshape(count)

    def _view_bytes(self, view_index: object, view: dict[str, Any]) -> tuple[bytes, int, int]:
        """Where buffer view ``view_index``'s bytes are: (data, offset, length). A view with
        ``EXT_meshopt_compression`` is decoded (once; its size charged to the decoded-bytes
        budget first) and read from its decoded bytes."""
        assert isinstance(view_index, int)  # _item refused anything else
        cached = self._views.get(view_index)
        if cached is not None:  # checked once: a CAD export has a view for each part's array
            return cached
        ext = view.get("extensions")
        if isinstance(ext, dict) and "EXT_meshopt_compression" in ext:
            data = self._meshopt_view(view_index, ext["EXT_meshopt_compression"])
            self._views[view_index] = data, 0, len(data)
            return self._views[view_index]
        v_off = view.get("byteOffset", 0)
        v_len = view.get("byteLength")
        if not _is_int(v_off) or not _is_int(v_len) or v_off < 0 or v_len < 0:
            raise ModelError(f"buffer view {view_index} has invalid byteOffset/byteLength")
        buf = self._buffer(view.get("buffer"), f"buffer view {view_index}")
        if v_off + v_len > len(buf):
            raise ModelError(f"buffer view {view_index} reads past buffer {view.get('buffer')} "
                             f"({v_off + v_len} > {len(buf)} bytes)")
        self._views[view_index] = buf, v_off, v_len
        return buf, v_off, v_len

    def _meshopt_view(self, view_index: int, ext: object) -> bytes:
        cached = self._meshopt.get(view_index)
        if cached is not None:
            return cached
        what = f"buffer view {view_index} (EXT_meshopt_compression)"
        if not isinstance(ext, dict):
            raise ModelError(f"{what} must be an object")
        count, stride = ext.get("count"), ext.get("byteStride")
        mode, filt = ext.get("mode"), ext.get("filter", "NONE")
        off, length = ext.get("byteOffset", 0), ext.get("byteLength")
        if not (_is_int(count) and count >= 0 and _is_int(stride) and 0 < stride <= 256
                and _is_int(off) and off >= 0 and _is_int(length) and length >= 0):
            raise ModelError(f"{what} needs valid count, byteStride, byteOffset and byteLength")
        if mode not in ("ATTRIBUTES", "TRIANGLES", "INDICES"):
            raise ModelError(f"{what} has unknown mode {_short(mode)}")
        if filt not in ("NONE", "OCTAHEDRAL", "QUATERNION", "EXPONENTIAL", "COLOR"):
            raise ModelError(f"{what} has unknown filter {_short(filt)}")
        if (mode == "ATTRIBUTES" and stride % 4) or (mode != "ATTRIBUTES" and stride not in (2, 4)):
            raise ModelError(f"{what}: byteStride {stride} is invalid for mode {mode}")
        self._charge(count * stride, what)
        buf = self._buffer(ext.get("buffer"), what)
        if off + length > len(buf):
            raise ModelError(f"{what} reads past its buffer ({off + length} > {len(buf)} bytes)")
        try:
            import meshopt

            decoded = meshopt.decode_gltf_buffer(buf[off:off + length], count, stride, mode,
                                                 None if filt == "NONE" else filt)
        except ImportError:
            raise ModelError("the model uses EXT_meshopt_compression, and the meshopt package "
                             "is not installed (pip install meshopt)") from None
        except (ValueError, RuntimeError) as e:
            raise ModelError(f"{what} does not decode: {_clip(str(e), 160)}") from None
        data = np.ascontiguousarray(decoded).tobytes()
        if len(data) != count * stride:
            raise ModelError(f"{what} decoded to {len(data)} bytes, not count × byteStride "
                             f"({count * stride})")
        self._meshopt[view_index] = data
        return data

    def _read_view(self, acc: dict[str, Any], index: int, dtype: np.dtype[Any], ncomp: int,
                   count: int, elem_size: int) -> npt.NDArray[Any]:
        view_index = acc.get("bufferView")
        view = self._item("bufferViews", view_index, f"accessor {index}")
        buf, v_off, v_len = self._view_bytes(view_index, view)
        a_off = acc.get("byteOffset", 0)
        if not _is_int(a_off) or a_off < 0:
            raise ModelError(f"accessor {index} has invalid byteOffset {_short(a_off)}")
        stride = view.get("byteStride")
        if stride is None or (_is_int(stride) and stride == 0):
            stride = elem_size  # tightly packed
        if not _is_int(stride) or stride < elem_size or stride > 252:
            raise ModelError(f"buffer view {view_index} byteStride {_short(stride)} is invalid "
                             f"for accessor {index} (element size {elem_size})")
        if a_off % dtype.itemsize:
            raise ModelError(f"accessor {index} byteOffset {a_off} is not aligned to its "
                             f"component size {dtype.itemsize}")
        needed = a_off + (stride * (count - 1) + elem_size if count else 0)
        if needed > v_len:
            raise ModelError(f"accessor {index} reads past buffer view {view_index} "
                             f"({needed} > {v_len} bytes)")
        start = v_off + a_off
        if stride == elem_size:
            raw = np.frombuffer(buf, dtype=dtype, count=count * ncomp, offset=start)
            return raw.reshape(count, ncomp)
        # Interleaved: a strided view over the bytes, then one copy into a packed array.
        strided = np.ndarray(
            shape=(count, ncomp), dtype=dtype, buffer=buf, offset=start,
            strides=(stride, dtype.itemsize),
        )
        return np.ascontiguousarray(strided)

    def _apply_sparse(self, info: _AccessorInfo, base: npt.NDArray[Any]) -> npt.NDArray[Any]:
        sparse = info.spec["sparse"]
        n, index = info.sparse_count, info.index
        idx_dtype = _COMPONENT_DTYPES[sparse["indices"]["componentType"]]
        sp_idx = self._read_view(sparse["indices"], index, idx_dtype, 1, n,
                                 idx_dtype.itemsize).reshape(n)
        sp_val = self._read_view(sparse["values"], index, info.dtype, info.ncomp, n,
                                 info.elem_size)
        if int(sp_idx.max()) >= info.count:
            raise ModelError(f"accessor {index} sparse index {int(sp_idx.max())} is past its "
                             f"count {info.count}")
        # Zeros or a packed copy are ours to write; a view of the file's bytes is copied.
        out = base if base.flags.writeable else base.copy()
        out[sp_idx.astype(np.int64)] = sp_val
        return out

    # -- structure -----------------------------------------------------------------------------

    def _materials(self) -> tuple[Material, ...]:
        return tuple(self._material(i, m) for i, m in enumerate(self._array("materials")))

    def _material(self, i: int, m: dict[str, Any]) -> Material:
        where = f"material {i}"
        pbr = m.get("pbrMetallicRoughness", {})
        if not isinstance(pbr, dict):
            raise ModelError(f"{where}: pbrMetallicRoughness must be an object")
        color = pbr.get("baseColorFactor", [1.0, 1.0, 1.0, 1.0])
        metallic = pbr.get("metallicFactor", 1.0)
        roughness = pbr.get("roughnessFactor", 1.0)
        if not (isinstance(color, list) and len(color) == 4 and all(map(_is_num, color))):
            raise ModelError(f"{where}: baseColorFactor must be 4 numbers")
        if not (_is_num(metallic) and _is_num(roughness)):
            raise ModelError(f"{where}: metallic/roughness factors must be numbers")
        emissive = m.get("emissiveFactor", [0.0, 0.0, 0.0])
        if not (isinstance(emissive, list) and len(emissive) == 3
                and all(_is_num(c) and c >= 0 for c in emissive)):
            raise ModelError(f"{where}: emissiveFactor must be 3 numbers >= 0")
        extensions = m.get("extensions", {})
        if not isinstance(extensions, dict):
            raise ModelError(f"{where}: extensions must be an object")
        strength = 1.0
        ext_strength = extensions.get("KHR_materials_emissive_strength")
        if ext_strength is not None:
            value = ext_strength.get("emissiveStrength", 1.0) if isinstance(
                ext_strength, dict) else None
            if not (_is_num(value) and value >= 0):
                raise ModelError(f"{where}: KHR_materials_emissive_strength emissiveStrength "
                                 "must be a number >= 0")
            strength = float(value)
        alpha_mode = m.get("alphaMode", "OPAQUE")
        cutoff = m.get("alphaCutoff", 0.5)
        if not (_is_num(cutoff) and cutoff >= 0):
            raise ModelError(f"{where}: alphaCutoff must be a number >= 0")
        name = _text(m["name"]) if isinstance(m.get("name"), str) else f"material_{i}"
        occlusion = self._texture_info(m.get("occlusionTexture"), f"{where} occlusionTexture",
                                       "strength")
        if occlusion is not None and not 0.0 <= occlusion.scale <= 1.0:
            raise ModelError(f"{where}: occlusionTexture strength {occlusion.scale} is "
                             "outside 0..1")
        return Material(
            name, (float(color[0]), float(color[1]), float(color[2]), float(color[3])),
            float(metallic), float(roughness), bool(m.get("doubleSided", False)),
            base_color_texture=self._texture_info(pbr.get("baseColorTexture"),
                                                  f"{where} baseColorTexture"),
            metallic_roughness_texture=self._texture_info(
                pbr.get("metallicRoughnessTexture"), f"{where} metallicRoughnessTexture"),
            normal_texture=self._texture_info(m.get("normalTexture"), f"{where} normalTexture",
                                              "scale"),
            occlusion_texture=occlusion,
            emissive=(float(emissive[0]) * strength, float(emissive[1]) * strength,
                      float(emissive[2]) * strength),
            emissive_texture=self._texture_info(m.get("emissiveTexture"),
                                                f"{where} emissiveTexture"),
            alpha_mode=alpha_mode if isinstance(alpha_mode, str) else repr(alpha_mode),
            alpha_cutoff=float(cutoff),
            unlit="KHR_materials_unlit" in extensions,
        )

    def _texture_info(self, info: object, what: str,
                      scalar: str | None = None) -> TextureInfo | None:
        """A material's textureInfo (with its ``KHR_texture_transform``), or None when it has
        none or farview cannot use it (no PNG/JPEG image, a ``TEXCOORD_n`` past 1)."""
        if info is None:
            return None
        if not isinstance(info, dict):
            raise ModelError(f"{what} must be an object")
        texcoord = info.get("texCoord", 0)
        if not _is_int(texcoord) or texcoord < 0:
            raise ModelError(f"{what} texCoord {_short(texcoord)} must be a non-negative "
                             "integer")
        value = info.get(scalar, 1.0) if scalar else 1.0
        if not _is_num(value):
            raise ModelError(f"{what} {scalar} must be a number")
        transform = IDENTITY_UV
        extensions = info.get("extensions")
        tt = extensions.get("KHR_texture_transform") if isinstance(extensions, dict) else None
        if tt is not None:
            if not isinstance(tt, dict):
                raise ModelError(f"{what} KHR_texture_transform must be an object")
            transform = _uv_transform(tt, what)
            texcoord = tt.get("texCoord", texcoord)
            if not _is_int(texcoord) or texcoord < 0:
                raise ModelError(f"{what} KHR_texture_transform texCoord must be a "
                                 "non-negative integer")
        texture = self._texture(info.get("index"), what)
        if texture is None:
            return None
        if texcoord > 1:
            log.info("model %r: %s uses TEXCOORD_%d; farview reads sets 0 and 1 only, drawn "
                     "without it", self.name, what, texcoord)
            return None
        return TextureInfo(texture, texcoord, transform, float(value))

    def _texture(self, index: object, what: str) -> Texture | None:
        """Texture ``index`` decoded (once per file), or None when it has no image farview can
        use (an image only in an extension, such as KTX2 or WebP, without a fallback)."""
        spec = self._item("textures", index, what)
        assert isinstance(index, int)
        if index in self._textures:
            return self._textures[index]
        source = spec.get("source")
        dds_source = None
        ext = spec.get("extensions")
        if isinstance(ext, dict) and isinstance(ext.get("MSFT_texture_dds"), dict):
            dds_source = ext["MSFT_texture_dds"].get("source")
            self._item("images", dds_source, f"texture {index} (MSFT_texture_dds)")
        texture = None
        if source is None and dds_source is None:
            log.info("model %r: texture %d has no PNG/JPEG/DDS source; drawn without it",
                     self.name, index)
        else:
            sampler: dict[str, Any] = {}
            if "sampler" in spec:
                sampler = self._item("samplers", spec["sampler"], f"texture {index}")
            mag = sampler.get("magFilter", LINEAR)
            min_ = sampler.get("minFilter", LINEAR_MIPMAP_LINEAR)
            wrap_s, wrap_t = sampler.get("wrapS", REPEAT), sampler.get("wrapT", REPEAT)
            if mag not in (NEAREST, LINEAR) or min_ not in _MIN_FILTERS:
                raise ModelError(f"texture {index}: sampler filter {mag!r}/{min_!r} is not a "
                                 "glTF filter")
            if wrap_s not in _WRAPS or wrap_t not in _WRAPS:
                raise ModelError(f"texture {index}: sampler wrap {wrap_s!r}/{wrap_t!r} is not a "
                                 "glTF wrap mode")
            # Textures that differ only by index (same image, same sampler) are one Texture:
            # decoded once, uploaded once.
            key = (source, dds_source, mag, min_, wrap_s, wrap_t)
            texture = self._by_image.get(key)
            if texture is None:
                compressed = (self._dds(dds_source, index, fallback=source is not None)
                              if dds_source is not None else None)
                if compressed is not None:
                    image = self._item("images", dds_source, f"texture {index}")
                    image_name = _name(image.get("name"), "")
                    # blocks farview cannot decode keep the PNG/JPEG beside them, undecoded:
                    # for a GL without BC7, and for a conversion to write again
                    fallback = (self._fallback_file(source) if source is not None
                                and compressed.format not in DECODED else None)
                    texture = Texture(image_name or f"image_{dds_source}", None, mag, min_,
                                      wrap_s, wrap_t, compressed=compressed, encoded=fallback)
                else:
                    image = self._item("images", source, f"texture {index}")
                    assert isinstance(source, int)
                    image_name = _name(image.get("name"), "")
                    pixels, encoded = self._image(source, image)
                    texture = Texture(image_name or f"image_{source}", pixels,
                                      mag, min_, wrap_s, wrap_t, encoded=encoded)
                self._by_image[key] = texture
        self._textures[index] = texture
        return texture

    def _dds(self, index: int, texture: int, fallback: bool) -> CompressedImage | None:
        """Image ``index``'s BC1/BC3/BC5/BC7 blocks (:mod:`host.texture_codec`), counted against the
        model's texture budget; a DDS file farview cannot use is an error, or, with a
        ``fallback`` PNG/JPEG source, a warning and None."""
        what = f"image {index}"
        data = self._image_bytes(what, self._item("images", index, f"texture {texture}"))
        try:
            compressed = read_dds(data, max_bytes=MAX_TEXTURE_BYTES - self._texture_bytes)
        except DdsError as e:
            if fallback:
                log.warning("model %r: texture %d: %s is not a DDS texture farview can use (%s);"
                            " its PNG/JPEG source is used", self.name, texture, what, e)
                return None
            raise ModelError(f"{what} (texture {texture}'s MSFT_texture_dds source) is not a "
                             f"DDS texture farview can use: {e}; re-export the model with BC1, "
                             "BC3, BC5 or BC7 DDS, PNG or JPEG textures") from None
        self._charge(compressed.nbytes, what)
        self._texture_bytes += compressed.nbytes
        return compressed

    def _fallback_file(self, index: object) -> tuple[str, bytes] | None:
        """Image ``index``'s file as it is (MIME type, bytes) when it is a PNG or JPEG by its
        first bytes; decoded only if ever needed (:meth:`Texture.rgba`)."""
        data = self._image_bytes(f"image {index}", self._item("images", index, "a texture"))
        kind = ("image/png" if data[:8] == b"\x89PNG\r\n\x1a\n"
                else "image/jpeg" if data[:3] == b"\xff\xd8\xff" else None)
        return (kind, bytes(data)) if kind is not None else None

    def _image_bytes(self, what: str, image: dict[str, Any]) -> bytes:
        """The bytes of an image's file (its data URI, external file or buffer view)."""
        uri, view_index = image.get("uri"), image.get("bufferView")
        if isinstance(uri, str):
            return (_decode_data_uri(uri, what) if uri.startswith("data:")
                    else self._read_external(uri, what))
        if uri is not None:
            raise ModelError(f"{what} uri must be a string, not {_short(uri)}")
        if view_index is not None:
            view = self._item("bufferViews", view_index, what)
            buf, off, length = self._view_bytes(view_index, view)
            return buf[off:off + length]
        raise ModelError(f"{what} has neither a uri nor a bufferView")

    def _image(self, index: int, image: dict[str, Any]
               ) -> tuple[npt.NDArray[np.uint8], tuple[str, bytes] | None]:
        """The image's RGBA pixels and its file (MIME type, bytes) when it was used at its own
        size."""
        what = f"image {index}"
        data = self._image_bytes(what, image)
        try:
            with Image.open(io.BytesIO(data), formats=list(_IMAGE_TYPES.values())) as img:
                size, kind = img.size, img.format
                pixels = image_pixels(img, what, self._charge, owner=f"model {self.name!r}")
                self._texture_bytes += pixels.nbytes
                if self._texture_bytes > MAX_TEXTURE_BYTES:
                    raise ModelError(f"{what} takes the model's decoded textures over "
                                     f"{MAX_TEXTURE_BYTES >> 20} MiB; use smaller textures")
        except (ModelError, MemoryError):
            raise
        except Exception as e:
            # Pillow's decoders refuse malformed data with many types (OSError, SyntaxError,
            # struct.error, EOFError, ValueError, DecompressionBombError, ...): all of them
            # mean an image farview cannot use.
            raise ModelError(f"{what} is not a PNG or JPEG image farview can decode "
                             f"({type(e).__name__}: {_clip(str(e), 160)}); re-export the model "
                             "with PNG or JPEG textures") from None
        encoded = None
        if pixels.shape[1::-1] == size and kind in ("PNG", "JPEG"):
            encoded = ("image/png" if kind == "PNG" else "image/jpeg", bytes(data))
        return np.ascontiguousarray(pixels), encoded

    def _primitive_header(self, prim: dict[str, Any], where: str) -> tuple[int, dict[str, Any]]:
        """A primitive's mode and attributes, checked; attributes are empty for lines, which
        are not drawn."""
        mode = prim.get("mode", _MODE_TRIANGLES)
        if not _is_int(mode) or not 0 <= mode <= _MODE_FAN:
            raise ModelError(f"{where} has unknown mode {_short(mode)}")
        if mode in _MODE_LINES:
            return mode, {}
        attrs = prim.get("attributes")
        if not isinstance(attrs, dict):
            raise ModelError(f"{where}: attributes must be an object")
        if "POSITION" not in attrs:
            return mode, {}  # glTF: a primitive without positions is not drawn
        return mode, attrs

    def _check_budgets(self, mesh_specs: list[Any], raw_nodes: list[Any]) -> None:
        """Before decoding anything: every accessor a primitive will decode fits the
        decoded-bytes budget on its own, and the model's triangles and vertices fit theirs.
        (The running total of decoded bytes is charged as accessors are decoded.)"""
        per_mesh = []
        vertices = 0
        morphed = 0  # primitives with morph targets
        for i, m in enumerate(mesh_specs):
            prims = m.get("primitives")
            if not isinstance(prims, list) or not all(isinstance(p, dict) for p in prims):
                raise ModelError(f"mesh {i} has no primitives array")
            triangles = 0
            for j, prim in enumerate(prims):
                where = f"mesh {i} primitive {j}"
                mode, attrs = self._primitive_header(prim, where)
                if "targets" in prim:
                    morphed += 1
                if not attrs:
                    continue
                for key in attrs:
                    if key in ("POSITION", "NORMAL") or str(key).startswith("TEXCOORD_"):
                        self._accessor_info(attrs[key], f"{where} {key}")
                n = self._accessor_info(attrs["POSITION"], f"{where} POSITION").count
                vertices += n
                if "indices" in prim:
                    n = self._accessor_info(prim["indices"], f"{where} indices").count
                # a point counts as a triangle does (ARR's "primitives")
                triangles += (n // 3 if mode == _MODE_TRIANGLES else n if mode == _MODE_POINTS
                              else max(n - 2, 0))
            per_mesh.append(triangles)
        self._log_not_drawn(morphed)
        instances = [0] * len(mesh_specs)
        lod_nodes = _lod_node_ids(raw_nodes)
        lod_meshes = set()
        for n_i, n in enumerate(raw_nodes):
            if "mesh" in n:
                self._item("meshes", n["mesh"], f"node {n_i}")
                if n_i in lod_nodes:
                    lod_meshes.add(n["mesh"])
                else:
                    instances[n["mesh"]] += 1
        # Each instance is drawn; a mesh no node uses is still decoded, so it counts once; a
        # coarser level of detail (MSFT_lod) is drawn instead of its mesh, so it does not.
        total = sum(t * max(k, 0 if i in lod_meshes else 1)
                    for i, (t, k) in enumerate(zip(per_mesh, instances, strict=True)))
        if total > self.max_triangles:
            raise ModelError(f"model {self.name!r} has {total} triangles, over the triangle "
                             f"budget of {self.max_triangles}", code=LIMIT_EXCEEDED,
                             budget=BUDGET_TRIANGLES)
        if vertices > self.max_vertices:
            raise ModelError(f"model {self.name!r} has {vertices} vertices, over the vertex "
                             f"budget of {self.max_vertices} (three per triangle of the triangle "
                             "budget)", code=LIMIT_EXCEEDED, budget=BUDGET_TRIANGLES)

    def _log_not_drawn(self, morphed: int) -> None:
        """Log what the file has that farview does not draw (the model shows its rest pose)."""
        parts = []
        for key, what in (("animations", "animation"), ("skins", "skin")):
            n = len(v) if isinstance(v := self.doc.get(key), list) else 0
            if n:
                parts.append(f"{n} {what}{'s' if n > 1 else ''}")
        if morphed:
            parts.append(f"the morph targets of {morphed} primitive{'s' if morphed > 1 else ''}")
        if parts:
            log.info("model %s: %s not drawn (farview shows its rest pose)", self.name,
                     ", ".join(parts))

    def _primitive(self, prim: dict[str, Any], mesh_index: int, j: int,
                   materials: tuple[Material, ...]) -> Primitive | None:
        where = f"mesh {mesh_index} primitive {j}"
        mode, attrs = self._primitive_header(prim, where)
        if not attrs:
            if mode in _MODE_LINES:
                log.info("%s: skipping a lines primitive (mode %s); only triangles and points "
                         "are drawn", where, mode)
            else:
                log.info("%s: skipping a primitive without POSITION (glTF: not drawn)", where)
            return None
        if mode == _MODE_POINTS:
            return self._points(prim, attrs, where, materials)
        extensions = prim.get("extensions")
        if isinstance(extensions, dict) and "KHR_draco_mesh_compression" in extensions:
            self._decode_draco(prim, attrs, extensions["KHR_draco_mesh_compression"], where)
        positions = self._float_attr(attrs["POSITION"], f"{where} POSITION", ("VEC3",),
                                     _POSITION_TYPES)
        nverts = len(positions)

        def attr(key: str, atypes: tuple[str, ...], ctypes: tuple[int, ...],
                 must_normalize: bool = False) -> npt.NDArray[np.float32] | None:
            if key not in attrs:
                return None
            arr = self._float_attr(attrs[key], f"{where} {key}", atypes, ctypes,
                                   normalized_only=must_normalize)
            if len(arr) != nverts:
                raise ModelError(f"{where}: {key} has {len(arr)} entries, POSITION {nverts}")
            return arr

        normals = attr("NORMAL", ("VEC3",), _DIRECTION_TYPES, True)
        if "indices" in prim:
            acc = self._item("accessors", prim["indices"], f"{where} indices")
            if acc.get("componentType") not in _INDEX_TYPES or acc.get("type") != "SCALAR":
                raise ModelError(f"{where}: indices accessor {prim['indices']} must be "
                                 "unsigned byte/short/int SCALAR")
            indices, top = self._indices(prim["indices"], f"{where} indices")
            if top >= nverts:
                raise ModelError(f"{where}: index {top} is past the {nverts} vertices")
        else:
            indices = np.arange(nverts, dtype=np.uint32)
        indices = _to_triangle_list(indices, mode)
        mat_index = prim.get("material")
        material = DEFAULT_MATERIAL if mat_index is None else None
        if material is None:
            if not _is_int(mat_index) or not 0 <= mat_index < len(materials):
                raise ModelError(f"{where} refers to material {_short(mat_index)}, which does "
                                 "not exist")
            material = materials[mat_index]
        extra: dict[str, npt.NDArray[np.float32] | None] = {}
        for n in sorted(material.texcoord_sets()):
            key = f"TEXCOORD_{n}"
            extra[key] = attr(key, ("VEC2",), _TEXCOORD_TYPES)
            if extra[key] is None:
                log.info("%s: its material's textures use %s, which it lacks; drawn without "
                         "them", where, key)
        colors = attr("COLOR_0", ("VEC3", "VEC4"), _COLOR_TYPES, True)
        if colors is not None:
            colors = np.clip(colors, 0.0, 1.0)
            if colors.shape[1] == 3:
                colors = np.concatenate([colors, np.ones((nverts, 1), np.float32)], axis=1)
            extra["COLOR_0"] = np.ascontiguousarray(colors)
        normal_map = material.normal_texture
        if normal_map is not None and normals is not None:
            extra["TANGENT"] = attr("TANGENT", ("VEC4",), _DIRECTION_TYPES, True)
        if normals is None:
            positions, normals, indices, extra = _compute_normals(
                positions, indices, self.missing_normals, extra)
        elif attrs["NORMAL"] not in self._unit_rows:
            normals = _normalize(normals)
        uv0, uv1 = extra.get("TEXCOORD_0"), extra.get("TEXCOORD_1")
        tangents = extra.get("TANGENT")
        if tangents is not None:
            tangents = np.ascontiguousarray(np.concatenate(
                [_normalize(np.ascontiguousarray(tangents[:, :3])),
                 np.where(tangents[:, 3:] < 0, -1.0, 1.0).astype(np.float32)], axis=1))
        elif normal_map is not None:
            uv = uv0 if normal_map.texcoord == 0 else uv1
            if uv is not None:
                tangents = generate_tangents(positions, normals, uv, indices)
        clusters = None
        if isinstance(extensions, dict) and BACK_CLUSTERS in extensions:
            clusters = self._back_clusters(extensions[BACK_CLUSTERS], mode, len(indices) // 3,
                                           where)
        return Primitive(positions, normals, indices, material, uv0, uv1,
                         extra.get("COLOR_0"), tangents, clusters=clusters)

    def _back_clusters(self, ext: object, mode: int, triangles: int, where: str
                       ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]] | None:
        """A primitive's :data:`BACK_CLUSTERS`, checked; an extension that does not hold is a
        warning (the primitive is drawn in full, as without it), never an error: it is an
        optimisation a file may carry."""
        what = f"{where} {BACK_CLUSTERS}"
        try:
            if mode != _MODE_TRIANGLES:
                raise ModelError("it is for triangle lists only")
            if not isinstance(ext, dict):
                raise ModelError("it must be an object")
            infos = {}
            for key, atype, ctype in (("starts", "SCALAR", 5125), ("spheres", "VEC4", 5126),
                                      ("cones", "VEC4", 5126)):
                info = self._accessor_info(ext.get(key), f"{what} {key}")
                if info.type != atype or info.spec.get("componentType") != ctype \
                        or info.spec.get("normalized"):
                    raise ModelError(f"{key} must be a {atype} accessor of "
                                     f"{'unsigned ints' if ctype == 5125 else 'floats'}")
                infos[key] = info
            count = infos["spheres"].count
            if infos["cones"].count != count or infos["starts"].count != count + 1:
                raise ModelError("it needs as many spheres as cones, and one start more")
            if not 1 <= count <= MAX_BACK_CLUSTERS_BASE + triangles // 32:
                raise ModelError(f"{count} clusters for {triangles} triangles are too many "
                                 f"(at most {MAX_BACK_CLUSTERS_BASE} + one for every 32 "
                                 "triangles: each is tested every frame)")
            starts = self._accessor(ext["starts"], f"{what} starts").reshape(-1).astype(np.int64)
            spheres = self._accessor(ext["spheres"], f"{what} spheres").astype(np.float64)
            cones = self._accessor(ext["cones"], f"{what} cones").astype(np.float64)
            if starts[0] != 0 or starts[-1] != triangles or (np.diff(starts) <= 0).any():
                raise ModelError(f"its starts must rise from 0 to the {triangles} triangles")
            if not (np.isfinite(spheres).all() and np.isfinite(cones).all()):
                raise ModelError("its spheres and cones must be finite")
            if (spheres[:, 3] < 0).any() or (cones[:, 3] < 0).any():
                raise ModelError("its radii and sines must not be negative")
            used = cones[:, 3] <= 1.0
            if (np.abs(np.linalg.norm(cones[used, :3], axis=1) - 1.0) > 1e-3).any():
                raise ModelError("its cones' axes must be unit vectors")
        except ModelError as e:
            if e.budget is not None:
                raise
            log.warning("model %r: %s does not hold (%s); the primitive is drawn without it",
                        self.name, what, e)
            return None
        return starts, np.concatenate([spheres, cones], axis=1)

    def _points(self, prim: dict[str, Any], attrs: dict[str, Any], where: str,
                materials: tuple[Material, ...]) -> Primitive:
        """A POINTS primitive: its positions (those ``indices`` pick, when it has them) and
        COLOR_0; no normals (points are drawn unlit)."""
        extensions = prim.get("extensions")
        if isinstance(extensions, dict) and "KHR_draco_mesh_compression" in extensions:
            raise ModelError(f"{where}: Draco-compressed point clouds are not supported; "
                             "convert the file without Draco compression")
        positions = self._float_attr(attrs["POSITION"], f"{where} POSITION", ("VEC3",),
                                     _POSITION_TYPES)
        colors = None
        if "COLOR_0" in attrs:
            colors = self._float_attr(attrs["COLOR_0"], f"{where} COLOR_0", ("VEC3", "VEC4"),
                                      _COLOR_TYPES, normalized_only=True)
            if len(colors) != len(positions):
                raise ModelError(f"{where}: COLOR_0 has {len(colors)} entries, POSITION "
                                 f"{len(positions)}")
            colors = np.clip(colors, 0.0, 1.0)
            if colors.shape[1] == 3:
                colors = np.concatenate([colors, np.ones((len(colors), 1), np.float32)], axis=1)
        if "indices" in prim:
            acc = self._item("accessors", prim["indices"], f"{where} indices")
            if acc.get("componentType") not in _INDEX_TYPES or acc.get("type") != "SCALAR":
                raise ModelError(f"{where}: indices accessor {prim['indices']} must be "
                                 "unsigned byte/short/int SCALAR")
            picked = self._accessor(prim["indices"], f"{where} indices")
            if len(picked) and int(picked.max()) >= len(positions):
                raise ModelError(f"{where}: index {int(picked.max())} is past the "
                                 f"{len(positions)} vertices")
            positions = positions[picked]
            colors = colors[picked] if colors is not None else None
        mat_index = prim.get("material")
        if mat_index is None:
            material = DEFAULT_MATERIAL
        elif _is_int(mat_index) and 0 <= mat_index < len(materials):
            material = materials[mat_index]
        else:
            raise ModelError(f"{where} refers to material {_short(mat_index)}, which does "
                             "not exist")
        return Primitive(np.ascontiguousarray(positions, dtype=np.float32),
                         np.zeros((0, 3), np.float32), np.zeros(0, np.uint32), material,
                         colors=None if colors is None else np.ascontiguousarray(colors),
                         points=True)

    def _decode_draco(self, prim: dict[str, Any], attrs: dict[str, Any], ext: object,
                      where: str) -> None:
        """Decode a primitive's ``KHR_draco_mesh_compression`` data into the accessors it
        stands for (read from :attr:`_draco` by :meth:`_accessor`). The accessors' declared
        sizes are checked against the budgets first, and what Draco decodes must match them."""
        what = f"{where} KHR_draco_mesh_compression"
        if not isinstance(ext, dict) or not isinstance(ext.get("attributes"), dict):
            raise ModelError(f"{what} needs a bufferView and an attributes object")
        view_index = ext.get("bufferView")
        view = self._item("bufferViews", view_index, what)
        targets: list[tuple[_AccessorInfo, int | None]] = []
        for name, uid in ext["attributes"].items():
            if name not in attrs:
                raise ModelError(f"{what} compresses {_short(name)}, which the primitive's "
                                 "attributes do not list")
            if not _is_int(uid) or uid < 0:
                raise ModelError(f"{what}: attribute id of {_short(name)} must be an integer")
            targets.append((self._accessor_info(attrs[name], f"{where} {name}"), uid))
        if "indices" in prim:
            targets.append((self._accessor_info(prim["indices"], f"{where} indices"), None))
        buf, off, length = self._view_bytes(view_index, view)
        try:
            import DracoPy

            mesh = DracoPy.decode(buf[off:off + length])
        except ImportError:
            raise ModelError("the model uses KHR_draco_mesh_compression, and the DracoPy "
                             "package is not installed (pip install DracoPy)") from None
        except Exception as e:  # DracoPy raises several types for data it cannot decode
            raise ModelError(f"{what}: the data in buffer view {view_index} does not decode "
                             f"as Draco ({type(e).__name__}: {_clip(str(e), 120)})") from None
        if not hasattr(mesh, "faces"):
            raise ModelError(f"{what}: the Draco data is a point cloud, not a triangle mesh")
        for info, uid in targets:
            if uid is None:
                data = np.asarray(mesh.faces).reshape(-1, 1)
                label = "indices"
            else:
                attribute = mesh.get_attribute_by_unique_id(uid)
                if attribute is None:
                    raise ModelError(f"{what}: the Draco data has no attribute with id {uid}")
                data = np.asarray(attribute["data"])
                data = data.reshape(len(data), -1) if data.size else data.reshape(0, info.ncomp)
                label = f"attribute {uid}"
            if data.shape != (info.count, info.ncomp):
                raise ModelError(f"{what}: Draco {label} decoded to {data.shape[0]} × "
                                 f"{data.shape[1]} values; accessor {info.index} declares "
                                 f"{info.count} × {info.ncomp}")
            if info.dtype.kind in "iu" and data.size and (
                    data.min() < np.iinfo(info.dtype).min or data.max() > np.iinfo(info.dtype).max):
                raise ModelError(f"{what}: Draco {label} has values outside accessor "
                                 f"{info.index}'s component type")
            self._draco[info.index] = np.ascontiguousarray(data.astype(info.dtype))

    def _decode_plain_floats(self, mesh_specs: list[Any]) -> None:
        """Decode the triangle primitives' small plain POSITION and NORMAL accessors (float
        VEC3, tightly packed in the GLB's BIN chunk, not sparse, not compressed) together, in
        groups: copied into one array a group, one finiteness check and one unit-length check
        over it, each accessor then a view of its rows. A CAD export's 100,000 small
        parts otherwise cost a dozen NumPy calls and their checks each (about a third of the
        load). Anything else, or anything these checks refuse, is left to :meth:`_float_attr`,
        which decodes it alone and words the error. Called after :meth:`_check_budgets` (which
        validated the primitives and the accessors' headers); skipped when the arrays would
        take the model over its decoded-bytes budget."""
        chunk = self.bin_chunk
        if chunk is None:
            return
        picked: list[tuple[int, int, int]] = []  # (accessor, first float in the chunk, count)
        normal_of: list[bool] = []
        seen: set[int] = set()
        size = 0
        for m in mesh_specs:
            for prim in m["primitives"]:
                if prim.get("mode", _MODE_TRIANGLES) != _MODE_TRIANGLES:
                    continue
                ext = prim.get("extensions")
                if isinstance(ext, dict) and "KHR_draco_mesh_compression" in ext:
                    continue
                attrs = prim["attributes"]
                for key in ("POSITION", "NORMAL"):
                    index = attrs.get(key)
                    if type(index) is not int or index in seen:
                        continue
                    seen.add(index)
                    info = self._infos.get(index)
                    if (info is None or info.sparse_count or info.type != "VEC3"
                            or info.dtype != np.float32):
                        continue
                    acc = info.spec
                    view_index, a_off = acc.get("bufferView"), acc.get("byteOffset", 0)
                    views = self._array("bufferViews")
                    if (type(view_index) is not int or not 0 <= view_index < len(views)
                            or type(a_off) is not int or a_off < 0 or a_off % 4):
                        continue
                    view = views[view_index]
                    if (view.get("byteStride") not in (None, 0, 12) or view.get("buffer") != 0
                            or "extensions" in view):  # compressed: not in the chunk as it is
                        continue
                    try:
                        buf, v_off, v_len = self._view_bytes(view_index, view)
                    except ModelError:
                        continue  # worded again when the primitive decodes it
                    if (buf is not chunk or a_off + 12 * info.count > v_len
                            or (v_off + a_off) % 4 or info.count > _DECODE_TOGETHER_VERTICES):
                        continue  # a big accessor decodes alone at no extra cost
                    picked.append((index, (v_off + a_off) // 4, 3 * info.count))
                    normal_of.append(key == "NORMAL")
                    size += info.size
        if len(picked) < 2 or self.decoded_bytes + size > self.max_decoded_bytes:
            return
        floats = np.frombuffer(chunk, dtype=np.float32, count=len(chunk) // 4)
        group: list[int] = []
        group_floats = 0
        for j, (_index, _first, count) in enumerate(picked):
            group.append(j)
            group_floats += count
            if group_floats >= _DECODE_GROUP_FLOATS or j == len(picked) - 1:
                self._decode_group(floats, [picked[k] for k in group],
                                   [normal_of[k] for k in group])
                group, group_floats = [], 0

    def _decode_group(self, floats: npt.NDArray[np.float32], picked: list[tuple[int, int, int]],
                      normal_of: list[bool]) -> None:
        """:meth:`_decode_plain_floats` for some of the accessors: copied into one array (the
        views' base), checked together."""
        counts = np.array([p[2] for p in picked], dtype=np.int64)
        ends = np.cumsum(counts)
        starts = ends - counts
        data = np.concatenate([floats[first:first + count] for _, first, count in picked])
        nonempty = counts > 0
        bad = np.zeros(len(picked), dtype=bool)
        with np.errstate(invalid="ignore"):  # (NaN: bad, as it compares false)
            bad[nonempty] = ~((np.maximum.reduceat(data, starts[nonempty]) <= MAX_VALUE)
                              & (np.minimum.reduceat(data, starts[nonempty]) >= -MAX_VALUE))
        rows = data.reshape(-1, 3)
        with np.errstate(invalid="ignore", over="ignore"):
            off_unit = np.abs(np.einsum("ij,ij->i", rows, rows) - 1.0)
        unit = np.zeros(len(picked), dtype=bool)
        unit[nonempty] = np.maximum.reduceat(off_unit, starts[nonempty] // 3) < 1e-5
        for j, (index, _first, count) in enumerate(picked):
            if bad[j]:
                continue  # decoded alone, which names the accessor holding NaN or infinity
                # or a value past MAX_VALUE
            s0 = int(starts[j]) // 3
            self._plain_floats[index] = rows[s0:s0 + count // 3]
            if normal_of[j] and unit[j] and count:
                self._unit_rows.add(index)

    def _indices(self, index: object, what: str) -> tuple[npt.NDArray[np.uint32], int]:
        """An indices accessor as uint32 and its largest index (-1 when empty); decoded once,
        however many primitives share it. Copied when it is a view of a file buffer (which
        would keep the whole buffer in memory for it); a view of decoded data (a compressed
        view's, which holds only these indices) is kept as it is.

        Accessors that read the same bytes the same way (same buffer view, offset, count and
        component type; not sparse, not Draco) share one array: a CAD export often gives each
        of its thousands of parts an accessor of its own on one shared topology."""
        info = self._accessor_info(index, what)
        key: object = info.index
        acc = info.spec
        if not info.sparse_count and info.index not in self._draco:
            view, offset = acc.get("bufferView"), acc.get("byteOffset", 0)
            if _is_int(view) and _is_int(offset):
                key = ("view", view, offset, info.count, info.dtype.str)
        cached = self._index_arrays.get(key)
        if cached is not None:
            return cached
        raw = self._accessor(index, what)
        owner: object = raw
        while isinstance(owner, np.ndarray) and owner.base is not None:
            owner = owner.base
        in_file = any(owner is b for b in self._buffers.values())
        indices = (np.array(raw, dtype=np.uint32) if in_file or raw.dtype != np.uint32
                   else raw)
        indices.flags.writeable = False  # shared by every primitive that uses it
        out = (indices, int(indices.max()) if len(indices) else -1)
        self._index_arrays[key] = out
        return out

    def _float_attr(self, index: object, what: str, atypes: tuple[str, ...],
                    ctypes: tuple[int, ...],
                    normalized_only: bool = False) -> npt.NDArray[np.float32]:
        """A vertex attribute as float32 rows: float as it is, integer components dequantized
        (``KHR_mesh_quantization``): normalized ones to 0..1 (unsigned) or -1..1 (signed),
        others as their integer values. ``normalized_only``: integers must be normalized."""
        acc = self._item("accessors", index, what)
        ctype, atype = acc.get("componentType"), acc.get("type")
        if atype not in atypes or ctype not in ctypes:
            raise ModelError(f"{what}: accessor {index} must be {' or '.join(atypes)} of "
                             f"{', '.join(_COMPONENT_NAMES[c] for c in ctypes)}")
        normalized = acc.get("normalized", False) is True
        if ctype != 5126 and normalized_only and not normalized:
            raise ModelError(f"{what}: accessor {index}: integer components must be normalized")
        ready = self._plain_floats.get(index) if _is_int(index) else None
        if ready is not None:
            info = self._accessor_info(index, what)
            self._charge(info.size, lambda: info.describe(what))
            return ready
        raw = self._accessor(index, what)
        # one copy, into an array of its own: no view of the file's bytes (which would keep
        # the whole file in memory) and no base array behind it (a part's arrays are small)
        arr = np.array(raw.reshape(len(raw), _TYPE_SIZES[atype]), dtype=np.float32)
        if ctype != 5126 and normalized:
            bits = _COMPONENT_DTYPES[ctype].itemsize * 8
            if ctype in (5120, 5122):
                arr = np.maximum(arr / np.float32(2 ** (bits - 1) - 1), np.float32(-1.0))
            else:
                arr = arr / np.float32(2 ** bits - 1)
        worst = worst_value(arr)
        if worst is not None:
            if math.isnan(worst):
                raise ModelError(f"{what}: accessor {index} contains NaN or infinite values")
            raise ModelError(f"{what}: accessor {index} holds {worst:.3g}, past the ±{MAX_VALUE:.0e} "
                             "that any model's values are within: its data is damaged")
        return arr

    def load(self) -> Model:
        required = self.doc.get("extensionsRequired", [])
        if not isinstance(required, list) or not all(isinstance(x, str) for x in required):
            raise ModelError("extensionsRequired must be an array of strings")
        unsupported = [x for x in required if x not in SUPPORTED_EXTENSIONS]
        if unsupported:
            raise ModelError("model requires extensions farview does not support: "
                             + ", ".join(_clip(x, 60) for x in unsupported)
                             + " (supported: " + ", ".join(SUPPORTED_EXTENSIONS) + ")")
        mesh_specs = self._array("meshes")
        raw_nodes = self._array("nodes")
        self._check_budgets(mesh_specs, raw_nodes)
        self._decode_plain_floats(mesh_specs)
        materials = self._materials()
        meshes = []
        for i, m in enumerate(mesh_specs):
            prims = [self._primitive(p, i, j, materials) for j, p in enumerate(m["primitives"])]
            name = _text(m["name"]) if isinstance(m.get("name"), str) else f"mesh_{i}"
            meshes.append(Mesh(name, tuple(p for p in prims if p is not None)))
        self._forget_geometry_json()
        del mesh_specs
        lights = self._lights()
        meshes, lod_nodes = _attach_lods(meshes, raw_nodes)
        nodes = tuple(self._node(i, n, meshes, lights) for i, n in enumerate(raw_nodes))
        # a level-of-detail node's geometry now lives in its mesh's primitives (Primitive.lods)
        level_meshes = {id(n.mesh) for n in nodes if n.index in lod_nodes and n.mesh is not None}
        nodes = tuple(dataclasses.replace(n, mesh=None) if n.index in lod_nodes else n
                      for n in nodes)
        # and its mesh is not the model's (unless some other node draws it): kept, it held a
        # second copy of every level (a converted 20 M-triangle model: about 100 MB)
        level_meshes -= {id(n.mesh) for n in nodes if n.mesh is not None}
        roots = self._roots(nodes)
        asset = self.doc.get("asset")
        if not isinstance(asset, dict):  # (checked when the file was parsed)
            asset = {}
        return Model(self.name, nodes, roots,
                     tuple(m for m in meshes if id(m) not in level_meshes), materials,
                     (_clip(str(asset.get("version", "")), 40),
                      _clip(str(asset.get("generator", "")), 200)))

    def _forget_geometry_json(self) -> None:
        """Every primitive is decoded: free the JSON and the caches that described the
        geometry (accessors, buffer views, meshes) before the nodes are made. A 100,000-part
        file's accessors and buffer views alone are about 250 MB of Python objects, and its
        nodes would otherwise be made on top of them."""
        for key in ("accessors", "bufferViews", "meshes"):
            if isinstance(self.doc.get(key), list):
                self.doc[key] = []
            self._arrays.pop(key, None)
        self._infos.clear()
        self._views.clear()
        self._plain_floats.clear()
        self._unit_rows.clear()
        self._index_arrays.clear()
        self._meshopt.clear()
        self._draco.clear()

    def _lights(self) -> list[Light | None]:
        """The file's ``KHR_lights_punctual`` lights, by index."""
        ext = self.doc.get("extensions")
        spec = ext.get("KHR_lights_punctual") if isinstance(ext, dict) else None
        if spec is None:
            return []
        raw = spec.get("lights") if isinstance(spec, dict) else None
        if not isinstance(raw, list) or not all(isinstance(x, dict) for x in raw):
            raise ModelError("KHR_lights_punctual lights must be an array of objects")
        out: list[Light | None] = []
        for i, x in enumerate(raw):
            if x.get("type") not in LIGHT_TYPES and isinstance(x.get("type"), str):
                # a later version of the extension may add types: the light is left out
                log.warning("KHR_lights_punctual light %d has type %s, which farview does not "
                            "know; it is left out", i, _short(x.get("type")))
                out.append(None)
                continue
            spot = x.get("spot", {}) if x.get("type") == "spot" else {}
            try:
                if not isinstance(spot, dict):
                    raise ProtocolError("spot must be an object")
                color = x.get("color", [1.0, 1.0, 1.0])
                out.append(Light(
                    type=x.get("type"), color=color, intensity=x.get("intensity", 1.0),
                    range=x.get("range"), inner_cone=spot.get("innerConeAngle", 0.0),
                    outer_cone=spot.get("outerConeAngle", math.pi / 4)))
            except (ProtocolError, TypeError) as e:
                raise ModelError(f"KHR_lights_punctual light {i}: {e}") from None
        return out

    def _node(self, i: int, n: dict[str, Any], meshes: Sequence[Mesh],
              lights: Sequence[Light | None] = ()) -> Node:
        name = _name(n.get("name"), f"node_{i}")
        light = None
        ext = n.get("extensions")
        ref = ext.get("KHR_lights_punctual") if isinstance(ext, dict) else None
        if ref is not None:
            index = ref.get("light") if isinstance(ref, dict) else None
            if not _is_int(index) or not 0 <= index < len(lights):
                raise ModelError(f"node {i} ({name}) refers to light {_short(index)}, which "
                                 f"does not exist (the file has {len(lights)})")
            light = lights[index]
        children = n.get("children", [])
        if not isinstance(children, list):
            raise ModelError(f"node {i}: children must be an array")
        for c in children:
            self._item("nodes", c, f"node {i} child")

        def vec(key: str, size: int, default: tuple[float, ...]) -> tuple[float, ...]:
            v = n.get(key)
            if v is None and key not in n:
                return default
            if not (isinstance(v, list) and len(v) == size and all(map(_is_num, v))):
                raise ModelError(f"node {i} ({name}): {key} must be {size} finite numbers")
            # fresh floats (``* 1.0`` makes one; ``float()`` of a float returns the parser's):
            # one of the parser's kept alive pins its block of the JSON's freed objects
            out = tuple(float(x) * 1.0 for x in v)
            # the default itself where the file spells it out (CAD exports often write every
            # node's unit scale): one shared tuple, not four objects a node
            return default if out == default else out

        matrix = vec("matrix", 16, ()) if "matrix" in n else None
        rotation = vec("rotation", 4, (0.0, 0.0, 0.0, 1.0))
        length2 = sum(c * c for c in rotation)
        if length2 < 1e-12:
            raise ModelError(f"node {i} ({name}): rotation is a zero quaternion")
        if not math.isfinite(length2):
            raise ModelError(f"node {i} ({name}): rotation is too large to normalise; glTF "
                             "rotations are unit quaternions")
        t, s = vec("translation", 3, (0.0, 0.0, 0.0)), vec("scale", 3, (1.0, 1.0, 1.0))
        mesh = meshes[n["mesh"]] if "mesh" in n else None
        if mesh is not None and mesh.name == name:
            name = mesh.name  # one string for both: CAD exports name a part's node and mesh alike
        elif mesh is not None and name == f"node_{i}" and mesh.name != f"mesh_{n['mesh']}":
            # a node without a name takes its mesh's ("Wheels", where viewers said "node_4"
            # of the milk truck's wheels): the name a part is picked, found and shown by
            name = mesh.name
        return Node(
            i, name, cast("tuple[float, float, float]", t),
            cast("tuple[float, float, float, float]", rotation),
            cast("tuple[float, float, float]", s), matrix, mesh, tuple(children), light,
        )

    def _roots(self, nodes: tuple[Node, ...]) -> tuple[int, ...]:
        parent: dict[int, int] = {}
        for node in nodes:
            for c in node.children:
                if c == node.index:
                    raise ModelError(f"node {c} lists itself as a child; the node hierarchy "
                                     "must be a forest")
                if c in parent:
                    raise ModelError(f"node {c} has more than one parent; the node hierarchy "
                                     "must be a forest")
                parent[c] = node.index
        # With one parent each, a cycle is a loop of parent links. Walk up from every node,
        # marking the path; a walk ends at a root or at a node already known to lead to one,
        # so each node is walked once (linear in the number of nodes).
        on_path, leads_to_root = 1, 2
        state: dict[int, int] = {}
        for start in parent:
            path = []
            cur = start
            while cur in parent and state.get(cur) != leads_to_root:
                if state.get(cur) == on_path:
                    raise ModelError(f"node hierarchy has a cycle through node {cur}")
                state[cur] = on_path
                path.append(cur)
                cur = parent[cur]
            for n in path:
                state[n] = leads_to_root
        scenes = self._array("scenes")
        if scenes:
            index = self.doc.get("scene", 0)
            scene = self._item("scenes", index, "the default scene")
            roots = scene.get("nodes", [])
            if not isinstance(roots, list):
                raise ModelError(f"scene {index}: nodes must be an array of node indices")
            listed: set[int] = set()
            for r in roots:
                self._item("nodes", r, f"scene {index}")
                if r in parent:
                    raise ModelError(f"scene {index} lists node {r}, which is not a root")
                if r in listed:
                    # Each listing would instantiate the node's whole subtree again.
                    raise ModelError(f"scene {index} lists node {r} more than once")
                listed.add(r)
            return tuple(roots)
        return tuple(n.index for n in nodes if n.index not in parent)


def _uv_transform(tt: dict[str, Any], what: str) -> tuple[float, float, float, float, float, float]:
    """``KHR_texture_transform``'s matrix ``translation · rotation · scale`` (as its
    specification writes it in GLSL), top two rows, row-major."""
    offset, scale = tt.get("offset", [0.0, 0.0]), tt.get("scale", [1.0, 1.0])
    rotation = tt.get("rotation", 0.0)
    for key, v in (("offset", offset), ("scale", scale)):
        if not (isinstance(v, list) and len(v) == 2 and all(map(_is_num, v))):
            raise ModelError(f"{what} KHR_texture_transform {key} must be 2 numbers")
    if not _is_num(rotation):
        raise ModelError(f"{what} KHR_texture_transform rotation must be a number")
    c, s = math.cos(rotation), math.sin(rotation)
    # GLSL's mat3(c, s, 0, -s, c, 0, 0, 0, 1) is column-major: rows (c, -s) and (s, c).
    m = (np.array([[1, 0, offset[0]], [0, 1, offset[1]], [0, 0, 1]], dtype=np.float64)
         @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
         @ np.diag([scale[0], scale[1], 1.0]))
    return (float(m[0, 0]), float(m[0, 1]), float(m[0, 2]),
            float(m[1, 0]), float(m[1, 1]), float(m[1, 2]))


def image_pixels(img: Image.Image, what: str, charge: Callable[[int, str], None] | None = None,
                 *, owner: str = "") -> npt.NDArray[np.uint8]:
    """An opened image's RGBA pixels, refused over :data:`MAX_IMAGE_PIXELS` before it is
    decoded (:class:`ModelError`) and reduced to :data:`MAX_TEXTURE_SIDE` a side; ``charge``
    counts the bytes decoding holds (4 a pixel) against a budget first. ``owner`` names the
    model in the log."""
    w, h = img.size
    if w * h > MAX_IMAGE_PIXELS:
        raise ModelError(f"{what} declares {w}×{h} pixels, over the limit of "
                         f"{MAX_IMAGE_PIXELS} pixels")
    if charge is not None:  # decoding holds the image at up to 4 bytes a pixel (RGBA)
        charge(w * h * 4, f"{what} ({w}×{h} pixels)")
    factor = -(-max(w, h) // MAX_TEXTURE_SIDE)
    rgba = img.convert("RGBA")
    if factor > 1:
        rgba = rgba.reduce(factor)
        log.info("%s: %s reduced from %d×%d to %d×%d", owner or "image", what, w, h, *rgba.size)
    return np.ascontiguousarray(np.asarray(rgba, dtype=np.uint8))


def _decode_data_uri(uri: str, what: str) -> bytes:
    header, sep, payload = uri.partition(",")
    if not sep or not header.endswith(";base64"):
        raise ModelError(f"{what}: only base64 data: URIs are supported")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ModelError(f"{what}: data: URI is not valid base64") from None


MAX_LOD_LEVELS = 8
"""At most this many ``MSFT_lod`` levels are used (the renderer draws four)."""


def _lod_ids(node: object) -> list[int]:
    """A raw node's ``MSFT_lod`` ids (coarser levels, finest first); [] without (or with a
    malformed) extension: levels of detail are optional, and a viewer that lacks them draws
    the node's own mesh."""
    ext = node.get("extensions") if isinstance(node, dict) else None
    lod = ext.get("MSFT_lod") if isinstance(ext, dict) else None
    ids = lod.get("ids") if isinstance(lod, dict) else None
    if not isinstance(ids, list) or not all(_is_int(i) for i in ids):
        return []
    return list(ids)


def _lod_node_ids(raw_nodes: list[Any]) -> set[int]:
    """Nodes that are some node's ``MSFT_lod`` level (and not that node itself)."""
    return {i for k, n in enumerate(raw_nodes) for i in _lod_ids(n)
            if 0 <= i < len(raw_nodes) and i != k and "mesh" in raw_nodes[i]}


def _coarser(prims: tuple[Primitive, ...], levels: list[tuple[Primitive, ...]]) -> int:
    """How many of ``levels``, from the first, have a triangle mesh for each of ``prims`` with
    fewer triangles than the level before it (a "level" as large as the mesh would be a way
    round the triangle budget, which does not count levels). Levels after the first that is
    not are not used: a simplifier that stalls makes a last level as big as the one before."""
    previous = prims
    wanted = [{name for name, _ in p.vertex_columns()} for p in prims]
    for n, level in enumerate(levels):
        if len(level) != len(prims) or any(p.points for p in level) or any(
                p.triangle_count >= q.triangle_count for p, q in zip(level, previous, strict=True)
        ) or any(not names <= {name for name, _ in p.vertex_columns()}
                 for p, names in zip(level, wanted, strict=True)):
            return n  # (or a level without an attribute its mesh has: texture coordinates)
        previous = level
    return len(levels)


def _attach_lods(meshes: list[Mesh], raw_nodes: list[Any]) -> tuple[list[Mesh], set[int]]:
    """Move ``MSFT_lod`` levels into the primitives of the meshes they stand for: a level's
    mesh must have as many primitives as the node's own mesh, each a triangle mesh with fewer
    triangles than the level before (levels from the first that is not are left out; with none
    left the node keeps only its own mesh, and the renderer makes levels itself). Returns the
    meshes and the level nodes (drawn through their mesh, never on their own)."""
    lod_nodes = _lod_node_ids(raw_nodes)
    done: set[int] = set()
    for k, n in enumerate(raw_nodes):
        ids = [i for i in _lod_ids(n) if i in lod_nodes]
        base = n.get("mesh") if isinstance(n, dict) else None
        if not ids or not _is_int(base) or base in done or k in lod_nodes:
            continue
        prims = meshes[base].primitives
        levels = [meshes[raw_nodes[i]["mesh"]].primitives for i in ids[:MAX_LOD_LEVELS]]
        usable = _coarser(prims, levels)
        if usable < len(levels):
            log.info("node %d: MSFT_lod level %d does not match its mesh's primitives or is not "
                     "coarser than the one before; %s", k, usable + 1,
                     f"using the {usable} before it" if usable else "ignoring them all")
        if not usable:
            continue
        levels = levels[:usable]
        done.add(base)
        meshes[base] = Mesh(meshes[base].name, tuple(
            dataclasses.replace(p, lods=tuple(
                (_level_rows(p, lv[j]), lv[j].indices) for lv in levels))
            for j, p in enumerate(prims)))
    return meshes, lod_nodes


def _level_rows(base: Primitive, level: Primitive) -> npt.NDArray[np.float32]:
    """A level's vertices as rows of its mesh's :meth:`Primitive.vertex_columns` (the level
    has each of them: :func:`_coarser`)."""
    have = dict(level.vertex_columns())
    return np.ascontiguousarray(np.concatenate([have[name] for name, _ in base.vertex_columns()],
                                               axis=1), dtype=np.float32)


def _to_triangle_list(indices: npt.NDArray[np.uint32], mode: int) -> npt.NDArray[np.uint32]:
    if mode == _MODE_TRIANGLES:
        if len(indices) % 3 == 0:
            return indices  # the usual case: no view (and no second array object a part)
        return np.ascontiguousarray(indices[: len(indices) - len(indices) % 3])
    n = len(indices) - 2
    if n <= 0:
        return np.zeros(0, dtype=np.uint32)
    k = np.arange(n)
    if mode == _MODE_STRIP:
        # Alternate the winding so every triangle keeps the strip's orientation.
        even = k % 2 == 0
        a = indices[k]
        b = np.where(even, indices[k + 1], indices[k + 2])
        c = np.where(even, indices[k + 2], indices[k + 1])
    else:  # fan
        a = np.full(n, indices[0])
        b, c = indices[k + 1], indices[k + 2]
    return np.stack([a, b, c], axis=1).reshape(-1).astype(np.uint32)


def _normalize(v: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Unit-length rows (rows shorter than 1e-20 as they are); a row that is not finite becomes
    zero. Each row is first divided by its largest component, so that squaring cannot overflow
    float32 (it would for components past 1.8e19, e.g. the cross product of large triangles).
    Rows that are all unit length already (a file's normals, usually) are returned as they
    are, after one cheap check."""
    with np.errstate(invalid="ignore", over="ignore"):
        sq = np.einsum("ij,ij->i", v, v)
        if len(sq):
            off = float(np.abs(sq - 1.0).max())  # NaN/inf compare False: the slow path
            if off < 1e-5:
                return v
            if off < 0.5:  # near unit (8-bit quantized normals): no overflow, no zero rows
                return np.asarray(v / np.sqrt(sq)[:, None], dtype=np.float32)

        big = np.abs(v).max(axis=1, keepdims=True)
        u = v / np.where(big > 0, big, 1)
        n = np.sqrt((u * u).sum(axis=1, keepdims=True))
        length = big * n  # |v|; inf where that overflows, which the test below allows
        out: npt.NDArray[np.float32] = np.where(
            length > 1e-20, u / np.where(n > 0, n, 1), v).astype(np.float32, copy=False)
    out[~np.isfinite(out).all(axis=1)] = 0.0
    return out


_Extra = dict[str, "npt.NDArray[np.float32] | None"]


def _compute_normals(
    positions: npt.NDArray[np.float32], indices: npt.NDArray[np.uint32], how: str,
    extra: _Extra | None = None,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.uint32], _Extra]:
    """Normals for a primitive without NORMAL: flat (the spec's rule) or area-weighted smooth.
    Flat normals give every triangle its own vertices; the other per-vertex arrays in
    ``extra`` (texture coordinates, colours) are re-indexed to match."""
    extra = {} if extra is None else extra
    tri = indices.reshape(-1, 3)
    p0, p1, p2 = positions[tri[:, 0]], positions[tri[:, 1]], positions[tri[:, 2]]
    # Coordinates near float32's limits overflow here; such faces get a zero normal.
    with np.errstate(invalid="ignore", over="ignore"):
        face = np.cross(p1 - p0, p2 - p0)  # length = 2·area: larger faces weigh more when smooth
        if how == "smooth":  # each vertex: the sum of its faces' (bincount: 3 times as fast
            n = len(positions)  # as np.add.at)
            acc = np.stack([sum(np.bincount(tri[:, c], weights=face[:, k], minlength=n)
                                for c in range(3)) for k in range(3)], axis=1)
            return positions, _normalize(acc.astype(positions.dtype)), indices, extra
    # Flat: every triangle gets its own three vertices so each can carry the face normal.
    flat_pos = positions[indices]
    flat_n = np.repeat(_normalize(face.astype(np.float32)), 3, axis=0)
    flat_extra = {k: None if v is None else np.ascontiguousarray(v[indices])
                  for k, v in extra.items()}
    return flat_pos, flat_n, np.arange(len(indices), dtype=np.uint32), flat_extra


def generate_tangents(positions: npt.NDArray[np.float32], normals: npt.NDArray[np.float32],
                      uv: npt.NDArray[np.float32],
                      indices: npt.NDArray[np.uint32]) -> npt.NDArray[np.float32]:
    """Per-vertex tangents (xyz, handedness w) for a normal map, from the triangles' texture
    coordinates: each triangle's ∂P/∂u and ∂P/∂v, summed over the triangles that share a
    vertex, ∂P/∂u made orthogonal to the normal (Lengyel's method; MikkTSpace, which glTF
    suggests, differs in how it weighs and splits vertices, not in direction on smooth
    meshes). w is +1 where cross(normal, tangent) points up the image (glTF's v runs down),
    as the bitangent is ``cross(normal, tangent.xyz) * w``."""
    tri = indices.reshape(-1, 3).astype(np.int64)
    p0, p1, p2 = (positions[tri[:, k]].astype(np.float64) for k in range(3))
    w0, w1, w2 = (uv[tri[:, k]].astype(np.float64) for k in range(3))
    e1, e2, d1, d2 = p1 - p0, p2 - p0, w1 - w0, w2 - w0
    r = d1[:, 0] * d2[:, 1] - d2[:, 0] * d1[:, 1]
    ok = np.abs(r) > 1e-20
    inv = np.where(ok, 1.0 / np.where(ok, r, 1.0), 0.0)[:, None]
    sdir = (e1 * d2[:, 1:2] - e2 * d1[:, 1:2]) * inv  # ∂P/∂u
    tdir = (e2 * d1[:, 0:1] - e1 * d2[:, 0:1]) * inv  # ∂P/∂v
    n = len(positions)
    tan_u, tan_v = np.zeros((n, 3)), np.zeros((n, 3))
    for k in range(3):
        np.add.at(tan_u, tri[:, k], sdir)
        np.add.at(tan_v, tri[:, k], tdir)
    nrm = normals.astype(np.float64)
    t = tan_u - nrm * (nrm * tan_u).sum(axis=1, keepdims=True)
    length = np.linalg.norm(t, axis=1, keepdims=True)
    # No usable direction (degenerate uv): any unit vector perpendicular to the normal.
    helper = np.where(np.abs(nrm[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
    fallback = np.cross(nrm, helper)
    fallback /= np.maximum(np.linalg.norm(fallback, axis=1, keepdims=True), 1e-20)
    t = np.where(length > 1e-12, t / np.maximum(length, 1e-20), fallback)
    w = np.where((np.cross(nrm, t) * -tan_v).sum(axis=1) < 0.0, -1.0, 1.0)
    return np.ascontiguousarray(np.concatenate([t, w[:, None]], axis=1), dtype=np.float32)


def node_world_matrices(model: Model) -> dict[int, transforms.Mat4]:
    """World matrix of every node reachable from the model's roots (for checks and tools)."""
    out: dict[int, transforms.Mat4] = {}
    stack: list[tuple[int, transforms.Mat4]] = [(r, np.eye(4)) for r in model.roots]
    with np.errstate(invalid="ignore", over="ignore"):  # huge transforms give inf, not errors
        while stack:
            i, parent_m = stack.pop()
            if i in out:  # a Model built by hand may not be a forest: visit each node once
                continue
            m = parent_m @ model.nodes[i].local_matrix()
            out[i] = m
            stack.extend((c, m) for c in model.nodes[i].children)
    return out

