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


async def test_loads_run_at_most_two_at_once_and_the_session_size_bounds_the_scene(
        model_dir: Path, http_models: str) -> None:
    """Each request used to start its own load, and a session could hold any number of models.
    A third concurrent load is refused; a Standard session's scene is bounded (20 M triangles
    as in ARR; here the bound is lowered to a few triangles to reach it), a Premium one is not."""
    import asyncio

    from farview.host.errors import HostError

    runtime = _Runtime()
    standard = SceneService(runtime,  # type: ignore[arg-type]
                            budgets=LoadBudgets(max_triangles=MAX_TRIANGLES, max_bytes=MAX_MODEL_BYTES),
                            store=ModelStore((model_dir,)), size="Standard")
    slow = f"{http_models}/slow/Box.glb"  # answered late (and then 404): a load in progress
    results = await asyncio.gather(standard.load(slow), standard.load(slow), standard.load(slow),
                                   return_exceptions=True)
    busy = [r for r in results if isinstance(r, HostError) and "in progress" in r.message]
    assert len(busy) == 1 and busy[0].code == "LimitExceeded"
    assert "2 model loads are in progress on this host" in busy[0].message

    in_scene = sum(e.mesh.triangle_count for e in runtime.scene.entities() if e.mesh is not None)
    standard.scene_triangles = in_scene + 1  # room for one more triangle: "tri" fits, Box not
    await standard.load("tri")
    with pytest.raises(HostError) as info:
        await standard.load(f"{http_models}/Box.glb")
    assert info.value.code == "LimitExceeded"
    assert "Standard session" in info.value.message and "Premium" in info.value.message
    before = len(runtime.scene)
    premium = SceneService(runtime, budgets=standard.budgets, store=standard.store,  # type: ignore[arg-type]
                           size="Premium")
    assert premium.scene_triangles is None
    await premium.load(f"{http_models}/Box.glb")
    assert len(runtime.scene) > before
    # a model over the session's whole bound on its own, in an empty scene: said as the
    # session's bound, with Premium as the way (it said to set FARVIEW_MAX_TRIANGLES on the
    # host, which the bound then refused anyway, and a remote user cannot set)
    alone = SceneService(_Runtime(), budgets=LoadBudgets(max_triangles=5, max_bytes=MAX_MODEL_BYTES),  # type: ignore[arg-type]
                         store=ModelStore((model_dir,)), size="Standard")
    alone.scene_triangles = 5
    with pytest.raises(HostError) as info:
        await alone.load(f"{http_models}/Box.glb")
    assert "a Standard session holds at most 5 triangles: use a Premium session" in info.value.message
    assert "FARVIEW_MAX_TRIANGLES" not in info.value.message
