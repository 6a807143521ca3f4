"""Model loading on a real host: by store name, host path and URL; trees and bounds match the
files; unload; every bad input is refused with an error naming it and changes nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from farview.client.connection import RenderingConnection
from farview.client.errors import RemoteError
from farview.client.scene import EntityNode, load_model_http
from farview.host.gltf import load_model, node_world_matrices
from farview.host.transforms import transform_points
from farview.input.pose import Pose
from tests.hosting import REPO, SHARED_MODELS, RunningHost, model_mask

pytestmark = pytest.mark.slow

FOREIGN = ["Box", "BoxAnimated", "BoxTextured", "CesiumMilkTruck", "Duck"]


def file_tree(path: Path) -> tuple[list[str], list[tuple[str, ...]]]:
    """Names of the nodes reachable from the file's scene roots, and their child names."""
    model = load_model(path)
    names, children = [], []
    stack = list(reversed(model.roots))
    while stack:
        node = model.nodes[stack.pop()]
        names.append(node.name)
        children.append(tuple(model.nodes[c].name for c in node.children))
        stack.extend(reversed(node.children))
    return names, children


def tree_lists(root: EntityNode) -> tuple[list[str], list[tuple[str, ...]]]:
    nodes = list(root.walk())[1:]  # the model root entity is farview's, not the file's
    return [n.name for n in nodes], [tuple(c.name for c in n.children) for n in nodes]


