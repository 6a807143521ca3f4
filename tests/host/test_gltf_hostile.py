"""Hostile glTF: inputs built to exhaust memory, the stack or time, and the glTF fuzz.

Every malformed or over-budget model must end in a :class:`ModelError` (never a MemoryError,
a RecursionError, another exception or a crash), and a refused model must leave the scene as it
was. The memory checks run in a subprocess under ``RLIMIT_AS``: an allocation the loader should
never have made fails there instead of passing quietly on a machine with memory to spare.

The long fuzz run is ``benchmarks/bench_gltf_fuzz.py``.
"""

from __future__ import annotations

import base64
import json
import os
import struct
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from farview.host.errors import (
    BUDGET_BYTES,
    BUDGET_DECODED,
    BUDGET_TRIANGLES,
    LIMIT_EXCEEDED,
    ModelError,
    SceneError,
)
from farview.host.gltf import MAX_JSON_DEPTH, load_model, load_model_bytes, node_world_matrices
from farview.host.scene import Scene
from tests.host import gltf_fuzz

REPO = Path(__file__).resolve().parents[2]
FUZZ_CASES = 300


def _data_uri(blob: bytes) -> str:
    return "data:application/octet-stream;base64," + base64.b64encode(blob).decode()


def _triangle(**accessor0: object) -> dict:
    """One triangle as .gltf JSON with its buffer in a data: URI; ``accessor0`` overrides
    fields of the POSITION accessor."""
    pos = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=np.float32).tobytes()
    doc = {
        "asset": {"version": "2.0"},
        "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}}]}],
        "accessors": [{"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3",
                       **accessor0}],
        "bufferViews": [{"buffer": 0, "byteLength": len(pos)}],
        "buffers": [{"byteLength": len(pos), "uri": _data_uri(pos)}],
    }
    return doc


# --------------------------------------------------------------------------------------------
# 1. Memory amplification: decoded sizes are checked against a budget before allocating.


def _zero_filled_bomb() -> bytes:
    """A ~500-byte .gltf whose POSITION accessor has no bufferView (zero-filled, the spec says)
    and 100,000,000 elements: 1.2 GB decoded. Its NORMAL accessor has 3 elements, so the old
    loader allocated (and copied) the positions before refusing the count mismatch."""
    idx = np.array([0, 1, 2, 0], dtype=np.uint16).tobytes()
    doc = {
        "asset": {"version": "2.0", "generator": "farview hostile test"},
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": "bomb"}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0, "NORMAL": 2}, "indices": 1}]}],
        "accessors": [
            {"componentType": 5126, "count": 100_000_000, "type": "VEC3"},
            {"bufferView": 0, "componentType": 5123, "count": 3, "type": "SCALAR"},
            {"componentType": 5126, "count": 3, "type": "VEC3"},
        ],
        "bufferViews": [{"buffer": 0, "byteLength": 6}],
        "buffers": [{"byteLength": 8, "uri": _data_uri(idx)}],
    }
    return json.dumps(doc, separators=(",", ":")).encode()


_CAPPED_CHILD = textwrap.dedent("""
    import json, resource, sys
    from farview.host.gltf import ModelError, load_model_bytes

    def status(key):
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
        raise LookupError(key)

    data = open(sys.argv[1], "rb").read()
    cap = status("VmSize") + int(sys.argv[2]) * (1 << 20)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    result = {"cap_mib": cap >> 20}
    try:
        load_model_bytes(data)
        result["outcome"] = "loaded"
    except ModelError as e:
        result.update(outcome="ModelError", code=e.code, budget=e.budget, message=e.message)
    except BaseException as e:
        result.update(outcome=type(e).__name__, message=str(e)[:300])
    result["vm_peak_mib"] = status("VmPeak") >> 20
    print(json.dumps(result))
""")


