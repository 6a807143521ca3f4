"""ARR's material override file (``<stem>.MaterialOverrides.json`` beside the input, or the file
a settings file's ``material-override`` names; host/material_overrides.py): the schema's
checks, each key applied to real conversions, exact entries before patterns, and the info
file's count."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from farview.host.convert import ConversionError, convert_file
from farview.host.gltf import load_model
from farview.host.material_overrides import OverrideError, parse
from tests.conversion.test_conversion_settings import write_obj
from tests.conversion.test_convert import write_textured_quad


def overrides(folder: Path, entries: list[dict[str, Any]], stem: str = "parts") -> None:
    (folder / f"{stem}.MaterialOverrides.json").write_text(json.dumps(entries))


def materials(path: Path) -> dict[str, Any]:
    return {m.name: m for m in load_model(path).materials}


@pytest.mark.parametrize(("doc", "message"), [
    ({"name": "a"}, "must hold a JSON array"),
    (["a"], "entry 0 must be an object"),
    ([{"unlit": True}], "entry 0 needs a name"),
    ([{"name": "a", "colour": 1}], "unknown key 'colour'"),
    ([{"name": "a", "nameMatching": "glob"}], "nameMatching must be exact or regex"),
    ([{"name": "(", "nameMatching": "regex"}], "is not a regular expression"),
    ([{"name": "a", "unlit": 1}], "unlit must be true or false"),
    ([{"name": "a", "roughness": "0.5"}], "roughness must be a number"),
    ([{"name": "a", "albedoColor": {"r": 1, "g": 0}}], "needs r, g and b, or a alone"),
    ([{"name": "a", "albedoColor": {"x": 1}}], "albedoColor must be"),
    ([{"name": "a", "albedoColor": {"a": "half"}}], "albedoColor.a must be a number"),
    ([{"name": "a", "ignoreTextureMaps": ["GlowMap"]}], "ignoreTextureMaps must be a list"),
])
def test_an_entry_against_arrs_schema_is_named(doc: Any, message: str) -> None:
    with pytest.raises(OverrideError, match=message):
        parse(doc, "box.MaterialOverrides.json")


def test_values_outside_0_to_1_are_taken_to_the_nearest_end_and_said() -> None:
    """An albedoColor of 5 was written into the glTF as it was (baseColorFactor allows 0..1);
    roughness -1 became 0 without a word; an integer of 400 digits was a traceback."""
    parsed = parse([{"name": "a", "albedoColor": {"r": 5, "g": 0, "b": -3}, "roughness": -1,
                     "metalness": 0.5}], "box.MaterialOverrides.json")
    assert parsed.entries[0].changes["albedoColor"] == {"r": 1.0, "g": 0.0, "b": 0.0}
    assert parsed.entries[0].changes["roughness"] == 0.0
    assert parsed.warnings == (
        "box.MaterialOverrides.json entry 0 ('a'): roughness -1 is outside 0..1: taken as 0",
        "box.MaterialOverrides.json entry 0 ('a'): albedoColor.r 5 is outside 0..1: taken as 1",
        "box.MaterialOverrides.json entry 0 ('a'): albedoColor.b -3 is outside 0..1: taken as 0")
    with pytest.raises(OverrideError, match=r"entry 0 \('a'\): roughness must be a number of "
                       "ordinary size"):
        parse([{"name": "a", "roughness": int("1" + "0" * 400)}])


def test_a_pattern_that_backtracks_without_end_fails_in_time(tmp_path: Path) -> None:
    """``(a+)+$`` on a name of 34 a's and a ``!`` held the converter at full CPU with no end
    (Python's ``re`` has no time limit; the pinned ``regex`` package does, and matches that
    pattern at once: ``(a|aa)+$`` still backtracks in it)."""
    import time

    src = write_obj(tmp_path)
    name = "a" * 34 + "!"
    (tmp_path / "parts.mtl").write_text((tmp_path / "parts.mtl").read_text().replace("red", name))
    src.write_text(src.read_text().replace("usemtl red", f"usemtl {name}"))
    overrides(tmp_path, [{"name": "(a+)+$", "nameMatching": "regex", "roughness": 0.2},
                         {"name": "(a|aa)+$", "nameMatching": "regex", "roughness": 0.1}])
    started = time.monotonic()
    with pytest.raises(ConversionError) as err:
        convert_file(src, tmp_path / "out.glb")
    assert time.monotonic() - started < 60  # (it ran without end; the limit is 0.25 s)
    assert err.value.code == "InvalidInput" and err.value.message.startswith(
        "parts.MaterialOverrides.json entry 1: the pattern '(a|aa)+$' took over 0.25 s on the "
        f"material '{name}' (it backtracks without end)")
    assert not (tmp_path / "out.glb").exists()
    overrides(tmp_path, [{"name": "a+!", "nameMatching": "regex", "roughness": 0.1}])
    convert_file(src, tmp_path / "out.glb")  # an ordinary pattern on the same name
    assert materials(tmp_path / "out.glb")[name].roughness == pytest.approx(0.1)


def test_overrides_are_applied_by_name_and_pattern(tmp_path: Path) -> None:
    src = write_obj(tmp_path)
    overrides(tmp_path, [
        {"name": "red", "albedoColor": {"r": 0.0, "g": 0.0, "b": 1.0}, "roughness": 0.2,
         "metalness": 0.7, "isDoubleSided": True},
        {"name": "gl.*", "nameMatching": "regex", "unlit": True, "alphaClipEnabled": True,
         "alphaClipThreshold": 0.3},
        {"name": "absent", "unlit": True},
        {"name": "Gl.*", "nameMatching": "regex", "unlit": True}])  # (a pattern's typo)
    result = convert_file(src, tmp_path / "out.glb", info=True)
    assert result.warnings == ("parts.MaterialOverrides.json: no material is named 'absent'",
                               "parts.MaterialOverrides.json: the pattern 'Gl.*' matches no "
                               "material")
    mats = materials(tmp_path / "out.glb")
    red, glass = mats["red"], mats["glass"]
    assert red.base_color == pytest.approx((0.0, 0.0, 1.0, 1.0))  # alpha kept
    assert (red.roughness, red.metallic, red.double_sided) == pytest.approx((0.2, 0.7, True))
    assert not red.unlit
    assert glass.unlit and glass.alpha_mode == "MASK" and glass.alpha_cutoff == pytest.approx(0.3)
    assert glass.base_color[3] == pytest.approx(0.4)  # untouched
    info = json.loads((tmp_path / "out.info.json").read_text())
    assert info["materialOverrides"] == {"numOverrides": 4, "numOverriddenMaterials": 2}


def test_an_exact_entry_comes_before_a_pattern(tmp_path: Path) -> None:
    src = write_obj(tmp_path)
    overrides(tmp_path, [{"name": ".*", "nameMatching": "regex", "unlit": True},
                         {"name": "red", "roughness": 0.1}])
    convert_file(src, tmp_path / "out.glb")
    mats = materials(tmp_path / "out.glb")
    assert mats["red"].roughness == pytest.approx(0.1) and not mats["red"].unlit
    assert mats["glass"].unlit
    # transparency and the alpha alone
    overrides(tmp_path, [{"name": "glass", "transparent": False, "albedoColor": {"a": 0.5}}])
    convert_file(src, tmp_path / "out.glb")
    glass = materials(tmp_path / "out.glb")["glass"]
    assert glass.alpha_mode == "OPAQUE" and glass.base_color[3] == pytest.approx(0.5)


def test_the_settings_name_the_override_file_and_it_must_be_there(tmp_path: Path) -> None:
    src = write_obj(tmp_path, {"material-override": "mats/box_materials.json"})
    (tmp_path / "mats").mkdir()
    (tmp_path / "mats" / "box_materials.json").write_text(
        json.dumps([{"name": "red", "unlit": True}]))
    overrides(tmp_path, [{"name": "red", "roughness": 0.9}])  # not read: the named one is
    result = convert_file(src, tmp_path / "out.glb")
    assert result.warnings == ()
    red = materials(tmp_path / "out.glb")["red"]
    assert red.unlit and red.roughness != pytest.approx(0.9)
    for named, message in (("missing.json", "names missing.json, which is not beside"),
                           ("../outside.json", "must name a file in the input's folder")):
        (tmp_path / "parts.ConversionSettings.json").write_text(
            json.dumps({"material-override": named}))
        with pytest.raises(ConversionError, match=message) as err:
            convert_file(src, tmp_path / "bad.glb")
        assert err.value.code == "InvalidInput"
    assert not (tmp_path / "bad.glb").exists()


def test_ignored_texture_maps_and_vertex_colours_are_dropped(tmp_path: Path) -> None:
    from tests.host.feature_models import MODELS

    write_textured_quad(tmp_path, "checker.png")
    overrides(tmp_path, [{"name": "painted", "ignoreTextureMaps": ["AlbedoMap"]}], "quad")
    convert_file(tmp_path / "quad.obj", tmp_path / "quad.glb")
    assert materials(tmp_path / "quad.glb")["painted"].base_color_texture is None
    src = tmp_path / "vc.glb"
    src.write_bytes(MODELS["vertex_colors"]())
    overrides(tmp_path, [{"name": "vc", "useVertexColor": False}], "vc")
    convert_file(src, tmp_path / "vc-out.glb")
    model = load_model(tmp_path / "vc-out.glb")
    colours = {p.material.name: p.colors is not None
               for m in model.meshes for p in m.primitives}
    assert colours == {"vc": False, "vc_tex": True}


def test_an_invalid_override_file_fails_the_conversion(tmp_path: Path) -> None:
    src = write_obj(tmp_path)
    overrides(tmp_path, [{"name": "red", "shininess": 3}])
    with pytest.raises(ConversionError, match=r"parts\.MaterialOverrides\.json entry 0: unknown"):
        convert_file(src, tmp_path / "out.glb")
    assert not (tmp_path / "out.glb").exists()
