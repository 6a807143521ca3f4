"""JSON vectors for the scene API's wire types (farview.input.scene), which host and client
share: committed dicts round-trip exactly, and malformed ones fail with their exact message."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from farview.input.errors import ProtocolError
from farview.input.scene import (
    Bounds,
    CameraOverride,
    CutPlane,
    CutPlaneInfo,
    EntityInfo,
    EntityNode,
    Lighting,
    LoadedModel,
    MaterialOverride,
    RayHit,
    Tint,
)

VECTORS: dict[str, Any] = json.loads((Path(__file__).parent / "vectors" / "scene.json").read_text())
TYPES: dict[str, Any] = {
    "entity_info": EntityInfo, "entity_tree": EntityNode, "ray_hit": RayHit,
    "loaded_model": LoadedModel, "cut_plane_info": CutPlaneInfo, "camera_override": CameraOverride,
    "camera_default": CameraOverride, "lighting": Lighting, "bounds": Bounds, "tint": Tint,
    "material_override": MaterialOverride,
}


@pytest.mark.parametrize("name", [k for k in VECTORS if k != "malformed"])
def test_vectors_round_trip(name: str) -> None:
    value = TYPES[name].from_wire(VECTORS[name])
    assert value.to_wire() == VECTORS[name]
    assert json.loads(json.dumps(value.to_wire(), allow_nan=False)) == VECTORS[name]


@pytest.mark.parametrize(("name", "wire", "message"), VECTORS["malformed"])
def test_malformed_dicts_fail_with_their_exact_message(name: str, wire: Any, message: str) -> None:
    with pytest.raises(ProtocolError) as info:
        TYPES[name].from_wire(wire)
    assert str(info.value) == message


def test_values_validate_at_construction() -> None:
    assert CutPlane((0, 0, 2), (1, 2, 3)).normal == (0.0, 0.0, 1.0)
    assert CutPlane((1, 0, 0), (0.5, 0, 0)).cuts((1.0, 0.0, 0.0))
    with pytest.raises(ProtocolError, match=r"tint weight must be in 0\.\.1"):
        Tint((0, 0, 0), 2.0)
    with pytest.raises(ProtocolError, match="unknown lighting settings: sun"):
        Lighting().replace({"sun": 1})
    assert Lighting().replace({"ambient": 0.5}).ambient == 0.5
    assert Bounds.union([Bounds((0, 0, 0), (1, 1, 1)), Bounds((-1, 0, 0), (0, 2, 0))]) == \
        Bounds((-1, 0, 0), (1, 2, 1))
    assert Bounds.union([]) is None
    info = EntityInfo.from_wire(VECTORS["entity_info"])
    assert info.tint == Tint((1.0, 0.5, 0.0), 0.5) and info.children == (8, 9)


def test_a_deep_tree_crosses_the_wire_without_recursion() -> None:
    wire: dict[str, Any] = {"id": 0, "name": "n0", "children": []}
    node = wire
    for i in range(1, 5000):
        child: dict[str, Any] = {"id": i, "name": f"n{i}", "children": []}
        node["children"].append(child)
        node = child
    tree = EntityNode.from_wire(wire)
    assert [n.id for n in tree.walk()] == list(range(5000))
    back, ids = tree.to_wire(), []
    while True:  # walked by hand: comparing 5,000-deep dicts with == would itself recurse
        ids.append(back["id"])
        if not back["children"]:
            break
        (back,) = back["children"]
    assert ids == list(range(5000))


def test_material_override_wire() -> None:
    from farview.input.scene import MaterialOverride

    edit = MaterialOverride.from_wire({"color": [0, 0.5, 1], "roughness": 0.25, "unlit": True})
    assert edit.to_wire() == {"color": [0.0, 0.5, 1.0], "roughness": 0.25, "unlit": True}
    assert MaterialOverride.from_wire({}).empty and not edit.empty
    for wire, message in (({"shiny": 1}, "unknown material fields: shiny"),
                          ({"color": [2, 0, 0]}, "material colour components must be in 0..1"),
                          ({"metallic": -1}, "material metallic"),
                          ({"emissive": [0, 0, 1000]}, "0..100"),
                          ({"unlit": "yes"}, "material unlit must be true, false or null"),
                          ([1, 2], "material must be an object")):
        with pytest.raises(ProtocolError, match=message):
            MaterialOverride.from_wire(wire)


def test_vec_fast_path_keeps_the_checks() -> None:
    """Plain float tuples take a fast path (scenes of 100,000 parts check millions); it must
    refuse what the full check refuses and pass what it passes."""
    from farview.input.scene import vec

    assert vec("v", (1.0, 2.0, 3.0), 3) == (1.0, 2.0, 3.0)
    assert vec("v", (1e308, 1e308, 1.0), 3, limit=math.inf) == (1e308, 1e308, 1.0)  # slow path
    for big in ((3.5e38, 0.0, 0.0), (0.0, -1e39, 0.0), (1e308, 1e308, 1.0)):  # past 32-bit floats
        with pytest.raises(ProtocolError, match=r"within ±3.4e38 \(32-bit floats\)"):
            vec("v", big, 3)
    assert vec("v", (3.4e38, -3.4e38, 0.0), 3) == (3.4e38, -3.4e38, 0.0)
    for bad in ((1.0, float("inf"), 0.0), (float("nan"), 0.0, 0.0), (1.0, 2.0), (1.0, 2.0, 3.0, 4.0)):
        with pytest.raises(ProtocolError, match="finite numbers"):
            vec("v", bad, 3)


def test_unit_quat_keeps_a_unit_tuple_and_normalises_others() -> None:
    """A quaternion already of length 1 comes back as the same tuple (entities of big models
    share their node's); others are normalised; zero and non-finite ones are refused."""
    from farview.input.scene import unit_quat

    q = (0.0, 0.0, 0.0, 1.0)
    assert unit_quat("rotation", q) is q
    assert unit_quat("rotation", [0, 0, 0, 2]) == (0.0, 0.0, 0.0, 1.0)
    half = unit_quat("rotation", (1.0, 1.0, 1.0, 1.0))
    assert half == (0.5, 0.5, 0.5, 0.5)
    for bad, message in (((0.0, 0.0, 0.0, 0.0), "zero quaternion"),
                         ((0.0, 0.0, math.inf, 1.0), "finite"), ((0.0, 1.0), "4")):
        with pytest.raises(ProtocolError, match=message):
            unit_quat("rotation", bad)
