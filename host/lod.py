"""Levels of detail: coarser versions of big triangle meshes (quadric decimation through the
pinned ``fast-simplification`` package).

Runs in child processes (:func:`pool`, :func:`workers` of them, spawned: no GL state or
threads are inherited): the simplifier holds the GIL while it works, and a render host's render
thread and event loop must not wait seconds for it.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import numpy.typing as npt

LOD_MIN_TRIANGLES = 16_384
"""Triangle primitives at least this big get coarser levels of detail, carrying their other
vertex attributes (texture coordinates, colours, tangents): made by the converter
(``MSFT_lod``), or else by the renderer in a child process (:func:`pool`)."""
LOD_ASKED_MIN_TRIANGLES = 4096
"""Triangle primitives at least this big, and smaller than :data:`LOD_MIN_TRIANGLES`, get
their levels (and back-face clusters) from the renderer only once moving frames are over their
budget, as batches do: a model of mid-size parts that draws in time never starts the child
process. bench_scale's 1 M triangles in 64 parts of 15,600: 60.6 ms while moving and 63.9 at
rest without levels, 19.7 (level 1) and 53.2 with them."""
LOD_REDUCTIONS = (0.75, 0.75, 0.75, 0.75)
"""Each level keeps a quarter of the triangles of the level before it: levels 1 to 4 keep 1/4,
1/16, 1/64 and 1/256 of the full mesh."""

Levels = list[tuple[npt.NDArray[np.float32], npt.NDArray[np.uint32]]]


def _part1by2(v: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """Spread the low 10 bits of each value to every third bit (for a 30-bit Morton code)."""
    v = v & np.uint64(0x3FF)
    v = (v | (v << np.uint64(16))) & np.uint64(0x030000FF)
    v = (v | (v << np.uint64(8))) & np.uint64(0x0300F00F)
    v = (v | (v << np.uint64(4))) & np.uint64(0x030C30C3)
    return (v | (v << np.uint64(2))) & np.uint64(0x09249249)


def morton_order(points: npt.NDArray[np.floating]) -> npt.NDArray[np.uint32]:
    """The order of (N, 3) ``points`` along a Morton curve through a grid of 1024 cubic cells
    along their box's longest side (stable: points in one cell keep their order). Ray casts'
    chunks and the converter's point clouds use it: consecutive points are then neighbours.
    (Cells as long as the box on every side spend the curve's splits on a flat scan's thin
    side: a 10 × 10 × 0.5 m cloud's chunks of 1,024 points were too long, 6.3 m across on
    average, for the ray caster to take them as they were; cubic cells make them 3.7.)"""
    lo = points.min(axis=0)
    # (a box wider than float32 holds, ±3e38 apart, overflows to an infinite side: every
    # point is then in the first cell, and keeps its order)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        side = float((points.max(axis=0) - lo).max()) if len(points) else 0.0
        cell = np.nan_to_num((points - lo) / max(side, 1e-30) * 1023.0)
    q = np.clip(cell, 0, 1023).astype(np.uint64)
    del cell
    code = _part1by2(q[:, 0]) | (_part1by2(q[:, 1]) << np.uint64(1)) | \
        (_part1by2(q[:, 2]) << np.uint64(2))
    del q
    return np.argsort(code, kind="stable").astype(np.uint32)


def cache_order(vertices: npt.NDArray[np.float32], indices: npt.NDArray[np.uint32]
                ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint32]]:
    """The same triangles in the order a vertex cache likes, and the vertices (rows of any
    attributes) renumbered in the order they are first used, unused ones left out
    (meshoptimizer's ``optimizeVertexCache`` and ``optimizeVertexFetchRemap``, through the pinned
    ``meshopt``). A software rasteriser shades a vertex again each time it has left its small
    cache: on llvmpipe a vertex-lit 8 M-triangle model of spheres, whose index buffer ran row
    by row, drew in about two thirds of the time once reordered."""
    import meshopt

    if not len(indices):
        return vertices, indices
    new_indices, remap, unique = meshopt.reorder_mesh(np.asarray(indices, dtype=np.uint32), True, False)
    used = remap < unique  # remap covers the vertices up to the highest index used
    out = np.empty((unique, *vertices.shape[1:]), dtype=vertices.dtype)
    out[remap[used]] = vertices[:len(remap)][used]
    return out, np.ascontiguousarray(new_indices, dtype=np.uint32)


def triangle_order(indices: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]:
    """The same triangles (winding kept) in vertex-cache order, over the same vertices: what
    :func:`cache_order` does to the triangles, mapped back to the input's vertex numbering, so
    that only the index buffer changes."""
    import meshopt

    if not len(indices):
        return indices
    new_indices, remap, unique = meshopt.reorder_mesh(np.asarray(indices, dtype=np.uint32), True, False)
    used = remap < unique
    original = np.empty(unique, dtype=np.uint32)
    original[remap[used]] = np.nonzero(used)[0]
    return np.ascontiguousarray(original[new_indices], dtype=np.uint32)


CLUSTER_TRIANGLES = 256
"""Triangles in a back-face cluster (:func:`cluster_order`) at most."""
_PER_CELL = 0.25
_MAX_SIDE = 32
CLUSTER_MARGIN = 1e-3
"""Radians added to each cluster's normal cone: a triangle within this of edge-on, which GL's
float32 arithmetic may still take for front-facing, keeps its cluster drawn."""

Clusters = tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]
"""(first triangle of each cluster and the triangle count after the last, (C + 1,); per
cluster its bounding sphere's centre and radius, its normal cone's axis and the sine of its
half-angle, (C, 8); a sine over 1 for a cluster never culled)."""


def cluster_order(positions: npt.NDArray[np.float32], indices: npt.NDArray[np.uint32],
                  size: int = CLUSTER_TRIANGLES) -> tuple[npt.NDArray[np.uint32], Clusters]:
    """The same triangles (winding kept, over the same vertices) in clusters that face about
    the same way, each cluster's triangles in vertex-cache order, and each cluster's bounds
    (:data:`Clusters`): a renderer skips a cluster whose every triangle faces away from the eye
    (:func:`facing_clusters`), the triangles GL would cull one by one after shading their
    vertices. The triangles are sorted, stably from vertex-cache order
    (:func:`triangle_order`), by their normal's cell on an octahedral map (cells in Morton
    order, so that the cells facing one way are runs; a quarter of a cluster's worth of
    triangles a cell on average, at most 32 × 32 cells: narrower cones than 16 × 16 left out
    more triangles, 48 % of a rippled ball's instead of 44 %, 57 % of a smooth one's instead of
    55 %); each cell is cut into clusters of at most ``size``."""
    tris = triangle_order(indices).reshape(-1, 3)
    count = len(tris)
    if not count:
        return tris.reshape(-1), (np.zeros(1, dtype=np.int64), np.zeros((0, 8)))
    pts = np.asarray(positions, dtype=np.float64)
    a, b, c = pts[tris[:, 0]], pts[tris[:, 1]], pts[tris[:, 2]]
    n = np.cross(b - a, c - a)
    length = np.sqrt(np.einsum("ij,ij->i", n, n))
    ok = length > 0
    unit = n / np.where(ok, length, 1.0)[:, None]
    # octahedral map of the unit normal onto [-1, 1]², a cell index from it
    l1 = np.abs(unit).sum(axis=1)
    l1[l1 == 0] = 1.0
    ox, oy, oz = (unit / l1[:, None]).T
    fx = np.where(oz < 0, (1 - np.abs(oy)) * np.sign(ox), ox)
    fy = np.where(oz < 0, (1 - np.abs(ox)) * np.sign(oy), oy)
    side = int(np.clip(2 ** round(math.log2(max(1.0, math.sqrt(count / (_PER_CELL * size))))), 2, _MAX_SIDE))
    qx = np.clip(((fx + 1) / 2 * side).astype(np.int64), 0, side - 1)
    qy = np.clip(((fy + 1) / 2 * side).astype(np.int64), 0, side - 1)
    cell = np.zeros(count, dtype=np.int64)
    for bit in range(side.bit_length()):  # Morton order of (qx, qy)
        cell |= ((qx >> bit) & 1) << (2 * bit) | ((qy >> bit) & 1) << (2 * bit + 1)
    sort = np.argsort(cell, kind="stable")
    tris, cell, n, unit, ok = tris[sort], cell[sort], n[sort], unit[sort], ok[sort]
    a, b, c = a[sort], b[sort], c[sort]
    new_cell = np.ones(count, dtype=bool)
    new_cell[1:] = cell[1:] != cell[:-1]
    cell_start = np.flatnonzero(new_cell)
    rank = np.arange(count) - np.repeat(cell_start, np.diff(np.append(cell_start, count)))
    first = np.flatnonzero(new_cell | (rank % size == 0))
    starts = np.append(first, count).astype(np.int64)
    owner = np.repeat(np.arange(len(first)), np.diff(starts))
    axis = np.add.reduceat(n, first, axis=0)
    norm = np.sqrt(np.einsum("ij,ij->i", axis, axis))
    valid = norm > 0
    axis /= np.where(valid, norm, 1.0)[:, None]
    cos = np.where(ok, np.einsum("ij,ij->i", unit, axis[owner]), 1.0)
    angle = np.arccos(np.clip(np.minimum.reduceat(cos, first), -1.0, 1.0)) + CLUSTER_MARGIN
    sin = np.where(valid & (angle < math.pi / 2), np.sin(angle), 2.0)
    lo = np.minimum.reduceat(np.minimum(np.minimum(a, b), c), first, axis=0)
    hi = np.maximum.reduceat(np.maximum(np.maximum(a, b), c), first, axis=0)
    centre = (lo + hi) / 2
    mid = centre[owner]
    reach = np.maximum(np.maximum(np.einsum("ij,ij->i", a - mid, a - mid),
                                  np.einsum("ij,ij->i", b - mid, b - mid)),
                       np.einsum("ij,ij->i", c - mid, c - mid))
    radius = np.sqrt(np.maximum.reduceat(reach, first)) * (1 + 1e-6) + 1e-9
    bounds = np.concatenate([centre, radius[:, None], axis, sin[:, None]], axis=1)
    return np.ascontiguousarray(tris.reshape(-1), dtype=np.uint32), (starts, bounds)


def facing_clusters(clusters: Clusters, eye: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Which clusters may have a triangle facing ``eye`` (a point in the mesh's own space; a
    perspective view): False only where every point of the cluster's sphere lies inside the
    cone of directions from the eye that see every normal of its cone from behind (the cone's
    axis ``a`` and half-angle θ: ``cos θ (w·a) − sin θ |w × a| ≥ r`` for ``w`` the centre less
    the eye). Whether a triangle faces the eye is the sign of a determinant that an affine map
    with a positive determinant keeps, so the eye may be taken into the mesh's space instead
    of the clusters into the world."""
    bounds = clusters[1]
    w = bounds[:, :3] - eye
    along = np.einsum("ij,ij->i", w, bounds[:, 4:7])
    across = np.sqrt(np.maximum(np.einsum("ij,ij->i", w, w) - along * along, 0.0))
    sin = bounds[:, 7]
    cos = np.sqrt(np.maximum(1.0 - sin * sin, 0.0))
    away: npt.NDArray[np.bool_] = (sin <= 1.0) & (cos * along - sin * across >= bounds[:, 3])
    return ~away


