"""Levels of detail: coarser versions of big triangle meshes (quadric decimation through the
pinned ``fast-simplification`` package).

Runs in a child process (:func:`pool`, spawned: no GL state or threads are inherited): the
simplifier holds the GIL while it works, and a render host's render thread and event loop must
not wait seconds for it.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import numpy.typing as npt

LOD_MIN_TRIANGLES = 16_384
"""Triangle primitives at least this big get coarser levels of detail, carrying their other
vertex attributes (texture coordinates, colours, tangents): made by the converter
(``MSFT_lod``), or else by the renderer in a child process (:func:`pool`)."""
LOD_REDUCTIONS = (0.75, 0.75, 0.75, 0.75)
"""Each level keeps a quarter of the triangles of the level before it: levels 1 to 4 keep 1/4,
1/16, 1/64 and 1/256 of the full mesh."""

Levels = list[tuple[npt.NDArray[np.float32], npt.NDArray[np.uint32]]]


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


def prepare(positions: npt.NDArray[np.float32], indices: npt.NDArray[np.uint32],
            extra: npt.NDArray[np.float32] | None = None, levels: bool = True,
            reductions: Sequence[float] = LOD_REDUCTIONS, reorder: bool = True
            ) -> tuple[npt.NDArray[np.uint32], Levels]:
    """The background work for one big primitive loaded as it was (:func:`pool`): with
    ``reorder``, its triangles in vertex-cache order (:func:`triangle_order`; else none come
    back), and with ``levels`` its coarser levels (:func:`simplify`, carrying the ``extra``
    vertex columns, one a ``reductions``)."""
    return (triangle_order(indices) if reorder else np.zeros(0, dtype=np.uint32),
            simplify(positions, indices, extra, reductions) if levels else [])


def simplify(positions: npt.NDArray[np.float32], indices: npt.NDArray[np.uint32],
             extra: npt.NDArray[np.float32] | None = None,
             reductions: Sequence[float] = LOD_REDUCTIONS) -> Levels:
    """Coarser versions of a triangle mesh, one per ``reductions`` (the share of the triangles
    each takes off the one before; :data:`LOD_REDUCTIONS` by default; fewer where the
    simplifier can take no more off), each made from the one before (a cascade: the whole
    costs about 4/3 of simplifying the full mesh once): interleaved position + smooth normal
    vertices (float32, 6 a vertex) and uint32 indices. With ``extra`` (N, K) columns (texture
    coordinates, say: K = 2), each vertex also has them (6 + K floats a vertex): the mean of
    those of the vertices collapsed into it (the simplifier's collapses replayed to map them;
    edge collapses join only neighbours, so a texture seam's two sides stay apart). That costs
    about twice as much.
    Each level's triangles come in vertex-cache order (:func:`cache_order`)."""
    import fast_simplification

    from farview.host.gltf import _compute_normals

    out: Levels = []
    pts = np.asarray(positions, dtype=np.float32)
    tris = np.asarray(indices, dtype=np.int64).reshape(-1, 3)
    uv = None if extra is None else np.asarray(extra, dtype=np.float64).reshape(len(pts), -1)
    for reduction in reductions:
        if len(tris) < 64:
            break
        before = len(tris)
        if uv is None:
            pts, tris = fast_simplification.simplify(pts, tris, target_reduction=reduction)
        else:
            _, _, collapses = fast_simplification.simplify(
                pts, tris, target_reduction=reduction, return_collapses=True)
            pts, tris, mapping = fast_simplification.replay_simplification(pts, tris, collapses)
            kept = mapping >= 0
            into = mapping[kept]
            count = np.maximum(np.bincount(into, minlength=len(pts)), 1)
            uv = np.stack([np.bincount(into, weights=uv[kept, k], minlength=len(pts)) / count
                           for k in range(uv.shape[1])], axis=1)
        pts = np.ascontiguousarray(pts, dtype=np.float32)
        idx = np.ascontiguousarray(tris, dtype=np.uint32).reshape(-1)
        if not len(idx) or len(tris) >= before:
            break  # nothing left, or the simplifier stalled (a level as big as the one before)
        _, normals, _, _ = _compute_normals(pts, idx, "smooth")
        columns = [pts, normals] if uv is None else [pts, normals, uv.astype(np.float32)]
        out.append(cache_order(np.ascontiguousarray(np.concatenate(columns, axis=1)), idx))
    return out


def pool() -> ProcessPoolExecutor:
    """One worker process, spawned (not forked: the parent holds GL and threads)."""
    return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
