"""Entities, appearance and queries on a real host: transforms, parents, state overrides seen
in the streamed pixels, cut planes, camera, lighting, ray casts; state across reconnects and
its end with the host; every bad input refused with the failing id and reason."""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path

import numpy as np
import pytest

from farview.client.connection import RenderingConnection, connect_to_host
from farview.client.errors import ProtocolError, RemoteError
from farview.client.scene import RemoteEntity
from farview.input.pose import Pose
from farview.input.scene import Light
from farview.streaming.frame import Frame
from tests.hosting import RunningHost, model_mask
from tests.scene.conftest import VIEWPORT, start_scene_host

pytestmark = pytest.mark.slow

CAMERA = Pose((0.0, 0.0, 1.6))
"""Straight in front of the sample engine, looking down -z at its Block."""
FOV_Y = 60.0


async def frame_after(conn: RenderingConnection, pose: Pose = CAMERA,
                      timeout: float = 15.0) -> np.ndarray:
    """RGB of the first frame rendered with a pose sent now (so after every earlier change).

    ``keyframe=True`` makes the host render this pose even when it equals the last frame's
    (the render loop skips a repeated pose over an unchanged scene, and a change may already
    have been rendered with the previous pose)."""
    seq = conn.send_pose(pose, fov_y=FOV_Y, keyframe=True).sequence
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame: Frame = await conn.next_frame(timeout=timeout)
        if frame.pose is not None and frame.pose.sequence >= seq:
            return frame.to_rgb()
    raise AssertionError(f"no frame for pose {seq}")


def to_pixel(p: tuple[float, float, float]) -> tuple[float, float]:
    """Project a world point for CAMERA (identity orientation) into VIEWPORT pixels."""
    w, h = VIEWPORT
    t = math.tan(math.radians(FOV_Y) / 2)
    x, y, z = (p[0] - CAMERA.position[0], p[1] - CAMERA.position[1], p[2] - CAMERA.position[2])
    ndc_x, ndc_y = x / -z / (t * w / h), y / -z / t
    return (ndc_x + 1) / 2 * w, (1 - ndc_y) / 2 * h


async def pixel_box(entity: RemoteEntity) -> tuple[int, int, int, int]:
    """Pixel rectangle (x0, y0, x1, y1) that holds the entity's projected world bounds."""
    b = await entity.bounds()
    assert b is not None
    corners = [to_pixel((x, y, z)) for x in (b.min[0], b.max[0]) for y in (b.min[1], b.max[1])
               for z in (b.min[2], b.max[2])]
    xs, ys = [c[0] for c in corners], [c[1] for c in corners]
    return int(min(xs)), int(min(ys)), math.ceil(max(xs)), math.ceil(max(ys))


async def part(conn: RenderingConnection, name: str) -> RemoteEntity:
    found = await conn.scene.find(name)
    assert len(found) == 1, f"{name}: {found}"
    return found[0]


def changed(a: np.ndarray, b: np.ndarray, threshold: int = 40) -> np.ndarray:
    return np.asarray(np.abs(a.astype(int) - b.astype(int)).max(axis=-1) > threshold)


# -- queries ------------------------------------------------------------------------------------


async def test_ray_from_the_camera_hits_the_block_straight_ahead(
        conn: RenderingConnection) -> None:
    hits = await conn.scene.raycast(CAMERA.position, (0, 0, -1))
    assert len(hits) == 1
    hit = hits[0]
    assert hit.entity_name == "Block"
    assert hit.distance == pytest.approx(1.6 - 0.12, abs=1e-4)
    assert hit.position == pytest.approx((0.0, 0.0, 0.12), abs=1e-4)
    assert hit.normal == pytest.approx((0.0, 0.0, 1.0), abs=1e-6)
    assert hit.front_face
    every = await conn.scene.raycast(CAMERA.position, (0, 0, -1), mode="all")
    assert [(h.entity_name, h.front_face) for h in every] == [("Block", True), ("Block", False)]
    assert every[1].distance == pytest.approx(1.6 + 0.12, abs=1e-4)
    assert len(await conn.scene.raycast(CAMERA.position, (0, 0, -1), mode="all",
                                        max_hits=1)) == 1
    assert await conn.scene.raycast(CAMERA.position, (0, 0, -1), max_distance=1.0) == []
    assert await conn.scene.raycast(CAMERA.position, (0, 0, 1)) == []  # looking away
    higher = await conn.scene.raycast((0.0, 0.25, 1.6), (0, 0, -1))
    assert higher[0].entity_name == "ValveCover"


