"""glTF fuzzing: a hypothesis strategy of hostile models and a capped batch runner.

:func:`hostile_models` draws ``.gltf`` (JSON, buffers in ``data:`` URIs or next to the model)
and ``.glb`` files made from a small valid model (strided positions, a sparse accessor, u16
indices, normals, texture coordinates, a PNG texture, a node hierarchy) by a few hostile
mutations: huge, negative and wrongly typed counts, strides and offsets; sparse objects; deep
JSON nesting; node graphs with cycles, shared children and deep chains; images whose headers
declare huge sizes; external URIs that leave the model's folder (``../../etc/passwd``, absolute
paths, URLs, a directory, a FIFO, a link out); missing fields, wrong types; then container- and
byte-level damage (bad GLB chunk lengths, truncation, invalid UTF-8, numbers Python will not
parse).

:func:`run_cases` loads them with :func:`~farview.host.gltf.load_model_bytes` (and, for a
model that loads, :meth:`~farview.host.scene.Scene.add_model`) in one subprocess per batch,
whose address space is capped (``RLIMIT_AS``) a fixed headroom above its size after imports, and
with the loader's budgets set small, so memory beyond a small multiple of the budgets fails
instead of passing quietly. Warnings are errors there, as in the test suite. The expected
outcomes are: loaded (and added), :class:`ModelError`, or :class:`SceneError` from ``add_model``
with the scene left unchanged. Anything else is a failure: another exception, a crash (the
process died), a hang (the batch timed out) or a MemoryError.

The child side runs as ``python -m tests.host.gltf_fuzz CASE_DIR BASE_DIR HEADROOM_BYTES`` from
the repository root.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[2]

FUZZ_MAX_DECODED_BYTES = 32 << 20
"""The loader's decoded-bytes budget during the fuzz (small, so the memory cap is meaningful)."""
FUZZ_MAX_TRIANGLES = 200_000
FUZZ_MAX_FILE_BYTES = 8 << 20
SAFETY_NET = "malformed glTF: "
"""How the loader's catch-all for unforeseen exceptions starts its message."""
HEADROOM_BYTES = 512 << 20
"""The child's address-space cap: its size after imports plus this."""

# --------------------------------------------------------------------------------------------
# Building blocks


