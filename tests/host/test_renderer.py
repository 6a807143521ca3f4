from __future__ import annotations

import math
from collections.abc import Iterator

import av
import numpy as np
import pytest

from farview.host.egl import EglContext
from farview.host.gltf import Mesh, Model, Node, Primitive, load_model, load_model_bytes
from farview.host.lod import LOD_REDUCTIONS
from farview.host.renderer import BACKGROUND, BATCH_MAX_TRIANGLES, Renderer
from farview.host.scene import Entity, Scene, Tint
from farview.host.transforms import matrix3_to_quat
from farview.input.pose import Fov, Pose, View
from farview.streaming.planes import plane_array
from tests.host.conftest import (
    QUADRANT_COLOURS,
    SAMPLE,
    SHARED_MODELS,
    png_bytes,
    quadrant_texture,
    textured_quad_glb,
)

W, H = 320, 240
BG = np.round(np.array(BACKGROUND[:3]) * 255)


def look_at(eye: tuple[float, float, float], target: tuple[float, float, float] = (0, 0, 0),
            ) -> Pose:
    f = np.subtract(target, eye) / np.linalg.norm(np.subtract(target, eye))
    right = np.cross(f, [0, 1, 0])
    right /= np.linalg.norm(right)
    up = np.cross(right, f)
    return Pose(eye, matrix3_to_quat(np.stack([right, up, -f], axis=1)))


def view(eye: tuple[float, float, float], target: tuple[float, float, float] = (0, 0, 0),
         aspect: float = W / H) -> View:
    return View(look_at(eye, target), Fov.symmetric(45.0, aspect))


@pytest.fixture(scope="module")
def setup(egl_context: EglContext) -> Iterator[tuple[Renderer, Scene, Entity]]:
    scene = Scene()
    root = scene.add_model(load_model(SAMPLE), "Engine")
    r = Renderer(W, H)
    yield r, scene, root
    r.close()


def model_mask(img: np.ndarray) -> np.ndarray:
    return np.abs(img[:, :, :3].astype(int) - BG).sum(axis=2) > 6


def frame(r: Renderer, scene: Scene, views: list[View]) -> np.ndarray:
    r.render(scene, views)
    return r.read_rgba()


