from __future__ import annotations

import math

import numpy as np
import pytest

from farview.host import transforms
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


def test_the_local_matrix_follows_every_transform_change_and_bounds_match_per_vertex() -> None:
    scene = Scene()
    root = scene.add_model(load_model(SAMPLE), "Engine")
    part = next(e for e in scene.entities() if e.mesh is not None)
    first = part.local_matrix()
    before = scene.world_bounds(root)
    part.position = (part.position[0] + 5.0, part.position[1], part.position[2])
    assert part.local_matrix()[0, 3] == pytest.approx(first[0, 3] + 5.0)
    part.rotation = (0.0, 0.7071068, 0.0, 0.7071068)
    part.scale = (2.0, 2.0, 2.0)
    m = part.local_matrix()
    np.testing.assert_allclose(m[:3, :3], [[0, 0, 2], [0, 2, 0], [-2, 0, 0]], atol=1e-6)
    # the chunked bounds are those of every vertex transformed one part at a time
    lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
    for item in scene.draw_list():
        for prim in item.mesh.primitives:
            pts = prim.positions.astype(np.float64) @ item.world[:3, :3].T + item.world[:3, 3]
            lo, hi = np.minimum(lo, pts.min(axis=0)), np.maximum(hi, pts.max(axis=0))
    after = scene.world_bounds(root)
    assert after is not None and before is not None and after != before
    np.testing.assert_allclose(after.min, lo, rtol=1e-9)
    np.testing.assert_allclose(after.max, hi, rtol=1e-9)


def test_compose_many_is_compose_element_for_element() -> None:
    rng = np.random.default_rng(7)
    n = 300
    t, r, s = rng.normal(size=(n, 3)), rng.normal(size=(n, 4)), rng.uniform(0.1, 3, (n, 3))
    r[::3], s[::3] = (0.0, 0.0, 0.0, 1.0), 1.0  # only moved: the identity's rotation
    s[1::5] = 1.0  # rotated, unit scale
    r[2::7] = (-0.0, 0.0, 0.0, 1.0)  # scaled only
    many = transforms.compose_many(t, r, s)
    one = np.stack([transforms.compose(tuple(a), tuple(b), tuple(c))
                    for a, b, c in zip(t, r, s, strict=True)])
    assert np.array_equal(many, one)
    assert transforms.compose_many(np.zeros((0, 3)), np.zeros((0, 4)), np.zeros((0, 3))).shape \
        == (0, 4, 4)


def test_the_draw_lists_world_matrices_are_each_entitys_through_a_deep_tree() -> None:
    """The draw list makes every world matrix at once (one product a level of the tree):
    each must be the product of the entity's and its ancestors' local matrices, also where
    parents are rotated and scaled, an entity without a mesh sits between, and roots come
    from several models; the matrices are read-only."""
    rng = np.random.default_rng(3)
    scene = Scene()
    model = load_model(SAMPLE)
    roots = [scene.add_model(model, "a"), scene.add_model(model, "b")]
    chain = scene.create_entity("chain", roots[1])
    for _ in range(6):  # a chain deeper than the model's, holding a model at its end
        chain = scene.create_entity("link", chain)
    scene.add_model(model, "deep", chain)
    for e in scene.entities():
        q = rng.normal(size=4)
        e.rotation = tuple(q / np.linalg.norm(q))
        e.scale = tuple(rng.uniform(0.5, 2.0, 3))
        e.position = tuple(rng.normal(size=3))
    items = scene.draw_list()
    assert len(items) == 3 * sum(1 for n in model.nodes if n.mesh is not None)
    for it in items:
        expected = np.eye(4)
        e = it.entity
        while e is not None:
            expected = e.local_matrix() @ expected
            e = e.parent
        np.testing.assert_allclose(it.world, expected, rtol=1e-9, atol=1e-9)
        assert not it.world.flags.writeable
    assert [it.entity.id for it in items] == [it.entity.id for it in scene.draw_list()]


def test_a_chain_of_many_levels_gets_each_links_world_matrix() -> None:
    """A deep chain (each entity the child of the one before, as a hostile or odd file may
    nest its nodes): the world matrices are made level by level, each from its parent's."""
    scene = Scene()
    model = load_model(SAMPLE)
    link = scene.create_entity("top", position=(0.0, 0.0, 1.0))
    for i in range(3000):
        link = scene.create_entity(f"link {i}", link, position=(1.0, 0.0, 0.0),
                                   scale=(1.0, 1.0, 1.0) if i % 1000 else (1.0, 2.0, 1.0))
    deepest = scene.add_model(model, "deep", link)
    items = scene.draw_list()
    for it in items:
        np.testing.assert_allclose(it.world, scene.world_matrix(it.entity), rtol=1e-12)
    assert all(scene.world_matrix(deepest)[:3, 3] == (3000.0, 0.0, 1.0))