async def test_a_click_on_a_drawn_point_picks_it_and_a_click_between_points_does_not(
        conn: RenderingConnection, tmp_path: Path) -> None:
    """Points are hit within the width they are drawn at in the view: a click inside a drawn
    point's square picks that point (ARR's hit type ``Point``); a click in the gap between two
    points goes through to the engine behind, until the points are drawn big enough to cover
    it."""
    from tests.host.test_point_clouds import points_glb

    c = (np.arange(3) - 1) * 0.1
    gx, gy = np.meshgrid(c, c)
    pts = np.stack([gx.ravel(), gy.ravel(), np.full(9, 0.3)], axis=1).astype(np.float32)
    path = tmp_path / "cloud.glb"
    path.write_bytes(points_glb(pts, base_color=(0.0, 1.0, 0.0, 1.0)))
    root = await conn.scene.load_model(str(path))
    try:
        assert await conn.scene.set_point_size(8) == 8.0  # squares of 8 pixels, 16 apart
        seq = conn.send_pose(CAMERA, fov_y=FOV_Y, keyframe=True).sequence
        frame = await conn.next_frame(timeout=15)
        while frame.pose is None or frame.pose.sequence < seq:
            frame = await conn.next_frame(timeout=15)
        rgb = frame.to_rgb().astype(int)
        assert frame.pose is not None
        for p in pts:
            px, py = to_pixel((float(p[0]), float(p[1]), float(p[2])))
            r, g, b = rgb[int(py), int(px)]
            assert g > 150 and r < 100 and b < 100, f"point {p} is not drawn at ({px}, {py})"
            for dx, dy in ((3, 3), (-3, 2), (0, -3)):  # inside the point's square
                hit = await conn.scene.pick(frame.pose, px + dx, py + dy)
                assert hit is not None and (hit.hit_type, hit.entity_name) == ("Point", "cloud")
                assert hit.position == pytest.approx(tuple(p), abs=1e-6)
                assert hit.front_face
        gap = to_pixel((0.05, 0.0, 0.3))  # 8 pixels from two points
        through = await conn.scene.pick(frame.pose, *gap)
        assert through is not None and through.hit_type == "TriangleFrontFace", through
        await conn.scene.set_point_size(16)
        covered = await conn.scene.pick(frame.pose, *gap)
        assert covered is not None and covered.hit_type == "Point", covered
    finally:
        await conn.scene.set_point_size(2)
        await root.unload()


async def test_ray_casts_honour_hidden_and_collision_disabled(
        conn: RenderingConnection) -> None:
    block = await part(conn, "Block")
    engine = await part(conn, "Engine")
    try:
        await block.set_collision_disabled(True)
        assert await conn.scene.raycast(CAMERA.position, (0, 0, -1)) == []
        await block.set_collision_disabled(None)
        await engine.set_hidden(True)  # inherited by every part
        assert await conn.scene.raycast(CAMERA.position, (0, 0, -1)) == []
        await block.set_hidden(False)  # the child's own override wins
        assert [h.entity_name for h in await conn.scene.raycast(CAMERA.position, (0, 0, -1))] \
            == ["Block"]
    finally:
        await engine.set_hidden(None)
        await block.set_state(hidden=None, collision_disabled=None)