def file_bounds(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """World AABB of every POSITION, through the node transforms of the file's scene."""
    model = load_model(path)
    worlds = node_world_matrices(model)
    pts = [transform_points(worlds[n.index], p.positions)
           for n in model.nodes if n.mesh is not None and n.index in worlds
           for p in n.mesh.primitives]
    allp = np.concatenate(pts)
    return allp.min(axis=0), allp.max(axis=0)


async def scene_size(conn: RenderingConnection) -> int:
    return sum(len(r) for r in await conn.scene.roots(depth=1000))


@pytest.mark.parametrize("name", FOREIGN)
async def test_foreign_model_tree_and_bounds_match_the_file(conn: RenderingConnection,
                                                            name: str) -> None:
    path = SHARED_MODELS / f"{name}.glb"
    root = await conn.scene.load_model(str(path))
    try:
        assert root.model is not None
        names, children = file_tree(path)
        assert tree_lists(root.model.tree) == (names, children)
        assert root.model.entity_count == len(names) + 1
        assert root.model.triangles == load_model(path).triangle_count
        lo, hi = file_bounds(path)
        bounds = await root.bounds("world")
        assert bounds is not None
        np.testing.assert_allclose(bounds.min, lo, atol=1e-4)
        np.testing.assert_allclose(bounds.max, hi, atol=1e-4)
        # the tree query agrees with what the load returned
        assert await root.tree() == root.model.tree
    finally:
        await root.unload()


async def test_sample_by_name_matches_the_file_and_unload_removes_it(
        conn: RenderingConnection) -> None:
    before = await scene_size(conn)
    assert "sample_engine" in await conn.scene.list_models()
    root = await conn.scene.load_model("sample_engine")
    assert root.model is not None and root.name == "sample_engine"
    names, children = file_tree(REPO / "assets" / "sample_engine.glb")
    assert tree_lists(root.model.tree) == (names, children)
    assert len(names) == 57 and names[0] == "Engine"
    lo, hi = file_bounds(REPO / "assets" / "sample_engine.glb")
    b = await root.bounds()
    assert b is not None
    np.testing.assert_allclose(b.min, lo, atol=1e-4)
    np.testing.assert_allclose(b.max, hi, atol=1e-4)
    local = await root.bounds("local")
    assert local is not None
    np.testing.assert_allclose(local.min, lo, atol=1e-4)
    assert await scene_size(conn) == before + 58
    await root.unload()
    assert await scene_size(conn) == before
    with pytest.raises(RemoteError) as err:
        await root.info()
    assert err.value.code == "NotFound" and err.value.target == f"entity {root.id}"


async def test_store_folder_model_by_name(conn: RenderingConnection) -> None:
    assert {"tri", "big_tris"} <= set(await conn.scene.list_models())
    root = await conn.scene.load_model("tri.glb")
    try:
        assert root.model is not None
        assert [n.name for n in root.model.tree.walk()] == ["tri", "Triangle"]
    finally:
        await root.unload()


async def test_url_load_streams_with_progress_events(conn: RenderingConnection,
                                                     http_models: str) -> None:
    conn.events.clear()
    url = f"{http_models}/CesiumMilkTruck.glb"
    root = await conn.scene.load_model(url)
    try:
        assert root.model is not None and root.model.name == "CesiumMilkTruck"
        names, children = file_tree(SHARED_MODELS / "CesiumMilkTruck.glb")
        assert tree_lists(root.model.tree) == (names, children)
        progress = [d for e, d in conn.events if e == "load_progress" and d["source"] == url]
        assert progress[0]["fraction"] == 0.0 and progress[-1]["fraction"] == 1.0
        fractions = [d["fraction"] for d in progress]
        assert fractions == sorted(fractions)
    finally:
        await root.unload()


@pytest.mark.parametrize(("source", "code", "words"), [
    ("not_gltf", "InvalidModel", "not a glTF file"),
    ("truncated", "InvalidModel", "exceeds file size"),
    ("big_tris", "LimitExceeded", "triangle budget"),
    ("big_bytes", "LimitExceeded", "size budget"),
    ("big_decoded.gltf", "LimitExceeded", "set FARVIEW_MAX_DECODED_BYTES on the host"),
    ("no_such_model", "NotFound", "no model named 'no_such_model'"),
    ("..", "InvalidArgument", "not a plain file name"),
    ("/nonexistent/dir/model.glb", "NotFound", "no model file"),
    ("ftp://example.com/x.glb", "InvalidArgument", "unsupported model URL scheme"),
])
async def test_bad_sources_are_refused_and_change_nothing(
        conn: RenderingConnection, source: str, code: str, words: str) -> None:
    before = await scene_size(conn)
    with pytest.raises(RemoteError) as err:
        await conn.scene.load_model(source)
    assert err.value.code == code, err.value
    assert words in err.value.message
    assert err.value.target == source
    assert await scene_size(conn) == before
    # the host keeps streaming
    seq = conn.send_pose(keyframe=True).sequence
    for _ in range(20):
        frame = await conn.next_frame()
        if frame.pose is not None and frame.pose.sequence >= seq:
            break
    else:
        raise AssertionError("no frame after a refused load")


async def test_bad_urls_are_refused(conn: RenderingConnection, http_models: str) -> None:
    before = await scene_size(conn)
    with pytest.raises(RemoteError) as err:
        await conn.scene.load_model(f"{http_models}/missing.glb")
    assert err.value.code == "FetchFailed" and "HTTP 404" in err.value.message
    with pytest.raises(RemoteError) as err:
        await conn.scene.load_model(f"{http_models}/slow/Box.glb")
    assert err.value.code == "Timeout" and "fetch timeout" in err.value.message
    with pytest.raises(RemoteError) as err:
        await conn.scene.load_model("http://127.0.0.1:9/unreachable.glb")
    assert err.value.code == "FetchFailed"
    assert await scene_size(conn) == before


def test_http_route_loads_into_the_running_session(host: RunningHost) -> None:
    model = load_model_http(f"{host.base_url}/scene/models", host.token(), "tri")
    assert model.name == "tri" and model.entity_count == 2
    with pytest.raises(RemoteError) as err:
        load_model_http(f"{host.base_url}/scene/models", host.token(), "not_gltf")
    assert err.value.code == "InvalidModel" and err.value.target == "not_gltf"
    from farview.client.errors import AuthenticationError

    with pytest.raises(AuthenticationError):
        load_model_http(f"{host.base_url}/scene/models", "not-a-token", "tri")


async def test_textured_model_streams_in_its_texture_colours(conn: RenderingConnection) -> None:
    # Duck's only colour is its base colour texture: untextured, it would stream white.
    engine = (await conn.scene.find("Engine"))[0]
    duck = await conn.scene.load_model(str(SHARED_MODELS / "Duck.glb"))
    try:
        await engine.set_hidden(True)
        b = await duck.bounds()
        assert b is not None
        lo, hi = np.asarray(b.min), np.asarray(b.max)
        centre = (lo + hi) / 2
        eye = (float(centre[0]), float(centre[1]), float(centre[2] + 2.5 * (hi - lo).max()))
        seq = conn.send_pose(Pose(eye), fov_y=50.0, keyframe=True).sequence
        frame = await conn.next_frame(timeout=15)
        while frame.pose is None or frame.pose.sequence < seq:
            frame = await conn.next_frame(timeout=15)
        rgb = frame.to_rgb()
        duck_px = rgb[model_mask(rgb)][:, :3].astype(int)
        assert len(duck_px) > 0.05 * rgb.shape[0] * rgb.shape[1]
        red, green, blue = np.median(duck_px, axis=0)
        assert red > blue + 80 and green > blue + 50, (red, green, blue)
    finally:
        await engine.set_hidden(None)
        await duck.unload()
