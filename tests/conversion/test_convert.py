"""The converter (host/convert.py) on real files: OBJ and PLY through the Open Asset Import
Library, glTF through farview's loader; names, hierarchy, materials and bounds survive; the
output is meshoptimizer-compressed and loads; hostile and unsupported inputs fail clearly and
leave nothing behind."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from farview.host.convert import Budgets, ConversionError, convert_file, encode_png
from farview.host.gltf import load_model, node_world_matrices
from farview.input.launch import CONVERT_MODULE, parse_conversion_progress, python_module
from tests.host.conftest import SAMPLE, SHARED_MODELS, psnr

OBJ = """mtllib parts.mtl
o Plate
v 0 0 0
v 2 0 0
v 2 1 0
v 0 1 0
vn 0 0 1
usemtl red
f 1//1 2//1 3//1
f 1//1 3//1 4//1
o Wedge
v 3 0 0
v 4 0 0
v 4 1 1
usemtl glass
f 5 6 7
"""
MTL = """newmtl red
Kd 0.8 0.1 0.1
newmtl glass
Kd 0.2 0.4 0.9
d 0.4
"""
PLY = """ply
format ascii 1.0
element vertex 4
property float x
property float y
property float z
element face 2
property list uchar int vertex_indices
end_header
0 0 0
1 0 0
1 1 0
0 1 0
3 0 1 2
3 0 2 3
"""


def grid_obj(n: int) -> str:
    """An OBJ file of one bumpy grid of ``n`` × ``n`` vertices (2·(n-1)² triangles)."""
    lines = [f"v {x} {y} {(x * y) % 7}" for y in range(n) for x in range(n)]
    lines += [f"f {y * n + x + 1} {y * n + x + 2} {(y + 1) * n + x + 1}"
              for y in range(n - 1) for x in range(n - 1)]
    lines += [f"f {y * n + x + 2} {(y + 1) * n + x + 2} {(y + 1) * n + x + 1}"
              for y in range(n - 1) for x in range(n - 1)]
    return "\n".join(lines) + "\n"


def written_textures(glb: Path) -> list[tuple[str, bytes, bytes | None]]:
    """Each texture of a converted ``.glb``: its ``source`` image (MIME type, bytes) and its
    ``MSFT_texture_dds`` image's bytes (None without one)."""
    import struct

    data = glb.read_bytes()
    json_len = struct.unpack_from("<I", data, 12)[0]
    doc = json.loads(data[20:20 + json_len])
    blob = data[20 + json_len + 8:]

    def image(index: int) -> tuple[str, bytes]:
        spec = doc["images"][index]
        view = doc["bufferViews"][spec["bufferView"]]
        start = view.get("byteOffset", 0)
        return spec["mimeType"], blob[start:start + view["byteLength"]]

    out = []
    for t in doc.get("textures", []):
        dds = t.get("extensions", {}).get("MSFT_texture_dds")
        mime, fallback = image(t["source"])
        out.append((mime, fallback, image(dds["source"])[1] if dds else None))
    return out


def png_pixels(data: bytes) -> np.ndarray:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGBA"))


def world_bounds(path: Path) -> tuple[np.ndarray, np.ndarray]:
    model = load_model(path)
    worlds = node_world_matrices(model)
    pts = [p.positions @ worlds[n.index][:3, :3].T + worlds[n.index][:3, 3]
           for n in model.nodes if n.mesh is not None and n.index in worlds
           for p in n.mesh.primitives]
    allp = np.concatenate(pts)
    return allp.min(axis=0), allp.max(axis=0)


