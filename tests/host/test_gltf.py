from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from farview.host.gltf import ModelError, load_model, load_model_bytes, node_world_matrices
from farview.host.transforms import transform_points
from tests.host.conftest import (
    FOREIGN,
    QUADRANT_COLOURS,
    SHARED_MODELS,
    make_glb,
    png_bytes,
    quadrant_texture,
    textured_quad_glb,
)


def _glb_json(path: Path) -> tuple[dict, bytes]:
    data = path.read_bytes()
    n = struct.unpack_from("<I", data, 12)[0]
    return json.loads(data[20:20 + n]), data


def _triangle_doc(index_bytes: bytes | None = None) -> tuple[dict, bytes]:
    pos = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=np.float32).tobytes()
    doc = {
        "asset": {"version": "2.0"},
        "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}}]}],
        "accessors": [{"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3"}],
        "bufferViews": [{"buffer": 0, "byteLength": len(pos)}],
        "buffers": [{"byteLength": len(pos)}],
    }
    return doc, pos


@pytest.mark.parametrize("name", FOREIGN)
def test_foreign_models_match_their_json(name: str) -> None:
    path = SHARED_MODELS / f"{name}.glb"
    doc, _ = _glb_json(path)
    model = load_model(path)
    assert len(model.nodes) == len(doc["nodes"])
    for i, (node, spec) in enumerate(zip(model.nodes, doc["nodes"], strict=True)):
        # (a node without a name takes its mesh's name, when the mesh has one)
        mesh_name = doc["meshes"][spec["mesh"]].get("name") if "mesh" in spec else None
        assert node.name == (spec.get("name") or mesh_name or f"node_{i}")
        assert node.children == tuple(spec.get("children", []))
    # Triangles from the accessors, per node instance.
    expected = 0
    for spec in doc["nodes"]:
        if "mesh" in spec:
            for prim in doc["meshes"][spec["mesh"]]["primitives"]:
                acc = doc["accessors"][prim["indices"]]
                expected += acc["count"] // 3
    assert model.triangle_count == expected
    # Decoded positions span exactly the accessor's declared min/max.
    for mesh, mspec in zip(model.meshes, doc["meshes"], strict=True):
        for prim, pspec in zip(mesh.primitives, mspec["primitives"], strict=True):
            acc = doc["accessors"][pspec["attributes"]["POSITION"]]
            np.testing.assert_allclose(prim.positions.min(axis=0), acc["min"], rtol=1e-5,
                                       atol=1e-6)
            np.testing.assert_allclose(prim.positions.max(axis=0), acc["max"], rtol=1e-5,
                                       atol=1e-6)
            assert np.allclose(np.linalg.norm(prim.normals, axis=1), 1.0, atol=1e-3)


@pytest.mark.parametrize("name", FOREIGN)
def test_world_bounds_match_accessor_boxes(name: str) -> None:
    from farview.host.scene import Scene

    path = SHARED_MODELS / f"{name}.glb"
    doc, _ = _glb_json(path)
    model = load_model(path)
    worlds = node_world_matrices(model)
    lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
    for i, spec in enumerate(doc["nodes"]):
        if "mesh" not in spec or i not in worlds:
            continue
        for prim in doc["meshes"][spec["mesh"]]["primitives"]:
            acc = doc["accessors"][prim["attributes"]["POSITION"]]
            mn, mx = np.array(acc["min"]), np.array(acc["max"])
            corners = np.array([[x, y, z] for x in (mn[0], mx[0]) for y in (mn[1], mx[1])
                                for z in (mn[2], mx[2])])
            pts = transform_points(worlds[i], corners)
            lo, hi = np.minimum(lo, pts.min(0)), np.maximum(hi, pts.max(0))
    scene = Scene()
    b = scene.world_bounds(scene.add_model(model, name))
    assert b is not None
    tol = 1e-4 * max(1.0, float(np.max(np.abs(hi))))
    # Vertex bounds lie inside the transformed accessor boxes (equal for axis-aligned ones).
    assert np.all(np.array(b.min) >= lo - tol) and np.all(np.array(b.max) <= hi + tol)
    if name == "Box":
        np.testing.assert_allclose(b.min, lo, atol=tol)
        np.testing.assert_allclose(b.max, hi, atol=tol)