def test_model_in_centre_background_in_corners(setup: tuple[Renderer, Scene, Entity]) -> None:
    r, scene, _ = setup
    img = frame(r, scene, [view((0.0, 0.3, 1.6))])
    assert img.shape == (H, W, 4) and img.dtype == np.uint8
    mask = model_mask(img)
    assert mask[H // 2 - 10:H // 2 + 10, W // 2 - 10:W // 2 + 10].mean() > 0.9
    for y, x in ((2, 2), (2, W - 3), (H - 3, 2), (H - 3, W - 3)):
        assert not mask[y, x]
    assert r.last_timings.render_ms > 0


def test_camera_right_moves_model_left(setup: tuple[Renderer, Scene, Entity]) -> None:
    r, scene, _ = setup
    xs = []
    for cam_x in (0.0, 0.3):
        mask = model_mask(frame(r, scene, [view((cam_x, 0.3, 1.6), (cam_x, 0.0, 0.0))]))
        xs.append(np.nonzero(mask)[1].mean())
    assert xs[1] < xs[0] - 20


def test_hidden_and_tint(setup: tuple[Renderer, Scene, Entity]) -> None:
    r, scene, root = setup
    v = [view((0.0, 0.9, 0.05))]  # from above: the red valve cover fills the centre
    cover = next(e for e in scene.entities() if e.name == "ValveCover")
    before = frame(r, scene, v)
    c = before[H // 2, W // 2, :3].astype(int)
    assert c[0] > c[1] + 40  # red paint
    cover.tint = Tint((0.0, 0.0, 1.0), 1.0)
    tinted = frame(r, scene, v)[H // 2, W // 2, :3].astype(int)
    assert tinted[2] > tinted[0] + 40
    cover.tint = None
    cover.hidden = True
    hidden = frame(r, scene, v)
    assert np.abs(hidden[H // 2, W // 2, :3].astype(int) - c).sum() > 40
    root.hidden = True  # inherited by everything
    assert not model_mask(frame(r, scene, v)).any()
    root.hidden = None
    cover.hidden = None


def test_yuv420_matches_pyav(setup: tuple[Renderer, Scene, Entity]) -> None:
    r, scene, _ = setup
    rgba = frame(r, scene, [view((0.5, 0.4, 1.0))])
    y, u, v = r.read_yuv420()
    assert y.shape == (H, W) and u.shape == v.shape == (H // 2, W // 2)
    ref = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgba[:, :, :3]), format="rgb24")
    ref = ref.reformat(format="yuv420p")
    planes = [np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[:, :w]
              for p, w in zip(ref.planes, (W, W // 2, W // 2), strict=True)]
    assert np.abs(y.astype(int) - planes[0]).max() <= 1
    for ours, theirs in ((u, planes[1]), (v, planes[2])):
        diff = np.abs(ours.astype(int) - theirs[: H // 2])
        assert diff.mean() < 1.0 and np.percentile(diff, 99) <= 6
    assert r.last_timings.convert_ms > 0 and r.last_timings.readback_ms > 0


def test_stereo_side_by_side(setup: tuple[Renderer, Scene, Entity]) -> None:
    r, scene, _ = setup
    ipd = 0.064
    views = [view((-ipd / 2, 0.3, 1.6), (-ipd / 2, 0, 0), aspect=(W / 2) / H),
             view((ipd / 2, 0.3, 1.6), (ipd / 2, 0, 0), aspect=(W / 2) / H)]
    mask = model_mask(frame(r, scene, views))
    left, right = mask[:, : W // 2], mask[:, W // 2:]
    assert left.mean() > 0.05 and right.mean() > 0.05
    # The right eye sits further right, so the model appears further left in its half.
    assert np.nonzero(right)[1].mean() < np.nonzero(left)[1].mean()


def test_odd_size_refuses_yuv(egl_context: EglContext) -> None:
    r = Renderer(33, 20)
    with pytest.raises(ValueError, match="even width and height"):
        r.read_yuv420()
    r.close()


def test_lighting_modes_agree_and_auto_picks_vertex_on_llvmpipe(
        egl_context: EglContext, setup: tuple[Renderer, Scene, Entity]) -> None:
    _, scene, _ = setup
    assert "llvmpipe" in egl_context.renderer  # this machine: the software path
    auto = Renderer(W, H)
    assert auto.lighting == "vertex"
    images = {}
    for mode in ("vertex", "pixel"):
        r = Renderer(W, H, lighting=mode)
        assert r.lighting == mode
        images[mode] = frame(r, scene, [view((0.5, 0.4, 1.0))])[:, :, :3].astype(int)
        y, _, _ = r.read_yuv420()
        assert abs(float(y.mean()) - float(images[mode].mean(axis=2).mean())) < 20
        r.close()
    auto.close()
    vertex, pixel = images["vertex"], images["pixel"]
    assert (model_mask(vertex) == model_mask(pixel)).mean() > 0.995  # same geometry
    diff = np.abs(vertex - pixel).max(axis=2)[model_mask(pixel)]
    # interpolated lighting differs from per-pixel in highlights only, not overall
    assert np.median(diff) <= 6 and diff.mean() < 10


def test_unknown_lighting_mode_is_refused(egl_context: EglContext) -> None:
    with pytest.raises(ValueError, match="lighting must be one of auto, vertex, pixel"):
        Renderer(W, H, lighting="phong")


def test_unknown_chroma_mode_is_refused(egl_context: EglContext) -> None:
    with pytest.raises(ValueError, match="chroma must be one of auto, cpu, gpu"):
        Renderer(W, H, chroma="vaapi")


def block_means(full: np.ndarray) -> np.ndarray:
    h, w = full.shape
    return full.reshape(h // 2, 2, w // 2, 2).astype(float).mean(axis=(1, 3))


@pytest.mark.parametrize("chroma", ["cpu", "gpu"])
def test_chroma_is_the_mean_of_each_block(egl_context: EglContext,
                                          setup: tuple[Renderer, Scene, Entity],
                                          chroma: str) -> None:
    """Both chroma paths average each 2x2 block of the full-resolution chroma the main pass
    wrote. The CPU path relies on swscale's unscaled NV24 -> YUV420P converter averaging (not
    point-sampling): this fails if a PyAV/FFmpeg update changes that."""
    _, scene, _ = setup
    r = Renderer(W, H, chroma=chroma)
    assert r.chroma == chroma
    r.render(scene, [view((0.5, 0.4, 1.0))])
    full = r._read_nv24()  # the main pass's full-resolution targets
    y_full = plane_array(full.planes[0], W, H).copy()
    uv_full = plane_array(full.planes[1], W, H, 2)
    want_u, want_v = block_means(uv_full[:, :, 0]), block_means(uv_full[:, :, 1])
    frame = r.read_frame()
    assert frame.format.name == "yuv420p" and (frame.width, frame.height) == (W, H)
    y, u, v = r.read_yuv420()
    assert np.array_equal(y, y_full)
    edges = np.abs(want_u - np.round(want_u)) > 0  # blocks whose pixels differ
    assert edges.sum() > 100  # the model's edges give blocks of mixed chroma
    for ours, want in ((u, want_u), (v, want_v)):
        # the mean, as llvmpipe's 8-bit filter rounds it or as swscale truncates it: within one
        # level. A point sample would be off by tens of levels at the model's edges.
        assert np.abs(ours - want).max() <= 1.0
    assert r.last_timings.convert_ms > 0 and r.last_timings.readback_ms > 0
    r.close()


def test_read_rgba_background_is_the_background_colour(setup: tuple[Renderer, Scene, Entity],
                                                        ) -> None:
    r, scene, _ = setup
    img = frame(r, scene, [view((0.0, 0.3, 1.6))])
    assert np.abs(img[2, 2, :3].astype(int) - BG).max() <= 2 and img[2, 2, 3] == 255


def test_base_colour_texture_lands_the_right_way_up(egl_context: EglContext) -> None:
    # A camera-facing quad with a 2×2 texture, sampled NEAREST: each screen quadrant of the
    # quad shows its texel's hue (lighting scales brightness, not hue).
    sampler = {"magFilter": 9728, "minFilter": 9728}
    scene = Scene()
    scene.add_model(load_model_bytes(textured_quad_glb(png_bytes(quadrant_texture()),
                                                       sampler=sampler)), "Quad")
    r = Renderer(W, H)
    img = frame(r, scene, [view((0.0, 0.0, 3.0))]).astype(int)
    quad = model_mask(img)
    ys, xs = np.nonzero(quad)
    cy, cx = int(ys.mean()), int(xs.mean())
    dy, dx = (ys.max() - ys.min()) // 4, (xs.max() - xs.min()) // 4
    for (oy, ox), colour in zip(((-dy, -dx), (-dy, dx), (dy, -dx), (dy, dx)), QUADRANT_COLOURS,
                                strict=True):
        px = img[cy + oy, cx + ox, :3]
        lit = np.array(colour) > 0
        if lit.all():  # white
            assert px.min() > 150, (oy, ox, px)
        else:
            assert px[lit].min() > px[~lit].max() + 80, (oy, ox, px)
    assert len(r._gl_textures) == 1
    scene.remove(next(iter(scene.entities())))
    frame(r, scene, [view((0.0, 0.0, 3.0))])
    assert not r._gl_textures  # freed with the last mesh that used it
    r.close()


def test_duck_is_yellow(egl_context: EglContext) -> None:
    scene = Scene()
    scene.add_model(load_model(SHARED_MODELS / "Duck.glb"), "Duck")
    r = Renderer(W, H)
    img = frame(r, scene, [view((1.5, 1.5, 2.5), (0.0, 0.8, 0.0))]).astype(int)
    duck = img[model_mask(img)][:, :3]
    assert len(duck) > 0.1 * W * H
    red, green, blue = np.median(duck, axis=0)
    assert red > blue + 80 and green > blue + 50, (red, green, blue)  # untextured: white
    r.close()


def test_batched_small_parts_draw_the_same_picture(egl_context: EglContext) -> None:
    """Small plain parts are merged into batches (one draw per material); the picture is the
    one part-by-part drawing makes, a tinted part keeps its tint, a selected one its outline."""
    scene = Scene()
    scene.add_model(load_model(SAMPLE), "Engine")
    r = Renderer(W, H)
    try:
        images = {}
        for batching in (False, True):
            r.batching = batching
            scene.version += 1  # re-prepare
            images[batching] = frame(r, scene, [view((0.5, 0.4, 1.4))]).astype(int)
        diff = np.abs(images[True] - images[False])
        assert diff.mean() < 0.3 and (diff.max(axis=2) > 24).mean() < 0.001, diff.mean()
        assert r._batches, "the sample's small parts should have been batched"
        part = max((it.entity for it in scene.draw_list()
                    if it.mesh.triangle_count <= BATCH_MAX_TRIANGLES),
                   key=lambda e: e.mesh.triangle_count if e.mesh else 0)  # a batched part
        part.tint = Tint((1.0, 0.0, 0.0), 1.0)
        tinted = frame(r, scene, [view((0.5, 0.4, 1.4))]).astype(int)
        assert (np.abs(tinted - images[True]).max(axis=2) > 60).sum() > 50  # the part is red
        part.tint = None
        r.batching = False
        part.tint = Tint((1.0, 0.0, 0.0), 1.0)
        reference = frame(r, scene, [view((0.5, 0.4, 1.4))]).astype(int)
        assert np.abs(tinted - reference).mean() < 0.3
    finally:
        r.close()


def test_batches_are_kept_while_their_parts_stay_and_remade_when_one_moves(
        egl_context: EglContext) -> None:
    """A batch is known by its primitives, their places in the draw list and their world
    matrices: a re-prepared scene where nothing moved reuses every batch; moving one batched
    part remakes the batches it left and joined only, and the part is drawn where it went."""
    scene = Scene()
    scene.add_model(load_model(SAMPLE), "Engine")
    r = Renderer(W, H)
    try:
        eye = [view((0.5, 0.4, 1.4))]
        first = frame(r, scene, eye).astype(int)
        batches = dict(r._batches)
        assert len(batches) > 1
        scene.version += 1  # re-prepare, nothing moved
        again = frame(r, scene, eye).astype(int)
        assert r._batches == batches
        np.testing.assert_array_equal(again, first)
        part = max((it.entity for it in scene.draw_list()
                    if it.mesh.triangle_count <= BATCH_MAX_TRIANGLES),
                   key=lambda e: e.mesh.triangle_count if e.mesh else 0)  # a batched part
        x, y, z = part.position
        part.position = (x, y + 0.2, z)
        moved = frame(r, scene, eye).astype(int)
        remade = [k for k in batches if k not in r._batches]
        # its batch, and the one of the cell it moved into when it left its own
        assert 1 <= len(remade) <= 2 < len(batches), (len(remade), len(batches))
        assert (np.abs(moved - first).max(axis=2) > 30).sum() > 20  # the part is elsewhere
    finally:
        r.close()


def test_parts_outside_the_view_are_culled_without_changing_the_picture(
        egl_context: EglContext) -> None:
    scene = Scene()
    scene.add_model(load_model(SAMPLE), "Engine")
    r = Renderer(W, H)
    try:
        close = [view((0.25, 0.1, 0.35), (0.25, 0.0, 0.0))]  # close to one end of the engine
        images = {}
        for culling in (False, True):
            r.culling = culling
            images[culling] = frame(r, scene, close).astype(int)
        assert r.last_culled > 0, "the close view should leave some parts out"
        np.testing.assert_array_equal(images[True], images[False])
        frame(r, scene, [view((0.0, 0.4, 2.5))])  # the whole engine in view
        assert r.last_culled == 0
    finally:
        r.close()


def ball(pos: np.ndarray, nrm: np.ndarray, idx: np.ndarray) -> tuple[Mesh, Model]:
    """A model of one part (a mesh of its own) with the sample's first material."""
    prim = Primitive(pos, nrm, idx, load_model(SAMPLE).materials[0])
    mesh = Mesh("ball", (prim,))
    return mesh, Model("ball", (Node(0, "ball", mesh=mesh),), (0,), (mesh,), (prim.material,))


def test_big_parts_get_coarser_while_moving_and_full_detail_at_rest(
        egl_context: EglContext) -> None:
    """Levels of detail: a 125,000-triangle part is simplified in the background; frames
    while the camera moves over budget drop to a coarser level (and say so), a frame at rest
    draws it in full again, and the coarse picture is close to the full one. Its triangles are
    put in vertex-cache order in the background too: the same picture, fewer vertices shaded."""
    import time

    from benchmarks.bench_scale import sphere

    pos, nrm, idx = sphere(250)
    mesh, model = ball(pos, nrm, idx)
    scene = Scene()
    scene.add_model(model, "ball")
    r = Renderer(W, H, lighting="vertex")
    try:
        assert r.lod  # llvmpipe
        eye = [view((0.0, 0.5, 2.8))]
        full = frame(r, scene, eye).astype(int)
        deadline = time.monotonic() + 30
        while r.lod_pending:
            assert time.monotonic() < deadline, "levels of detail never finished"
            time.sleep(0.05)
            r.render(scene, eye)
        from OpenGL import GL

        gpu = r._meshes[mesh.key][0]
        assert gpu.index_type == GL.GL_UNSIGNED_SHORT  # 63,001 vertices: 16-bit indices
        GL.glBindBuffer(GL.GL_COPY_READ_BUFFER, gpu.buffers[1])
        drawn = np.frombuffer(GL.glGetBufferSubData(GL.GL_COPY_READ_BUFFER, 0, 2 * len(idx)),
                              dtype=np.uint16).astype(np.uint32)
        GL.glBindBuffer(GL.GL_COPY_READ_BUFFER, 0)
        assert not np.array_equal(drawn, idx)  # reordered ...
        assert _winding_triangles(pos, drawn) == _winding_triangles(pos, idx)  # ... the same triangles
        assert _fifo_misses(drawn) < 0.8 * _fifo_misses(idx)
        np.testing.assert_array_equal(frame(r, scene, eye).astype(int), full)
        r.lod_budget_ms = 0.0  # every moving frame is over budget: the level rises
        for _ in range(len(LOD_REDUCTIONS) + 1):
            r.render(scene, eye, moving=True)
        assert r.lod_level == len(LOD_REDUCTIONS) and r.last_reduced
        coarse = r.read_rgba().astype(int)
        assert np.abs(coarse - full).mean() < 3, "the coarse ball should look like the ball"
        r.render(scene, eye)  # at rest
        assert not r.last_reduced
        np.testing.assert_array_equal(r.read_rgba().astype(int), full)
        scene.detail = "full"  # the user pins full detail: moving frames are full too
        r.render(scene, eye, moving=True)
        assert not r.last_reduced and r.lod_level == len(LOD_REDUCTIONS)
        np.testing.assert_array_equal(r.read_rgba().astype(int), full)
        scene.detail = "auto"
        r.render(scene, eye, moving=True)
        assert r.last_reduced
        r.lod_budget_ms = 1e9  # fast frames: the level falls again
        r.render(scene, eye, moving=True)
        assert r.lod_level == len(LOD_REDUCTIONS) - 1
        # ... but not to a finer level that was over budget when last drawn (it would only
        # bounce back, every other frame over budget), until LOD_RETRY_S has passed
        from farview.host.renderer import LOD_RETRY_S

        level = r.lod_level
        r._level_ms[level - 1] = (2e9, time.perf_counter())
        r.render(scene, eye, moving=True)
        assert r.lod_level == level
        r._level_ms[level - 1] = (2e9, time.perf_counter() - LOD_RETRY_S - 1)
        r.render(scene, eye, moving=True)
        assert r.lod_level == level - 1
    finally:
        r.close()


def test_simplified_levels_carry_texture_coordinates() -> None:
    """A bumpy sheet whose texture coordinates are its x and y: every level's vertices keep
    coordinates close to their own x and y (the collapsed vertices' mean)."""
    from farview.host.lod import simplify

    n = 200
    u, v = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n))
    pos = np.stack([u, v, 0.05 * np.sin(6 * u) * np.cos(5 * v)], -1).reshape(-1, 3).astype(np.float32)
    uv = np.stack([u, v], -1).reshape(-1, 2).astype(np.float32)
    i = np.arange(n * n).reshape(n, n)
    a, b, c, d = i[:-1, :-1].ravel(), i[:-1, 1:].ravel(), i[1:, :-1].ravel(), i[1:, 1:].ravel()
    idx = np.concatenate([np.stack([a, b, c], 1), np.stack([b, d, c], 1)]).astype(np.uint32).ravel()
    levels = simplify(pos, idx, uv)
    assert len(levels) == len(LOD_REDUCTIONS)
    for k, (rows, index) in enumerate(levels, 1):
        assert rows.shape[1] == 8 and int(index.max()) < len(rows)
        error = np.abs(rows[:, 6:8] - rows[:, 0:2])
        assert error.mean() < 0.005 * 2 ** k, (k, error.mean())  # a few cells of its level
    assert all(rows.shape[1] == 6 for rows, _ in simplify(pos, idx))  # plain: no coordinates


def _open_edges(rows: np.ndarray, index: np.ndarray) -> int:
    """Edges of one triangle only, once the level's vertices are welded by position: cracks
    (a closed surface has none)."""
    from farview.host.lod import weld_points

    _, of = weld_points(rows[:, :3])
    t = of[index.reshape(-1, 3).astype(np.int64)]
    t = t[(t[:, 0] != t[:, 1]) & (t[:, 1] != t[:, 2]) & (t[:, 0] != t[:, 2])]
    edges = np.sort(np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]]), axis=1)
    _, count = np.unique(edges, axis=0, return_counts=True)
    return int((count == 1).sum())


def _two_charts() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A closed sphere split in two charts: the vertices on the seam twice, each chart its own
    texture coordinates (u = x, offset by 10 in the second chart). Positions, indices, uv."""
    from benchmarks.bench_scale import sphere

    pos, _, idx = sphere(60)
    pos = np.round(pos, 5).astype(np.float32)  # the seam's and poles' copies: one position
    tri = idx.reshape(-1, 3).astype(np.int64)
    chart = (pos[tri].mean(axis=1)[:, 0] <= 0).astype(np.int64)
    keys, split = np.unique((tri * 2 + chart[:, None]).reshape(-1), return_inverse=True)
    spos, schart = pos[keys // 2], keys % 2
    sidx = split.reshape(-1).astype(np.uint32)
    uv = np.stack([spos[:, 0] + 10 * schart, spos[:, 1]], axis=1).astype(np.float32)
    assert len(spos) > len(np.unique(spos, axis=0)) and _open_edges(spos, sidx) == 0
    return spos, sidx, uv


def test_levels_of_a_mesh_split_at_a_seam_stay_closed() -> None:
    """The two-chart sphere: every level is still closed (no cracks along the seam), with and
    without the coordinates, and no triangle takes coordinates from both charts. Simplified
    split, each chart's border moved on its own: 155 open edges at the first level of this
    sphere."""
    from farview.host.lod import simplify

    spos, sidx, uv = _two_charts()
    for levels in (simplify(spos, sidx, uv), simplify(spos, sidx)):
        assert len(levels) == len(LOD_REDUCTIONS)
        for rows, index in levels:
            assert _open_edges(rows, index) == 0
    for rows, index in simplify(spos, sidx, uv):
        u = rows[:, 6][index.reshape(-1, 3)]
        assert not ((u < 5).any(axis=1) & (u >= 5).any(axis=1)).any()  # one chart a triangle
        assert np.abs(rows[:, 6] - 10 * (rows[:, 6] >= 5) - rows[:, 0]).max() < 0.5


def test_a_level_the_simplifier_wrecks_is_not_kept() -> None:
    """Found by hand: a UV sphere of 186,660 triangles (bench_scale's parts at 20 M triangles)
    came out of the simplifier at its third level as a jagged shape of long edges through the
    sphere (vertices at radius 0.69-1.47); the moving frames of a 20 M-triangle model drew
    every sphere so. Such a level, and the coarser ones made from it, are not kept; the
    coarser levels are made by vertex clustering (as stand-ins are) from the last sound one."""
    import math

    from farview.host.lod import simplify

    segments = 305
    theta = np.linspace(0, math.pi, segments + 1)
    phi = np.linspace(0, 2 * math.pi, segments + 1)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    pos = np.stack([np.sin(t) * np.cos(p), np.cos(t), np.sin(t) * np.sin(p)], axis=-1)
    pos = pos.reshape(-1, 3).astype(np.float32)
    w, quads = segments + 1, []
    for r in range(segments):
        a = r * w + np.arange(segments)
        if r > 0:
            quads.append(np.stack([a, a + 1, a + w], axis=1))
        if r < segments - 1:
            quads.append(np.stack([a + 1, a + w + 1, a + w], axis=1))
    idx = np.concatenate(quads).reshape(-1).astype(np.uint32)
    levels = simplify(pos, idx)
    # the sound ones are kept, the coarser ones clustered from the last of them (without
    # them, such parts drew 4 times the triangles while moving)
    assert len(levels) == len(LOD_REDUCTIONS)
    assert [len(index) // 3 for _rows, index in levels][-1] < 1500
    for rows, _index in levels:
        radius = np.linalg.norm(rows[:, :3], axis=1)
        assert radius.min() > 0.95 and radius.max() < 1.05, (radius.min(), radius.max())


def test_stand_ins_of_a_mesh_split_at_a_seam_keep_each_charts_coordinates() -> None:
    """Stand-in levels of the two-chart sphere: no triangle takes coordinates from both
    charts, every vertex keeps its own chart's (u within its chart's range: averaged across
    the seam, 58 vertices of the first level had u near 5, between the charts), normals are
    unit length, and the seam costs no crack: as many open edges as without coordinates."""
    from farview.host.lod import quick_levels

    spos, sidx, uv = _two_charts()
    textured, plain = quick_levels(spos, sidx, uv), quick_levels(spos, sidx)
    assert len(textured) == len(plain) == len(LOD_REDUCTIONS)
    for (rows, index), (plain_rows, plain_index) in zip(textured, plain, strict=True):
        u = rows[:, 6]
        assert ((np.abs(u) <= 1.01) | (np.abs(u - 10) <= 1.01)).all(), u[(u > 1.01) & (u < 8.99)]
        corners = u[index.reshape(-1, 3)]
        assert not ((corners < 5).any(axis=1) & (corners >= 5).any(axis=1)).any()
        np.testing.assert_allclose(np.linalg.norm(rows[:, 3:6], axis=1), 1.0, atol=1e-5)
        assert _open_edges(rows, index) == _open_edges(plain_rows, plain_index)


def test_weld_and_pieces() -> None:
    """``weld_points``: one row a position (-0 as 0), in the order they first come, each point's row.
    ``pieces``: connected pieces through triangles, an unused vertex a piece of its own."""
    from farview.host.lod import pieces, weld_points

    rng = np.random.default_rng(1)
    base = rng.random((200, 3)).astype(np.float32)
    pts = base[rng.integers(0, 200, 1000)]
    pts[:5] = np.float32(-0.0)
    pts[5] = np.float32(0.0)
    welded, of = weld_points(pts)
    np.testing.assert_array_equal(welded[of], pts + np.float32(0.0))
    assert len(welded) == len(np.unique(pts + np.float32(0.0), axis=0))
    assert (np.diff(np.unique(of, return_index=True)[1]) > 0).all()  # first come, first numbered
    tris = np.array([[0, 1, 2], [2, 3, 4], [5, 6, 7], [9, 8, 7], [10, 11, 12]], dtype=np.int64)
    piece = pieces(tris, 14)
    assert len(set(piece[:5])) == 1 and len(set(piece[5:10])) == 1
    assert len({piece[0], piece[5], piece[10], piece[13]}) == 4 and piece[10] == piece[12]


def test_quick_levels_merge_cells_into_a_coarser_surface() -> None:
    """Stand-in levels (vertex clustering): each coarser than the one before, about the share
    asked for, on the surface, facing out, no triangle twice, indices and normals sound, and
    the extra columns averaged as the positions are (here they are the positions' x and y,
    so they stay equal to them: the sphere is welded, one piece, so a vertex is a cell)."""
    from benchmarks.bench_scale import sphere
    from farview.host.lod import pieces, quick_levels, weld_points

    pos, _, idx = sphere(250)  # 124,500 triangles
    pos, of = weld_points(np.round(pos, 5).astype(np.float32))
    idx = of[idx].astype(np.uint32)
    assert not pieces(idx.reshape(-1, 3).astype(np.int64), len(pos)).any()
    triangles = len(idx) // 3
    levels = quick_levels(pos, idx, pos[:, :2].copy())
    assert len(levels) >= 3
    counts = [len(index) // 3 for _, index in levels]
    assert all(a > b for a, b in zip([triangles, *counts], counts, strict=False)), counts
    assert 0.5 * triangles / 4 < counts[0] < 2 * triangles / 4, counts
    for k, (rows, index) in enumerate(levels, 1):
        assert rows.shape[1] == 8 and rows.dtype == np.float32 and np.isfinite(rows).all()
        assert index.dtype == np.uint32 and int(index.max()) < len(rows)
        p, n = rows[:, :3], rows[:, 3:6]
        radius = np.linalg.norm(p, axis=1)
        assert radius.max() <= 1.0 + 1e-5 and radius.min() > 1.0 - 0.1 * 2 ** k, k
        np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-3)
        np.testing.assert_allclose(rows[:, 6:8], p[:, :2], atol=1e-6)
        tri = index.reshape(-1, 3).astype(np.int64)
        assert len(np.unique(np.sort(tri, axis=1), axis=0)) == len(tri)  # no copies
        assert (tri[:, 0] != tri[:, 1]).all() and (tri[:, 1] != tri[:, 2]).all()
        face = np.cross(p[tri[:, 1]] - p[tri[:, 0]], p[tri[:, 2]] - p[tri[:, 0]])
        outward = (face * p[tri].mean(axis=1)).sum(axis=1) > 0
        assert outward.mean() > 0.95, (k, outward.mean())
    assert quick_levels(pos, idx)[0][0].shape[1] == 6  # plain: position and normal


def test_unique_triangles_keeps_each_first_copy_either_way() -> None:
    """Copies of a triangle (its corners in any order) are dropped, the first kept with its
    winding, the rest in their order: the same with one key a triangle as with three."""
    from farview.host.lod import unique_triangles

    rng = np.random.default_rng(7)
    tris = rng.integers(0, 12, size=(4000, 3))
    tris = tris[(tris[:, 0] != tris[:, 1]) & (tris[:, 1] != tris[:, 2]) & (tris[:, 0] != tris[:, 2])]
    one = unique_triangles(tris, 12)
    three = unique_triangles(tris, 12, one_key_vertices=0)
    np.testing.assert_array_equal(one, three)
    seen: set[frozenset[int]] = set()
    expected = []
    for t in tris.tolist():
        if frozenset(t) not in seen:
            seen.add(frozenset(t))
            expected.append(t)
    assert one.tolist() == expected and len(expected) == 12 * 11 * 10 // 6


def test_quick_levels_of_meshes_they_cannot_thin() -> None:
    """No triangles, too few, no area (every corner in one place): no levels. Parts a
    thousand million million kilometres apart: a grid of at most 2^20 cells a side, finite
    levels (or none), no overflow."""
    from benchmarks.bench_scale import sphere
    from farview.host.lod import quick_levels

    pos, _, idx = sphere(250)
    assert quick_levels(pos, idx[:0]) == []
    assert quick_levels(pos, idx[:3 * 63]) == []
    assert quick_levels(np.zeros_like(pos), idx) == []
    far = pos.copy()
    far[: len(pos) // 2] += np.float32(1e30)
    for rows, index in quick_levels(far, idx):
        assert np.isfinite(rows).all() and int(index.max()) < len(rows)


def test_stand_in_levels_come_first_and_give_way(egl_context: EglContext) -> None:
    """A big part gets stand-in levels (vertex clustering, queued ahead of its own) that
    moving frames draw before its own levels are made; its own then take their place, and the
    stand-ins' GL objects are deleted (a name still alive belongs to the new levels)."""
    import time

    from OpenGL import GL

    from benchmarks.bench_scale import sphere
    from farview.host.lod import quick_levels

    pos, nrm, idx = sphere(700)  # 978,600 triangles: its own levels take a second or more
    mesh, model = ball(pos, nrm, idx)
    scene = Scene()
    scene.add_model(model, "ball")
    r = Renderer(W, H, lighting="vertex")
    r.lod_workers = 1  # one process takes the jobs in order: the stand-ins first
    try:
        eye = [view((0.0, 0.5, 2.8))]
        full = frame(r, scene, eye).astype(int)
        gpu = r._meshes[mesh.key][0]
        assert r.lod_pending == 1 and len(r._quick_jobs) == 1
        own = r._lod_jobs[0][1]
        deadline = time.monotonic() + 60
        while not gpu.lods:
            assert time.monotonic() < deadline, "stand-in levels never came"
            r.render(scene, eye)
        expected = [len(index) for _, index in quick_levels(pos, idx)]
        assert [count for _, count, _, _ in gpu.lods] == expected  # the stand-ins
        assert r.lod_pending == 1 and not own.done()
        r.lod_budget_ms = 0.0
        for _ in range(len(LOD_REDUCTIONS) + 1):
            r.render(scene, eye, moving=True)
        assert r.last_reduced and r.lod_level == len(LOD_REDUCTIONS)
        coarse = r.read_rgba().astype(int)
        assert np.abs(coarse - full).mean() < 3, "the stand-in should look like the ball"
        stand_in_names = {name for _, _, buffers, _ in gpu.lods for name in buffers}
        while r.lod_pending:
            assert time.monotonic() < deadline, "levels of detail never finished"
            time.sleep(0.05)
            r.render(scene, eye)
        assert [count for _, count, _, _ in gpu.lods] == [len(i) for _, i in own.result()[1]]
        new_names = {name for _, _, buffers, _ in gpu.lods for name in buffers}
        assert all(not GL.glIsBuffer(name) or name in new_names for name in stand_in_names)
        assert not r._quick_jobs and not r._lod_later
        # the same part again, removed before anything came: no job of it is kept
        scene.remove(scene.roots[0])
        _, model = ball(pos, nrm, idx)  # another mesh: uploaded anew
        root = scene.add_model(model, "again")
        r.render(scene, eye)
        assert r.stand_ins_pending == 1 and r.lod_pending == 1
        scene.remove(root)
        r.render(scene, eye)
        assert not r.stand_ins_pending and not r.lod_pending
    finally:
        r.close()


def full_and_coarsest(r: Renderer, scene: Scene, eye: list[View], what: str
                      ) -> tuple[np.ndarray, np.ndarray]:
    """A big part's frame at full detail, then, once its levels are made in the background,
    its frame at the coarsest level (every moving frame over budget); ``what`` says which
    part should have got levels."""
    import time

    full = frame(r, scene, eye).astype(int)
    assert r.lod_pending == 1, what
    deadline = time.monotonic() + 60
    while r.lod_pending:
        assert time.monotonic() < deadline, "levels of detail never finished"
        time.sleep(0.05)
        r.render(scene, eye)
    r.lod_budget_ms = 0.0
    for _ in range(len(LOD_REDUCTIONS) + 1):
        r.render(scene, eye, moving=True)
    assert r.lod_level == len(LOD_REDUCTIONS) and r.last_reduced
    return full, r.read_rgba().astype(int)


def test_a_textured_big_part_gets_levels_that_keep_its_texture(egl_context: EglContext) -> None:
    """A 125,000-triangle ball with a base colour texture (two-colour stripes): its levels are
    made in the background with texture coordinates, and the coarsest looks like the full
    one: the same stripes, not a smear."""

    from benchmarks.bench_scale import sphere
    from farview.host.gltf import Material, Mesh, Model, Node, Primitive, Texture, TextureInfo

    pos, nrm, idx = sphere(250)
    uv = np.stack([np.arctan2(pos[:, 2], pos[:, 0]) / (2 * np.pi) + 0.5,
                   np.arccos(np.clip(pos[:, 1] / np.linalg.norm(pos, axis=1), -1, 1)) / np.pi],
                  axis=1).astype(np.float32)
    stripes = np.zeros((64, 64, 4), np.uint8)
    stripes[..., 3] = 255
    stripes[:, ::16] = stripes[:, 1::16] = stripes[:, 2::16] = stripes[:, 3::16] = \
        stripes[:, 4::16] = stripes[:, 5::16] = stripes[:, 6::16] = stripes[:, 7::16] = \
        (230, 40, 30, 255)
    stripes[stripes[..., 0] == 0] = (30, 60, 220, 255)
    material = Material("stripes", metallic=0.0, roughness=0.8,
                        base_color_texture=TextureInfo(Texture("stripes", stripes)))
    prim = Primitive(pos, nrm, idx, material, uv)
    mesh = Mesh("ball", (prim,))
    scene = Scene()
    scene.add_model(Model("ball", (Node(0, "ball", mesh=mesh),), (0,), (mesh,), (material,)), "ball")
    r = Renderer(W, H, lighting="vertex")
    try:
        eye = [view((0.0, 0.5, 2.8))]
        full, coarse = full_and_coarsest(r, scene, eye, "a textured big part should get levels")

        def reds(img: np.ndarray) -> int:
            return int(((img[..., 0] > img[..., 2] + 40)).sum())

        assert reds(full) > 1000 and abs(reds(coarse) - reds(full)) < 0.05 * reds(full)
        assert np.abs(coarse - full).mean() < 4, "the coarse ball should look like the ball"
    finally:
        r.close()


def test_big_parts_with_vertex_colours_or_blending_get_levels_that_keep_them(
        egl_context: EglContext) -> None:
    """Levels carry every vertex attribute the part has: a 125,000-triangle ball coloured per
    vertex (red above, blue below), with a BLEND material (drawn in the blended pass), is
    drawn coarser while moving and still looks like itself, not black or flat."""

    from benchmarks.bench_scale import sphere
    from farview.host.gltf import Material, Mesh, Model, Node, Primitive

    pos, nrm, idx = sphere(250)
    colors = np.where(pos[:, 1:2] > 0.0, [[0.9, 0.15, 0.1, 1.0]], [[0.1, 0.2, 0.9, 1.0]])
    material = Material("glass", metallic=0.0, roughness=0.8, base_color=(1.0, 1.0, 1.0, 0.9),
                        alpha_mode="BLEND")
    prim = Primitive(pos, nrm, idx, material, colors=colors.astype(np.float32))
    mesh = Mesh("ball", (prim,))
    scene = Scene()
    scene.add_model(Model("ball", (Node(0, "ball", mesh=mesh),), (0,), (mesh,), (material,)),
                    "ball")
    r = Renderer(W, H, lighting="vertex")
    try:
        eye = [view((0.0, 0.5, 2.8))]
        full, coarse = full_and_coarsest(r, scene, eye, "a big part with vertex colours should get levels")

        def red(img: np.ndarray) -> np.ndarray:
            return img[..., 0] > img[..., 2] + 40

        def blue(img: np.ndarray) -> np.ndarray:
            return img[..., 2] > img[..., 0] + 40

        assert red(full).sum() > 1000 and blue(full).sum() > 1000
        # the same halves (at 1/256 of the triangles the colours blend in a band between them)
        assert (red(coarse) & red(full)).sum() > 0.8 * red(full).sum()
        assert (blue(coarse) & blue(full)).sum() > 0.7 * blue(full).sum()
        assert not (red(coarse) & blue(full)).any() and not (blue(coarse) & red(full)).any()
        assert np.abs(coarse - full).mean() < 4, "the coarse ball should look like the ball"
    finally:
        r.close()


def test_a_normal_mapped_big_part_gets_levels_with_its_tangents(egl_context: EglContext) -> None:
    """A normal-mapped ball's levels carry texture coordinates and tangents (handedness kept
    a sign): its coarsest level, lit through a tilted normal map, looks like the full ball."""

    from benchmarks.bench_scale import sphere
    from farview.host.gltf import (
        Material,
        Mesh,
        Model,
        Node,
        Primitive,
        Texture,
        TextureInfo,
        generate_tangents,
    )

    pos, nrm, idx = sphere(250)
    uv = np.stack([np.arctan2(pos[:, 2], pos[:, 0]) / (2 * np.pi) + 0.5,
                   np.arccos(np.clip(pos[:, 1] / np.linalg.norm(pos, axis=1), -1, 1)) / np.pi],
                  axis=1).astype(np.float32)
    tilted = np.zeros((8, 8, 4), np.uint8)
    tilted[...] = (235, 128, 160, 255)  # every normal leans far along the tangent
    material = Material("tilted", metallic=0.0, roughness=0.6,
                        normal_texture=TextureInfo(Texture("tilted", tilted)))
    tangents = generate_tangents(pos, nrm, uv, idx)
    prim = Primitive(pos, nrm, idx, material, uv, tangents=tangents)
    mesh = Mesh("ball", (prim,))
    scene = Scene()
    scene.add_model(Model("ball", (Node(0, "ball", mesh=mesh),), (0,), (mesh,), (material,)),
                    "ball")
    eye = [view((0.0, 0.5, 2.8))]
    plain_material = Material("plain", metallic=0.0, roughness=0.6)
    plain = Primitive(pos, nrm, idx, plain_material, uv)
    plain_scene = Scene()
    plain_mesh = Mesh("plain", (plain,))
    plain_scene.add_model(Model("plain", (Node(0, "plain", mesh=plain_mesh),), (0,),
                                (plain_mesh,), (plain_material,)), "plain")
    r = Renderer(W, H, lighting="pixel")
    r.lod = False
    flat = frame(r, plain_scene, eye).astype(int)  # what the ball is without its normal map
    r.close()
    r = Renderer(W, H, lighting="vertex")
    try:
        full, coarse = full_and_coarsest(r, scene, eye, "a normal-mapped big part should get levels")
        assert set(np.unique(r._meshes[mesh.key][0].layout)) >= {5}
        assert model_mask(full).sum() > 5000
        assert np.abs(full - flat).mean() > 6  # the normal map shows
        assert np.abs(coarse - full).mean() < 0.4 * np.abs(coarse - flat).mean(), \
            "the coarse ball should keep its normal map"
    finally:
        r.close()


def test_a_frame_that_uploads_does_not_count_against_the_moving_budget(egl_context: EglContext) -> None:
    """A model's first frame compiles, uploads and batches (0.2 s for the sample at 1280×720):
    it does not take the next moving frames to a coarser level (which had started the
    simplifier's process for a model that needs no levels). A frame that draws only does, and
    so does the second of two frames in a row that upload (something changing every frame)."""
    scene = Scene()
    r = Renderer(W, H)
    try:
        eye = [view((0.0, 0.3, 1.6))]
        r.lod_budget_ms = 0.0  # every moving frame is over budget
        scene.add_model(load_model(SAMPLE), "Engine")
        r.render(scene, eye, moving=True)  # uploads: not counted
        assert r.lod_level == 0 and not r.lod_pending and r._lod_executor is None
        r.render(scene, eye, moving=True)  # draws only: counted
        assert r.lod_level == 1

        r.lod_level = 0
        scene.add_model(load_model(SAMPLE), "Engine 2")
        r.render(scene, eye, moving=True)
        assert r.lod_level == 0
        scene.add_model(load_model(SAMPLE), "Engine 3")
        r.render(scene, eye, moving=True)  # uploads again, right after one that did: counted
        assert r.lod_level == 1
    finally:
        r.close()


def test_batches_of_small_parts_get_levels_for_moving_frames(egl_context: EglContext) -> None:
    """Parts too small for levels of their own, merged into batches, get a coarser level once
    frames drawn while the camera moves are over their budget (not before: a scene drawn in
    time never starts the simplifier), made in the background; they are then drawn coarser
    while the camera moves and in full at rest. A batch freed before its job is done drops the
    job, and one freed after it takes its level along."""
    import time

    from benchmarks.bench_scale import sphere
    from farview.host.gltf import Material, Mesh, Primitive
    from farview.host.renderer import BATCH_LOD_MIN_TRIANGLES

    pos, nrm, idx = sphere(3)  # 12 triangles a part
    material = Material("plain")

    def assembly(scene: Scene) -> Entity:
        root = scene.create_entity("assembly")
        for i in range(2025):  # 45 × 45 in a plane: 16 batch cells of about 1,500 triangles
            prim = Primitive(pos * np.float32(0.3 + 0.01 * (i % 7)), nrm, idx, material)
            scene.create_entity(f"part {i}", root, mesh=Mesh(f"part {i}", (prim,)),
                                position=(i % 45 - 22.0, i // 45 - 22.0, 0.0))
        return root

    def moving_over_budget() -> None:
        r.lod_budget_ms = 0.0
        r.render(scene, eye, moving=True)
        r.render(scene, eye, moving=True)
        assert r.lod_level >= 1

    scene = Scene()
    r = Renderer(W, H, lighting="vertex")
    try:
        eye = [view((0.0, 0.0, 60.0))]
        root = assembly(scene)
        full = frame(r, scene, eye).astype(int)
        r.render(scene, eye, moving=True)  # in time: nothing asked
        assert not r.lod_pending and r._lod_executor is None
        assert len(r._batches) >= 8 and all(b.index_count // 3 >= BATCH_LOD_MIN_TRIANGLES
                                            for b in r._batches.values())
        moving_over_budget()
        assert r.lod_pending == len(r._batches)
        scene.remove(root)  # before the levels are made
        frame(r, scene, eye)
        assert not r._batches and not r._lod_jobs

        root = assembly(scene)
        r.lod_level, r.lod_budget_ms = 0, 1e9
        np.testing.assert_array_equal(frame(r, scene, eye).astype(int), full)
        moving_over_budget()
        deadline = time.monotonic() + 120
        while r.lod_pending and time.monotonic() < deadline:
            time.sleep(0.05)
            frame(r, scene, eye)
        assert not r.lod_pending and all(b.prim.lods for b in r._batches.values())
        np.testing.assert_array_equal(frame(r, scene, eye).astype(int), full)  # at rest: full
        r.render(scene, eye, moving=True)
        assert r.last_reduced
        coarse = r.read_rgba().astype(int)
        assert model_mask(coarse).sum() > 0.3 * model_mask(full).sum()  # every part, coarser
        assert (np.abs(coarse - full).max(axis=2) > 30).sum() > 100
        scene.remove(root)
        frame(r, scene, eye)
        assert not r._batches and not r._lod_jobs
    finally:
        r.close()


def levels_made_after_moving(r: Renderer, scene: Scene, eye: list[View]) -> None:
    """Moving frames over budget (a budget of 0 ms) ask for levels; wait until they are made."""
    import time

    r.lod_budget_ms = 0.0
    for _ in range(3):
        r.render(scene, eye, moving=True)
    deadline = time.monotonic() + 120
    while r.lod_pending and time.monotonic() < deadline:
        time.sleep(0.05)
        frame(r, scene, eye)
    assert not r.lod_pending


def test_a_batch_of_flat_shaded_parts_keeps_them_whole_at_its_levels(
        egl_context: EglContext) -> None:
    """Flat-shaded parts (each triangle its own three vertices, as in files made from STL):
    their batch's levels are made welded, so a moving frame at the coarsest level still shows
    each part as a closed lump (54 % of the full frame's pixels here). Simplified unwelded,
    the parts fell apart into loose triangles: 6.5 %."""
    import time

    from benchmarks.bench_scale import sphere
    from farview.host.gltf import Material
    from farview.host.renderer import _weld_batch

    pos, _, idx = sphere(6)
    corners = np.round(pos, 5).astype(np.float32)[idx]  # 60 triangles, 180 vertices
    tri = corners.reshape(-1, 3, 3)
    face = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals = np.repeat(face / np.linalg.norm(face, axis=1)[:, None], 3, axis=0)
    flat = np.arange(len(corners), dtype=np.uint32)
    assert _weld_batch(len(corners), len(flat) // 3) and not _weld_batch(len(pos), len(idx) // 3)
    assert _weld_batch(1560, 760) and not _weld_batch(16, 12)  # a sphere from STL; sphere(3)
    scene = Scene()
    root = scene.create_entity("assembly")
    for i in range(400):  # 20 x 20 parts in a plane
        prim = Primitive(corners * np.float32(0.45), normals.astype(np.float32), flat,
                         Material("plain"))
        scene.create_entity(f"part {i}", root, mesh=Mesh(f"part {i}", (prim,)),
                            position=(i % 20 - 9.5, i // 20 - 9.5, 0.0))
    r = Renderer(W, H, lighting="vertex")
    try:
        eye = [view((0.0, 0.0, 26.0))]
        full = model_mask(frame(r, scene, eye))
        assert r._batches
        r.lod_budget_ms = 0.0
        r.render(scene, eye, moving=True)
        r.render(scene, eye, moving=True)
        deadline = time.monotonic() + 120
        while r.lod_pending and time.monotonic() < deadline:
            time.sleep(0.05)
            frame(r, scene, eye)
        assert not r.lod_pending and all(b.prim.lods for b in r._batches.values())
        r.render(scene, eye, moving=True)
        assert r.last_reduced and r.lod_level >= 2
        coarse = model_mask(r.read_rgba())
        assert coarse.sum() > 0.3 * full.sum(), coarse.sum() / full.sum()
    finally:
        r.close()


def test_a_batch_gets_levels_down_to_a_few_triangles_a_part() -> None:
    from farview.host.renderer import BATCH_LOD_MIN_PART_TRIANGLES, _batch_reductions

    def kept(triangles: int, members: int) -> list[float]:
        out, share = [], 1.0
        for reduction in _batch_reductions(triangles, members):
            share *= 1.0 - reduction
            out.append(share * triangles / members)
        return out

    assert _batch_reductions(12_000, 1000) == (0.5,)  # parts of 12: one level of 6 a part
    assert kept(84_000, 1000) == pytest.approx([21.0, 6.0])
    assert kept(1_000_000, 1000) == pytest.approx([250.0, 62.5, 15.625, 6.0])
    assert kept(4_096_000, 1000) == pytest.approx([1024.0, 256.0, 64.0, 16.0])  # four at most
    assert kept(5_000, 1000) == pytest.approx([2.5])  # tiny parts: still one level of half
    assert min(kept(300_000, 1000)) == pytest.approx(BATCH_LOD_MIN_PART_TRIANGLES)


def test_batches_of_bigger_parts_get_more_levels(egl_context: EglContext) -> None:
    """A batch of parts of 84 triangles gets two levels (a quarter, then 6 triangles a part),
    and a moving frame over budget draws the coarsest: one level of half for every batch left
    100,000 such parts at 234 ms a moving frame."""
    from benchmarks.bench_scale import sphere
    from farview.host.gltf import Material, Mesh, Primitive

    pos, nrm, idx = sphere(7)
    assert len(idx) // 3 == 84
    material = Material("plain")
    scene = Scene()
    root = scene.create_entity("assembly")
    for i in range(400):  # 20 × 20 in a plane: 16 batch cells of about 2,000 triangles
        prim = Primitive(pos * np.float32(0.3), nrm, idx, material)
        scene.create_entity(f"part {i}", root, mesh=Mesh(f"part {i}", (prim,)),
                            position=(i % 20 - 9.5, i // 20 - 9.5, 0.0))
    r = Renderer(W, H, lighting="vertex")
    try:
        eye = [view((0.0, 0.0, 28.0))]
        full = frame(r, scene, eye).astype(int)
        levels_made_after_moving(r, scene, eye)
        assert r._batches
        for batch in r._batches.values():
            members = len(batch.codes)
            counts = [count // 3 for _, count, *_ in batch.prim.lods]
            assert len(counts) == 2, counts
            assert 0.8 * 21 * members <= counts[0] <= 1.2 * 21 * members, (counts, members)
            assert 0.5 * 6 * members <= counts[1] <= 1.5 * 6 * members, (counts, members)
        np.testing.assert_array_equal(frame(r, scene, eye).astype(int), full)  # at rest: full
        r.lod_level = 2
        r.render(scene, eye, moving=True)
        assert r.last_reduced
        coarse = r.read_rgba().astype(int)
        assert model_mask(coarse).sum() > 0.3 * model_mask(full).sum()  # every part, coarser
        r.lod_level = 1
        r.render(scene, eye, moving=True)
        finer = r.read_rgba().astype(int)
        # the coarsest level differs from full detail more than the first does
        assert np.abs(coarse - full).sum() > np.abs(finer - full).sum() > 0
    finally:
        r.close()


def test_small_parts_batched_apart_from_big_ones_keep_showing_at_coarse_levels(
        egl_context: EglContext) -> None:
    """Parts of 84 triangles and of 3,120 in the same cells: batched by size class, so the
    levels thin each batch's parts alike and every small part is still drawn at the coarsest
    level (batched together, the simplifier took the small ones first: 22 of 275 were gone)."""
    from benchmarks.bench_scale import sphere
    from farview.host.gltf import Material, Mesh, Primitive
    from farview.host.renderer import _members

    material = Material("plain")
    big, small = sphere(40), sphere(7)
    scene = Scene()
    root = scene.create_entity("assembly")
    small_at = []
    for k in range(300):
        gx, gy = k % 20, k // 20
        is_big = gx % 4 == 0 and gy % 3 == 0
        pos, nrm, idx = big if is_big else small
        prim = Primitive(pos * np.float32(0.45 if is_big else 0.15), nrm, idx, material)
        at = (gx - 9.5, gy - 7.0, 0.0)
        scene.create_entity(f"part {k}", root, mesh=Mesh(f"part {k}", (prim,)), position=at)
        if not is_big:
            small_at.append(at)
    r = Renderer(W, H, lighting="vertex")
    try:
        eye = [view((0.0, 0.0, 22.0))]
        frame(r, scene, eye)
        levels_made_after_moving(r, scene, eye)
        for batch in r._batches.values():  # one size a batch
            sizes = {len(p.indices) for p in _members(batch.codes, r._placement)}
            assert len(sizes) == 1, sizes
        r.lod_level = 3  # the coarsest triangles (level 4 may draw batches of them as points)
        r.render(scene, eye, moving=True)
        assert r.last_reduced and r.last_proxies == 0
        lit = model_mask(r.read_rgba())
        # where each small part's centre lands (the view looks down -z from 22 m, 45° high)
        px_per_m = H / (2 * 22.0 * np.tan(np.radians(22.5)))
        shown = [lit[int(H / 2 - y * px_per_m) - 1:int(H / 2 - y * px_per_m) + 2,
                     int(W / 2 + x * px_per_m) - 1:int(W / 2 + x * px_per_m) + 2].any()
                 for x, y, _ in small_at]
        assert all(shown), f"{shown.count(False)} of {len(shown)} small parts gone"
    finally:
        r.close()


def test_tiny_parts_at_the_deepest_level_are_drawn_as_points(egl_context: EglContext) -> None:
    """Parts of 12 triangles a few pixels across: at PROXY_LEVEL a batch of them is drawn as
    one point a part (their coarsest level still has 6 triangles a part: 100,000 such parts
    took 60 ms a moving frame, 29 as points), where each part is, about as big; parts close to
    the eye keep their triangles, and a frame at rest draws every triangle."""
    from benchmarks.bench_scale import sphere
    from farview.host.gltf import Material, Mesh, Primitive
    from farview.host.renderer import PROXY_LEVEL

    pos, nrm, idx = sphere(3)
    assert len(idx) // 3 == 12
    material = Material("plain")
    scene = Scene()
    root = scene.create_entity("assembly")
    at = []
    for i in range(1600):  # 40 × 40 in a plane: 16 batch cells of 1,200 triangles
        prim = Primitive(pos * np.float32(0.3), nrm, idx, material)
        at.append((i % 40 - 19.5, i // 40 - 19.5, 0.0))
        scene.create_entity(f"part {i}", root, mesh=Mesh(f"part {i}", (prim,)), position=at[-1])
    r = Renderer(W, H, lighting="vertex")
    try:
        far = [view((0.0, 0.0, 60.0))]  # a part about 3 pixels across
        full = model_mask(frame(r, scene, far))
        assert r.last_proxies == 0
        levels_made_after_moving(r, scene, far)
        r.lod_level = PROXY_LEVEL - 1
        r.render(scene, far, moving=True)
        assert r.last_reduced and r.last_proxies == 0
        r.lod_level = PROXY_LEVEL
        r.render(scene, far, moving=True)
        assert r.last_proxies == 1600
        points = model_mask(r.read_rgba())
        assert 0.5 * full.sum() < points.sum() < 2.0 * full.sum(), (points.sum(), full.sum())
        px_per_m = H / (2 * 60.0 * np.tan(np.radians(22.5)))
        shown = [points[int(H / 2 - y * px_per_m) - 1:int(H / 2 - y * px_per_m) + 2,
                        int(W / 2 + x * px_per_m) - 1:int(W / 2 + x * px_per_m) + 2].any()
                 for x, y, _ in at]
        assert all(shown), f"{shown.count(False)} of {len(shown)} parts not drawn"
        near = [view((0.0, 0.0, 8.0))]  # about 20 pixels a part: triangles
        r.render(scene, near, moving=True)
        assert r.last_reduced and r.last_proxies == 0
        frame(r, scene, far)  # at rest: every triangle again
        assert r.last_proxies == 0 and not r.last_reduced
    finally:
        r.close()


def test_levels_made_ahead_are_used_at_once(egl_context: EglContext) -> None:
    """A primitive that brings its levels (a converted file's MSFT_lod) is drawn coarser on the
    first moving frame: no simplification (the one job in the background makes its back-face
    clusters, and brings no levels)."""
    import dataclasses
    import time

    from benchmarks.bench_scale import sphere
    from farview.host.gltf import Mesh, Model, Node, Primitive
    from farview.host.lod import simplify

    pos, nrm, idx = sphere(200)
    prim = Primitive(pos, nrm, idx, load_model(SAMPLE).materials[0])
    prim = dataclasses.replace(prim, lods=tuple(simplify(pos, idx)))
    levels = len(prim.lods)
    mesh = Mesh("ball", (prim,))
    scene = Scene()
    scene.add_model(Model("ball", (Node(0, "ball", mesh=mesh),), (0,), (mesh,),
                          (prim.material,)), "ball")
    r = Renderer(W, H, lighting="vertex")
    try:
        eye = [view((0.0, 0.5, 2.8))]
        full = frame(r, scene, eye).astype(int)
        assert r.lod_pending == 1
        gpu = r._meshes[mesh.key][0]
        assert len(gpu.lods) == levels and gpu.clusters is None
        r.lod_budget_ms = 0.0
        r.render(scene, eye, moving=True)
        r.render(scene, eye, moving=True)
        assert r.last_reduced and r.lod_level >= 1
        assert np.abs(r.read_rgba().astype(int) - full).mean() < 3
        deadline = time.monotonic() + 30
        while r.lod_pending:
            assert time.monotonic() < deadline, "the back-face clusters never came"
            time.sleep(0.05)
            r.render(scene, eye)
        assert len(gpu.lods) == levels and gpu.clusters is not None
    finally:
        r.close()


def _fifo_misses(indices: np.ndarray, size: int = 16) -> float:
    """Vertices a FIFO vertex cache of ``size`` entries has to shade, per triangle (ACMR)."""
    from collections import deque

    fifo: deque[int] = deque()
    held: set[int] = set()
    misses = 0
    for i in indices.tolist():
        if i in held:
            continue
        misses += 1
        fifo.append(i)
        held.add(i)
        if len(fifo) > size:
            held.discard(fifo.popleft())
    return misses / (len(indices) // 3)


def _winding_triangles(rows: np.ndarray, indices: np.ndarray) -> list[tuple[float, ...]]:
    """Each triangle as its corners' coordinates, rotated to start at the least corner (the
    winding kept), sorted: two meshes with the same triangles give the same list."""
    out = []
    for tri in rows[indices.reshape(-1, 3)]:
        corners = [tuple(c) for c in tri.tolist()]
        k = corners.index(min(corners))
        out.append(tuple(x for c in corners[k:] + corners[:k] for x in c))
    return sorted(out)


def test_cache_order_keeps_the_triangles_and_shades_fewer_vertices() -> None:
    """A sheet whose index buffer has every cell's first triangle, then every cell's second:
    the reordered mesh has the same triangles, winding and vertex attributes, no unused
    vertex, and a 16-entry vertex cache misses far less often."""
    from farview.host.lod import cache_order

    n = 60
    u, v = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n))
    rows = np.stack([u, v, 0.1 * u * v, u + v], -1).reshape(-1, 4).astype(np.float32)
    rows = np.concatenate([rows, [[9, 9, 9, 9]]]).astype(np.float32)  # one vertex no triangle uses
    i = np.arange(n * n).reshape(n, n)
    a, b, c, d = i[:-1, :-1].ravel(), i[:-1, 1:].ravel(), i[1:, :-1].ravel(), i[1:, 1:].ravel()
    idx = np.concatenate([np.stack([a, b, c], 1), np.stack([b, d, c], 1)]).astype(np.uint32).ravel()
    out_rows, out_idx = cache_order(rows, idx)
    assert out_idx.dtype == np.uint32 and len(out_idx) == len(idx)
    assert len(out_rows) == n * n  # the unused vertex is gone
    assert _winding_triangles(out_rows, out_idx) == _winding_triangles(rows, idx)
    before, after = _fifo_misses(idx), _fifo_misses(out_idx)
    assert after < 0.75 * before, (before, after)
    assert np.array_equal(np.unique(out_idx[:30]), np.arange(len(np.unique(out_idx[:30]))))  # first-use order


def test_state_changes_re_place_only_the_parts_they_reach(egl_context: EglContext) -> None:
    """After a state change the renderer places only the parts it reaches again (batches
    they leave or join are remade, the rest kept). Each picture must be the one a renderer
    that makes the whole draw list anew draws, through selecting, hiding, tinting, a material
    edit and see-through, on parts that are batched, parts drawn alone, and a whole
    subtree."""
    from farview.input.scene import MaterialOverride

    scene = Scene()
    root = scene.add_model(load_model(SAMPLE), "Engine")
    quad = scene.add_model(load_model_bytes(textured_quad_glb(png_bytes(quadrant_texture()))),
                           "Quad")  # textured: drawn alone, never batched
    quad.position, quad.scale = (-0.35, 0.3, -0.2), (0.15, 0.15, 0.15)
    r = Renderer(W, H)
    try:
        eye = [view((0.5, 0.4, 1.4))]
        frame(r, scene, eye)
        assert len(r._batches) > 1
        parts = [it.entity for it in scene.draw_list()]
        small = [e for e in parts if e.mesh and e.mesh.triangle_count <= BATCH_MAX_TRIANGLES
                 and all(p.plain for p in e.mesh.primitives)]
        big = next(e for e in parts if e.mesh and not all(p.plain for p in e.mesh.primitives))
        assert r._placement is not None and len(r._placement.individual) == 1
        holder = next(e for e in scene.entities() if e.mesh is None and len(e.children) > 2
                      and e.parent is not None and e.parent is not root)
        a, b = small[len(small) // 2], small[-1]
        steps = [
            lambda: setattr(a, "selected", True),
            lambda: setattr(b, "hidden", True),
            lambda: setattr(holder, "tint", Tint((1.0, 0.0, 0.0), 1.0)),
            lambda: setattr(big, "material", MaterialOverride(color=(0.0, 0.0, 1.0))),
            lambda: setattr(a, "selected", None),
            lambda: setattr(holder, "see_through", True),
            lambda: setattr(b, "hidden", None),
            lambda: setattr(holder, "see_through", None),
            lambda: setattr(holder, "hidden", True),
            lambda: setattr(holder, "hidden", None),
            lambda: setattr(big, "selected", True),
        ]
        before = frame(r, scene, eye).astype(int)
        for i, step in enumerate(steps):
            placement, batches = r._placement, set(r._batches)
            step()
            image = frame(r, scene, eye).astype(int)
            assert r._placement is placement, f"step {i} made the whole draw list anew"
            if i == 0:  # one batched part selected: only the batch it left is remade
                assert len(batches - set(r._batches)) == 1 < len(batches)
            assert (np.abs(image - before).max(axis=2) > 30).sum() > 20, f"step {i} changed nothing"
            r._placement = r._prepared = None  # the whole draw list, made anew
            reference = frame(r, scene, eye).astype(int)
            np.testing.assert_array_equal(image, reference, err_msg=f"step {i}")
            before = image
    finally:
        r.close()


def test_dense_parts_are_lit_per_pixel_in_vertex_mode(egl_context: EglContext,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A part with more triangles than pixels under it costs more to light per vertex than
    per pixel: in vertex-lighting mode it is drawn exactly as pixel-lighting mode draws it,
    while the sample's parts (big triangles) stay lit per vertex."""
    import farview.host.renderer as renderer_module
    from benchmarks.bench_scale import sphere
    from farview.host.gltf import Mesh, Model, Node, Primitive

    pos, nrm, idx = sphere(500)  # 500,000 triangles
    prim = Primitive(pos, nrm, idx, load_model(SAMPLE).materials[0])
    mesh = Mesh("ball", (prim,))
    model = Model("ball", (Node(0, "ball", mesh=mesh),), (0,), (mesh,), (prim.material,))
    scene = Scene()
    scene.add_model(model, "ball")
    eye = [view((0.0, 0.8, 5.0))]
    images = {}
    for mode in ("vertex", "pixel"):
        r = Renderer(W, H, lighting=mode)
        r.lod = False
        images[mode] = frame(r, scene, eye).astype(int)
        assert r.last_dense == (1 if mode == "vertex" else 0)
        r.close()
    assert model_mask(images["pixel"]).sum() > 2000
    np.testing.assert_array_equal(images["vertex"], images["pixel"])
    monkeypatch.setattr(renderer_module, "DENSE_TRIANGLES_PER_PIXEL", math.inf)
    r = Renderer(W, H, lighting="vertex")
    r.lod = False
    lit_per_vertex = frame(r, scene, eye).astype(int)
    assert r.last_dense == 0
    assert np.abs(lit_per_vertex - images["pixel"]).max() > 0  # the switch is what differs
    r.close()
    engine = Scene()
    engine.add_model(load_model(SAMPLE), "Engine")
    r = Renderer(W, H, lighting="vertex")
    frame(r, engine, [view((0.5, 0.4, 1.4))])
    assert r.last_dense == 0
    r.close()


@pytest.mark.parametrize("batching", [True, False])
def test_parts_past_65536_vertices_draw_with_32_bit_indices(
        egl_context: EglContext, batching: bool) -> None:
    """Indices are uploaded 16-bit when a buffer has at most 65,536 vertices and 32-bit past
    that: a ball whose triangles use only vertices after 65,536 unused ones (drawn on its own,
    or merged as a batch) draws exactly as the same ball without them."""
    from OpenGL import GL

    from benchmarks.bench_scale import sphere
    from farview.host.gltf import Mesh, Model, Node, Primitive

    material = load_model(SAMPLE).materials[0]
    pos, nrm, idx = sphere(12)
    pad = 1 << 16
    padded = Primitive(np.concatenate([np.zeros((pad, 3), np.float32), pos]),
                       np.concatenate([np.tile(np.float32([0, 1, 0]), (pad, 1)), nrm]),
                       idx + pad, material)
    pictures = []
    for prim in (Primitive(pos, nrm, idx, material), padded):
        mesh = Mesh("ball", (prim,))
        model = Model("ball", (Node(0, "ball", mesh=mesh),), (0,), (mesh,), (material,))
        scene = Scene()
        scene.add_model(model, "ball")
        r = Renderer(W, H)
        r.batching = batching
        try:
            pictures.append(frame(r, scene, [view((0.0, 0.3, 3.0))]).astype(int))
            types = {p.index_type for gpus in r._meshes.values() for p in gpus}
            types |= {b.prim.index_type for b in r._batches.values()}
            assert types == {GL.GL_UNSIGNED_SHORT if prim is not padded else GL.GL_UNSIGNED_INT}
        finally:
            r.close()
    assert (pictures[0] != pictures[0][0, 0]).any(), "the ball should be in the picture"
    np.testing.assert_array_equal(pictures[1], pictures[0])


def test_normals_are_packed_to_ten_bits_a_component_and_unit_length() -> None:
    """The vertex buffers carry each normal as one GL_INT_2_10_10_10_REV word (4 bytes, not
    12): decoded as GL does (signed, 511 = 1.0), it points where the normal did, within a
    ten-bit step, whatever its length was; a zero normal stays zero."""
    from farview.host.renderer import _pack_normals

    rng = np.random.default_rng(5)
    n = rng.normal(size=(1000, 3)).astype(np.float32)
    n[:3] = [[0, 0, 1], [-1, 0, 0], [0, 0, 0]]
    n[3:10] *= 40.0  # not unit length (a batch's normals after a scaled part's normal matrix)
    words = _pack_normals(n)
    assert words.dtype == np.uint32 and words.shape == (1000,)
    parts = np.stack([(words >> shift) & 0x3FF for shift in (0, 10, 20)], axis=1).astype(np.int32)
    decoded = np.maximum(np.where(parts >= 512, parts - 1024, parts) / 511.0, -1.0)
    unit = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-30)
    assert np.abs(decoded - unit).max() <= 0.5 / 511 + 1e-6
    assert decoded[0].tolist() == [0.0, 0.0, 1.0] and decoded[1].tolist() == [-1.0, 0.0, 0.0]
    assert decoded[2].tolist() == [0.0, 0.0, 0.0]
    assert ((words >> 30) == 0).all()


def test_a_level_of_detail_process_that_dies_is_replaced(
        egl_context: EglContext, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A level-of-detail process killed (by the kernel, for memory, say) broke its pool for
    good: every later frame that uploaded a big part raised ``BrokenProcessPool``, so a host
    drew nothing new. Now a new pool takes its place and the next part gets its levels; after
    :data:`LOD_POOL_RESTARTS` replacements, new parts are drawn in full, and frames go on."""
    import logging
    import signal
    import time

    import psutil

    from benchmarks.bench_scale import sphere
    from farview.host import renderer as renderer_module

    pos, nrm, idx = sphere(100)  # 19,800 triangles: levels made in the background
    r = Renderer(W, H, lighting="vertex")
    r.lod_workers = 1
    eye = [view((0.0, 0.5, 2.8))]
    scene = Scene()

    def levels_of_a_new_part(name: str) -> list[tuple[object, ...]]:
        """A new part's levels, once the background has made them (or failed to)."""
        mesh, model = ball(pos * 0.5, nrm, idx)
        root = scene.add_model(model, name)
        r.render(scene, eye)
        deadline = time.monotonic() + 60
        while r.lod_pending:
            assert time.monotonic() < deadline, "levels of detail never finished"
            time.sleep(0.05)
            r.render(scene, eye)
        lods = list(r._meshes[mesh.key][0].lods)
        scene.remove(root)
        return lods

    def kill_the_lod_processes() -> None:
        workers = [p for p in psutil.Process().children()
                   if "spawn_main" in " ".join(p.cmdline())]
        assert workers, "no level-of-detail process to kill"
        for p in workers:
            p.send_signal(signal.SIGKILL)
        psutil.wait_procs(workers, timeout=10)
        time.sleep(1.0)  # the pool's manager thread notices the death

    try:
        assert levels_of_a_new_part("first")
        kill_the_lod_processes()
        with caplog.at_level(logging.WARNING, logger=renderer_module.log.name):
            assert levels_of_a_new_part("after one death"), "no levels after a new pool"
        assert "a level-of-detail process died" in caplog.text
        monkeypatch.setattr(renderer_module, "LOD_POOL_RESTARTS", 1)
        kill_the_lod_processes()
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger=renderer_module.log.name):
            assert levels_of_a_new_part("after two deaths") == []  # drawn in full
            assert levels_of_a_new_part("and later") == []
        assert "no more levels of detail are made on this host" in caplog.text
        assert model_mask(frame(r, scene, eye)).sum() == 0  # (every part removed: frames go on)
    finally:
        r.close()
