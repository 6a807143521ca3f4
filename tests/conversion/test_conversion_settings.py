"""ARR's conversion settings file (``<stem>.ConversionSettings.json`` beside the input,
host/conversion_settings.py): the schema's checks, the settings applied to real conversions
(scaling, recentring, axis, materials, vertex colours), ``sceneGraphMode`` ``none`` drawing
the same picture from one object, and the service reading the file from local and web
storage."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from farview.host.conversion_settings import SettingsError, parse
from farview.host.convert import ConversionError, convert_file
from farview.host.gltf import load_model
from tests.conversion.test_convert import MTL, OBJ, assert_same_picture, world_bounds


def write_obj(folder: Path, settings: dict[str, Any] | None = None, stem: str = "parts") -> Path:
    src = folder / f"{stem}.obj"
    src.write_text(OBJ)
    (folder / "parts.mtl").write_text(MTL)
    if settings is not None:
        (folder / f"{stem}.ConversionSettings.json").write_text(json.dumps(settings))
    return src


def test_arrs_example_file_parses() -> None:
    s = parse({"scaling": 0.01, "recenterToOrigin": True, "sceneGraphMode": "static",
               "axis": ["+x", "+z", "-y"], "unlitMaterials": False,
               "opaqueMaterialDefaultSidedness": "SingleSided", "generateCollisionMesh": True,
               "deduplicateMaterials": False, "metadataKeys": []})
    assert (s.scaling, s.recenter_to_origin, s.scene_graph_mode) == (0.01, True, "static")
    assert s.sidedness == "SingleSided" and s.not_applied == ()
    np.testing.assert_array_equal(s.axis_matrix(), [[1, 0, 0], [0, 0, 1], [0, -1, 0]])
    assert parse({}).root_matrix().tolist() == np.eye(4).tolist()


@pytest.mark.parametrize(("doc", "message"), [
    ([1, 2], "must hold a JSON object"),
    ({"scale": 2}, "unknown setting 'scale'"),
    ({"scaling": 0}, "scaling must be a number from 1e-09 to 1e\\+09, got 0"),
    ({"scaling": 1e308}, "scaling must be a number from 1e-09 to 1e\\+09, got 1e\\+308"),
    ({"scaling": 5e-324}, "scaling must be a number from 1e-09"),
    ({"scaling": int("1" + "0" * 400)}, "scaling must be a number of ordinary size"),
    ({"scaling": "2"}, "scaling must be a number"),
    ({"scaling": True}, "scaling must be a number"),
    ({"recenterToOrigin": "yes"}, "recenterToOrigin must be true or false"),
    ({"sceneGraphMode": "flat"}, "sceneGraphMode must be one of dynamic, static, none"),
    ({"opaqueMaterialDefaultSidedness": "Both"}, "must be one of SingleSided, DoubleSided"),
    ({"axis": ["+x", "+y"]}, "axis must be a list of three"),
    ({"axis": ["+x", "+x", "+z"]}, "names an input axis twice"),
    ({"axis": ["-x", "+y", "+z"]}, "mirrors the model"),
    ({"metadataKeys": "name"}, "metadataKeys must be a list of strings"),
    ({"vertex": 3}, "vertex must be an object"),
    ({"fbxAssumeMetallic": 1}, "fbxAssumeMetallic must be true or false"),
])
def test_a_setting_against_arrs_schema_is_named(doc: Any, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        parse(doc, "box.ConversionSettings.json")


def test_settings_farview_does_not_apply_are_warned_about() -> None:
    s = parse({"material-override": "box_materials_override.json", "metadataKeys": ["a"],
               "vertex": {"position": "32_32_32_FLOAT"}, "fbxAssumeMetallic": True,
               "deduplicateMaterials": True, "generateCollisionMesh": False})
    joined = "\n".join(s.not_applied)
    for key in ("metadataKeys", "vertex", "fbxAssumeMetallic",
                "deduplicateMaterials true", "generateCollisionMesh false"):
        assert key in joined
    assert len(s.not_applied) == 5  # (material-override is applied: test_material_overrides)
    # a mirroring axis is taken where it is baked into the vertices
    assert parse({"axis": ["-x", "+y", "+z"], "sceneGraphMode": "none"}).scaling == 1.0


def test_scaling_recentring_and_axis_are_applied(tmp_path: Path) -> None:
    plain = convert_file(write_obj(tmp_path), tmp_path / "plain.glb")
    lo, hi = world_bounds(tmp_path / "plain.glb")
    scaled = tmp_path / "scaled"
    scaled.mkdir()
    result = convert_file(write_obj(scaled, {"scaling": 0.01, "recenterToOrigin": True,
                                             "axis": ["+x", "+z", "-y"]}), scaled / "out.glb")
    assert result.warnings == () and result.nodes == plain.nodes
    lo2, hi2 = world_bounds(scaled / "out.glb")
    np.testing.assert_allclose((lo2 + hi2) / 2, 0.0, atol=1e-6)  # centred
    size, size2 = hi - lo, hi2 - lo2
    # z-up to y-up: the output's y is the input's z, its z the input's y
    np.testing.assert_allclose(size2, 0.01 * size[[0, 2, 1]], rtol=1e-5)
    names = {n.name for n in load_model(scaled / "out.glb").nodes}
    assert {"Plate", "Wedge"} <= names


def test_material_settings_are_applied(tmp_path: Path) -> None:
    convert_file(write_obj(tmp_path, {"unlitMaterials": True, "gammaToLinearMaterial": True,
                                      "opaqueMaterialDefaultSidedness": "DoubleSided"}),
                 tmp_path / "out.glb")
    mats = {m.name: m for m in load_model(tmp_path / "out.glb").materials}
    red, glass = mats["red"], mats["glass"]
    assert red.unlit and glass.unlit
    assert red.double_sided and not glass.double_sided  # only opaque materials
    np.testing.assert_allclose(red.base_color[:3], np.array([0.8, 0.1, 0.1]) ** 2.2, rtol=1e-3)
    assert glass.base_color[3] == pytest.approx(0.4)  # alpha is not gamma-encoded


def test_an_invalid_settings_file_fails_the_conversion_and_leaves_nothing(
        tmp_path: Path) -> None:
    src = write_obj(tmp_path, {"sceneGraphMode": "flat"})
    with pytest.raises(ConversionError, match=r"parts\.ConversionSettings\.json: sceneGraphMode"):
        convert_file(src, tmp_path / "out.glb")
    (tmp_path / "parts.ConversionSettings.json").write_text("{not json")
    with pytest.raises(ConversionError, match="is not valid JSON") as e:
        convert_file(src, tmp_path / "out.glb")
    assert e.value.code == "InvalidInput"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "parts.ConversionSettings.json", "parts.mtl", "parts.obj"]


def test_a_settings_file_named_on_the_command_line_is_used(tmp_path: Path) -> None:
    from farview.host.convert import cli_main

    src = write_obj(tmp_path)
    other = tmp_path / "mine.json"
    other.write_text(json.dumps({"scaling": 3.0}))
    assert cli_main([str(src), "-o", str(tmp_path / "out.glb"), "--settings", str(other)]) == 0
    lo, hi = world_bounds(tmp_path / "out.glb")
    np.testing.assert_allclose(hi - lo, [12.0, 3.0, 3.0], rtol=1e-5)  # the OBJ: 4 × 1 × 1


def test_scene_graph_mode_none_draws_the_same_picture_from_one_object(
        tmp_path: Path, egl_context: Any) -> None:
    """64 parts of 8 materials, turned z-up to y-up and scaled, collapse into one root node
    with a merged mesh a material (each within 65,536 vertices), in world space: the same
    triangles, bounds and picture as the same settings with the nodes kept."""
    from benchmarks.bench_scale import write_model

    src = tmp_path / "parts.glb"
    write_model(src, 20_000, 64)
    placed = {"axis": ["+x", "+z", "-y"], "scaling": 0.8}
    (tmp_path / "parts.ConversionSettings.json").write_text(json.dumps(placed))
    convert_file(src, tmp_path / "kept.glb")
    (tmp_path / "parts.ConversionSettings.json").write_text(
        json.dumps({**placed, "sceneGraphMode": "none"}))
    result = convert_file(src, tmp_path / "collapsed.glb")
    before, after = load_model(tmp_path / "kept.glb"), load_model(tmp_path / "collapsed.glb")
    assert len(before.nodes) == 65
    assert [after.nodes[i].name for i in after.roots] == ["parts"]
    root = after.nodes[after.roots[0]]
    assert root.mesh is None and len(root.children) == result.meshes == 8  # one a material
    for i in root.children:
        (prim,) = after.nodes[i].mesh.primitives
        assert len(prim.positions) <= 1 << 16
    assert after.triangle_count == before.triangle_count == load_model(src).triangle_count
    for a, b in zip(world_bounds(tmp_path / "collapsed.glb"), world_bounds(tmp_path / "kept.glb"),
                    strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)
    assert_same_picture(before, after, 18.0)


def face_normals_agree(model: Any) -> float:
    """The share of triangles whose winding's normal points the way their vertex normals
    do (in world space)."""
    from farview.host.gltf import node_world_matrices

    worlds = node_world_matrices(model)
    agree = total = 0
    for n in model.nodes:
        if n.mesh is None or n.index not in worlds:
            continue
        w = worlds[n.index]
        for p in n.mesh.primitives:
            pos = p.positions @ w[:3, :3].T
            nrm = p.normals @ np.linalg.inv(w[:3, :3])
            tri = p.indices.reshape(-1, 3)
            face = np.cross(pos[tri[:, 1]] - pos[tri[:, 0]], pos[tri[:, 2]] - pos[tri[:, 0]])
            dot = (face * nrm[tri].sum(axis=1)).sum(axis=1)
            agree += int((dot > 0).sum())
            total += len(tri)
    return agree / total


def test_a_mirroring_axis_with_scene_graph_mode_none_turns_the_winding(tmp_path: Path) -> None:
    """``axis`` ``["-x", "+y", "+z"]`` mirrors the model: baked into the vertices, each
    triangle's winding is turned round so that its front still faces the way its normals
    do (a renderer culls back faces by winding)."""
    from benchmarks.bench_scale import write_model

    src = tmp_path / "parts.glb"
    write_model(src, 2_000, 8)
    (tmp_path / "parts.ConversionSettings.json").write_text(
        json.dumps({"sceneGraphMode": "none", "axis": ["-x", "+y", "+z"]}))
    convert_file(src, tmp_path / "mirrored.glb")
    assert face_normals_agree(load_model(src)) > 0.99
    assert face_normals_agree(load_model(tmp_path / "mirrored.glb")) > 0.99
    lo, hi = world_bounds(src)
    lo2, hi2 = world_bounds(tmp_path / "mirrored.glb")
    np.testing.assert_allclose([lo2[0], hi2[0]], [-hi[0], -lo[0]], atol=1e-4)


def test_gamma_to_linear_vertex_makes_vertex_colours_linear(tmp_path: Path) -> None:
    from tests.host.feature_models import MODELS

    src = tmp_path / "vc.glb"
    src.write_bytes(MODELS["vertex_colors"]())
    convert_file(src, tmp_path / "plain.glb")
    (tmp_path / "vc.ConversionSettings.json").write_text(
        json.dumps({"gammaToLinearVertex": True}))
    convert_file(src, tmp_path / "linear.glb")

    def colours(path: Path) -> np.ndarray:
        return np.concatenate([p.colors for m in load_model(path).meshes
                               for p in m.primitives if p.colors is not None])

    plain, linear = colours(tmp_path / "plain.glb"), colours(tmp_path / "linear.glb")
    assert plain[:, :3].max() > 0.1
    np.testing.assert_allclose(linear[:, :3], plain[:, :3] ** 2.2, atol=2e-3)
    np.testing.assert_allclose(linear[:, 3], plain[:, 3], atol=1e-4)


def test_the_info_file_says_what_was_converted_and_how(tmp_path: Path) -> None:
    """ARR's ``<name>.info.json`` (written with ``info``, as the service asks): the input's
    format and statistics, the settings file's copy, the output's bounds and the offset
    that recentring took off."""
    from tests.host.conftest import SAMPLE

    src = tmp_path / "engine.glb"
    src.write_bytes(SAMPLE.read_bytes())
    convert_file(src, tmp_path / "plain.glb")
    lo, hi = world_bounds(tmp_path / "plain.glb")
    (tmp_path / "engine.ConversionSettings.json").write_text('{"recenterToOrigin": true}')
    convert_file(src, tmp_path / "out.glb", info=True)
    info = json.loads((tmp_path / "out.info.json").read_text())
    sample = load_model(SAMPLE)
    assert info["files"] == {"input": "engine.glb", "output": "out.glb"}
    assert info["conversionSettings"] == {"recenterToOrigin": True}
    assert info["inputInfo"]["sourceAssetFormatVersion"] == sample.asset[0] == "2.0"
    assert info["inputInfo"]["sourceAssetGenerator"] == sample.asset[1]
    assert info["inputStatistics"]["numFaces"] == sum(
        p.triangle_count for m in sample.meshes for p in m.primitives)
    assert info["inputStatistics"]["numNodes"] == len(sample.nodes)
    np.testing.assert_allclose(info["outputStatistics"]["recenteringOffset"], (lo + hi) / 2,
                               rtol=1e-5, atol=1e-6)
    box = info["outputStatistics"]["boundingBox"]
    np.testing.assert_allclose(np.add(box["min"], box["max"]) / 2, 0.0, atol=1e-5)
    np.testing.assert_allclose(np.subtract(box["max"], box["min"]), hi - lo, rtol=1e-5)
    assert not (tmp_path / "plain.info.json").exists()  # only when asked


def test_an_info_file_that_cannot_be_written_leaves_no_output(tmp_path: Path) -> None:
    src = write_obj(tmp_path)
    (tmp_path / "out.info.json").mkdir()  # in the way: the info file cannot be written
    with pytest.raises(OSError):
        convert_file(src, tmp_path / "out.glb", info=True)
    assert not (tmp_path / "out.glb").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]  # no temporaries


def test_settings_and_override_files_must_be_regular_files_in_the_inputs_folder(
        tmp_path: Path) -> None:
    """Found by a hostile-input survey (2026-12-06): links out of the folder were followed (a
    settings file's scaling came from outside, an override file from /tmp), as was an absolute
    path written with backslashes; ``--settings /dev/zero`` was read until 10.6 GB; a name
    too long for the file system was a traceback blamed on the model."""
    from farview.host import conversion_settings

    model = tmp_path / "model"
    model.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.json").write_text(json.dumps([{"name": "red", "roughness": 0.42}]))
    (outside / "settings.json").write_text(json.dumps({"scaling": 3}))
    src = write_obj(model)
    (model / "parts.ConversionSettings.json").symlink_to(outside / "settings.json")
    with pytest.raises(ConversionError, match=r"parts\.ConversionSettings\.json leads out of the "
                       r"folder of parts\.obj through a link; put the file itself in that folder"):
        convert_file(src, tmp_path / "out.glb")
    (model / "parts.ConversionSettings.json").unlink()
    (model / "parts.MaterialOverrides.json").symlink_to(outside / "secret.json")
    with pytest.raises(ConversionError, match=r"parts\.MaterialOverrides\.json leads out of"):
        convert_file(src, tmp_path / "out.glb")
    (model / "parts.MaterialOverrides.json").unlink()
    (model / "ln").symlink_to(outside)
    backslashed = "\\" + str(outside / "secret.json").lstrip("/").replace("/", "\\")
    for named, says in (("ln/secret.json", r"secret\.json leads out of the folder of parts\.obj"),
                        (backslashed, r"must name a file in the input's folder")):
        (model / "parts.ConversionSettings.json").write_text(json.dumps({"material-override": named}))
        with pytest.raises(ConversionError, match=says):
            convert_file(src, tmp_path / "out.glb")
    (model / "parts.ConversionSettings.json").write_text(
        json.dumps({"material-override": "a" * 300}))
    with pytest.raises(ConversionError, match="cannot be read: File name too long"):
        convert_file(src, tmp_path / "out.glb")
    (model / "parts.ConversionSettings.json").unlink()
    long = write_obj(model, stem="d" * 240)  # its settings file's name would be too long
    assert convert_file(long, tmp_path / "out.glb").triangles == 3
    with pytest.raises(SettingsError, match="zero is not a regular file"):
        conversion_settings.read_file(Path("/dev/zero"))
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(SettingsError, match=r"fifo\.json is not a regular file"):
        conversion_settings.read_file(fifo)