async def test_parts_are_found_by_the_state_set_on_them(conn: RenderingConnection) -> None:
    """The scene is the session's: a client that connects finds the parts an earlier one hid
    or selected (find by state), with their names; a state inherited is not the part's own;
    state and name narrow each other; a bad query says what is wrong and changes nothing."""
    block = await part(conn, "Block")
    engine = await part(conn, "Engine")
    try:
        assert await conn.scene.find(hidden=True) == []
        await engine.set_hidden(True)  # (inherited by every part: only the engine's own)
        await block.set_state(selected=True, hidden=False)
        hidden = await conn.scene.find(hidden=True)
        assert hidden == [engine] and hidden[0].name == "Engine"
        assert [(e.id, e.name) for e in await conn.scene.find(selected=True)] == \
            [(block.id, "Block")]
        assert await conn.scene.find(hidden=False) == [block]
        assert await conn.scene.find("Block", selected=True) == [block]
        assert await conn.scene.find("Engine", selected=True) == []
        assert await engine.find(selected=True) == [block]  # under the engine
        with pytest.raises(ProtocolError, match="a name, a state"):
            await conn.scene.find()
        for params, says in (({"hidden": None}, "must be true or false"),
                             ({"hidden": 1}, "must be true or false"),
                             ({"shiny": True}, "unknown parameters: shiny"),
                             ({}, "needs a name, a state")):
            with pytest.raises(RemoteError, match=says):
                await conn.request("find_entities", **params)
    finally:
        await engine.set_hidden(None)
        await block.set_state(hidden=None, selected=None)
    assert await conn.scene.find(hidden=True) == [] and await conn.scene.find(selected=True) == []


# -- appearance in the pixels -------------------------------------------------------------------


async def test_tint_colours_the_part_and_hide_removes_its_pixels(
        conn: RenderingConnection) -> None:
    block = await part(conn, "Block")
    x0, y0, x1, y1 = await pixel_box(block)
    inside = np.zeros(VIEWPORT[::-1], dtype=bool)
    inside[max(y0 - 2, 0):y1 + 3, max(x0 - 2, 0):x1 + 3] = True

    def red(img: np.ndarray) -> np.ndarray:
        r, g, b = (img[..., i].astype(int) for i in range(3))
        return np.asarray((r > g + 40) & (r > b + 40))

    base = await frame_after(conn)
    try:
        await block.set_tint((1.0, 0.0, 0.0), 1.0)
        tinted = await frame_after(conn)
        block_pixels = red(tinted) & ~red(base)
        # the block is the dark grey part in front: it turns red, nothing outside its box does
        assert block_pixels[inside].sum() > 0.3 * inside.sum()
        assert changed(base, tinted)[~inside].sum() < 0.002 * inside.size
        await block.set_hidden(True)
        hidden = await frame_after(conn)
        assert red(hidden)[block_pixels].mean() < 0.02, "the hidden block left red pixels"
        assert changed(tinted, hidden)[~inside].sum() < 0.002 * inside.size
        await block.set_state(hidden=None, tint=None)
        restored = await frame_after(conn)
        assert changed(base, restored).mean() < 0.002
    finally:
        await block.set_state(hidden=None, tint=None)