def prepare(positions: npt.NDArray[np.float32], indices: npt.NDArray[np.uint32],
            extra: npt.NDArray[np.float32] | None = None, levels: bool = True,
            reductions: Sequence[float] = LOD_REDUCTIONS, reorder: bool = True,
            weld: bool = True) -> tuple[npt.NDArray[np.uint32], Levels, Clusters | None]:
    """The background work for one big primitive (:func:`pool`): with ``reorder``, its
    triangles in back-face clusters in vertex-cache order and the clusters' bounds
    (:func:`cluster_order`; else none come back), and with ``levels`` its coarser levels
    (:func:`simplify`, carrying the ``extra`` vertex columns, one a ``reductions``, its
    vertices welded or not)."""
    order, clusters = (cluster_order(positions, indices) if reorder
                       else (np.zeros(0, dtype=np.uint32), None))
    return (order, simplify(positions, indices, extra, reductions, weld) if levels else [],
            clusters)


def weld_points(points: npt.NDArray[np.float32]
                ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """(N, 3) ``points`` one a position (-0 and 0 alike): the distinct points, in the order
    they first come, and each point's row among them. Found by sorting their bits (a fifth of
    the time ``np.unique`` along an axis took, and that scattered neighbours: the simplifier
    took a fifth longer over them)."""
    pts = np.ascontiguousarray(points, dtype=np.float32) + np.float32(0.0)  # -0.0 becomes 0.0
    bits = pts.view(np.uint32).reshape(-1, 3)
    order = np.lexsort((bits[:, 2], (bits[:, 0].astype(np.uint64) << np.uint64(32)) | bits[:, 1]))
    ranked = bits[order]
    first = np.ones(len(pts), dtype=bool)
    first[1:] = (ranked[1:] != ranked[:-1]).any(axis=1)
    firsts = order[first]  # each distinct point's first row (a stable sort)
    by_row = np.argsort(firsts)  # numbered in the order they first come: neighbours stay near
    number = np.empty(len(firsts), dtype=np.int64)
    number[by_row] = np.arange(len(firsts))
    weld_of = np.empty(len(pts), dtype=np.int64)
    weld_of[order] = number[np.cumsum(first) - 1]
    return pts[firsts[by_row]], weld_of


def pieces(indices: npt.NDArray[np.int64], vertices: int) -> npt.NDArray[np.int64]:
    """The connected piece of each of ``vertices`` vertices through (T, 3) triangles
    ``indices``, numbered from 0 (a vertex no triangle uses is a piece of its own): a mesh split
    at texture seams falls into its charts. Roots hooked onto smaller roots, then paths
    halved to their roots, until no edge joins two roots."""
    parent = np.arange(vertices, dtype=np.int64)
    a = indices[:, (0, 1)].reshape(-1)  # two edges a triangle join its three corners
    b = indices[:, (1, 2)].reshape(-1)
    while True:
        pa, pb = parent[a], parent[b]
        differ = pa != pb
        if not differ.any():
            break
        np.minimum.at(parent, np.maximum(pa[differ], pb[differ]),
                      np.minimum(pa[differ], pb[differ]))
        while True:
            up = parent[parent]
            if np.array_equal(up, parent):
                break
            parent = up
    out: npt.NDArray[np.int64] = np.unique(parent, return_inverse=True)[1].reshape(-1)
    return out


def simplify(positions: npt.NDArray[np.float32], indices: npt.NDArray[np.uint32],
             extra: npt.NDArray[np.float32] | None = None,
             reductions: Sequence[float] = LOD_REDUCTIONS, weld: bool = True) -> Levels:
    """Coarser versions of a triangle mesh, one per ``reductions`` (the share of the triangles
    each takes off the one before; :data:`LOD_REDUCTIONS` by default; fewer where the
    simplifier can take no more off), each made from the one before (a cascade: the whole
    costs about 4/3 of simplifying the full mesh once): interleaved position + smooth normal
    vertices (float32, 6 a vertex) and uint32 indices.

    With ``weld`` the vertices are welded first (one a position): a mesh split at texture seams
    or hard edges is simplified as one surface. Simplified split, each piece's border moved on its own
    and the pieces came apart (a textured helmet's coarser levels were mostly holes). Normals
    are smooth over the welded surface. With ``extra`` (N, K) columns (texture coordinates,
    say: K = 2), the level is split again where the mesh was: a vertex a piece (:func:`pieces`:
    a texture's chart) that meets there, each with the mean of the columns of that piece's
    vertices collapsed into it (the simplifier's collapses replayed), so that a seam's two sides
    keep their own coordinates (6 + K floats a vertex). Without ``weld`` (the renderer's batches
    of many small parts, which welded fused into shapeless lumps at 6 triangles a part: a test
    grid kept 18 % of its pixels where it keeps over 30 %) each piece is simplified on its own.
    Each level's triangles come in vertex-cache order (:func:`cache_order`)."""
    import fast_simplification

    from farview.host.gltf import _compute_normals

    out: Levels = []
    pts = np.asarray(positions, dtype=np.float32)
    tris = np.asarray(indices, dtype=np.int64).reshape(-1, 3)
    cols = None if extra is None else np.asarray(extra, dtype=np.float64).reshape(len(pts), -1)
    for reduction in reductions:
        if len(tris) < 64:
            break
        before = len(tris)
        welded, weld_of = (weld_points(pts) if weld
                           else (pts, np.arange(len(pts), dtype=np.int64)))
        joined = weld_of[tris]
        apart = (joined[:, 0] != joined[:, 1]) & (joined[:, 1] != joined[:, 2]) & \
            (joined[:, 0] != joined[:, 2])
        if not apart.all():  # corners in one place: no area, nothing to keep
            tris, joined = tris[apart], joined[apart]
        if cols is None:
            level_pts, level_tris = fast_simplification.simplify(
                welded, joined, target_reduction=reduction)
        else:  # the collapses replayed, to know where each vertex went
            _, _, collapses = fast_simplification.simplify(
                welded, joined, target_reduction=reduction, return_collapses=True)
            level_pts, level_tris, mapping = fast_simplification.replay_simplification(
                welded, joined, collapses)
        if not len(level_tris) or len(level_tris) >= before:
            break  # nothing left, or the simplifier stalled (a level as big as the one before)
        if weld and _wrecked(pts, tris, level_pts, level_tris):  # (a batch's small parts,
            # each simplified on its own, lose area by design at the coarse levels)
            # the coarser levels by vertex clustering from the last sound one (as stand-ins
            # are made): without them, moving frames of such parts drew 4 times the triangles
            missing = tuple(reductions[len(out):])
            if out:
                rows, index = out[-1]
                base = (rows[:, :3], index, rows[:, 6:] if rows.shape[1] > 6 else None)
            else:
                base = (positions, indices, extra)
            out.extend(cache_order(np.ascontiguousarray(r), i)
                       for r, i in quick_levels(*base, reductions=missing))
            break
        level_pts = np.ascontiguousarray(level_pts, dtype=np.float32)
        level_idx = np.ascontiguousarray(level_tris, dtype=np.uint32).reshape(-1)
        _, normals, _, _ = _compute_normals(level_pts, level_idx, "smooth")
        if cols is None:
            pts, tris = level_pts, np.asarray(level_tris, dtype=np.int64).reshape(-1, 3)
            columns = [pts, normals]
        else:
            pts, tris, cols, normals = _split_again(
                pts, tris, cols, weld_of, mapping, level_pts, normals,
                np.asarray(level_tris, dtype=np.int64).reshape(-1, 3))
            columns = [pts, normals, cols.astype(np.float32)]
        idx = np.ascontiguousarray(tris, dtype=np.uint32).reshape(-1)
        out.append(cache_order(np.ascontiguousarray(np.concatenate(columns, axis=1)), idx))
    return out


LOD_AREA_TOLERANCE = 0.15
"""How much a level's surface area may differ from the level it was made from."""
LOD_BOX_TOLERANCE = 0.05
"""How far (a share of the box's diagonal) a level's vertices may pass the box of the level it
was made from."""


def _area(points: npt.NDArray[np.floating], triangles: npt.NDArray[np.integer]) -> float:
    p = np.asarray(points, dtype=np.float64)
    t = np.asarray(triangles, dtype=np.int64).reshape(-1, 3)
    return float(0.5 * np.linalg.norm(np.cross(p[t[:, 1]] - p[t[:, 0]], p[t[:, 2]] - p[t[:, 0]]),
                                      axis=1).sum())


def _wrecked(pts: npt.NDArray[np.floating], tris: npt.NDArray[np.integer],
             level_pts: npt.NDArray[np.floating], level_tris: npt.NDArray[np.integer]) -> bool:
    """Whether a level the simplifier made is no longer the shape it was made from. Where the
    simplifier nearly stalls it can wreck the mesh: a UV sphere of 186,660 triangles came out at
    3,812 as a jagged shape of long edges through the sphere, vertices at radius 0.69-1.47
    (found by hand: every sphere of a 20 M-triangle model looked so while the camera moved).
    Such a level's area or box is off where a sound one's is not (a sphere's 30-triangle level
    keeps 94 % of the area and passes the box by 2 % of its diagonal; the wrecked one: 84 % and
    12 %)."""
    before = _area(pts, tris)
    if before > 0 and abs(_area(level_pts, level_tris) / before - 1.0) > LOD_AREA_TOLERANCE:
        return True
    used = np.asarray(pts)[np.unique(np.asarray(tris).reshape(-1))]
    lo, hi = used.min(axis=0), used.max(axis=0)
    margin = LOD_BOX_TOLERANCE * float(np.linalg.norm(hi - lo))
    level = np.asarray(level_pts)[np.unique(np.asarray(level_tris).reshape(-1))]
    return bool((level.min(axis=0) < lo - margin).any() or (level.max(axis=0) > hi + margin).any())


def _split_again(pts: npt.NDArray[np.float32], tris: npt.NDArray[np.int64],
                 cols: npt.NDArray[np.float64], weld_of: npt.NDArray[np.int64],
                 mapping: npt.NDArray[np.int64], level_pts: npt.NDArray[np.float32],
                 level_normals: npt.NDArray[np.float32], level_tris: npt.NDArray[np.int64]
                 ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64],
                            npt.NDArray[np.float64], npt.NDArray[np.float32]]:
    """A welded level (``level_pts``, its normals; ``mapping``: each welded vertex's vertex
    in it, or -1) split again by the pieces of the split mesh (``pts``, ``tris``, ``cols``;
    ``weld_of``: each vertex's welded vertex): its vertices, triangles, columns and normals.
    The level's triangles (``level_tris``) are the split mesh's whose corners stay apart, in
    their order (``fast-simplification``'s replay, pinned; checked)."""
    piece = pieces(tris, len(pts))
    to = mapping[weld_of]  # each split vertex's vertex in the level
    kept = to >= 0
    key = to[kept] * (int(piece.max()) + 1) + piece[kept]
    keys, new_of = np.unique(key, return_inverse=True)
    new_of = new_of.reshape(-1)
    new_index = np.full(len(pts), -1, dtype=np.int64)
    new_index[kept] = new_of
    moved = to[tris]  # the triangles that survive are those whose corners stay apart, in order
    alive = (moved >= 0).all(axis=1) & (moved[:, 0] != moved[:, 1]) & \
        (moved[:, 1] != moved[:, 2]) & (moved[:, 0] != moved[:, 2])
    new_tris = new_index[tris[alive]]
    if len(new_tris) != len(level_tris) or (new_tris < 0).any():
        raise RuntimeError("fast-simplification's replayed collapses no longer keep the "
                           "triangles' order: levels cannot be split again by chart")
    count = np.bincount(new_of, minlength=len(keys)).astype(np.float64)
    new_cols = np.stack([np.bincount(new_of, weights=cols[kept, k], minlength=len(keys)) / count
                         for k in range(cols.shape[1])], axis=1)
    at = keys // (int(piece.max()) + 1)
    return level_pts[at], new_tris, new_cols, level_normals[at]


