"""Shared fixtures for host tests: model paths and one EGL context per test module."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED_MODELS = REPO.parent / "shared" / "models"
SAMPLE = REPO / "assets" / "sample_engine.glb"
FOREIGN = ["Box", "BoxAnimated", "BoxTextured", "CesiumMilkTruck", "Duck"]


@pytest.fixture(scope="module")
def egl_context() -> Iterator[object]:
    from farview.host.egl import EglContext

    ctx = EglContext()
    yield ctx
    ctx.release()


def png_bytes(rgba: object) -> bytes:
    """PNG-encode an (h, w, 4) uint8 array (Pillow: a real encoder, not a hand-made file)."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(rgba).save(out, format="PNG")  # type: ignore[arg-type]
    return out.getvalue()


def textured_quad_glb(image: bytes, *, sampler: dict | None = None, texcoord: bool = True,
                      mime: str = "image/png") -> bytes:
    """A 2×2 quad in the z = 0 plane facing +z, whose base colour texture covers it once:
    the image's top-left corner at the quad's top-left (x = -1, y = 1), as glTF's uv says."""

    import numpy as np

    pos = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], dtype=np.float32)
    nrm = np.tile(np.array([0, 0, 1], dtype=np.float32), (4, 1))
    uv = np.array([[0, 1], [1, 1], [1, 0], [0, 0]], dtype=np.float32)
    idx = np.array([0, 1, 2, 0, 2, 3], dtype=np.uint16)
    blobs = [pos.tobytes(), nrm.tobytes(), uv.tobytes(), idx.tobytes() + b"\0\0", image]
    views, offset = [], 0
    for b in blobs:
        views.append({"buffer": 0, "byteOffset": offset, "byteLength": len(b)})
        offset += len(b) + (-len(b) % 4)
    blob = b"".join(b + b"\0" * (-len(b) % 4) for b in blobs)
    attrs = {"POSITION": 0, "NORMAL": 1}
    if texcoord:
        attrs["TEXCOORD_0"] = 2
    doc = {
        "asset": {"version": "2.0"},
        "nodes": [{"mesh": 0, "name": "quad"}],
        "meshes": [{"primitives": [{"attributes": attrs, "indices": 3, "material": 0}]}],
        "materials": [{"pbrMetallicRoughness": {"baseColorTexture": {"index": 0},
                                                "metallicFactor": 0.0}}],
        "textures": [{"source": 0, **({"sampler": 0} if sampler is not None else {})}],
        "samplers": [sampler] if sampler is not None else [],
        "images": [{"bufferView": 4, "mimeType": mime}],
        "accessors": [
            {"bufferView": 0, "componentType": 5126, "count": 4, "type": "VEC3",
             "min": [-1, -1, 0], "max": [1, 1, 0]},
            {"bufferView": 1, "componentType": 5126, "count": 4, "type": "VEC3"},
            {"bufferView": 2, "componentType": 5126, "count": 4, "type": "VEC2"},
            {"bufferView": 3, "componentType": 5123, "count": 6, "type": "SCALAR"},
        ],
        "bufferViews": views,
        "buffers": [{"byteLength": len(blob)}],
    }
    j = json.dumps(doc).encode()
    j += b" " * (-len(j) % 4)
    chunks = (struct.pack("<II", len(j), 0x4E4F534A) + j
              + struct.pack("<II", len(blob), 0x004E4942) + blob)
    return struct.pack("<4sII", b"glTF", 2, 12 + len(chunks)) + chunks


QUADRANT_COLOURS = ((255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255))
"""Top-left, top-right, bottom-left, bottom-right of :func:`quadrant_texture`."""


def quadrant_texture() -> object:
    """A 2×2 RGBA texture: red, green / blue, white (top row first)."""
    import numpy as np

    px = np.array(QUADRANT_COLOURS, dtype=np.uint8).reshape(2, 2, 3)
    return np.concatenate([px, np.full((2, 2, 1), 255, np.uint8)], axis=2)


def make_glb(doc: dict, bin_chunk: bytes = b"") -> bytes:
    """A GLB of ``doc`` (JSON chunk) and ``bin_chunk`` (BIN chunk, if any), each padded."""
    from farview.host.gltf import pack_glb

    return pack_glb(doc, bin_chunk)


def psnr(a: Any, b: Any) -> float:
    """Peak signal-to-noise ratio of two 8-bit images, in dB (99 when they are equal)."""
    import numpy as np

    mse = float(((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2).mean())
    return 99.0 if mse == 0 else 10 * float(np.log10(255.0 ** 2 / mse))