def test_not_gltf() -> None:
    with pytest.raises(ModelError, match="not a glTF file: bad magic"):
        load_model_bytes(b"PK\x03\x04 this is a zip")


def test_truncated_glb() -> None:
    data = (SHARED_MODELS / "Box.glb").read_bytes()[:800]
    with pytest.raises(ModelError, match=r"truncated \.glb: chunk length \d+ exceeds file size"
                                          r" 800"):
        load_model_bytes(data)
    with pytest.raises(ModelError, match=r"truncated \.glb: 5 bytes"):
        load_model_bytes(b"glTF\x02")


def test_accessor_past_buffer_view() -> None:
    doc, pos = _triangle_doc()
    doc["accessors"][0]["byteOffset"] = 12
    with pytest.raises(ModelError, match="accessor 0 reads past buffer view 0"):
        load_model_bytes(make_glb(doc, pos))


def test_bad_references_are_named() -> None:
    doc, pos = _triangle_doc()
    doc["meshes"][0]["primitives"][0]["material"] = 7
    with pytest.raises(ModelError, match="material 7"):
        load_model_bytes(make_glb(doc, pos))
    doc, pos = _triangle_doc()
    doc["nodes"][0]["mesh"] = 3
    with pytest.raises(ModelError, match="node 0 refers to mesh 3"):
        load_model_bytes(make_glb(doc, pos))


def test_a_primitive_without_positions_is_not_drawn_and_the_rest_loads() -> None:
    """glTF: "When positions are not specified, client implementations SHOULD skip the
    primitive's rendering" (the glTF-Validator's test file primitive_no_position.gltf, which it
    calls valid, was refused whole)."""
    doc, pos = _triangle_doc()
    doc["meshes"][0]["primitives"].insert(0, {"attributes": {"NORMAL": 0}})
    model = load_model_bytes(make_glb(doc, pos))
    assert model.triangle_count == 1
    assert len(model.meshes[0].primitives) == 1
    doc["meshes"][0]["primitives"][0] = {"attributes": "POSITION"}
    with pytest.raises(ModelError, match="mesh 0 primitive 0: attributes must be an object"):
        load_model_bytes(make_glb(doc, pos))


def test_a_light_of_an_unknown_type_is_left_out_and_the_rest_loads(
        caplog: pytest.LogCaptureFixture) -> None:
    doc, pos = _triangle_doc()
    doc["extensionsUsed"] = ["KHR_lights_punctual"]
    doc["extensions"] = {"KHR_lights_punctual": {"lights": [
        {"type": "spherical"}, {"type": "point", "intensity": 2.0}]}}
    doc["nodes"] += [{"extensions": {"KHR_lights_punctual": {"light": 0}}},
                     {"extensions": {"KHR_lights_punctual": {"light": 1}}}]
    model = load_model_bytes(make_glb(doc, pos))
    assert [n.light.type if n.light else None for n in model.nodes] == [None, None, "point"]
    assert "light 0 has type 'spherical', which farview does not know" in caplog.text
    doc["extensions"]["KHR_lights_punctual"]["lights"][0] = {"type": 7}
    with pytest.raises(ModelError, match="KHR_lights_punctual light 0: light type must be"):
        load_model_bytes(make_glb(doc, pos))


