"""A frame that refines a coarse picture at rest can be given up: the renderer stops between
parts when its ``abort`` says so, and the render loop gives such a frame up as soon as a pose
for another view comes (that pose is drawn next). Real renderer (EGL, llvmpipe) and encoder."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from benchmarks.bench_scale import sphere
from farview.host.egl import EglContext
from farview.host.gltf import Mesh, Model, Node, Primitive, load_model
from farview.host.lod import LOD_REDUCTIONS
from farview.host.render_loop import RenderLoop, StreamSettings
from farview.host.renderer import Renderer
from farview.host.runtime import _ContextRenderer
from farview.host.scene import Scene
from farview.input.frame_meta import FrameMetadata
from farview.input.pose import Fov, Pose, PoseMessage, View
from tests.host.conftest import SAMPLE
from tests.host.test_renderer import H, W, frame, view


def _balls(count: int, segments: int) -> Scene:
    """``count`` copies of one ball (one mesh, a node each) in a row along x."""
    pos, nrm, idx = sphere(segments)
    prim = Primitive(pos * np.float32(0.4), nrm, idx, load_model(SAMPLE).materials[0])
    mesh = Mesh("ball", (prim,))
    side = int(np.ceil(count ** 0.5))
    nodes = tuple(Node(i, f"ball_{i}", mesh=mesh,
                       translation=(float(i % side) - side / 2, 0.0, -float(i // side)))
                  for i in range(count))
    scene = Scene()
    scene.add_model(Model("balls", nodes, tuple(range(count)), (mesh,), (prim.material,)),
                    "balls")
    return scene


def test_an_aborted_frame_leaves_the_renderer_as_it_was(egl_context: EglContext) -> None:
    scene = _balls(9, 40)
    next(iter(scene.draw_list())).entity.selected = True  # the outline's stencil too
    eye = [view((0.0, 1.5, 5.0))]
    r = Renderer(W, H)
    try:
        whole = frame(r, scene, eye)
        assert not r.last_aborted
        asked = []

        def stop() -> bool:
            asked.append(1)
            return True

        r.render(scene, eye, abort=stop)
        assert r.last_aborted and r.frames_aborted == 1 and len(asked) == 1  # after one part
        r.render(scene, eye, abort=lambda: False)  # asked, never stopped: the whole frame
        assert not r.last_aborted and r.frames_aborted == 1
        np.testing.assert_array_equal(r.read_rgba(), whole)
        r.render(scene, eye, abort=stop)
        np.testing.assert_array_equal(frame(r, scene, eye), whole)
    finally:
        r.close()


def test_a_big_cloud_drawn_in_full_is_given_up_between_its_pieces(
        egl_context: EglContext, monkeypatch: Any) -> None:
    """One part, a point cloud: a frame drawing it in full asks ``abort`` between pieces of
    POINT_PIECE points, so that a refinement of a single huge scan can be given up too."""
    import farview.host.renderer as renderer_module
    from farview.host.gltf import load_model_bytes
    from tests.host.test_point_clouds import grid, points_glb

    monkeypatch.setattr(renderer_module, "POINT_PIECE", 4096)
    pts = grid(150, 0.01)  # 22,500 points: 6 pieces
    scene = Scene()
    scene.add_model(load_model_bytes(points_glb(pts, base_color=(0.0, 1.0, 0.0, 1.0))), "scan")
    eye = [view((0.0, 0.0, 2.0))]
    r = Renderer(W, H)
    try:
        whole = frame(r, scene, eye)
        asked: list[int] = []

        def stop_at(n: int) -> Any:
            def ask() -> bool:
                asked.append(1)
                return len(asked) >= n
            return ask

        r.render(scene, eye, abort=stop_at(2))
        assert r.last_aborted and len(asked) == 2, "given up at the second piece's question"
        asked.clear()
        r.render(scene, eye, abort=stop_at(100))
        assert not r.last_aborted and len(asked) == 5, "asked between each of the 6 pieces"
        np.testing.assert_array_equal(r.read_rgba(), whole)
    finally:
        r.close()


def _pose(seq: int, x: float) -> PoseMessage:
    return PoseMessage(seq, seq, (View(Pose((x, 1.5, 6.0)), Fov.symmetric(60.0, 4 / 3)),),
                       (320, 240))


def test_the_render_loop_gives_up_a_refinement_when_the_camera_moves_on() -> None:
    """Many big parts, moving frames held coarse: a pose for the same view again refines the
    picture (a slow frame); a pose for another view that comes meanwhile ends it, is drawn
    next, and the pose that was being refined gets no frame. Once the camera rests, the
    refinement is drawn through."""
    scene = _balls(144, 100)  # 144 × 19,800 triangles, one mesh
    made: list[_ContextRenderer] = []

    def make() -> _ContextRenderer:
        made.append(_ContextRenderer())
        return made[-1]

    loop = RenderLoop(scene, threading.RLock(), make)
    frames: list[FrameMetadata] = []
    lock = threading.Lock()

    def on_frame(_packets: list[Any], meta: FrameMetadata) -> None:
        with lock:
            frames.append(meta)

    def until(sequence: int) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with lock:
                if frames and frames[-1].pose_sequence == sequence:
                    return
            time.sleep(0.005)
        raise AssertionError(f"no frame for pose {sequence}")

    loop.start()
    try:
        loop.start_stream(on_frame, StreamSettings(max_fps=240))
        r = made[0].renderer
        seq = 1
        loop.submit_pose(_pose(seq, 0.0))
        until(seq)
        deadline = time.monotonic() + 60
        while loop.call(lambda: r.lod_pending).result():  # uploaded by the next frame drawn
            assert time.monotonic() < deadline, "the levels never came"
            time.sleep(0.05)
            seq += 1
            loop.submit_pose(_pose(seq, 0.001 * (seq % 2)))
            until(seq)

        def hold_coarse() -> None:  # every moving frame at the coarsest level
            r.lod_budget_ms = 0.0
            r.lod_level = len(LOD_REDUCTIONS)
        loop.call(hold_coarse).result()
        x = 0.0
        for _ in range(10):
            x += 0.05
            seq += 1
            loop.submit_pose(_pose(seq, x))  # moving: coarse
            until(seq)
            assert loop.call(lambda: r.last_reduced).result()
            seq += 1
            refining = seq
            loop.submit_pose(_pose(refining, x))  # at rest: refined, slowly
            time.sleep(0.03)
            seq += 1
            loop.submit_pose(_pose(seq, x + 0.01))  # moving on while it refines
            until(seq)
            if loop.refinements_abandoned:
                with lock:
                    assert refining not in [m.pose_sequence for m in frames]
                break
        assert loop.refinements_abandoned >= 1
        assert r.frames_aborted == loop.refinements_abandoned
        seq += 1
        loop.submit_pose(_pose(seq, x + 0.01))  # the camera rests: refined through
        until(seq)
        assert not loop.call(lambda: r.last_reduced).result()
        # one moving pose and then none: refined all the same, a frame for the same pose
        # (a client that sent one pose and waited got the coarse picture only)
        seq += 1
        loop.submit_pose(_pose(seq, x + 0.2))
        until(seq)
        assert loop.call(lambda: r.last_reduced).result()
        with lock:
            drawn = len(frames)
        deadline = time.monotonic() + 30
        while loop.call(lambda: r.last_reduced).result():
            assert time.monotonic() < deadline, "the coarse picture was never refined"
            time.sleep(0.05)
        with lock:
            assert len(frames) > drawn and frames[-1].pose_sequence == seq
    finally:
        loop.stop_stream()
        loop.stop()
