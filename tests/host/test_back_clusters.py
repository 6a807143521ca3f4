"""Back-face clusters (``host.lod.cluster_order`` and ``facing_clusters``): pure NumPy checks
of what they promise, and the renderer drawing with them (the same picture, fewer triangles)."""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import pytest

from benchmarks.bench_scale import sphere
from farview.host.egl import EglContext
from farview.host.gltf import Mesh, Model, Node, Primitive, load_model
from farview.host.lod import CLUSTER_TRIANGLES, cluster_order, facing_clusters
from farview.host.renderer import Renderer
from farview.host.scene import Scene
from farview.input.pose import View
from tests.host.conftest import SAMPLE
from tests.host.test_renderer import H, W, _winding_triangles, frame, view


def _normals(pos: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each triangle's first corner and (unnormalised) normal from its winding."""
    t = pos.astype(np.float64)[idx.reshape(-1, 3)]
    return t[:, 0], np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])


def _bumpy(segments: int) -> tuple[np.ndarray, np.ndarray]:
    """A sphere with a ripple: neighbouring triangles face different ways."""
    pos, _, idx = sphere(segments)
    r = 1 + 0.15 * np.sin(9 * pos[:, 0]) * np.cos(7 * pos[:, 1])
    return (pos * r[:, None]).astype(np.float32), idx


def test_cluster_order_keeps_the_triangles_and_bounds_each_cluster() -> None:
    pos, idx = _bumpy(80)
    order, (starts, bounds) = cluster_order(pos, idx)
    assert order.dtype == np.uint32 and len(order) == len(idx)
    assert _winding_triangles(pos, order) == _winding_triangles(pos, idx)  # winding kept
    sizes = np.diff(starts)
    assert starts[0] == 0 and starts[-1] == len(idx) // 3
    assert sizes.min() >= 1 and sizes.max() <= CLUSTER_TRIANGLES
    assert len(bounds) == len(sizes)
    _, n = _normals(pos, order)
    unit = n / np.linalg.norm(n, axis=1)[:, None]
    owner = np.repeat(np.arange(len(sizes)), sizes)
    cones = bounds[:, 7] <= 1.0
    assert cones.mean() > 0.9, "most clusters of a smooth ball should face one way"
    # every triangle's normal within its cluster's cone, every corner within its sphere
    cos = np.sqrt(1 - np.minimum(bounds[:, 7], 1.0) ** 2)
    inside = np.einsum("ij,ij->i", unit, bounds[owner, 4:7]) >= cos[owner] - 1e-9
    assert inside[cones[owner]].all()
    tris = pos.astype(np.float64)[order.reshape(-1, 3)]
    reach = np.linalg.norm(tris - bounds[owner, None, :3], axis=2).max(axis=1)
    assert (reach <= bounds[owner, 3]).all()


@pytest.mark.parametrize("affine", [False, True])
def test_a_cluster_left_out_has_only_triangles_facing_away(affine: bool) -> None:
    """Conservative: from any eye, every triangle of a cluster said to face away faces away
    (so GL would have culled it), also for a mesh drawn through an affine map that shears and
    stretches it (the eye taken into the mesh's space); and it leaves out a good share."""
    pos, idx = _bumpy(80)
    order, clusters = cluster_order(pos, idx)
    rng = np.random.default_rng(7)
    m = np.eye(4)
    if affine:
        m[:3, :3] = np.diag([2.0, 0.5, 1.3]) + 0.3 * rng.standard_normal((3, 3))
        m[:3, 3] = [1.0, -2.0, 0.5]
        assert np.linalg.det(m[:3, :3]) > 0
    world = pos.astype(np.float64) @ m[:3, :3].T + m[:3, 3]
    corner, n = _normals(world, order)
    sizes = np.diff(clusters[0])
    owner = np.repeat(np.arange(len(sizes)), sizes)
    skipped = []
    for _ in range(60):
        d = rng.standard_normal(3)
        eye = d / np.linalg.norm(d) * rng.uniform(0.2, 12.0)  # inside the ball too
        local = np.linalg.solve(m[:3, :3], eye - m[:3, 3])
        facing = facing_clusters(clusters, local)
        away = ~facing[owner]
        assert (np.einsum("ij,ij->i", n[away], corner[away] - eye) > 0).all()
        skipped.append(away.mean())
    far = [s for s in skipped if s > 0]
    assert np.median(far) > 0.25, f"too few left out: {np.median(far):.2f}"