def _load_capped(data: bytes, tmp_path: Path, headroom_mib: int) -> dict:
    """Load ``data`` in a fresh interpreter whose address space is capped at its size after
    imports plus ``headroom_mib``; returns the outcome."""
    path = tmp_path / "model.gltf"
    path.write_bytes(data)
    proc = subprocess.run([sys.executable, "-c", _CAPPED_CHILD, str(path), str(headroom_mib)],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result: dict = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_zero_filled_accessor_is_refused_before_allocating(tmp_path: Path) -> None:
    data = _zero_filled_bomb()
    assert len(data) < 600
    result = _load_capped(data, tmp_path, headroom_mib=600)
    assert result["outcome"] == "ModelError", result
    assert (result["code"], result["budget"]) == (LIMIT_EXCEEDED, BUDGET_DECODED), result
    msg = result["message"]
    assert "accessor 0" in msg and "100000000" in msg and "1200000000 bytes" in msg, msg
    assert str(1 << 30) in msg, msg  # the budget it is over


def test_decoded_bytes_budget() -> None:
    # One accessor over the budget: named, with its count and the figures.
    doc = _triangle()
    with pytest.raises(ModelError, match=r"accessor 0 \(mesh 0 primitive 0 POSITION\): 3 × "
                                         r"VEC3 of 4-byte components is 36 bytes decoded, over "
                                         r"the decoded-bytes budget of 35 bytes") as info:
        load_model_bytes(json.dumps(doc).encode(), max_decoded_bytes=35)
    assert (info.value.code, info.value.budget) == (LIMIT_EXCEEDED, BUDGET_DECODED)
    assert load_model_bytes(json.dumps(doc).encode(), max_decoded_bytes=36).triangle_count == 1
    # The running total over the model: two primitives, 36 bytes each.
    doc["meshes"][0]["primitives"].append({"attributes": {"POSITION": 0}})
    assert load_model_bytes(json.dumps(doc).encode(), max_decoded_bytes=72).triangle_count == 2
    with pytest.raises(ModelError, match=r"accessor 0 .*takes the model's decoded data to 72 "
                                         r"bytes, over the decoded-bytes budget of 71") as info:
        load_model_bytes(json.dumps(doc).encode(), max_decoded_bytes=71)
    assert info.value.budget == BUDGET_DECODED
    with pytest.raises(ValueError, match="budgets must be non-negative"):
        load_model_bytes(json.dumps(doc).encode(), max_decoded_bytes=-1)


def test_sparse_sizes_are_checked_before_allocating() -> None:
    # A zero-filled accessor with a sparse override still loads (its decoded size is small).
    sp_idx = np.array([2], dtype=np.uint16).tobytes() + b"\0\0"
    sp_val = np.array([[0, 2, 0]], dtype=np.float32).tobytes()
    blob = sp_idx + sp_val
    doc = {
        "asset": {"version": "2.0"},
        "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}}]}],
        "accessors": [{"componentType": 5126, "count": 3, "type": "VEC3",
                       "sparse": {"count": 1, "indices": {"bufferView": 0, "componentType": 5123},
                                  "values": {"bufferView": 1}}}],
        "bufferViews": [{"buffer": 0, "byteLength": 2},
                        {"buffer": 0, "byteOffset": 4, "byteLength": 12}],
        "buffers": [{"byteLength": len(blob), "uri": _data_uri(blob)}],
    }
    model = load_model_bytes(json.dumps(doc).encode())
    prim = model.meshes[0].primitives[0]
    np.testing.assert_allclose(prim.positions, [[0, 0, 0], [0, 0, 0], [0, 2, 0]])
    # A sparse count far past the data: refused by size before any read or allocation.
    doc["accessors"][0]["sparse"]["count"] = 2_000_000_000
    doc["accessors"][0]["count"] = 2_000_000_000
    with pytest.raises(ModelError, match=r"accessor 0 .*2000000000 × VEC3 .* over the "
                                         r"decoded-bytes budget") as info:
        load_model_bytes(json.dumps(doc).encode())
    assert info.value.budget == BUDGET_DECODED
    doc["accessors"][0]["count"] = 3
    doc["accessors"][0]["sparse"]["count"] = 100_000_000
    with pytest.raises(ModelError, match=r"accessor 0: sparse count 100000000 is outside "
                                         r"1\.\.3"):
        load_model_bytes(json.dumps(doc).encode())


def test_vertex_count_is_bounded() -> None:
    # Vertices are bounded by the triangle budget (three per triangle: a triangle list never
    # needs more), so a primitive with few triangles cannot carry a huge vertex array.
    blob = np.zeros(4, np.uint8).tobytes()
    doc = {
        "asset": {"version": "2.0"},
        "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}, "indices": 1}]}],
        "accessors": [{"componentType": 5126, "count": 200_000, "type": "VEC3"},
                      {"bufferView": 0, "componentType": 5121, "count": 3, "type": "SCALAR"}],
        "bufferViews": [{"buffer": 0, "byteLength": 3}],
        "buffers": [{"byteLength": 4, "uri": _data_uri(blob)}],
    }
    data = json.dumps(doc).encode()
    with pytest.raises(ModelError, match=r"model 'model' has 200000 vertices, over the vertex "
                                         r"budget of 65536") as info:
        load_model_bytes(data, max_triangles=1000)
    assert (info.value.code, info.value.budget) == (LIMIT_EXCEEDED, BUDGET_TRIANGLES)
    assert len(load_model_bytes(data).meshes[0].primitives[0].positions) == 3  # flat normals


def test_meshes_without_nodes_count_towards_the_triangle_budget() -> None:
    # A mesh no node uses is still decoded, so it is counted (once) too.
    doc = _triangle()
    doc["nodes"] = []
    with pytest.raises(ModelError, match="1 triangles, over the triangle budget of 0"):
        load_model_bytes(json.dumps(doc).encode(), max_triangles=0)


# --------------------------------------------------------------------------------------------
# 2. Deeply nested JSON is refused before it is parsed.


def _nested(depth: int, kind: str) -> object:
    v: object = 0
    for _ in range(depth):
        v = [v] if kind == "array" else {"k": v}
    return v


@pytest.mark.parametrize("kind", ["array", "object"])
@pytest.mark.parametrize("container", ["gltf", "glb"])
def test_deeply_nested_json_is_refused(kind: str, container: str) -> None:
    doc = _triangle()
    if kind == "array":
        raw = json.dumps(doc)[:-1] + ', "extras": ' + "[" * 30_000 + "]" * 30_000 + "}"
    else:
        raw = json.dumps(doc)[:-1] + ', "extras": ' + '{"a":' * 30_000 + "0" + "}" * 30_000 + "}"
    data = raw.encode()
    if container == "glb":
        j = data + b" " * (-len(data) % 4)
        data = struct.pack("<4sII", b"glTF", 2, 20 + len(j)) + struct.pack("<II", len(j),
                                                                           0x4E4F534A) + j
    with pytest.raises(ModelError, match=rf"JSON nests deeper than {MAX_JSON_DEPTH} levels"):
        load_model_bytes(data)


def test_json_depth_limit_boundary() -> None:
    assert MAX_JSON_DEPTH == 64
    # The top-level object is level 1, so extras may hold 63 levels.
    doc = _triangle()
    doc["extras"] = _nested(MAX_JSON_DEPTH - 1, "array")
    assert load_model_bytes(json.dumps(doc).encode()).triangle_count == 1
    doc["extras"] = _nested(MAX_JSON_DEPTH, "object")
    with pytest.raises(ModelError, match="nests deeper than 64 levels"):
        load_model_bytes(json.dumps(doc).encode())
    # Brackets inside strings (escaped quotes too) are text, not nesting.
    doc["extras"] = {"note": '\\"' + "[{" * 5000, "other": "\\" * 7 + '"' + "[" * 100}
    assert load_model_bytes(json.dumps(doc).encode()).triangle_count == 1
    # An unterminated string full of escaped quotes (each one a place a naive scanner would
    # restart from): refused by the parser, after a scan that stays linear.
    raw = json.dumps(_triangle())[:-1] + ', "extras": "' + '\\"' * 1_000_000
    with pytest.raises(ModelError, match="JSON does not parse"):
        load_model_bytes(raw.encode())


def test_integers_python_will_not_parse_are_model_errors() -> None:
    # Python refuses integers of more than 4300 digits with a ValueError of its own, and
    # arithmetic on huge ones makes messages it cannot print: such counts are refused by name,
    # and elsewhere (extras) they do no harm.
    raw = json.dumps(_triangle(count=1))[:-1] + ', "extras": ' + "7" * 5000 + "}"
    raw = raw.replace('"count": 1', '"count": ' + "9" * 5000)
    with pytest.raises(ModelError, match="accessor 0 has invalid count inf"):
        load_model_bytes(raw.encode())
    raw = raw.replace('"count": ' + "9" * 5000, '"count": 3')
    assert load_model_bytes(raw.encode()).triangle_count == 1
    raw = raw.replace('"count": 3', '"count": ' + "9" * 21)  # past 2⁶⁴: no count
    with pytest.raises(ModelError, match=r"accessor 0 has invalid count 1e\+21"):
        load_model_bytes(raw.encode())


# --------------------------------------------------------------------------------------------
# 3. Deep node hierarchies: no recursion, and add_model is atomic.


def _chain(depth: int, **node_overrides: dict) -> dict:
    """``depth`` nodes, node i the only child of node i - 1; the last one has the mesh.
    ``node_overrides`` maps "node index" strings to fields to set on that node."""
    doc = _triangle()
    nodes: list[dict] = [{"children": [i + 1]} for i in range(depth - 1)] + [{"mesh": 0}]
    for key, fields in node_overrides.items():
        nodes[int(key)].update(fields)
    doc["nodes"] = nodes
    doc["scenes"] = [{"nodes": [0]}]
    return doc


def test_deep_node_chain_loads_and_instantiates() -> None:
    depth = 5000
    model = load_model_bytes(json.dumps(_chain(depth)).encode())
    assert model.roots == (0,) and len(model.nodes) == depth
    assert len(node_world_matrices(model)) == depth
    scene = Scene()
    root = scene.add_model(model, "chain")
    assert len(scene) == depth + 1
    e, levels = root, 0
    while e.children:
        (e,) = e.children
        levels += 1
    assert levels == depth and e.mesh is model.meshes[0]


SHEAR = [1, 0, 0, 0, 0.5, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]


@pytest.mark.parametrize("bad", [
    {"matrix": SHEAR},  # a sheared matrix
    {"matrix": [1e308, 1e308, 0, 0, 0, 1e308, 0, 0, 0, 0, 1e308, 0, 0, 0, 0, 1]},  # overflows
])
def test_add_model_is_atomic(bad: dict) -> None:
    scene = Scene()
    keep = scene.create_entity("keep")
    scene.create_entity("child", keep)
    before_roots, before_len = scene.roots, len(scene)
    # The bad node is deep in the tree and after many good ones (depth first, in order).
    doc = _chain(1500, **{"1400": bad})
    doc["nodes"][5]["children"].append(1500)  # a side branch built before the bad node
    doc["nodes"].append({"name": "side"})
    model = load_model_bytes(json.dumps(doc).encode())
    with pytest.raises(SceneError, match=r"node 1400 \(node_1400\)") as err:
        scene.add_model(model, "broken", parent=keep)
    if "matrix" in bad and bad["matrix"] is SHEAR:  # it says what to do
        assert "export the model again with the shear applied" in err.value.message
    assert len(scene) == before_len and scene.roots == before_roots
    assert len(keep.children) == 1
    with pytest.raises(SceneError, match="node 1400"):
        scene.add_model(model, "broken")
    assert len(scene) == before_len and scene.roots == before_roots


def test_duplicate_scene_roots_are_refused() -> None:
    # Listing one node many times would instantiate its subtree that many times.
    doc = _chain(100)
    doc["scenes"] = [{"nodes": [0] * 10_000}]
    with pytest.raises(ModelError, match="scene 0 lists node 0 more than once"):
        load_model_bytes(json.dumps(doc).encode())


def test_long_chain_cycle_is_found() -> None:
    # A cycle closed at the end of a long chain (linear, not quadratic, to find).
    doc = _chain(20_000)
    doc["nodes"][-1]["children"] = [1]
    with pytest.raises(ModelError, match="node 1 has more than one parent"):
        load_model_bytes(json.dumps(doc).encode())
    doc["nodes"][0] = {}
    doc["scenes"] = [{"nodes": [0]}]
    with pytest.raises(ModelError, match="cycle"):
        load_model_bytes(json.dumps(doc).encode())


# --------------------------------------------------------------------------------------------
# Found by the fuzz


@pytest.mark.parametrize("uri, message", [
    ("sub", "is not a regular file"),  # was IsADirectoryError
    ("pipe.bin", "is not a regular file"),  # was a hang: opening a FIFO blocks for a writer
    ("link.bin", "points outside the model's folder"),
    ("%00", "is not a file name"),
    ("a" * 5000, "cannot read"),
], ids=["directory", "fifo", "link-out", "nul", "too-long"])
def test_external_uris_must_name_regular_files(tmp_path: Path, uri: str, message: str) -> None:
    (tmp_path / "sub").mkdir()
    os.mkfifo(tmp_path / "pipe.bin")
    (tmp_path / "link.bin").symlink_to("/etc/passwd")
    doc = _triangle()
    doc["buffers"][0]["uri"] = uri
    path = tmp_path / "model.gltf"
    path.write_text(json.dumps(doc))
    outcome: list[BaseException] = []

    def load() -> None:
        try:
            load_model(path)
        except BaseException as e:
            outcome.append(e)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(60)
    if thread.is_alive():  # blocked opening the FIFO: open its other end to free the thread
        os.close(os.open(tmp_path / "pipe.bin", os.O_WRONLY | os.O_NONBLOCK))
        thread.join(10)
        pytest.fail(f"loading a model whose buffer uri is {uri!r} blocked")
    assert len(outcome) == 1 and isinstance(outcome[0], ModelError), outcome
    assert message in outcome[0].message and "cannot read 'sub'" not in outcome[0].message


@pytest.mark.timeout(600)  # above the batches' own timeouts, which report a hang by case
def test_fuzz_short_run(tmp_path: Path) -> None:
    """The suite's run of the glTF fuzz (see tests/host/gltf_fuzz.py); the long run is
    benchmarks/bench_gltf_fuzz.py."""
    cases = gltf_fuzz.draw_cases(FUZZ_CASES)
    report = gltf_fuzz.run_cases(cases, batch_size=150, batch_timeout=100)
    print(f"\nFIGURE gltf_fuzz_cases={report.tried} peak_rss_mb={report.peak_rss_mb:.0f}")
    print(f"  outcomes {dict(report.outcomes)}; RSS after imports {report.base_rss_mb:.0f} MB, "
          f"peak in {report.peak_case}")
    if report.failures:
        gltf_fuzz.save_failures(report, tmp_path / "failures")
    assert not report.failures, (f"{len(report.failures)} failures (cases saved in "
                                 f"{tmp_path / 'failures'}):\n" + "\n".join(report.failures))
    assert report.tried == len(cases) == FUZZ_CASES
    assert not report.unnamed, f"refused without a message naming the problem: {report.unnamed}"
    # The cases reach past parsing: some load, some are refused by a budget.
    assert report.outcomes["loaded"] > 0 and report.outcomes["ModelError:LimitExceeded"] > 0


def test_external_file_over_the_size_budget_is_a_limit(tmp_path: Path) -> None:
    doc = _triangle()
    doc["buffers"][0]["uri"] = "big.bin"
    (tmp_path / "big.bin").write_bytes(bytes(36) + bytes(4096))
    (tmp_path / "model.gltf").write_text(json.dumps(doc))
    with pytest.raises(ModelError, match="takes the model over the file size budget") as info:
        load_model(tmp_path / "model.gltf", max_file_bytes=2048)
    assert (info.value.code, info.value.budget) == (LIMIT_EXCEEDED, BUDGET_BYTES)