async def test_material_edit_is_inherited_and_can_be_removed(
        conn: RenderingConnection) -> None:
    """ARR-style material edits: an unlit colour on the model root reaches every part under
    it; an empty edit on one part removes the inherited one there; None inherits again."""
    block = await part(conn, "Block")
    root = (await conn.scene.roots())[0]
    root_entity = conn.scene.entity(root.id)
    x0, y0, x1, y1 = await pixel_box(block)
    base = await frame_after(conn)
    try:
        info = await root_entity.set_material(color=(0.0, 0.0, 1.0), unlit=True)
        assert info.material is not None and info.material.color == (0.0, 0.0, 1.0)
        edited = await frame_after(conn)
        mask = model_mask(base)
        # unlit pure blue: every drawn pixel of the model is (0, 0, 255) within coding error
        blue = (edited[..., 2].astype(int) > 200) & (edited[..., 0] < 40) & (edited[..., 1] < 40)
        assert blue[mask].mean() > 0.8
        await block.set_material()  # empty: the block keeps its own material
        own = await frame_after(conn)
        centre = own[(y0 + y1) // 2 - 2:(y0 + y1) // 2 + 3, (x0 + x1) // 2 - 2:(x0 + x1) // 2 + 3]
        np.testing.assert_allclose(
            centre.reshape(-1, 3).mean(axis=0),
            base[(y0 + y1) // 2 - 2:(y0 + y1) // 2 + 3,
                 (x0 + x1) // 2 - 2:(x0 + x1) // 2 + 3].reshape(-1, 3).mean(axis=0), atol=4)
        with pytest.raises(RemoteError, match="unknown material fields: shiny"):
            await block.set_state(material={"shiny": True})
        with pytest.raises(RemoteError, match="material metallic"):
            await block.set_state(material={"metallic": 2})
        await root_entity.inherit_material()
        await block.inherit_material()
        restored = await frame_after(conn)
        assert changed(base, restored).mean() < 0.002
    finally:
        await root_entity.set_state(material=None)
        await block.set_state(material=None)


async def test_selected_draws_an_outline_around_the_part(conn: RenderingConnection) -> None:
    block = await part(conn, "Block")
    base = await frame_after(conn)
    try:
        info = await block.set_selected(True)
        assert info.selected is True
        selected = await frame_after(conn)
    finally:
        await block.set_selected(None)

    def orange(img: np.ndarray) -> np.ndarray:
        r, g, b = (img[..., i].astype(int) for i in range(3))
        return np.asarray((r > 180) & (g > 90) & (g < 200) & (b < 90))

    assert orange(base).sum() < 20
    assert orange(selected).sum() > 150
    x0, y0, x1, y1 = await pixel_box(block)
    ys, xs = np.nonzero(orange(selected))
    # the outline hugs the block: within a few pixels of its projected box
    assert xs.min() >= x0 - 8 and xs.max() <= x1 + 8 and ys.min() >= y0 - 8 and ys.max() <= y1 + 8


async def test_see_through_blends_the_part(conn: RenderingConnection) -> None:
    block = await part(conn, "Block")
    base = await frame_after(conn)
    try:
        await block.set_tint((1.0, 1.0, 1.0), 1.0)  # bright, so the blend is easy to see
        white = await frame_after(conn)
        block_pixels = changed(base, white)
        assert block_pixels.sum() > 500
        await block.set_see_through(True)
        seen = await frame_after(conn)
        drop = white[block_pixels].astype(int).mean() - seen[block_pixels].astype(int).mean()
        assert drop > 30, drop
    finally:
        await block.set_state(see_through=None, tint=None)


async def test_cut_planes_remove_geometry_and_a_ninth_is_refused(
        conn: RenderingConnection) -> None:
    base = await frame_after(conn)
    w = VIEWPORT[0]
    planes = []
    try:
        planes.append(await conn.scene.add_cut_plane((1, 0, 0), (0, 0, 0)))  # cut x > 0
        cut = await frame_after(conn)
        left_before, right_before = model_mask(base)[:, : w // 2], model_mask(base)[:, w // 2:]
        left_after, right_after = model_mask(cut)[:, : w // 2], model_mask(cut)[:, w // 2:]
        assert right_after.sum() < 0.05 * right_before.sum()
        assert left_after.sum() > 0.8 * left_before.sum()
        # ray casts skip what is cut away
        assert await conn.scene.raycast((0.1, 0.0, 1.6), (0, 0, -1)) == []
        assert (await conn.scene.raycast((-0.1, 0.0, 1.6), (0, 0, -1)))[0].entity_name == "Block"
        for i in range(7):
            planes.append(await conn.scene.add_cut_plane((0, 0, 1), (0, 0, 100 + i)))
        assert len(await conn.scene.cut_planes()) == 8
        with pytest.raises(RemoteError) as err:
            await conn.scene.add_cut_plane((0, 1, 0), (0, 0, 0))
        assert err.value.code == "LimitExceeded" and "at most 8 cut planes" in err.value.message
        moved = await conn.scene.set_cut_plane(planes[0], (-1, 0, 0), (0, 0, 0))
        assert moved.normal == (-1, 0, 0)
        assert await conn.scene.raycast((0.1, 0.0, 1.6), (0, 0, -1)) != []
    finally:
        for p in planes:
            await conn.scene.remove_cut_plane(p)
    assert await conn.scene.cut_planes() == []
    with pytest.raises(RemoteError) as err:
        await conn.scene.remove_cut_plane(planes[0])
    assert err.value.code == "NotFound" and err.value.target == f"cut plane {planes[0].id}"


async def test_camera_settings_are_validated_and_applied(conn: RenderingConnection) -> None:
    base = await frame_after(conn)
    for near, far in ((1.0, 1.0), (2.0, 1.0), (0.0, 10.0), (-1.0, 10.0), (0.1, 1e300)):
        says = "far must be in" if far > 1e38 else "0 < near < far"
        with pytest.raises(ProtocolError, match=says):  # refused before it is sent
            await conn.scene.set_camera(near, far)
        with pytest.raises(RemoteError) as err:  # and by the host (other clients)
            await conn.request("set_camera", near=near, far=far)
        assert err.value.code == "InvalidArgument" and says in err.value.message
    try:
        camera = await conn.scene.set_camera(0.05, 50.0, fov_y=30.0)
        assert camera.override and camera.fov_y == 30.0
        assert (conn.near, conn.far) == (0.05, 50.0)
        zoomed = await frame_after(conn)
        assert model_mask(zoomed).mean() > 2.5 * model_mask(base).mean()
        await conn.scene.set_camera(3.0, 50.0)  # near plane behind the model: nothing drawn
        assert model_mask(await frame_after(conn)).mean() < 0.01
    finally:
        assert not (await conn.scene.reset_camera()).override
    assert changed(base, await frame_after(conn)).mean() < 0.002


async def test_full_detail_can_be_pinned(conn: RenderingConnection) -> None:
    """set_level_of_detail: "full" pins full detail (the renderer test checks the pictures),
    "auto" gives it back; other modes are refused and change nothing."""
    assert await conn.scene.get_level_of_detail() == "auto"
    for bad in ("fine", "", "FULL"):
        with pytest.raises(RemoteError) as err:
            await conn.scene.set_level_of_detail(bad)
        assert err.value.code == "InvalidArgument" and "auto, full" in err.value.message
    with pytest.raises(RemoteError) as err:
        await conn.request("set_level_of_detail", mode=3)
    assert err.value.code == "InvalidArgument" and "mode" in err.value.message
    assert await conn.scene.get_level_of_detail() == "auto"
    try:
        assert await conn.scene.set_level_of_detail("full") == "full"
        assert await conn.scene.get_level_of_detail() == "full"
        await frame_after(conn)  # the host keeps rendering with it pinned
    finally:
        assert await conn.scene.set_level_of_detail("auto") == "auto"


async def test_a_point_cloud_loads_counts_and_is_drawn_at_the_point_size(
        conn: RenderingConnection, tmp_path: Path) -> None:
    """A glTF POINTS model through the host: the load reports its points, the stream shows
    them in their colour, set_point_size makes them bigger, bad sizes are refused."""
    from tests.host.test_point_clouds import grid, points_glb

    pts = grid(6, 0.08) + np.float32((0.0, 0.0, 0.5))  # in front of the engine
    path = tmp_path / "cloud.glb"
    path.write_bytes(points_glb(pts, base_color=(1.0, 0.0, 1.0, 1.0)))
    base = await frame_after(conn)

    def magenta(img: np.ndarray) -> int:
        r, g, b = (img[..., i].astype(int) for i in range(3))
        return int(((r > 150) & (b > 150) & (g < 90)).sum())

    root = await conn.scene.load_model(str(path))
    try:
        assert root.model is not None
        assert (root.model.points, root.model.triangles) == (36, 0)
        assert await conn.scene.get_point_size() == 2.0
        small = magenta(await frame_after(conn))
        assert magenta(base) == 0 and small > 0
        assert await conn.scene.set_point_size(8) == 8.0
        big = magenta(await frame_after(conn))
        assert big > 4 * small, (small, big)
        for bad in (0, 65, -3.5):
            with pytest.raises(RemoteError) as err:
                await conn.scene.set_point_size(bad)
            assert err.value.code == "InvalidArgument" and "1 to 64 pixels" in err.value.message
        assert await conn.scene.get_point_size() == 8.0
    finally:
        await conn.scene.set_point_size(2.0)
        await root.unload()


async def test_lighting_can_be_set(conn: RenderingConnection) -> None:
    original = await conn.scene.get_lighting()
    base = await frame_after(conn)
    try:
        lit = await conn.scene.set_lighting(ambient=0.0, key_intensity=0.0, fill_intensity=0.0,
                                            environment="none")
        assert lit.ambient == 0.0 and lit.key_direction == original.key_direction
        dark = await frame_after(conn)
        lit_pixels = model_mask(base)
        assert dark[lit_pixels].mean() < base[lit_pixels].mean() - 20
        # a point light in front of the engine lights it again, in its colour
        lit = await conn.scene.set_lighting(lights=[Light(
            "point", position=(0.0, 0.1, 0.8), color=(1.0, 0.2, 0.1), intensity=1.5)])
        assert len(lit.lights) == 1 and lit.lights[0].type == "point"
        red = await frame_after(conn)
        gain = red[lit_pixels].astype(int) - dark[lit_pixels].astype(int)
        assert gain[:, 0].mean() > 20 and gain[:, 0].mean() > gain[:, 2].mean() + 10
        with pytest.raises(RemoteError) as err:
            await conn.scene.set_lighting(lights=[{"type": "laser"}])
        assert "light type must be one of" in err.value.message
        with pytest.raises(RemoteError) as err:
            await conn.scene.set_lighting(environment="disco")
        assert "environment must be one of studio, outdoor, none" in err.value.message
        await conn.scene.set_lighting(key_direction=(0, -1, 0), key_intensity=3.0)
        with pytest.raises(RemoteError) as err:
            await conn.scene.set_lighting(key_direction=(0, 0, 0))
        assert err.value.code == "InvalidArgument" and "zero vector" in err.value.message
        with pytest.raises(RemoteError) as err:
            await conn.scene.set_lighting(sun=1.0)
        assert "unknown lighting settings: sun" in err.value.message
    finally:
        await conn.scene.set_lighting(**{k: getattr(original, k) for k in (
            "key_direction", "key_color", "key_intensity", "fill_direction", "fill_intensity",
            "ambient", "lights", "environment", "environment_intensity")})


# -- entities -----------------------------------------------------------------------------------


async def test_transforms_parents_create_and_destroy(conn: RenderingConnection) -> None:
    engine = await conn.scene.load_model("sample_engine")
    try:
        await engine.set_position((10.0, 0.0, 0.0))  # away from the shared sample
        block = (await engine.find("Block"))[0]
        before = await block.bounds()
        assert before is not None and before.center[0] == pytest.approx(10.0, abs=1e-4)
        group = await conn.scene.create_entity("group", parent=engine, position=(0, 1, 0))
        info = await group.info()
        assert (info.parent, info.has_mesh, info.position) == (engine.id, False, (0, 1, 0))
        await block.set_parent(group, keep_world=True)
        assert (await block.info()).parent == group.id
        kept = await block.bounds()
        assert kept is not None
        np.testing.assert_allclose(kept.min, before.min, atol=1e-5)
        await group.set_position((0, 2, 0))
        moved = await block.bounds()
        assert moved is not None and moved.min[1] == pytest.approx(before.min[1] + 1, abs=1e-5)
        rotated = await group.set_rotation((0, 0, 0, 2))  # normalised by the host
        assert rotated.rotation == (0, 0, 0, 1)
        scaled = await block.set_scale((2, 2, 2))
        assert scaled.scale == (2, 2, 2)
        assert [c.id for c in await group.children()] == [block.id]
        with pytest.raises(RemoteError) as err:
            await group.set_parent(block)  # under its own child
        assert err.value.code == "InvalidArgument" and "descendant" in err.value.message
        with pytest.raises(RemoteError) as err:
            await group.unload()
        assert "not a model root" in err.value.message
        await group.destroy()  # with its children
        assert await engine.find("Block") == []
        for gone in (group, block):
            with pytest.raises(RemoteError) as err:
                await gone.info()
            assert err.value.code == "NotFound" and err.value.target == f"entity {gone.id}"
    finally:
        await engine.unload()


async def test_bad_entity_requests_name_the_id_and_the_problem(
        conn: RenderingConnection) -> None:
    block = await part(conn, "Block")
    before = await block.info()
    missing = conn.scene.entity(999_999)
    for call in (missing.info(), missing.set_position((0, 0, 0)), missing.set_hidden(True),
                 missing.destroy(), missing.bounds(), block.set_parent(missing)):
        with pytest.raises(RemoteError) as err:
            await call
        assert err.value.code == "NotFound" and "unknown entity id 999999" in err.value.message
    with pytest.raises(ValueError, match="position must be 3 finite numbers"):
        await block.set_position((math.nan, 0, 0))
    with pytest.raises(RemoteError) as err:
        await block.set_rotation((0, 0, 0, 0))
    assert err.value.code == "InvalidArgument" and "zero quaternion" in err.value.message
    assert err.value.target == f"entity {block.id}"
    with pytest.raises(ProtocolError, match=r"tint colour components must be in 0\.\.1"):
        await block.set_tint((2.0, 0, 0))  # refused before it is sent; and by the host:
    with pytest.raises(RemoteError) as err:
        await conn.request("set_state", id=block.id, tint={"color": [2.0, 0, 0], "weight": 1.0})
    assert "tint colour components must be in 0..1" in err.value.message
    # JSON from another client may carry NaN literally: the host refuses it too
    request_id = 10_000_000
    answer = asyncio.get_running_loop().create_future()
    conn._pending_requests[request_id] = answer
    conn.send_raw("control", f'{{"v":1,"id":{request_id},"method":"set_transform",'
                  f'"params":{{"id":{block.id},"position":[NaN,0,0],"scale":[1,1,1]}}}}')
    with pytest.raises(RemoteError) as err:
        await asyncio.wait_for(answer, 5)
    assert err.value.code == "InvalidArgument" and "finite" in err.value.message
    assert await block.info() == before  # nothing changed


async def test_state_survives_a_reconnect(host: RunningHost) -> None:
    first = await connect_to_host(host.whep_url, host.token(), viewport=VIEWPORT)
    marker = await first.scene.create_entity("reconnect_marker", position=(1, 2, 3))
    await marker.set_state(hidden=True, tint=((0.0, 1.0, 0.0), 0.5))
    plane = await first.scene.add_cut_plane((0, 1, 0), (0, 50, 0))
    await first.close()
    await asyncio.sleep(0.2)
    second = await connect_to_host(host.whep_url, host.token(), viewport=VIEWPORT)
    try:
        info = await second.scene.entity(marker.id).info()
        assert (info.name, info.position, info.hidden) == ("reconnect_marker", (1, 2, 3), True)
        assert info.tint is not None and info.tint.color == (0, 1, 0) and info.tint.weight == 0.5
        assert [p.id for p in await second.scene.cut_planes()] == [plane.id]
    finally:
        await second.scene.entity(marker.id).destroy()
        await second.scene.remove_cut_plane(plane)
        await second.close()
        await asyncio.sleep(0.1)


async def test_state_is_gone_after_the_host_stops(tmp_path: Path, model_dir: Path) -> None:
    first = start_scene_host(tmp_path, model_dir)
    try:
        conn = await connect_to_host(first.whep_url, first.token(), viewport=VIEWPORT)
        await conn.scene.create_entity("doomed")
        await conn.scene.load_model("tri")
        assert len(await conn.scene.roots()) == 3
        await conn.close()
    finally:
        first.stop()
    second = start_scene_host(tmp_path, model_dir)
    try:
        conn = await connect_to_host(second.whep_url, second.token(), viewport=VIEWPORT)
        try:
            roots = await conn.scene.roots()
            assert [r.name for r in roots] == ["sample_engine"]
            assert await conn.scene.find("doomed") == []
        finally:
            await conn.close()
    finally:
        second.stop()


async def test_pick_under_a_pixel_of_a_frame(conn: RenderingConnection) -> None:
    """What the viewer's click does: the ray through a pixel of the frame's own pose."""
    msg = conn.send_pose(CAMERA, fov_y=FOV_Y)
    block = await part(conn, "Block")
    x0, y0, x1, y1 = await pixel_box(block)
    hit = await conn.scene.pick(msg, (x0 + x1) / 2, (y0 + y1) / 2)
    assert hit is not None and hit.entity_id == block.id
    valve = await conn.scene.pick(msg, *to_pixel((0.0, 0.25, 0.06)))
    assert valve is not None and valve.entity_name == "ValveCover"
    assert await conn.scene.pick(msg, 2, 2) is None  # background
