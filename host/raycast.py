"""Ray casts against the scene's triangles and points, in pure numpy.

First, in one NumPy pass over every drawable entity, the ray is tested against each one's
world-space box (its mesh's local box, transformed); only the entities whose box it meets are
looked at closer, nearest box first, and a closest-hit cast stops once the next box is farther
than the hit (a ray through a 100,000-part assembly took 2.3 s entity by entity). Per such
entity: the ray is taken into the mesh's local space (so triangles are never transformed),
tested against the boxes of the mesh's chunks (:data:`CHUNK_TRIANGLES` triangles close to one
another: in their own order where that keeps them together, as a converted file's does, else
sorted along a Morton curve of their centres), then against the triangles of the
chunks it meets with a vectorised Möller–Trumbore, gathered from the mesh's own positions and
indices for that ray. The local direction is *not* renormalised, so the ray parameter ``t`` is
the world-space distance along the unit world direction. Per mesh, the chunks (the triangle
order, 4 bytes a triangle, when they were sorted, and a box a chunk) are made when a ray first
comes near it, cached
by ``Mesh.key`` and pruned when meshes go away; :meth:`RayCaster.prime` makes them, and the
meshes' boxes, for a model just loaded, before the first click. (Each mesh's triangles as float64 corner and
edge arrays, 72 bytes a triangle, were cached before: 200 MB more after six rays through the
20 M-triangle model, and every ray tested every triangle of a mesh it came near.)

Points (point clouds) are hit where the ray passes within a cone round them: a point counts
when its distance from the ray is at most ``point_tolerance`` times its distance along the ray
(the tangent of the angle a drawn point takes up, half its square's diagonal, as seen from the
ray's origin; the host gives the current view's, so that a click on a drawn point hits it). Their
chunks are :data:`POINT_CHUNK` points each, in the cloud's own order where that keeps them
together (a cloud sorted once, as ``farview convert`` writes them; a scan's rows do not), else
along a Morton curve; a ray tests each chunk's box grown by
the widest the cone gets within the cloud, then the points of the chunks it meets, in world
space. A point hit is at the point itself, its normal faces the ray, and its ``hit_type`` is
``Point`` (ARR's ``RayHitType``).

Honours the resolved state: hidden and collision-disabled entities are not hit; hits in a
region removed by a cut plane are skipped (the ray goes on to what is visible behind it).

Concurrency: :meth:`RayCaster.cast` works on a snapshot (a draw list taken under the scene
lock), so it runs in an executor without holding the lock; the cache has its own lock.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from farview.host.gltf import Mesh, local_bounds_of
from farview.host.lod import morton_order
from farview.host.scene import DrawItem, stack_worlds
from farview.input.scene import CutPlane

F64 = npt.NDArray[np.float64]
_EPS = 1e-12


@dataclass(frozen=True)
class Hit:
    """One ray hit, in world space."""

    entity_id: int
    entity_name: str
    position: tuple[float, float, float]
    normal: tuple[float, float, float]
    """Unit geometric normal of the triangle, on its front side (counter-clockwise in the mesh;
    glTF flips the winding under a mirroring transform, so the front side is kept)."""
    distance: float
    front_face: bool
    """True when the ray hit the triangle's front (counter-clockwise) side; True for a point
    (drawn facing the view)."""
    hit_type: str
    """ARR's ``RayHitType``: ``TriangleFrontFace``, ``TriangleBackFace`` or ``Point``."""


CHUNK_TRIANGLES = 256
"""Triangles a chunk: the unit a ray's box test keeps or leaves out."""
OWN_ORDER_MAX_SPREAD = 2.5
"""Chunks of triangles in their own order are used when their boxes' mean diagonal is at most
this times the diagonal of a square patch of a chunk's share of the surface. Morton-sorted
chunks measured 1.7-2.8 on the bench's spheres; converted files' own order 1.9 (311,000
triangles: 14-29 ms against 75-149 ms sorted, and their boxes half the surface), 100,000 parts
merged 2.2-2.3; the generated UV spheres' rings 3.2 (18,624 triangles) and 11.8 (311,260)."""
PRIME_MIN_TRIANGLES = 8192
"""Meshes with fewer triangles and points get their chunks when a ray first comes near them,
not when the model is loaded (:meth:`RayCaster.prime`)."""
POINT_CHUNK = 1024
"""Points a chunk of a point cloud."""
_BUILD_TRIANGLES = 1 << 20
"""Chunks are made this many triangles at a time (bounds the temporary arrays)."""