def test_what_is_not_drawn_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """The README says the host logs the animations, skins and morph targets it skips."""
    caplog.set_level("INFO", logger="farview.host.gltf")
    load_model(SHARED_MODELS / "BoxAnimated.glb")
    assert "model BoxAnimated: 1 animation not drawn (farview shows its rest pose)" in caplog.text
    caplog.clear()
    doc, pos = _triangle_doc()
    doc["skins"] = [{"joints": [0]}, {"joints": [0]}]
    doc["meshes"][0]["primitives"][0]["targets"] = [{"POSITION": 0}]
    load_model_bytes(make_glb(doc, pos), name="rigged")
    assert "model rigged: 2 skins, the morph targets of 1 primitive not drawn" in caplog.text
    caplog.clear()
    load_model_bytes(make_glb(*_triangle_doc()))
    assert "not drawn" not in caplog.text


def test_integers_written_as_floats_are_read_as_integers() -> None:
    """JSON Schema's integers include 1.0 and 1e0 (the glTF-Validator's
    integer_written_as_float.gltf is valid); farview refused them ("refers to accessor 0.0,
    which does not exist"). Only a file that failed is read again with them made ints."""
    doc, pos = _triangle_doc()
    doc["scenes"], doc["scene"] = [{"nodes": [0.0]}], 0.0
    doc["nodes"][0]["mesh"] = 0.0
    doc["meshes"][0]["primitives"][0]["attributes"]["POSITION"] = 0.0
    doc["accessors"][0].update(bufferView=0.0, componentType=5126.0, count=3.0)
    doc["bufferViews"][0].update(buffer=0.0, byteLength=float(len(pos)))
    doc["buffers"][0]["byteLength"] = float(len(pos))
    model = load_model_bytes(make_glb(doc, pos))
    assert model.triangle_count == 1 and model.nodes[0].mesh is not None
    doc["accessors"][0]["count"] = 2.5  # not a whole number: the first error stands
    with pytest.raises(ModelError, match="accessor 0"):
        load_model_bytes(make_glb(doc, pos))


def test_triangle_and_size_budgets() -> None:
    path = SHARED_MODELS / "Duck.glb"
    with pytest.raises(ModelError, match="4212 triangles, over the triangle budget of 1000"):
        load_model(path, max_triangles=1000)
    with pytest.raises(ModelError, match="over the file size budget of 1000 bytes"):
        load_model(path, max_file_bytes=1000)


def test_flat_normals_computed_and_non_indexed() -> None:
    doc, pos = _triangle_doc()
    model = load_model_bytes(make_glb(doc, pos))
    prim = model.meshes[0].primitives[0]
    assert prim.triangle_count == 1
    np.testing.assert_allclose(prim.normals, [[0, 0, 1]] * 3, atol=1e-6)


def test_strided_u8_indices_and_sparse() -> None:
    # Interleaved position + padding (stride 16), u8 indices, and a sparse override of vertex 2.
    verts = np.zeros((3, 4), dtype=np.float32)
    verts[:, :3] = [[0, 0, 0], [1, 0, 0], [0, 1, 0]]
    idx = np.array([0, 1, 2], dtype=np.uint8).tobytes() + b"\0"
    sp_idx = np.array([2], dtype=np.uint16).tobytes() + b"\0\0"
    sp_val = np.array([[0, 2, 0]], dtype=np.float32).tobytes()
    blob = verts.tobytes() + idx + sp_idx + sp_val
    doc = {
        "asset": {"version": "2.0"},
        "nodes": [{"mesh": 0, "name": "tri"}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}, "indices": 1}]}],
        "accessors": [
            {"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3",
             "sparse": {"count": 1, "indices": {"bufferView": 2, "componentType": 5123},
                        "values": {"bufferView": 3}}},
            {"bufferView": 1, "componentType": 5121, "count": 3, "type": "SCALAR"},
        ],
        "bufferViews": [
            {"buffer": 0, "byteOffset": 0, "byteLength": 48, "byteStride": 16},
            {"buffer": 0, "byteOffset": 48, "byteLength": 3},
            {"buffer": 0, "byteOffset": 52, "byteLength": 2},
            {"buffer": 0, "byteOffset": 56, "byteLength": 12},
        ],
        "buffers": [{"byteLength": len(blob),
                     "uri": "data:application/octet-stream;base64,"
                            + base64.b64encode(blob).decode()}],
    }
    model = load_model_bytes(json.dumps(doc).encode())
    prim = model.meshes[0].primitives[0]
    np.testing.assert_allclose(prim.positions[prim.indices], [[0, 0, 0], [1, 0, 0], [0, 2, 0]])
    assert model.nodes[0].name == "tri"