def png(width: int, height: int, *, bit_depth: int = 8, color_type: int = 6,
        idat: bytes | None = None) -> bytes:
    """A PNG whose header declares ``width`` × ``height`` (up to 2³¹ - 1 each) with valid CRCs;
    ``idat`` defaults to one compressed row, far less than the image needs."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    if idat is None:
        idat = zlib.compress(b"\0" * (1 + 4 * min(width, 64)))
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def small_png() -> bytes:
    """A real 2×2 RGBA PNG (filter byte 0 per row)."""
    rows = b"".join(b"\0" + bytes([255, 0, 0, 255, 0, 255, 0, 255]) for _ in range(2))
    return png(2, 2, idat=zlib.compress(rows))


def jpeg_header(width: int, height: int) -> bytes:
    """The start of a baseline JPEG declaring ``width`` × ``height`` (no image data)."""
    sof = struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8\xff\xc0" + sof + b"\xff\xd9"


def _f32(values: Sequence[float]) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


def base_model() -> tuple[dict[str, Any], bytes]:
    """A small valid model and its binary buffer: interleaved positions (stride 16) with a
    sparse override, normals, texture coordinates, u16 indices, a PNG texture in a buffer view,
    and three nodes (one with a matrix) in a scene."""
    positions = [0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 1, 1, 0, 0]  # x y z pad, 4 vertices
    normals = [0, 0, 1] * 4
    uv = [0, 0, 1, 0, 0, 1, 1, 1]
    indices = struct.pack("<6H", 0, 1, 2, 2, 1, 3) + b"\0\0"
    sp_idx = struct.pack("<H", 3) + b"\0\0"
    sp_val = _f32([1, 1, 0.5])
    image = small_png()
    parts = [_f32(positions), _f32(normals), _f32(uv), indices, sp_idx, sp_val, image]
    views, offset = [], 0
    for p in parts:
        views.append({"buffer": 0, "byteOffset": offset, "byteLength": len(p)})
        offset += len(p) + (-len(p) % 4)
    views[0]["byteStride"] = 16
    blob = b"".join(p + b"\0" * (-len(p) % 4) for p in parts)
    doc: dict[str, Any] = {
        "asset": {"version": "2.0", "generator": "farview gltf fuzz"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [
            {"name": "root", "children": [1, 2], "translation": [0, 0, 1]},
            {"mesh": 0, "rotation": [0, 0, 0.7071068, 0.7071068], "scale": [1, 2, 1]},
            {"mesh": 1, "matrix": [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 2, 0, 0, 1]},
        ],
        "meshes": [
            {"name": "quad", "primitives": [{
                "attributes": {"POSITION": 0, "NORMAL": 1, "TEXCOORD_0": 2},
                "indices": 3, "material": 0, "mode": 4}]},
            {"primitives": [{"attributes": {"POSITION": 0}, "mode": 5}]},
        ],
        "materials": [{"name": "textured", "pbrMetallicRoughness": {
            "baseColorTexture": {"index": 0, "texCoord": 0}, "metallicFactor": 0.0,
            "roughnessFactor": 0.5, "baseColorFactor": [1, 1, 1, 1]}, "doubleSided": True}],
        "textures": [{"source": 0, "sampler": 0}],
        "samplers": [{"magFilter": 9729, "minFilter": 9987, "wrapS": 10497, "wrapT": 33071}],
        "images": [{"bufferView": 6, "mimeType": "image/png"}],
        "accessors": [
            {"bufferView": 0, "componentType": 5126, "count": 4, "type": "VEC3",
             "min": [0, 0, 0], "max": [1, 1, 0],
             "sparse": {"count": 1, "indices": {"bufferView": 4, "componentType": 5123},
                        "values": {"bufferView": 5}}},
            {"bufferView": 1, "componentType": 5126, "count": 4, "type": "VEC3"},
            {"bufferView": 2, "componentType": 5126, "count": 4, "type": "VEC2"},
            {"bufferView": 3, "componentType": 5123, "count": 6, "type": "SCALAR"},
        ],
        "bufferViews": views,
        "buffers": [{"byteLength": len(blob)}],
    }
    return doc, blob


def make_glb(json_bytes: bytes, bin_chunk: bytes | None) -> bytes:
    j = json_bytes + b" " * (-len(json_bytes) % 4)
    chunks = struct.pack("<II", len(j), 0x4E4F534A) + j
    if bin_chunk is not None:
        b = bin_chunk + b"\0" * (-len(bin_chunk) % 4)
        chunks += struct.pack("<II", len(b), 0x004E4942) + b
    return struct.pack("<4sII", b"glTF", 2, 12 + len(chunks)) + chunks


def data_uri(blob: bytes, mime: str = "application/octet-stream") -> str:
    return f"data:{mime};base64," + base64.b64encode(blob).decode()


# --------------------------------------------------------------------------------------------
# Hostile values and mutations

BIG_INTS = [0, 1, -1, 2, 3, 4, 5, 7, 16, 252, 253, 255, 256, 65535, 65536, 100_000_000,
            2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**32 + 3, 2**53 + 1, 2**63, 2**64, -(2**63),
            10**30, 10**300]
"""Counts, offsets, lengths, strides, indices: edge values and huge ones."""

HOSTILE_URIS = [
    "../../etc/passwd", "/etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd",
    "http://127.0.0.1:9/model.bin", "https://example.invalid/x.bin", "file:///etc/passwd",
    "ok.bin", "sub", "sub/", ".", "", "sub/../ok.bin", "sub/../../ok.bin", "link.bin",
    "pipe.bin", "missing.bin", "%00", "ok.bin%00.png", "a" * 5000, "data:", "data:,abc",
    "data:application/octet-stream;base64,!!!!", "data:image/png;base64," + "A" * 7,
    "\\\\server\\share\\x.bin", "C:\\Windows\\win.ini", "~/x.bin", "\ud800.bin",
]


def hostile_value(depth: int = 2) -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.sampled_from(BIG_INTS),
        st.integers(-10, 300),
        st.sampled_from([0.5, -0.0, 1.5, 3.0, 1e308, -1e308, 5e-324, math.nan, math.inf,
                         -math.inf]),
        st.sampled_from([None, True, False, "", "VEC3", "SCALAR", "MAT4", "x" * 300,
                         "\u0000", "\ud800", "../../etc/passwd", "data:"]),
    )
    if depth <= 0:
        return scalars
    inner = hostile_value(depth - 1)
    return st.one_of(
        scalars,
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["count", "bufferView", "uri", "x", "nodes", "index"]),
                        inner, max_size=3),
        st.sampled_from([[0] * 16, [1e308] * 16, [0, 0, 0, 0], [math.nan] * 3, [0, 1, 2]]),
    )


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key/index path into ``obj`` (containers and leaves)."""
    out: list[tuple[Any, ...]] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.append((*prefix, k))
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.append((*prefix, i))
            out.extend(_paths(v, (*prefix, i)))
    return out


