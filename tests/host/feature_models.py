"""Small glTF models, one per material feature, for the renderer's golden-image and analytic
tests (in the spirit of Khronos' feature test models; made here, by this script).

Each model is a row of unit quads in the z = 0 plane, facing +z (glTF's front), 1.25 apart
along x and centred on the origin; :data:`MODELS` names them. Write them out to look at them
in another viewer with::

    python -m tests.host.feature_models OUTDIR
"""

from __future__ import annotations

import io
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from farview.host.gltf import pack_glb

SPACING = 1.25
"""Distance between the quads' centres."""
QUAD_UV = np.array([[0, 1], [1, 1], [1, 0], [0, 0]], dtype=np.float32)
"""A quad's texture coordinates: the image's top-left corner at the quad's top-left."""


def png(rgba: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgba, dtype=np.uint8)).save(out, format="PNG")
    return out.getvalue()


def solid(rgba: tuple[int, int, int, int], size: int = 4) -> np.ndarray:
    return np.tile(np.array(rgba, dtype=np.uint8), (size, size, 1))


def checker(a: tuple[int, ...], b: tuple[int, ...], cells: int = 4, cell: int = 8) -> np.ndarray:
    yy, xx = np.mgrid[0:cells * cell, 0:cells * cell] // cell
    pick = ((xx + yy) % 2 == 0)[..., None]
    return np.where(pick, np.array(a, np.uint8), np.array(b, np.uint8)).astype(np.uint8)


def quadrants() -> np.ndarray:
    """2×2: red, green / blue, white (top row first), opaque."""
    px = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]], np.uint8)
    return np.concatenate([px.reshape(2, 2, 3), np.full((2, 2, 1), 255, np.uint8)], axis=2)