def test_a_leafs_first_child_is_its_own() -> None:
    """Entities without children share one empty sequence until they get one: a child given
    to one leaf must not appear under any other."""
    scene = Scene()
    a, b = scene.create_entity("a"), scene.create_entity("b")
    c = scene.create_entity("c", a)
    assert a.children == (c,) and b.children == ()
    d = scene.create_entity("d", b)
    assert a.children == (c,) and b.children == (d,) and c.children == ()
    scene.set_parent(c, b)
    assert a.children == () and b.children == (d, c)
    scene.remove(d)
    assert b.children == (c,)


def test_draw_list_keeps_world_matrices_only_across_state_changes() -> None:
    scene = Scene()
    root = scene.add_model(load_model(SAMPLE), "Engine")
    part = next(e for e in scene.entities() if e.mesh is not None and e.parent is not root)
    holder = part.parent
    assert holder is not None

    def item() -> tuple[np.ndarray, object]:
        found = [it for it in scene.draw_list() if it.entity is part]
        assert len(found) == 1
        return found[0].world, found[0].state

    world, _ = item()
    assert world.base is not None
    part.selected = True
    holder.tint = Tint((0.0, 1.0, 0.0), 1.0)
    again, state = item()
    # kept (a row of the same array), and nobody may change it
    assert again.base is world.base and not again.flags.writeable
    assert np.array_equal(again, world)
    assert state.selected and state.tint == Tint((0.0, 1.0, 0.0), 1.0)
    holder.position = (holder.position[0] + 2.0, *holder.position[1:])
    moved, _ = item()
    assert moved.base is not world.base  # a transform change: all made again
    np.testing.assert_allclose(moved, scene.world_matrix(part))
    assert not np.allclose(moved[:3, 3], world[:3, 3])
    scene.set_parent(part, root)  # a structure change: computed again
    reparented, _ = item()
    np.testing.assert_allclose(reparented, scene.world_matrix(part))


def test_draw_items_changed_lists_the_subtrees_of_state_changes_only() -> None:
    """What a state change reaches: the draw items under each entity whose overrides were set
    (with the state draw_list resolves), nothing else; None whenever something other than a
    state changed, or too many states did."""
    from farview.host.scene import STATE_LOG_MAX

    scene = Scene()
    root = scene.add_model(load_model(SAMPLE), "Engine")
    assert scene.draw_items_changed(scene.state_mark()) is None  # no draw list made yet
    scene.draw_list()
    mark = scene.state_mark()
    assert scene.draw_items_changed(mark) == []
    holder = next(e for e in scene.entities()
                  if e.mesh is None and len(e.children) > 1 and e.parent is not None
                  and e.parent is not root)
    under = {e.id for e in scene.entities() if e.mesh is not None
             and any(a is holder for a in _ancestors(e))}
    assert len(under) > 1
    leaf = next(e for e in scene.entities() if e.mesh is not None and e.id not in under)
    holder.tint = Tint((0.0, 1.0, 0.0), 1.0)
    leaf.hidden = True
    next(iter(holder.children)).selected = True  # inside the holder's subtree: listed once
    changed = scene.draw_items_changed(mark)
    assert changed is not None
    assert sorted(it.entity.id for it in changed) == sorted(under | {leaf.id})
    full = {it.entity.id: it for it in scene.draw_list()}
    for it in changed:
        assert it.state == full[it.entity.id].state
        was = full[it.entity.id]
        assert it.worlds is was.worlds and it.row == was.row  # the matrix kept, not made again
    assert all(it.state.tint == Tint((0.0, 1.0, 0.0), 1.0) for it in changed
               if it.entity.id in under)
    later = scene.state_mark()
    assert scene.draw_items_changed(later) == []
    root.tint = Tint((1.0, 0.0, 0.0), 1.0)  # the root reaches every part
    assert len(scene.draw_items_changed(later) or []) == len(full)
    leaf.position = (1.0, 2.0, 3.0)  # not a state: the caller must take the whole list
    assert scene.draw_items_changed(later) is None
    scene.draw_list()
    mark = scene.state_mark()
    for i in range(STATE_LOG_MAX + 1):
        leaf.hidden = bool(i % 2)
    assert scene.draw_items_changed(mark) is None  # more than the log holds


def _ancestors(e):  # type: ignore[no-untyped-def]
    a = e.parent
    while a is not None:
        yield a
        a = a.parent


def test_a_kept_draw_list_follows_every_change() -> None:
    """draw_list keeps its list and re-makes only what state changes reach: through a random
    run of state, transform and structure changes it must equal a list made from scratch."""
    rng = np.random.default_rng(5)
    scene = Scene()
    root = scene.add_model(load_model(SAMPLE), "Engine")
    entities = list(scene.entities())
    for step in range(200):
        e = entities[int(rng.integers(len(entities)))]
        if not e.alive:
            continue
        what = int(rng.integers(7))
        if what == 0:
            e.hidden = [None, True, False][int(rng.integers(3))]
        elif what == 1:
            e.tint = None if rng.random() < 0.5 else Tint(tuple(rng.random(3)), 1.0)
        elif what == 2:
            e.selected = bool(rng.random() < 0.5)
        elif what == 3:
            e.collision_disabled = bool(rng.random() < 0.5)
        elif what == 4 and step % 5 == 0:
            e.position = tuple(rng.normal(size=3))
        elif what == 5 and step % 40 == 0 and e is not root:
            scene.set_parent(e, root)
        kept = scene.draw_list()
        scene._draw_cache = None
        fresh = scene.draw_list()
        assert [it.entity.id for it in kept] == [it.entity.id for it in fresh], step
        assert [it.state for it in kept] == [it.state for it in fresh], step
        assert all(np.array_equal(a.world, b.world) for a, b in zip(kept, fresh, strict=True))