def test_parts_reading_the_same_indices_share_one_array() -> None:
    # Three parts, each with its own indices accessor: two read the same bytes of one view
    # (as a CAD export's parts on one topology do) and share an array; the third reads the
    # same view from another offset and gets its own. Shared arrays are read-only.
    pos = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], dtype=np.float32).tobytes()
    pos += np.array([[0, 0, 1]] * 4, dtype=np.float32).tobytes()  # normals
    idx = np.array([0, 1, 2, 2, 1, 3], dtype=np.uint16).tobytes()
    doc = {
        "asset": {"version": "2.0"},
        "nodes": [{"mesh": i} for i in range(3)],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0, "NORMAL": 4},
                                    "indices": 1 + i}]} for i in range(3)],
        "accessors": [
            {"bufferView": 0, "componentType": 5126, "count": 4, "type": "VEC3"},
            {"bufferView": 1, "componentType": 5123, "count": 3, "type": "SCALAR"},
            {"bufferView": 1, "componentType": 5123, "count": 3, "type": "SCALAR"},
            {"bufferView": 1, "byteOffset": 6, "componentType": 5123, "count": 3,
             "type": "SCALAR"},
            {"bufferView": 0, "byteOffset": 48, "componentType": 5126, "count": 4,
             "type": "VEC3"},
        ],
        "bufferViews": [{"buffer": 0, "byteLength": len(pos)},
                        {"buffer": 0, "byteOffset": len(pos), "byteLength": len(idx)}],
        "buffers": [{"byteLength": len(pos) + len(idx)}],
    }
    model = load_model_bytes(make_glb(doc, pos + idx))
    a, b, c = (m.primitives[0].indices for m in model.meshes)
    assert a is b and a is not c
    assert a.tolist() == [0, 1, 2] and c.tolist() == [2, 1, 3]
    with pytest.raises(ValueError):
        a[0] = 1


def _parts_glb(positions: list[np.ndarray], normals: list[np.ndarray]) -> bytes:
    """A GLB of one triangle part per (positions, normals) pair, each with its own accessors
    and views, packed one after the other in the BIN chunk (as a CAD export writes them)."""
    blob, views, accessors, meshes = b"", [], [], []
    for pos, nrm in zip(positions, normals, strict=True):
        for arr in (pos.astype(np.float32), nrm.astype(np.float32)):
            views.append({"buffer": 0, "byteOffset": len(blob), "byteLength": arr.nbytes})
            accessors.append({"bufferView": len(views) - 1, "componentType": 5126,
                              "count": len(arr), "type": "VEC3"})
            blob += arr.tobytes()
        meshes.append({"primitives": [{"attributes": {"POSITION": len(accessors) - 2,
                                                      "NORMAL": len(accessors) - 1}}]})
    doc = {"asset": {"version": "2.0"}, "nodes": [{"mesh": i} for i in range(len(meshes))],
           "meshes": meshes, "accessors": accessors, "bufferViews": views,
           "buffers": [{"byteLength": len(blob)}]}
    return make_glb(doc, blob)