class Builder:
    """Accumulates a glTF document and its binary chunk; :meth:`glb` packs them."""

    def __init__(self) -> None:
        self.doc: dict[str, Any] = {"asset": {"version": "2.0", "generator": "farview tests"},
                                    "scene": 0, "scenes": [{"nodes": []}], "nodes": [],
                                    "meshes": [], "materials": [], "accessors": [],
                                    "bufferViews": [], "buffers": [], "textures": [],
                                    "images": [], "samplers": []}
        self.blob = bytearray()
        self.fallback_bytes = 0
        """Size of buffer 1, a fallback buffer without data (EXT_meshopt_compression), if
        not 0."""

    def view(self, data: bytes) -> int:
        self.blob += b"\0" * (-len(self.blob) % 4)
        self.doc["bufferViews"].append({"buffer": 0, "byteOffset": len(self.blob),
                                        "byteLength": len(data)})
        self.blob += data
        return len(self.doc["bufferViews"]) - 1

    def accessor(self, arr: np.ndarray, atype: str, *, normalized: bool = False,
                 bounds: bool = False) -> int:
        ctype = {np.dtype("float32"): 5126, np.dtype("int8"): 5120, np.dtype("uint8"): 5121,
                 np.dtype("int16"): 5122, np.dtype("uint16"): 5123,
                 np.dtype("uint32"): 5125}[arr.dtype]
        ncomp = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}[atype]
        rows = arr.reshape(len(arr), ncomp)
        if ncomp > 1 and arr.dtype.itemsize * ncomp % 4:
            # vertex attributes: each element starts on a 4-byte boundary (glTF's rule)
            pad = np.zeros((len(rows), (-arr.dtype.itemsize * ncomp % 4) // arr.dtype.itemsize),
                           arr.dtype)
            data = np.concatenate([rows, pad], axis=1).tobytes()
            stride = (arr.dtype.itemsize * ncomp + 3) // 4 * 4
        else:
            data, stride = rows.tobytes(), None
        acc: dict[str, Any] = {"bufferView": self.view(data), "componentType": ctype,
                               "count": len(rows), "type": atype}
        if stride is not None:
            self.doc["bufferViews"][-1]["byteStride"] = stride
        if normalized:
            acc["normalized"] = True
        if bounds:
            acc["min"] = rows.min(axis=0).tolist()
            acc["max"] = rows.max(axis=0).tolist()
        self.doc["accessors"].append(acc)
        return len(self.doc["accessors"]) - 1

    def texture(self, rgba: np.ndarray, sampler: dict[str, int] | None = None) -> int:
        self.doc["images"].append({"bufferView": self.view(png(rgba)), "mimeType": "image/png"})
        tex: dict[str, Any] = {"source": len(self.doc["images"]) - 1}
        if sampler is not None:
            self.doc["samplers"].append(sampler)
            tex["sampler"] = len(self.doc["samplers"]) - 1
        self.doc["textures"].append(tex)
        return len(self.doc["textures"]) - 1

    def material(self, **spec: Any) -> int:
        self.doc["materials"].append(spec)
        return len(self.doc["materials"]) - 1

    def quad(self, slot: float, material: int, *, name: str, uv: np.ndarray | None = None,
             attributes: dict[str, int] | None = None, z: float = 0.0,
             size: float = 1.0) -> None:
        """A quad centred at ``slot`` × :data:`SPACING` on x, facing +z."""
        h = size / 2
        x = slot * SPACING
        pos = np.array([[x - h, -h, z], [x + h, -h, z], [x + h, h, z], [x - h, h, z]], np.float32)
        attrs = dict(attributes or {})
        attrs.setdefault("POSITION", self.accessor(pos, "VEC3", bounds=True))
        attrs.setdefault("NORMAL", self.accessor(np.tile(np.float32([0, 0, 1]), (4, 1)), "VEC3"))
        attrs.setdefault("TEXCOORD_0", self.accessor(QUAD_UV if uv is None else uv, "VEC2"))
        idx = self.accessor(np.array([0, 1, 2, 0, 2, 3], np.uint16), "SCALAR")
        self.doc["meshes"].append({"name": name, "primitives": [
            {"attributes": attrs, "indices": idx, "material": material}]})
        self.doc["nodes"].append({"name": name, "mesh": len(self.doc["meshes"]) - 1})
        self.doc["scenes"][0]["nodes"].append(len(self.doc["nodes"]) - 1)

    def extension(self, name: str, required: bool = False) -> None:
        self.doc.setdefault("extensionsUsed", [])
        if name not in self.doc["extensionsUsed"]:
            self.doc["extensionsUsed"].append(name)
        if required:
            self.doc.setdefault("extensionsRequired", [])
            if name not in self.doc["extensionsRequired"]:
                self.doc["extensionsRequired"].append(name)

    def glb(self) -> bytes:
        doc = {k: v for k, v in self.doc.items() if v != []}
        blob = bytes(self.blob) + b"\0" * (-len(self.blob) % 4)
        doc["buffers"] = [{"byteLength": len(blob)}]
        if self.fallback_bytes:
            doc["buffers"].append({"byteLength": self.fallback_bytes, "extensions": {
                "EXT_meshopt_compression": {"fallback": True}}})
        return pack_glb(doc, blob)


def _pbr(base: tuple[float, ...] = (1, 1, 1, 1), **extra: Any) -> dict[str, Any]:
    return {"baseColorFactor": list(base), "metallicFactor": 0.0, "roughnessFactor": 1.0,
            **extra}


def alpha_modes() -> bytes:
    """Left: OPAQUE with a texture whose right half has alpha 0 (ignored: all of it shows).
    Middle: MASK (cutoff 0.5) with a checker of alpha 1 / 0 cells (the 0 cells are holes).
    Right: BLEND red at alpha 0.5 in front of an opaque green quad (a mix of the two)."""
    b = Builder()
    half = solid((40, 120, 220, 255), 8)
    half[:, 4:, 3] = 0
    b.quad(-1, b.material(name="opaque", pbrMetallicRoughness=_pbr(
        baseColorTexture={"index": b.texture(half, {"magFilter": 9728, "minFilter": 9728})})),
        name="opaque")
    cells = checker((230, 200, 40, 255), (230, 200, 40, 0))
    b.quad(0, b.material(name="mask", alphaMode="MASK", alphaCutoff=0.5, pbrMetallicRoughness=_pbr(
        baseColorTexture={"index": b.texture(cells, {"magFilter": 9728, "minFilter": 9728})})),
        name="mask")
    b.quad(1, b.material(name="green", pbrMetallicRoughness=_pbr((0.1, 0.8, 0.1, 1))),
           name="behind", z=-0.2, size=0.8)
    b.quad(1, b.material(name="blend", alphaMode="BLEND", pbrMetallicRoughness=_pbr(
        (0.9, 0.1, 0.1, 0.5))), name="blend")
    return b.glb()


def normal_tilt(tilt_up: float) -> np.ndarray:
    """A flat normal map whose normals lean towards the image's top (+y, green) by
    ``tilt_up`` (negative: towards the bottom)."""
    n = np.array([0.0, tilt_up, 1.0])
    n /= np.linalg.norm(n)
    rgb = np.round((n * 0.5 + 0.5) * 255).astype(np.uint8)
    return solid((int(rgb[0]), int(rgb[1]), int(rgb[2]), 255), 4)


def normal_map() -> bytes:
    """Left: normals leaning up (towards the key light, which comes from above: brighter).
    Middle: no normal map. Right: leaning down (darker). Tangents are generated (none in the
    file) for the left quad and given in the file for the right one."""
    b = Builder()
    up = b.texture(normal_tilt(1.0))
    down = b.texture(normal_tilt(-1.0))
    b.quad(-1, b.material(name="up", pbrMetallicRoughness=_pbr((0.7, 0.7, 0.7, 1)),
                          normalTexture={"index": up}), name="up")
    b.quad(0, b.material(name="flat", pbrMetallicRoughness=_pbr((0.7, 0.7, 0.7, 1))),
           name="flat")
    tangents = b.accessor(np.tile(np.float32([1, 0, 0, 1]), (4, 1)), "VEC4")
    b.quad(1, b.material(name="down", pbrMetallicRoughness=_pbr((0.7, 0.7, 0.7, 1)),
                         normalTexture={"index": down, "scale": 1.0}),
           name="down", attributes={"TANGENT": tangents})
    return b.glb()


def wrap_modes() -> bytes:
    """Three quads whose coordinates run from -1 to 2 over the quadrant texture: REPEAT
    (3 × 3 copies), CLAMP_TO_EDGE (the edge texels stretched outwards), MIRRORED_REPEAT."""
    b = Builder()
    uv = QUAD_UV * 3 - 1
    for slot, (name, wrap) in enumerate((("repeat", 10497), ("clamp", 33071),
                                         ("mirror", 33648)), start=-1):
        tex = b.texture(quadrants(), {"magFilter": 9728, "minFilter": 9728, "wrapS": wrap,
                                      "wrapT": wrap})
        b.quad(slot, b.material(name=name, pbrMetallicRoughness=_pbr(
            baseColorTexture={"index": tex})), name=name, uv=uv)
    return b.glb()


def vertex_colors() -> bytes:
    """Left: COLOR_0 (float VEC3) red, green, blue, white at the corners. Right: COLOR_0 as
    normalized unsigned bytes (VEC4) times a base colour texture of white."""
    b = Builder()
    cols = np.float32([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]])
    b.quad(-0.5, b.material(name="vc", pbrMetallicRoughness=_pbr()), name="vc_float",
           attributes={"COLOR_0": b.accessor(cols, "VEC3")})
    cols8 = np.uint8([[255, 255, 0, 255], [255, 255, 0, 255], [0, 255, 255, 255],
                      [0, 255, 255, 255]])
    b.quad(0.5, b.material(name="vc_tex", pbrMetallicRoughness=_pbr(
        baseColorTexture={"index": b.texture(solid((255, 255, 255, 255)))})),
        name="vc_u8", attributes={"COLOR_0": b.accessor(cols8, "VEC4", normalized=True)})
    return b.glb()