def _ball(segments: int, double_sided: bool = False) -> tuple[Model, Mesh]:
    pos, nrm, idx = sphere(segments)
    material = dataclasses.replace(load_model(SAMPLE).materials[0], double_sided=double_sided)
    prim = Primitive(pos, nrm, idx, material)
    mesh = Mesh("ball", (prim,))
    return Model("ball", (Node(0, "ball", mesh=mesh),), (0,), (mesh,), (material,)), mesh


def _wait_for_jobs(r: Renderer, scene: Scene, views: list) -> None:
    deadline = time.monotonic() + 30
    while r.lod_pending:
        assert time.monotonic() < deadline, "the background jobs never finished"
        time.sleep(0.05)
        r.render(scene, views)


def test_the_renderer_skips_clusters_facing_away_and_draws_the_same_picture(
        egl_context: EglContext) -> None:
    """A 125,000-triangle ball, once its clusters are made: the same picture with and
    without them, in one view and in two (a headset's), about half its triangles skipped;
    none skipped where GL would cull none (a double-sided material) or where the part's
    matrix mirrors it."""
    model, mesh = _ball(250)
    scene = Scene()
    root = scene.add_model(model, "ball")
    r = Renderer(W, H, lighting="vertex")
    try:
        one = [view((0.0, 0.5, 2.8))]
        two = [View(view((-0.1, 0.5, 2.8)).pose, one[0].fov),
               View(view((0.1, 0.5, 2.8)).pose, one[0].fov)]
        r.render(scene, one)
        _wait_for_jobs(r, scene, one)
        assert r._meshes[mesh.key][0].clusters is not None
        triangles = len(mesh.primitives[0].indices) // 3
        for views, share in ((one, 0.3), (two, 0.6)):
            r.back_clusters = False
            plain = frame(r, scene, views)
            assert r.last_back_skipped == 0
            r.back_clusters = True
            np.testing.assert_array_equal(frame(r, scene, views), plain)
            assert share * triangles < r.last_back_skipped < len(views) * triangles, \
                r.last_back_skipped
        root.scale = (-1.0, 1.0, 1.0)  # mirrored: no clusters used
        frame(r, scene, one)
        assert r.last_back_skipped == 0
    finally:
        r.close()
    model, mesh = _ball(250, double_sided=True)
    scene = Scene()
    scene.add_model(model, "ball")
    r = Renderer(W, H, lighting="vertex")
    try:
        r.render(scene, one)
        _wait_for_jobs(r, scene, one)
        assert r._meshes[mesh.key][0].clusters is not None
        frame(r, scene, one)
        assert r.last_back_skipped == 0  # both sides drawn: nothing to skip
    finally:
        r.close()


def _split_glb(data: bytes) -> tuple[dict, bytearray]:
    import json
    import struct

    (jlen,) = struct.unpack_from("<I", data, 12)
    doc = json.loads(data[20:20 + jlen])
    (blen,) = struct.unpack_from("<I", data, 20 + jlen)
    return doc, bytearray(data[28 + jlen:28 + jlen + blen])