def test_the_place_index_spans_only_the_live_ids() -> None:
    """Entity ids are never reused: the draw list's id → place index covers the live ids
    only (a session that loads and unloads models would otherwise grow it with every load)."""
    from farview.host.scene import PlaceIndex

    scene = Scene()
    first = scene.add_model(load_model(SAMPLE), "one")
    scene.add_model(load_model(SAMPLE), "two")
    scene.remove(first)
    items = scene.draw_list()
    index = PlaceIndex(items)
    ids = [it.entity.id for it in items]
    assert len(index.places) == max(ids) - min(ids) + 1 < max(ids)
    assert [index[i] for i in ids] == list(range(len(items)))
    assert index[min(ids) - 1] == -1 and index[max(ids) + 1] == -1 and index[0] == -1
    assert len(PlaceIndex([]).places) == 0 and PlaceIndex([])[5] == -1


def test_nodes_given_as_matrices_become_the_same_entities_decomposed_together() -> None:
    """A model's matrix nodes are decomposed together (one at a time took 7 s for 100,000
    parts): each entity's position, rotation and scale are those :func:`transforms.decompose`
    gives for its node alone, its world matrix is the file's, every branch of the quaternion
    formula is taken, and an unrotated, unscaled part shares the default tuples."""
    import json

    from farview.host.gltf import Node, load_model_bytes

    rng = np.random.default_rng(7)
    rotations = [(0.0, 0.0, 0.0, 1.0), (1.0, 0.0, 0.0, 0.0), (0.0, 1.0, 0.0, 0.0),
                 (0.0, 0.0, 1.0, 0.0)]  # (the trace's and each diagonal's branch)
    rotations += [tuple(q / np.linalg.norm(q)) for q in rng.normal(size=(200, 4))]
    matrices = []
    for i, q in enumerate(rotations):
        scale = (1.0, 1.0, 1.0) if i < 4 else tuple(rng.uniform(0.1, 3.0, size=3))
        if i % 5 == 4:
            scale = (-scale[0], scale[1], scale[2])  # mirrored
        matrices.append(transforms.compose(tuple(rng.normal(size=3) * 50), q, scale))
    matrices.append(transforms.compose((1.0, 2.0, 3.0), (0.0, 0.0, 0.0, 1.0), (1.0, 0.0, 1.0)))
    doc = {"asset": {"version": "2.0"}, "scene": 0,
           "scenes": [{"nodes": list(range(len(matrices)))}],
           "nodes": [{"name": f"n{i}", "matrix": m.T.reshape(-1).tolist()}
                     for i, m in enumerate(matrices)]}
    scene = Scene()
    root = scene.add_model(load_model_bytes(json.dumps(doc).encode()), "m")
    assert len(root.children) == len(matrices)
    for e, m in zip(root.children, matrices, strict=True):
        t, r, s, _ = transforms.decompose(m)
        assert np.allclose(e.position, t, atol=1e-12) and np.allclose(e.scale, s, atol=1e-12)
        assert np.allclose(e.rotation, r, atol=1e-12) or np.allclose(e.rotation, -np.array(r))
        assert np.allclose(scene.world_matrix(e), m, atol=1e-9)
    plain = Node(0, "no transform")  # a node's defaults: the tuples every such part shares
    first = root.children[0]
    assert first.rotation is plain.rotation
    assert all(e.scale is plain.scale for e in root.children[:4])


def test_a_bad_matrix_among_many_is_refused_by_name() -> None:
    """Among many matrix nodes, a sheared one and one that overflows are each refused, naming
    the node, and the scene is left as it was."""
    import json

    from farview.host.gltf import load_model_bytes

    good = np.eye(4).reshape(-1).tolist()
    for bad, says in (([1, 0, 0, 0, 0.5, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1], "sheared"),
                      ([1e308, 1e308, 0, 0, 0, 1e308, 0, 0, 0, 0, 1e308, 0, 0, 0, 0, 1],
                       "too large")):
        nodes = [{"name": f"n{i}", "matrix": good} for i in range(300)]
        nodes[123]["matrix"] = bad
        doc = {"asset": {"version": "2.0"}, "scene": 0,
               "scenes": [{"nodes": list(range(300))}], "nodes": nodes}
        scene = Scene()
        with pytest.raises(SceneError, match=rf"node 123 \(n123\).*{says}"):
            scene.add_model(load_model_bytes(json.dumps(doc).encode()), "m")
        assert len(scene) == 0