def _get(doc: Any, path: Sequence[Any]) -> Any:
    for k in path:
        doc = doc[k]
    return doc


OPTIONAL_KEYS = {
    "accessors": ["bufferView", "byteOffset", "count", "componentType", "type", "sparse",
                  "normalized"],
    "bufferViews": ["buffer", "byteOffset", "byteLength", "byteStride"],
    "buffers": ["byteLength", "uri"],
    "nodes": ["children", "mesh", "matrix", "rotation", "scale", "translation", "name"],
    "images": ["uri", "bufferView", "mimeType"],
    "textures": ["source", "sampler"],
    "samplers": ["magFilter", "minFilter", "wrapS", "wrapT"],
    "materials": ["pbrMetallicRoughness", "doubleSided", "name"],
    "scenes": ["nodes"],
}
TOP_KEYS = ["scene", "scenes", "nodes", "meshes", "accessors", "bufferViews", "buffers",
            "materials", "textures", "images", "samplers", "extensionsRequired",
            "extensionsUsed", "asset", "extras"]


@dataclass
class Draft:
    """A model being mutated; ``json_edits`` and ``byte_edits`` apply after serialization."""

    doc: dict[str, Any]
    blob: bytes
    container: str = "glb"
    buffer_uri: str | None = None
    """For .gltf: the buffer's uri (``None``: a data: URI of ``blob``)."""
    json_edits: list[Callable[[bytes], bytes]] = field(default_factory=list)
    byte_edits: list[Callable[[bytes], bytes]] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)


@st.composite
def _op_set(draw: st.DrawFn, d: Draft) -> None:
    paths = _paths(d.doc)
    path = draw(st.sampled_from(paths))
    value = draw(hostile_value())
    _get(d.doc, path[:-1])[path[-1]] = value
    d.labels.append(f"set {'.'.join(map(str, path))}={value!r:.40}")


@st.composite
def _op_delete(draw: st.DrawFn, d: Draft) -> None:
    paths = [p for p in _paths(d.doc) if isinstance(p[-1], str)]
    path = draw(st.sampled_from(paths))
    del _get(d.doc, path[:-1])[path[-1]]
    d.labels.append(f"delete {'.'.join(map(str, path))}")


@st.composite
def _op_insert(draw: st.DrawFn, d: Draft) -> None:
    top = draw(st.sampled_from(sorted(OPTIONAL_KEYS)))
    items = d.doc.get(top)
    value = draw(hostile_value())
    if isinstance(items, list) and items and all(isinstance(x, dict) for x in items):
        i = draw(st.integers(0, len(items) - 1))
        key = draw(st.sampled_from(OPTIONAL_KEYS[top]))
        items[i][key] = value
        d.labels.append(f"insert {top}.{i}.{key}={value!r:.40}")
    else:
        key = draw(st.sampled_from(TOP_KEYS))
        d.doc[key] = value
        d.labels.append(f"insert {key}={value!r:.40}")


@st.composite
def _op_accessor(draw: st.DrawFn, d: Draft) -> None:
    """Huge, zero-filled, misaligned or strided accessors."""
    accessors = d.doc["accessors"]
    i = draw(st.integers(0, len(accessors) - 1))
    acc = accessors[i]
    what = draw(st.sampled_from(["count", "zero_filled", "offset", "stride", "type", "view"]))
    n = draw(st.sampled_from(BIG_INTS))
    if what == "count":
        acc["count"] = n
    elif what == "zero_filled":
        acc.pop("bufferView", None)
        acc["count"] = n
    elif what == "offset":
        acc["byteOffset"] = n
    elif what == "stride":
        view = acc.get("bufferView", 0)
        if isinstance(view, int) and 0 <= view < len(d.doc["bufferViews"]):
            d.doc["bufferViews"][view]["byteStride"] = n
    elif what == "type":
        acc["type"] = draw(st.sampled_from(["SCALAR", "VEC2", "VEC3", "VEC4", "MAT2", "MAT3",
                                            "MAT4", "VEC5", ""]))
        acc["componentType"] = draw(st.sampled_from([5120, 5121, 5122, 5123, 5125, 5126, 5124,
                                                     5130, 0]))
    else:
        view = d.doc["bufferViews"][draw(st.integers(0, len(d.doc["bufferViews"]) - 1))]
        view[draw(st.sampled_from(["byteOffset", "byteLength", "buffer"]))] = n
    d.labels.append(f"accessor {i} {what} {n}")


