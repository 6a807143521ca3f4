"""Compressed glTF geometry: KHR_draco_mesh_compression (DracoPy) and EXT_meshopt_compression
(meshopt) decode to the same primitives as the uncompressed data; corrupt or inconsistent
compressed data is refused with a message that names it."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from farview.host.gltf import ModelError, load_model_bytes
from tests.host.conftest import make_glb
from tests.host.feature_models import MODELS, QUAD_UV


def _split(glb: bytes) -> tuple[dict, bytes]:
    jlen = struct.unpack_from("<I", glb, 12)[0]
    doc = json.loads(glb[20:20 + jlen])
    return doc, glb[20 + jlen + 8:]


_join = make_glb


def test_pinned_decoders_return_what_the_loader_reads() -> None:
    """The third-party behaviour the loader depends on (pyproject pins both packages)."""
    import DracoPy
    import meshopt

    pts = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float64)
    mesh = DracoPy.decode(DracoPy.encode(pts, np.array([[0, 1, 2]], np.uint32),
                                         preserve_order=True))
    assert hasattr(mesh, "faces") and np.asarray(mesh.faces).tolist() == [[0, 1, 2]]
    attribute = mesh.get_attribute_by_unique_id(0)
    assert attribute["attribute_type"] == 0 and np.asarray(attribute["data"]).shape == (3, 3)
    assert mesh.get_attribute_by_unique_id(7) is None
    rows = np.arange(12, dtype=np.float32).reshape(4, 3)
    out = meshopt.decode_gltf_buffer(meshopt.encode_gltf_buffer(rows, "ATTRIBUTES"), 4, 12,
                                     "ATTRIBUTES", None)
    assert np.ascontiguousarray(out).tobytes() == rows.tobytes()
    with pytest.raises(ValueError):
        meshopt.decode_gltf_buffer(b"\xff" * 8, 4, 12, "ATTRIBUTES", None)


def test_draco_decodes_to_the_quad() -> None:
    model = load_model_bytes(MODELS["draco"]())
    prim = model.meshes[0].primitives[0]
    assert prim.triangle_count == 4 and len(prim.positions) == 5
    np.testing.assert_allclose(prim.positions[:4], [[-.5, -.5, 0], [.5, -.5, 0], [.5, .5, 0],
                                                    [-.5, .5, 0]], atol=1e-4)
    np.testing.assert_allclose(prim.normals, np.tile([0, 0, 1], (5, 1)), atol=1e-3)
    assert prim.texture is not None and prim.texcoords is not None
    np.testing.assert_allclose(prim.texcoords[:4], QUAD_UV, atol=1e-3)


def test_meshopt_decodes_to_the_quad() -> None:
    model = load_model_bytes(MODELS["meshopt"]())
    prim = model.meshes[0].primitives[0]
    assert prim.indices.tolist() == [0, 1, 2, 0, 2, 3]
    np.testing.assert_array_equal(prim.texcoords, QUAD_UV)
    assert prim.positions.min() == -0.5 and prim.positions.max() == 0.5


def test_corrupt_draco_is_named() -> None:
    doc, blob = _split(MODELS["draco"]())
    ext = doc["meshes"][0]["primitives"][0]["extensions"]["KHR_draco_mesh_compression"]
    view = doc["bufferViews"][ext["bufferView"]]
    start = view.get("byteOffset", 0)
    broken = bytearray(blob)
    broken[start:start + view["byteLength"]] = b"\x5a" * view["byteLength"]
    with pytest.raises(ModelError, match="does not decode as Draco"):
        load_model_bytes(_join(doc, bytes(broken)))
    doc["accessors"][doc["meshes"][0]["primitives"][0]["attributes"]["POSITION"]]["count"] = 9
    with pytest.raises(ModelError, match=r"decoded to 5 × 3 values; accessor .* declares 9 × 3"):
        load_model_bytes(_join(doc, blob))
    doc, blob = _split(MODELS["draco"]())
    ext = doc["meshes"][0]["primitives"][0]["extensions"]["KHR_draco_mesh_compression"]
    ext["attributes"]["POSITION"] = 42
    with pytest.raises(ModelError, match="no attribute with id 42"):
        load_model_bytes(_join(doc, blob))


def test_corrupt_meshopt_is_named() -> None:
    doc, blob = _split(MODELS["meshopt"]())
    ext = next(v["extensions"]["EXT_meshopt_compression"] for v in doc["bufferViews"]
               if "extensions" in v)
    broken = bytearray(blob)
    start = ext.get("byteOffset", 0)
    broken[start:start + ext["byteLength"]] = b"\xff" * ext["byteLength"]
    with pytest.raises(ModelError, match=r"EXT_meshopt_compression.*does not decode"):
        load_model_bytes(_join(doc, bytes(broken)))
    ext["count"] = 1 << 40
    with pytest.raises(ModelError, match="decoded-bytes budget"):
        load_model_bytes(_join(doc, blob))
    ext["count"], ext["mode"] = 4, "SIDEWAYS"
    with pytest.raises(ModelError, match="unknown mode 'SIDEWAYS'"):
        load_model_bytes(_join(doc, blob))
