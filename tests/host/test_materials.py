"""glTF materials as drawn: golden images of the feature models (tests/host/feature_models.py)
and of the foreign models in ../shared/models, plus analytic checks of what each feature must
do to the pixels.

Golden images are farview's own renders, checked by eye once (``docs/materials.md`` shows
them). To remake them after a deliberate change: ``FARVIEW_UPDATE_GOLDEN=1 pytest
tests/host/test_materials.py`` (each test then fails, saying what it wrote: look at them).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from farview.host.egl import EglContext
from farview.host.gltf import load_model, load_model_bytes
from farview.host.renderer import BACKGROUND, Renderer
from farview.host.scene import Scene
from farview.input.camera import home_view
from farview.input.pose import Fov, Pose, View
from tests.host.conftest import FOREIGN, SHARED_MODELS
from tests.host.feature_models import MODELS, SPACING

GOLDEN = Path(__file__).with_name("golden")
W, H = 480, 200
EYE_Z, FOV_Y = 3.0, 30.0
PX_PER_M = (H / 2) / (EYE_Z * np.tan(np.radians(FOV_Y / 2)))
BG = np.round(np.array(BACKGROUND[:3]) * 255)
UPDATE = os.environ.get("FARVIEW_UPDATE_GOLDEN") == "1"

MEAN_TOLERANCE = 1.5
"""Largest mean |difference| (levels, over all pixels and channels) from a golden image."""
PIXEL_TOLERANCE, PIXEL_SHARE = 24, 0.005
"""At most PIXEL_SHARE of the pixels may differ by more than PIXEL_TOLERANCE levels in some
channel (edges move by a pixel when a rasteriser rounds differently)."""


@pytest.fixture(scope="module")
def renderer(egl_context: EglContext) -> Iterator[Renderer]:
    # vertex lighting, as on this machine by default; textured parts are lit per pixel anyway
    r = Renderer(W, H, lighting="vertex")
    yield r
    r.close()


def render_feature(r: Renderer, name: str) -> np.ndarray:
    scene = Scene()
    scene.add_model(load_model_bytes(MODELS[name](), name=name), name)
    r.render(scene, [View(Pose((0.0, 0.0, EYE_Z), (0.0, 0.0, 0.0, 1.0)),
                          Fov.symmetric(FOV_Y, W / H))])
    return r.read_rgba()[:, :, :3].astype(np.int32)


def at(img: np.ndarray, slot: float, fx: float, fy: float, size: float = 1.0) -> np.ndarray:
    """Mean colour of a 5×5 block at (fx, fy) of the quad in ``slot`` (0..1 from its left and
    top edges), for a quad of ``size`` metres."""
    x = round(W / 2 + (slot * SPACING + (fx - 0.5) * size) * PX_PER_M)
    y = round(H / 2 + (fy - 0.5) * size * PX_PER_M)
    return img[y - 2:y + 3, x - 2:x + 3].reshape(-1, 3).mean(axis=0)


def compare_golden(img: np.ndarray, name: str) -> None:
    path = GOLDEN / f"{name}.png"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        Image.fromarray(img.astype(np.uint8)).save(path)
        pytest.fail(f"wrote {path}: look at it before committing")
    assert path.exists(), f"no golden image {path}; make it with FARVIEW_UPDATE_GOLDEN=1"
    ref = np.asarray(Image.open(path).convert("RGB")).astype(np.int32)
    assert ref.shape == img.shape
    diff = np.abs(img - ref)
    far = (diff.max(axis=2) > PIXEL_TOLERANCE).mean()
    assert diff.mean() <= MEAN_TOLERANCE and far <= PIXEL_SHARE, (
        f"{name}: mean |diff| {diff.mean():.2f} (limit {MEAN_TOLERANCE}), "
        f"{far:.2%} of pixels off by > {PIXEL_TOLERANCE} (limit {PIXEL_SHARE:.1%})")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_feature_model_matches_golden(renderer: Renderer, name: str) -> None:
    img = render_feature(renderer, name)
    assert (np.abs(img - BG).sum(axis=2) > 6).mean() > 0.05, "nothing drawn"
    compare_golden(img, name)


@pytest.mark.parametrize("name", FOREIGN)
def test_foreign_model_matches_golden(renderer: Renderer, name: str) -> None:
    model = load_model(SHARED_MODELS / f"{name}.glb")
    scene = Scene()
    root = scene.add_model(model, name)
    box = scene.world_bounds(root)
    assert box is not None
    pose, fov = home_view(tuple(box.min), tuple(box.max), W / H)  # type: ignore[arg-type]
    renderer.render(scene, [View(pose, fov)])
    img = renderer.read_rgba()[:, :, :3].astype(np.int32)
    assert (np.abs(img - BG).sum(axis=2) > 6).mean() > 0.02, "nothing drawn"
    compare_golden(img, f"foreign_{name}")


def test_alpha_modes(renderer: Renderer) -> None:
    img = render_feature(renderer, "alpha_modes")
    # OPAQUE ignores alpha: the texture's transparent right half shows as the left half
    np.testing.assert_allclose(at(img, -1, 0.8, 0.5), at(img, -1, 0.2, 0.5), atol=3)
    assert at(img, -1, 0.8, 0.5)[2] > 100
    # MASK: cells of alpha 0 are holes (the background), cells of alpha 1 are drawn
    np.testing.assert_allclose(at(img, 0, 3 / 8, 1 / 8), BG, atol=2)
    assert at(img, 0, 1 / 8, 1 / 8)[0] > 120
    # BLEND: red at alpha 0.5 over green: both show; where nothing is behind, red over grey
    mixed = at(img, 1, 0.5, 0.5)
    assert mixed[0] > 70 and mixed[1] > 70, mixed
    edge = at(img, 1, 0.03, 0.5)
    assert edge[0] > edge[1] + 40, edge


def test_normal_map_leans_the_lighting(renderer: Renderer) -> None:
    img = render_feature(renderer, "normal_map")
    up, flat, down = (at(img, s, 0.5, 0.5).mean() for s in (-1, 0, 1))
    # The key light comes from above: normals leaning up are lit more, leaning down less.
    # Left: tangents generated; right: tangents from the file.
    assert up > flat + 15 and down < flat - 15, (up, flat, down)


def test_wrap_modes(renderer: Renderer) -> None:
    img = render_feature(renderer, "wrap_modes")
    red, green, blue = (at(img, 0, 0.02, 0.02), at(img, 0, 0.98, 0.02), at(img, 0, 0.02, 0.98))
    # CLAMP_TO_EDGE: coordinates below 0 and past 1 take the edge texels, so each corner of
    # the quad has its nearest quadrant's colour
    assert red[0] > 150 and red[1] < 60 and red[2] < 60, red
    assert green[1] > 150 and green[0] < 60, green
    assert blue[2] > 150 and blue[0] < 60, blue
    # REPEAT: the top-left corner (uv -1, -1) is a copy of the texture's top-left quadrant
    r = at(img, -1, 0.05, 0.05)
    assert r[0] > 150 and r[1] < 60, r
    # MIRRORED_REPEAT: uv (-0.75, ...) mirrors to 0.75: the right (green) column at the left edge
    m = at(img, 1, 0.05, 0.05 + 1 / 3)
    assert m[1] > 150 and m[0] < 60, m


def test_vertex_colours(renderer: Renderer) -> None:
    img = render_feature(renderer, "vertex_colors")
    bottom_left, bottom_right = at(img, -0.5, 0.05, 0.95), at(img, -0.5, 0.95, 0.95)
    top_right = at(img, -0.5, 0.95, 0.05)
    assert bottom_left[0] > bottom_left[1] + 80 and bottom_left[0] > bottom_left[2] + 80
    assert bottom_right[1] > bottom_right[0] + 80
    assert top_right[2] > top_right[0] + 80
    # normalized unsigned bytes, times a white texture: yellow at the bottom, cyan at the top
    yellow, cyan = at(img, 0.5, 0.5, 0.95), at(img, 0.5, 0.5, 0.05)
    assert yellow[2] < yellow[0] - 80 and cyan[0] < cyan[2] - 80


def test_emissive(renderer: Renderer) -> None:
    img = render_feature(renderer, "emissive")
    # A black base colour lit is nearly black (a dielectric's 4 % reflection of the light):
    # what shows is the emissive colour
    for slot, fx, fy, want in ((-1, 0.5, 0.5, (1, 0, 0)), (0, 0.25, 0.75, (0, 0, 1)),
                               (1, 0.5, 0.5, (1, 1, 0))):  # factor, texture, strength 4
        got = at(img, slot, fx, fy)
        on, off = np.asarray(want) == 1, np.asarray(want) == 0
        assert (got[on] > 240).all() and (got[off] < 60).all(), (slot, got)


def test_texture_transform(renderer: Renderer) -> None:
    img = render_feature(renderer, "texture_transform")
    for fx, fy in ((0.25, 0.25), (0.75, 0.75)):  # offset (0.5, 0): all green
        g = at(img, -1, fx, fy)
        assert g[1] > 150 and g[0] < 60, g
    # scale 2 with REPEAT: the quadrants twice across, so red at 0.05 and again at 0.55
    for fx in (0.05, 0.55):
        assert at(img, 0, fx, 0.05)[0] > 150
    # rotation 90°: (u, v) → (-v, u): the quad's top-left corner samples the top-right (green)
    g = at(img, 1, 0.1, 0.1)
    assert g[1] > 150 and g[0] < 60, g


def test_unlit_shows_the_base_colour(renderer: Renderer) -> None:
    img = render_feature(renderer, "unlit")
    expected = np.round(np.power([0.2, 0.5, 0.8], 1 / 2.2) * 255)
    np.testing.assert_allclose(at(img, -0.5, 0.5, 0.5), expected, atol=4)
    assert np.abs(at(img, 0.5, 0.5, 0.5) - expected).max() > 20  # the lit one differs


def test_quantized_attributes(renderer: Renderer) -> None:
    model = load_model_bytes(MODELS["quantized"]())
    prim = model.meshes[0].primitives[0]
    assert prim.positions.max() == 500 and np.allclose(prim.normals, [0, 0, 1], atol=1e-6)
    assert prim.texcoords is not None and prim.texcoords.max() == 1.0
    img = render_feature(renderer, "quantized")
    tl, br = at(img, 0, 0.25, 0.25), at(img, 0, 0.75, 0.75)
    assert tl[0] > 150 and tl[1] < 60 and br.min() > 150, (tl, br)


def test_occlusion_darkens_the_ambient_only(renderer: Renderer) -> None:
    img = render_feature(renderer, "metal_rough_occlusion")
    occluded, open_ = at(img, 0.5, 0.5, 0.25).mean(), at(img, 0.5, 0.5, 0.75).mean()
    assert occluded < open_ - 10 and occluded > 40, (occluded, open_)
    # metallic-roughness texture: the rough dielectric half is lit; the smooth metal half,
    # with no reflection of the key light towards this eye, is darker
    assert at(img, -0.5, 0.25, 0.5).mean() > at(img, -0.5, 0.75, 0.5).mean() + 20


def render_scene(r: Renderer, scene: Scene) -> np.ndarray:
    r.render(scene, [View(Pose((0.0, 0.0, EYE_Z), (0.0, 0.0, 0.0, 1.0)),
                          Fov.symmetric(FOV_Y, W / H))])
    return r.read_rgba()[:, :, :3].astype(np.int32)


def test_punctual_lights_from_the_file_light_their_spots(renderer: Renderer) -> None:
    scene = Scene()
    root = scene.add_model(load_model_bytes(MODELS["punctual_lights"]()), "lights")
    lit = render_scene(renderer, scene)
    for child in root.children:
        if child.name in ("point", "spot"):
            child.hidden = True  # a hidden entity's light is off
    dark = render_scene(renderer, scene)

    def gain(x: float, y: float) -> float:
        return float((at(lit, x / SPACING, 0.5, 0.5 + y) - at(dark, x / SPACING, 0.5, 0.5 + y))
                     .mean())

    # the point light, warm, in front of x = 0.8: strong there, less at 0.4 m, none 1.6 m away
    assert gain(0.8, 0.0) > 40 and gain(0.8, 0.0) > gain(0.4, 0.0) + 10 > 10
    near = at(lit, 0.8 / SPACING, 0.5, 0.5) - at(dark, 0.8 / SPACING, 0.5, 0.5)
    assert near[0] > near[2] + 20, near  # its colour is orange
    assert abs(gain(-0.8, 0.45)) < 3  # outside the point light's range and the spot's cone
    # the spot at x = -0.8: inside its cone lit, outside (0.45 m off its axis) not
    assert gain(-0.8, 0.0) > 40, gain(-0.8, 0.0)


def test_scene_lights_from_the_api(renderer: Renderer) -> None:
    from dataclasses import replace

    from farview.input.errors import ProtocolError
    from farview.input.scene import Light

    scene = Scene()
    scene.add_model(load_model_bytes(MODELS["punctual_lights"]()), "lights")
    for e in scene.roots[0].children:
        e.hidden = e.name != "wall"
    base = render_scene(renderer, scene)
    scene.lighting = replace(scene.lighting, lights=(
        Light("point", position=(-0.8, 0.4, 0.25), color=(0.2, 0.4, 1.0), intensity=0.3),))
    blue = render_scene(renderer, scene)
    near = at(blue, -0.8 / SPACING, 0.5, 0.5 - 0.4) - at(base, -0.8 / SPACING, 0.5, 0.5 - 0.4)
    far = at(blue, 0.8 / SPACING, 0.5, 0.9) - at(base, 0.8 / SPACING, 0.5, 0.9)
    assert near[2] > near[0] + 20 and near[2] > 40, near
    assert np.abs(far).max() < 8, far
    with pytest.raises(ProtocolError, match="at most 8 lights"):
        replace(scene.lighting, lights=(Light(),) * 9)
    with pytest.raises(ProtocolError, match="inner_cone < outer_cone"):
        Light("spot", inner_cone=0.5, outer_cone=0.4)


def test_environment_is_what_a_mirror_shows(renderer: Renderer) -> None:
    from dataclasses import replace

    shown = {}
    for env in ("none", "studio", "outdoor"):
        scene = Scene()
        scene.add_model(load_model_bytes(MODELS["metal_mirror"]()), "mirror")
        scene.lighting = replace(scene.lighting, environment=env)
        shown[env] = at(render_scene(renderer, scene), 0, 0.5, 0.5, size=1.5)
    # Without an environment a smooth metal facing away from the key light shows the dim
    # hemisphere ambient; with one it shows what is behind the eye: the studio's grey wall,
    # the outdoor's brighter horizon.
    assert shown["studio"].mean() > shown["none"].mean() + 15, shown
    assert shown["outdoor"].mean() > shown["studio"].mean() + 8, shown
