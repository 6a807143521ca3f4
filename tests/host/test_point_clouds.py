"""Point clouds (issue 20): glTF POINTS primitives load with their colours and count against the
budgets as triangles do; the renderer draws them as squares of the scene's point size, unlit,
with a selection outline; the converter turns PLY (vertices only), LAS, LAZ, E57 and XYZ files into
such a glTF, and refuses broken or oversized ones leaving nothing behind."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from farview.host.convert import Budgets, ConversionError, convert_file
from farview.host.egl import EglContext
from farview.host.errors import ModelError
from farview.host.gltf import load_model, load_model_bytes, pack_glb
from farview.host.lod import LOD_REDUCTIONS
from farview.host.renderer import BACKGROUND, OUTLINE_COLOR, Renderer
from farview.host.scene import Scene
from farview.host.transforms import matrix3_to_quat
from farview.input.pose import Fov, Pose, View
from tests.host.conftest import SAMPLE

W, H = 160, 120
BG = np.round(np.array(BACKGROUND[:3]) * 255)


def points_glb(positions: np.ndarray, colors: np.ndarray | None = None,
               indices: np.ndarray | None = None, base_color: tuple[float, ...] | None = None
               ) -> bytes:
    """A glTF with one POINTS primitive (COLOR_0 as normalized unsigned bytes, RGB)."""
    blob = bytearray(positions.astype(np.float32).tobytes())
    views = [{"buffer": 0, "byteOffset": 0, "byteLength": len(blob)}]
    accessors = [{"bufferView": 0, "componentType": 5126, "count": len(positions),
                  "type": "VEC3", "min": positions.min(axis=0).tolist(),
                  "max": positions.max(axis=0).tolist()}]
    attrs = {"POSITION": 0}
    prim: dict[str, object] = {"attributes": attrs, "mode": 0}
    for arr, ctype, atype, name in ((colors, 5121, "VEC3", "COLOR_0"),
                                    (indices, 5125, "SCALAR", "indices")):
        if arr is None:
            continue
        blob.extend(b"\0" * (-len(blob) % 4))
        views.append({"buffer": 0, "byteOffset": len(blob), "byteLength": arr.nbytes})
        blob.extend(arr.tobytes())
        accessors.append({"bufferView": len(views) - 1, "componentType": ctype,
                          "count": len(arr), "type": atype, "normalized": ctype == 5121})
        if name == "indices":
            prim["indices"] = len(accessors) - 1
        else:
            attrs[name] = len(accessors) - 1
    doc: dict[str, object] = {
        "asset": {"version": "2.0"}, "scene": 0, "scenes": [{"nodes": [0]}],
        "nodes": [{"name": "cloud", "mesh": 0}],
        "meshes": [{"name": "cloud", "primitives": [prim]}],
        "accessors": accessors, "bufferViews": views,
        "buffers": [{"byteLength": len(blob) + (-len(blob) % 4)}]}
    if base_color is not None:
        doc["materials"] = [{"pbrMetallicRoughness": {"baseColorFactor": list(base_color)}}]
        prim["material"] = 0
    return pack_glb(doc, bytes(blob))


def grid(n: int, spacing: float) -> np.ndarray:
    """n × n points in the z = 0 plane, centred on the origin."""
    c = (np.arange(n) - (n - 1) / 2) * spacing
    x, y = np.meshgrid(c, c)
    return np.stack([x.ravel(), y.ravel(), np.zeros(n * n)], axis=1).astype(np.float32)


def test_points_load_with_colours_and_count_as_primitives() -> None:
    pts = grid(10, 0.1)
    rgb = np.zeros((100, 3), np.uint8)
    rgb[:, 0] = 255
    rgb[50:, 2] = 128
    model = load_model_bytes(points_glb(pts, rgb))
    prim = model.meshes[0].primitives[0]
    assert prim.points and len(prim.indices) == 0
    assert (model.point_count, model.triangle_count, model.primitive_count) == (100, 0, 100)
    np.testing.assert_allclose(prim.positions, pts)
    assert prim.colors is not None and prim.colors.shape == (100, 4)
    np.testing.assert_allclose(prim.colors[0], (1, 0, 0, 1))
    np.testing.assert_allclose(prim.colors[99], (1, 0, 128 / 255, 1), atol=1e-6)
    # indices pick the points drawn
    picked = load_model_bytes(points_glb(pts, rgb, np.array([3, 97, 3], np.uint32)))
    np.testing.assert_allclose(picked.meshes[0].primitives[0].positions, pts[[3, 97, 3]])
    # a point counts against the triangle budget as a triangle does
    with pytest.raises(ModelError, match="100 triangles, over the triangle budget of 99"):
        load_model_bytes(points_glb(pts), max_triangles=99)
    with pytest.raises(ModelError, match="index 100 is past the 100 vertices"):
        load_model_bytes(points_glb(pts, indices=np.array([100], np.uint32)))


def _camera(distance: float) -> View:
    eye = np.array([0.0, 0.0, distance])
    return View(Pose(tuple(eye), matrix3_to_quat(np.eye(3))), Fov.symmetric(45.0, W / H))


def _lit(img: np.ndarray) -> np.ndarray:
    return np.abs(img[:, :, :3].astype(int) - BG).sum(axis=2) > 30


def test_points_are_drawn_unlit_in_their_colour_and_the_scene_point_size(
        egl_context: EglContext) -> None:
    pts = grid(5, 0.2)
    model = load_model_bytes(points_glb(pts, base_color=(0.0, 1.0, 0.0, 1.0)))
    scene = Scene()
    root = scene.add_model(model, "cloud")
    r = Renderer(W, H)
    try:
        areas = {}
        for size in (1.0, 3.0, 7.0):
            scene.point_size = size
            r.render(scene, [_camera(2.0)])
            img = r.read_rgba()
            lit = _lit(img)
            areas[size] = int(lit.sum())
            # unlit: exactly the base colour (green), whatever the lights
            colours = img[lit][:, :3].astype(int)
            assert np.abs(colours - (0, 255, 0)).max() <= 12, colours[:4]
        # 25 squares of size² pixels each (some may touch the edge of a pixel: ±1 row)
        assert 25 <= areas[1.0] <= 25 * 4
        assert 25 * 3 * 3 * 0.6 <= areas[3.0] <= 25 * 4 * 4
        assert 25 * 7 * 7 * 0.8 <= areas[7.0] <= 25 * 8 * 8
        # picked out by the selection outline: outline-coloured pixels around the points
        child = root.children[0]
        child.selected = True
        scene.version += 1
        r.render(scene, [_camera(2.0)])
        img = r.read_rgba()[:, :, :3].astype(int)
        outline = np.abs(img - np.round(np.array(OUTLINE_COLOR[:3]) * 255)).sum(axis=2) < 40
        assert outline.sum() > 25 * 4, "a selected cloud gets a halo round each point"
        child.selected = False
        # a scene without the cloud draws nothing
        root.hidden = True
        r.render(scene, [_camera(2.0)])
        assert not _lit(r.read_rgba()).any()
    finally:
        r.close()


def _spaced_cloud(w: int, h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, Scene, View,
                                          Callable[[np.ndarray], np.ndarray]]:
    """17,250 green points 4 pixels apart facing the view (``w`` × ``h``, 45°), point size 1:
    the points, the pixel each lands on (x right, y down), the scene, the view, and which
    points a picture shows (each lights its own 3 × 3 window of pixels and no other)."""
    fov_y, distance = 45.0, 2.0
    cols, rows = 150, 115
    px_per_m = h / (2 * distance * np.tan(np.radians(fov_y / 2)))
    gx, gy = np.meshgrid((np.arange(cols) - (cols - 1) / 2) * 4.0 / px_per_m,
                         (np.arange(rows) - (rows - 1) / 2) * 4.0 / px_per_m)
    pts = np.stack([gx.ravel(), gy.ravel(), np.zeros(gx.size)], axis=1).astype(np.float32)
    ix = (w / 2 + pts[:, 0] * px_per_m).astype(int)
    iy = (h / 2 - pts[:, 1] * px_per_m).astype(int)
    scene = Scene()
    scene.add_model(load_model_bytes(points_glb(pts, base_color=(0.0, 1.0, 0.0, 1.0))), "c")
    scene.point_size = 1.0
    view = View(Pose((0.0, 0.0, distance), matrix3_to_quat(np.eye(3))),
                Fov.symmetric(fov_y, w / h))

    def drawn(img: np.ndarray) -> np.ndarray:
        lit = _lit(img)
        return np.array([lit[y - 1:y + 2, x - 1:x + 2].any() for x, y in zip(ix, iy, strict=True)])
    return pts, ix, iy, scene, view, drawn


def test_a_big_cloud_is_thinned_while_moving_and_whole_at_rest(egl_context: EglContext) -> None:
    """A cloud of at least POINT_LOD_MIN_POINTS draws only its level's points in moving frames
    over budget (each level within the one before, spread over the whole cloud), each point
    wider; at rest, or with full detail pinned, every point, the same picture as without
    levels of detail. The points stand 4 pixels apart, so each drawn point lights its own
    3 × 3 window of pixels and no other."""
    from farview.host.renderer import POINT_LOD_MIN_POINTS, _point_bands

    w, h = 640, 480
    pts, ix, iy, scene, view, drawn = _spaced_cloud(w, h)
    assert len(pts) >= POINT_LOD_MIN_POINTS
    r, plain = Renderer(w, h), Renderer(w, h)
    plain.lod = False
    try:
        plain.render(scene, [view], moving=True)
        whole = plain.read_rgba()
        assert drawn(whole).all()
        order, counts = _point_bands(len(pts))
        assert counts[0] < len(pts) and all(np.diff(counts) < 0)
        r.render(scene, [view])
        assert (r.read_rgba() == whole).all(), "at rest: every point, as without levels"
        assert not r.last_reduced
        for level in (1, 2, 4):
            r.lod_level = level
            r.render(scene, [view], moving=True)
            assert r.last_reduced
            img = r.read_rgba()
            want = np.zeros(len(pts), dtype=bool)
            want[order[:counts[level - 1]]] = True
            assert (drawn(img) == want).all(), level
            # √2 times as wide a level: 2 × 2 pixels at level 2, 4 × 4 at level 4 (1.41
            # pixels at level 1 covers 1 to 4 pixels, as the point falls)
            per_point = _lit(img).sum() / want.sum()
            if level == 1:
                assert 1.0 < per_point <= 4.0
            else:
                assert per_point == pytest.approx(2 ** level, rel=0.05), level
        assert counts[3] * 64 < len(pts) < counts[3] * 512, "level 4 keeps about 1/256"
        # selected: the halo goes round the points drawn, not the others
        cloud = next(iter(scene.draw_list())).entity
        cloud.selected = True
        r.lod_level = 2
        r.render(scene, [view], moving=True)
        rgb = r.read_rgba()[:, :, :3].astype(int)
        halo = np.abs(rgb - np.round(np.array(OUTLINE_COLOR[:3]) * 255)).sum(axis=2) < 40
        near = np.array([halo[y - 2:y + 3, x - 2:x + 3].any() for x, y in zip(ix, iy, strict=True)])
        want = np.zeros(len(pts), dtype=bool)
        want[order[:counts[1]]] = True
        assert near[want].all() and near[~want].mean() < 0.5
        cloud.selected = None
        scene.detail = "full"  # pinned: every point while moving too
        r.lod_level = 3
        r.render(scene, [view], moving=True)
        assert not r.last_reduced and (r.read_rgba() == whole).all()
    finally:
        r.close()
        plain.close()


def test_the_biggest_clouds_get_deeper_levels() -> None:
    from farview.host.renderer import POINT_LOD_DEEP_MIN, POINT_LOD_LEVELS, _point_reductions

    assert POINT_LOD_LEVELS == 6 and len(LOD_REDUCTIONS) == 4
    assert _point_reductions(16_384) == LOD_REDUCTIONS
    assert _point_reductions(1_000_000) == LOD_REDUCTIONS  # 1/1024 of it: 977 points
    assert len(_point_reductions(4 ** 5 * POINT_LOD_DEEP_MIN)) == 5
    assert len(_point_reductions(4 ** 5 * POINT_LOD_DEEP_MIN - 1)) == 4
    assert len(_point_reductions(5_000_000)) == 5 and len(_point_reductions(20_000_000)) == 6
    assert len(_point_reductions(10 ** 9)) == POINT_LOD_LEVELS


def test_moving_frames_go_to_a_big_clouds_deeper_levels(egl_context: EglContext,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Frames over budget go past the triangles' four levels only while a cloud with deeper
    ones is drawn, and then draw that level's points (here a level keeps 8 points at least,
    so the 17,250-point cloud gets five levels)."""
    from farview.host import renderer as renderer_module

    monkeypatch.setattr(renderer_module, "POINT_LOD_DEEP_MIN", 8)
    w, h = 640, 480
    pts, _, _, scene, view, drawn = _spaced_cloud(w, h)
    order, counts = renderer_module._point_bands(len(pts))
    assert len(counts) == 5 and 0 < counts[4] < counts[3]
    r = Renderer(w, h)
    try:
        r.render(scene, [view])
        r.lod_budget_ms = 0.0
        for _ in range(8):
            r.render(scene, [view], moving=True)
        assert r.lod_level == 5
        r.render(scene, [view], moving=True)
        img = r.read_rgba()
        # that level's points, √2^5 = 5.7 pixels wide (so wider than the 4 pixels between
        # points: the lit pixels, not the windows, count them)
        assert drawn(img)[order[:counts[4]]].all()
        assert 25 <= _lit(img).sum() / counts[4] <= 36
        # without the cloud, the triangles' four levels are the most
        scene.remove(next(iter(scene.draw_list())).entity)
        scene.add_model(load_model(SAMPLE), "engine")
        for _ in range(3):
            r.render(scene, [view], moving=True)
        assert r.lod_level == 4
    finally:
        r.close()