def test_many_parts_decode_as_each_alone() -> None:
    # Several parts' attributes are decoded together (one gather from the BIN chunk); each
    # part must come out as it would alone: its own positions, normals made unit length where
    # the file's are not, and a part holding NaN refused with the accessor named.
    rng = np.random.default_rng(5)
    positions = [rng.normal(size=(3, 3)) for _ in range(6)]
    normals = [np.tile([[0.0, 0.0, 1.0]], (3, 1)) for _ in range(6)]
    normals[2] = np.tile([[0.0, 3.0, 4.0]], (3, 1))  # not unit length
    model = load_model_bytes(_parts_glb(positions, normals))
    first, second = model.meshes[0].primitives[0], model.meshes[1].primitives[0]
    assert first.positions.base is not None and first.positions.base is second.normals.base
    for k, mesh in enumerate(model.meshes):
        prim = mesh.primitives[0]
        alone = load_model_bytes(_parts_glb([positions[k]], [normals[k]])).meshes[0].primitives[0]
        np.testing.assert_allclose(prim.positions, positions[k].astype(np.float32))
        np.testing.assert_allclose(prim.normals, alone.normals)
    np.testing.assert_allclose(model.meshes[2].primitives[0].normals, [[0, 0.6, 0.8]] * 3,
                               atol=1e-6)
    positions[4][1, 2] = np.nan
    with pytest.raises(ModelError, match="accessor 8 contains NaN or infinite values"):
        load_model_bytes(_parts_glb(positions, normals))
    # damage: random bytes in a buffer read as floats up to 1.9e38 (a survey of damaged files)
    positions[4][1, 2] = -1.86e38
    with pytest.raises(ModelError, match=r"accessor 8 holds -1\.86e\+38, past the ±1e\+18 "
                       "that any model's values are within: its data is damaged"):
        load_model_bytes(_parts_glb(positions, normals))
    positions[4][1, 2] = 3e17  # far, but a value a model may have
    assert load_model_bytes(_parts_glb(positions, normals)).meshes[4].primitives[0] \
        .positions[1, 2] == np.float32(3e17)
    big = [rng.normal(size=(20_000, 3))]  # decoded alone (over _DECODE_TOGETHER_VERTICES)
    big[0][19_999, 0] = 5e30
    with pytest.raises(ModelError, match=r"accessor 0 holds 5e\+30, past the ±1e\+18"):
        load_model_bytes(_parts_glb(big, [np.tile([[0.0, 0.0, 1.0]], (20_000, 1))]))


def test_gltf_with_external_bin(tmp_path: Path) -> None:
    doc, pos = _triangle_doc()
    doc["buffers"][0]["uri"] = "tri%20data.bin"
    (tmp_path / "tri data.bin").write_bytes(pos)
    (tmp_path / "tri.gltf").write_text(json.dumps(doc))
    assert load_model(tmp_path / "tri.gltf").triangle_count == 1
    doc["buffers"][0]["uri"] = "../escape.bin"
    (tmp_path / "bad.gltf").write_text(json.dumps(doc))
    with pytest.raises(ModelError, match="outside the model's folder"):
        load_model(tmp_path / "bad.gltf")


def test_base_color_textures_of_foreign_models() -> None:
    duck = load_model(SHARED_MODELS / "Duck.glb").meshes[0].primitives[0]
    assert duck.texture is not None and duck.texture.pixels.shape == (512, 512, 4)
    assert duck.texcoords is not None and duck.texcoords.shape == (len(duck.positions), 2)
    assert duck.texcoords.min() >= 0.0 and duck.texcoords.max() <= 1.0
    # The duck's texture is mostly yellow: red and green well above blue.
    mean = duck.texture.pixels[..., :3].reshape(-1, 3).mean(axis=0)
    assert mean[0] > mean[2] + 60 and mean[1] > mean[2] + 40
    truck = load_model(SHARED_MODELS / "CesiumMilkTruck.glb")
    textures = {id(p.texture) for m in truck.meshes for p in m.primitives if p.texture}
    assert len(textures) == 1  # the body and the wheels share texture 0: decoded once
    box = load_model(SHARED_MODELS / "Box.glb").meshes[0].primitives[0]
    assert box.texture is None and box.texcoords is None