@st.composite
def _op_sparse(draw: st.DrawFn, d: Draft) -> None:
    accessors = d.doc["accessors"]
    i = draw(st.integers(0, len(accessors) - 1))
    sparse = {
        "count": draw(st.sampled_from(BIG_INTS)),
        "indices": {"bufferView": draw(st.sampled_from([4, 5, 0, 99, -1, None])),
                    "componentType": draw(st.sampled_from([5121, 5123, 5125, 5126, 5120])),
                    "byteOffset": draw(st.sampled_from([0, 1, 2, 4, 2**40, -4]))},
        "values": {"bufferView": draw(st.sampled_from([5, 4, 0, 6, 99])),
                   "byteOffset": draw(st.sampled_from([0, 4, 3, 2**40]))},
    }
    if draw(st.booleans()):
        accessors[i].pop("bufferView", None)
        accessors[i]["count"] = draw(st.sampled_from(BIG_INTS))
    if draw(st.booleans()):
        del sparse[draw(st.sampled_from(["count", "indices", "values"]))]
    accessors[i]["sparse"] = sparse if draw(st.booleans()) else draw(hostile_value())
    d.labels.append(f"sparse on accessor {i}")


@st.composite
def _op_nodes(draw: st.DrawFn, d: Draft) -> None:
    """A node graph: deep chains, cycles, self-children, shared children, bad roots."""
    kind = draw(st.sampled_from(["chain", "cycle", "self", "shared", "random", "wide"]))
    n = draw(st.sampled_from([1, 2, 3, 8, 100, 1500, 3000]))
    if kind == "random":
        n = draw(st.integers(1, 8))
        nodes = [{"children": draw(st.lists(st.integers(-1, n), max_size=3))} for _ in range(n)]
    else:
        nodes = [{} for _ in range(n)]
        if kind in ("chain", "cycle"):
            for i in range(n - 1):
                nodes[i]["children"] = [i + 1]
            if kind == "cycle":
                nodes[-1]["children"] = [draw(st.integers(0, n - 1))]
        elif kind == "self":
            nodes[draw(st.integers(0, n - 1))]["children"] = [draw(st.integers(0, n - 1))]
        elif kind == "shared":
            for i in range(n - 1):
                nodes[i]["children"] = [n - 1]
        else:  # wide: every node a child of node 0
            nodes[0]["children"] = list(range(1, n))
    for node in draw(st.lists(st.integers(0, n - 1), max_size=3)):
        nodes[node]["mesh"] = draw(st.sampled_from([0, 1, 2, -1]))
    if draw(st.booleans()):
        k = draw(st.integers(0, n - 1))
        nodes[k]["matrix"] = draw(st.sampled_from([
            [1, 0, 0, 0, 0.5, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1],  # shear
            [1e308, 1e308, 0, 0, 0, 1e308, 0, 0, 0, 0, 1e308, 0, 0, 0, 0, 1],
            [0] * 16, [1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1],  # projective
            [-1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]]))
    if draw(st.booleans()):
        nodes[draw(st.integers(0, n - 1))]["rotation"] = draw(st.sampled_from([
            [0, 0, 0, 0], [1e200, 1e200, 0, 0], [1e-200, 0, 0, 0], [0, 0, 0, 2]]))
    d.doc["nodes"] = nodes
    roots = draw(st.sampled_from(["first", "all", "dupes", "bad", "none", "noscenes"]))
    if roots == "noscenes":
        d.doc.pop("scenes", None)
        d.doc.pop("scene", None)
    else:
        d.doc["scenes"] = [{"nodes": {"first": [0], "all": list(range(n)),
                                      "dupes": [0] * draw(st.sampled_from([2, 5000])),
                                      "bad": [n, -1, 0.5], "none": []}[roots]}]
    d.labels.append(f"nodes {kind} n={n} roots={roots}")


@st.composite
def _op_nest(draw: st.DrawFn, d: Draft) -> None:
    """Deep JSON nesting, spliced into the text (as Python objects it would exhaust the
    generator's own stack)."""
    depth = draw(st.sampled_from([5, 62, 63, 64, 65, 200, 999, 1001, 30_000]))
    kind = draw(st.sampled_from(["array", "object", "mixed", "string"]))
    where = draw(st.sampled_from(["extras", "node", "accessor", "asset"]))
    marker = f"@@nest{len(d.json_edits)}@@"
    if kind == "string":
        text = json.dumps("[{\"" * depth).encode()
    else:
        opens = closes = ""
        for i in range(depth):
            if kind == "array" or (kind == "mixed" and i % 2):
                opens, closes = opens + "[", "]" + closes
            else:
                opens, closes = opens + '{"k":', "}" + closes
        text = (opens + "0" + closes).encode()
    if where == "extras":
        d.doc["extras"] = marker
    elif where == "node" and d.doc.get("nodes"):
        d.doc["nodes"][0]["extras"] = marker
    elif where == "accessor":
        d.doc["accessors"][0]["count"] = marker
    else:
        d.doc["asset"]["version"] = marker
    d.json_edits.append(_replace_first(json.dumps(marker).encode(), text))
    d.labels.append(f"nest {kind} depth={depth} in {where}")