def emissive() -> bytes:
    """Left: black base, emissive red (1, 0, 0). Middle: emissive texture (quadrants) with
    factor 1. Right: emissive (0.25, 0.25, 0) at KHR_materials_emissive_strength 4."""
    b = Builder()
    black = _pbr((0, 0, 0, 1))
    b.quad(-1, b.material(name="red", pbrMetallicRoughness=black, emissiveFactor=[1, 0, 0]),
           name="emissive_factor")
    tex = b.texture(quadrants(), {"magFilter": 9728, "minFilter": 9728})
    b.quad(0, b.material(name="tex", pbrMetallicRoughness=black, emissiveFactor=[1, 1, 1],
                         emissiveTexture={"index": tex}), name="emissive_texture")
    b.extension("KHR_materials_emissive_strength")
    b.quad(1, b.material(name="strong", pbrMetallicRoughness=black,
                         emissiveFactor=[0.25, 0.25, 0.0],
                         extensions={"KHR_materials_emissive_strength": {"emissiveStrength": 4}}),
           name="emissive_strength")
    return b.glb()


def texture_transform() -> bytes:
    """The quadrant texture three times: offset (0.5, 0) with coordinates 0..0.5 (the green
    quadrant only), scale 2 with REPEAT (2 × 2 copies), rotation 90° about the origin with
    REPEAT. Required (extensionsRequired), as a file that depends on it says."""
    b = Builder()
    b.extension("KHR_texture_transform", required=True)
    sampler = {"magFilter": 9728, "minFilter": 9728}
    for slot, (name, tt, uv) in enumerate((
            ("offset", {"offset": [0.5, 0.0]}, QUAD_UV * 0.5),
            ("scale", {"scale": [2.0, 2.0]}, QUAD_UV),
            ("rotation", {"rotation": math.pi / 2}, QUAD_UV)), start=-1):
        tex = b.texture(quadrants(), sampler)
        b.quad(slot, b.material(name=name, pbrMetallicRoughness=_pbr(baseColorTexture={
            "index": tex, "extensions": {"KHR_texture_transform": tt}})), name=name, uv=uv)
    return b.glb()