_GRID_MAX_CELLS = 1 << 20
"""Cells along each axis of :func:`quick_levels`' grid at most (the cell's key fits 60 bits)."""
_AREA_SAMPLE = 20_000
"""Triangles :func:`quick_levels` measures to estimate a mesh's area, about."""
_ONE_KEY_VERTICES = 1 << 21
"""Up to this many vertices, a triangle's three (sorted) make one 63-bit key."""


def unique_triangles(tris: npt.NDArray[np.int64], vertices: int,
                     one_key_vertices: int = _ONE_KEY_VERTICES) -> npt.NDArray[np.int64]:
    """(T, 3) ``tris`` over ``vertices`` vertices, each triangle once (its first copy: the
    same three vertices in any order), in their order, winding kept."""
    out: npt.NDArray[np.int64] = tris[first_copies(tris, vertices, one_key_vertices)]
    return out


def first_copies(tris: npt.NDArray[np.int64], vertices: int,
                 one_key_vertices: int = _ONE_KEY_VERTICES) -> npt.NDArray[np.int64]:
    """The rows of (T, 3) ``tris`` (over ``vertices`` vertices) that are the first copy of their
    triangle (the same three vertices in any order), in order: one 63-bit key a triangle up to
    ``one_key_vertices`` vertices, a sort by three keys above."""
    s = np.sort(tris, axis=1)
    if vertices <= one_key_vertices:
        _, first = np.unique((s[:, 0] * vertices + s[:, 1]) * vertices + s[:, 2],
                             return_index=True)
    else:
        order = np.lexsort((s[:, 2], s[:, 1], s[:, 0]))  # stable: a copy's first comes first
        s = s[order]
        new = np.ones(len(s), dtype=bool)
        new[1:] = (s[1:] != s[:-1]).any(axis=1)
        first = order[new]
    out: npt.NDArray[np.int64] = np.sort(first)
    return out