@st.composite
def _op_image(draw: st.DrawFn, d: Draft) -> None:
    kind = draw(st.sampled_from(["png", "png", "jpeg", "garbage", "truncated", "empty"]))
    if kind == "png":
        side = st.sampled_from([1, 2, 4096, 4097, 8192, 20_000, 65_535, 100_000, 2**31 - 1])
        data = png(draw(side), draw(side), bit_depth=draw(st.sampled_from([1, 8, 16])),
                   color_type=draw(st.sampled_from([0, 2, 3, 4, 6])),
                   idat=draw(st.sampled_from([None, b"", b"garbage", zlib.compress(b"\0" * 4096)])))
    elif kind == "jpeg":
        data = jpeg_header(draw(st.sampled_from([1, 8000, 65535])),
                           draw(st.sampled_from([1, 8000, 65535])))
    elif kind == "garbage":
        data = draw(st.binary(max_size=64))
    elif kind == "truncated":
        full = small_png()
        data = full[:draw(st.integers(0, len(full) - 1))]
    else:
        data = b""
    image: dict[str, Any] = {"mimeType": draw(st.sampled_from(["image/png", "image/jpeg",
                                                              "image/webp", 7]))}
    if draw(st.booleans()):
        image["uri"] = data_uri(data, "image/png")
    else:
        pad = b"\0" * (-len(d.blob) % 4)
        d.doc["bufferViews"].append({"buffer": 0, "byteOffset": len(d.blob) + len(pad),
                                     "byteLength": len(data)})
        d.blob += pad + data
        d.doc["buffers"][0]["byteLength"] = len(d.blob)
        image["bufferView"] = len(d.doc["bufferViews"]) - 1
    d.doc["images"] = [image]
    d.labels.append(f"image {kind} {len(data)} bytes")


@st.composite
def _op_uri(draw: st.DrawFn, d: Draft) -> None:
    uri = draw(st.sampled_from(HOSTILE_URIS))
    if draw(st.booleans()):
        d.container = "gltf"
        d.buffer_uri = uri
        d.labels.append(f"buffer uri {uri!r:.60}")
    else:
        d.doc["images"] = [{"uri": uri}]
        d.labels.append(f"image uri {uri!r:.60}")