def test_point_size_is_bounded() -> None:
    scene = Scene()
    for bad in (0.5, 65.0, float("nan")):
        with pytest.raises(ValueError, match=r"point size must be 1\.0 to 64\.0 pixels"):
            scene.point_size = bad
    assert scene.point_size == 2.0


# -- conversion ---------------------------------------------------------------------------------

def _ply(path: Path, xyz: np.ndarray, rgb: np.ndarray) -> None:
    rec = np.zeros(len(xyz), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"),
                                    ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    rec["x"], rec["y"], rec["z"] = xyz.T
    rec["red"], rec["green"], rec["blue"] = rgb.T
    header = (f"ply\nformat binary_little_endian 1.0\nelement vertex {len(xyz)}\n"
              "property float x\nproperty float y\nproperty float z\nproperty uchar red\n"
              "property uchar green\nproperty uchar blue\nend_header\n")
    path.write_bytes(header.encode() + rec.tobytes())


def _las(path: Path, xyz: np.ndarray, rgb: np.ndarray) -> None:
    import laspy

    header = laspy.LasHeader(point_format=3, version="1.2")
    header.scales = [0.001, 0.001, 0.001]
    header.offsets = np.floor(xyz.min(axis=0))
    las = laspy.LasData(header)
    las.x, las.y, las.z = xyz.T
    las.red, las.green, las.blue = (rgb.astype(np.uint16) * 257).T  # 16-bit colours
    las.write(str(path))


def _e57(path: Path, xyz: np.ndarray, rgb: np.ndarray) -> None:
    import pye57

    e57 = pye57.E57(str(path), mode="w")
    e57.write_scan_raw({"cartesianX": xyz[:, 0], "cartesianY": xyz[:, 1],
                        "cartesianZ": xyz[:, 2], "colorRed": rgb[:, 0],
                        "colorGreen": rgb[:, 1], "colorBlue": rgb[:, 2]})
    e57.close()


def _xyz(path: Path, xyz: np.ndarray, rgb: np.ndarray) -> None:
    """ARR's XYZ text: a point a line, colours 0-255; every third line's numbers in
    hexadecimal (``float.hex``), as ARR allowed, and a comment line."""
    lines = ["# x y z red green blue"]
    for k, (p, c) in enumerate(zip(xyz.tolist(), rgb.tolist(), strict=True)):
        nums = [*p, *(float(v) for v in c)]
        lines.append(" ".join(float.hex(v) if k % 3 == 0 else repr(v) for v in nums))
    path.write_text("\n".join(lines) + "\n")


def _glb_json(path: Path) -> dict[str, object]:
    data = path.read_bytes()
    length = struct.unpack_from("<I", data, 12)[0]
    return json.loads(data[20:20 + length])


@pytest.mark.parametrize("ext", [".ply", ".las", ".laz", ".e57", ".xyz"])
def test_point_cloud_files_convert_to_gltf_points(tmp_path: Path, ext: str) -> None:
    rng = np.random.default_rng(7)
    n = 3000
    # LAS: a georeferenced scan, big eastings and northings (z-up, as surveyors' files are);
    # pye57 writes coordinates as float32, so the E57 scan sits nearer its origin
    origin = {".ply": (0.0, 0.0, 0.0), ".e57": (1_200.0, 3_400.0, 50.0)}.get(
        ext, (512_000.0, 4_100_000.0, 210.0))
    xyz = origin + rng.uniform((0, 0, 0), (40, 20, 6), (n, 3)).round(3)
    rgb = rng.integers(0, 256, (n, 3), dtype=np.uint8)
    src = tmp_path / f"scan{ext}"
    {".ply": _ply, ".las": _las, ".laz": _las, ".e57": _e57, ".xyz": _xyz}[ext](src, xyz, rgb)
    dst = tmp_path / "scan.glb"
    result = convert_file(src, dst)
    assert (result.points, result.triangles) == (n, 0)
    model = load_model(dst)
    prim = model.meshes[0].primitives[0]
    assert prim.points and model.point_count == n
    # PLY (through assimp, as meshes are) keeps its axes and coordinates; LAS, E57 and XYZ
    # turn z-up into glTF's y-up and are centred on the origin
    z_up = ext != ".ply"
    expect = np.stack([xyz[:, 0], xyz[:, 2], -xyz[:, 1]], axis=1) if z_up else xyz
    centre = (expect.min(axis=0) + expect.max(axis=0)) / 2 if z_up else np.zeros(3)
    # the converter writes the points along a Morton curve: match them up by position (the
    # file's coordinates are whole millimetres)
    got = np.round((prim.positions.astype(np.float64) + centre) * 1000).astype(np.int64)
    want = np.round(expect * 1000).astype(np.int64)
    gi, wi = np.lexsort(got.T[::-1]), np.lexsort(want.T[::-1])
    np.testing.assert_array_equal(got[gi], want[wi])
    np.testing.assert_allclose(prim.positions[gi], (expect - centre)[wi], atol=2e-3)
    if z_up:  # the georeference is kept beside the points, not in float32 positions
        asset = _glb_json(dst)["asset"]
        assert isinstance(asset, dict)
        np.testing.assert_allclose(asset["extras"]["origin"], centre, atol=1e-6)
    # the colours survive: stored linear, so the unlit shader's gamma gives the file's back
    assert prim.colors is not None
    shown = np.round(255 * prim.colors[gi, :3] ** (1 / 2.2))
    assert np.abs(shown - rgb[wi]).max() <= 1


def test_morton_order_is_a_permutation_even_for_boxes_wider_than_float32(
        recwarn: pytest.WarningsRecorder) -> None:
    """Points along the Morton curve (cell by cell); a corrupt scan's
    coordinates ±3e38 apart (the box's side overflows float32) give a permutation, and no
    overflow warning on the user's console."""
    from farview.host.lod import morton_order

    pts = np.array([[0.0, 0.0, 0.0], [10.0, 10.0, 10.0], [0.001, 0.0, 0.0], [9.99, 10.0, 10.0]],
                   dtype=np.float32)
    assert morton_order(pts).tolist() == [0, 2, 3, 1]
    huge = np.array([[-3e38, 0, 0], [3e38, 1, 1], [0, 0, 0], [1, 2, 3]], dtype=np.float32)
    assert sorted(morton_order(huge).tolist()) == [0, 1, 2, 3]
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_converted_clouds_are_in_an_order_ray_casts_take_as_it_is(tmp_path: Path) -> None:
    """A scan's points in any order come out of the converter along a Morton curve, so that
    the ray caster chunks them as they are (no sort at load, no order array); the same points
    loaded as they came need the sort."""
    from farview.host.raycast import RayCaster

    rng = np.random.default_rng(5)
    pts = grid(200, 0.05).astype(np.float64)
    pts[:, 2] = rng.uniform(0, 0.5, len(pts)).round(3)
    pts = pts[rng.permutation(len(pts))]
    src = tmp_path / "scan.xyz"
    src.write_text("\n".join(f"{x:.3f} {y:.3f} {z:.3f}" for x, y, z in pts.tolist()) + "\n")
    dst = tmp_path / "scan.glb"
    convert_file(src, dst)
    converted = load_model(dst).meshes[0]
    chunks = RayCaster()._chunks(converted)
    assert chunks is not None and chunks.points[0].order is None
    as_it_came = load_model_bytes(points_glb(pts.astype(np.float32))).meshes[0]
    chunks = RayCaster()._chunks(as_it_came)
    assert chunks is not None and chunks.points[0].order is not None


def test_broken_and_oversized_point_clouds_are_refused_leaving_nothing(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    xyz = rng.uniform(0, 1, (500, 3))
    rgb = rng.integers(0, 256, (500, 3), dtype=np.uint8)
    las = tmp_path / "scan.las"
    _las(las, xyz, rgb)
    with pytest.raises(ConversionError) as err:
        convert_file(las, tmp_path / "out.glb", Budgets(max_triangles=499))
    assert err.value.code == "LimitExceeded" and "500 points" in err.value.message
    truncated = tmp_path / "cut.las"
    truncated.write_bytes(las.read_bytes()[:400])
    not_las = tmp_path / "text.e57"
    not_las.write_bytes(b"this is not an E57 file\n" * 100)
    for bad in (truncated, not_las):
        with pytest.raises(ConversionError) as err:
            convert_file(bad, tmp_path / "out.glb")
        assert err.value.code == "InvalidInput" and bad.name in err.value.message
    nan = xyz.copy()
    nan[7, 1] = np.nan
    ply = tmp_path / "nan.ply"
    _ply(ply, nan, rgb)
    with pytest.raises(ConversionError, match="NaN or infinite"):
        convert_file(ply, tmp_path / "out.glb")
    far = xyz.copy()  # damaged (random bytes in a binary PLY gave 2e36)
    far[7, 1] = 2e36
    _ply(ply, far, rgb)
    with pytest.raises(ConversionError, match=r"a coordinate of 2e\+36, past the ±1e\+18"):
        convert_file(ply, tmp_path / "out.glb")
    xyz_file = tmp_path / "far.xyz"
    xyz_file.write_text("0 0 0\n1 1 1\n-3e20 0 0\n")
    with pytest.raises(ConversionError, match=r"far\.xyz has a coordinate of 3e\+20, past"):
        convert_file(xyz_file, tmp_path / "out.glb")
    ragged = tmp_path / "ragged.xyz"
    ragged.write_text("1 2 3\n4 5 6 7 8 9\n1 2\n")
    words = tmp_path / "words.xyz"
    words.write_text("x y z\n")
    for bad, message in ((ragged, "could not be read as XYZ"), (words, "as numbers")):
        with pytest.raises(ConversionError, match=message) as err:
            convert_file(bad, tmp_path / "out.glb")
        assert err.value.code == "InvalidInput"
    many = tmp_path / "many.xyz"
    many.write_text("0 0 0\n" * 600)
    with pytest.raises(ConversionError, match="600 points") as err:
        convert_file(many, tmp_path / "out.glb", Budgets(max_triangles=599))
    assert err.value.code == "LimitExceeded"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cut.las", "far.xyz", "many.xyz", "nan.ply", "ragged.xyz", "scan.las", "text.e57",
        "words.xyz"]


# -- ray casts hit points ------------------------------------------------------------------------


def _cloud_scene(pts: np.ndarray) -> tuple[Scene, object]:
    scene = Scene()
    root = scene.add_model(load_model_bytes(points_glb(pts)), "cloud")
    root.position = (0.3, -0.2, 0.5)
    q = np.array([0.2, -0.5, 0.3, 0.8])
    root.rotation = tuple(q / np.linalg.norm(q))
    root.scale = (1.5, 0.5, 2.0)  # not uniform: a cone's width is measured in world space
    return scene, root


def _every_point(world: np.ndarray, pts: np.ndarray, o: np.ndarray, d: np.ndarray,
                 tolerance: float, max_hits: int) -> list[tuple[float, ...]]:
    """The points a ray hits, nearest along it first, each tested on its own in world space."""
    pos = pts.astype(np.float64) @ world[:3, :3].T + world[:3, 3]
    v = pos - o
    t = v @ d
    off = np.sqrt(np.maximum(np.einsum("ij,ij->i", v, v) - t * t, 0.0))
    hit = np.flatnonzero((t > 1e-9) & (off <= tolerance * t))
    hit = hit[np.argsort(t[hit], kind="stable")][:max_hits]
    return [tuple(p) for p in pos[hit]]


@pytest.mark.parametrize("layout", ["tiles", "rows", "blob"])
def test_rays_hit_the_points_within_their_cone_as_testing_every_point_does(layout: str) -> None:
    """The chunk pass (boxes grown by the cone) must find what testing every point finds, for
    a cloud in its own order and one that has to be sorted, under a turned, unevenly scaled
    part, for rays from inside and outside the cloud."""
    from farview.host.raycast import RayCaster

    rng = np.random.default_rng(3)
    if layout == "blob":
        pts = rng.normal(size=(20_000, 3)).astype(np.float32)
    else:
        pts = grid(128, 0.01)  # in rows: a chunk is a long strip, so they get sorted
        pts[:, 2] = np.sin(pts[:, 0] * 20) * 0.05
        if layout == "tiles":  # in tiles of 32 × 32 points, as a cloud sorted once is
            row, col = np.divmod(np.arange(len(pts)), 128)
            pts = pts[np.lexsort((col % 32, row % 32, col // 32, row // 32))]
    scene, _ = _cloud_scene(pts)
    items = scene.draw_list()
    world = np.asarray(items[0].world, dtype=np.float64)
    caster = RayCaster()
    own_order = caster._chunks(items[0].mesh).points[0].order is None  # type: ignore[union-attr]
    assert own_order == (layout == "tiles"), "both chunk orders are tested"
    centre = pts.astype(np.float64).mean(axis=0) @ world[:3, :3].T + world[:3, 3]
    checked = 0
    for i in range(60):
        o = centre + rng.normal(size=3) * (0.5 if i % 4 == 0 else 4.0)  # some from inside
        target = pts[rng.integers(len(pts))].astype(np.float64) @ world[:3, :3].T + world[:3, 3]
        d = target + rng.normal(size=3) * 0.01 - o
        d /= np.linalg.norm(d)
        tolerance = float(10 ** rng.uniform(-4, -2))
        hits = caster.cast(items, o, d, max_hits=50, point_tolerance=tolerance)
        want = _every_point(world, pts, o, d, tolerance, 50)
        assert [h.position for h in hits] == pytest.approx(want, abs=1e-5), i
        for h in hits:
            assert (h.hit_type, h.front_face, h.entity_name) == ("Point", True, "cloud")
            assert h.normal == pytest.approx(tuple(-d))
            assert h.distance == pytest.approx(float(np.dot(np.array(h.position) - o, d)))
        checked += len(hits)
    assert checked > 60, "most rays were aimed at a point"


def test_point_hits_honour_tolerance_state_cut_planes_and_triangles_in_front() -> None:
    from farview.host.raycast import RayCaster
    from farview.input.scene import CutPlane
    from tests.scene.conftest import make_glb

    pts = grid(5, 0.1)  # z = 0; a point at the origin
    scene = Scene()
    cloud = scene.add_model(load_model_bytes(points_glb(pts)), "cloud")
    caster = RayCaster()
    o, d = (0.0, 0.0, 2.0), (0.0, 0.0, -1.0)
    assert caster.cast(scene.draw_list(), o, d) == [], "no tolerance: points are not hit"
    hits = caster.cast(scene.draw_list(), o, d, point_tolerance=1e-3)
    assert [(h.hit_type, h.position, h.distance) for h in hits] == [
        ("Point", (0.0, 0.0, 0.0), 2.0)]
    # 1 cm beside the point, 2 m away: a cone of 4 mrad misses it, one of 6 mrad reaches it
    beside = (0.01, 0.0, 2.0)
    assert caster.cast(scene.draw_list(), beside, d, point_tolerance=4e-3) == []
    assert len(caster.cast(scene.draw_list(), beside, d, point_tolerance=6e-3)) == 1
    # just outside the cloud's box, beside its corner point
    outside = caster.cast(scene.draw_list(), (0.205, 0.2, 2.0), d, point_tolerance=6e-3)
    assert [h.position for h in outside] == [pytest.approx((0.2, 0.2, 0.0))]
    with pytest.raises(ValueError, match="point tolerance"):
        caster.cast(scene.draw_list(), o, d, point_tolerance=float("nan"))
    cloud.collision_disabled = True
    assert caster.cast(scene.draw_list(), o, d, point_tolerance=1e-3) == []
    cloud.collision_disabled = None
    assert caster.cast(scene.draw_list(), o, d, point_tolerance=1e-3,
                       cut_planes=[CutPlane((0, 0, 1), (0, 0, -0.5))]) == []
    # a quad (its part "part") 1 m in front of the cloud comes first; behind it, the point
    quad = make_glb(np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]]),
                    np.array([0, 1, 2, 0, 2, 3]))
    wall = scene.add_model(load_model_bytes(quad), "wall")
    wall.position = (0.0, 0.0, 1.0)
    hits = caster.cast(scene.draw_list(), o, d, max_hits=5, point_tolerance=1e-3)
    assert [(h.entity_name, h.hit_type) for h in hits] == [
        ("part", "TriangleFrontFace"), ("cloud", "Point")]
    wall.position = (0.0, 0.0, -1.0)
    hits = caster.cast(scene.draw_list(), o, d, max_hits=5, point_tolerance=1e-3)
    assert [(h.entity_name, h.hit_type) for h in hits] == [
        ("cloud", "Point"), ("part", "TriangleFrontFace")]