def unlit() -> bytes:
    """Left: KHR_materials_unlit, base colour (0.2, 0.5, 0.8): shown as that colour whatever
    the light. Right: the same colour lit."""
    b = Builder()
    b.extension("KHR_materials_unlit")
    b.quad(-0.5, b.material(name="unlit", pbrMetallicRoughness=_pbr((0.2, 0.5, 0.8, 1)),
                            extensions={"KHR_materials_unlit": {}}), name="unlit")
    b.quad(0.5, b.material(name="lit", pbrMetallicRoughness=_pbr((0.2, 0.5, 0.8, 1))),
           name="lit")
    return b.glb()


def quantized() -> bytes:
    """KHR_mesh_quantization (required): positions as shorts (not normalized) scaled down by
    the node, normals as normalized bytes, texture coordinates as normalized unsigned shorts;
    a textured quad."""
    b = Builder()
    b.extension("KHR_mesh_quantization", required=True)
    pos = np.int16([[-500, -500, 0], [500, -500, 0], [500, 500, 0], [-500, 500, 0]])
    nrm = np.int8([[0, 0, 127]] * 4)
    uv = np.uint16([[0, 65535], [65535, 65535], [65535, 0], [0, 0]])
    tex = b.texture(quadrants(), {"magFilter": 9728, "minFilter": 9728})
    attrs = {"POSITION": b.accessor(pos, "VEC3", bounds=True),
             "NORMAL": b.accessor(nrm, "VEC3", normalized=True),
             "TEXCOORD_0": b.accessor(uv, "VEC2", normalized=True)}
    b.quad(0, b.material(name="q", pbrMetallicRoughness=_pbr(baseColorTexture={"index": tex})),
           name="quantized", attributes=attrs)
    b.doc["nodes"][-1]["scale"] = [0.001, 0.001, 0.001]
    return b.glb()


def metal_rough_occlusion() -> bytes:
    """Left: a metallic-roughness texture (left half rough dielectric, right half smooth
    metal). Right: an occlusion texture, top half occluded (R = 0) at strength 1."""
    b = Builder()
    mr = solid((0, 255, 0, 255), 8)
    mr[:, 4:] = (0, 50, 255, 255)
    b.quad(-0.5, b.material(name="mr", pbrMetallicRoughness={
        "baseColorFactor": [0.9, 0.7, 0.3, 1], "metallicFactor": 1.0, "roughnessFactor": 1.0,
        "metallicRoughnessTexture": {"index": b.texture(mr, {"magFilter": 9728,
                                                              "minFilter": 9728})}}),
        name="metal_rough")
    occ = solid((255, 255, 255, 255), 8)
    occ[:4] = (0, 0, 0, 255)
    b.quad(0.5, b.material(name="occ", pbrMetallicRoughness=_pbr((0.8, 0.8, 0.8, 1)),
                           occlusionTexture={"index": b.texture(occ, {"magFilter": 9728,
                                                                       "minFilter": 9728}),
                                             "strength": 1.0}), name="occlusion")
    return b.glb()