def _replace_first(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    return lambda raw: raw.replace(old, new, 1)


@st.composite
def _op_json_text(draw: st.DrawFn, d: Draft) -> None:
    """Damage to the JSON text: numbers Python will not parse, NaN, invalid UTF-8, a BOM, a
    truncation, a top level that is not an object, duplicate keys."""
    kind = draw(st.sampled_from(["bigint", "nan", "utf8", "bom", "truncate", "toplevel",
                                 "dupkey", "garbage", "unterminated"]))
    edit: Callable[[bytes], bytes]
    if kind == "bigint":
        edit = _replace_first(b'"count": 4', b'"count": ' + b"9" * draw(st.sampled_from(
            [20, 4300, 4301, 50_000])))
    elif kind == "nan":
        edit = _replace_first(b'"count": 4', b'"count": ' + draw(st.sampled_from(
            [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"4.0", b"-0", b"4e0"])))
    elif kind == "utf8":
        edit = _replace_first(b'"quad"', b'"q\xff\xfe\xc0\x80d"')
    elif kind == "bom":
        def edit(raw: bytes) -> bytes:
            return b"\xef\xbb\xbf" + raw
    elif kind == "truncate":
        cut = draw(st.floats(0.0, 1.0))

        def edit(raw: bytes) -> bytes:
            return raw[:int(len(raw) * cut)]
    elif kind == "toplevel":
        top = draw(st.sampled_from([b"[]", b"null", b"\"glTF\"", b"{}", b"{\"asset\": 2}",
                                    b"{\"asset\": {\"version\": 2.0}}"]))

        def edit(raw: bytes) -> bytes:
            return top
    elif kind == "unterminated":  # a string that never ends, full of escaped quotes
        tail = draw(st.sampled_from([b'\\"', b'\\"[', b"[", b"\\\\"])) * draw(
            st.sampled_from([10, 100_000]))
        cut = draw(st.floats(0.0, 1.0))

        def edit(raw: bytes) -> bytes:
            return raw[:int(len(raw) * cut)] + b'"' + tail
    elif kind == "dupkey":
        edit = _replace_first(b'"asset": {', b'"asset": 1, "asset": {')
    else:
        junk = draw(st.binary(min_size=1, max_size=16))

        def edit(raw: bytes) -> bytes:
            return raw + junk
    d.json_edits.append(edit)
    d.labels.append(f"json {kind}")


@st.composite
def _op_glb(draw: st.DrawFn, d: Draft) -> None:
    """Container damage: header fields, chunk lengths and types, truncation."""
    d.container = "glb"
    kind = draw(st.sampled_from(["version", "length", "json_len", "bin_len", "types", "extra",
                                 "truncate", "nobin"]))
    value = draw(st.sampled_from([0, 1, 3, 11, 12, 13, 2**31, 2**32 - 1]))

    def put(offset: int) -> Callable[[bytes], bytes]:
        return lambda raw: raw[:offset] + struct.pack("<I", value) + raw[offset + 4:]

    edit: Callable[[bytes], bytes]
    if kind == "version":
        edit = put(4)
    elif kind == "length":
        edit = put(8)
    elif kind == "json_len":
        edit = put(12)
    elif kind == "bin_len":
        def edit(raw: bytes) -> bytes:
            (jlen,) = struct.unpack_from("<I", raw, 12)
            return put(20 + jlen)(raw) if len(raw) >= 24 + jlen else raw
    elif kind == "types":
        def edit(raw: bytes) -> bytes:  # the BIN chunk first, then the JSON
            (jlen,) = struct.unpack_from("<I", raw, 12)
            json_chunk, rest = raw[12:20 + jlen], raw[20 + jlen:]
            return raw[:12] + rest + json_chunk
    elif kind == "extra":
        junk = struct.pack("<II", 8, 0x12345678) + b"\xff" * 8

        def edit(raw: bytes) -> bytes:
            body = raw[12:] + junk
            return raw[:8] + struct.pack("<I", 12 + len(body)) + body
    elif kind == "truncate":
        cut = draw(st.integers(0, 200))

        def edit(raw: bytes) -> bytes:
            return raw[:max(len(raw) - cut, 0)]
    else:
        d.blob = b""
        d.doc["buffers"] = [{"byteLength": 0}]
        d.labels.append("glb without BIN")
        return
    d.byte_edits.append(edit)
    d.labels.append(f"glb {kind} {value}")


@st.composite
def _op_bytes(draw: st.DrawFn, d: Draft) -> None:
    flips = draw(st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), min_size=1,
                          max_size=4))

    def edit(raw: bytes) -> bytes:
        out = bytearray(raw)
        for where, b in flips:
            if out:
                out[min(int(where * len(out)), len(out) - 1)] = b
        return bytes(out)

    d.byte_edits.append(edit)
    d.labels.append(f"bytes {len(flips)} flipped")


OPS: dict[str, Callable[[Draft], st.SearchStrategy[None]]] = {
    # In the order they apply: the targeted ones need the base model's structure intact, the
    # generic ones (set, delete, insert) may break it, and the text and byte damage come last.
    "accessor": _op_accessor, "sparse": _op_sparse, "nodes": _op_nodes, "image": _op_image,
    "uri": _op_uri, "nest": _op_nest, "set": _op_set, "delete": _op_delete,
    "insert": _op_insert, "json_text": _op_json_text, "glb": _op_glb, "bytes": _op_bytes,
}


@dataclass(frozen=True)
class Case:
    data: bytes
    labels: tuple[str, ...]
    """What was done to the base model, for the report."""


def serialize(d: Draft) -> bytes:
    doc = copy.deepcopy(d.doc)
    buffers = doc.get("buffers")
    first = buffers[0] if isinstance(buffers, list) and buffers and isinstance(
        buffers[0], dict) else None
    if d.container == "gltf" and first is not None and "uri" not in first:
        first["uri"] = d.buffer_uri if d.buffer_uri is not None else data_uri(d.blob)
    text = json.dumps(doc).encode("utf-8", "surrogatepass")
    for edit in d.json_edits:
        text = edit(text)
    raw = text if d.container == "gltf" else make_glb(text, d.blob)
    for edit in d.byte_edits:
        raw = edit(raw)
    return raw


@st.composite
def hostile_models(draw: st.DrawFn) -> Case:
    """One hostile ``.gltf`` or ``.glb`` (see the module's docstring)."""
    doc, blob = base_model()
    d = Draft(doc, blob, container=draw(st.sampled_from(["glb", "gltf"])))
    if d.container == "gltf" and draw(st.integers(0, 4)) == 0:
        d.buffer_uri = "ok.bin"  # next to the model: the runner writes the base buffer there
    order = list(OPS)
    names = draw(st.lists(st.sampled_from(order), min_size=1, max_size=4))
    for name in sorted(names, key=order.index):
        draw(OPS[name](d))
    return Case(serialize(d), tuple(d.labels))


