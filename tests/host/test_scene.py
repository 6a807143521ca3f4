from __future__ import annotations

import math

import numpy as np
import pytest

from farview.host.gltf import load_model
from farview.host.scene import Scene, SceneError, Tint
from tests.host.conftest import SAMPLE


def test_entities_ids_hierarchy_and_remove() -> None:
    scene = Scene()
    root = scene.add_model(load_model(SAMPLE), "Engine")
    names = {e.name: e for e in scene.entities()}
    assert root.parent is None and names["Cylinder_1"].parent is names["CylinderBank"]
    ids = [e.id for e in scene.entities()]
    assert len(ids) == len(set(ids))
    bank = names["CylinderBank"]
    n = len(scene)
    scene.remove(bank)
    assert len(scene) == n - 5 and not names["Cylinder_2"].alive
    with pytest.raises(SceneError, match=f"unknown entity id {bank.id}"):
        scene.get(bank.id)
    new = scene.create_entity("empty")
    assert new.id > max(ids)  # ids are never reused


def test_state_inheritance() -> None:
    scene = Scene()
    a = scene.create_entity("a")
    b = scene.create_entity("b", a)
    c = scene.create_entity("c", b)
    a.hidden = True
    a.tint = Tint((1.0, 0.0, 0.0), 0.5)
    b.hidden = False
    s = scene.resolved_state(c)
    assert s.hidden is False and s.tint == Tint((1.0, 0.0, 0.0), 0.5)
    c.tint = Tint((0.0, 0.0, 0.0), 0.0)  # explicit "no tint"
    assert scene.resolved_state(c).tint is None
    assert scene.resolved_state(a).hidden is True


def test_transforms_validate_and_world_matrix() -> None:
    scene = Scene()
    a = scene.create_entity("a", position=(1, 0, 0))
    b = scene.create_entity("b", a, position=(0, 2, 0))
    a.rotation = (0, 0, math.sin(math.pi / 4), math.cos(math.pi / 4))  # 90° about z
    np.testing.assert_allclose(scene.world_matrix(b)[:3, 3], [-1, 0, 0], atol=1e-12)
    with pytest.raises(SceneError, match="finite"):
        a.position = (float("nan"), 0, 0)
    with pytest.raises(SceneError, match="zero quaternion"):
        a.rotation = (0, 0, 0, 0)
    with pytest.raises(SceneError, match="own descendant"):
        scene.set_parent(a, b)
    scene.set_parent(b, None, keep_world=True)
    np.testing.assert_allclose(b.position, [-1, 0, 0], atol=1e-9)