def _draco_quad(b: Builder, slot: float, material: int, name: str) -> None:
    """A quad of two triangles split into four (so the mesh has an inner vertex), its
    positions, normals and coordinates compressed with Draco (DracoPy's encoder)."""
    import DracoPy

    x = slot * SPACING
    pos = np.array([[x - .5, -.5, 0], [x + .5, -.5, 0], [x + .5, .5, 0], [x - .5, .5, 0],
                    [x, 0, 0]], np.float64)
    uv = np.array([[0, 1], [1, 1], [1, 0], [0, 0], [0.5, 0.5]], np.float64)
    faces = np.array([[0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]], np.uint32)
    data = DracoPy.encode(pos, faces, normals=np.tile([0.0, 0.0, 1.0], (5, 1)), tex_coord=uv,
                          quantization_bits=16, preserve_order=True)
    decoded = DracoPy.decode(data)
    ids = {}
    for uid in range(3):  # which unique id holds which attribute (DracoPy's own numbering)
        kind = decoded.get_attribute_by_unique_id(uid)["attribute_type"]
        ids[{0: "POSITION", 1: "NORMAL", 3: "TEXCOORD_0"}[kind]] = uid
    view = b.view(data)
    acc = b.doc["accessors"]
    attrs = {}
    for key, atype in (("POSITION", "VEC3"), ("NORMAL", "VEC3"), ("TEXCOORD_0", "VEC2")):
        spec: dict[str, Any] = {"componentType": 5126, "count": 5, "type": atype}
        if key == "POSITION":
            spec["min"], spec["max"] = pos.min(axis=0).tolist(), pos.max(axis=0).tolist()
        acc.append(spec)
        attrs[key] = len(acc) - 1
    acc.append({"componentType": 5123, "count": 12, "type": "SCALAR"})
    b.doc["meshes"].append({"name": name, "primitives": [{
        "attributes": attrs, "indices": len(acc) - 1, "material": material,
        "extensions": {"KHR_draco_mesh_compression": {"bufferView": view, "attributes": ids}}}]})
    b.doc["nodes"].append({"name": name, "mesh": len(b.doc["meshes"]) - 1})
    b.doc["scenes"][0]["nodes"].append(len(b.doc["nodes"]) - 1)


def draco() -> bytes:
    """KHR_draco_mesh_compression (required): a textured quad whose geometry is Draco data."""
    b = Builder()
    b.extension("KHR_draco_mesh_compression", required=True)
    tex = b.texture(quadrants(), {"magFilter": 9728, "minFilter": 9728})
    _draco_quad(b, 0, b.material(name="d", pbrMetallicRoughness=_pbr(
        baseColorTexture={"index": tex})), "draco")
    return b.glb()