def draw_cases(n: int, seed_value: int | None = None) -> list[Case]:
    """``n`` cases from :func:`hostile_models`: derandomized (the same every run) without a
    seed, else from ``seed_value``."""
    out: list[Case] = []

    @settings(max_examples=n, deadline=None, database=None, derandomize=seed_value is None,
              suppress_health_check=list(HealthCheck))
    @given(hostile_models())
    def collect(case: Case) -> None:
        out.append(case)

    if seed_value is not None:
        collect = seed(seed_value)(collect)
    collect()
    return out[:n]


# --------------------------------------------------------------------------------------------
# Running: the parent side


@dataclass
class Report:
    tried: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    """One line per case that crashed, hung, ran out of memory or raised something else."""
    failed_cases: list[Case] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    """The highest resident set size a batch process reached (its VmHWM)."""
    peak_case: str = ""
    """The case during which that peak was reached (its mutations)."""
    base_rss_mb: float = 0.0
    """A batch process's resident set size after imports, before its first case."""
    cap_mb: float = 0.0
    """The batch processes' address-space cap."""
    unnamed: Counter[str] = field(default_factory=Counter)
    """ModelErrors that only the loader's safety net caught ("malformed glTF: <exception>"):
    refused, but without a message that names the problem."""


def prepare_base_dir(root: Path) -> Path:
    """The folder models are loaded from: a valid buffer (``ok.bin``), a directory, a FIFO and
    a link that leaves the folder, for the external-URI cases."""
    folder = root / "models"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ok.bin").write_bytes(base_model()[1])
    (folder / "sub").mkdir(exist_ok=True)
    if not (folder / "pipe.bin").exists():
        os.mkfifo(folder / "pipe.bin")
    if not (folder / "link.bin").is_symlink():
        (folder / "link.bin").symlink_to("/etc/passwd")
    return folder


def run_cases(cases: Sequence[Case], *, batch_size: int = 150, batch_timeout: float = 120.0,
              headroom_bytes: int = HEADROOM_BYTES,
              progress: Callable[[Report], None] | None = None) -> Report:
    """Run ``cases`` in capped child processes, ``batch_size`` to a process. A crash or a hang
    fails that case; the rest of its batch continues in a fresh process."""
    report = Report()
    with tempfile.TemporaryDirectory(prefix="gltf-fuzz-") as tmp:
        root = Path(tmp)
        base_dir = prepare_base_dir(root)
        start = 0
        while start < len(cases):
            batch = cases[start:start + batch_size]
            done = _run_batch(batch, start, root, base_dir, batch_timeout, headroom_bytes,
                              report)
            start += done
            if progress is not None:
                progress(report)
    return report


def _run_batch(batch: Sequence[Case], first: int, root: Path, base_dir: Path, timeout: float,
               headroom_bytes: int, report: Report) -> int:
    """Runs one child over ``batch``; returns how many cases it settled (all of them, or up to
    and including the one that crashed or hung)."""
    case_dir = root / f"batch-{first}"
    case_dir.mkdir()
    for i, case in enumerate(batch):
        (case_dir / f"{i:06d}.bin").write_bytes(case.data)
    results = case_dir / "results.jsonl"
    cmd = [sys.executable, "-m", "tests.host.gltf_fuzz", str(case_dir), str(base_dir),
           str(headroom_bytes)]
    timed_out = False
    try:
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
        rc, stderr = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired as exc:  # run() has killed the child
        timed_out, rc = True, None
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
    started, settled, summary = -1, 0, None
    lines = results.read_text().splitlines() if results.exists() else []
    for line in lines:
        rec = json.loads(line)
        if "start" in rec:
            started = rec["start"]
            continue
        if "summary" in rec:
            summary = rec
            continue
        settled += 1
        report.tried += 1
        if rec["rss_kb"] / 1024 > report.peak_rss_mb:
            report.peak_rss_mb = rec["rss_kb"] / 1024
            report.peak_case = f"case {first + rec['i']}: {'; '.join(batch[rec['i']].labels)}"
        outcome = rec["outcome"]
        report.outcomes[outcome] += 1
        if outcome.startswith("ModelError") and rec["detail"].startswith(SAFETY_NET):
            report.unnamed[rec["detail"].split(":", 2)[1].strip()] += 1
        if outcome not in ("loaded", "ModelError:InvalidModel", "ModelError:LimitExceeded",
                           "SceneError"):
            case = batch[rec["i"]]
            report.failures.append(f"case {first + rec['i']}: {outcome}: "
                                   f"{rec.get('detail', '')}  [{'; '.join(case.labels)}]")
            report.failed_cases.append(case)
    if summary is not None:
        report.cap_mb = summary["cap_bytes"] / (1 << 20)
        report.base_rss_mb = max(report.base_rss_mb, summary["base_rss_kb"] / 1024)
        return len(batch)
    # The child died or hung in case ``started``: that case fails, the batch resumes after it.
    what = "hang (batch timed out)" if timed_out else f"crash (exit status {rc})"
    if started < settled:  # died outside a case (before the first, or between two)
        report.failures.append(f"batch at case {first}: the child ended after {settled} cases, "
                               f"outside any case: {what}: {stderr[-1500:]}")
        report.tried += len(batch) - settled
        report.outcomes["crash"] += len(batch) - settled
        return len(batch)
    case = batch[started]
    report.tried += 1
    report.outcomes["hang" if timed_out else "crash"] += 1
    report.failures.append(f"case {first + started}: {what}: {stderr[-800:]}  "
                           f"[{'; '.join(case.labels)}]")
    report.failed_cases.append(case)
    return started + 1


