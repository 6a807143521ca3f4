"""Fixtures for the scene API tests: a real host started with a model folder and small
budgets, a client connection, a loopback http server for URL loads, and tiny glTF writers."""

from __future__ import annotations

import functools
import http.server
import json
import struct
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from farview.client.connection import RenderingConnection
from tests.hosting import SHARED_MODELS, RunningHost, connected, start_host

VIEWPORT = (320, 240)
MAX_TRIANGLES = 40_000
"""The test host's triangle budget: above the sample engine (26.7k), below ``big_tris``."""
MAX_MODEL_BYTES = 2_000_000
"""The test host's size budget: above every shared model, below ``big_bytes``."""
FETCH_TIMEOUT = 1.5
SLOW_S = 4.0


def make_glb(positions: np.ndarray, indices: np.ndarray, *, pad: int = 0,
             node_name: str = "part") -> bytes:
    """A one-node, one-mesh GLB (plus ``pad`` unused bytes in its buffer)."""
    pos = np.ascontiguousarray(positions, dtype=np.float32)
    idx = np.ascontiguousarray(indices, dtype=np.uint32)
    blob = pos.tobytes() + idx.tobytes() + bytes(pad)
    doc = {
        "asset": {"version": "2.0"},
        "scene": 0, "scenes": [{"nodes": [0]}],
        "nodes": [{"name": node_name, "mesh": 0}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}, "indices": 1}]}],
        "buffers": [{"byteLength": len(blob)}],
        "bufferViews": [{"buffer": 0, "byteOffset": 0, "byteLength": pos.nbytes},
                        {"buffer": 0, "byteOffset": pos.nbytes, "byteLength": idx.nbytes}],
        "accessors": [
            {"bufferView": 0, "componentType": 5126, "count": len(pos), "type": "VEC3",
             "min": pos.min(axis=0).tolist(), "max": pos.max(axis=0).tolist()},
            {"bufferView": 1, "componentType": 5125, "count": len(idx), "type": "SCALAR"},
        ],
    }
    js = json.dumps(doc).encode()
    js += b" " * (-len(js) % 4)
    blob += bytes(-len(blob) % 4)
    body = (struct.pack("<II", len(js), 0x4E4F534A) + js
            + struct.pack("<II", len(blob), 0x004E4942) + blob)
    return struct.pack("<4sII", b"glTF", 2, 12 + len(body)) + body


def grid_glb(triangles: int, pad: int = 0) -> bytes:
    """``triangles`` small separate triangles (each its own three vertices)."""
    n = triangles
    base = np.arange(n, dtype=np.float32) * 0.001
    pos = np.zeros((n, 3, 3), dtype=np.float32)
    pos[:, 0, 0] = base
    pos[:, 1, 0] = base + 0.0005
    pos[:, 2, 0] = base
    pos[:, 2, 1] = 0.001
    return make_glb(pos.reshape(-1, 3), np.arange(3 * n), pad=pad)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The host's FARVIEW_MODEL_DIR: small generated models and broken files."""
    d = tmp_path_factory.mktemp("models")
    tri = make_glb(np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]]), np.array([0, 1, 2]),
                   node_name="Triangle")
    (d / "tri.glb").write_bytes(tri)
    (d / "big_tris.glb").write_bytes(grid_glb(MAX_TRIANGLES + 1000))
    (d / "big_bytes.glb").write_bytes(grid_glb(10, pad=MAX_MODEL_BYTES + 1000))
    # 400 bytes on disk, 3.6 GB decoded: 300 M zero-filled positions (no bufferView)
    (d / "big_decoded.gltf").write_text(json.dumps({
        "asset": {"version": "2.0"}, "scenes": [{"nodes": [0]}], "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}}]}],
        "accessors": [{"componentType": 5126, "count": 300_000_000, "type": "VEC3"}]}))
    (d / "not_gltf.glb").write_bytes(b"PK\x03\x04 this is a zip file, not a model" * 10)
    sample = (Path(__file__).resolve().parents[2] / "assets" / "sample_engine.glb").read_bytes()
    (d / "truncated.glb").write_bytes(sample[: len(sample) // 3])
    return d


class _Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/slow"):
            time.sleep(SLOW_S)
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def http_models() -> Iterator[str]:
    """Base URL of a loopback http server serving the shared models (``/slow/...`` waits)."""
    handler = functools.partial(_Handler, directory=str(SHARED_MODELS))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def start_scene_host(tmp: Path, model_dir: Path) -> RunningHost:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FARVIEW_MODEL_DIR", str(model_dir))
        mp.setenv("FARVIEW_MAX_TRIANGLES", str(MAX_TRIANGLES))
        mp.setenv("FARVIEW_MAX_MODEL_BYTES", str(MAX_MODEL_BYTES))
        mp.setenv("FARVIEW_FETCH_TIMEOUT", str(FETCH_TIMEOUT))
        return start_host(tmp)


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[RunningHost]:
    running = start_scene_host(tmp_path_factory.mktemp("host"), model_dir)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
async def conn(host: RunningHost) -> AsyncIterator[RenderingConnection]:
    async with connected(host, VIEWPORT) as c:
        yield c