@dataclass(frozen=True)
class _PrimChunks:
    positions: npt.NDArray[np.float32]
    """The primitive's (N, 3) positions (not copied)."""
    triangles: npt.NDArray[np.uint32]
    """Its (T, 3) index triples (a view of its indices)."""
    order: npt.NDArray[np.uint32] | None
    """Triangle numbers in chunk order (None: the triangles' own order, chunk by chunk)."""
    lo: F64
    hi: F64
    """(chunks, 3) box of each chunk's triangles."""


def _chunk_boxes(positions: npt.NDArray[np.float32], tri: npt.NDArray[np.uint32],
                 order: npt.NDArray[np.uint32] | None) -> tuple[F64, F64, float]:
    """Each chunk's box (:data:`CHUNK_TRIANGLES` triangles of ``tri`` taken in ``order``, or as
    they come), and the triangles' total area; :data:`_BUILD_TRIANGLES` at a time."""
    count = len(tri)
    chunks = -(-count // CHUNK_TRIANGLES)
    lo = np.empty((chunks, 3))
    hi = np.empty((chunks, 3))
    area = 0.0
    for a in range(0, count, _BUILD_TRIANGLES):
        block = tri[a:a + _BUILD_TRIANGLES] if order is None else tri[order[a:a + _BUILD_TRIANGLES]]
        p0, p1, p2 = (positions[block[:, k]] for k in range(3))
        first = a // CHUNK_TRIANGLES
        local = np.arange(0, len(block), CHUNK_TRIANGLES)
        lo[first:first + len(local)] = np.minimum.reduceat(np.minimum(np.minimum(p0, p1), p2),
                                                           local, axis=0)
        hi[first:first + len(local)] = np.maximum.reduceat(np.maximum(np.maximum(p0, p1), p2),
                                                           local, axis=0)
        if order is None:  # (only the own-order test needs it)
            area += 0.5 * float(np.linalg.norm(np.cross(p1 - p0, p2 - p0), axis=1).sum())
    return lo, hi, area


def _own_order_chunks(positions: npt.NDArray[np.float32], tri: npt.NDArray[np.uint32]
                      ) -> _PrimChunks | None:
    """The triangles in chunks of :data:`CHUNK_TRIANGLES` as they come, when those chunks are
    compact (their boxes' mean diagonal at most :data:`OWN_ORDER_MAX_SPREAD` times a square
    patch of a chunk's share of the surface): a converted file's triangles, in vertex-cache
    order, and parts merged in Morton order are; a UV sphere's rings are not. None when not."""
    lo, hi, area = _chunk_boxes(positions, tri, None)
    patch = math.sqrt(2.0 * area * CHUNK_TRIANGLES / len(tri))
    spread = float(np.linalg.norm(hi - lo, axis=1).mean())
    if not (patch > 0.0 and spread <= OWN_ORDER_MAX_SPREAD * patch):
        return None
    return _PrimChunks(positions, tri, None, lo, hi)


def _prim_chunks(positions: npt.NDArray[np.float32], indices: npt.NDArray[np.uint32]
                 ) -> _PrimChunks | None:
    """A primitive's triangles in chunks of :data:`CHUNK_TRIANGLES` neighbours, each chunk's
    box: in their own order when that is compact (:func:`_own_order_chunks`: no sort, no
    order array), else sorted by the Morton code of their centres in the primitive's box."""
    tri = indices[:len(indices) - len(indices) % 3].reshape(-1, 3)
    count = len(tri)
    if not count:
        return None
    if count <= CHUNK_TRIANGLES:
        corners = positions[tri].reshape(-1, 3)
        return _PrimChunks(positions, tri, None, corners.min(axis=0, keepdims=True).astype(np.float64),
                           corners.max(axis=0, keepdims=True).astype(np.float64))
    own = _own_order_chunks(positions, tri)
    if own is not None:
        return own
    centres = np.empty((count, 3), dtype=np.float32)
    for a in range(0, count, _BUILD_TRIANGLES):
        block = tri[a:a + _BUILD_TRIANGLES]
        # (three gathers and adds: a reduction over the corners' axis is strided and slow)
        centres[a:a + _BUILD_TRIANGLES] = (positions[block[:, 0]] + positions[block[:, 1]]
                                           + positions[block[:, 2]])
    order = morton_order(centres)
    del centres
    c_lo, c_hi, _ = _chunk_boxes(positions, tri, order)
    return _PrimChunks(positions, tri, order, c_lo, c_hi)


@dataclass(frozen=True)
class _PointChunks:
    positions: npt.NDArray[np.float32]
    """The cloud's (N, 3) positions (not copied)."""
    order: npt.NDArray[np.uint32] | None
    """Point numbers in chunk order (None: the points' own order, chunk by chunk)."""
    lo: F64
    hi: F64
    """(chunks, 3) box of each chunk's points."""


def _point_boxes(positions: npt.NDArray[np.float32], order: npt.NDArray[np.uint32] | None
                 ) -> tuple[F64, F64]:
    """Each chunk's box (:data:`POINT_CHUNK` points taken in ``order``, or as they come)."""
    starts = np.arange(0, len(positions), POINT_CHUNK)
    lo = np.empty((len(starts), 3))
    hi = np.empty((len(starts), 3))
    step = POINT_CHUNK * 1024  # (bounds the temporary copy when sorted)
    for a in range(0, len(positions), step):
        block = positions[a:a + step] if order is None else positions[order[a:a + step]]
        first = a // POINT_CHUNK
        local = np.arange(0, len(block), POINT_CHUNK)
        lo[first:first + len(local)] = np.minimum.reduceat(block, local, axis=0)
        hi[first:first + len(local)] = np.maximum.reduceat(block, local, axis=0)
    return lo, hi


def _point_chunks(positions: npt.NDArray[np.float32]) -> _PointChunks | None:
    """A cloud's points in chunks of :data:`POINT_CHUNK` neighbours and each chunk's box: in
    their own order when its chunks are compact (their boxes' mean diagonal at most
    :data:`OWN_ORDER_MAX_SPREAD` times the side a chunk would have on a surface filling the
    cloud's box), else sorted by the Morton code of the points in the cloud's box."""
    count = len(positions)
    if not count:
        return None
    lo, hi = _point_boxes(positions, None)
    c_lo, c_hi = lo.min(axis=0), hi.max(axis=0)
    if len(lo) > 1:
        diagonal = float(np.linalg.norm(c_hi - c_lo))
        patch = diagonal * math.sqrt(POINT_CHUNK / count)
        spread = float(np.linalg.norm(hi - lo, axis=1).mean())
        if not spread <= OWN_ORDER_MAX_SPREAD * patch:
            order = morton_order(positions)
            lo, hi = _point_boxes(positions, order)
            return _PointChunks(positions, order, lo, hi)
    return _PointChunks(positions, None, lo, hi)


@dataclass(frozen=True)
class _WorldBoxes:
    """The world-space box of each item of a draw list (n, 3 each), whether its mesh has any
    vertices, whether its world matrix is finite (else its box is not to be trusted), and
    whether its mesh has points."""

    lo: F64
    hi: F64
    has: npt.NDArray[np.bool_]
    finite: npt.NDArray[np.bool_]
    points: npt.NDArray[np.bool_]


@dataclass(frozen=True)
class _MeshChunks:
    prims: tuple[_PrimChunks, ...]
    points: tuple[_PointChunks, ...] = ()


class RayCaster:
    """Casts rays against draw-list snapshots; keeps per-mesh triangle arrays."""

    def __init__(self) -> None:
        self._cache: dict[int, _MeshChunks | None] = {}
        self._box_row: dict[int, int] = {}
        """Per mesh: its row of :attr:`_box_table`."""
        self._box_table = np.full((0, 7), np.nan)
        """(lo, hi) of each mesh as 6 floats (NaN for a mesh without vertices), then 1.0 when
        it has points, else 0.0 (rows of meshes gone are left until :meth:`prune` packs the
        table)."""
        self._world_boxes: tuple[Hashable, int, _WorldBoxes] | None = None
        """The world boxes of the last draw list cast against or made by :meth:`prepare` with a
        ``worlds_key``: (key, how many items, boxes)."""
        self._lock = threading.Lock()

    def prune(self, live_mesh_keys: set[int]) -> None:
        with self._lock:
            for key in [k for k in self._cache if k not in live_mesh_keys]:
                del self._cache[key]
            if any(k not in live_mesh_keys for k in self._box_row):
                kept = [(k, r) for k, r in self._box_row.items() if k in live_mesh_keys]
                self._box_table = self._box_table[[r for _, r in kept]].reshape(-1, 7)
                self._box_row = {k: i for i, (k, _) in enumerate(kept)}

    def prime(self, meshes: list[Mesh]) -> None:
        """Make the local boxes of ``meshes`` now (a model just loaded, in a worker thread),
        so that the first ray does not wait for them (100,000 meshes: about 0.3-0.5 s), then
        their chunks (the first ray into a mesh of 311,000 triangles waited 60-70 ms for its
        chunks, a ray through a 20 M-triangle model 0.1-0.5 s; 4 bytes a triangle). A mesh
        gone meanwhile (:meth:`prune`) is skipped, and so are meshes under
        :data:`PRIME_MIN_TRIANGLES` (100,000 small parts' chunks would have cost about 50 MB and
        seconds of the GIL, where a ray makes one in well under a millisecond)."""
        self._local_boxes(meshes)
        for mesh in meshes:
            if mesh.primitive_count < PRIME_MIN_TRIANGLES:
                continue
            with self._lock:
                if mesh.key in self._cache or mesh.key not in self._box_row:
                    continue
            self._chunks(mesh)

    def _local_boxes(self, meshes: list[Mesh]
                     ) -> tuple[F64, F64, npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """(lo, hi) of each mesh's vertices, which meshes have any, and which have points; the
        ones not cached yet made together (:func:`host.gltf.local_bounds_of`)."""
        with self._lock:
            todo = list({m.key: m for m in meshes if m.key not in self._box_row}.values())
        if todo:
            lo, hi, found = local_bounds_of(todo)
            rows = np.concatenate([lo, hi, np.zeros((len(todo), 1))], axis=1)
            rows[~found, :6] = np.nan
            rows[[i for i, m in enumerate(todo) if any(p.points for p in m.primitives)], 6] = 1.0
            with self._lock:
                fresh = [i for i, m in enumerate(todo) if m.key not in self._box_row]
                start = len(self._box_table)
                self._box_table = np.concatenate([self._box_table, rows[fresh]])
                self._box_row.update((todo[i].key, start + n) for n, i in enumerate(fresh))
        with self._lock:
            row = self._box_row
            # (one index a mesh into a table: stacking a small array a mesh took 50 ms at
            # 100,000 parts, every ray)
            table = self._box_table[[row[m.key] for m in meshes]].reshape(-1, 7)
        points: npt.NDArray[np.bool_] = np.asarray(table[:, 6] > 0.0)
        has: npt.NDArray[np.bool_] = np.asarray(~np.isnan(table[:, :6]).any(axis=1))
        table[~has, :6] = 0.0
        return table[:, :3], table[:, 3:6], has, points

    def _chunks(self, mesh: Mesh) -> _MeshChunks | None:
        with self._lock:
            if mesh.key in self._cache:
                return self._cache[mesh.key]
        prims = tuple(c for p in mesh.primitives if not p.points
                      for c in [_prim_chunks(p.positions, p.indices)] if c is not None)
        points = tuple(c for p in mesh.primitives if p.points
                       for c in [_point_chunks(p.positions)] if c is not None)
        entry = _MeshChunks(prims, points) if prims or points else None
        with self._lock:
            self._cache[mesh.key] = entry
        return entry

    def prepare(self, items: Sequence[DrawItem], worlds_key: Hashable) -> None:
        """Make the world boxes of a draw list now (the host does after a model is loaded, in
        a worker thread, with :meth:`prime`), so that the first ray cast with the same
        ``worlds_key`` does not wait for them: stacking 100,000 world matrices and looking up
        100,000 meshes' boxes took 100-200 ms of the first click on such a model."""
        self._boxes_of(items, worlds_key)

    def cast(self, items: Sequence[DrawItem], origin: Sequence[float],
             direction: Sequence[float], *, max_distance: float = math.inf,
             max_hits: int = 1, cut_planes: Sequence[CutPlane] = (),
             worlds_key: Hashable | None = None, point_tolerance: float = 0.0) -> list[Hit]:
        """Hits sorted by distance: the closest one (``max_hits=1``) or up to ``max_hits``.

        ``direction`` need not be unit length; distances are in world units.
        ``point_tolerance``: a point is hit when its distance from the ray is at most this
        times its distance along it (0: points are not hit). ``worlds_key``:
        the same key as the last cast's (or :meth:`prepare`'s) promises the same items' world
        matrices and meshes, in the same order (the scene's structure version: state changes
        keep both), and the caster's world boxes of them are used again.
        """
        o = np.asarray(origin, dtype=np.float64)
        d = np.asarray(direction, dtype=np.float64)
        norm = float(np.linalg.norm(d))
        if norm < _EPS:
            raise ValueError("ray direction is the zero vector")
        d = d / norm
        keep = np.flatnonzero(np.fromiter(
            (not (it.state.hidden or it.state.collision_disabled) for it in items),
            dtype=np.bool_, count=len(items)))
        if not len(keep):
            return []
        if not (math.isfinite(point_tolerance) and point_tolerance >= 0.0):
            raise ValueError(f"point tolerance must be a finite number >= 0, got {point_tolerance}")
        boxes = self._boxes_of(items, worlds_key)
        has = boxes.has[keep]
        lo, hi = boxes.lo[keep], boxes.hi[keep]
        clouds = np.flatnonzero(boxes.points[keep]) if point_tolerance > 0.0 else ()
        if len(clouds):
            # a cloud's box grown by the widest its points' cones get inside it
            c_lo, c_hi = lo[clouds], hi[clouds]
            reach = (np.linalg.norm((c_lo + c_hi) / 2 - o, axis=1)
                     + np.linalg.norm(c_hi - c_lo, axis=1) / 2)
            grow = (point_tolerance * reach)[:, None]
            lo, hi = lo.copy(), hi.copy()
            lo[clouds] -= grow
            hi[clouds] += grow
        enter, leave = _slabs(o, d, lo, hi)
        with np.errstate(invalid="ignore"):
            enter = np.maximum(enter, 0.0)
            near = has & (enter <= leave) & (enter <= max_distance)
        near |= has & ~boxes.finite[keep]  # no box to trust: look closer
        candidates = np.flatnonzero(near)
        candidates = candidates[np.argsort(enter[candidates], kind="stable")]
        found: list[Hit] = []
        for i in candidates.tolist():
            if len(found) >= max_hits and found[max_hits - 1].distance < enter[i]:
                break  # every box left starts beyond the hits kept
            found.extend(self._cast_item(items[int(keep[i])], o, d, max_distance, max_hits,
                                         cut_planes, point_tolerance))
            found.sort(key=lambda h: h.distance)
        return found[:max_hits]

    def _boxes_of(self, items: Sequence[DrawItem], key: Hashable | None) -> _WorldBoxes:
        with self._lock:
            cached = self._world_boxes
        if key is not None and cached is not None and cached[:2] == (key, len(items)):
            return cached[2]
        lo, hi, has, points = self._local_boxes([it.mesh for it in items])
        worlds = stack_worlds(items)
        # each local box as a world-space box: centre moved, half-size through |rotation·scale|
        centre = (lo + hi) / 2
        half = (hi - lo) / 2
        w_centre = np.einsum("nij,nj->ni", worlds[:, :3, :3], centre) + worlds[:, :3, 3]
        w_half = np.einsum("nij,nj->ni", np.abs(worlds[:, :3, :3]), half)
        boxes = _WorldBoxes(w_centre - w_half, w_centre + w_half, has,
                            np.asarray(np.isfinite(worlds).all(axis=(1, 2))), points)
        if key is not None:
            with self._lock:
                self._world_boxes = (key, len(items), boxes)
        return boxes

    def _cast_item(self, item: DrawItem, o: F64, d: F64, max_distance: float, max_hits: int,
                   cut_planes: Sequence[CutPlane], point_tolerance: float = 0.0) -> list[Hit]:
        chunks = self._chunks(item.mesh)
        if chunks is None:
            return []
        try:
            inv: F64 = np.linalg.inv(item.world).astype(np.float64)
        except np.linalg.LinAlgError:  # zero scale: nothing to hit
            return []
        lo_o = inv[:3, :3] @ o + inv[:3, 3]
        lo_d = inv[:3, :3] @ d
        hits = self._triangle_hits(item, chunks, inv, o, d, lo_o, lo_d, max_distance, max_hits,
                                   cut_planes)
        if chunks.points and point_tolerance > 0.0:
            hits += _point_hits(item, chunks.points, o, d, lo_o, lo_d, max_distance, max_hits,
                                cut_planes, point_tolerance)
            hits.sort(key=lambda h: h.distance)
        return hits[:max_hits]

    @staticmethod
    def _triangle_hits(item: DrawItem, chunks: _MeshChunks, inv: F64, o: F64, d: F64,
                       lo_o: F64, lo_d: F64, max_distance: float, max_hits: int,
                       cut_planes: Sequence[CutPlane]) -> list[Hit]:
        tris = _gather(chunks, lo_o, lo_d, max_distance)
        if tris is None:
            return []
        # Möller–Trumbore over the triangles of the chunks the ray meets
        p = np.cross(lo_d, tris.e2)
        det = np.einsum("ij,ij->i", tris.e1, p)
        ok = np.abs(det) > _EPS
        inv_det = np.divide(1.0, det, out=np.zeros_like(det), where=ok)
        s = lo_o - tris.v0
        u = np.einsum("ij,ij->i", s, p) * inv_det
        ok &= (u >= 0.0) & (u <= 1.0)
        q = np.cross(s, tris.e1)
        v = (q @ lo_d) * inv_det
        ok &= (v >= 0.0) & (u + v <= 1.0)
        t = np.einsum("ij,ij->i", tris.e2, q) * inv_det
        ok &= (t > 1e-9) & (t <= max_distance)
        idx = np.nonzero(ok)[0]
        if idx.size == 0:
            return []
        idx = idx[np.argsort(t[idx])]
        hits = []
        normal_matrix = inv[:3, :3].T  # inverse-transpose of the model's 3x3
        last = -math.inf
        for i in idx:
            dist = float(t[i])
            if dist - last <= 1e-9 + 1e-7 * dist:  # the shared edge of two triangles
                continue
            last = dist
            pos = o + d * dist
            if any(plane.cuts(tuple(pos)) for plane in cut_planes):
                continue
            n_local = np.cross(tris.e1[i], tris.e2[i])
            # the inverse-transpose keeps the local front side in front, also for mirrored
            # nodes (glTF: a negative determinant flips the winding, not the front side)
            n = normal_matrix @ n_local
            n_len = float(np.linalg.norm(n))
            n = n / n_len if n_len > _EPS else -d
            front = bool(np.dot(n, d) < 0.0)
            hits.append(Hit(item.entity.id, item.entity.name,
                            (float(pos[0]), float(pos[1]), float(pos[2])),
                            (float(n[0]), float(n[1]), float(n[2])),
                            dist, front, "TriangleFrontFace" if front else "TriangleBackFace"))
            if len(hits) >= max_hits:
                break
        return hits


def _point_hits(item: DrawItem, clouds: tuple[_PointChunks, ...], o: F64, d: F64, lo_o: F64,
                lo_d: F64, max_distance: float, max_hits: int, cut_planes: Sequence[CutPlane],
                tolerance: float) -> list[Hit]:
    """The points of ``clouds`` (of ``item``) within the ray's cone (see the module's notes),
    nearest along the ray first: each chunk's box is grown, in the cloud's local space, by the
    cone's widest within the cloud (a world distance is at most 1/s local units, s the
    world matrix's least singular value), and the points of the chunks the ray then meets
    are tested in world space."""
    world = item.world.astype(np.float64)
    m3 = world[:3, :3]
    singular = np.linalg.svd(m3, compute_uv=False)
    if not singular[-1] > _EPS:
        return []
    hits: list[Hit] = []
    for cloud in clouds:
        c_lo, c_hi = cloud.lo.min(axis=0), cloud.hi.max(axis=0)
        corners = np.stack(np.meshgrid(*zip(c_lo, c_hi, strict=True), indexing="ij"),
                           axis=-1).reshape(-1, 3)
        far = float(singular[0] * np.linalg.norm(corners - lo_o, axis=1).max())
        grow = tolerance * min(far, max_distance) / float(singular[-1])
        enter, leave = _slabs(lo_o, lo_d, cloud.lo - grow, cloud.hi + grow, 1e-9)
        meets = np.flatnonzero((leave >= np.maximum(enter, 0.0) - 1e-9) & (enter <= max_distance))
        if not meets.size:
            continue
        slots = (meets[:, None] * POINT_CHUNK + np.arange(POINT_CHUNK)).reshape(-1)
        slots = slots[slots < len(cloud.positions)]
        picked = cloud.positions[slots if cloud.order is None else cloud.order[slots]]
        pos = picked.astype(np.float64) @ m3.T + world[:3, 3]
        v = pos - o
        t = v @ d
        off = np.einsum("ij,ij->i", v, v) - t * t
        with np.errstate(invalid="ignore"):
            ok = (t > 1e-9) & (t <= max_distance) & (off <= (tolerance * t) ** 2)
        idx = np.flatnonzero(ok)
        idx = idx[np.argsort(t[idx], kind="stable")]
        normal = (float(-d[0]), float(-d[1]), float(-d[2]))
        kept = 0
        for i in idx.tolist():
            p = (float(pos[i, 0]), float(pos[i, 1]), float(pos[i, 2]))
            if any(plane.cuts(p) for plane in cut_planes):
                continue
            hits.append(Hit(item.entity.id, item.entity.name, p, normal, float(t[i]), True,
                            "Point"))
            kept += 1
            if kept >= max_hits:
                break
    return hits


@dataclass(frozen=True)
class _Triangles:
    v0: F64
    e1: F64
    e2: F64


def _gather(chunks: _MeshChunks, o: F64, d: F64, max_t: float) -> _Triangles | None:
    """The triangles of the chunks whose box the (local) ray meets, as float64 corner and
    edges."""
    picked = []
    for prim in chunks.prims:
        # (with a slack: a ray along a chunk's face stays in)
        enter, leave = _slabs(o, d, prim.lo, prim.hi, 1e-9)
        meets = np.flatnonzero((leave >= np.maximum(enter, 0.0) - 1e-9) & (enter <= max_t))
        if not meets.size:
            continue
        if len(prim.lo) == 1:
            triangles = prim.triangles
        else:
            slots = (meets[:, None] * CHUNK_TRIANGLES + np.arange(CHUNK_TRIANGLES)).reshape(-1)
            slots = slots[slots < len(prim.triangles)]
            triangles = prim.triangles[slots if prim.order is None else prim.order[slots]]
        picked.append(prim.positions[triangles].astype(np.float64))
    if not picked:
        return None
    tris = np.concatenate(picked) if len(picked) > 1 else picked[0]
    v0 = np.ascontiguousarray(tris[:, 0])
    return _Triangles(v0, tris[:, 1] - v0, tris[:, 2] - v0)


def _slabs(o: F64, d: F64, lo: F64, hi: F64, slack: float = 0.0) -> tuple[F64, F64]:
    """Where the ray ``o + t·d`` enters and leaves each (n, 3) box (``d`` need not be unit:
    ``t`` is then in the caller's units). A direction component of 0: unbounded inside that
    slab (within ``slack``), a miss outside it."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / d
        t1 = (lo - o) * inv
        t2 = (hi - o) * inv
        inside = (o >= lo - slack) & (o <= hi + slack)
        t_near = np.where(d == 0.0, np.where(inside, -np.inf, np.inf), np.minimum(t1, t2))
        t_far = np.where(d == 0.0, np.where(inside, np.inf, -np.inf), np.maximum(t1, t2))
    return t_near.max(axis=1), t_far.min(axis=1)
