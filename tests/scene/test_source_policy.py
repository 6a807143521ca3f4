"""The model source policy: with ``store``, hosts load model store names and URLs on allowed
hosts only (no host paths, no redirect off the list, no proxies); it is the default when the
service binds a non-loopback address. In process against a real http server, and on a real
service bound to 0.0.0.0."""

from __future__ import annotations

import asyncio
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from farview.assets import SAMPLE_MODEL
from farview.client.errors import ModelLoadError
from farview.host.errors import HostError
from farview.host.model_store import LoadBudgets, ModelStore, SourcePolicy
from farview.host.scene_api import SceneService
from tests.scene.conftest import MAX_MODEL_BYTES, MAX_TRIANGLES
from tests.scene.test_http_route import _Runtime
from tests.service.conftest import launch_service


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            port = self.server.server_address[1]
            if self.path == "/away":  # redirects to the same server under another host name
                self.send_response(302)
                self.send_header("Location", f"http://localhost:{port}/engine.glb")
                self.end_headers()
                return
            data = SAMPLE_MODEL.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield int(httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()


def _service(model_dir: Path, policy: SourcePolicy) -> SceneService:
    return SceneService(_Runtime(), budgets=LoadBudgets(max_triangles=MAX_TRIANGLES,  # type: ignore[arg-type]
                                                       max_bytes=MAX_MODEL_BYTES),
                        store=ModelStore((model_dir,)), policy=policy)


def test_the_store_policy_allows_names_and_listed_url_hosts_only(model_dir: Path, server: int) -> None:
    scene = _service(model_dir, SourcePolicy(store_only=True, url_hosts=frozenset({"127.0.0.1"})))

    async def run() -> None:
        await scene.load("tri")  # a store name
        await scene.load(f"http://127.0.0.1:{server}/engine.glb")  # an allowed host
        for source, what in ((str(model_dir / "tri.glb"), "is a path on the host"),
                             (f"http://localhost:{server}/engine.glb", "not from 'localhost'"),
                             (f"http://127.0.0.1:{server}/away", "not from 'localhost'")):
            with pytest.raises(HostError) as info:
                await scene.load(source)
            assert info.value.code == "Forbidden" and what in info.value.message, source

    asyncio.run(run())
    open_scene = _service(model_dir, SourcePolicy())
    asyncio.run(open_scene.load(f"http://127.0.0.1:{server}/away"))  # any: redirects followed


def test_a_file_uri_is_a_host_path_and_a_missing_name_suggests_what_the_policy_allows(
        model_dir: Path) -> None:
    """A conversion's ``outputAssetUri`` (``file:///…``) loads as the path it names, under the
    same policy as a path (it said "unsupported model URL scheme"); under the store policy a
    name not in the store no longer suggests a path, which that policy refuses."""
    uri = (model_dir / "tri.glb").as_uri()

    async def run() -> None:
        model = await _service(model_dir, SourcePolicy()).load(uri)
        assert model["triangles"] >= 1
        for source, code, what in (
                (uri.replace("file:///", "file://elsewhere/"), "InvalidArgument",
                 "names another machine"),
                ("file:///no/such/model.glb", "NotFound", "no model file"),
                # a NUL, raw or %00, was a ValueError from the file system calls: a 500
                (str(model_dir / "tri.glb") + "\0", "InvalidArgument", "contains a NUL"),
                (uri + "%00", "InvalidArgument", "a path with a NUL")):
            with pytest.raises(HostError) as info:
                await _service(model_dir, SourcePolicy()).load(source)
            assert info.value.code == code and what in info.value.message, source
        store_only = _service(model_dir, SourcePolicy(store_only=True))
        with pytest.raises(HostError) as info:
            await store_only.load(uri)
        assert info.value.code == "Forbidden" and "is a path on the host" in info.value.message
        with pytest.raises(HostError) as info:
            await store_only.load("not-in-the-store")
        assert info.value.code == "NotFound" and "give a path" not in info.value.message
        assert "operator" in info.value.message

    asyncio.run(run())


def test_the_store_policy_loads_files_in_the_accounts_storage_only(model_dir: Path,
                                                                    tmp_path: Path) -> None:
    """The session's account's conversion storage is open under the store policy (a
    conversion's output loads as ARR's did); a path out of it, by ``..`` or by a link, is not."""
    storage = tmp_path / "storage" / "acct"
    (storage / "output").mkdir(parents=True)
    (storage / "output" / "tri.glb").write_bytes((model_dir / "tri.glb").read_bytes())
    (storage / "output" / "out.glb").symlink_to(model_dir / "tri.glb")
    scene = _service(model_dir, SourcePolicy(store_only=True, folders=(storage,)))

    async def run() -> None:
        for source in ((storage / "output" / "tri.glb").as_uri(), str(storage / "output" / "tri.glb")):
            assert (await scene.load(source))["triangles"] >= 1
        for source in (str(model_dir / "tri.glb"), f"{storage}/../../{model_dir.name}/tri.glb",
                       str(storage / "output" / "out.glb"), (storage.parent / "x.glb").as_uri()):
            with pytest.raises(HostError) as info:
                await scene.load(source)
            assert info.value.code == "Forbidden", source
            assert "this account's conversion storage" in info.value.message
        with pytest.raises(HostError) as info:  # in the folder but missing: said as such
            await scene.load(str(storage / "output" / "missing.glb"))
        assert info.value.code == "NotFound"

    asyncio.run(run())


@pytest.mark.slow
def test_a_service_on_a_non_loopback_address_restricts_sources_by_default(tmp_path: Path) -> None:
    svc = launch_service(tmp_path / "data", "--host", "0.0.0.0", "--allow-insecure-remote")
    try:
        assert "models load from the model store only, no URL (--model-sources store; " \
            "--model-url-host HOST allows a host's URLs)" in svc.output()
        with svc.client() as client:
            session = client.create_session("paths", max_lease_time_minutes=10,
                                            models=[str(SAMPLE_MODEL)])
            session.wait_until_ready(60)
            with pytest.raises(ModelLoadError, match="Forbidden"):
                session.wait_for_models(60)
            (status,) = session.properties.model_status
            assert (status.status, status.code) == ("Failed", "Forbidden"), status
            session.stop()
            # a conversion's output in this account's storage loads; another account's does not
            own = svc.data_dir / "storage" / svc.account_id / "output" / "engine.glb"
            other = svc.data_dir / "storage" / "someone-else" / "output" / "engine.glb"
            for path in (own, other):
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(SAMPLE_MODEL.read_bytes())
            session = client.create_session("converted", max_lease_time_minutes=10,
                                            models=[own.as_uri(), other.as_uri()])
            session.wait_until_ready(60)
            with pytest.raises(ModelLoadError, match="Forbidden"):
                session.wait_for_models(60)
            statuses = {s.source: s for s in session.properties.model_status}
            assert statuses[own.as_uri()].status == "Loaded", statuses
            assert (statuses[other.as_uri()].status, statuses[other.as_uri()].code) == (
                "Failed", "Forbidden"), statuses
            session.stop()
        # conversions' http(s) storage follows the same policy: no URL host is allowed here
        for key in ("inputLocation", "outputLocation"):
            loc = {"inputLocation": {"storageContainerUri": "in", "relativeInputAssetPath": "a.obj"},
                   "outputLocation": {"storageContainerUri": "out"}}
            loc[key]["storageContainerUri"] = "http://127.0.0.1:9/container"
            r = httpx.put(f"{svc.url}/accounts/{svc.account_id}/conversions/web-{key}",
                          params={"api-version": "2021-01-01"}, json={"settings": loc},
                          headers=svc.auth, timeout=30)
            assert r.status_code == 400, r.text
            assert f"settings.{key}.storageContainerUri" in r.json()["error"]["message"]
            assert "only on the hosts model URLs may use (none), not 127.0.0.1" in r.text
    finally:
        svc.stop()


def test_a_file_farview_convert_takes_is_told_to_be_converted(model_dir: Path, tmp_path: Path) -> None:
    """An OBJ given to the loader was told only "not a glTF file: bad magic"."""
    from farview.host.convert import ASSIMP_FORMATS
    from farview.host.scene_api import CONVERTIBLE

    assert set(CONVERTIBLE) == set(ASSIMP_FORMATS)
    obj = tmp_path / "part.obj"
    obj.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    with pytest.raises(HostError) as info:
        asyncio.run(_service(model_dir, SourcePolicy()).load(str(obj)))
    assert "convert it first (farview convert" in info.value.message, info.value.message