def quick_levels(positions: npt.NDArray[np.float32], indices: npt.NDArray[np.uint32],
                 extra: npt.NDArray[np.float32] | None = None,
                 reductions: Sequence[float] = LOD_REDUCTIONS) -> Levels:
    """Stand-in levels, made in about a sixth of the time of :func:`simplify`'s and shaped as
    they are (one a ``reductions``, each from the one before, carrying the ``extra`` columns,
    smooth normals), the triangles in the mesh's own order (not put in vertex-cache order: a
    third of the time): the vertices in each cell of a grid are merged into their mean (vertex
    clustering, Rossignac and Borrel), and the triangles left with fewer than three corners
    are dropped, as are copies of one triangle. The cell is chosen from the surface's area (a
    sample of the triangles' areas) so that a closed surface keeps about the share of triangles
    asked for (a closed mesh has about two triangles a vertex), then corrected level by level
    by how the one before came out. With ``extra`` columns (texture coordinates, say) a cell
    holds a vertex for each piece of the mesh (:func:`pieces`: a texture's chart) that meets
    in it, all at the cell's mean position, each with the mean of its own piece's columns: a
    seam's two sides keep their own coordinates (averaged, a seam's triangles took the middle
    of the texture) and the surface stays closed; normals are smooth over the cells. Coarser
    and blockier than edge collapses: the renderer draws them while the camera moves only
    until its :func:`simplify` levels replace them (a 20 M-triangle model's took 51-56 s
    here)."""
    from farview.host.gltf import _compute_normals

    out: Levels = []
    pts = np.asarray(positions, dtype=np.float64)
    tris = np.asarray(indices, dtype=np.int64).reshape(-1, 3)
    cols = None if extra is None else np.asarray(extra, dtype=np.float64).reshape(len(pts), -1)
    if not len(tris):
        return out
    chart = None if cols is None else pieces(tris, len(pts))
    if chart is not None and not chart.any():
        chart = None  # one piece: a vertex a cell will do
    step = max(1, len(tris) // _AREA_SAMPLE)  # the area from a sample: it only sizes the cell
    sample = tris[::step]
    edge1 = pts[sample[:, 1]] - pts[sample[:, 0]]
    edge2 = pts[sample[:, 2]] - pts[sample[:, 0]]
    with np.errstate(invalid="ignore", over="ignore"):
        area = 0.5 * float(np.linalg.norm(np.cross(edge1, edge2), axis=1).sum()) \
            * len(tris) / len(sample)
    del sample, edge1, edge2
    fit = 1.0
    for reduction in reductions:
        before = len(tris)
        if before < 64 or not math.isfinite(area) or area <= 0.0:
            break
        lo = pts.min(axis=0)
        side = float((pts.max(axis=0) - lo).max())
        target = before * (1.0 - reduction)
        cell = max(math.sqrt(2.0 * area / target) * fit,
                   side / (_GRID_MAX_CELLS - 1), 1e-30)
        q = np.minimum(((pts - lo) / cell).astype(np.int64), _GRID_MAX_CELLS - 1)
        key = (q[:, 0] * _GRID_MAX_CELLS + q[:, 1]) * _GRID_MAX_CELLS + q[:, 2]
        del q
        _, into = np.unique(key, return_inverse=True)
        into = into.reshape(-1)
        count = np.bincount(into).astype(np.float64)
        cells = len(count)
        merged = np.stack([np.bincount(into, weights=pts[:, k], minlength=cells) / count
                           for k in range(3)], axis=1)
        c = into[tris]
        kept = (c[:, 0] != c[:, 1]) & (c[:, 1] != c[:, 2]) & (c[:, 0] != c[:, 2])
        if chart is None:
            group, groups = into, cells  # a vertex a cell
        else:  # a vertex a cell and piece
            _, group = np.unique(into * (int(chart.max()) + 1) + chart, return_inverse=True)
            group = group.reshape(-1)
            groups = int(group.max()) + 1
        # each triangle of cells once: where two pieces' triangles meet on the same three
        # cells, the first one's vertices (and coordinates) are kept
        c = c[kept]
        first = first_copies(c, cells)
        t = (c if chart is None else group[tris[kept]])[first]
        c = c[first]  # the kept triangles' cells
        if not len(t) or len(t) >= before:
            break  # nothing left, or no coarser (a grid finer than the mesh)
        fit *= math.sqrt(len(t) / target)  # the next level's cell, from how this one came out
        used = np.zeros(groups, dtype=bool)
        used[t.reshape(-1)] = True
        renumber = np.cumsum(used) - 1
        tris = renumber[t]
        cell_of = np.empty(groups, dtype=np.int64)
        cell_of[group] = into
        cell_of = cell_of[used]
        pts = merged[cell_of]
        if cols is not None:
            size = np.bincount(group, minlength=groups).astype(np.float64)
            cols = np.stack([np.bincount(group, weights=cols[:, k], minlength=groups) / size
                             for k in range(cols.shape[1])], axis=1)[used]
        if chart is not None:
            piece_of = np.empty(groups, dtype=np.int64)
            piece_of[group] = chart
            chart = piece_of[used]
        p32 = pts.astype(np.float32)
        idx = np.ascontiguousarray(tris, dtype=np.uint32).reshape(-1)
        # smooth over the cells: a seam's two copies of a vertex get one normal
        _, normals, _, _ = _compute_normals(merged.astype(np.float32),
                                            c.astype(np.uint32).reshape(-1), "smooth")
        normals = normals[cell_of]
        columns = [p32, normals] if cols is None else [p32, normals, cols.astype(np.float32)]
        out.append((np.ascontiguousarray(np.concatenate(columns, axis=1)), idx))
    return out


MAX_WORKERS = 4


def workers(env: str | None = None, cpus: int | None = None) -> int:
    """How many processes make levels: ``FARVIEW_LOD_WORKERS`` (``env``; 1 to
    :data:`MAX_WORKERS`), else one core fewer than the machine has, at least 1 and at most
    :data:`MAX_WORKERS` (this 2-core machine: 1, which leaves the other core to render and
    encode). Raises ValueError naming the variable for a value that is not such a number."""
    if env is not None and env.strip():
        try:
            n = int(env)
        except ValueError:
            n = 0
        if not 1 <= n <= MAX_WORKERS:
            raise ValueError(f"FARVIEW_LOD_WORKERS must be a whole number from 1 to "
                             f"{MAX_WORKERS}, not {env!r}")
        return n
    return max(1, min(MAX_WORKERS, (cpus if cpus is not None else os.cpu_count() or 1) - 1))


def pool(processes: int = 1) -> ProcessPoolExecutor:
    """``processes`` worker processes (:func:`workers`), spawned (not forked: the parent
    holds GL and threads); jobs go to whichever is free, so parts' levels are made side by
    side."""
    return ProcessPoolExecutor(max_workers=processes,
                               mp_context=multiprocessing.get_context("spawn"))
