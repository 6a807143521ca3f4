"""``POST /scene/models`` in process: the host app with a real SceneService over a real Scene
(the render loop is the only stand-in: it just counts ``mark_dirty``)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from farview.host.app import create_app
from farview.host.model_store import LoadBudgets, ModelStore
from farview.host.scene import Scene
from farview.host.scene_api import SceneService
from farview.input.launch import HostConfig
from farview.service.auth import public_key_pem
from tests.hosting import mint_token, new_signing_key
from tests.scene.conftest import MAX_MODEL_BYTES, MAX_TRIANGLES

KEY = new_signing_key()


class _RenderLoop:
    def __init__(self) -> None:
        self.dirty = 0

    def mark_dirty(self) -> None:
        self.dirty += 1


class _Runtime:
    def __init__(self) -> None:
        self.scene = Scene()
        self.scene_lock = threading.RLock()
        self.render_loop = _RenderLoop()
        self.connection: Any = None


@pytest.fixture
def app_and_runtime(model_dir: Path) -> tuple[httpx.AsyncClient, _Runtime]:
    runtime = _Runtime()
    service = SceneService(runtime,  # type: ignore[arg-type]
                           budgets=LoadBudgets(max_triangles=MAX_TRIANGLES,
                                               max_bytes=MAX_MODEL_BYTES),
                           store=ModelStore((model_dir,)))
    config = HostConfig(session_id="s", account_id="acct", token_public_key=public_key_pem(KEY))
    transport = httpx.ASGITransport(app=create_app(config, scene_api=service))
    return httpx.AsyncClient(transport=transport, base_url="http://host"), runtime


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(KEY, 'acct')}"}


async def test_loads_a_model_and_marks_the_scene_dirty(
        app_and_runtime: tuple[httpx.AsyncClient, _Runtime]) -> None:
    client, runtime = app_and_runtime
    r = await client.post("/scene/models", json={"source": "tri"}, headers=auth())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == "tri" and body["entity_count"] == 2
    assert [e.name for e in runtime.scene.entities()] == ["tri", "Triangle"]
    assert runtime.render_loop.dirty >= 1


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"source": "not_gltf"}, 422, "InvalidModel"),
    ({"source": "big_tris"}, 413, "LimitExceeded"),
    ({"source": "nope"}, 404, "NotFound"),
    ({"source": 3}, 400, "InvalidArgument"),
    ({}, 400, "InvalidArgument"),
])
async def test_refusals_have_status_and_error_body(app_and_runtime: tuple[httpx.AsyncClient, _Runtime],
                                              body: dict[str, Any], status: int,
                                              code: str) -> None:
    client, runtime = app_and_runtime
    r = await client.post("/scene/models", json=body, headers=auth())
    assert r.status_code == status
    assert r.json()["error"]["code"] == code and r.json()["error"]["message"]
    assert len(runtime.scene) == 0


async def test_needs_the_bearer_token(app_and_runtime: tuple[httpx.AsyncClient, _Runtime]) -> None:
    client, runtime = app_and_runtime
    r = await client.post("/scene/models", json={"source": "tri"})
    assert r.status_code == 401
    assert len(runtime.scene) == 0


async def test_hostile_bodies_are_refused_without_reading_or_recursing(
        app_and_runtime: tuple[httpx.AsyncClient, _Runtime]) -> None:
    """A body of 30,000 '[' made the route answer 500 (RecursionError in json.loads); a
    large body was read whole before anything looked at its size."""
    client, runtime = app_and_runtime
    r = await client.post("/scene/models", content=b"[" * 30000, headers={
        **auth(), "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "InvalidArgument"
    r = await client.post("/scene/models", content=b'{"source": "' + b"x" * 100_000 + b'"}',
                          headers={**auth(), "Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "PayloadTooLarge"
    assert len(runtime.scene) == 0