def save_failures(report: Report, folder: Path) -> None:
    """Write each failed case to ``folder`` (``case-N.bin``) to reproduce it."""
    folder.mkdir(parents=True, exist_ok=True)
    for n, case in enumerate(report.failed_cases):
        (folder / f"case-{n}.bin").write_bytes(case.data)
        (folder / f"case-{n}.txt").write_text("\n".join(case.labels) + "\n")


# --------------------------------------------------------------------------------------------
# The child side


def _status_kb(key: str) -> int:
    """A ``/proc/self/status`` figure in KiB: VmSize (address space), VmHWM (peak resident set
    of this program; unlike ``ru_maxrss``, not inherited from the parent across exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise LookupError(key)


def run_one(data: bytes, base_dir: str | None) -> tuple[str, str]:
    """Load one case (and add it to a scene when it loads); returns (outcome, detail). Raises
    whatever the loader raises that is not an expected refusal."""
    from farview.host.errors import ModelError, SceneError
    from farview.host.gltf import load_model_bytes, node_world_matrices
    from farview.host.scene import Scene

    try:
        model = load_model_bytes(data, name="fuzz", base_dir=base_dir,
                                 max_triangles=FUZZ_MAX_TRIANGLES,
                                 max_file_bytes=FUZZ_MAX_FILE_BYTES,
                                 max_decoded_bytes=FUZZ_MAX_DECODED_BYTES)
    except ModelError as e:
        return f"ModelError:{e.code}", e.message[:200]
    node_world_matrices(model)
    scene = Scene()
    keep = scene.create_entity("keep")
    try:
        scene.add_model(model, parent=keep if len(data) % 2 else None)
    except SceneError as e:
        if len(scene) != 1 or scene.roots != (keep,) or keep.children:
            return "SceneError left the scene changed", e.message[:200]
        return "SceneError", e.message[:200]
    return "loaded", f"{model.triangle_count} triangles, {len(scene)} entities"


def _child_main(case_dir: Path, base_dir: str, headroom: int) -> int:
    import resource
    import traceback
    import warnings

    warnings.simplefilter("error")
    # Warm up first (lazy imports, Pillow's plugins), so the cap measures the loader's work.
    doc, blob = base_model()
    run_one(make_glb(json.dumps(doc).encode(), blob), base_dir)
    base_rss_kb = _status_kb("VmHWM")
    cap = _status_kb("VmSize") * 1024 + headroom
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    out = os.open(case_dir / "results.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def emit(rec: dict[str, Any]) -> None:
        os.write(out, (json.dumps(rec) + "\n").encode())

    for i, path in enumerate(sorted(case_dir.glob("*.bin"))):
        emit({"start": i})
        data = path.read_bytes()
        t0 = time.perf_counter()
        try:
            outcome, detail = run_one(data, base_dir)
        except MemoryError as e:
            outcome, detail = "MemoryError", str(e)[:300]
        except BaseException as e:
            tb = traceback.extract_tb(e.__traceback__)[-1]
            outcome = f"unexpected:{type(e).__name__}"
            detail = f"{str(e)[:300]} at {Path(tb.filename).name}:{tb.lineno}"
        emit({"i": i, "outcome": outcome, "detail": detail,
              "seconds": round(time.perf_counter() - t0, 4),
              "rss_kb": _status_kb("VmHWM")})
    emit({"summary": True, "cap_bytes": cap, "base_rss_kb": base_rss_kb})
    os.close(out)
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