def test_texture_sampler_and_uv_orientation() -> None:
    sampler = {"magFilter": 9728, "minFilter": 9728, "wrapS": 33071, "wrapT": 33648}
    model = load_model_bytes(textured_quad_glb(png_bytes(quadrant_texture()), sampler=sampler))
    prim = model.meshes[0].primitives[0]
    assert prim.texture is not None
    assert (prim.texture.mag_filter, prim.texture.min_filter) == (9728, 9728)
    assert (prim.texture.wrap_s, prim.texture.wrap_t) == (33071, 33648)
    np.testing.assert_array_equal(prim.texture.pixels[0, 0, :3], QUADRANT_COLOURS[0])
    np.testing.assert_array_equal(prim.texture.pixels[1, 1, :3], QUADRANT_COLOURS[3])
    np.testing.assert_allclose(prim.texcoords, [[0, 1], [1, 1], [1, 0], [0, 0]])


def test_bad_textures_are_named(caplog: pytest.LogCaptureFixture,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelError, match="image 0 is not a PNG or JPEG image"):
        load_model_bytes(textured_quad_glb(b"this is not a picture at all"))
    with pytest.raises(ModelError, match="texture 0: sampler wrap"):
        load_model_bytes(textured_quad_glb(png_bytes(quadrant_texture()),
                                           sampler={"wrapS": 1234}))
    # A few KB of PNG that declares 81 M pixels is refused before it is decoded.
    import io

    from PIL import Image
    bomb = io.BytesIO()
    Image.new("1", (9000, 9000)).save(bomb, format="PNG")
    assert len(bomb.getvalue()) < 100_000
    with pytest.raises(ModelError, match=r"image 0 declares 9000×9000 pixels, over the limit"):
        load_model_bytes(textured_quad_glb(bomb.getvalue()))
    # Decoded textures have a memory budget per model.
    monkeypatch.setattr("farview.host.gltf.MAX_TEXTURE_BYTES", 1 << 20)
    big = np.zeros((1024, 1024, 4), np.uint8)
    with pytest.raises(ModelError, match="image 0 takes the model's decoded textures over 1 MiB"):
        load_model_bytes(textured_quad_glb(png_bytes(big)))
    # A primitive without the texture's coordinates is drawn untextured, and says so.
    with caplog.at_level("INFO", logger="farview.host.gltf"):
        model = load_model_bytes(textured_quad_glb(png_bytes(quadrant_texture()),
                                                   texcoord=False))
    assert model.meshes[0].primitives[0].texture is None
    assert "use TEXCOORD_0, which it lacks" in caplog.text


def test_local_bounds_of_many_meshes_is_each_meshs_own() -> None:
    """The boxes of many meshes at once (small ones in one pass, big ones alone, one listed
    twice measured once, one without vertices marked so) equal each mesh's own."""
    from farview.host.gltf import Mesh, Primitive, local_bounds_of

    rng = np.random.default_rng(5)
    from farview.host.gltf import Material

    material = Material("plain")

    def mesh(*counts: int) -> Mesh:
        prims = []
        for n in counts:
            pos = rng.normal(size=(n, 3)).astype(np.float32) * rng.uniform(0.1, 10)
            prims.append(Primitive(pos, np.zeros((n, 3), np.float32),
                                   np.zeros(0, np.uint32), material))
        return Mesh("m", tuple(prims))

    small, two, big, empty = mesh(10), mesh(3, 40), mesh(70_000), mesh(0)
    meshes = [small, two, big, empty, small, mesh(1), big]
    lo, hi, has = local_bounds_of(meshes)
    assert has.tolist() == [True, True, True, False, True, True, True]
    assert not lo[3].any() and not hi[3].any()
    for i, m in enumerate(meshes):
        own = m.local_bounds()
        if own is not None:
            assert np.array_equal(lo[i], own[0]) and np.array_equal(hi[i], own[1])
    assert [a.shape for a in local_bounds_of([])] == [(0, 3), (0, 3), (0,)]
    # a big mesh keeps its bounds once measured (read-only); a small one measures again
    assert big.local_bounds() is big.local_bounds() and small.local_bounds() is not \
        small.local_bounds()
    with pytest.raises(ValueError):
        big.local_bounds()[0][0] = 1.0  # type: ignore[index]