def test_obj_keeps_names_materials_and_bounds(tmp_path: Path) -> None:
    (tmp_path / "parts.obj").write_text(OBJ)
    (tmp_path / "parts.mtl").write_text(MTL + "newmtl unused\nKd 0 0 1\n")
    out = tmp_path / "parts.glb"
    result = convert_file(tmp_path / "parts.obj", out)
    assert result.triangles == 3 and result.output_bytes == out.stat().st_size
    model = load_model(out)
    assert result.materials == len(model.materials) == 2  # what was written
    names = [n.name for n in model.nodes]
    assert "Plate" in names and "Wedge" in names
    mats = {m.name: m for m in model.materials}
    assert mats["red"].base_color[:3] == pytest.approx((0.8, 0.1, 0.1))
    assert mats["glass"].base_color[3] == pytest.approx(0.4) and mats["glass"].alpha_mode == "BLEND"
    lo, hi = world_bounds(out)
    np.testing.assert_allclose(lo, [0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(hi, [4, 1, 1], atol=1e-6)
    raw = out.read_bytes()  # three triangles: nothing worth compressing
    assert b"EXT_meshopt_compression" not in raw[:4096]


@pytest.mark.parametrize(("cut", "says"), [
    ("f 5 6", "its last line ('f 5 6') ends in the middle of an element"),
    ("f 5/1 6/", "its last line ('f 5/1 6/') ends in the middle of an element"),
    ("f 5 6 7\no Bolt\nv 5 0 0\nv 6 0 0\nv 6 1 0",
     "it ends with vertex data ('v 6 1 0') after its last face"),
    ("f 5 6 7\nvn 0 0", "its last line ('vn 0 0') ends in the middle of an element"),
])
def test_an_obj_cut_short_is_refused(tmp_path: Path, cut: str, says: str) -> None:
    """OBJ has no end marker: the importer read a file cut at half its bytes as a model with
    an object left out, and "succeeded". A file with no line break after its last line, that
    line cut in the middle of an element or vertex data after the last face, is refused; the
    same lines ending in a line break, or a last face with none, are a whole file."""
    from farview.host import obj_check

    src = tmp_path / "parts.obj"
    (tmp_path / "parts.mtl").write_text(MTL)
    whole = OBJ.removesuffix("f 5 6 7\n")
    src.write_text(whole + cut)
    with pytest.raises(ConversionError) as err:
        convert_file(src, tmp_path / "parts.glb")
    assert err.value.code == "InvalidInput"
    assert err.value.message.startswith(f"parts.obj looks cut short: {says}")
    assert err.value.message.endswith("; copy or export it again")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["parts.mtl", "parts.obj"]
    src.write_text(OBJ.removesuffix("\n"))  # a whole file, with no line break at its end
    assert convert_file(src, tmp_path / "parts.glb").triangles == 3
    src.write_text(OBJ.removesuffix("\n") + "  # the wedge")  # a comment is not a value
    assert obj_check.scan(src).cut is None
    if cut.endswith("6 1 0"):  # vertices after the faces, ending in a line break: whole
        src.write_text(whole + cut + "\n")
        assert convert_file(src, tmp_path / "parts.glb").triangles == 3


def test_an_obj_is_scanned_the_same_in_chunks_of_any_size(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from farview.host import obj_check

    src = tmp_path / "parts.obj"
    src.write_text(OBJ + "usemtl  last one \t# a comment\nf 5 6")
    whole = obj_check.scan(src)
    assert whole == obj_check.ObjScan(
        cut="its last line ('f 5 6') ends in the middle of an element",
        materials_used={"red", "glass", "last one"}, libraries=["parts.mtl"], faces=True)
    for size in (1, 5, 7, 64):
        monkeypatch.setattr(obj_check, "CHUNK", size)
        assert obj_check.scan(src) == whole, size


def test_an_objs_materials_its_library_does_not_define_are_said(tmp_path: Path) -> None:
    """The importer makes a grey material of each ``usemtl`` name no library defines, and
    says nothing: a ``.mtl`` left behind, or cut short. The conversion says which and why."""
    src = tmp_path / "parts.obj"
    src.write_text(OBJ)
    result = convert_file(src, tmp_path / "parts.glb")
    assert result.warnings == (
        "parts.obj uses materials glass, red, but its material library parts.mtl is not "
        "beside it: they are drawn in the default grey; put the .mtl file beside the model",)
    (tmp_path / "parts.mtl").write_text("newmtl red\nKd 0.8 0.1 0.1\nnewmtl gl")  # cut short
    result = convert_file(src, tmp_path / "parts.glb")
    assert result.warnings == (
        "parts.obj uses materials glass, but parts.mtl does not define them (is it cut "
        "short?): they are drawn in the default grey; check the .mtl file",)
    (tmp_path / "parts.mtl").write_text(MTL)
    assert convert_file(src, tmp_path / "parts.glb").warnings == ()
    src.write_text(OBJ.replace("mtllib parts.mtl\n", ""))
    assert "it names no material library (mtllib)" in convert_file(
        src, tmp_path / "parts.glb").warnings[0]


@pytest.mark.parametrize("utf8_obj", [False, True])
def test_an_obj_with_latin1_names_keeps_them(tmp_path: Path, utf8_obj: bool) -> None:
    """Older exporters wrote names in Latin-1 (Assimp's test model ``regr01.obj``: a material
    ``Terraind\xe6k``); the importer's binding reads names as UTF-8 and refused the file.
    Either the OBJ, its material library or both may be in Latin-1; a sub-folder's library is
    found too."""
    obj = OBJ.replace("mtllib parts.mtl", "mtllib lib/parts.mtl").replace(
        "usemtl red", "usemtl rødt").replace("o Wedge", "o Kile_æøå")
    (tmp_path / "lib").mkdir()
    (tmp_path / "parts.obj").write_bytes(obj.encode("utf-8" if utf8_obj else "latin-1"))
    (tmp_path / "lib" / "parts.mtl").write_bytes(
        MTL.replace("newmtl red", "newmtl rødt").encode("latin-1"))
    out = tmp_path / "parts.glb"
    assert convert_file(tmp_path / "parts.obj", out).triangles == 3
    model = load_model(out)
    mats = {m.name: m for m in model.materials}
    assert mats["rødt"].base_color[:3] == pytest.approx((0.8, 0.1, 0.1))
    assert "Kile_æøå" in [n.name for n in model.nodes]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lib", "parts.glb", "parts.obj"]


def test_a_latin1_name_in_another_format_fails_clearly(tmp_path: Path) -> None:
    stl = tmp_path / "plate.stl"
    stl.write_bytes("solid Terraindæk\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\n"
                    "vertex 1 0 0\nvertex 0 1 0\nendloop\nendfacet\nendsolid Terraindæk\n"
                    .encode("latin-1"))
    with pytest.raises(ConversionError, match=r"plate\.stl names a material, mesh or node in a "
                       r"text encoding other than UTF-8 \(byte 0xe6\); export it again") as err:
        convert_file(stl, tmp_path / "plate.glb")
    assert err.value.code == "InvalidInput"
    assert [p.name for p in tmp_path.iterdir()] == ["plate.stl"]


def test_an_objs_lines_and_points_are_left_out_with_a_warning(tmp_path: Path) -> None:
    """CAD exports write edges as OBJ ``l`` elements; the importer's binding refused the whole
    file ("Mesh processing assumes triangulated faces")."""
    (tmp_path / "parts.obj").write_text(OBJ + "l 1 2 3 4 1\nl 5 6\np 7\n")
    (tmp_path / "parts.mtl").write_text(MTL)
    out = tmp_path / "parts.glb"
    result = convert_file(tmp_path / "parts.obj", out)
    assert result.triangles == 3
    assert any("3 line and point elements (l, p) were left out" in w
               for w in result.warnings), result.warnings
    model = load_model(out)
    assert {"Plate", "Wedge"} <= {n.name for n in model.nodes}
    assert {"red", "glass"} <= {m.name for m in model.materials}


@pytest.mark.parametrize(("name", "text", "message"), [
    ("edges.off", "OFF\n4 2 0\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n3 0 1 2\n2 2 3\n",
     r"edges\.off has faces of fewer than three corners \(lines or points\)"),
    ("camera.dae", """<?xml version="1.0" encoding="utf-8"?>
<COLLADA xmlns="http://www.collada.org/2005/11/COLLADASchema" version="1.4.1">
<asset><unit meter="1"/><up_axis>Y_UP</up_axis></asset>
<library_cameras><camera id="c"><optics><technique_common><perspective><yfov>45</yfov>
<aspect_ratio>1.5</aspect_ratio><znear>0.1</znear><zfar>100</zfar></perspective>
</technique_common></optics></camera></library_cameras>
<library_visual_scenes><visual_scene id="s"><node id="n" name="n"><instance_camera url="#c"/>
</node></visual_scene></library_visual_scenes>
<scene><instance_visual_scene url="#s"/></scene></COLLADA>
""", r"camera\.dae could not be read \(Assimp error loading 'camera\.dae': no reason given; "
     r"a file with no geometry at all, only cameras or lights, ends so\)"),
], ids=["lines-in-off", "cameras-only-dae"])
def test_files_the_importer_refuses_get_a_reason_and_no_path(
        tmp_path: Path, name: str, text: str, message: str) -> None:
    """(In a child process, as every conversion runs: the importer keeps its last error and
    gives it again for a failure that has none, so an earlier point cloud's "Mesh contains no
    faces" in this process became the camera file's reason.)"""
    from farview.host.convert import _convert_in_child

    src = tmp_path / name
    src.write_text(text)
    with pytest.raises(ConversionError, match=message) as err:
        _convert_in_child(src, tmp_path / "out.glb", Budgets(), None)
    assert str(tmp_path) not in err.value.message  # (the service's storage, for REST clients)
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_ply_converts(tmp_path: Path) -> None:
    (tmp_path / "quad.ply").write_text(PLY)
    result = convert_file(tmp_path / "quad.ply", tmp_path / "quad.glb")
    assert result.triangles == 2
    assert load_model(tmp_path / "quad.glb").triangle_count == 2


def test_a_ply_meshs_vertex_colours_are_kept(tmp_path: Path) -> None:
    """A scanned mesh's colours (PLY ``red green blue`` per vertex) came out white: they were
    kept for point clouds only. They are the mesh's COLOR_0 now, made linear (PLY's 8-bit
    values are display values, as for its point clouds): 255 → 1.0, 128 → 0.22."""
    coloured = PLY.replace("property float z\n", "property float z\nproperty uchar red\n"
                           "property uchar green\nproperty uchar blue\n")
    coloured = coloured.replace("0 0 0\n1 0 0\n1 1 0\n0 1 0\n",
                                "0 0 0 255 0 0\n1 0 0 255 0 0\n1 1 0 0 128 255\n0 1 0 0 128 255\n")
    (tmp_path / "scan.ply").write_text(coloured)
    convert_file(tmp_path / "scan.ply", tmp_path / "scan.glb")
    (prim,) = load_model(tmp_path / "scan.glb").meshes[0].primitives
    assert prim.colors is not None and not prim.points
    by_position = {tuple(p): tuple(c) for p, c in zip(prim.positions.tolist(),
                                                       prim.colors.tolist(), strict=True)}
    assert by_position[(0.0, 0.0, 0.0)] == pytest.approx((1.0, 0.0, 0.0, 1.0), abs=0.01)
    assert by_position[(1.0, 1.0, 0.0)] == pytest.approx((0.0, (128 / 255) ** 2.2, 1.0, 1.0),
                                                         abs=0.01)


@pytest.mark.parametrize("source", [SAMPLE, SHARED_MODELS / "CesiumMilkTruck.glb"])
def test_gltf_round_trip_keeps_the_model(tmp_path: Path, source: Path) -> None:
    out = tmp_path / "out.glb"
    convert_file(source, out)
    before, after = load_model(source), load_model(out)
    assert [n.name for n in after.nodes] == [n.name for n in before.nodes]
    assert after.triangle_count == before.triangle_count
    assert [m.name for m in after.materials] == [m.name for m in before.materials] or \
        {m.name for m in after.materials} <= {m.name for m in before.materials}
    for a, b in zip(world_bounds(out), world_bounds(source), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    textured = [p for m in after.meshes for p in m.primitives if p.texture is not None]
    assert bool(textured) == any(p.texture is not None for m in before.meshes
                                 for p in m.primitives)


ASSIMP = shutil.which("assimp")
needs_assimp = pytest.mark.skipif(ASSIMP is None, reason="Debian's assimp-utils is not installed "
                                  "(scripts/install installs it with FARVIEW_TEST_DEBS=1)")


def export_fbx(source: Path, fbx: Path) -> None:
    """Write ``source`` as an FBX file with the Open Asset Import Library's own exporter
    (Debian's ``assimp`` command; no FBX file made by others is at hand). ASCII FBX: the same
    library's 5.2 reader refuses the binary FBX its exporter writes ("block offset is out of
    range")."""
    subprocess.run([str(ASSIMP), "export", str(source), str(fbx), "-ffbxa"], check=True,
                   capture_output=True, timeout=120)
    assert fbx.read_bytes().startswith(b"; FBX 7.")


def parents(model: Any) -> dict[str, str | None]:
    parent_of = {c: n.name for n in model.nodes for c in n.children}
    return {n.name: parent_of.get(n.index) for n in model.nodes}


@needs_assimp
def test_fbx_keeps_names_hierarchy_materials_and_bounds(tmp_path: Path) -> None:
    """The sample engine (57 named parts in a hierarchy, 8 materials) as FBX, converted: every
    part keeps its name and its parent (the FBX's root, which the importer calls RootNode,
    stands for the engine's), its material's colour, and the model its triangles and bounds.
    (FBX materials are Phong: metallic and roughness are not kept as they were.)"""
    fbx = tmp_path / "engine.fbx"
    export_fbx(SAMPLE, fbx)
    out = tmp_path / "engine.glb"
    result = convert_file(fbx, out)
    source, after = load_model(SAMPLE), load_model(out)
    assert result.triangles == after.triangle_count == source.triangle_count and not result.warnings
    want, got = parents(source), parents(after)
    root = next(n.name for n in source.nodes if want[n.name] is None)
    for name, parent in want.items():
        if name != root:
            assert got.get(name) == (parent if parent != root else "RootNode"), name
    colours = {m.name: m.base_color for m in after.materials}
    for m in source.materials:
        assert colours[m.name] == pytest.approx(m.base_color, abs=1e-6), m.name
    for a, b in zip(world_bounds(out), world_bounds(SAMPLE), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


@needs_assimp
def test_an_fbx_with_embedded_textures_keeps_them(tmp_path: Path) -> None:
    """The Cesium milk truck written as FBX carries its textures inside (``*0``); converted,
    each textured material has its texture again, pixel for pixel in the PNG (read through
    ``host/_embedded_textures.py``: pyassimp and Debian's libassimp5), close in the BC1 copy
    the loader takes, and nothing is warned."""
    fbx = tmp_path / "truck.fbx"
    source = SHARED_MODELS / "CesiumMilkTruck.glb"
    export_fbx(source, fbx)  # its textures go into the FBX
    assert b"Content:" in fbx.read_bytes()
    result = convert_file(fbx, tmp_path / "truck.glb")
    before, after = load_model(source), load_model(tmp_path / "truck.glb")
    assert result.triangles == before.triangle_count
    assert not result.warnings, result.warnings
    textures = {m.name: m.base_color_texture.texture.pixels for m in before.materials
                if m.base_color_texture is not None}
    kept = {m.name: m.base_color_texture.texture.rgba() for m in after.materials
            if m.base_color_texture is not None}
    assert textures and kept.keys() == textures.keys(), (kept.keys(), textures.keys())
    for name, pixels in textures.items():
        assert psnr(kept[name][..., :3], pixels[..., :3]) > 35, name
    (_mime, fallback, dds), = written_textures(tmp_path / "truck.glb")
    assert dds is not None
    for pixels in textures.values():
        np.testing.assert_array_equal(png_pixels(fallback), pixels)


@needs_assimp
def test_an_fbx_naming_an_embedded_texture_it_does_not_hold_is_converted_with_a_warning(
        tmp_path: Path) -> None:
    """A material that names ``*7`` in a file with one embedded texture: the model converts
    without it, and the result says which texture was missing."""
    fbx = tmp_path / "box.fbx"
    export_fbx(SHARED_MODELS / "BoxTextured.glb", fbx)
    text = fbx.read_text()
    assert '"*0"' in text
    fbx.write_text(text.replace('"*0"', '"*7"'))
    result = convert_file(fbx, tmp_path / "box.glb")
    assert result.triangles == 12
    assert len(result.warnings) == 1 and "'*7', which the file does not hold" in result.warnings[0], \
        result.warnings
    assert all(m.base_color_texture is None for m in load_model(tmp_path / "box.glb").materials)


def write_textured_quad(folder: Path, texture_ref: str) -> None:
    """A 1 × 1 square whose material names ``texture_ref``; ``folder/checker.png`` is red
    above blue."""
    from PIL import Image

    pixels = np.zeros((8, 16, 3), np.uint8)
    pixels[:4] = (255, 0, 0)
    pixels[4:] = (0, 0, 255)
    Image.fromarray(pixels).save(folder / "checker.png")
    (folder / "quad.obj").write_text("mtllib quad.mtl\no Tile\nv 0 0 0\nv 1 0 0\nv 1 1 0\n"
                                     "v 0 1 0\nvt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\nvn 0 0 1\n"
                                     "usemtl painted\nf 1/1/1 2/2/1 3/3/1\nf 1/1/1 3/3/1 4/4/1\n")
    (folder / "quad.mtl").write_text(f"newmtl painted\nKd 1 1 1\nmap_Kd {texture_ref}\n")


def check_textured_quad(glb: Path) -> None:
    model = load_model(glb)
    (material,) = model.materials
    assert material.base_color_texture is not None, "the texture was not kept"
    pixels = material.base_color_texture.texture.pixels
    assert pixels.shape == (8, 16, 4)
    assert tuple(pixels[0, 0]) == (255, 0, 0, 255) and tuple(pixels[-1, 0]) == (0, 0, 255, 255)
    (prim,) = model.meshes[0].primitives
    bottom = prim.positions[:, 1] == 0  # the image's bottom row (blue) at the square's bottom
    assert prim.texcoords is not None and np.all(prim.texcoords[bottom, 1] == 1.0)


@pytest.mark.parametrize("texture_ref", ["checker.png", "C:\\Users\\artist\\maps\\checker.png"])
def test_an_objs_texture_file_is_kept(tmp_path: Path, texture_ref: str) -> None:
    """The image an OBJ's material names, beside it (or named by a path on the machine the
    model was made on), goes into the output, the right way up."""
    write_textured_quad(tmp_path, texture_ref)
    result = convert_file(tmp_path / "quad.obj", tmp_path / "quad.glb")
    assert not result.warnings
    check_textured_quad(tmp_path / "quad.glb")


@needs_assimp
def test_an_fbxs_texture_file_is_kept(tmp_path: Path) -> None:
    write_textured_quad(tmp_path, "checker.png")
    export_fbx(tmp_path / "quad.obj", tmp_path / "quad.fbx")
    (tmp_path / "quad.obj").unlink()
    result = convert_file(tmp_path / "quad.fbx", tmp_path / "quad.glb")
    assert not result.warnings
    check_textured_quad(tmp_path / "quad.glb")


def test_a_texture_outside_the_models_folder_is_not_read(tmp_path: Path) -> None:
    """``../`` in a material's image path: the converter reads nothing outside the input's
    folder (the image there is not used), says so, and converts the rest."""
    (tmp_path / "model").mkdir()
    write_textured_quad(tmp_path / "model", "../secret.png")
    (tmp_path / "model" / "checker.png").rename(tmp_path / "secret.png")
    result = convert_file(tmp_path / "model" / "quad.obj", tmp_path / "quad.glb")
    assert result.triangles == 2 and len(result.warnings) == 1
    assert "'../secret.png' is not in the folder of quad.obj" in result.warnings[0]
    assert load_model(tmp_path / "quad.glb").materials[0].base_color_texture is None


def test_a_texture_that_is_not_an_image_fails_the_conversion_clearly(tmp_path: Path) -> None:
    write_textured_quad(tmp_path, "checker.png")
    (tmp_path / "checker.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    with pytest.raises(ConversionError, match=r"the texture checker\.png is not an image"):
        convert_file(tmp_path / "quad.obj", tmp_path / "quad.glb")
    assert not (tmp_path / "quad.glb").exists()


def test_textures_are_written_losslessly_and_no_bigger_than_needed(tmp_path: Path) -> None:
    """PNG as RGBA only with transparency, RGB when opaque, a palette with at most 256 colours;
    each decodes to the same pixels. The milk truck's texture (136 colours) kept the converted
    file at its input's size (it had doubled as RGBA: 542 KB in, 946 KB out), but for the
    texture's block-compressed copy (2,048²: BC1 with its mips, 2.8 MB)."""
    import io

    from PIL import Image

    rng = np.random.default_rng(7)
    few = rng.choice(np.array([[10, 20, 30, 255], [200, 100, 0, 255], [0, 0, 0, 255]], np.uint8),
                     size=(64, 32))
    many = np.concatenate([rng.integers(0, 256, (64, 32, 3), dtype=np.uint8),
                           np.full((64, 32, 1), 255, np.uint8)], axis=2)
    see_through = many.copy()
    see_through[0, 0, 3] = 7
    for pixels, mode in ((few, "P"), (many, "RGB"), (see_through, "RGBA")):
        with Image.open(io.BytesIO(encode_png(pixels))) as img:
            assert img.mode == mode
            assert np.array_equal(np.asarray(img.convert("RGBA")), pixels)
    truck = SHARED_MODELS / "CesiumMilkTruck.glb"
    result = convert_file(truck, tmp_path / "truck.glb")
    written = written_textures(tmp_path / "truck.glb")
    dds_bytes = sum(len(dds) for _, _, dds in written if dds is not None)
    assert dds_bytes == 2_796_344  # 2,048² in BC1, 12 levels: 2 MB, and a third for the mips
    assert result.output_bytes - dds_bytes <= 1.05 * result.input_bytes, result
    before = load_model(truck)
    textures = [m.base_color_texture.texture.pixels for m in before.materials
                if m.base_color_texture is not None]
    assert textures and len(written) == 1  # two materials, one texture
    assert all(np.array_equal(png_pixels(written[0][1]), t) for t in textures)


def test_bad_inputs_fail_clearly_and_leave_nothing(tmp_path: Path) -> None:
    garbage = tmp_path / "broken.fbx"
    garbage.write_bytes(b"\x00garbage" * 64)
    with pytest.raises(ConversionError, match=r"broken\.fbx could not be read") as err:
        convert_file(garbage, tmp_path / "broken.glb")
    assert err.value.code == "InvalidInput"
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ConversionError, match=r"unsupported format \.txt"):
        convert_file(tmp_path / "notes.txt", tmp_path / "notes.glb")
    (tmp_path / "fake.glb").write_bytes(b"not a glb at all")
    with pytest.raises(ConversionError, match=r"fake\.glb: not a glTF file"):
        convert_file(tmp_path / "fake.glb", tmp_path / "fake_out.glb")
    (tmp_path / "parts.obj").write_text(OBJ)
    (tmp_path / "parts.mtl").write_text(MTL)
    with pytest.raises(ConversionError, match="over the budget") as err:
        convert_file(tmp_path / "parts.obj", tmp_path / "big.glb", Budgets(max_triangles=2))
    assert err.value.code == "LimitExceeded"
    with pytest.raises(ConversionError, match="over the 10-byte input budget"):
        convert_file(tmp_path / "parts.obj", tmp_path / "big.glb", Budgets(max_bytes=10))
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["broken.fbx", "fake.glb", "notes.txt", "parts.mtl", "parts.obj"], left


def test_the_child_process_reports_json(tmp_path: Path) -> None:
    (tmp_path / "quad.ply").write_text(PLY)
    ok = subprocess.run([sys.executable, "-m", "farview.host.convert", str(tmp_path / "quad.ply"),
                         str(tmp_path / "quad.glb")], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and json.loads(ok.stdout)["triangles"] == 2
    bad = subprocess.run([sys.executable, "-m", "farview.host.convert", str(tmp_path / "none.obj"),
                          str(tmp_path / "none.glb")], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert json.loads(bad.stderr.strip().splitlines()[-1])["code"] == "InvalidInput"
    # --progress: its steps on stderr, as the service and farview convert read them
    told = subprocess.run([*python_module(CONVERT_MODULE), "--progress", str(tmp_path / "quad.ply"),
                           str(tmp_path / "quad2.glb")], capture_output=True, text=True, timeout=60)
    assert told.returncode == 0, told.stderr
    steps = [parse_conversion_progress(line) for line in told.stderr.splitlines()]
    assert steps[0] == ("reading the input", 0.0) and steps[-1] == ("writing the file", 1.0)
    assert None not in steps, told.stderr
    for other in ('{"event": "conversion_progress", "step": "x", "fraction": 2}',
                  '{"event": "conversion_progress", "step": 3, "fraction": 0.5}',
                  '{"event": "conversion_progress"}', "[1]", "farview: 50 %", ""):
        assert parse_conversion_progress(other) is None, other


def test_farview_convert_command(tmp_path: Path) -> None:
    (tmp_path / "quad.ply").write_text(PLY)
    ok = subprocess.run([sys.executable, "-m", "farview", "convert", str(tmp_path / "quad.ply")],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "2 triangles" in ok.stdout and (tmp_path / "quad.glb").exists()
    assert ok.stderr.splitlines() == [  # (not a terminal: each step once, no percentages)
        "farview convert: reading the input", "farview convert: writing the meshes",
        "farview convert: making levels of detail", "farview convert: writing the file"]
    (tmp_path / "x.doc").write_text("minutes of the meeting")
    bad = subprocess.run([sys.executable, "-m", "farview", "convert", str(tmp_path / "x.doc")],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "unsupported format .doc" in bad.stderr
    missing = subprocess.run([sys.executable, "-m", "farview", "convert", str(tmp_path / "y.obj")],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and missing.stderr == (  # its path, not only its name
        f"farview convert: {tmp_path / 'y.obj'} does not exist; give the model file\n")
    # an output folder that does not exist: said before converting (it was a traceback, then
    # "the converter crashed reading it; the file is probably malformed")
    nowhere = subprocess.run([sys.executable, "-m", "farview", "convert", str(tmp_path / "quad.ply"),
                              "-o", str(tmp_path / "nodir" / "quad.glb")],
                             capture_output=True, text=True, timeout=60)
    assert nowhere.returncode == 1 and "Traceback" not in nowhere.stderr
    assert f"the output's folder {tmp_path / 'nodir'} does not exist" in nowhere.stderr
    with pytest.raises(ConversionError, match=r"cannot write the output quad\.glb: No such file"):
        convert_file(tmp_path / "quad.ply", tmp_path / "nodir" / "quad.glb")
    with pytest.raises(ConversionError, match=f"{tmp_path.name} is a folder; give the model file"):
        convert_file(tmp_path, tmp_path / "x.glb")
    helped = subprocess.run([sys.executable, "-m", "farview", "--help"], capture_output=True,
                            text=True, timeout=60)
    assert "convert" in helped.stdout


def test_farview_convert_refuses_its_input_as_output_bad_budgets_and_stops_with_its_child(
        tmp_path: Path) -> None:
    """Found by hand: ``-o`` naming the input overwrote it with the .glb; ``--max-triangles
    -5`` printed a traceback and "the converter crashed"; SIGTERM ended the command but not its
    converter, which wrote the output seconds later."""
    import os
    import signal
    import time

    import psutil

    obj = tmp_path / "grid.obj"
    obj.write_text(OBJ)
    before = obj.read_text()
    same = subprocess.run([sys.executable, "-m", "farview", "convert", str(obj), "-o", str(obj)],
                          capture_output=True, text=True, timeout=60)
    assert same.returncode == 2 and "is the input" in same.stderr and obj.read_text() == before
    for flag in ("--max-triangles", "--max-bytes"):
        bad = subprocess.run([sys.executable, "-m", "farview", "convert", str(obj), flag, "-5"],
                             capture_output=True, text=True, timeout=60)
        assert bad.returncode == 2 and "must be at least 1" in bad.stderr, bad.stderr
        assert "Traceback" not in bad.stderr
    # a conversion of some seconds, stopped with SIGTERM once its converter runs
    (tmp_path / "big.obj").write_text(grid_obj(500))
    out = tmp_path / "big.glb"
    proc = subprocess.Popen([sys.executable, "-m", "farview", "convert", str(tmp_path / "big.obj"),
                             "-o", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 60
    children: list[psutil.Process] = []
    while not children:
        assert time.monotonic() < deadline and proc.poll() is None, "no converter started"
        children = psutil.Process(proc.pid).children()
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "stopped; nothing was written" in err, err
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, "the converter outlived the command"
    assert not out.exists() and not list(tmp_path.glob(".big.glb*"))


# A face line that starts with "-": the Open Asset Import Library (assimp-py's, with
# farview's post-processing flags) dies of a bus error reading it (found by a throwaway fuzz).
CRASHING_PLY = (b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
                b"property float z\nelement face 2\nproperty list uchar int vertex_indices\n"
                b"end_header\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n- 0 1 2\n")


def test_an_importer_that_crashes_gives_farview_convert_a_message_and_leaves_nothing(
        tmp_path: Path) -> None:
    """``farview convert`` converts in a child process, as the service does: an importer
    that crashes on a hostile file takes the child down, not the command, which says what
    happened and leaves no output."""
    src = tmp_path / "hostile.ply"
    src.write_bytes(CRASHING_PLY)
    probe = subprocess.run([sys.executable, "-m", "farview.host.convert", str(src),
                            str(tmp_path / "probe.glb")], capture_output=True, text=True,
                           timeout=60)
    bad = subprocess.run([sys.executable, "-m", "farview", "convert", str(src)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr, bad.stderr
    if probe.returncode < 0:  # the importer crashed (the assimp-py this was found with)
        assert "hostile.ply: the converter crashed (signal SIG" in bad.stderr, bad.stderr
        assert "probably malformed" in bad.stderr
    else:  # an importer that reports the error instead
        assert probe.returncode == 1 and "hostile.ply" in bad.stderr, bad.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hostile.ply"]


def test_a_textured_big_mesh_gets_levels_with_texture_coordinates_ahead(
        tmp_path: Path, egl_context: Any) -> None:
    """A 125,000-triangle ball with a base colour texture, written and converted: its levels
    (MSFT_lod) carry TEXCOORD_0, load as 8-column rows, and the renderer draws them at once
    (nothing to simplify), textured like the full ball."""
    from benchmarks.bench_scale import sphere
    from farview.host.convert import write_glb
    from farview.host.gltf import Material, Mesh, Model, Node, Primitive, Texture, TextureInfo
    from farview.host.lod import LOD_REDUCTIONS
    from farview.host.renderer import Renderer
    from farview.host.scene import Scene
    from tests.host.test_renderer import frame, view

    pos, nrm, idx = sphere(250)
    uv = np.stack([np.arctan2(pos[:, 2], pos[:, 0]) / (2 * np.pi) + 0.5,
                   np.arccos(np.clip(pos[:, 1] / np.linalg.norm(pos, axis=1), -1, 1)) / np.pi],
                  axis=1).astype(np.float32)
    stripes = np.full((64, 64, 4), 255, np.uint8)
    stripes[:, :, :3] = (30, 60, 220)
    for k in range(0, 64, 16):
        stripes[:, k:k + 8, :3] = (230, 40, 30)
    material = Material("stripes", metallic=0.0, roughness=0.8,
                        base_color_texture=TextureInfo(Texture("stripes", stripes)))
    mesh = Mesh("ball", (Primitive(pos, nrm, idx, material, uv),))
    src, out = tmp_path / "ball.glb", tmp_path / "ball-converted.glb"
    src.write_bytes(write_glb(Model("ball", (Node(0, "ball", mesh=mesh),), (0,), (mesh,), (material,))))
    # the writer made the levels from the full mesh (with its texture coordinates); converting
    # that file keeps them
    assert [rows.shape[1] for rows, _ in load_model(src).meshes[0].primitives[0].lods] == [8] * 4
    convert_file(src, out)
    model = load_model(out)
    (prim,) = next(n for n in model.nodes if n.name == "ball").mesh.primitives
    assert len(prim.lods) == len(LOD_REDUCTIONS)
    assert all(rows.shape[1] == 8 for rows, _ in prim.lods)
    coarse_rows = prim.lods[-1][0]
    assert ((coarse_rows[:, 6:8] >= -0.01) & (coarse_rows[:, 6:8] <= 1.01)).all()
    scene = Scene()
    scene.add_model(model, "ball")
    r = Renderer(320, 240, lighting="vertex")
    try:
        eye = [view((0.0, 0.5, 2.8))]
        full = frame(r, scene, eye).astype(int)
        assert r.lod_pending == 0  # made ahead: nothing to simplify
        r.lod_budget_ms = 0.0
        for _ in range(len(LOD_REDUCTIONS) + 1):
            r.render(scene, eye, moving=True)
        assert r.lod_level == len(LOD_REDUCTIONS) and r.last_reduced
        coarse = r.read_rgba().astype(int)
        reds = [int((img[..., 0] > img[..., 2] + 40).sum()) for img in (full, coarse)]
        assert reds[0] > 500 and abs(reds[1] - reds[0]) < 0.05 * reds[0], reds
    finally:
        r.close()


def test_a_normal_mapped_vertex_coloured_big_mesh_gets_levels_with_every_attribute_ahead(
        tmp_path: Path, egl_context: Any) -> None:
    """A 125,000-triangle ball with vertex colours, a base colour texture and a normal map
    (tangents generated at load), converted: its levels carry TEXCOORD_0, COLOR_0 and unit
    TANGENTs with a ±1 handedness (16 floats a vertex), the renderer draws them at once
    (nothing to simplify in the background), and the coarsest looks like the full ball."""
    from benchmarks.bench_scale import sphere
    from farview.host.convert import write_glb
    from farview.host.gltf import Material, Mesh, Model, Node, Primitive, Texture, TextureInfo
    from farview.host.lod import LOD_REDUCTIONS
    from farview.host.renderer import Renderer
    from farview.host.scene import Scene
    from tests.host.test_renderer import frame, view

    pos, nrm, idx = sphere(250)
    uv = np.stack([np.arctan2(pos[:, 2], pos[:, 0]) / (2 * np.pi) + 0.5,
                   np.arccos(np.clip(pos[:, 1], -1, 1)) / np.pi], axis=1).astype(np.float32)
    colors = np.concatenate([np.where(pos[:, 1:2] > 0, [[0.9, 0.2, 0.1]], [[0.1, 0.3, 0.9]]),
                             np.ones((len(pos), 1))], axis=1).astype(np.float32)
    bumps = np.full((64, 64, 4), 255, np.uint8)
    bumps[:, :, :3] = (128, 128, 255)  # flat, tangent space
    bumps[:, ::8, 0] = 200  # tilted columns
    white = np.full((8, 8, 4), 255, np.uint8)
    material = Material("bumpy", metallic=0.0, roughness=0.7,
                        base_color_texture=TextureInfo(Texture("white", white)),
                        normal_texture=TextureInfo(Texture("bumps", bumps)))
    mesh = Mesh("ball", (Primitive(pos, nrm, idx, material, uv, colors=colors),))
    src, out = tmp_path / "ball.glb", tmp_path / "ball-converted.glb"
    src.write_bytes(write_glb(Model("ball", (Node(0, "ball", mesh=mesh),), (0,), (mesh,),
                                    (material,))))
    result = convert_file(src, out)
    again = convert_file(out, tmp_path / "again.glb")  # a converted file converted again
    for path in (out, tmp_path / "again.glb"):
        # the ball, and its four levels (the input's were written by write_glb too): the
        # input's level nodes and meshes are not written again beside the new ones
        blob = path.read_bytes()
        doc = json.loads(blob[20:20 + int.from_bytes(blob[12:16], "little")])
        assert len(doc["nodes"]) == len(doc["meshes"]) == 1 + len(LOD_REDUCTIONS)
        assert doc["scenes"][0]["nodes"] == [0]
    assert result.nodes == again.nodes == 1 and result.meshes == again.meshes == 1
    model = load_model(out)
    (prim,) = next(n for n in model.nodes if n.name == "ball").mesh.primitives
    assert prim.tangents is not None and prim.colors is not None
    assert [name for name, _ in prim.vertex_columns()] == [
        "POSITION", "NORMAL", "TEXCOORD_0", "COLOR_0", "TANGENT"]
    assert len(prim.lods) == len(LOD_REDUCTIONS)
    for rows, index in prim.lods:
        assert rows.shape[1] == 16 and int(index.max()) < len(rows)
        np.testing.assert_allclose(np.linalg.norm(rows[:, 12:15], axis=1), 1.0, atol=1e-4)
        assert set(np.unique(rows[:, 15]).tolist()) <= {-1.0, 1.0}
        assert ((rows[:, 8:12] >= 0.0) & (rows[:, 8:12] <= 1.0)).all()  # colours
    scene = Scene()
    scene.add_model(model, "ball")
    r = Renderer(320, 240, lighting="vertex")
    try:
        eye = [view((0.0, 0.2, 2.8))]
        full = frame(r, scene, eye).astype(int)
        assert r.lod_pending == 0  # made ahead, with every attribute: nothing to simplify
        (gpu,) = next(iter(r._meshes.values()))  # the ball's one primitive
        assert len(gpu.lods) == len(LOD_REDUCTIONS) and "NORMAL_TEX" in gpu.features
        # uploaded, the levels are not kept in the model too, nor are the level meshes
        assert prim.lods == () and len(model.meshes) == 1
        r.lod_budget_ms = 0.0
        for _ in range(len(LOD_REDUCTIONS) + 1):
            r.render(scene, eye, moving=True)
        assert r.lod_level == len(LOD_REDUCTIONS) and r.last_reduced
        coarse = r.read_rgba().astype(int)
        # the vertex colours' two halves kept away from the equator (which 1/256 of the
        # triangles blurs): rows 0-99 red, rows 160 on blue (row 0 at the top)
        (red, blue), (red2, blue2) = [(int((img[:100, :, 0] > img[:100, :, 2] + 40).sum()),
                                       int((img[160:, :, 2] > img[160:, :, 0] + 40).sum()))
                                      for img in (full, coarse)]
        assert red > 500 and blue > 500
        assert abs(red2 - red) < 0.05 * red and abs(blue2 - blue) < 0.05 * blue
        assert (5, 4) in gpu.layout  # its levels drawn with their tangents: the normal map
    finally:
        r.close()


def test_big_meshes_get_levels_of_detail_ahead(tmp_path: Path) -> None:
    """Conversion makes the renderer's levels of detail (MSFT_lod): the output draws coarser
    at once, counts only its full triangles, and keeps its bounds; a broken MSFT_lod is
    ignored, not refused."""
    from benchmarks.bench_scale import write_model
    from farview.host.lod import LOD_REDUCTIONS

    src, out = tmp_path / "parts.glb", tmp_path / "out.glb"
    write_model(src, 100_000, 2)  # two parts of about 50,000 triangles
    told: list[tuple[str, float]] = []
    convert_file(src, out, progress=lambda step, fraction: told.append((step, fraction)))
    # its progress: every step in order, each part's share as it is done, never going back
    assert [step for step, _ in told] == [
        "reading the input", "writing the meshes", "writing the meshes", "writing the meshes",
        "making levels of detail", "making levels of detail", "making levels of detail",
        "writing the file", "writing the file"], told
    fractions = [fraction for _, fraction in told]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    # (the meshes' step ends where the levels' begins; no textures, so no textures' step)
    assert 0.15 < fractions[2] < fractions[3] == fractions[4] < fractions[5] < fractions[6] < 1.0
    before, after = load_model(src), load_model(out)
    assert after.triangle_count == before.triangle_count
    doc = json.loads(out.read_bytes()[20:20 + int.from_bytes(out.read_bytes()[12:16], "little")])
    assert "MSFT_lod" in doc["extensionsUsed"] and "MSFT_lod" not in doc["extensionsRequired"]
    parts = [n for n in after.nodes if n.mesh is not None]
    assert [n.name for n in parts] == [n.name for n in before.nodes if n.mesh is not None]
    for node in parts:
        (prim,) = node.mesh.primitives
        counts = [len(index) // 3 for _, index in prim.lods]
        assert len(counts) == len(LOD_REDUCTIONS)
        assert prim.triangle_count > counts[0] > counts[1] > counts[2] > counts[3] > 0
        assert counts[0] < 0.3 * prim.triangle_count
        lo, hi = prim.positions.min(axis=0), prim.positions.max(axis=0)
        slack = 0.05 * (hi - lo)  # quadric decimation places vertices a little off the surface
        for interleaved, index in prim.lods:  # positions about the part's, unit normals
            assert interleaved.shape[1] == 6 and int(index.max()) < len(interleaved)
            assert (interleaved[:, :3] >= lo - slack).all()
            assert (interleaved[:, :3] <= hi + slack).all()
            np.testing.assert_allclose(np.linalg.norm(interleaved[:, 3:], axis=1), 1.0, atol=1e-3)
    lod_nodes = [n for n in after.nodes if n.name.endswith(("LOD 1", "LOD 2", "LOD 3", "LOD 4"))]
    assert len(lod_nodes) == 2 * len(LOD_REDUCTIONS) and all(n.mesh is None for n in lod_nodes)
    for a, b in zip(world_bounds(out), world_bounds(src), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    # the levels do not count against the triangle budget: it still fits exactly
    assert load_model(out, max_triangles=before.triangle_count).triangle_count == \
        before.triangle_count
    # a level whose mesh does not match its node's (here: two primitives for one) is ignored
    doc["meshes"][doc["nodes"][doc["nodes"][0]["extensions"]["MSFT_lod"]["ids"][0]]["mesh"]][
        "primitives"] *= 2
    from farview.host.gltf import pack_glb
    blob = out.read_bytes()
    json_len = int.from_bytes(blob[12:16], "little")
    broken = tmp_path / "broken.glb"
    broken.write_bytes(pack_glb(doc, blob[20 + json_len + 8:]))
    model = load_model(broken)
    first = next(n for n in model.nodes if n.mesh is not None)
    assert first.mesh.primitives[0].lods == ()
    assert model.triangle_count == before.triangle_count
    # a "level" as big as its mesh (a way round the triangle budget, which skips levels) too
    doc["meshes"][doc["nodes"][doc["nodes"][0]["extensions"]["MSFT_lod"]["ids"][0]]["mesh"]][
        "primitives"] = doc["meshes"][doc["nodes"][0]["mesh"]]["primitives"]
    broken.write_bytes(pack_glb(doc, blob[20 + json_len + 8:]))
    first = next(n for n in load_model(broken).nodes if n.mesh is not None)
    assert first.mesh.primitives[0].lods == ()
    # a last level no coarser than the one before (a simplifier that stalled, as at 311,000
    # triangles a part): the levels before it are used
    doc = json.loads(blob[20:20 + json_len])
    ids = doc["nodes"][0]["extensions"]["MSFT_lod"]["ids"]
    meshes = doc["meshes"]
    meshes[doc["nodes"][ids[-1]]["mesh"]]["primitives"] = meshes[doc["nodes"][ids[-2]]["mesh"]]["primitives"]
    broken.write_bytes(pack_glb(doc, blob[20 + json_len + 8:]))
    first = next(n for n in load_model(broken).nodes if n.mesh is not None)
    assert len(first.mesh.primitives[0].lods) == len(ids) - 1 == len(LOD_REDUCTIONS) - 1


@pytest.mark.parametrize("name", ["alpha_modes", "normal_map", "wrap_modes", "vertex_colors",
                                  "emissive", "texture_transform", "unlit", "quantized",
                                  "metal_rough_occlusion", "meshopt", "metal_mirror"])
def test_a_converted_gltf_draws_as_its_input(tmp_path: Path, egl_context: Any, name: str) -> None:
    """A conversion keeps what a glTF material draws with: every texture role (base colour,
    metallic-roughness, normal with its scale, occlusion with its strength, emissive), each on
    its texture coordinate set and with its KHR_texture_transform, vertex colours and tangents:
    the converted feature model is drawn as its input is (tests/host/feature_models.py)."""
    from farview.host.gltf import load_model_bytes
    from farview.host.renderer import Renderer
    from farview.host.scene import Scene
    from farview.input.pose import Fov, Pose, View
    from tests.host.feature_models import MODELS

    src = tmp_path / f"{name}.glb"
    src.write_bytes(MODELS[name]())
    out = tmp_path / f"{name}_converted.glb"
    convert_file(src, out)
    r = Renderer(320, 120, lighting="vertex")
    try:
        images = []
        for path in (src, out):
            scene = Scene()
            scene.add_model(load_model_bytes(path.read_bytes(), name=name), name)
            r.render(scene, [View(Pose((0.0, 0.0, 4.0), (0.0, 0.0, 0.0, 1.0)),
                                  Fov.symmetric(40.0, 320 / 120))])
            images.append(r.read_rgba()[:, :, :3].astype(np.int32))
    finally:
        r.close()
    before, after = images
    diff = np.abs(after - before).max(axis=2)
    assert (diff > 8).mean() < 0.002, f"{(diff > 8).sum()} pixels differ by more than 8"


def test_conversion_quantizes_normals_tangents_texture_coordinates_and_colours(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Normals and tangents are written as normalized 8-bit integers (KHR_mesh_quantization,
    required), texture coordinates within 0..1 and colours as normalized 16-bit ones, others
    and positions as floats; read back, each is within its step of the input's. (The feature
    models' parts are small, which keep float normals and views as they are: see the next
    test; here every part is taken as big.)"""
    from farview.host import convert
    from farview.host.gltf import load_model_bytes
    from tests.host.feature_models import MODELS

    monkeypatch.setattr(convert, "SMALL_VERTICES", 0)
    monkeypatch.setattr(convert, "SMALL_VIEW_BYTES", 0)
    for name in ("normal_map", "vertex_colors", "wrap_modes"):
        src, out = tmp_path / f"{name}.glb", tmp_path / f"{name}-out.glb"
        src.write_bytes(MODELS[name]())
        convert_file(src, out)
        blob = out.read_bytes()
        doc = json.loads(blob[20:20 + int.from_bytes(blob[12:16], "little")])
        before = load_model_bytes(src.read_bytes(), name=name)
        after = load_model_bytes(blob, name=name)
        types = {}
        for mesh in doc["meshes"]:
            for prim in mesh["primitives"]:
                for attribute, index in prim["attributes"].items():
                    acc = doc["accessors"][index]
                    types.setdefault(attribute, set()).add(
                        (acc["componentType"], acc.get("normalized", False)))
        assert types["POSITION"] == {(5126, False)}
        assert types["NORMAL"] == {(5120, True)}
        assert "KHR_mesh_quantization" in doc["extensionsRequired"]
        if "TANGENT" in types:
            assert types["TANGENT"] == {(5120, True)}
        if "COLOR_0" in types:
            assert types["COLOR_0"] == {(5123, True)}
        pairs = [(p, q) for m, n in zip(before.meshes, after.meshes, strict=True)
                 for p, q in zip(m.primitives, n.primitives, strict=True)]
        for p, q in pairs:
            # (the converter reorders vertices: compare as sorted rows of position + attribute)
            def rows(prim: Any, column: Any) -> np.ndarray:
                table = np.concatenate([prim.positions, column], axis=1)
                return table[np.lexsort(table[:, ::-1].T)]
            np.testing.assert_allclose(rows(q, q.normals), rows(p, p.normals), atol=0.02)
            if p.colors is not None:
                np.testing.assert_allclose(rows(q, q.colors), rows(p, p.colors), atol=1e-4)
            if p.texcoords is not None:
                inside = bool((p.texcoords >= 0).all() and (p.texcoords <= 1).all())
                assert types["TEXCOORD_0"] == {(5123, True)} if inside else {(5126, False)}
                np.testing.assert_allclose(rows(q, q.texcoords), rows(p, p.texcoords),
                                           atol=2e-5)


def test_small_parts_share_plain_views(tmp_path: Path) -> None:
    """A part of at most SMALL_VERTICES vertices keeps float positions and normals; arrays of
    at most SMALL_VIEW_BYTES are not compressed but written into one view for vertex rows and
    one for indices (the loader reads many small plain ones together: a converted file of
    20,000 different small parts loaded 2.5 times slower than its input with a compressed view
    each, and was bigger with a plain view each), as 16-bit indices, and parts with the same
    topology share one indices accessor; a file with no compressed view does not ask for
    EXT_meshopt_compression. Read back, every part has its own vertices and bounds."""
    from benchmarks.bench_scale import write_model
    from farview.host.convert import SMALL_VERTICES

    src, out = tmp_path / "parts.glb", tmp_path / "out.glb"
    write_model(src, 64 * 12, 64)  # 64 parts of 12 triangles, 7 sizes, one topology
    convert_file(src, out)
    blob = out.read_bytes()
    doc = json.loads(blob[20:20 + int.from_bytes(blob[12:16], "little")])
    assert "extensionsRequired" not in doc and len(doc["buffers"]) == 1
    views = doc["bufferViews"]
    assert len(views) == 2 and all("extensions" not in v for v in views)
    assert sorted(v.get("byteStride", 0) for v in views) == [0, 12]
    indices = set()
    for mesh in doc["meshes"]:
        for prim in mesh["primitives"]:
            for name in ("POSITION", "NORMAL"):
                acc = doc["accessors"][prim["attributes"][name]]
                assert acc["componentType"] == 5126 and acc["count"] <= SMALL_VERTICES
                assert "byteStride" in views[acc["bufferView"]]
            indices.add(prim["indices"])
            assert doc["accessors"][prim["indices"]]["componentType"] == 5123
    assert len(indices) == 1
    for a, b in zip(world_bounds(out), world_bounds(src), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    before, after = load_model(src), load_model(out)
    assert after.triangle_count == before.triangle_count
    meshes = {node.name: node.mesh for node in after.nodes if node.mesh is not None}
    assert len(meshes) == 64
    for node in before.nodes:
        if node.mesh is None:
            continue
        (p,), (q,) = node.mesh.primitives, meshes[node.name].primitives
        # the same triangles, as corner positions (the converter renumbers the vertices)
        corners = [np.sort(prim.positions[prim.indices.reshape(-1, 3)].reshape(-1, 9), axis=0)
                   for prim in (p, q)]
        np.testing.assert_array_equal(corners[1], corners[0])


def test_rgb_vertex_colours_are_padded_to_four_byte_rows() -> None:
    """Normalized 16-bit RGB colours would be 6-byte rows, against glTF's 4-byte alignment of
    vertex attributes (and meshopt's codec refuses them): rows are padded to 8 bytes, the
    accessor stays VEC3, compressed or small."""
    from farview.host.convert import _Writer

    w = _Writer()
    for n in (10, 1000):  # a small (plain) array and a compressed one
        acc = w.accessors[w.attribute("COLOR_0", np.full((n, 3), 0.5, np.float32))]
        assert acc["type"] == "VEC3" and acc["componentType"] == 5123
        assert w.views[acc["bufferView"]]["byteStride"] == 8


def test_texture_transforms_are_written_back_as_offset_rotation_and_scale() -> None:
    """The converter writes a texture-coordinate matrix back as KHR_texture_transform; read
    again, it is the same matrix, for turned, mirrored and shifted transforms."""
    from farview.host.convert import texture_transform
    from farview.host.gltf import _uv_transform

    rng = np.random.default_rng(3)
    for _ in range(200):
        spec = {"offset": rng.uniform(-2, 2, 2).tolist(), "rotation": float(rng.uniform(-4, 4)),
                "scale": (rng.uniform(0.1, 3, 2) * rng.choice([-1, 1], 2)).tolist()}
        m = _uv_transform(spec, "test")
        np.testing.assert_allclose(_uv_transform(texture_transform(m), "test"), m, atol=1e-9)


def test_a_jpeg_texture_is_written_as_it_came(tmp_path: Path) -> None:
    """A photo texture stays the JPEG it was: re-encoded losslessly as PNG it grew several
    times, and the converted file must not be bigger than its input. Read again, the pixels
    are the input's."""
    import io

    from PIL import Image

    from tests.host.conftest import textured_quad_glb

    rng = np.random.default_rng(11)
    y, x = np.mgrid[0:512, 0:512]
    photo = np.stack([128 + 100 * np.sin(x / 23.0 + i) * np.cos(y / 31.0 - i)
                      + rng.normal(0, 12, x.shape) for i in range(3)], axis=2)
    jpeg = io.BytesIO()
    Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8), "RGB").save(jpeg, "JPEG", quality=90)
    src = tmp_path / "photo.glb"
    src.write_bytes(textured_quad_glb(jpeg.getvalue(), mime="image/jpeg"))
    result = convert_file(src, tmp_path / "photo-converted.glb")
    png_size = len(encode_png(load_model(src).materials[0].base_color_texture.texture.pixels))
    assert png_size > 2 * len(jpeg.getvalue())  # what re-encoding would have cost
    (mime, fallback, dds), = written_textures(tmp_path / "photo-converted.glb")
    assert (mime, fallback) == ("image/jpeg", jpeg.getvalue())
    assert dds is not None  # 512²: big enough to get a block-compressed copy too
    assert result.output_bytes <= len(src.read_bytes()) + len(dds) + 4096, result
    before, after = (load_model(p).materials[0].base_color_texture.texture
                     for p in (src, tmp_path / "photo-converted.glb"))
    assert before.pixels is not None and after.compressed is not None
    assert psnr(after.rgba(), before.pixels) > 30
    assert before.encoded == ("image/jpeg", jpeg.getvalue())  # what the renderer may drop to


def test_copies_of_a_mesh_are_written_once(tmp_path: Path, egl_context: Any) -> None:
    """An assembly whose parts repeat the same vertex data (bench_scale's: 64 parts, 7 radii
    times 8 materials, 56 different) is written with each mesh once and every node pointing
    at it: names, places, bounds and triangles kept, the same picture drawn."""
    from benchmarks.bench_scale import write_model

    src = tmp_path / "parts.glb"
    write_model(src, 20_000, 64)
    out = tmp_path / "parts-converted.glb"
    result = convert_file(src, out)
    before, after = load_model(src), load_model(out)
    assert len(before.meshes) == 64 and result.meshes == len(after.meshes) == 56
    assert [n.name for n in after.nodes] == [n.name for n in before.nodes]
    assert after.triangle_count == before.triangle_count
    for a, b in zip(world_bounds(out), world_bounds(src), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert_same_picture(before, after, 22.0)


def assert_same_picture(before: Any, after: Any, radius: float) -> None:
    """Two loaded models of bench_scale's parts draw the same picture from an orbit of
    ``radius`` (and the parts are in it)."""
    from benchmarks.bench_scale import orbit
    from farview.host.renderer import BACKGROUND, Renderer
    from farview.host.scene import Scene

    r = Renderer(320, 180)
    try:
        images = []
        for model in (before, after):
            scene = Scene()
            scene.add_model(model, "parts")
            r.render(scene, [orbit(0.3, radius)], near=0.5, far=80.0)
            images.append(r.read_rgba().astype(int))
    finally:
        r.close()
    background = np.round(np.array(BACKGROUND[:3]) * 255)
    assert (np.abs(images[0][..., :3] - background).sum(axis=2) > 6).sum() > 2000  # parts seen
    assert (np.abs(images[0] - images[1]).max(axis=2) > 8).mean() < 0.002


def test_the_milk_truck_converted_with_its_texture_block_compressed_draws_as_it_did(
        tmp_path: Path, egl_context: Any) -> None:
    """The Cesium milk truck (made by others; a 2,048² texture) converted: its texture goes to
    GL as BC1 blocks, and the truck draws as the input does, give or take BC1's error."""
    import math

    from benchmarks.bench_scale import orbit
    from farview.host.renderer import Renderer
    from farview.host.scene import Scene

    truck = SHARED_MODELS / "CesiumMilkTruck.glb"
    out = tmp_path / "truck.glb"
    told: list[tuple[str, float]] = []
    convert_file(truck, out, progress=lambda step, fraction: told.append((step, fraction)))
    # its progress: the texture, 2,048² against 3,624 triangles, is most of the work
    textures = [fraction for step, fraction in told if step == "writing the textures"]
    assert textures and textures[-1] - textures[0] > 0.5, told
    r = Renderer(320, 180)
    try:
        images = []
        for path in (truck, out):
            model = load_model(path)
            textures = {m.base_color_texture.texture for m in model.materials
                        if m.base_color_texture is not None}
            assert all((t.compressed is not None) == (path == out) for t in textures)
            scene = Scene()
            root = scene.add_model(model, "truck")
            box = scene.world_bounds(root)
            assert box is not None
            radius = 0.8 * math.dist(box.min, box.max)
            r.render(scene, [orbit(0.4, radius)], near=0.05, far=4 * radius)
            images.append(r.read_rgba()[:, :, :3].astype(np.int32))
    finally:
        r.close()
    before, after = images
    assert (before != before[0, 0]).any(axis=2).mean() > 0.1  # the truck fills part of the view
    assert psnr(after, before) > 35
    diff = np.abs(after - before).max(axis=2)
    assert (diff > 24).mean() < 0.005, f"{(diff > 24).sum()} pixels differ by more than 24"


def test_nodes_given_as_matrices_are_written_as_translation_rotation_and_scale(
        tmp_path: Path) -> None:
    """The converter writes each node's transform as translation, rotation and scale (which a
    loader reads as it is; a matrix a part took 7 s to decompose at 100,000 parts, and made
    the file bigger): matrices given by the input included, turned, mirrored and scaled, each
    node's world matrix as before. A sheared matrix, which TRS cannot express, is kept."""
    import struct

    from farview.host import transforms
    from farview.host.gltf import pack_glb

    pos = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=np.float32)
    blob = pos.tobytes()
    turns = [((0.0, 0.0, 0.0, 1.0), (1.0, 1.0, 1.0)), ((1.0, 0.0, 0.0, 0.0), (2.0, 2.0, 2.0)),
             ((0.0, 1.0, 0.0, 0.0), (-1.0, 0.5, 3.0)), ((0.0, 0.0, 1.0, 0.0), (1.0, 1.0, 1.0)),
             ((0.2, -0.4, 0.1, 0.7), (0.3, 0.3, 0.3))]
    nodes: list[dict[str, Any]] = [
        {"name": f"m{i}", "mesh": 0,
         "matrix": transforms.compose((i * 1.5, 2.0, -i), q, s).T.reshape(-1).tolist()}
        for i, (q, s) in enumerate(turns)]
    nodes.append({"name": "trs", "mesh": 0, "translation": [1.0, 2.0, 3.0],
                  "rotation": [0.0, 0.6, 0.0, 0.8], "scale": [2.0, 1.0, 1.0]})
    nodes.append({"name": "sheared", "matrix": [1, 0, 0, 0, 0.5, 1, 0, 0, 0, 0, 1, 0, 4, 0, 0, 1]})
    doc = {"asset": {"version": "2.0"}, "scene": 0, "scenes": [{"nodes": list(range(len(nodes)))}],
           "nodes": nodes,
           "meshes": [{"name": "tri", "primitives": [{"attributes": {"POSITION": 0}}]}],
           "accessors": [{"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3",
                          "min": [0, 0, 0], "max": [1, 1, 0]}],
           "bufferViews": [{"buffer": 0, "byteOffset": 0, "byteLength": len(blob)}],
           "buffers": [{"byteLength": len(blob)}]}
    source, out = tmp_path / "matrices.glb", tmp_path / "out.glb"
    source.write_bytes(pack_glb(doc, blob))
    convert_file(source, out)
    data = out.read_bytes()
    written = {n["name"]: n for n in json.loads(data[20:20 + struct.unpack_from("<I", data, 12)[0]])
               ["nodes"]}
    for name in [f"m{i}" for i in range(len(turns))] + ["trs"]:
        assert "matrix" not in written[name], name
    assert "rotation" in written["m1"] and written["m2"]["scale"][0] < 0  # turned; mirrored
    assert "matrix" in written["sheared"]
    before, after = load_model(source), load_model(out)
    worlds_before, worlds_after = node_world_matrices(before), node_world_matrices(after)
    index_after = {n.name: n.index for n in after.nodes}
    for n in before.nodes:
        np.testing.assert_allclose(worlds_after[index_after[n.name]], worlds_before[n.index],
                                   atol=1e-6, err_msg=n.name)


def test_an_stl_files_root_is_named_after_the_file(tmp_path: Path) -> None:
    """The importer names an STL's root with a placeholder (``<STL_BINARY>``) or not at all
    (``node_0`` for an ASCII one): the converted root takes the file's name, as an OBJ's did."""
    import struct

    tri = [(0.0, 0.0, 1.0), (0.0, 0.0, 0.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0)]
    binary = b"\0" * 80 + struct.pack("<I", 1) + struct.pack("<12f", *[c for v in tri for c in v]) + b"\0\0"
    (tmp_path / "bracket.stl").write_bytes(binary)
    (tmp_path / "plate.stl").write_text(
        "solid \nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\nvertex 0 1 0\n"
        "endloop\nendfacet\nendsolid \n")
    for stem in ("bracket", "plate"):
        convert_file(tmp_path / f"{stem}.stl", tmp_path / f"{stem}.glb")
        model = load_model(tmp_path / f"{stem}.glb")
        assert model.nodes[model.roots[0]].name == stem, [n.name for n in model.nodes]
        assert model.triangle_count == 1


def test_a_binary_stl_cut_short_or_damaged_is_said_for_what_it_is(tmp_path: Path) -> None:
    """The importer said only "Failed to determine STL storage representation"; a binary
    STL's size is fixed by its header's count, and one that is not is cut short or damaged
    (one that starts with ``solid``, as some exporters' binary headers do, too)."""
    import struct

    tri = struct.pack("<12f", 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0) + b"\0\0"
    for header in (b"\0" * 80, b"solid exported by a CAD tool".ljust(80)):
        whole = header + struct.pack("<I", 3) + tri * 3
        (tmp_path / "bracket.stl").write_bytes(whole[:-30])
        with pytest.raises(ConversionError) as err:
            convert_file(tmp_path / "bracket.stl", tmp_path / "bracket.glb")
        assert err.value.code == "InvalidInput" and err.value.message == (
            "bracket.stl: its header declares 3 triangles (84 + 50 bytes each: 234 bytes), but "
            "it has 204 bytes: it is cut short or damaged; export it again")
        assert not (tmp_path / "bracket.glb").exists()
        (tmp_path / "bracket.stl").write_bytes(whole)
        assert convert_file(tmp_path / "bracket.stl", tmp_path / "bracket.glb").triangles == 3
        (tmp_path / "bracket.glb").unlink()
    # random bytes in its triangles: coordinates up to 2.7e35, read as they were
    damaged = b"\0" * 80 + struct.pack("<I", 1) + struct.pack("<12f", 0, 0, 1, 0, 0, 0, -2.7e35,
                                                           0, 0, 0, 1, 0) + b"\0\0"
    (tmp_path / "bracket.stl").write_bytes(damaged)
    with pytest.raises(ConversionError) as err:
        convert_file(tmp_path / "bracket.stl", tmp_path / "bracket.glb")
    assert err.value.message == (
        "bracket.stl: mesh 0 has a coordinate of -2.7e+35, past the ±1e+18 that any model's "
        "are within: its data is damaged; export it again")


def test_the_converter_child_takes_no_module_from_the_working_directory(tmp_path: Path) -> None:
    """Found by a security review: a ``resource.py`` in the folder the service (or ``farview
    convert``) ran in was imported by every converter child (``python -m`` puts the working
    directory first on the module path), as the service's user. Children now run with ``-P``."""
    marker = tmp_path / "ran"
    (tmp_path / "resource.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    done = subprocess.run([sys.executable, "-P", "-m", "farview", "convert",  # (-P: the parent too)
                           str(SHARED_MODELS / "Box.glb"), "-o", str(tmp_path / "out.glb")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert not marker.exists(), "the converter ran resource.py from its working directory"