def test_a_converted_file_brings_its_clusters_and_they_are_used_at_once(
        egl_context: EglContext) -> None:
    """``farview convert``'s writer puts a big part's triangles in back-face clusters and
    writes them (``FARVIEW_back_clusters``, listed as used, not required); the loader reads
    them, and the renderer leaves clusters out from the first frame, with no job in the
    background (the levels came with the file too). A small part gets none."""
    from farview.host.convert import write_glb
    from farview.host.gltf import BACK_CLUSTERS, load_model_bytes

    model, _ = _ball(120)
    small, _ = _ball(20)
    data = write_glb(Model("two", (*model.nodes, dataclasses.replace(small.nodes[0], index=1,
                                                                     name="small")),
                           (0, 1), (*model.meshes, *small.meshes), model.materials))
    doc, _ = _split_glb(data)
    assert BACK_CLUSTERS in doc["extensionsUsed"]
    assert BACK_CLUSTERS not in doc.get("extensionsRequired", [])
    loaded = load_model_bytes(data)
    big_prim, small_prim = (n.mesh.primitives[0] for n in loaded.nodes[:2])
    assert small_prim.clusters is None
    assert big_prim.clusters is not None
    starts, bounds = big_prim.clusters
    assert starts[0] == 0 and starts[-1] * 3 == len(big_prim.indices)
    assert len(bounds) == len(starts) - 1 and bounds.shape[1] == 8
    scene = Scene()
    scene.add_model(loaded, "two")
    r = Renderer(W, H, lighting="vertex")
    try:
        one = [view((0.0, 0.5, 3.5))]
        with_clusters = frame(r, scene, one)
        assert r.lod_pending == 0 and r.last_back_skipped > 0.3 * (len(big_prim.indices) // 3)
        r.back_clusters = False
        np.testing.assert_array_equal(frame(r, scene, one), with_clusters)
    finally:
        r.close()


def test_a_clusters_extension_that_does_not_hold_is_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    """Each way a file's FARVIEW_back_clusters can be wrong: the model loads, with a warning
    naming the extension and what is wrong, and the primitive is drawn in full."""
    import struct

    from farview.host.convert import write_glb
    from farview.host.gltf import BACK_CLUSTERS, load_model_bytes, pack_glb

    model, _ = _ball(120)
    doc, blob = _split_glb(write_glb(model))
    prim = doc["meshes"][0]["primitives"][0]
    ext = prim["extensions"][BACK_CLUSTERS]

    def starts_written(values: list[int]) -> bytearray:
        acc = doc["accessors"][ext["starts"]]
        view = doc["bufferViews"][acc["bufferView"]]
        out = bytearray(blob)
        at = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
        struct.pack_into(f"<{len(values)}I", out, at, *values)
        return out

    count = doc["accessors"][ext["starts"]]["count"]
    triangles = len(load_model_bytes(pack_glb(doc, bytes(blob))).meshes[0].primitives[0]
                    .indices) // 3
    # one cluster a triangle: valid data, but too many to test every frame
    many = dict(doc, bufferViews=list(doc["bufferViews"]), accessors=list(doc["accessors"]))
    crowded = bytearray(blob)
    new_ext = {}
    for key, rows, atype, ctype in (
            ("starts", np.arange(triangles + 1, dtype=np.uint32), "SCALAR", 5125),
            ("spheres", np.zeros((triangles, 4), np.float32), "VEC4", 5126),
            ("cones", np.tile(np.float32([0, 0, 1, 2]), (triangles, 1)), "VEC4", 5126)):
        crowded.extend(b"\0" * (-len(crowded) % 4))
        many["bufferViews"].append({"buffer": 0, "byteOffset": len(crowded),
                                    "byteLength": rows.nbytes})
        crowded.extend(rows.tobytes())
        many["accessors"].append({"bufferView": len(many["bufferViews"]) - 1,
                                  "componentType": ctype, "count": len(rows), "type": atype})
        new_ext[key] = len(many["accessors"]) - 1
    many["buffers"] = [dict(doc["buffers"][0], byteLength=len(crowded)), *doc["buffers"][1:]]
    cases = {
        "too many clusters": (new_ext, crowded, many),
        "not an object": ([1, 2], blob),
        "no such accessor": ({**ext, "starts": 999}, blob),
        "wrong type": ({**ext, "spheres": prim["attributes"]["POSITION"]}, blob),
        "starts not integers": ({**ext, "starts": ext["spheres"]}, blob),
        "axes": ({**ext, "cones": ext["spheres"]}, blob),
        "starts": (ext, starts_written([0, 5, 3] + [0] * (count - 3))),
    }
    for what, (bad, data, *base) in cases.items():
        broken = json.loads(json.dumps(base[0] if base else doc))
        broken["meshes"][0]["primitives"][0]["extensions"][BACK_CLUSTERS] = bad
        caplog.clear()
        with caplog.at_level("WARNING"):
            loaded = load_model_bytes(pack_glb(broken, bytes(data)))
        assert loaded.meshes[0].primitives[0].clusters is None, what
        assert any(BACK_CLUSTERS in r.getMessage() for r in caplog.records), what
        if what == "too many clusters":
            assert any("too many" in r.getMessage() for r in caplog.records)
    # and the file as written holds
    assert load_model_bytes(pack_glb(doc, bytes(blob))).meshes[0].primitives[0].clusters \
        is not None


def test_a_mid_size_part_gets_levels_and_clusters_only_when_asked(
        egl_context: EglContext) -> None:
    """A part of 8,064 triangles (between LOD_ASKED_MIN_TRIANGLES and LOD_MIN_TRIANGLES):
    nothing in the background while frames are in time (no child process started); once
    moving frames are over their budget its levels and clusters are made, and used."""
    from farview.host.lod import LOD_ASKED_MIN_TRIANGLES, LOD_MIN_TRIANGLES

    model, mesh = _ball(64)
    assert LOD_ASKED_MIN_TRIANGLES <= len(mesh.primitives[0].indices) // 3 < LOD_MIN_TRIANGLES
    scene = Scene()
    scene.add_model(model, "ball")
    r = Renderer(W, H, lighting="vertex")
    try:
        one = [view((0.0, 0.5, 2.8))]
        for i in range(3):
            r.render(scene, one)
            r.render(scene, [view((0.1 * i, 0.5, 2.8))], moving=True)
        assert r.lod_level == 0 and not r.lod_pending and r._lod_executor is None
        r.lod_budget_ms = 0.0  # every moving frame over budget: the levels are asked for
        r.render(scene, one, moving=True)
        r.render(scene, one, moving=True)
        assert r.lod_pending == 1
        _wait_for_jobs(r, scene, one)
        gpu = r._meshes[mesh.key][0]
        assert gpu.lods and gpu.clusters is not None
        r.render(scene, one, moving=True)
        assert r.last_reduced
        r.render(scene, one)
        assert not r.last_reduced and r.last_back_skipped > 0
    finally:
        r.close()


def test_level_workers_follow_the_cores_or_the_environment() -> None:
    from farview.host.lod import workers

    assert [workers(None, cpus) for cpus in (1, 2, 3, 8, 64)] == [1, 1, 2, 4, 4]
    assert workers("3", 2) == 3 and workers(" ", 8) == 4
    for bad in ("0", "5", "two", "-1"):
        with pytest.raises(ValueError, match="FARVIEW_LOD_WORKERS"):
            workers(bad)


def test_two_level_workers_make_parts_levels_side_by_side(
        egl_context: EglContext, monkeypatch: pytest.MonkeyPatch) -> None:
    """FARVIEW_LOD_WORKERS=2: two child processes, each part's levels and clusters made and
    used; a bad value fails when the renderer is made, naming the variable."""
    monkeypatch.setenv("FARVIEW_LOD_WORKERS", "many")
    with pytest.raises(ValueError, match="FARVIEW_LOD_WORKERS"):
        Renderer(W, H)
    monkeypatch.setenv("FARVIEW_LOD_WORKERS", "2")
    pos, nrm, idx = sphere(100)
    material = load_model(SAMPLE).materials[0]
    meshes = tuple(Mesh(f"ball{i}", (Primitive(pos * np.float32(0.3), nrm, idx, material),))
                   for i in range(3))
    nodes = tuple(Node(i, f"ball{i}", translation=(float(i) - 1.0, 0.0, 0.0), mesh=m)
                  for i, m in enumerate(meshes))
    scene = Scene()
    scene.add_model(Model("balls", nodes, (0, 1, 2), meshes, (material,)), "balls")
    r = Renderer(W, H, lighting="vertex")
    try:
        assert r.lod_workers == 2
        one = [view((0.0, 0.5, 3.0))]
        r.render(scene, one)
        assert r.lod_pending == 3
        _wait_for_jobs(r, scene, one)
        assert r._lod_executor is not None and r._lod_executor._max_workers == 2
        gpus = [r._meshes[m.key][0] for m in meshes]
        assert all(g.lods and g.clusters is not None for g in gpus)
    finally:
        r.close()
