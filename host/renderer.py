"""Offscreen renderer: draws a :class:`~host.scene.Scene` for one or two views into an FBO and
reads it back as BT.601 YUV 4:2:0 planes (what the encoder takes) or as RGBA.

Owns every GL object it creates: the main framebuffer (luma, chroma, depth/stencil), the
half-resolution chroma framebuffer of the GPU chroma path, the shader programs, per-mesh
vertex buffers (cached by ``Mesh.key``, freed when no entity uses the mesh any more) and base
colour textures (cached by ``Texture.key``, freed with the last mesh that uses them).

Materials: each primitive is drawn by the program variant of its material's features (a set of
``#define``s: which textures, vertex colours, alpha mask or blend; compiled when first needed;
see ``shaders/mesh.vert.glsl``). Plain materials (no texture) keep the cheapest variant, lit
per vertex on a software rasteriser, unless a part has more triangles than pixels under it
(:data:`DENSE_TRIANGLES_PER_PIXEL`); textured ones are always lit per pixel (their colour
varies across a triangle, so vertex lighting would smear it). BLEND materials are drawn after
the opaque parts, part by part from back to front, without depth writes; MASK materials
discard below their cutoff. An entity's material edit (``ResolvedState.material``) replaces
colour, metallic, roughness, emissive or unlit for its primitives.

Lighting (``scene.lighting``): a key and a fill light, up to 8 point/spot/directional lights
(the scene's, then the models' ``KHR_lights_punctual``; with vertex lighting these are added
per pixel), and image-based lighting from a built-in environment (:mod:`host.environment`:
spherical-harmonic irradiance, and a mip chain per roughness bound to texture unit 5), or a
hemisphere ambient with ``environment="none"``.

Threading: a Renderer lives on the thread whose EGL context was current when it was created
(see :mod:`host.egl`, which must be imported before OpenGL; this module does that) and must only
be used from that thread. Calls are synchronous: ``render`` returns after ``glFinish``, so the
measured ``render_ms`` is the real GPU (llvmpipe) cost of the frame.

Colour: the main pass writes each pixel as BT.601 limited-range YUV at full resolution (luma
to an R8 target, chroma to an RG8 target); there is no RGB target. 4:2:0 needs each 2×2 block's
chroma averaged, on one of two paths (``chroma=``, :attr:`Renderer.chroma`):

- ``"cpu"`` (the software-rasteriser default): read luma and full-resolution chroma back as an
  NV24 frame and let swscale's unscaled NV24 → YUV420P converter average the blocks (about
  0.3 ms at 720p here). On llvmpipe a GPU pass cost 2–2.7 ms, nearly all of it texture sampling.
- ``"gpu"`` (the default on a GPU): a quarter-resolution pass, one bilinear fetch per output
  texel (the average of its block), and a read of the planar result.

``read_rgba`` converts the YUV 4:4:4 targets back to RGB (within a few levels of the colour the
shader computed): it exists for tests and tools, the stream never needs RGB.

Scene state it draws: hidden entities are skipped; tint is blended in the fragment shader;
see-through entities are drawn after the opaque ones, blended, without depth writes; selected
entities write a stencil mask and then get an outline (a screen-space-dilated copy drawn where
the stencil is clear, without depth test, so it shows through occluders); cut planes (at most
8) are ``gl_ClipDistance`` planes in the vertex stage; ``scene.camera`` overrides near/far and
the mono field of view of the pose.

Image orientation: the projection is flipped vertically (and the front-face winding with it), so
GL's first row in memory is the image's top row: ``read_rgba`` and ``read_yuv420`` return the top
row first and no pass, CPU or GPU, flips pixels.

Where the time goes on llvmpipe, and what keeps it low (``benchmarks/bench_render.py``):

- Per-part GL calls go through :mod:`host.glcalls` (ctypes, no PyOpenGL wrapper), and the draw
  list with its float32 matrices is prepared once per scene version, not once per frame.
- Opaque parts are drawn front to back, so llvmpipe's early depth test skips hidden fragments.
- The main pass writes YUV, so there is no RGB → YUV pass; on llvmpipe the 4:2:0 chroma is
  averaged by swscale on the CPU rather than by a texture-sampling pass (see above).
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import math
import os
import time
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar, cast

import av
import numpy as np
import numpy.typing as npt
from av.video.reformatter import VideoReformatter
from OpenGL import GL
from OpenGL.raw.GL.VERSION.GL_1_0 import glReadPixels as _raw_read_pixels

import farview.host.egl  # noqa: F401  (sets PYOPENGL_PLATFORM before OpenGL is imported)
from farview.host import glcalls, transforms
from farview.host.environment import environment
from farview.host.errors import ModelError
from farview.host.gltf import (
    Material,
    Mesh,
    Primitive,
    Texture,
    gc_paused,
    local_bounds_of,
    return_freed_memory,
)
from farview.host.lod import (
    LOD_ASKED_MIN_TRIANGLES,
    LOD_MIN_TRIANGLES,
    LOD_REDUCTIONS,
    Clusters,
    Levels,
    facing_clusters,
    pool,
    prepare,
    quick_levels,
    workers,
)
from farview.host.scene import MAX_CUT_PLANES, DrawItem, PlaceIndex, Scene, stack_worlds
from farview.host.texture_codec import BC1, BC3, BC5, BC7
from farview.input.pose import View
from farview.input.scene import MAX_LIGHTS, Light, MaterialOverride
from farview.streaming.planes import plane_array, yuv420_planes

log = logging.getLogger(__name__)
_T = TypeVar("_T")

SHADER_DIR = Path(__file__).with_name("shaders")
BACKGROUND = (0.16, 0.16, 0.17, 1.0)
"""Neutral dark grey (already display-encoded)."""


_RGB_TO_YUV = np.array([[65.481, 128.553, 24.966],
                        [-37.797, -74.203, 112.0],
                        [112.0, -93.786, -18.214]]) / 255.0
"""BT.601 limited range, display-encoded RGB (0..1) → Y, U, V (0..1), as mesh.frag.glsl has it."""
_YUV_OFFSET = np.array([16.0, 128.0, 128.0]) / 255.0
_YUV_TO_RGB = np.linalg.inv(_RGB_TO_YUV)


def _yuv(rgb: Sequence[float]) -> tuple[float, float, float]:
    """BT.601 limited-range Y, U, V (0..1) of a display-encoded colour, as the shaders write it."""
    y, u, v = _RGB_TO_YUV @ np.asarray(rgb[:3], dtype=np.float64) + _YUV_OFFSET
    return float(y), float(u), float(v)


BACKGROUND_YUV = _yuv(BACKGROUND)
"""``BACKGROUND`` as BT.601 limited-range Y, U, V (the clear values of the main targets)."""
_CLEAR_LUMA = np.asarray([BACKGROUND_YUV[0], 0.0, 0.0, 1.0], dtype=np.float32)
_CLEAR_CHROMA = np.asarray([BACKGROUND_YUV[1], BACKGROUND_YUV[2], 0.0, 1.0], dtype=np.float32)
_FLIP_Y = np.diag([1.0, -1.0, 1.0, 1.0])
_IDENTITY_XF = np.tile(np.eye(3, dtype=np.float32), (5, 1, 1))
ENV_UNIT = 5
"""Texture unit of the environment map (units 0-4 are the material's textures)."""
"""Applied after the projection: GL's bottom-up rows then hold the image top row first."""
SEE_THROUGH_ALPHA = 0.3
OUTLINE_COLOR = (1.0, 0.62, 0.05, 1.0)
"""Selection outline colour (display-encoded orange)."""
OUTLINE_PX = 3.0
"""Selection outline width in pixels."""
MAX_SIZE = 8192
LIGHTING_MODES = ("auto", "vertex", "pixel")

DENSE_TRIANGLES_PER_PIXEL = 12.0
"""In vertex-lighting mode, a part drawn with more triangles than this per pixel of its
screen footprint (its bounding sphere's) is lit per pixel after all: its vertices outnumber
the pixels they cover, and lighting them costs more than lighting the pixels (20 M triangles
in 64 parts at rest on llvmpipe: 2.24 s a frame lit per vertex, 1.04 s per pixel). Time alone
would switch at one or two triangles a pixel, but llvmpipe keeps more memory for each
triangle a per-pixel part bins (two interpolated inputs, not one): 2 M triangles in 64 parts
(4-8 a pixel) held 35-95 MB more when lit per pixel, 96 → 114-145 bytes a triangle, for a
frame 20 % faster. At 12 they stay lit per vertex; 8 M and 20 M (16 and more) are dense."""

DENSE_MIN_TRIANGLES = 2048
"""Parts with fewer triangles are never taken for dense (and cost nothing to check)."""
CHROMA_MODES = ("auto", "cpu", "gpu")


class RendererError(RuntimeError):
    """GL refused something (shader compile, incomplete framebuffer); the message says what."""


@dataclass(frozen=True)
class FrameTimings:
    """Durations of the last frame's stages, in milliseconds (0 when a stage did not run)."""

    render_ms: float = 0.0
    """Drawing plus ``glFinish``."""
    convert_ms: float = 0.0
    """Averaging the chroma to 4:2:0: swscale on the CPU, or the GPU pass plus ``glFinish``."""
    readback_ms: float = 0.0
    """``glReadPixels`` of the planes."""


ROLES = ("base", "mr", "normal", "occlusion", "emissive")
"""Texture roles, in the order of the shaders' ``u_uv_xf``/``u_uv_set`` arrays and texture
units."""
_ROLE_DEFINES = ("BASE_TEX", "MR_TEX", "NORMAL_TEX", "OCCLUSION_TEX", "EMISSIVE_TEX")
_SRGB_ROLES = frozenset(("base", "emissive"))
_TEX_DEFINES = frozenset(_ROLE_DEFINES)
Features = tuple[str, ...]
"""A primitive's shader variant: the sorted #defines of its material features."""
PLAIN: Features = ()


@dataclass
class _GpuPrimitive:
    vao: int
    buffers: tuple[int, int]
    index_count: int
    material: Material
    features: Features
    textures: tuple[tuple[int, int], ...]
    """(texture unit, GL name) per texture the primitive samples (unit = its role's index)."""
    uv_xf: npt.NDArray[np.float32]
    """(5, 3, 3) texture-coordinate transform per role (row-major)."""
    uv_set: npt.NDArray[np.int32]
    """(5,) ``TEXCOORD_n`` set per role."""
    blend: bool
    """``alphaMode`` BLEND: drawn after the opaque parts, back to front, blended."""
    points: bool = False
    """A point cloud: drawn as GL_POINTS (the ``POINTS`` variant), unlit."""
    index_type: int = GL.GL_UNSIGNED_INT
    """The GL type of its indices (see :func:`_gpu_index`)."""
    lods: list[tuple[int, int, tuple[int, int], int]] = field(default_factory=list)
    """Coarser versions, (vao, index count, buffers, index type) for levels 1, 2, ...: filled
    in when their simplification (a background job) is done."""
    layout: tuple[tuple[int, int], ...] = ()
    """(shader location, floats) of each vertex column, position and normal first (what the
    levels made in the background carry too); the tangent's handedness is the last float when
    location 5 is in it."""
    clusters: Clusters | None = None
    """Its full-detail triangles' back-face clusters, once its index buffer holds them in
    that order (:func:`host.lod.cluster_order`, made in the background): a single-sided
    primitive drawn in full skips those that face away from the eye."""
    point_levels: tuple[int, ...] = ()
    """A big point cloud's levels of detail: how many of its first indices each level draws
    (:func:`_point_bands`)."""
    proxy: tuple[int, int, tuple[int, int], int, float] | None = None
    """A batch's members as points, one at each member's centre (vao, count, buffers, index
    type, the members' mean bounding radius): drawn instead of its coarsest level at
    :data:`PROXY_LEVEL` while its members look smaller than :data:`PROXY_MAX_PX`."""


def _cancel_jobs_of(jobs: list[tuple[_GpuPrimitive, Future[_T]]], gpus: set[int]
                    ) -> list[tuple[_GpuPrimitive, Future[_T]]]:
    """``jobs`` less those of the primitives whose ids are in ``gpus``, which are cancelled
    (those not begun; a job running ends unread)."""
    kept = []
    for gpu, job in jobs:
        if id(gpu) in gpus:
            job.cancel()
        else:
            kept.append((gpu, job))
    return kept


def _finished(jobs: list[tuple[_GpuPrimitive, Future[_T]]], failure: str
              ) -> tuple[list[tuple[_GpuPrimitive, _T]], list[tuple[_GpuPrimitive, Future[_T]]]]:
    """``jobs`` split into the results of those done (a failed one logged with ``failure``,
    and left out; those lost with a process that died counted in one line) and those still
    running."""
    done, running = [], []
    lost = 0
    for gpu, job in jobs:
        if not job.done():
            running.append((gpu, job))
            continue
        try:
            done.append((gpu, job.result()))
        except BrokenProcessPool:
            lost += 1  # (its process died: one line for them all, not a traceback each)
        except Exception:
            log.exception(failure)
    if lost:
        log.warning("%d level-of-detail jobs were lost with a process that died; their parts "
                    "are drawn in full (or at their stand-in levels)", lost)
    return done, running


_LaterJob = tuple[npt.NDArray[np.float32], npt.NDArray[np.uint32], npt.NDArray[np.float32] | None,
                  bool]
"""A :func:`host.lod.prepare` job held back: positions, indices, the extra vertex columns, and
whether to order its triangles in back-face clusters."""


_PrimDraw = tuple[int, int, Features, tuple[float, float, float, float], float, float, bool,
                  tuple[float, float, float], float, _GpuPrimitive]
"""(vao, index count, features, base colour, metallic, roughness, back-face cull, emissive,
unlit, the primitive) as the per-part loop reads them."""


@dataclass
class _Draw:
    """One visible part, ready for the per-part loop: pointers into float32 arrays the
    :class:`_Prepared` owns, and each primitive's material as plain floats."""

    selected: bool
    world_ptr: int
    normal_ptr: int
    tint: tuple[float, float, float, float]
    prims: list[_PrimDraw]
    variants: frozenset[Features]
    """The shader variants its primitives need."""
    blend: bool
    """Some primitive has a BLEND material."""
    opaque: bool
    """Some primitive does not."""
    outline_centre: tuple[float, float, float] | None
    """Centre of the mesh's local bounds (outline pass), None for a mesh without vertices."""
    centre: npt.NDArray[np.float64]
    """World-space centre (for sorting)."""
    radius: float = math.inf
    """World-space bounding sphere radius around ``centre`` (frustum culling; inf: never
    culled)."""
    triangles: int = 0
    """Triangles at full detail (points not counted), for :data:`DENSE_TRIANGLES_PER_PIXEL`."""


@dataclass
class _Prepared:
    """A scene version's draw lists (rebuilt when ``scene.version`` changes)."""

    key: tuple[int, int]
    opaque: list[_Draw]
    opaque_centres: npt.NDArray[np.float64]
    """World-space centre of each opaque part, for the front-to-back sort."""
    opaque_radii: npt.NDArray[np.float64]
    """Bounding sphere radius of each opaque part, for frustum culling."""
    opaque_selected: npt.NDArray[np.bool_]
    opaque_triangles: npt.NDArray[np.int64]
    """Each opaque part's triangles at full detail."""
    dense_candidates: bool
    """Some opaque part is big enough to be dense (:data:`DENSE_MIN_TRIANGLES`)."""
    blended: list[_Draw]
    """Parts with BLEND primitives (not see-through): drawn back to front after the rest."""
    blended_centres: npt.NDArray[np.float64]
    see_through: list[_Draw]
    selected: list[_Draw]
    variants: list[Features]
    """The shader variants the scene needs, plain first."""
    model_lights: list[Light]
    """The models' lights (KHR_lights_punctual), placed."""
    arrays: tuple[npt.NDArray[np.float32], ...]
    """The world and normal matrices the ``_Draw`` pointers point into (kept alive here)."""


@dataclass
class _Placement:
    """Where each part of a scene is drawn (alone, in batches, or not at all), kept while only
    entities' states change: a state change re-places the parts it reaches and re-makes the
    batches they leave or join, not the whole draw list (selecting a part of 100,000 took
    0.7 s when the draw lists were made anew)."""

    scene: weakref.ref[Scene]
    batching: bool
    mark: tuple[int, int, int]
    """:meth:`Scene.state_mark` when this placement was last brought up to date."""
    index: PlaceIndex
    """Entity id → place in the draw list (all parts, hidden ones too), -1 for none."""
    meshes: list[Mesh]
    worlds: npt.NDArray[np.float32]
    """(n, 4, 4) world matrix of each place (what the ``_Draw`` pointers point into)."""
    normals: npt.NDArray[np.float32]
    """(n, 3, 3) normal matrix of each place."""
    invertible: npt.NDArray[np.bool_]
    """False where a zero scale leaves nothing to draw."""
    grid: tuple[npt.NDArray[np.float64], float] | None
    """Lowest corner and size of the batch cells (from the parts batched at the start)."""
    batched: list[tuple[_GroupKey, ...] | None]
    """Per place: the group key of each of its primitives when it is batched, else None
    (drawn alone: in :attr:`individual`; or not drawn)."""
    individual: dict[int, tuple[_Draw, bool]]
    """Parts drawn alone, by place: the draw and whether it is see-through."""
    groups: dict[_GroupKey, npt.NDArray[np.int64]]
    """Each batch's members (sorted codes, see _PRIM_BITS)."""
    batches: dict[_GroupKey, tuple[_Batch, _Draw]]
    identity: npt.NDArray[np.float32]
    """A batch's world and normal matrices: 16 floats of a 4x4 identity, then 9 of a 3x3."""
    values: dict[tuple[int, int], tuple[_DrawValues, Material, MaterialOverride | None]] = \
        field(default_factory=dict)
    """Per-draw values by (material, edit) ids; the objects are kept so ids are not reused."""
    interned: dict[object, object] = field(default_factory=dict)
    """One copy of each group key and of each part's tuple of them."""


@dataclass(frozen=True)
class _Lights:
    """Lights as the shaders' uniform arrays (float32, one row per light)."""

    pos: npt.NDArray[np.float32]
    dir: npt.NDArray[np.float32]
    color: npt.NDArray[np.float32]
    cone: npt.NDArray[np.float32]


_LIGHT_KINDS = {"directional": 0.0, "point": 1.0, "spot": 2.0}


def _pack_lights(lights: Sequence[Light]) -> _Lights:
    n = len(lights)
    pos, dirs = np.zeros((n, 4), np.float32), np.zeros((n, 4), np.float32)
    color, cone = np.zeros((n, 3), np.float32), np.zeros((n, 2), np.float32)
    for i, light in enumerate(lights):
        d = np.asarray(light.direction, dtype=np.float64)
        pos[i] = (*light.position, _LIGHT_KINDS[light.type])
        dirs[i] = (*(d / np.linalg.norm(d)), 0.0 if light.range is None else 1.0 / light.range ** 2)
        color[i] = np.asarray(light.color) * light.intensity
        cos_outer, cos_inner = math.cos(light.outer_cone), math.cos(light.inner_cone)
        cone[i] = (cos_outer, 1.0 / max(cos_inner - cos_outer, 1e-4))
    return _Lights(pos, dirs, color, cone)


_DrawValues = tuple[tuple[float, float, float, float], float, float, bool, tuple[float, float, float],
                    float]


def _prim_draw_values(m: Material, edit: MaterialOverride | None) -> _DrawValues:
    """A material's per-draw values (base colour, metallic, roughness, back-face cull,
    emissive, unlit), with an entity's material edit applied."""
    color, metallic, roughness, emissive, unlit = (
        m.base_color, m.metallic, m.roughness, m.emissive, m.unlit)
    if edit is not None:
        if edit.color is not None:
            color = (*edit.color, color[3])
        metallic = metallic if edit.metallic is None else edit.metallic
        roughness = roughness if edit.roughness is None else edit.roughness
        emissive = emissive if edit.emissive is None else edit.emissive
        unlit = unlit if edit.unlit is None else edit.unlit
    return color, metallic, roughness, not m.double_sided, emissive, 1.0 if unlit else 0.0


def _prim_draw(p: _GpuPrimitive, edit: MaterialOverride | None) -> _PrimDraw:
    """A primitive's per-draw values: its material's, with an entity's material edit."""
    color, metallic, roughness, cull, emissive, unlit = _prim_draw_values(p.material, edit)
    return (p.vao, p.index_count, p.features, color, metallic, roughness, cull, emissive,
            unlit, p)


def _eye_in_mesh(world_ptr: int, eye: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``eye`` taken into the space of the part whose world matrix (row-major float32) is at
    ``world_ptr``; empty when that matrix mirrors or flattens (its clusters are not used)."""
    m = np.ctypeslib.as_array((ctypes.c_float * 16).from_address(world_ptr)).reshape(4, 4)
    linear = m[:3, :3].astype(np.float64)
    det = float(np.linalg.det(linear))
    if not (math.isfinite(det) and det > 1e-30):
        return np.zeros(0)
    return np.linalg.solve(linear, eye - m[:3, 3])


def _facing_ranges(clusters: Clusters, eye: npt.NDArray[np.float64], index_type: int
                   ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.uint64]] | None:
    """The index counts and byte offsets of the runs of clusters that may face ``eye`` (in the
    mesh's space), for ``glMultiDrawElements``; None when every cluster may."""
    facing = facing_clusters(clusters, eye)
    if facing.all():
        return None
    starts = clusters[0]
    edges = np.diff(facing.astype(np.int8), prepend=np.int8(0), append=np.int8(0))
    first, end = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return (((starts[end] - starts[first]) * 3).astype(np.int32),
            (starts[first] * 3 * _index_width(index_type)).astype(np.uint64))


def _index_width(index_type: int) -> int:
    """Bytes an index of GL type ``index_type`` (:func:`_gpu_index`'s) takes."""
    return 2 if index_type == GL.GL_UNSIGNED_SHORT else 4


LOD_BUDGET_MS = 50.0
"""While the camera moves, the level rises when a frame takes longer than this (20 fps) and
falls when one takes under 40 % of it, unless the finer level was over it when last drawn
(within :data:`LOD_RETRY_S`); at rest every part is drawn in full. A frame that made GL
objects (programs, buffers, textures, levels) after one that made none does not count."""
LOD_RETRY_S = 2.0
"""A finer level found over budget is tried again after this long (the view may have changed):
without the memory, a level-3 frame of 19 ms at 20 M triangles fell to level 2 (65 ms), rose
again, and every other moving frame was over budget."""
LOD_POOL_RESTARTS = 3
"""Level-of-detail process pools started again after one of their processes died, before the
host stops making levels: a process the kernel kills for memory breaks its pool, which refused
every later job, and each frame that uploaded a new part failed."""


_Group = tuple[tuple[float, float, float, float], float, float, bool, tuple[float, float, float],
               float, tuple[float, float, float, float]]
"""What a batch's parts share: base colour, metallic, roughness, cull, emissive, unlit, tint."""

TRIM_INTERVAL_S = 1.0
"""Freed memory is given back to the system at least this often while frames are drawn."""

BATCH_CELLS = 4
"""Batches are also split by where their parts are: the box of part centres is cut into this
many cells along each axis (at most 64 cells), so that culling can leave them out."""

POINT_LOD_MIN_POINTS = 16_384
"""Point clouds with at least this many points are drawn thinned while the camera moves over
the frame budget (:func:`_point_bands`)."""
POINT_LOD_LEVELS = 6
"""A big cloud's levels at most: the four triangles have (:data:`LOD_REDUCTIONS`), then deeper
ones, a quarter each, while they keep :data:`POINT_LOD_DEEP_MIN` points (5 M points get five
levels, 20 M six: at the fourth, 1/256 of 20 M points, 8 pixels wide, took 58-66 ms a moving
frame here, over the 50 ms budget)."""
POINT_LOD_DEEP_MIN = 4096
"""The fewest points a level beyond the fourth keeps (see :data:`POINT_LOD_LEVELS`)."""
POINT_LOD_MAX_SIZE = 64.0
"""The largest size (pixels) a thinned cloud's points are drawn at."""
POINT_PIECE = 1 << 20
"""A big cloud drawn in full by a frame that may be given up (``Renderer.render``'s ``abort``)
is drawn this many points at a time, ``abort`` asked between: about 0.1 s of llvmpipe's time
here (a 20 M-point cloud takes 1.8 s in full, which a pose for another view waited out)."""
BATCH_MAX_TRIANGLES = 4096
"""Parts at most this big are merged into batches (see :func:`_batchable`)."""

BATCH_LOD_MIN_TRIANGLES = 1024
"""Batches at least this big get a coarser level of detail for frames drawn while the camera
moves, made in the background as a big part's are (:data:`host.lod.LOD_MIN_TRIANGLES` is for
one part: a batch's triangles are many parts' that would each be too small for levels)."""
BATCH_LOD_MIN_PART_TRIANGLES = 6
"""A batch's coarsest level keeps at least this many triangles a member on average
(:func:`_batch_reductions`): its parts are small and closed, and a part of 12 triangles cut to
3 is flat (a grid of such parts seen at an angle kept 9 % of its pixels at
:data:`host.lod.LOD_REDUCTIONS`' first level)."""


PROXY_LEVEL = 4
"""From this level (the deepest for triangles) a batch whose members look smaller than
:data:`PROXY_MAX_PX` is drawn as one point a member (:attr:`_GpuPrimitive.proxy`): its coarsest
level still has :data:`BATCH_LOD_MIN_PART_TRIANGLES` triangles a member, and fewer make parts
flat, while llvmpipe sets up and bins each of them even when the part is a few pixels."""
PROXY_MAX_PX = 6.0
"""A batch is drawn as points while its members, at its nearest point to the eye, are at most
this many pixels across."""
PROXY_AREA = math.sqrt(math.pi) / 2
"""A member's point is this times its bounding sphere's diameter on screen: a square of the
sphere's area."""


def _batch_reductions(triangles: int, members: int) -> tuple[float, ...]:
    """The levels of a batch of ``members`` parts with ``triangles`` in all, as
    :func:`host.lod.simplify`'s reductions: a quarter of the triangles a level, as a part's
    (:data:`LOD_REDUCTIONS`), the last one stopping at :data:`BATCH_LOD_MIN_PART_TRIANGLES` a
    member; at least one level of half. Parts of 12 triangles get one level (6 a part), parts
    of 84 two (21 and 6), parts of 1,000 four (250 to 6): with one level of half for every
    batch, 100,000 parts of 84 triangles took 234 ms a moving frame."""
    floor = min(0.5, BATCH_LOD_MIN_PART_TRIANGLES * members / max(1, triangles))
    out: list[float] = []
    kept = 1.0
    for reduction in LOD_REDUCTIONS:
        if kept <= floor:
            break
        below = max(kept * (1.0 - reduction), floor)
        out.append(1.0 - below / kept)
        kept = below
    return tuple(out)


def _weld_batch(vertices: int, triangles: int) -> bool:
    """Whether a batch's levels are made with its vertices welded (:func:`host.lod.simplify`):
    when its parts' triangles share few vertices, 1.5 or more a triangle (flat shading, as in
    files made from STL: a sphere from STL, converted, has 2.05; smooth closed meshes about
    0.5). Simplified unwelded, such parts fall apart into loose triangles (a flat-shaded sphere
    of 3,120 triangles: 1,758 open edges at its first level of 780, welded none; that sphere
    from STL: 572 at a level of 380, welded 36). Parts whose triangles share their vertices are
    simplified unwelded: welded, closed parts of 12 triangles (1.33 vertices a triangle) shrank
    into lumps (a grid of them kept 18 % of its pixels at its one level, unwelded over 30 %)."""
    return 2 * vertices >= 3 * triangles


_GroupKey = tuple[_Group, tuple[int, int, int, int]]
"""A batch's group: what its parts share, the cell they are in, and their size class
(:func:`_size_class`)."""


def _size_class(triangles: int) -> int:
    """Batches are also split by their primitives' size, classes a factor of 4 apart, so that
    a batch's levels (:func:`_batch_reductions`, an average over its parts) thin its parts
    alike: with bolts of 84 triangles batched with housings of 3,120, the simplifier took the
    bolts first, and 22 of 275 were gone at the coarsest level."""
    return triangles.bit_length() // 2

_PRIM_BITS = 16
_PRIM_MASK = (1 << _PRIM_BITS) - 1
"""A batch member is one int: its part's draw-list place << _PRIM_BITS | its primitive's index
in the part's mesh (a batched mesh has at most _PRIM_MASK primitives)."""


def _in_frustum(view_proj: npt.NDArray[np.float64], centres: npt.NDArray[np.float64],
                radii: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Which spheres reach into the view: each plane of the clip volume (from the rows of the
    view-projection matrix) must not have the whole sphere behind it."""
    m = view_proj
    planes = np.stack([m[3] + m[0], m[3] - m[0], m[3] + m[1], m[3] - m[1], m[3] + m[2],
                       m[3] - m[2]])
    planes = planes / np.linalg.norm(planes[:, :3], axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):
        distance = centres @ planes[:, :3].T + planes[:, 3]
        return np.asarray((distance >= -radii[:, None]).all(axis=1) | ~np.isfinite(radii)
                          | np.isnan(distance).any(axis=1))


_POSITION_NORMAL: tuple[tuple[int, int], ...] = ((0, 3), (1, 3))
"""The vertex layout of batches and of levels made without other attributes: (shader
location, floats) per column."""


def _gpu_index(index: npt.NDArray[np.integer], vertices: int
               ) -> tuple[npt.NDArray[np.uint16] | npt.NDArray[np.uint32], int]:
    """Indices as uploaded, and their GL type: 16-bit when the vertices are at most 65,536
    (half the memory of 32-bit ones, which llvmpipe holds in system memory), else 32-bit."""
    if vertices <= 1 << 16:
        return np.ascontiguousarray(index, dtype=np.uint16), GL.GL_UNSIGNED_SHORT
    return np.ascontiguousarray(index, dtype=np.uint32), GL.GL_UNSIGNED_INT


def _point_reductions(count: int) -> tuple[float, ...]:
    """A cloud of ``count`` points: its levels' reductions (see :data:`POINT_LOD_LEVELS`)."""
    out = list(LOD_REDUCTIONS)
    keep = math.prod(1.0 - r for r in out)
    while len(out) < POINT_LOD_LEVELS and count * keep * 0.25 >= POINT_LOD_DEEP_MIN:
        out.append(0.75)
        keep *= 0.25
    return tuple(out)


def _point_bands(count: int) -> tuple[npt.NDArray[np.uint32], tuple[int, ...]]:
    """A big cloud's draw order and its levels of detail: the points of level ``L`` (each
    point in it with chance 4^-L, as triangles keep a quarter a level, :data:`LOD_REDUCTIONS`,
    and deeper levels for the biggest clouds, :func:`_point_reductions`; each level within the
    one before) are the first ``counts[L - 1]`` indices: those of the deepest level, then
    those of the one before not in it, and so on, then the rest, each band in the file's order
    (a pass over the vertices a level: as fast to draw in full as the file's order, where a
    shuffled order took 1.5 times as long at 5 M points). The same for the same count."""
    u = np.random.default_rng(count).random(count, dtype=np.float32)
    band = np.zeros(count, dtype=np.int8)
    keep = 1.0
    reductions = _point_reductions(count)
    for reduction in reductions:
        keep *= 1.0 - reduction
        band += u < keep
    order = np.argsort(-band, kind="stable").astype(np.uint32)
    counts = tuple(int(np.count_nonzero(band >= level))
                   for level in range(1, len(reductions) + 1))
    return order, counts


def _point_level(p: _GpuPrimitive, level: int, point_size: float) -> tuple[int, float]:
    """How a big point cloud (one with :attr:`_GpuPrimitive.point_levels`) is drawn at
    ``level`` (1 or more): the points (the first indices, :func:`_point_bands`) and their size,
    √2 times ``point_size`` a level, up to :data:`POINT_LOD_MAX_SIZE`."""
    at = min(level, len(p.point_levels))
    return p.point_levels[at - 1], min(point_size * 2 ** (at / 2), POINT_LOD_MAX_SIZE)


def _pack_normals(normals: npt.NDArray[np.float32]) -> npt.NDArray[np.uint32]:
    """Unit normals (any length: they are normalised first; zero stays zero) as
    ``GL_INT_2_10_10_10_REV`` words, x in the low ten bits (signed, 511 = 1.0)."""
    n = np.asarray(normals, dtype=np.float32)
    length = np.sqrt(np.einsum("ij,ij->i", n, n))[:, None]
    unit = np.divide(n, length, out=np.zeros_like(n), where=length > 0)
    q = (np.rint(np.clip(unit, -1.0, 1.0) * 511.0).astype(np.int32) & 0x3FF).astype(np.uint32)
    packed: npt.NDArray[np.uint32] = q[:, 0] | (q[:, 1] << np.uint32(10)) | (q[:, 2] << np.uint32(20))
    return packed


def _vertex_buffer(vbo: int, columns: Sequence[tuple[int, npt.NDArray[np.float32]]]) -> int:
    """Upload ``columns`` ((shader location, (N, width) float32 array) each) interleaved to
    ``vbo`` and point the bound vertex array's attributes at them; the normal (location 1) goes
    as one packed word (:func:`_pack_normals`: 4 bytes a vertex instead of 12; llvmpipe keeps
    vertex buffers in system memory), the colour (location 4, RGBA in 0..1) as four normalised
    16-bit numbers (8 bytes instead of 16: a 20 M-point scan's colours took 320 MB in GL).
    Returns the bytes uploaded."""
    words = []
    attribs = []  # (location, components, GL type, normalised, offset in words)
    at = 0
    for loc, column in columns:
        size = column.shape[1]
        if loc == 1 and size == 3:
            words.append(_pack_normals(column)[:, None])
            attribs.append((loc, 4, GL.GL_INT_2_10_10_10_REV, GL.GL_TRUE, at))
            at += 1
        elif loc == 4 and size == 4:  # colours (0..1, as the loader clamps them): 16 bits each
            q = np.rint(np.clip(column, 0.0, 1.0) * 65535.0).astype(np.uint16)
            words.append(np.ascontiguousarray(q).view(np.uint32))
            attribs.append((loc, 4, GL.GL_UNSIGNED_SHORT, GL.GL_TRUE, at))
            at += 2
        else:
            words.append(np.ascontiguousarray(column, dtype=np.float32).view(np.uint32))
            attribs.append((loc, size, GL.GL_FLOAT, GL.GL_FALSE, at))
            at += size
    data = np.ascontiguousarray(np.concatenate(words, axis=1) if len(words) > 1 else words[0])
    GL.glBindBuffer(GL.GL_ARRAY_BUFFER, vbo)
    GL.glBufferData(GL.GL_ARRAY_BUFFER, data.nbytes, data, GL.GL_STATIC_DRAW)
    for loc, size, kind, normalised, offset in attribs:
        GL.glEnableVertexAttribArray(loc)
        GL.glVertexAttribPointer(loc, size, kind, normalised, at * 4, ctypes.c_void_p(offset * 4))
    return int(data.nbytes)


def _upload_position_normal(interleaved: npt.NDArray[np.float32],
                            index: npt.NDArray[np.uint32],
                            layout: Sequence[tuple[int, int]] | None = None
                            ) -> tuple[int, int, int, int]:
    """A vertex array over ``interleaved`` rows in ``layout`` ((shader location, floats) per
    column; default: position, normal, and uv0 when the rows have 8 floats) and its indices:
    (vao, vbo, ibo, index type)."""
    if layout is None:
        layout = _POSITION_NORMAL + (((2, 2),) if interleaved.shape[1] == 8 else ())
    starts = np.cumsum([0] + [size for _, size in layout])
    vao, vbo, ibo, index_type, _ = _upload_columns(
        [(loc, interleaved[:, a:a + size])
         for (loc, size), a in zip(layout, starts.tolist(), strict=False)], index)
    return vao, vbo, ibo, index_type


def _upload_columns(columns: Sequence[tuple[int, npt.NDArray[np.float32]]],
                    index: npt.NDArray[np.integer]) -> tuple[int, int, int, int, int]:
    """A vertex array over ``columns`` ((shader location, (N, width) array) each,
    :func:`_vertex_buffer`) and ``index``: (vao, vbo, ibo, index type, bytes uploaded)."""
    vao = int(GL.glGenVertexArrays(1))
    vbo, ibo = (int(b) for b in GL.glGenBuffers(2))
    GL.glBindVertexArray(vao)
    vertex_bytes = _vertex_buffer(vbo, columns)
    uploaded, index_type = _gpu_index(index, len(columns[0][1]))
    GL.glBindBuffer(GL.GL_ELEMENT_ARRAY_BUFFER, ibo)
    GL.glBufferData(GL.GL_ELEMENT_ARRAY_BUFFER, uploaded.nbytes, uploaded, GL.GL_STATIC_DRAW)
    GL.glBindVertexArray(0)
    return vao, vbo, ibo, index_type, vertex_bytes + uploaded.nbytes


def _add_levels(gpu: _GpuPrimitive, levels: Sequence[tuple[npt.NDArray[np.float32],
                                                            npt.NDArray[np.uint32]]],
                layout: Sequence[tuple[int, int]] | None = None) -> None:
    """Upload coarser levels of detail (interleaved position + normal [+ the columns of
    ``layout`` after those], indices) for ``gpu``."""
    for interleaved, index in levels:
        vao, vbo, ibo, index_type = _upload_position_normal(interleaved, index, layout)
        gpu.lods.append((vao, len(index), (vbo, ibo), index_type))


_LOCATION_ATTRIBUTE = ("POSITION", "NORMAL", "TEXCOORD_0", "TEXCOORD_1", "COLOR_0", "TANGENT")
"""The glTF attribute at each shader location."""


def _levels_ahead(prim: Primitive, locations: Sequence[int]) -> Levels | None:
    """A primitive's levels made ahead (``Primitive.lods``) with only the columns drawn at
    ``locations``, in their order; None without levels, or when they lack one of those."""
    if not prim.lods or prim.points:
        return None
    spans = {name: (start, width) for name, start, width in prim.vertex_layout()}
    floats = sum(width for _, width in spans.values())
    wanted = [spans.get(_LOCATION_ATTRIBUTE[loc]) for loc in locations]
    if any(w is None for w in wanted) or any(rows.shape[1] != floats for rows, _ in prim.lods):
        return None
    picked = [span for span in wanted if span is not None]
    if len(picked) == len(spans):  # every column (both in attribute order): the rows as they are
        return list(prim.lods)
    return [(np.ascontiguousarray(np.concatenate([rows[:, a:a + w] for a, w in picked], axis=1)),
             index) for rows, index in prim.lods]


def _batchable(it: DrawItem, small_plain: dict[int, bool]) -> bool:
    """A small part that can be drawn merged with others: plain materials (no texture, no
    vertex colours, opaque), not selected (the outline needs it alone), not see-through. Its
    entity keeps its identity: picking, bounds and state live in the scene, and a change to
    its state rebuilds only the batch it was in. ``small_plain`` caches what the mesh decides
    (meshes do not change), by mesh key."""
    state = it.state
    if state.selected or state.see_through:
        return False
    mesh = it.mesh
    known = small_plain.get(mesh.key)
    if known is None:
        known = small_plain[mesh.key] = (mesh.triangle_count <= BATCH_MAX_TRIANGLES
                                         and len(mesh.primitives) <= _PRIM_MASK
                                         and all(p.plain for p in mesh.primitives))
    return known


@dataclass
class _Batch:
    """Small parts of one material merged into one buffer, in world space."""

    key: tuple[object, ...]
    vao: int
    index_count: int
    centre: npt.NDArray[np.float64]
    radius: float
    prim: _GpuPrimitive
    codes: npt.NDArray[np.int64]
    """Its members (see _PRIM_BITS), at their places in any placement that uses the batch."""
    levels_asked: bool = False
    """Its coarser level is made or being made (:meth:`Renderer._ask_levels`)."""


def _members(codes: npt.NDArray[np.int64], place: _Placement) -> list[Primitive]:
    """The primitives of a batch's members ``codes`` (see _PRIM_BITS)."""
    meshes = place.meshes
    return [meshes[k].primitives[i] for k, i in zip(
        (codes >> _PRIM_BITS).tolist(), (codes & _PRIM_MASK).tolist(), strict=True)]


def _merged(prims: list[Primitive], ks: npt.NDArray[np.int64], place: _Placement
            ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.uint32]]:
    """A batch's members' vertices in world space, their normals, and their indices, merged
    (``prims`` at draw-list places ``ks``): all members at once, each vertex taking its part's
    matrices (one NumPy pass, not three products a part: 100,000 parts took 1.6 s one by
    one)."""
    vcounts = np.array([len(p.positions) for p in prims])
    icounts = np.array([len(p.indices) for p in prims])
    owner = np.repeat(np.arange(len(prims)), vcounts)
    w = place.worlds[ks]
    positions = np.einsum("vij,vj->vi", w[:, :3, :3][owner],
                          np.concatenate([p.positions for p in prims])) + w[:, :3, 3][owner]
    norms = np.einsum("vij,vj->vi", place.normals[ks][owner],
                      np.concatenate([p.normals for p in prims]))
    bases = np.concatenate([[0], np.cumsum(vcounts)[:-1]]).astype(np.uint32)
    index = np.ascontiguousarray(np.concatenate([p.indices for p in prims])
                                 + np.repeat(bases, icounts), dtype=np.uint32)
    return positions, norms, index


def _members_digest(prims: list[Primitive], ks: npt.NDArray[np.int64],
                    worlds: npt.NDArray[np.float32]) -> bytes:
    """A batch's identity: which primitives, at which draw-list places, under which world
    matrices, as a 128-bit BLAKE2b digest. A tuple of those (a bytes object a part) took
    25 MB at 100,000 parts, for the whole life of the batches."""
    h = hashlib.blake2b(digest_size=16)
    h.update(np.fromiter((id(p) for p in prims), dtype=np.uint64, count=len(prims)).tobytes())
    h.update(ks.astype(np.int64).tobytes())
    h.update(np.ascontiguousarray(worlds[ks]).tobytes())
    return h.digest()


def _source(name: str, defines: Sequence[str], include: str | None) -> str:
    """A stage's GLSL: its ``#version`` line, then ``#define``s, then ``include``'s text."""
    text = (SHADER_DIR / name).read_text()
    version, _, body = text.partition("\n")
    if not version.startswith("#version"):
        raise RendererError(f"shader {name} must start with its #version line")
    parts = [version, *(f"#define {d}" for d in defines)]
    if include is not None:
        parts.append((SHADER_DIR / include).read_text())
    return "\n".join([*parts, body])


def _compile(vert: str, frag: str, defines: Sequence[str] = (),
             includes: tuple[str | None, str | None] = (None, None)) -> int:
    def stage(kind: int, name: str, include: str | None) -> int:
        shader = GL.glCreateShader(kind)
        GL.glShaderSource(shader, _source(name, defines, include))
        GL.glCompileShader(shader)
        if not GL.glGetShaderiv(shader, GL.GL_COMPILE_STATUS):
            info = GL.glGetShaderInfoLog(shader).decode(errors="replace")
            raise RendererError(f"shader {name} does not compile: {info}")
        return int(shader)

    program = GL.glCreateProgram()
    shaders = [stage(GL.GL_VERTEX_SHADER, vert, includes[0]),
               stage(GL.GL_FRAGMENT_SHADER, frag, includes[1])]
    for s in shaders:
        GL.glAttachShader(program, s)
    GL.glLinkProgram(program)
    for s in shaders:
        GL.glDeleteShader(s)
    if not GL.glGetProgramiv(program, GL.GL_LINK_STATUS):
        info = GL.glGetProgramInfoLog(program).decode(errors="replace")
        raise RendererError(f"shader program {vert}+{frag} does not link: {info}")
    return int(program)


class _Program:
    def __init__(self, vert: str, frag: str, defines: Sequence[str] = (),
                 includes: tuple[str | None, str | None] = (None, None)) -> None:
        self.id = _compile(vert, frag, defines, includes)
        self._locations: dict[str, int] = {}

    def loc(self, name: str) -> int:
        if name not in self._locations:
            self._locations[name] = int(GL.glGetUniformLocation(self.id, name))
        return self._locations[name]


_BLOCK_FORMATS: dict[str, tuple[int, int | None]] = {
    BC1: (0x83F1, 0x8C4D), BC3: (0x83F3, 0x8C4F), BC5: (0x8DBD, None), BC7: (0x8E8C, 0x8E8D)}
"""GL's internal formats for BC1, BC3, BC5 and BC7 blocks: (linear, sRGB)
(EXT_texture_compression_s3tc and EXT_texture_sRGB; BC5 is RGTC2, core since GL 3.0, and has no
sRGB form: such a texture used as a colour is decoded; BC7 is ARB_texture_compression_bptc)."""


def _texture(width: int, height: int, internal: int, fmt: int) -> int:
    tex = int(GL.glGenTextures(1))
    GL.glBindTexture(GL.GL_TEXTURE_2D, tex)
    GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, internal, width, height, 0, fmt,
                    GL.GL_UNSIGNED_BYTE, None)
    for p in (GL.GL_TEXTURE_MIN_FILTER, GL.GL_TEXTURE_MAG_FILTER):
        GL.glTexParameteri(GL.GL_TEXTURE_2D, p, GL.GL_NEAREST)
    return tex


def _check_fbo(what: str) -> None:
    status = GL.glCheckFramebufferStatus(GL.GL_FRAMEBUFFER)
    if status != GL.GL_FRAMEBUFFER_COMPLETE:
        raise RendererError(f"{what} framebuffer is incomplete (status 0x{int(status):04X})")


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


def is_software_renderer(gl_renderer: str) -> bool:
    """True for Mesa's CPU rasterisers (llvmpipe, softpipe, swrast, lavapipe)."""
    name = gl_renderer.lower()
    return any(s in name for s in ("llvmpipe", "softpipe", "swrast", "lavapipe"))


class Renderer:
    """Renders scenes offscreen at ``width`` × ``height`` on the current GL context.

    ``lighting``: ``"pixel"`` lights every fragment; ``"vertex"`` lights vertices and
    interpolates (on llvmpipe the lighting was ~40 % of a frame; it looks the same on models
    whose parts are finely tessellated, but a highlight inside one large triangle is lost);
    ``"auto"`` (default) takes ``"vertex"`` on a software rasteriser and ``"pixel"`` on a GPU.
    The choice is in :attr:`lighting`.

    ``chroma``: where each 2×2 block's chroma is averaged for 4:2:0 (module docstring):
    ``"cpu"`` (swscale), ``"gpu"`` (a quarter-resolution pass), ``"auto"`` (default: ``"cpu"``
    on a software rasteriser, ``"gpu"`` on a GPU). The choice is in :attr:`chroma`.
    """

    def __init__(self, width: int, height: int, lighting: str = "auto",
                 chroma: str = "auto") -> None:
        version = GL.glGetString(GL.GL_VERSION)
        if not version:
            raise RendererError("no current GL context; create a host.egl.EglContext first")
        if lighting not in LIGHTING_MODES:
            raise ValueError(f"lighting must be one of {', '.join(LIGHTING_MODES)}, got {lighting!r}")
        if chroma not in CHROMA_MODES:
            raise ValueError(f"chroma must be one of {', '.join(CHROMA_MODES)}, got {chroma!r}")
        gl_renderer = (GL.glGetString(GL.GL_RENDERER) or b"").decode(errors="replace")
        software = is_software_renderer(gl_renderer)
        if lighting == "auto":
            lighting = "vertex" if software else "pixel"
        if chroma == "auto":
            chroma = "cpu" if software else "gpu"
        self.lighting = lighting
        """``"vertex"`` or ``"pixel"``: where the main pass computes lighting."""
        self.chroma = chroma
        """``"cpu"`` or ``"gpu"``: where the 4:2:0 chroma is averaged."""
        extensions = {GL.glGetStringi(GL.GL_EXTENSIONS, i).decode()
                      for i in range(int(GL.glGetIntegerv(GL.GL_NUM_EXTENSIONS)))}
        self.s3tc = {"GL_EXT_texture_compression_s3tc", "GL_EXT_texture_sRGB"} <= extensions
        """Block-compressed textures (``MSFT_texture_dds``, BC1/BC3/BC5) go to GL as they are
        (else they are decoded and uploaded as RGBA8)."""
        self.bptc = "GL_ARB_texture_compression_bptc" in extensions
        """BC7 blocks go to GL as they are (else the PNG/JPEG beside them is used)."""
        self._reformatter = VideoReformatter()
        # Variants of the main pass, keyed (cut planes, textured), compiled when first used.
        # Without cut planes llvmpipe carries 8 fewer outputs per vertex (~0.2 ms); textured
        # primitives are lit per pixel whatever ``lighting`` says, because their base colour
        # varies across a triangle.
        self._setups = 0
        """GL objects made so far (programs, meshes, batches, levels, textures): a frame that
        made some took that time on top of its drawing (see :data:`LOD_BUDGET_MS`)."""
        self._last_set_up = False
        self._mesh_programs: dict[tuple[bool, Features, bool, bool, bool], _Program] = {}
        self._mesh_program(False, PLAIN, False, True)  # the default scene's
        self._outline_program = _Program("outline.vert.glsl", "outline.frag.glsl")
        self._uv_program = _Program("fullscreen.vert.glsl", "yuv_uv.frag.glsl")
        self._empty_vao = int(GL.glGenVertexArrays(1))
        self._meshes: dict[int, list[_GpuPrimitive]] = {}
        self._gl_textures: dict[tuple[int, bool], int] = {}
        """GL texture names by ``Texture.key`` and sRGB-ness, shared by the primitives that
        use them."""
        self._centres: dict[int, tuple[npt.NDArray[np.float64], float]] = {}
        self._small_plain: dict[int, bool] = {}
        """Meshes small and plain enough to batch (see :func:`_batchable`), by key."""
        """Each mesh's local box centre and half-diagonal, by ``Mesh.key``."""
        self._env_textures: dict[str, int] = {}
        """Environment maps by name (see :meth:`_bind_environment`)."""
        self._warned_lights = False
        self._packed_lights: tuple[object, _Prepared, _Lights] | None = None
        self._batches: dict[tuple[object, ...], _Batch] = {}
        self.last_culled = 0
        """Opaque parts (or batches) the last frame left out as outside the view (all views)."""
        self.last_dense = 0
        """Opaque parts (or batches) the last frame lit per pixel in vertex-lighting mode as
        dense (all views; see DENSE_TRIANGLES_PER_PIXEL)."""
        self.lod = software
        """Levels of detail for big triangle parts while the camera moves (on by default on a
        software rasteriser; see LOD_BUDGET_MS)."""
        self._released = 0
        """Bytes of arrays freed (levels released, the temporary rows of uploads) since the
        C heap's free pages were last given back."""
        self._trimmed_at = 0.0
        self.release_levels = True
        """Once a primitive's levels made ahead (a converted file's) are uploaded, drop them
        from the loaded model (:meth:`Primitive.release_levels`). Off for a model that another
        renderer will draw too."""
        self.lod_budget_ms = LOD_BUDGET_MS
        self.lod_level = 0
        self._level_ms: dict[int, tuple[float, float]] = {}
        """Each level's last moving frame: (ms, perf_counter() when drawn)."""
        """The level moving frames are drawn at now (0: full detail)."""
        self.last_reduced = False
        """The last frame drew some part below full detail (a still camera should render
        again to refine it)."""
        self._lod_jobs: list[tuple[_GpuPrimitive, Future[tuple[npt.NDArray[np.uint32], Levels,
                                                                Clusters | None]]]] = []
        self._quick_jobs: list[tuple[_GpuPrimitive, Future[Levels]]] = []
        """Stand-in levels being made (:func:`host.lod.quick_levels`), each for a primitive
        whose own levels are made after it (:meth:`_submit_levels`)."""
        self._lod_later: list[tuple[_GpuPrimitive, _LaterJob]] = []
        """:func:`host.lod.prepare` jobs to queue once this frame's stand-ins are queued (a
        pool takes jobs in order: every part's stand-ins come before any part's own levels)."""
        self._draw_level = 0
        self._point_size = 2.0
        self._drew_reduced = False
        self._deepest = len(LOD_REDUCTIONS)
        """The deepest level the last frame could go to: the triangles' four, or a big cloud's
        (:data:`POINT_LOD_LEVELS`)."""
        self._draw_eye: npt.NDArray[np.float64] | None = None
        self._asked_parts: list[tuple[_GpuPrimitive, Primitive, list[npt.NDArray[np.float32]]]] = []
        """Mid-size parts whose levels wait to be asked for (:meth:`_ask_levels`)."""
        self.back_clusters = True
        """Skip the back-face clusters of big single-sided primitives that face away from the
        eye (:func:`host.lod.cluster_order`; off: for measuring)."""
        self.last_back_skipped = 0
        """Triangles the last frame skipped in back-face clusters (all views)."""
        self.stand_ins = True
        """Give big parts stand-in levels (:func:`host.lod.quick_levels`) while their own are
        made (off: for measuring)."""
        self.proxies = True
        """Draw batches of tiny parts as points at :data:`PROXY_LEVEL` (off: for measuring)."""
        self.last_proxies = 0
        """Batch members the last frame drew as points (:data:`PROXY_LEVEL`; all views)."""
        self._proxy_scale = 0.0
        """Pixels across of a unit radius at unit depth, in the view being drawn (times
        :data:`PROXY_AREA`)."""
        self._abort: Callable[[], bool] | None = None
        self.last_aborted = False
        """The last :meth:`render` was given up (its ``abort`` said so)."""
        self.frames_aborted = 0
        self._lod_executor: ProcessPoolExecutor | None = None
        self._lod_restarts = 0
        """Level-of-detail pools replaced after a worker died (:meth:`_background`)."""
        self.lod_workers = workers(os.environ.get("FARVIEW_LOD_WORKERS"))
        """Processes that make levels of detail and clusters (:func:`host.lod.workers`:
        ``FARVIEW_LOD_WORKERS``, else one core fewer than the machine has, 1 to 4); a bad
        value fails here, when the renderer is made."""
        self.culling = True
        """Leave out opaque parts whose bounding sphere is outside the view (off: for
        measuring)."""
        self.batching = True
        """Merge small plain parts into batches (:data:`BATCH_MAX_TRIANGLES`); off: every part
        is its own draw (for measuring)."""
        self._mesh_version: tuple[int, int] | None = None
        """The scene and structure version buffers were last pruned for."""
        self._prepared: _Prepared | None = None
        self._placement: _Placement | None = None
        self._fbos: list[int] = []
        self._nv24: av.VideoFrame | None = None
        self._textures: list[int] = []
        self._renderbuffers: list[int] = []
        self.width = 0
        self.height = 0
        self.last_timings = FrameTimings()
        self._yuv_ready = False
        self.resize(width, height)
        # R8 rows of odd width (e.g. 961-pixel chroma) must not be padded to 4 bytes.
        GL.glPixelStorei(GL.GL_PACK_ALIGNMENT, 1)

    # -- framebuffers --------------------------------------------------------------------------

    def resize(self, width: int, height: int) -> None:
        """(Re)create the framebuffers; cheap to call with the current size (no-op)."""
        if not (isinstance(width, int) and isinstance(height, int)):
            raise ValueError(f"renderer size must be integers, got {width!r}x{height!r}")
        if not (1 <= width <= MAX_SIZE and 1 <= height <= MAX_SIZE):
            raise ValueError(f"renderer size {width}x{height} is outside 1..{MAX_SIZE}")
        if (width, height) == (self.width, self.height):
            return
        self._free_framebuffers()
        self.width, self.height = width, height
        self._y_tex = _texture(width, height, GL.GL_R8, GL.GL_RED)
        self._chroma_tex = _texture(width, height, GL.GL_RG8, GL.GL_RG)
        # linear: the GPU chroma pass samples the corner shared by a 2x2 block = the block's mean
        for p in (GL.GL_TEXTURE_MIN_FILTER, GL.GL_TEXTURE_MAG_FILTER):
            GL.glTexParameteri(GL.GL_TEXTURE_2D, p, GL.GL_LINEAR)
        GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_WRAP_S, GL.GL_CLAMP_TO_EDGE)
        GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_WRAP_T, GL.GL_CLAMP_TO_EDGE)
        depth = int(GL.glGenRenderbuffers(1))
        GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, depth)
        # stencil: the selection outline is drawn only outside the selected silhouettes
        GL.glRenderbufferStorage(GL.GL_RENDERBUFFER, GL.GL_DEPTH24_STENCIL8, width, height)
        self._fbo = int(GL.glGenFramebuffers(1))
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self._fbo)
        # the main pass writes each pixel as YUV: Y to attachment 0, U and V to attachment 1
        GL.glFramebufferTexture2D(GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_TEXTURE_2D,
                                  self._y_tex, 0)
        GL.glFramebufferTexture2D(GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT1, GL.GL_TEXTURE_2D,
                                  self._chroma_tex, 0)
        GL.glFramebufferRenderbuffer(GL.GL_FRAMEBUFFER, GL.GL_DEPTH_STENCIL_ATTACHMENT,
                                     GL.GL_RENDERBUFFER, depth)
        GL.glDrawBuffers(2, [GL.GL_COLOR_ATTACHMENT0, GL.GL_COLOR_ATTACHMENT1])
        _check_fbo("main")
        self._fbos.append(self._fbo)
        self._textures += [self._y_tex, self._chroma_tex]
        self._renderbuffers.append(depth)
        self._yuv_ready = width % 2 == 0 and height % 2 == 0
        # the read-back target of the CPU chroma path and of read_rgba (luma + interleaved chroma)
        self._nv24 = av.VideoFrame(width, height, "nv24")
        if self._yuv_ready and self.chroma == "gpu":
            self._u_tex = _texture(width // 2, height // 2, GL.GL_R8, GL.GL_RED)
            self._v_tex = _texture(width // 2, height // 2, GL.GL_R8, GL.GL_RED)
            self._uv_fbo = int(GL.glGenFramebuffers(1))
            GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self._uv_fbo)
            GL.glFramebufferTexture2D(GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0,
                                      GL.GL_TEXTURE_2D, self._u_tex, 0)
            GL.glFramebufferTexture2D(GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT1,
                                      GL.GL_TEXTURE_2D, self._v_tex, 0)
            GL.glDrawBuffers(2, [GL.GL_COLOR_ATTACHMENT0, GL.GL_COLOR_ATTACHMENT1])
            _check_fbo("chroma")
            self._fbos.append(self._uv_fbo)
            self._textures += [self._u_tex, self._v_tex]
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, 0)

    def _free_framebuffers(self) -> None:
        if self._fbos:
            GL.glDeleteFramebuffers(len(self._fbos), self._fbos)
        if self._textures:
            GL.glDeleteTextures(self._textures)
        if self._renderbuffers:
            GL.glDeleteRenderbuffers(len(self._renderbuffers), self._renderbuffers)
        self._fbos, self._textures, self._renderbuffers = [], [], []

    def close(self) -> None:
        """Delete every GL object (on the owning thread, with the context current)."""
        self._free_framebuffers()
        for key in list(self._meshes):
            self._free_mesh(key)
        self._placement = self._prepared = None
        for batch_key in list(self._batches):
            self._free_batch(batch_key)
        self._free_unused_textures()
        GL.glDeleteVertexArrays(1, [self._empty_vao])
        if self._lod_executor is not None:
            self._lod_executor.shutdown(wait=False, cancel_futures=True)
        if self._env_textures:
            GL.glDeleteTextures(list(self._env_textures.values()))
            self._env_textures.clear()
        for p in (*self._mesh_programs.values(), self._outline_program, self._uv_program):
            GL.glDeleteProgram(p.id)
        self.width = self.height = 0

    # -- mesh buffers --------------------------------------------------------------------------

    def _mesh_program(self, cut: bool, features: Features, lights: bool = False,
                      env: bool = False, dense: bool = False) -> _Program:
        """The main pass's program for primitives of ``features``; ``lights``: the scene has
        point, spot or directional lights (vertex lighting then adds them per pixel); ``env``:
        image-based lighting (else the hemisphere ambient); ``dense``: for parts lit per pixel
        in vertex-lighting mode (see :data:`DENSE_TRIANGLES_PER_PIXEL`). Scene-wide choices are
        compiled in, not branched on: on llvmpipe even an untaken branch or an empty loop
        costs."""
        dense = dense and self.lighting == "vertex" and not (
            _TEX_DEFINES.intersection(features) or "POINTS" in features)
        key = (cut, features, lights, env, dense)
        if key not in self._mesh_programs:
            self._setups += 1
            defines: list[str] = ["CUT_PLANES"] if cut else []
            defines += features
            defines += ["LIGHTS"] if lights else []
            defines += ["ENVIRONMENT"] if env else []
            lit_in: tuple[str | None, str | None] = (None, "lighting.glsl")
            if "POINTS" in features:
                pass  # unlit: the fragment stage writes the base (and vertex) colour
            elif (self.lighting == "vertex" and not dense
                  and not _TEX_DEFINES.intersection(features)):
                defines.append("VERTEX_LIGHTING")
                lit_in = ("lighting.glsl", None)
                if lights:
                    defines.append("PIXEL_LIGHTS")
                    lit_in = ("lighting.glsl", "lighting.glsl")
            prog = _Program("mesh.vert.glsl", "mesh.frag.glsl", defines, lit_in)
            GL.glUseProgram(prog.id)
            for unit, role in enumerate(ROLES):
                loc = prog.loc(f"u_tex_{role}")
                if loc >= 0:
                    GL.glUniform1i(loc, unit)
            GL.glUniformMatrix3fv(prog.loc("u_uv_xf"), 5, GL.GL_TRUE, _IDENTITY_XF)
            self._mesh_programs[key] = prog
        return self._mesh_programs[key]

    def _gpu_mesh(self, mesh: Mesh) -> list[_GpuPrimitive]:
        cached = self._meshes.get(mesh.key)
        if cached is not None:
            return cached
        self._setups += 1
        out = []
        for prim in mesh.primitives:
            mat = prim.material
            usable = [(ROLES.index(role), info) for role, info in mat.textures()
                      if prim.usable(info)]
            features = {_ROLE_DEFINES[i] for i, _ in usable}
            # vertex attributes at the shaders' locations: position, normal, uv0, uv1,
            # colour, tangent
            columns: list[tuple[int, npt.NDArray[np.float32]]] = [(0, prim.positions)]
            indices = prim.indices
            point_levels: tuple[int, ...] = ()
            if prim.points:  # no normals, no textures; each vertex drawn as a point
                usable, features = [], {"POINTS"}
                if self.lod and len(prim.positions) >= POINT_LOD_MIN_POINTS:
                    indices, point_levels = _point_bands(len(prim.positions))
                else:
                    indices = np.arange(len(prim.positions), dtype=np.uint32)
            else:
                columns.append((1, prim.normals))
            sets = {info.texcoord for _, info in usable}
            if 0 in sets and prim.texcoords is not None:
                columns.append((2, prim.texcoords))
                features.add("UV0")
            if 1 in sets and prim.texcoords1 is not None:
                columns.append((3, prim.texcoords1))
                features.add("UV1")
            if prim.colors is not None:
                columns.append((4, prim.colors))
                features.add("VERTEX_COLOR")
            if "NORMAL_TEX" in features and prim.tangents is not None:
                columns.append((5, prim.tangents))
            if mat.alpha_mode == "MASK":
                features.add("ALPHA_MASK")
            elif mat.alpha_mode == "BLEND":
                features.add("ALPHA_BLEND")
            vao, vbo, ibo, index_type, uploaded_bytes = _upload_columns(columns, indices)
            self._released += uploaded_bytes  # temporaries
            uv_xf = _IDENTITY_XF.copy()
            uv_set = np.zeros(5, dtype=np.int32)
            for i, info in usable:
                uv_xf[i, :2] = np.asarray(info.transform, dtype=np.float32).reshape(2, 3)
                uv_set[i] = info.texcoord
            textures = tuple((i, self._gl_texture(info.texture, ROLES[i] in _SRGB_ROLES))
                             for i, info in usable)
            layout = tuple((loc, column.shape[1]) for loc, column in columns)
            gpu = _GpuPrimitive(vao, (vbo, ibo), len(indices), mat,
                                tuple(sorted(features)), textures, uv_xf, uv_set,
                                mat.alpha_mode == "BLEND", prim.points, index_type,
                                layout=layout)
            out.append(gpu)
            gpu.point_levels = point_levels
            gpu.clusters = prim.clusters  # made ahead (a converted file; checked by the loader)
            ahead = _levels_ahead(prim, [loc for loc, _ in columns]) if self.lod else None
            big = self.lod and not prim.points and prim.triangle_count >= LOD_MIN_TRIANGLES
            if ahead is not None:  # made ahead (a converted file, in vertex-cache order)
                _add_levels(gpu, ahead, layout)
                if self.release_levels:
                    self._released += sum(rows.nbytes + index.nbytes for rows, index in ahead)
                    prim.release_levels()
                if big and gpu.clusters is None:  # its back-face clusters, in the background
                    self._lod_jobs.append((gpu, self._background(
                        prepare, prim.positions, prim.indices, None, False)))
            elif big:
                # in the background: the levels, carrying the columns after position and
                # normal, and (unless the file brought them) the triangles in back-face
                # clusters, each in vertex-cache order (swapped in when done)
                self._submit_levels(gpu, prim, [c for _, c in columns[2:]])
            elif self.lod and not prim.points and \
                    prim.triangle_count >= LOD_ASKED_MIN_TRIANGLES:
                # the same, once moving frames are over their budget (_ask_levels)
                self._asked_parts.append((gpu, prim, [c for _, c in columns[2:]]))
        self._meshes[mesh.key] = out
        self._trim_if_freed()
        return out

    def _trim_if_freed(self, periodic: bool = False) -> None:
        """Give freed memory back to the system when over 16 MB of arrays were freed since
        the last time (levels uploaded and released, the temporary rows of uploads), and with
        ``periodic`` (after a frame) when the frame uploaded anything, and at least every
        :data:`TRIM_INTERVAL_S`: glibc keeps freed pages (big arrays', past its dynamic mmap
        threshold, and llvmpipe's per-frame memory): 50 MB more resident at 20 M triangles
        converted, 44 MB after a few frames of 1.2 M merged triangles. A trim took under 1 ms
        there."""
        now = time.monotonic()
        if self._released > 16 << 20 or (periodic and (
                self._released or now - self._trimmed_at > TRIM_INTERVAL_S)):
            return_freed_memory()
            self._released = 0
            self._trimmed_at = now

    def _gl_texture(self, texture: Texture, srgb: bool) -> int:
        """The GL texture of ``texture``: sRGB for colours (base colour and emissive are
        sRGB-encoded, so sampling returns linear colour), linear for data (normals,
        metallic-roughness, occlusion); with mipmaps when its minification filter uses them."""
        name = self._gl_textures.get((texture.key, srgb))
        if name is not None:
            return name
        self._setups += 1
        name = int(GL.glGenTextures(1))
        GL.glBindTexture(GL.GL_TEXTURE_2D, name)
        GL.glPixelStorei(GL.GL_UNPACK_ALIGNMENT, 1)
        blocks = texture.compressed
        internal = None
        if blocks is not None and (self.bptc if blocks.format == BC7 else self.s3tc):
            internal = _BLOCK_FORMATS[blocks.format][srgb]
        if blocks is not None and internal is not None:
            # as the file holds them, every level (MSFT_texture_dds)
            for level, data in enumerate(blocks.levels):
                w, h = blocks.level_size(level)
                GL.glCompressedTexImage2D(GL.GL_TEXTURE_2D, level, internal, w, h, 0,
                                          np.frombuffer(data, dtype=np.uint8))
            GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MAX_LEVEL, len(blocks.levels) - 1)
            if blocks.format == BC5:  # a normal map's x and y: alpha 0 has the shader make z
                GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_SWIZZLE_A, GL.GL_ZERO)
        else:
            try:
                pixels = texture.rgba()
            except ModelError as e:  # BC7 on a GL without it, and nothing beside it
                log.warning("%s; drawn grey", e.message)
                pixels = np.full((1, 1, 4), 128, dtype=np.uint8)
            h, w = pixels.shape[:2]
            GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, GL.GL_SRGB8_ALPHA8 if srgb else GL.GL_RGBA8, w,
                            h, 0, GL.GL_RGBA, GL.GL_UNSIGNED_BYTE, np.ascontiguousarray(pixels))
            if texture.min_filter not in (GL.GL_NEAREST, GL.GL_LINEAR):
                GL.glGenerateMipmap(GL.GL_TEXTURE_2D)
            del pixels
            texture.release_pixels()  # GL has them; the file's bytes can give them again
        for param, value in ((GL.GL_TEXTURE_MIN_FILTER, texture.min_filter),
                             (GL.GL_TEXTURE_MAG_FILTER, texture.mag_filter),
                             (GL.GL_TEXTURE_WRAP_S, texture.wrap_s),
                             (GL.GL_TEXTURE_WRAP_T, texture.wrap_t)):
            GL.glTexParameteri(GL.GL_TEXTURE_2D, param, value)
        GL.glBindTexture(GL.GL_TEXTURE_2D, 0)
        self._gl_textures[(texture.key, srgb)] = name
        return name

    def _free_unused_textures(self) -> None:
        used = {name for prims in self._meshes.values() for p in prims for _, name in p.textures}
        unused = [k for k, name in self._gl_textures.items() if name not in used]
        if unused:
            GL.glDeleteTextures([self._gl_textures.pop(k) for k in unused])

    def _free_mesh(self, key: int) -> None:
        self._centres.pop(key, None)
        self._small_plain.pop(key, None)
        self._free_gpu(self._meshes.pop(key, []))

    def _free_gpu(self, prims: Sequence[_GpuPrimitive]) -> None:
        """Delete the GL objects of ``prims`` and of their levels; their level jobs not done
        yet are cancelled (their levels are not wanted any more: a batch remade every frame,
        a part dragged, does not queue jobs up)."""
        for p in prims:
            GL.glDeleteVertexArrays(1, [p.vao])
            GL.glDeleteBuffers(2, list(p.buffers))
            self._drop_levels(p)
            if p.proxy is not None:
                GL.glDeleteVertexArrays(1, [p.proxy[0]])
                GL.glDeleteBuffers(2, list(p.proxy[2]))
                p.proxy = None
        dead = {id(p) for p in prims}
        if dead and self._asked_parts:
            self._asked_parts = [a for a in self._asked_parts if id(a[0]) not in dead]
        if dead and self._lod_jobs:
            self._lod_jobs = _cancel_jobs_of(self._lod_jobs, dead)
        if dead and self._quick_jobs:
            self._quick_jobs = _cancel_jobs_of(self._quick_jobs, dead)
        if dead and self._lod_later:
            self._lod_later = [(g, args) for g, args in self._lod_later if id(g) not in dead]

    def _batch(self, group: _Group, codes: npt.NDArray[np.int64], place: _Placement) -> _Batch:
        """The batch of the members ``codes`` (see _PRIM_BITS): reused while the same
        primitives sit at the same places, else built (vertices transformed to world space)."""
        ks = codes >> _PRIM_BITS
        prims = _members(codes, place)
        key = (group, _members_digest(prims, ks, place.worlds))
        cached = self._batches.get(key)
        if cached is not None:
            return cached
        self._setups += 1
        positions, norms, index = _merged(prims, ks, place)
        vao, vbo, ibo, index_type, uploaded_bytes = _upload_columns(
            [(0, positions), (1, norms)], index)
        self._released += positions.nbytes + norms.nbytes + index.nbytes + uploaded_bytes
        material = prims[0].material
        gpu_prim = _GpuPrimitive(vao, (vbo, ibo), len(index), material, PLAIN, (), _IDENTITY_XF,
                                 np.zeros(5, dtype=np.int32), False, index_type=index_type,
                                 layout=_POSITION_NORMAL, proxy=self._proxy(prims, positions))
        points = positions.astype(np.float64)
        lo, hi = points.min(axis=0), points.max(axis=0)
        centre = (lo + hi) / 2
        batch = _Batch(key, vao, len(index), centre,
                       float(np.linalg.norm(points - centre, axis=1).max()), gpu_prim, codes)
        self._batches[key] = batch
        return batch

    def _proxy(self, prims: list[Primitive], positions: npt.NDArray[np.float32]
               ) -> tuple[int, int, tuple[int, int], int, float] | None:
        """A batch's members as points (see :attr:`_GpuPrimitive.proxy`): each member's box
        centre (``positions``: the members' world-space vertices, in order), uploaded."""
        counts = np.array([len(p.positions) for p in prims])
        if not len(counts) or not counts.all():
            return None
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        centres = (np.minimum.reduceat(positions, starts) + np.maximum.reduceat(positions, starts)
                   ) / 2
        reach = np.linalg.norm(positions - np.repeat(centres, counts, axis=0), axis=1)
        radius = float(np.maximum.reduceat(reach, starts).mean())
        vao, vbo, ibo, index_type, uploaded = _upload_columns(
            [(0, centres.astype(np.float32))], np.arange(len(centres), dtype=np.uint32))
        self._released += uploaded
        return vao, len(centres), (vbo, ibo), index_type, radius

    def _submit_levels(self, gpu: _GpuPrimitive, prim: Primitive,
                       extra_columns: list[npt.NDArray[np.float32]]) -> None:
        """A primitive's levels (carrying ``extra_columns``, the vertex columns after position
        and normal) and, unless it has them, its back-face clusters, in the background."""
        extra = np.concatenate(extra_columns, axis=1) if extra_columns else None
        if self.stand_ins:
            self._quick_jobs.append((gpu, self._background(
                quick_levels, prim.positions, prim.indices, extra)))
        self._lod_later.append((gpu, (prim.positions, prim.indices, extra, gpu.clusters is None)))

    def _submit_later(self) -> None:
        """Queue the :func:`host.lod.prepare` jobs held back behind the stand-ins."""
        later, self._lod_later = self._lod_later, []
        for gpu, (positions, indices, extra, reorder) in later:
            self._lod_jobs.append((gpu, self._background(
                prepare, positions, indices, extra, True, LOD_REDUCTIONS, reorder)))

    def _ask_levels(self) -> None:
        """Start making levels, in the background, for what gets them only when asked: the
        mid-size parts (:data:`host.lod.LOD_ASKED_MIN_TRIANGLES`) and coarser levels
        (:func:`_batch_reductions`) for each big enough batch that has none yet
        (:data:`BATCH_LOD_MIN_TRIANGLES`). Asked for once frames drawn while the camera moves
        are over their budget (:attr:`lod_level` above 0), so a light scene never starts the
        simplifier's processes. A batch's vertices are merged again for it (they are not kept:
        45 MB at 100,000 parts)."""
        asked, self._asked_parts = self._asked_parts, []
        for gpu, prim, extra_columns in asked:
            self._submit_levels(gpu, prim, extra_columns)
        self._submit_later()
        place = self._placement
        if place is None or not self.lod:
            return
        for batch, _ in place.batches.values():
            if batch.levels_asked or batch.index_count // 3 < BATCH_LOD_MIN_TRIANGLES:
                continue
            batch.levels_asked = True
            codes = batch.codes
            positions, _, index = _merged(_members(codes, place), codes >> _PRIM_BITS, place)
            self._lod_jobs.append((batch.prim, self._background(
                prepare, positions, index, None, True,
                _batch_reductions(batch.index_count // 3, len(codes)), False,
                _weld_batch(len(positions), len(index) // 3))))

    def _background(self, fn: Callable[..., _T], *args: object) -> Future[_T]:
        """``fn(*args)`` in the level-of-detail processes. A worker that died (killed for
        memory, say) breaks its pool for good: a new pool takes its place, at most
        :data:`LOD_POOL_RESTARTS` times, after which the job fails at once (its part is
        drawn in full)."""
        if self._lod_executor is None and self._lod_restarts <= LOD_POOL_RESTARTS:
            self._lod_executor = pool(self.lod_workers)
        if self._lod_executor is not None:
            try:
                return self._lod_executor.submit(fn, *args)
            except BrokenProcessPool:
                self._lod_executor.shutdown(wait=False, cancel_futures=True)
                self._lod_executor = None
                self._lod_restarts += 1
                if self._lod_restarts <= LOD_POOL_RESTARTS:
                    log.warning("a level-of-detail process died (killed for memory?); "
                                "starting another (%d of %d)", self._lod_restarts,
                                LOD_POOL_RESTARTS)
                    return self._background(fn, *args)
                log.error("level-of-detail processes died %d times: no more levels of "
                          "detail are made on this host (new parts are drawn in full); "
                          "see the system log for why (dmesg: out of memory?)",
                          self._lod_restarts)
        failed: Future[_T] = Future()
        failed.set_exception(BrokenProcessPool("no level-of-detail processes"))
        return failed

    def _upload_lods(self) -> None:
        """Upload the levels whose simplification has finished (on the GL thread): stand-ins
        (:func:`host.lod.quick_levels`) for a primitive that has no levels yet, and its own
        levels in their place once they come. Then queue the jobs held back behind this
        frame's stand-ins."""
        stand_ins, self._quick_jobs = _finished(
            self._quick_jobs, "stand-in levels of detail failed for a primitive")
        for gpu, levels in stand_ins:  # (its own levels may still come)
            if not gpu.lods:
                self._fix_handedness(gpu, levels)
                _add_levels(gpu, levels, gpu.layout)
                self._setups += 1
            self._released += sum(rows.nbytes + index.nbytes for rows, index in levels)
        # a mesh the simplifier cannot take: drawn in full, as loaded
        done, self._lod_jobs = _finished(
            self._lod_jobs, "levels of detail failed for a primitive; drawing it in full "
            "(or at its stand-in levels, if it has them)")
        for gpu, (order, levels, clusters) in done:
            if len(order) == gpu.index_count:  # the same triangles, in back-face clusters
                order = order.astype(np.uint16 if gpu.index_type == GL.GL_UNSIGNED_SHORT
                                     else np.uint32)
                GL.glBindBuffer(GL.GL_COPY_WRITE_BUFFER, gpu.buffers[1])
                GL.glBufferSubData(GL.GL_COPY_WRITE_BUFFER, 0, order.nbytes, order)
                GL.glBindBuffer(GL.GL_COPY_WRITE_BUFFER, 0)
                gpu.clusters = clusters
            self._fix_handedness(gpu, levels)
            if levels:
                self._drop_levels(gpu)  # the stand-ins, if they came first
                self._quick_jobs = _cancel_jobs_of(self._quick_jobs, {id(gpu)})
            _add_levels(gpu, levels, gpu.layout)
            self._setups += 1
            # the job's arrays are temporaries once uploaded: the frame's trim gives them back
            self._released += order.nbytes + sum(rows.nbytes + index.nbytes
                                                 for rows, index in levels)
        self._submit_later()

    @staticmethod
    def _fix_handedness(gpu: _GpuPrimitive, levels: Levels) -> None:
        """A tangent's averaged handedness (the last float when location 5 is drawn): a sign
        again."""
        if any(loc == 5 for loc, _ in gpu.layout):
            for rows, _ in levels:
                rows[:, -1] = np.where(rows[:, -1] >= 0.0, 1.0, -1.0)

    @staticmethod
    def _drop_levels(gpu: _GpuPrimitive) -> None:
        """Delete ``gpu``'s levels' GL objects."""
        for vao, _count, buffers, _type in gpu.lods:
            GL.glDeleteVertexArrays(1, [vao])
            GL.glDeleteBuffers(2, list(buffers))
        gpu.lods.clear()

    @property
    def stand_ins_pending(self) -> int:
        """Primitives whose stand-in levels (:func:`host.lod.quick_levels`) are still being
        made."""
        return len(self._quick_jobs)

    @property
    def lod_pending(self) -> int:
        """Primitives whose levels of detail are still being made (their stand-ins not
        counted)."""
        return len(self._lod_jobs) + len(self._lod_later)

    def _free_batch(self, key: tuple[object, ...]) -> None:
        self._free_gpu([self._batches.pop(key).prim])  # (the batch's vao and buffers)

    def _prune(self, scene: Scene) -> None:
        version = (id(scene), scene.structure_version)  # a state change keeps every mesh
        if version == self._mesh_version:
            return
        self._mesh_version = version
        used = scene.meshes()
        for key in [k for k in self._meshes if k not in used]:
            self._free_mesh(key)
        for cache in (self._centres, self._small_plain):  # batched meshes have no GPU mesh
            for key in [k for k in cache if k not in used]:
                del cache[key]
        self._free_unused_textures()

    # -- drawing ------------------------------------------------------------------------------

    def render(self, scene: Scene, views: Sequence[View], near: float = 0.05,
               far: float = 100.0, *, moving: bool = False,
               abort: Callable[[], bool] | None = None) -> FrameTimings:
        """Draw ``scene`` for one view (whole frame) or two (left eye in the left half).

        ``moving``: the camera moved since the last frame; big parts may then be drawn at a
        coarser level of detail (:attr:`lod_level`, kept to :attr:`lod_budget_ms`), unless
        ``scene.detail`` pins full detail. A still camera gets full detail
        (:attr:`last_reduced` says whether a frame was coarser).

        ``scene.camera``, when set, overrides ``near``/``far`` and (for one view) the vertical
        field of view, keeping the view's aspect ratio.

        ``abort``: asked between parts; when it says True the frame is given up where it is
        (:attr:`last_aborted`; the picture is then unfinished and must not be shown, and
        :attr:`last_reduced` keeps its value). The host gives it to a frame that refines a
        coarse picture at rest, which on a heavy model takes most of a second: a camera that
        moves again meanwhile gets its frame at once instead of after it.
        """
        if len(views) not in (1, 2):
            raise ValueError(f"render takes 1 or 2 views, got {len(views)}")
        camera = scene.camera
        if camera is not None:
            near, far = camera.near, camera.far
            if camera.fov_y is not None and len(views) == 1:
                views = [View(views[0].pose, views[0].fov.with_vertical(camera.fov_y))]
        if not 0.0 < near < far:
            raise ValueError(f"clip planes need 0 < near < far, got near={near} far={far}")
        t0 = time.perf_counter()
        setups = self._setups
        self._prune(scene)
        prep = self._prepare(scene)
        if self._lod_jobs or self._quick_jobs or self._lod_later:
            self._upload_lods()
        moving = moving and self.lod and scene.detail == "auto"
        level = self.lod_level if moving else 0
        if level:
            self._ask_levels()
        self._draw_level = level
        self._point_size = scene.point_size
        self._drew_reduced = False
        self._deepest = len(LOD_REDUCTIONS)
        self._abort = abort
        self.last_aborted = False
        planes = [p.equation for p in scene.cut_planes.values()][:MAX_CUT_PLANES]

        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self._fbo)
        GL.glViewport(0, 0, self.width, self.height)
        GL.glDepthMask(GL.GL_TRUE)
        GL.glStencilMask(0xFF)
        GL.glClearBufferfv(GL.GL_COLOR, 0, _CLEAR_LUMA)
        GL.glClearBufferfv(GL.GL_COLOR, 1, _CLEAR_CHROMA)
        GL.glClearBufferfi(GL.GL_DEPTH_STENCIL, 0, 1.0, 0)
        GL.glEnable(GL.GL_DEPTH_TEST)
        GL.glEnable(GL.GL_PROGRAM_POINT_SIZE)  # point clouds: the shaders set their size
        GL.glDisable(GL.GL_BLEND)
        GL.glFrontFace(GL.GL_CW)  # the flipped projection mirrors the winding
        if prep.selected:
            GL.glEnable(GL.GL_STENCIL_TEST)
            GL.glStencilFunc(GL.GL_ALWAYS, 1, 0xFF)
            # whole silhouette, occluded or not: the outline shows through other parts
            GL.glStencilOp(GL.GL_KEEP, GL.GL_REPLACE, GL.GL_REPLACE)
        GL.glStencilMask(0x00)
        lights = self._lights(scene, prep)
        env = scene.lighting.environment != "none" and scene.lighting.environment_intensity > 0
        progs = {f: self._mesh_program(bool(planes), f, len(lights.color) > 0, env)
                 for f in prep.variants}
        dense_progs: dict[Features, _Program] = {}
        if self.lighting == "vertex" and prep.dense_candidates:
            dense_progs = {f: self._mesh_program(bool(planes), f, len(lights.color) > 0, env,
                                                 dense=True) for f in prep.variants}
        self.last_dense = 0
        if env:
            self._bind_environment(scene.lighting.environment)
        for prog in {*progs.values(), *dense_progs.values()}:
            GL.glUseProgram(prog.id)
            self._set_lighting(prog, scene, lights)
            self._set_cut_planes(prog, planes)
        eye_w = self.width // len(views)
        view_projs = []
        self.last_culled = 0
        self.last_back_skipped = 0
        self.last_proxies = 0
        aborted = False
        for i, view in enumerate(views):
            GL.glViewport(i * eye_w, 0, eye_w, self.height)
            f = view.fov
            proj = transforms.perspective_from_tangents(
                f.tan_left, f.tan_right, f.tan_up, f.tan_down, near, far)
            vp = _FLIP_Y @ proj @ transforms.view_matrix(view.pose.position, view.pose.orientation)
            view_projs.append(vp)
            self._proxy_scale = PROXY_AREA * abs(float(proj[1, 1])) * self.height
            for prog in {*progs.values(), *dense_progs.values()}:
                GL.glUseProgram(prog.id)
                GL.glUniformMatrix4fv(prog.loc("u_view_proj"), 1, GL.GL_TRUE,
                                      vp.astype(np.float32))
                GL.glUniform3f(prog.loc("u_camera"), *view.pose.position)
                GL.glUniform1f(prog.loc("u_point_size"), scene.point_size)
            eye = self._draw_eye = np.asarray(view.pose.position, dtype=np.float64)
            if prep.opaque:
                # parts outside the view are not drawn; the rest front to back (selected
                # parts last: they write the outline's stencil mask)
                visible = (np.flatnonzero(_in_frustum(vp, prep.opaque_centres, prep.opaque_radii))
                           if self.culling else np.arange(len(prep.opaque)))
                self.last_culled += len(prep.opaque) - len(visible)
                dist = np.linalg.norm(prep.opaque_centres[visible] - eye, axis=1)
                order = visible[np.lexsort((dist, prep.opaque_selected[visible]))]
                dense = (self._dense(prep, order, view, eye_w, near, level) if dense_progs
                         else None)
                if dense is None:
                    aborted = self._draw_all(progs, [prep.opaque[k] for k in order], 1.0, False)
                else:  # dense parts lit per pixel, the rest per vertex, each front to back
                    self.last_dense += int(dense.sum())
                    aborted = (self._draw_all(progs, [prep.opaque[k] for k in order[~dense]],
                                              1.0, False)
                               or self._draw_all(dense_progs,
                                                 [prep.opaque[k] for k in order[dense]], 1.0,
                                                 False))
                if aborted:
                    break
            if prep.blended or prep.see_through:
                # Blended after the opaque parts, without depth writes: BLEND materials back
                # to front, then see-through parts (whole, at SEE_THROUGH_ALPHA).
                GL.glEnable(GL.GL_BLEND)
                GL.glBlendFunc(GL.GL_SRC_ALPHA, GL.GL_ONE_MINUS_SRC_ALPHA)
                GL.glDepthMask(GL.GL_FALSE)
                if prep.blended:
                    dist = np.linalg.norm(prep.blended_centres - eye, axis=1)
                    self._draw_all(progs, [prep.blended[k] for k in np.argsort(-dist)], 1.0,
                                   True)
                if prep.see_through:
                    self._draw_all(progs, prep.see_through, SEE_THROUGH_ALPHA, None)
                GL.glDepthMask(GL.GL_TRUE)
                GL.glDisable(GL.GL_BLEND)
        self._abort = None
        if prep.selected and not aborted:
            self._draw_outlines(prep.selected, view_projs, eye_w, planes, scene.point_size)
        GL.glDisable(GL.GL_STENCIL_TEST)
        GL.glStencilMask(0xFF)
        GL.glFrontFace(GL.GL_CCW)
        GL.glBindVertexArray(0)
        glcalls.check_errors("drawing the scene")
        if aborted:  # given up: nothing to wait for, the next frame clears what was drawn
            self.last_aborted = True
            self.frames_aborted += 1
            self.last_timings = FrameTimings(render_ms=_ms(t0))
            return self.last_timings
        GL.glFinish()
        self.last_timings = FrameTimings(render_ms=_ms(t0))
        self.last_reduced = self._drew_reduced
        self._trim_if_freed(periodic=True)  # (after the frame's time)
        set_up = self._setups != setups
        # a frame that made GL objects (a model's first frame: 0.2 s for the sample, which
        # took every later frame to a coarser level and started the simplifier for nothing)
        # says nothing about drawing; one of a run of them does (a part dragged every frame)
        first_set_up, self._last_set_up = set_up and not self._last_set_up, set_up
        if moving and not first_set_up:  # keep moving frames within the budget
            ms = self.last_timings.render_ms
            now = time.perf_counter()
            self._level_ms[self._draw_level] = (ms, now)
            # deeper than the triangles' levels only while a cloud drawn has such levels
            self.lod_level = min(self.lod_level, self._deepest)
            if ms > self.lod_budget_ms and self.lod_level < self._deepest:
                self.lod_level += 1
            elif ms < 0.4 * self.lod_budget_ms and self.lod_level > 0:
                finer = self._level_ms.get(self.lod_level - 1)
                if finer is None or finer[0] <= self.lod_budget_ms or now - finer[1] > LOD_RETRY_S:
                    self.lod_level -= 1
        return self.last_timings

    def _prepare(self, scene: Scene) -> _Prepared:
        """The draw lists of this scene version: built once, reused while nothing changes.
        When only entities' states changed since the last version (selected, hidden, tinted,
        …), only the parts they reach are placed again (see :class:`_Placement`)."""
        key = (id(scene), scene.version)
        if self._prepared is not None and self._prepared.key == key:
            return self._prepared
        with gc_paused():  # an object or more for each part: see gc_paused
            place = self._placement
            if place is not None and place.scene() is scene and place.batching == self.batching:
                changed = scene.draw_items_changed(place.mark)
                if changed is not None:
                    self._place_again(place, changed)
                    place.mark = scene.state_mark()
                    return self._assemble(scene, key, place)
            return self._prepare_anew(scene, key)

    def _prepare_anew(self, scene: Scene, key: tuple[int, int]) -> _Prepared:
        mark = scene.state_mark()
        items = scene.draw_list()
        n = len(items)
        worlds = np.zeros((n, 4, 4), dtype=np.float32)
        normals = np.zeros((n, 3, 3), dtype=np.float32)
        index = PlaceIndex(items)
        invertible = np.zeros(n, dtype=bool)
        if n:
            worlds64 = stack_worlds(items)
            worlds[:] = worlds64
            m3 = worlds64[:, :3, :3]
            invertible = np.abs(np.linalg.det(m3)) > 1e-12  # zero scale: nothing to draw
            if invertible.any():
                normals[invertible] = np.linalg.inv(m3[invertible]).transpose(0, 2, 1)
        identity = np.concatenate([np.eye(4, dtype=np.float32).ravel(),
                                   np.eye(3, dtype=np.float32).ravel()])
        place = _Placement(
            scene=weakref.ref(scene), batching=self.batching, mark=mark, index=index,
            meshes=[it.mesh for it in items], worlds=worlds, normals=normals,
            invertible=invertible, grid=None, batched=[None] * n, individual={}, groups={},
            batches={}, identity=identity)
        # The batch cells: the box of the batchable parts' centres cut into BATCH_CELLS³, so
        # that a batch stays compact and can be culled.
        batchable = ([k for k, it in enumerate(items) if invertible[k] and not it.state.hidden
                      and _batchable(it, self._small_plain)] if self.batching else [])
        cells: dict[int, tuple[int, int, int]] = {}
        if batchable:
            # the boxes of many meshes at once, not kept: a batched part needs its centre only
            # here (and when its state changes, :meth:`_cell`); a cache entry a part took
            # 24 MB at 100,000 parts
            lo, hi, _ = local_bounds_of([items[k].mesh for k in batchable])
            local = (lo + hi) / 2  # (zero for a part without vertices)
            w = worlds[batchable]
            centres = np.einsum("nij,nj->ni", w[:, :3, :3], local) + w[:, :3, 3]
            lo = centres.min(axis=0)
            size = max(float((centres.max(axis=0) - lo).max()) / BATCH_CELLS, 1e-9)
            place.grid = lo, size
            found = np.clip(((centres - lo) / size).astype(np.int64), 0, BATCH_CELLS - 1)
            cells = {k: (c[0], c[1], c[2]) for k, c in zip(batchable, found.tolist(), strict=True)}
        joins: dict[_GroupKey, list[int]] = {}
        for k, it in enumerate(items):  # (a part with a cell was found batchable just now)
            cell = cells.get(k)
            self._place(place, k, it, joins, cell, batchable=cell is not None)
        self._update_batches(place, joins, {})
        used = {batch.key for batch, _ in place.batches.values()}
        for stale in [b for b in self._batches if b not in used]:
            self._free_batch(stale)
        self._placement = place
        return self._assemble(scene, key, place)

    def _place(self, place: _Placement, k: int, it: DrawItem, joins: dict[_GroupKey, list[int]],
               cell: tuple[int, int, int] | None = None, batchable: bool | None = None) -> None:
        """Put the part at place ``k`` where its state says: nowhere (hidden), in batches (its
        primitives' codes go to ``joins``), or alone. ``batchable``: whether it may be batched,
        when the caller knows (else :func:`_batchable` says)."""
        state = it.state
        if state.hidden or not place.invertible[k]:
            place.batched[k] = None
            return
        if batchable is None:
            batchable = place.batching and _batchable(it, self._small_plain)
        if batchable:
            if cell is None:
                cell = self._cell(place, k, it.mesh)
            tint = state.tint
            tint_values = (0.0, 0.0, 0.0, 0.0) if tint is None else (*tint.color, tint.weight)
            edit = state.material
            interned = place.interned
            keys = []
            for i, prim in enumerate(it.mesh.primitives):
                vkey = (id(prim.material), id(edit))
                known = place.values.get(vkey)
                if known is None:
                    known = place.values[vkey] = (_prim_draw_values(prim.material, edit),
                                                  prim.material, edit)
                gkey: _GroupKey = ((*known[0], tint_values),
                                   (*cell, _size_class(len(prim.indices) // 3)))
                gkey = interned.setdefault(gkey, gkey)  # type: ignore[assignment]
                keys.append(gkey)
                joins.setdefault(gkey, []).append(k << _PRIM_BITS | i)
            keys_t = tuple(keys)
            place.batched[k] = cast("tuple[_GroupKey, ...]", interned.setdefault(keys_t, keys_t))
            return
        local_centre = self._local_centre(it.mesh)
        gpu_prims = self._gpu_mesh(it.mesh)
        tint = state.tint
        edit = state.material
        c = np.zeros(3) if local_centre is None else local_centre
        draw = _Draw(
            selected=bool(state.selected),
            world_ptr=place.worlds.ctypes.data + k * 64,
            normal_ptr=place.normals.ctypes.data + k * 36,
            tint=(0.0, 0.0, 0.0, 0.0) if tint is None else (*tint.color, tint.weight),
            prims=[_prim_draw(p, edit) for p in gpu_prims],
            variants=frozenset(p.features for p in gpu_prims),
            blend=any(p.blend for p in gpu_prims),
            opaque=not all(p.blend for p in gpu_prims),
            outline_centre=None if local_centre is None else
            (float(local_centre[0]), float(local_centre[1]), float(local_centre[2])),
            centre=it.world[:3, :3] @ c + it.world[:3, 3],
            radius=self._world_radius(it.mesh, it.world),
            triangles=sum(p.index_count // 3 for p in gpu_prims if not p.points),
        )
        place.batched[k] = None
        place.individual[k] = draw, bool(state.see_through)

    def _cell(self, place: _Placement, k: int, mesh: Mesh) -> tuple[int, int, int]:
        """The batch cell of the part at place ``k`` (one that was not batched at first)."""
        if place.grid is None:
            return 0, 0, 0
        lo, size = place.grid
        c = self._local_centre(mesh)
        w = place.worlds[k].astype(np.float64)
        centre = w[:3, 3] if c is None else w[:3, :3] @ c + w[:3, 3]
        found = np.clip(((centre - lo) / size).astype(np.int64), 0, BATCH_CELLS - 1).tolist()
        return found[0], found[1], found[2]

    def _place_again(self, place: _Placement, changed: list[DrawItem]) -> None:
        """Take the parts of ``changed`` out of where they were and place them anew; only
        the batches they leave or join are made again."""
        joins: dict[_GroupKey, list[int]] = {}
        leaves: dict[_GroupKey, list[int]] = {}
        for it in changed:
            k = place.index[it.entity.id]
            if k < 0:
                continue  # not in this draw list (cannot happen without a structure change)
            place.individual.pop(k, None)
            was = place.batched[k]
            if was is not None:
                for i, gkey in enumerate(was):
                    leaves.setdefault(gkey, []).append(k << _PRIM_BITS | i)
            self._place(place, k, it, joins)
        self._update_batches(place, joins, leaves)

    def _update_batches(self, place: _Placement, joins: dict[_GroupKey, list[int]],
                        leaves: dict[_GroupKey, list[int]]) -> None:
        """Apply members leaving and joining groups; (re)make the batches of the groups that
        changed, free those no group uses any more."""
        empty = np.zeros(0, dtype=np.int64)
        for gkey in leaves.keys() | joins.keys():
            codes = place.groups.get(gkey, empty)
            if gkey in leaves:
                codes = codes[~np.isin(codes, leaves[gkey])]
            if gkey in joins:
                codes = np.sort(np.concatenate([codes, np.array(joins[gkey], dtype=np.int64)]))
            old = place.batches.pop(gkey, None)
            if len(codes) == 0:
                place.groups.pop(gkey, None)
            else:
                place.groups[gkey] = codes
                group, _cell = gkey
                batch = self._batch(group, codes, place)
                color, metallic, roughness, cull, emissive, unlit, batch_tint = group
                place.batches[gkey] = batch, _Draw(
                    selected=False, world_ptr=place.identity.ctypes.data,
                    normal_ptr=place.identity.ctypes.data + 64, tint=batch_tint,
                    prims=[(batch.vao, batch.index_count, PLAIN, color, metallic, roughness,
                            cull, emissive, unlit, batch.prim)],
                    variants=frozenset((PLAIN,)), blend=False, opaque=True,
                    outline_centre=None, centre=batch.centre, radius=batch.radius,
                    triangles=batch.index_count // 3)
            if old is not None and old[0].key in self._batches and (
                    gkey not in place.batches or place.batches[gkey][0] is not old[0]):
                self._free_batch(old[0].key)

    def _assemble(self, scene: Scene, key: tuple[int, int], place: _Placement) -> _Prepared:
        """The draw lists of ``place``: its parts drawn alone (in draw-list order), then its
        batches."""
        opaque: list[_Draw] = []
        blended: list[_Draw] = []
        see_through: list[_Draw] = []
        variants: set[Features] = {PLAIN}
        for k in sorted(place.individual):
            draw, through = place.individual[k]
            variants |= draw.variants
            if through:
                see_through.append(draw)
                continue
            if draw.opaque:
                opaque.append(draw)
            if draw.blend:
                blended.append(draw)
        opaque.extend(d for _, d in place.batches.values())
        triangles = np.array([d.triangles for d in opaque], dtype=np.int64)
        self._prepared = _Prepared(
            key=key, opaque=opaque,
            opaque_centres=np.array([d.centre for d in opaque]).reshape(-1, 3),
            opaque_radii=np.array([d.radius for d in opaque], dtype=np.float64),
            opaque_selected=np.array([d.selected for d in opaque], dtype=bool),
            opaque_triangles=triangles,
            dense_candidates=bool((triangles >= DENSE_MIN_TRIANGLES).any()),
            blended=blended,
            blended_centres=np.array([d.centre for d in blended]).reshape(-1, 3),
            see_through=see_through,
            selected=[d for d in opaque + see_through if d.selected]
            + [d for d in blended if d.selected and not d.opaque],
            variants=sorted(variants),
            model_lights=scene.light_list(),
            arrays=(place.worlds, place.normals, place.identity))
        return self._prepared

    def _dense(self, prep: _Prepared, order: npt.NDArray[np.intp], view: View, eye_w: int,
               near: float, level: int) -> npt.NDArray[np.bool_] | None:
        """Which of the opaque parts ``order`` are dense in this view (more triangles, at the
        level they are drawn at, than DENSE_TRIANGLES_PER_PIXEL per pixel of their bounding
        sphere's footprint); None when none is."""
        tris = prep.opaque_triangles[order]
        candidates = np.flatnonzero(tris >= DENSE_MIN_TRIANGLES)
        if not candidates.size:
            return None
        tris = tris[candidates].astype(np.float64)
        if level:  # coarser levels where a part has them
            for i, k in enumerate(order[candidates].tolist()):
                d = prep.opaque[k]
                if any(p.lods for *_, p in d.prims):
                    tris[i] = sum((p.lods[min(level, len(p.lods)) - 1][1] if p.lods else count)
                                  // 3 for _, count, *_, p in d.prims if not p.points)
        f = view.fov
        px_per_tan = min(eye_w / (f.tan_right - f.tan_left),
                         self.height / (f.tan_up - f.tan_down))
        centres = prep.opaque_centres[order[candidates]]
        radii = prep.opaque_radii[order[candidates]]
        dist2 = np.sum((centres - np.asarray(view.pose.position)) ** 2, axis=1)
        with np.errstate(invalid="ignore", over="ignore"):
            r_px = radii / np.sqrt(np.maximum(dist2 - radii ** 2, near * near)) * px_per_tan
            area = np.minimum(np.pi * r_px ** 2, float(eye_w * self.height))
        area = np.where(np.isfinite(area), area, float(eye_w * self.height))
        dense = np.zeros(len(order), dtype=bool)
        dense[candidates] = tris > DENSE_TRIANGLES_PER_PIXEL * area
        return dense if dense.any() else None

    def _local_box(self, mesh: Mesh) -> tuple[npt.NDArray[np.float64], float] | None:
        """The centre and half-diagonal of the mesh's local bounds (cached), None without
        vertices."""
        if mesh.key not in self._centres:
            bounds = mesh.local_bounds()
            if bounds is None:
                return None
            self._centres[mesh.key] = ((bounds[0] + bounds[1]) / 2,
                                       float(np.linalg.norm(bounds[1] - bounds[0]) / 2))
        return self._centres[mesh.key]

    def _world_radius(self, mesh: Mesh, world: npt.NDArray[np.float64]) -> float:
        """A radius around the part's centre that holds it in world space (its local box's
        half-diagonal times the largest scale of ``world``)."""
        box = self._local_box(mesh)
        if box is None:
            return 0.0
        r = box[1] * float(np.linalg.norm(world[:3, :3], axis=0).max())
        return r if math.isfinite(r) else math.inf

    def _local_centre(self, mesh: Mesh) -> npt.NDArray[np.float64] | None:
        box = self._local_box(mesh)
        return None if box is None else box[0]

    @staticmethod
    def _set_cut_planes(prog: _Program, planes: list[tuple[float, float, float, float]]) -> None:
        GL.glUniform1i(prog.loc("u_cut_count"), len(planes))
        if planes:
            GL.glUniform4fv(prog.loc("u_cut_planes"), len(planes),
                            np.asarray(planes, dtype=np.float32))
        for i in range(MAX_CUT_PLANES):
            (GL.glEnable if i < len(planes) else GL.glDisable)(GL.GL_CLIP_DISTANCE0 + i)

    def _draw_outlines(self, draws: list[_Draw], view_projs: list[npt.NDArray[np.float64]],
                       eye_w: int, planes: list[tuple[float, float, float, float]],
                       point_size: float) -> None:
        """Second pass over the selected parts: a screen-space-dilated copy where the stencil
        does not hold the parts themselves, without depth test (visible through occluders).
        Point clouds: each point drawn bigger by the outline's width on each side."""
        prog = self._outline_program
        GL.glUseProgram(prog.id)
        self._set_cut_planes(prog, planes)
        GL.glUniform4f(prog.loc("u_yuva"), *_yuv(OUTLINE_COLOR), OUTLINE_COLOR[3])
        GL.glUniform2f(prog.loc("u_width_ndc"), 2.0 * OUTLINE_PX / eye_w,
                       2.0 * OUTLINE_PX / self.height)
        GL.glUniform1f(prog.loc("u_point_size"), point_size + 2.0 * OUTLINE_PX)
        level = self._draw_level
        GL.glStencilFunc(GL.GL_NOTEQUAL, 1, 0xFF)
        GL.glStencilMask(0x00)
        GL.glDisable(GL.GL_DEPTH_TEST)
        loc_model, loc_centre = prog.loc("u_model"), prog.loc("u_center")
        for i, vp in enumerate(view_projs):
            GL.glViewport(i * eye_w, 0, eye_w, self.height)
            GL.glUniformMatrix4fv(prog.loc("u_view_proj"), 1, GL.GL_TRUE, vp.astype(np.float32))
            for d in draws:
                if d.outline_centre is None:
                    continue
                glcalls.uniform_matrix4fv(loc_model, 1, 1, d.world_ptr)
                glcalls.uniform3f(loc_centre, *d.outline_centre)
                for vao, count, *_, p in d.prims:
                    glcalls.bind_vertex_array(vao)
                    if p.points:  # not pushed outwards: each point's halo is its own
                        GL.glUniform2f(prog.loc("u_width_ndc"), 0.0, 0.0)
                        if level and p.point_levels:  # as Renderer._draw draws it
                            count, size = _point_level(p, level, point_size)
                            GL.glUniform1f(prog.loc("u_point_size"), size + 2.0 * OUTLINE_PX)
                        glcalls.draw_elements(GL.GL_POINTS, count, p.index_type, None)
                        GL.glUniform1f(prog.loc("u_point_size"), point_size + 2.0 * OUTLINE_PX)
                        GL.glUniform2f(prog.loc("u_width_ndc"), 2.0 * OUTLINE_PX / eye_w,
                                       2.0 * OUTLINE_PX / self.height)
                    else:
                        glcalls.draw_elements(GL.GL_TRIANGLES, count, p.index_type, None)
        GL.glEnable(GL.GL_DEPTH_TEST)
        GL.glDisable(GL.GL_STENCIL_TEST)

    def _set_lighting(self, prog: _Program, scene: Scene, lights: _Lights) -> None:
        lt = scene.lighting
        key = np.asarray(lt.key_direction)
        fill = np.asarray(lt.fill_direction)
        GL.glUniform3f(prog.loc("u_key_dir"), *(key / np.linalg.norm(key)))
        GL.glUniform3f(prog.loc("u_key_color"), *(np.asarray(lt.key_color) * lt.key_intensity))
        GL.glUniform3f(prog.loc("u_fill_dir"), *(fill / np.linalg.norm(fill)))
        GL.glUniform1f(prog.loc("u_fill"), lt.fill_intensity)
        GL.glUniform1f(prog.loc("u_ambient"), lt.ambient)
        count = len(lights.color)
        GL.glUniform1i(prog.loc("u_light_count"), count)
        if count:
            GL.glUniform4fv(prog.loc("u_light_pos"), count, lights.pos)
            GL.glUniform4fv(prog.loc("u_light_dir"), count, lights.dir)
            GL.glUniform3fv(prog.loc("u_light_color"), count, lights.color)
            GL.glUniform2fv(prog.loc("u_light_cone"), count, lights.cone)
        env = lt.environment != "none" and lt.environment_intensity > 0
        GL.glUniform1f(prog.loc("u_env"), lt.environment_intensity if env else 0.0)
        if env:
            GL.glUniform3fv(prog.loc("u_sh"), 9, environment(lt.environment).sh)
            GL.glUniform1i(prog.loc("u_env_tex"), ENV_UNIT)

    def _bind_environment(self, name: str) -> None:
        """Bind environment ``name``'s specular levels (one texture's mip chain) to
        :data:`ENV_UNIT`, uploading them the first time."""
        tex = self._env_textures.get(name)
        if tex is None:
            env = environment(name)
            tex = int(GL.glGenTextures(1))
            GL.glBindTexture(GL.GL_TEXTURE_2D, tex)
            GL.glPixelStorei(GL.GL_UNPACK_ALIGNMENT, 1)
            for level, pixels in enumerate(env.levels):
                h, w = pixels.shape[:2]
                GL.glTexImage2D(GL.GL_TEXTURE_2D, level, GL.GL_RGB16F, w, h, 0, GL.GL_RGB,
                                GL.GL_FLOAT, np.ascontiguousarray(pixels, dtype=np.float32))
            for param, value in ((GL.GL_TEXTURE_BASE_LEVEL, 0),
                                 (GL.GL_TEXTURE_MAX_LEVEL, len(env.levels) - 1),
                                 (GL.GL_TEXTURE_MIN_FILTER, GL.GL_LINEAR_MIPMAP_LINEAR),
                                 (GL.GL_TEXTURE_MAG_FILTER, GL.GL_LINEAR),
                                 (GL.GL_TEXTURE_WRAP_S, GL.GL_REPEAT),
                                 (GL.GL_TEXTURE_WRAP_T, GL.GL_CLAMP_TO_EDGE)):
                GL.glTexParameteri(GL.GL_TEXTURE_2D, param, value)
            self._env_textures[name] = tex
        GL.glActiveTexture(GL.GL_TEXTURE0 + ENV_UNIT)
        GL.glBindTexture(GL.GL_TEXTURE_2D, tex)
        GL.glActiveTexture(GL.GL_TEXTURE0)

    def _lights(self, scene: Scene, prep: _Prepared) -> _Lights:
        """The scene's lights and its models', as the shaders' uniform arrays (at most
        MAX_LIGHTS: the scene's first)."""
        cached = self._packed_lights
        if cached is not None and cached[0] is scene.lighting and cached[1] is prep:
            return cached[2]  # both immutable: packed once, not every frame
        lights = [*scene.lighting.lights, *prep.model_lights]
        if len(lights) > MAX_LIGHTS and not self._warned_lights:
            log.warning("%d lights in the scene; drawing the first %d (the scene API's first, "
                        "then the models')", len(lights), MAX_LIGHTS)
            self._warned_lights = True
        packed = _pack_lights(lights[:MAX_LIGHTS])
        self._packed_lights = (scene.lighting, prep, packed)
        return packed

    def _draw_all(self, progs: dict[Features, _Program], draws: list[_Draw], alpha: float,
                  blend: bool | None) -> bool:
        """``draws`` with each variant's program in turn. ``blend``: only the primitives with
        (True) or without (False) a BLEND material; None: all of them. True when the frame's
        ``abort`` gave it up."""
        for features, prog in progs.items():
            GL.glUseProgram(prog.id)
            GL.glUniform1f(prog.loc("u_alpha"), alpha)
            reduced, skipped, aborted, deepest, proxies = self._draw(
                prog, draws, features, blend, self._draw_level,
                self._draw_eye if self.back_clusters else None, self._abort, self._point_size,
                (self._draw_eye, self._proxy_scale)
                if self.proxies and self._draw_level >= PROXY_LEVEL and self._draw_eye is not None
                else None)
            self._drew_reduced |= reduced
            self.last_proxies += proxies
            self._deepest = max(self._deepest, deepest)
            self.last_back_skipped += skipped
            if aborted:
                return True
        return False

    @staticmethod
    def _draw(prog: _Program, draws: list[_Draw], features: Features,
              blend: bool | None, level: int = 0,
              eye: npt.NDArray[np.float64] | None = None,
              abort: Callable[[], bool] | None = None,
              point_size: float = 1.0,
              proxy: tuple[npt.NDArray[np.float64], float] | None = None
              ) -> tuple[bool, int, bool, int, int]:
        """The per-part loop: ctypes calls only (see :mod:`host.glcalls`). Draws the
        primitives of variant ``features`` (and of ``blend``, see :meth:`_draw_all`), at
        level of detail ``level`` where a primitive has one. With ``eye`` (the view's, in the
        world), a single-sided primitive drawn in full skips its back-face clusters that face
        away from it. ``abort`` is asked before each part after the first (and between the
        :data:`POINT_PIECE`s of a big point cloud drawn in full). A big point cloud
        at a level draws that level's points (:func:`_point_bands`), each √2 times as wide a
        level, up to :data:`POINT_LOD_MAX_SIZE`: a quarter of the points at twice the area, so
        half the pixels a level and few holes (twice as wide kept the area, and a dense cloud,
        drawn over each pixel many times, then took 80 ms a moving frame at 5 M points and
        1280 × 720, against 30-48 ms so); the rest are drawn ``point_size`` wide (the
        program's). With ``proxy`` (the eye, and :attr:`Renderer._proxy_scale`), a batch whose
        members look at most :data:`PROXY_MAX_PX` across is drawn as one point a member
        (:attr:`_GpuPrimitive.proxy`). Returns whether some primitive was coarser, the
        triangles skipped, whether ``abort`` said stop, the most levels a cloud drawn coarser
        has (0: none), and the members drawn as points."""
        reduced = False
        proxies = 0
        deepest = 0
        skipped = 0
        loc_model, loc_normal = prog.loc("u_model"), prog.loc("u_normal_matrix")
        loc_color, loc_tint = prog.loc("u_base_color"), prog.loc("u_tint")
        loc_metal, loc_rough = prog.loc("u_metallic"), prog.loc("u_roughness")
        loc_emissive, loc_unlit = prog.loc("u_emissive"), prog.loc("u_unlit")
        loc_xf, loc_set = prog.loc("u_uv_xf"), prog.loc("u_uv_set")
        loc_cutoff = prog.loc("u_alpha_cutoff")
        loc_nscale, loc_occ = prog.loc("u_normal_scale"), prog.loc("u_occlusion_strength")
        loc_proxy_px = prog.loc("u_proxy_px")
        rich = features != PLAIN
        gl = glcalls
        if proxy is not None:  # (the eye is the same for every batch drawn as points)
            gl.uniform3f(prog.loc("u_proxy_eye"), *proxy[0])
        triangles, cull_face = GL.GL_TRIANGLES, GL.GL_CULL_FACE
        if "POINTS" in features:
            triangles = GL.GL_POINTS
        texture_2d, texture0 = GL.GL_TEXTURE_2D, GL.GL_TEXTURE0
        culling = False
        gl.disable(cull_face)
        stencil = -1
        emissive_set: tuple[float, float, float] | None = None
        unlit_set = -1.0
        drawn = 0
        aborted = False
        for d in draws:
            if features not in d.variants:
                continue
            if abort is not None and drawn and abort():
                aborted = True
                break
            drawn += 1
            local: npt.NDArray[np.float64] | None = None  # the eye in the part's own space
            want = 0xFF if d.selected else 0x00
            if want != stencil:
                gl.stencil_mask(want)
                stencil = want
            gl.uniform_matrix4fv(loc_model, 1, 1, d.world_ptr)
            gl.uniform_matrix3fv(loc_normal, 1, 1, d.normal_ptr)
            gl.uniform4f(loc_tint, *d.tint)
            for vao, count, feat, color, metallic, roughness, cull, emissive, unlit, p in d.prims:
                if feat != features or (blend is not None and p.blend != blend):
                    continue
                gl.uniform4f(loc_color, *color)
                gl.uniform1f(loc_metal, metallic)
                gl.uniform1f(loc_rough, roughness)
                if emissive != emissive_set:
                    gl.uniform3f(loc_emissive, *emissive)
                    emissive_set = emissive
                if unlit != unlit_set:
                    gl.uniform1f(loc_unlit, unlit)
                    unlit_set = unlit
                if rich:
                    m = p.material
                    gl.uniform_matrix3fv(loc_xf, 5, 1, p.uv_xf.ctypes.data)
                    gl.uniform1iv(loc_set, 5, p.uv_set.ctypes.data)
                    gl.uniform1f(loc_cutoff, m.alpha_cutoff)
                    if m.normal_texture is not None:
                        gl.uniform1f(loc_nscale, m.normal_texture.scale)
                    if m.occlusion_texture is not None:
                        gl.uniform1f(loc_occ, m.occlusion_texture.scale)
                    for unit, name in p.textures:
                        gl.active_texture(texture0 + unit)
                        gl.bind_texture(texture_2d, name)
                # glTF: single-sided materials are back-face culled (and llvmpipe then skips
                # rasterising about half the triangles); double-sided ones are lit from both sides.
                if cull != culling:
                    (gl.enable if cull else gl.disable)(cull_face)
                    culling = cull
                index_type = p.index_type
                if proxy is not None and p.proxy is not None:
                    p_vao, p_count, _, p_type, radius = p.proxy
                    eye_p, scale = proxy
                    nearest = math.dist(d.centre, eye_p) - d.radius
                    if radius * scale <= PROXY_MAX_PX * max(nearest, 1e-6):
                        gl.uniform1f(loc_proxy_px, radius * scale)
                        gl.bind_vertex_array(p_vao)
                        gl.draw_elements(GL.GL_POINTS, p_count, p_type, None)
                        gl.uniform1f(loc_proxy_px, 0.0)
                        reduced = True
                        proxies += p_count
                        continue
                if level and p.lods:
                    vao, count, _, index_type = p.lods[min(level, len(p.lods)) - 1]
                    reduced = True
                elif level and p.point_levels:
                    count, size = _point_level(p, level, point_size)
                    reduced = True
                    deepest = max(deepest, len(p.point_levels))
                    loc_size = prog.loc("u_point_size")
                    gl.uniform1f(loc_size, size)
                    gl.bind_vertex_array(vao)
                    gl.draw_elements(triangles, count, index_type, None)
                    gl.uniform1f(loc_size, point_size)
                    continue
                elif cull and eye is not None and p.clusters is not None:
                    if local is None:
                        local = _eye_in_mesh(d.world_ptr, eye)
                    ranges = (_facing_ranges(p.clusters, local, index_type)
                              if len(local) else None)
                    if ranges is not None:
                        counts, offsets = ranges
                        skipped += (count - int(counts.sum())) // 3
                        if len(counts):
                            gl.bind_vertex_array(vao)
                            gl.multi_draw_elements(triangles, counts.ctypes.data, index_type,
                                                   offsets.ctypes.data, len(counts))
                        continue
                gl.bind_vertex_array(vao)
                if abort is not None and p.point_levels and count > POINT_PIECE:
                    width = _index_width(index_type)
                    for first in range(0, count, POINT_PIECE):
                        if first and abort():
                            aborted = True
                            break
                        gl.draw_elements(triangles, min(POINT_PIECE, count - first), index_type,
                                         first * width)
                    if aborted:
                        break
                    continue
                gl.draw_elements(triangles, count, index_type, None)
            if aborted:
                break
        gl.disable(cull_face)
        gl.stencil_mask(0x00)
        gl.active_texture(texture0)
        return reduced, skipped, aborted, deepest, proxies

    def _read(self, fbo: int, attachment: int, fmt: int, plane: av.video.plane.VideoPlane,
              channels: int) -> None:
        """glReadPixels straight into a frame plane (no copy), honouring its line stride."""
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, fbo)
        GL.glReadBuffer(attachment)
        GL.glPixelStorei(GL.GL_PACK_ROW_LENGTH, plane.line_size // channels)
        _raw_read_pixels(0, 0, plane.width, plane.height, fmt, GL.GL_UNSIGNED_BYTE,
                         ctypes.c_void_p(plane.buffer_ptr))
        GL.glPixelStorei(GL.GL_PACK_ROW_LENGTH, 0)

    def _read_nv24(self) -> av.VideoFrame:
        """Luma and full-resolution interleaved chroma, as they are in the main targets."""
        frame = self._nv24
        assert frame is not None
        self._read(self._fbo, GL.GL_COLOR_ATTACHMENT0, GL.GL_RED, frame.planes[0], 1)
        self._read(self._fbo, GL.GL_COLOR_ATTACHMENT1, GL.GL_RG, frame.planes[1], 2)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, 0)
        return frame

    def read_rgba(self) -> npt.NDArray[np.uint8]:
        """The last rendered frame, (H, W, 4) uint8, top row first, converted back from the
        full-resolution YUV targets (within a few levels of the shaded colour; alpha 255)."""
        t0 = time.perf_counter()
        frame = self._read_nv24()
        y = plane_array(frame.planes[0], self.width, self.height)
        uv = plane_array(frame.planes[1], self.width, self.height, 2)
        yuv = np.concatenate([y[:, :, None], uv], axis=2) / 255.0 - _YUV_OFFSET
        rgb = np.clip(np.rint(yuv @ _YUV_TO_RGB.T * 255.0), 0, 255)
        img = np.empty((self.height, self.width, 4), dtype=np.uint8)
        img[:, :, :3] = rgb
        img[:, :, 3] = 255
        self.last_timings = FrameTimings(self.last_timings.render_ms, 0.0, _ms(t0))
        return img

    def read_frame(self) -> av.VideoFrame:
        """The last frame as a ``yuv420p`` :class:`av.VideoFrame` (BT.601 limited range, top row
        first), ready for the encoder. Needs an even width and height.

        Luma is as the main pass wrote it; each 2×2 block's chroma is averaged by swscale
        (``chroma="cpu"``) or by the quarter-resolution GPU pass (``chroma="gpu"``).
        """
        if not self._yuv_ready:
            raise ValueError(f"YUV 4:2:0 needs an even width and height, the renderer is "
                             f"{self.width}x{self.height}; resize to even numbers")
        if self.chroma == "cpu":
            t0 = time.perf_counter()
            nv24 = self._read_nv24()
            t1 = time.perf_counter()
            # swscale's unscaled NV24 -> YUV420P path: a copy of Y, a 2x2 mean of U and V
            out = self._reformatter.reformat(nv24, format="yuv420p")
            self.last_timings = FrameTimings(self.last_timings.render_ms, _ms(t1), (t1 - t0) * 1e3)
            return out
        t0 = time.perf_counter()
        GL.glDisable(GL.GL_DEPTH_TEST)
        GL.glDisable(GL.GL_BLEND)
        GL.glDisable(GL.GL_CULL_FACE)
        GL.glBindVertexArray(self._empty_vao)
        GL.glActiveTexture(GL.GL_TEXTURE0)
        GL.glBindTexture(GL.GL_TEXTURE_2D, self._chroma_tex)
        GL.glBindFramebuffer(GL.GL_DRAW_FRAMEBUFFER, self._uv_fbo)
        GL.glViewport(0, 0, self.width // 2, self.height // 2)
        GL.glUseProgram(self._uv_program.id)
        GL.glUniform1i(self._uv_program.loc("u_chroma"), 0)
        GL.glDrawArrays(GL.GL_TRIANGLES, 0, 3)
        GL.glBindVertexArray(0)
        GL.glFinish()
        convert_ms = _ms(t0)
        t1 = time.perf_counter()
        out = av.VideoFrame(self.width, self.height, "yuv420p")
        self._read(self._fbo, GL.GL_COLOR_ATTACHMENT0, GL.GL_RED, out.planes[0], 1)
        self._read(self._uv_fbo, GL.GL_COLOR_ATTACHMENT0, GL.GL_RED, out.planes[1], 1)
        self._read(self._uv_fbo, GL.GL_COLOR_ATTACHMENT1, GL.GL_RED, out.planes[2], 1)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, 0)
        self.last_timings = FrameTimings(self.last_timings.render_ms, convert_ms, _ms(t1))
        return out

    def read_yuv420(
        self,
    ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
        """:meth:`read_frame` as (Y, U, V) arrays (H×W, H/2×W/2, H/2×W/2): writable views
        into the frame's planes, which may be wider than the image (line padding)."""
        return yuv420_planes(self.read_frame())

