"""Pure unit tests (no host): the ray caster, the model store's name resolution, budgets."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from farview.host.gltf import load_model_bytes
from farview.host.model_store import LoadBudgets, ModelStore, SourceError, classify
from farview.host.raycast import RayCaster
from farview.host.scene import CutPlane, Scene
from tests.hosting import SHARED_MODELS
from tests.scene.conftest import make_glb


def box_scene() -> tuple[Scene, int]:
    model = load_model_bytes((SHARED_MODELS / "Box.glb").read_bytes(), name="Box")
    scene = Scene()
    root = scene.add_model(model, "Box")
    return scene, root.id


def test_box_front_and_back_faces_distances_and_normals() -> None:
    scene, _ = box_scene()
    hits = RayCaster().cast(scene.draw_list(), (0, 0, 5), (0, 0, -2), max_hits=10)
    # Box.glb is a unit cube (rotated into y-up by its root node): faces at z = ±0.5
    assert [round(h.distance, 6) for h in hits] == [4.5, 5.5]
    assert [h.front_face for h in hits] == [True, False]
    assert hits[0].normal == pytest.approx((0, 0, 1))
    assert hits[1].normal == pytest.approx((0, 0, -1))


def test_transforms_mirroring_state_and_cut_planes() -> None:
    scene, root_id = box_scene()
    root = scene.get(root_id)
    caster = RayCaster()
    root.position = (3, 0, 0)
    root.scale = (2, 2, -2)  # mirrored: the outside must stay the front
    hits = caster.cast(scene.draw_list(), (3, 0, 5), (0, 0, -1), max_hits=10)
    assert [round(h.distance, 6) for h in hits] == [4.0, 6.0]
    assert [h.front_face for h in hits] == [True, False]
    assert caster.cast(scene.draw_list(), (0, 0, 5), (0, 0, -1)) == []  # AABB miss
    root.collision_disabled = True
    assert caster.cast(scene.draw_list(), (3, 0, 5), (0, 0, -1)) == []
    root.collision_disabled = None
    hits = caster.cast(scene.draw_list(), (3, 0, 5), (0, 0, -1), max_hits=10,
                       cut_planes=[CutPlane((0, 0, 1), (0, 0, 0))])
    assert [round(h.distance, 6) for h in hits] == [6.0]  # the front half is cut away
    assert caster.cast(scene.draw_list(), (3, 0, 5), (0, 0, -1), max_distance=3.9) == []


def test_a_ray_through_a_shared_edge_is_one_hit() -> None:
    quad = make_glb(np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]]),
                    np.array([0, 1, 2, 0, 2, 3]))
    scene = Scene()
    scene.add_model(load_model_bytes(quad), "quad")
    hits = RayCaster().cast(scene.draw_list(), (0, 0, 1), (0, 0, -1), max_hits=10)
    assert len(hits) == 1 and hits[0].distance == pytest.approx(1.0)


def test_the_box_pass_finds_what_testing_every_part_finds() -> None:
    """The cast looks closer only at parts whose world box the ray meets, nearest first: its
    hits must be the ones testing every part gives, for rays from anywhere (inside boxes,
    along the axes, under a cut plane), through turned, scaled and mirrored parts."""
    from farview.host.gltf import load_model
    from tests.host.conftest import SAMPLE

    scene = Scene()
    rng = np.random.default_rng(7)
    for i in range(6):
        root = scene.add_model(load_model(SAMPLE), f"engine{i}")
        root.position = tuple(rng.uniform(-0.6, 0.6, 3))
        q = rng.normal(size=4)
        root.rotation = tuple(q / np.linalg.norm(q))
        root.scale = (1.0, -1.0 if i % 2 else 1.0, float(rng.uniform(0.5, 2.0)))
    items = scene.draw_list()
    caster = RayCaster()
    plane = [CutPlane((0.0, 1.0, 0.0), (0.0, 0.1, 0.0))]
    hits_seen = 0
    for n in range(60):
        origin = rng.uniform(-1.5, 1.5, 3) if n % 3 else rng.uniform(-0.3, 0.3, 3)
        direction = rng.normal(size=3)
        if n % 4 == 0:  # along an axis: zero components
            direction = np.eye(3)[n % 3] * (1 if n % 8 else -1)
        cuts = plane if n % 5 == 0 else []
        for max_hits in (1, 7):
            got = caster.cast(items, origin, direction, max_hits=max_hits, cut_planes=cuts)
            d = direction / np.linalg.norm(direction)
            every = sorted((h for it in items for h in caster._cast_item(
                it, origin, d, math.inf, max_hits, cuts)), key=lambda h: h.distance)
            assert [(h.entity_id, round(h.distance, 9)) for h in got] == [
                (h.entity_id, round(h.distance, 9)) for h in every[:max_hits]], (n, max_hits)
            hits_seen += len(got)
    assert hits_seen > 40, hits_seen  # most rays hit something (65 with this seed)


def _every_triangle(positions: np.ndarray, indices: np.ndarray, origin: np.ndarray,
                    direction: np.ndarray) -> list[float]:
    """Reference: Möller–Trumbore over every triangle, the distances hit (sorted)."""
    tri = positions.astype(np.float64)[indices.reshape(-1, 3)]
    v0, e1, e2 = tri[:, 0], tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    p = np.cross(direction, e2)
    det = np.einsum("ij,ij->i", e1, p)
    ok = np.abs(det) > 1e-12
    inv = np.divide(1.0, det, out=np.zeros_like(det), where=ok)
    s = origin - v0
    u = np.einsum("ij,ij->i", s, p) * inv
    q = np.cross(s, e1)
    v = (q @ direction) * inv
    t = np.einsum("ij,ij->i", e2, q) * inv
    ok &= (u >= 0) & (u <= 1) & (v >= 0) & (u + v <= 1) & (t > 1e-9)
    return sorted(t[ok].tolist())


@pytest.mark.parametrize("order", ["rings", "local"])
def test_chunked_casts_find_what_testing_every_triangle_finds(order: str) -> None:
    """A big mesh is cast against in chunks of neighbouring triangles (only those whose box
    the ray meets are tested): the hits must be those of testing every triangle, for rays
    from outside and inside, along the axes and grazing, nearest hit and several. "rings": a
    UV sphere's triangles ring by ring, chunked in Morton order; "local": the same triangles
    in a local order (as a converted file's), chunked as they come."""
    from benchmarks.bench_scale import sphere
    from farview.host.gltf import DEFAULT_MATERIAL, Mesh, Model, Node, Primitive
    from farview.host.raycast import CHUNK_TRIANGLES, _prim_chunks

    pos, nrm, idx = sphere(120)  # 28,560 triangles: 112 chunks
    rng = np.random.default_rng(3)
    pos = pos * (1.0 + 0.1 * rng.random((len(pos), 1))).astype(np.float32)  # bumpy
    if order == "local":  # the triangles in the Morton order the caster would sort them into
        sorted_ = _prim_chunks(pos, idx)
        assert sorted_ is not None and sorted_.order is not None
        idx = np.ascontiguousarray(idx.reshape(-1, 3)[sorted_.order].reshape(-1))
    prim = Primitive(pos, nrm, idx, DEFAULT_MATERIAL)
    assert prim.triangle_count > 50 * CHUNK_TRIANGLES
    chunks = _prim_chunks(prim.positions, prim.indices)
    assert chunks is not None and (chunks.order is None) == (order == "local")
    mesh = Mesh("ball", (prim,))
    scene = Scene()
    scene.add_model(Model("ball", (Node(0, "ball", mesh=mesh),), (0,), (mesh,),
                          (DEFAULT_MATERIAL,)), "ball")
    items = scene.draw_list()
    caster = RayCaster()
    hits_seen = 0
    for n in range(150):
        origin = rng.uniform(-0.5, 0.5, 3) if n % 3 == 0 else rng.uniform(-3, 3, 3)
        direction = rng.normal(size=3) if n % 4 else np.eye(3)[n % 3] * (1 if n % 8 else -1)
        if n % 10 == 5:  # grazing: aimed at a point on the surface's silhouette
            direction = pos[rng.integers(len(pos))] - origin
        d = direction / np.linalg.norm(direction)
        want = _every_triangle(pos, idx, origin, d)
        got = caster.cast(items, origin, direction, max_hits=50)
        # (the caster counts a shared edge's two triangles once)
        kept = [t for k, t in enumerate(want) if k == 0 or t - want[k - 1] > 1e-9 + 1e-7 * t]
        assert [round(h.distance, 9) for h in got] == [round(t, 9) for t in kept], n
        nearest = caster.cast(items, origin, direction)
        assert [h.distance for h in nearest] == [h.distance for h in got[:1]]
        hits_seen += len(got)
    assert hits_seen > 100


def test_a_casts_kept_world_matrices_and_boxes_follow_the_scene() -> None:
    """Casts with the scene's structure version as ``worlds_key`` reuse the world boxes made
    for it (by :meth:`RayCaster.prepare` or the last cast): a state change keeps them (a hidden
    part is still not hit), a move makes new ones (the part is hit where it went); pruning a
    removed model's meshes packs the box table and casts against what is left stay right."""
    scene = Scene()
    from farview.host.gltf import load_model
    from tests.host.conftest import SAMPLE

    first = scene.add_model(load_model(SAMPLE), "a")
    second = scene.add_model(load_model(SAMPLE), "b")
    second.position = (5.0, 0.0, 0.0)
    caster = RayCaster()
    caster.prepare(scene.draw_list(), (id(scene), scene.structure_version))
    assert caster._world_boxes is not None
    prepared = caster._world_boxes[2]

    def cast(origin: tuple[float, float, float]) -> list[tuple[int, float]]:
        hits = caster.cast(scene.draw_list(), origin, (0.0, 0.0, -1.0), max_hits=3,
                           worlds_key=(id(scene), scene.structure_version))
        fresh = RayCaster().cast(scene.draw_list(), origin, (0.0, 0.0, -1.0), max_hits=3)
        assert [(h.entity_id, h.distance) for h in hits] == [
            (h.entity_id, h.distance) for h in fresh]
        return [(h.entity_id, round(h.distance, 6)) for h in hits]

    at_b = cast((5.0, 0.05, 5.0))
    assert at_b
    assert caster._world_boxes[2] is prepared  # made once, before the first cast
    hit = scene.get(at_b[0][0])
    hit.hidden = True  # a state change: the same structure version, the same matrices
    assert cast((5.0, 0.05, 5.0))[:1] != at_b[:1]
    hit.hidden = None
    second.position = (-5.0, 0.0, 0.0)  # moved: a new structure version
    assert cast((5.0, 0.05, 5.0)) == []
    assert cast((-5.0, 0.05, 5.0)) == at_b
    scene.remove(first)
    caster.prune(scene.meshes())
    assert cast((-5.0, 0.05, 5.0)) == at_b and cast((0.0, 0.05, 5.0)) == []


def test_zero_direction_is_refused() -> None:
    with pytest.raises(ValueError, match="zero vector"):
        RayCaster().cast([], (0, 0, 0), (0, 0, 0))


def test_classify_sources() -> None:
    assert classify("https://example.com/a.glb") == "url"
    assert classify("HTTP://example.com/a.glb") == "url"
    assert classify("/abs/a.glb") == "path"
    assert classify("rel/a.glb") == "path"
    assert classify("~/a.glb") == "path"
    assert classify("Duck.glb") == "name"
    assert classify("file:///srv/models/a.glb") == "path"  # (a conversion's outputAssetUri)
    with pytest.raises(SourceError, match="unsupported model URL scheme"):
        classify("ftp://example.com/a.glb")


def test_store_names_never_escape(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    (store_dir / "ok.glb").write_bytes(b"x")
    secret = tmp_path / "secret.glb"
    secret.write_bytes(b"x")
    (store_dir / "link.glb").symlink_to(secret)
    store = ModelStore((store_dir,))
    assert store.resolve("ok") == (store_dir / "ok.glb").resolve()
    assert store.resolve("ok.glb") == (store_dir / "ok.glb").resolve()
    for bad in ("..", "../secret", ".hidden", "a/b", "", "x" * 200):
        with pytest.raises(SourceError) as err:
            store.resolve(bad)
        assert err.value.code == "InvalidArgument"
    with pytest.raises(SourceError) as err:
        store.resolve("link")  # a link out of the store
    assert err.value.code == "NotFound"
    assert "link" in store.names() and "ok" in store.names()


def test_budgets_from_env() -> None:
    b = LoadBudgets.from_env({"FARVIEW_MAX_TRIANGLES": "5", "FARVIEW_MAX_MODEL_BYTES": "7",
                              "FARVIEW_FETCH_TIMEOUT": "0.5", "FARVIEW_MAX_DECODED_BYTES": "9"})
    assert (b.max_triangles, b.max_bytes, b.fetch_timeout, b.max_decoded_bytes) == (5, 7, 0.5, 9)
    assert LoadBudgets.from_env({}) == LoadBudgets()
    with pytest.raises(ValueError, match="FARVIEW_MAX_TRIANGLES='many' is not a number"):
        LoadBudgets.from_env({"FARVIEW_MAX_TRIANGLES": "many"})
    with pytest.raises(ValueError, match="positive"):
        LoadBudgets(max_triangles=0)
    assert math.isfinite(LoadBudgets().fetch_timeout)


def test_budgets_follow_the_session_size() -> None:
    """ARR's sizes: a Standard session takes a model up to its 20-million-triangle scene limit
    (the library default of 10 million refused ARR-size models); Premium is bounded by the
    machine's memory; an explicit FARVIEW_MAX_* setting still wins."""
    standard = LoadBudgets.for_size("Standard", {})
    assert standard.max_triangles == 20_000_000 and standard.max_bytes == 1 << 30
    assert standard.max_decoded_bytes == 2 << 30
    premium = LoadBudgets.for_size("Premium", {}, memory_bytes=64 << 30)
    assert premium.max_triangles == (64 << 30) // 100 and premium.max_bytes == 16 << 30
    assert premium.max_decoded_bytes == 32 << 30
    capped = LoadBudgets.for_size("Premium", {"FARVIEW_MAX_TRIANGLES": "1000",
                                              "FARVIEW_MAX_MODEL_BYTES": "2048"}, memory_bytes=1 << 40)
    assert (capped.max_triangles, capped.max_bytes) == (1000, 2048)
    with pytest.raises(ValueError, match="unknown session size 'Huge'"):
        LoadBudgets.for_size("Huge", {})


def test_pixel_ray_through_the_centre_and_corners() -> None:
    from farview.client.scene import pixel_ray
    from farview.input.pose import Fov, Pose, View

    view = View(Pose((1, 2, 3)), Fov.symmetric(90.0, 2.0))
    origin, d = pixel_ray(view, (200, 100), 99.5, 49.5)
    assert origin == (1, 2, 3) and d == pytest.approx((0, 0, -1))
    _, d = pixel_ray(view, (200, 100), -0.5, -0.5)  # top-left corner of the image
    assert d == pytest.approx(np.array([-2, 1, -1]) / math.sqrt(6))
    turned = View(Pose((0, 0, 0), (0, math.sin(math.pi / 4), 0, math.cos(math.pi / 4))),
                  Fov.symmetric(90.0, 1.0))  # 90° about +y: looking down -x
    _, d = pixel_ray(turned, (100, 100), 49.5, 49.5)
    assert d == pytest.approx((-1, 0, 0))


def test_a_loaded_models_ray_cast_boxes_are_made_in_the_background(model_dir: Path) -> None:
    """Loading a model starts making its meshes' ray-cast boxes, and the draw list's world
    boxes, in a worker thread, so the first click does not wait for them."""
    import asyncio

    from farview.host.model_store import LoadBudgets
    from farview.host.scene_api import SceneService
    from tests.host.conftest import SAMPLE
    from tests.scene.conftest import MAX_MODEL_BYTES, MAX_TRIANGLES
    from tests.scene.test_http_route import _Runtime

    service = SceneService(_Runtime(), budgets=LoadBudgets(  # type: ignore[arg-type]
        max_triangles=MAX_TRIANGLES, max_bytes=MAX_MODEL_BYTES), store=ModelStore((model_dir,)))

    async def run() -> None:
        await service.load(str(SAMPLE))  # a path on the host: 49 meshes
        assert service._priming, "the boxes should be on their way"
        await asyncio.gather(*service._priming)
        assert not service._priming

    asyncio.run(run())
    scene = service.runtime.scene
    meshes = scene.meshes()
    assert meshes and meshes <= set(service.raycaster._box_row)
    # and the draw list's world boxes, for the scene as it is now
    boxes = service.raycaster._world_boxes
    assert boxes is not None and boxes[:2] == ((id(scene), scene.structure_version),
                                               len(scene.draw_list()))


def test_prime_makes_the_chunks_of_big_meshes_before_the_first_ray() -> None:
    """A loaded model's big meshes get their chunks when it is loaded (the first ray into a
    311,000-triangle mesh waited 60-70 ms for them); small ones, which a ray chunks in well under
    a millisecond, wait for a ray. Casts after priming find what a fresh caster finds."""
    from benchmarks.bench_scale import sphere
    from farview.host.gltf import DEFAULT_MATERIAL, Mesh, Model, Node, Primitive
    from farview.host.raycast import PRIME_MIN_TRIANGLES

    big_pos, big_nrm, big_idx = sphere(120)
    small_pos, small_nrm, small_idx = sphere(10)
    big = Mesh("big", (Primitive(big_pos, big_nrm, big_idx, DEFAULT_MATERIAL),))
    small = Mesh("small", (Primitive(small_pos * 0.2, small_nrm, small_idx, DEFAULT_MATERIAL),))
    assert big.triangle_count >= PRIME_MIN_TRIANGLES > small.triangle_count
    scene = Scene()
    model = Model("two", (Node(0, "big", mesh=big), Node(1, "small", mesh=small,
                                                         translation=(3.0, 0.0, 0.0))),
                  (0, 1), (big, small), (DEFAULT_MATERIAL,))
    scene.add_model(model, "two")
    caster = RayCaster()
    caster.prime(list(model.meshes))
    assert big.key in caster._cache and caster._cache[big.key] is not None
    assert small.key not in caster._cache
    for origin in ((0.0, 0.3, 5.0), (3.0, 0.0, 5.0), (0.5, 0.5, -5.0)):
        direction = (0.0, 0.0, -1.0) if origin[2] > 0 else (0.0, 0.0, 1.0)
        got = caster.cast(scene.draw_list(), origin, direction, max_hits=4)
        want = RayCaster().cast(scene.draw_list(), origin, direction, max_hits=4)
        assert got and [(h.entity_id, h.distance) for h in got] == [
            (h.entity_id, h.distance) for h in want]