def meshopt_compressed() -> bytes:
    """EXT_meshopt_compression (required): a textured quad whose vertex and index buffer views
    are meshoptimizer-encoded (the meshopt package's encoder), over a fallback buffer with no
    data, as gltfpack writes them."""
    import meshopt

    b = Builder()
    b.extension("EXT_meshopt_compression", required=True)
    tex = b.texture(quadrants(), {"magFilter": 9728, "minFilter": 9728})
    pos = np.array([[-.5, -.5, 0], [.5, -.5, 0], [.5, .5, 0], [-.5, .5, 0]], np.float32)
    nrm = np.tile(np.float32([0, 0, 1]), (4, 1))
    idx = np.array([0, 1, 2, 0, 2, 3], np.uint16)
    fallback = 1
    views = b.doc["bufferViews"]
    attrs = {}
    for key, arr, mode, atype in (("POSITION", pos, "ATTRIBUTES", "VEC3"),
                                  ("NORMAL", nrm, "ATTRIBUTES", "VEC3"),
                                  ("TEXCOORD_0", QUAD_UV, "ATTRIBUTES", "VEC2"),
                                  ("indices", idx, "TRIANGLES", "SCALAR")):
        data = meshopt.encode_gltf_buffer(arr, mode)
        compressed = b.view(data)
        ext = dict(views[compressed], byteStride=arr.nbytes // len(arr), count=len(arr),
                   mode=mode)
        views[compressed] = {"buffer": fallback, "byteLength": arr.nbytes,
                             "extensions": {"EXT_meshopt_compression": ext}}
        if mode == "ATTRIBUTES":
            views[compressed]["byteStride"] = ext["byteStride"]
        spec: dict[str, Any] = {"bufferView": compressed, "count": len(arr), "type": atype,
                                "componentType": 5123 if mode != "ATTRIBUTES" else 5126}
        if key == "POSITION":
            spec["min"], spec["max"] = pos.min(axis=0).tolist(), pos.max(axis=0).tolist()
        b.doc["accessors"].append(spec)
        attrs[key] = len(b.doc["accessors"]) - 1
    indices = attrs.pop("indices")
    material = b.material(name="m", pbrMetallicRoughness=_pbr(baseColorTexture={"index": tex}))
    b.doc["meshes"].append({"name": "meshopt", "primitives": [
        {"attributes": attrs, "indices": indices, "material": material}]})
    b.doc["nodes"].append({"name": "meshopt", "mesh": 0})
    b.doc["scenes"][0]["nodes"].append(0)
    b.fallback_bytes = sum(v["byteLength"] for v in views if "extensions" in v)
    return b.glb()


def punctual_lights() -> bytes:
    """KHR_lights_punctual: a wide grey quad (2.5 m, facing +z) lit by a point light 0.3 m in
    front of its right part (range 2) and a narrow spot light 1 m in front of its left part,
    shining down -z (the node's -z; outer cone 0.2 rad, about 0.2 m wide on the quad)."""
    b = Builder()
    b.extension("KHR_lights_punctual")
    b.quad(0, b.material(name="grey", pbrMetallicRoughness=_pbr((0.5, 0.5, 0.5, 1))),
           name="wall", size=2.5)
    b.doc["extensions"] = {"KHR_lights_punctual": {"lights": [
        {"type": "point", "color": [1.0, 0.6, 0.3], "intensity": 0.3, "range": 2.0},
        {"type": "spot", "intensity": 3.0, "spot": {"innerConeAngle": 0.1,
                                                    "outerConeAngle": 0.2}}]}}
    for name, light, pos in (("point", 0, [0.8, 0.0, 0.3]), ("spot", 1, [-0.8, 0.0, 1.0])):
        b.doc["nodes"].append({"name": name, "translation": pos,
                               "extensions": {"KHR_lights_punctual": {"light": light}}})
        b.doc["scenes"][0]["nodes"].append(len(b.doc["nodes"]) - 1)
    return b.glb()


def metal_mirror() -> bytes:
    """A smooth, fully metallic white quad: what it shows is the environment it reflects."""
    b = Builder()
    b.quad(0, b.material(name="mirror", pbrMetallicRoughness={
        "baseColorFactor": [1, 1, 1, 1], "metallicFactor": 1.0, "roughnessFactor": 0.1}),
        name="mirror", size=1.5)
    return b.glb()


MODELS: dict[str, Callable[[], bytes]] = {
    "alpha_modes": alpha_modes,
    "normal_map": normal_map,
    "wrap_modes": wrap_modes,
    "vertex_colors": vertex_colors,
    "emissive": emissive,
    "texture_transform": texture_transform,
    "unlit": unlit,
    "quantized": quantized,
    "metal_rough_occlusion": metal_rough_occlusion,
    "draco": draco,
    "meshopt": meshopt_compressed,
    "punctual_lights": punctual_lights,
    "metal_mirror": metal_mirror,
}
"""Every feature model by name: a function returning its ``.glb`` bytes."""


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.host.feature_models OUTDIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    for name, make in MODELS.items():
        (out / f"{name}.glb").write_bytes(make())
        print(out / f"{name}.glb")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
