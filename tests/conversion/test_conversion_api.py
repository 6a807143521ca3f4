"""ARR's conversion REST API on the real service: create (201, a retry 200, other settings
409), get, list with paging, the run from NotStarted to Succeeded with the output in its
container, failures with an error object and no output, storage locations confined to the
service's storage root, credentials and account isolation."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from farview.host.convert import STEPS
from farview.host.gltf import load_model
from tests.conversion.test_convert import (
    MTL,
    OBJ,
    check_textured_quad,
    grid_obj,
    world_bounds,
    write_textured_quad,
)
from tests.faults.conftest import ACCOUNT_B
from tests.service.conftest import RunningService, launch_service

pytestmark = pytest.mark.slow
V = {"api-version": "2021-01-01"}


@pytest.fixture(scope="module")
def svc(accounts_service: tuple[RunningService, str]) -> tuple[RunningService, str]:
    return accounts_service  # a service with two accounts (tests/faults/conftest.py)


def settings(input_name: str, container: str = "input", out_container: str = "output",
             **out: str) -> dict:
    return {"settings": {
        "inputLocation": {"storageContainerUri": container, "relativeInputAssetPath": input_name},
        "outputLocation": {"storageContainerUri": out_container, "blobPrefix": "converted",
                           **out}}}


def put(service: RunningService, cid: str, body: object, auth: dict | None = None) -> httpx.Response:
    return httpx.put(f"{service.url}/accounts/{service.account_id}/conversions/{cid}", params=V,
                     json=body, headers=service.auth if auth is None else auth, timeout=30)


def wait_done(service: RunningService, cid: str) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r = httpx.get(f"{service.url}/accounts/{service.account_id}/conversions/{cid}",
                      params=V, headers=service.auth, timeout=30)
        assert r.status_code == 200, r.text
        body = r.json()
        if body["status"] in ("Succeeded", "Failed", "Cancelled"):
            return body
        assert body["status"] in ("NotStarted", "Running")
        time.sleep(0.1)
    raise AssertionError(f"conversion {cid} did not finish")


def run_hiding(service: RunningService, cid: str, body: dict, secret: str, where: str,
               field: str) -> dict:
    """Create conversion ``cid``, check that its token (``secret``, in ``settings.where.field``)
    is in no response, and wait for it to succeed."""
    created = put(service, cid, body)
    assert created.status_code == 201, created.text
    assert secret not in created.text
    assert field not in created.json()["settings"][where]
    done = wait_done(service, cid)
    assert done["status"] == "Succeeded", done
    return done


def assert_never_shown(service: RunningService, secret: str) -> None:
    listed = httpx.get(f"{service.url}/accounts/{service.account_id}/conversions", params=V,
                       headers=service.auth, timeout=30)
    assert secret not in listed.text
    assert secret not in service.log_path.read_text(errors="replace")


def test_a_conversion_runs_and_its_output_loads(svc: tuple[RunningService, str]) -> None:
    service, _ = svc
    storage = service.data_dir / "storage" / service.account_id / "input"
    storage.mkdir(parents=True, exist_ok=True)
    (storage / "parts.obj").write_text(OBJ)
    (storage / "parts.mtl").write_text(MTL)
    body = settings("parts.obj", outputAssetFilename="parts.glb")
    r = put(service, "conv-1", body)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["id"] == "conv-1" and created["status"] in ("NotStarted", "Running")
    assert created["settings"] == body["settings"] and created["error"] is None
    assert created["creationTime"].endswith("Z")
    again = put(service, "conv-1", body)  # a retry with the same settings
    assert again.status_code == 200 and again.json()["id"] == "conv-1"
    other = put(service, "conv-1", settings("other.obj"))
    assert other.status_code == 409 and "other settings" in other.json()["error"]["message"]
    done = wait_done(service, "conv-1")
    assert done["status"] == "Succeeded", done
    out = service.data_dir / "storage" / service.account_id / "output" / "converted" / "parts.glb"
    assert done["output"] == {"outputAssetUri": out.resolve().as_uri()}  # ARR's shape, no warnings
    model = load_model(out)
    assert {"Plate", "Wedge"} <= {n.name for n in model.nodes} and model.triangle_count == 3
    # ARR's info and result files beside the asset
    info = json.loads(out.with_name("parts.info.json").read_text())
    assert info["files"] == {"input": "parts.obj", "output": "parts.glb"}
    assert info["inputInfo"]["sourceAssetExtension"] == ".obj"
    stats = info["inputStatistics"]
    # (the importer adds a default material to an OBJ's two)
    assert (stats["numMeshes"], stats["numFaces"], stats["numMaterial"]) == (2, 3, 3)
    assert (stats["numFacesSmallestMesh"], stats["numFacesBiggestMesh"]) == (1, 2)
    assert info["outputStatistics"]["numMeshPartsCreated"] == 2
    np.testing.assert_allclose(info["outputStatistics"]["boundingBox"]["min"], [0, 0, 0])
    np.testing.assert_allclose(info["outputStatistics"]["boundingBox"]["max"], [4, 1, 1])
    assert len(info["outputInfo"]["conversionHash"]) == 16
    assert json.loads(out.with_name("parts.result.json").read_text()) == [
        {"conversionId": "conv-1"}, {"result": "succeeded"}]
    listed = httpx.get(f"{service.url}/accounts/{service.account_id}/conversions", params=V,
                       headers=service.auth, timeout=30).json()
    assert "conv-1" in [c["id"] for c in listed["conversions"]]


def test_a_conversion_that_has_not_ended_says_what_it_does(
        svc: tuple[RunningService, str]) -> None:
    """Not in ARR's API, which gave only the status: a conversion that has not ended has a
    ``progress``, its step and the share done, never going back; an ended one has none."""
    service, _ = svc
    storage = service.data_dir / "storage" / service.account_id / "input"
    storage.mkdir(parents=True, exist_ok=True)
    (storage / "grid.obj").write_text(grid_obj(300))  # 178,802 triangles: a second or two
    created = put(service, "conv-progress", settings("grid.obj", outputAssetFilename="grid.glb"))
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "NotStarted"
    # ("waiting for a converter" only while two others run: none does here)
    assert created.json()["progress"] == {"step": "starting", "fraction": 0.0}
    seen = [created.json()["progress"]]
    deadline = time.monotonic() + 60
    while True:
        assert time.monotonic() < deadline, f"the conversion did not end; {seen[-1]}"
        body = httpx.get(f"{service.url}/accounts/{service.account_id}/conversions/conv-progress",
                         params=V, headers=service.auth, timeout=30).json()
        if body["status"] == "Succeeded":
            assert "progress" not in body
            break
        assert body["status"] in ("NotStarted", "Running"), body
        seen.append(body["progress"])
        time.sleep(0.02)
    steps = [p["step"] for p in seen]
    assert set(steps) <= {"waiting for a converter", "starting", *STEPS}, steps
    assert set(steps) & set(STEPS), f"no step of the converter's was seen: {steps}"
    fractions = [p["fraction"] for p in seen]
    assert fractions == sorted(fractions) and all(0.0 <= f <= 1.0 for f in fractions)


def test_a_conversion_running_when_the_service_stops_is_cancelled_cleanly(tmp_path: Path) -> None:
    """The service stopped (SIGTERM) while a conversion ran: the record says Cancelled and why,
    no output is left, its converter is gone, and the log has no traceback (reading the
    converter's progress, the first version logged a CancelledError "never retrieved")."""
    import psutil

    service = launch_service(tmp_path / "data")
    try:
        storage = service.data_dir / "storage" / service.account_id / "input"
        storage.mkdir(parents=True)
        (storage / "grid.obj").write_text(grid_obj(400))
        assert put(service, "c-stop", settings("grid.obj", outputAssetFilename="g.glb")).status_code == 201
        url = f"{service.url}/accounts/{service.account_id}/conversions/c-stop"
        deadline = time.monotonic() + 60
        while httpx.get(url, params=V, headers=service.auth, timeout=30).json().get(
                "progress", {}).get("step") not in STEPS:  # (the converter runs)
            assert time.monotonic() < deadline, "the converter did not start"
            time.sleep(0.05)
        converters = psutil.Process(service.pid).children(recursive=True)
        assert converters
    finally:
        service.stop()
    log = service.output()
    assert "Traceback" not in log and "never retrieved" not in log, log[-3000:]
    _, alive = psutil.wait_procs(converters, timeout=10)
    assert not alive, "the converter outlived the service"
    output = service.data_dir / "storage" / service.account_id / "output"
    assert not (output.exists() and list(output.rglob("g*"))), list(output.rglob("*"))
    again = launch_service(tmp_path / "data")
    try:
        body = httpx.get(f"{again.url}/accounts/{again.account_id}/conversions/c-stop", params=V,
                         headers=again.auth, timeout=30).json()
    finally:
        again.stop()
    assert body["status"] == "Cancelled" and "progress" not in body, body
    assert "start it again with a new conversion id" in body["error"]["message"], body


def test_what_a_conversion_did_not_keep_is_in_its_output(svc: tuple[RunningService, str]) -> None:
    """A material naming an image that is not beside the model: the conversion succeeds, and
    its ``output`` says which texture was not kept."""
    service, _ = svc
    storage = service.data_dir / "storage" / service.account_id / "input"
    storage.mkdir(parents=True, exist_ok=True)
    (storage / "tile.obj").write_text("mtllib tile.mtl\nv 0 0 0\nv 1 0 0\nv 1 1 0\nvt 0 0\n"
                                      "vt 1 0\nvt 1 1\nusemtl painted\nf 1/1 2/2 3/3\n")
    (storage / "tile.mtl").write_text("newmtl painted\nKd 1 1 1\nmap_Kd missing.png\n")
    assert put(service, "conv-warn", settings("tile.obj")).status_code == 201
    done = wait_done(service, "conv-warn")
    assert done["status"] == "Succeeded", done
    (warning,) = done["output"]["warnings"]
    assert "'missing.png' is not in the folder of tile.obj" in warning
    listed = httpx.get(f"{service.url}/accounts/{service.account_id}/conversions", params=V,
                       headers=service.auth, timeout=30).json()["conversions"]
    assert [c["output"]["warnings"] for c in listed if c["id"] == "conv-warn"] == [[warning]]


def test_the_settings_file_beside_the_input_is_applied(svc: tuple[RunningService, str]) -> None:
    """ARR's ``<stem>.ConversionSettings.json`` in the input container: applied (here
    ``scaling``), what farview does not apply said in the output's warnings, and a file
    against ARR's schema fails the conversion with what is wrong."""
    service, _ = svc
    storage = service.data_dir / "storage" / service.account_id / "input"
    storage.mkdir(parents=True, exist_ok=True)
    (storage / "box.obj").write_text(OBJ)
    (storage / "parts.mtl").write_text(MTL)
    (storage / "box.ConversionSettings.json").write_text(
        '{"scaling": 0.01, "metadataKeys": ["part number"]}')
    assert put(service, "conv-settings", settings("box.obj", outputAssetFilename="box.glb")
               ).status_code == 201
    done = wait_done(service, "conv-settings")
    assert done["status"] == "Succeeded", done
    (warning,) = done["output"]["warnings"]
    assert "metadataKeys is not applied" in warning
    out = service.data_dir / "storage" / service.account_id / "output" / "converted" / "box.glb"
    lo, hi = world_bounds(out)
    np.testing.assert_allclose(hi - lo, [0.04, 0.01, 0.01], rtol=1e-5)  # the OBJ: 4 × 1 × 1
    info = json.loads(out.with_name("box.info.json").read_text())
    assert info["conversionSettings"] == {"scaling": 0.01, "metadataKeys": ["part number"]}
    result = json.loads(out.with_name("box.result.json").read_text())
    assert result == [{"conversionId": "conv-settings"},
                      {"warning": "farview", "title": warning},
                      {"result": "succeeded with warnings"}]
    (storage / "box.ConversionSettings.json").write_text('{"sceneGraphMode": "flat"}')
    assert put(service, "conv-settings-bad", settings("box.obj", outputAssetFilename="bad.glb")
               ).status_code == 201
    failed = wait_done(service, "conv-settings-bad")
    assert failed["status"] == "Failed" and failed["error"]["code"] == "InvalidInput"
    assert "box.ConversionSettings.json: sceneGraphMode must be one of" in \
        failed["error"]["message"]
    assert not (service.data_dir / "storage" / service.account_id / "output" / "converted" / "bad.glb").exists()


def test_failures_name_the_problem_and_leave_no_output(svc: tuple[RunningService, str]) -> None:
    service, _ = svc
    storage = service.data_dir / "storage" / service.account_id / "input"
    storage.mkdir(parents=True, exist_ok=True)
    (storage / "broken.fbx").write_bytes(b"\x00 not fbx " * 50)
    assert put(service, "conv-bad", settings("broken.fbx")).status_code == 201
    done = wait_done(service, "conv-bad")
    assert done["status"] == "Failed" and done["error"]["code"] == "InvalidInput"
    assert "broken.fbx could not be read" in done["error"]["message"] and "output" not in done
    assert not list((service.data_dir / "storage" / service.account_id / "output").rglob("broken*"))
    assert put(service, "conv-missing", settings("absent.obj")).status_code == 201
    missing = wait_done(service, "conv-missing")
    assert missing["status"] == "Failed" and "does not exist" in missing["error"]["message"]
    # an importer that crashes on a hostile file takes only the conversion's child down
    from tests.conversion.test_convert import CRASHING_PLY

    (storage / "hostile.ply").write_bytes(CRASHING_PLY)
    assert put(service, "conv-crash", settings("hostile.ply")).status_code == 201
    crashed = wait_done(service, "conv-crash")
    assert crashed["status"] == "Failed" and "hostile.ply" in crashed["error"]["message"]
    assert not list((service.data_dir / "storage" / service.account_id / "output").rglob("hostile*"))
    assert put(service, "conv-after", settings("broken.fbx")).status_code == 201  # still serves
    assert wait_done(service, "conv-after")["status"] == "Failed"


def test_an_http_input_is_downloaded_and_its_token_never_shown(
        svc: tuple[RunningService, str], tmp_path) -> None:
    """ARR's inputs were blob containers with a SAS token: an http(s) container (here a server on
    127.0.0.1 that wants ``sig``) is downloaded from; the token is in no response and no log."""
    import http.server
    import shutil
    import threading
    import urllib.parse

    from tests.host.conftest import SAMPLE

    service, _ = svc
    (tmp_path / "models").mkdir()
    shutil.copy(SAMPLE, tmp_path / "models" / "engine.glb")
    secret = "s3cret-token-4711"

    class Blobs(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw) -> None:
            super().__init__(*a, directory=str(tmp_path), **kw)

        def do_GET(self) -> None:
            query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
            if query.get("sig") != [secret]:
                self.send_error(403)
                return
            super().do_GET()

        def log_message(self, *a: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Blobs)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    container = f"http://127.0.0.1:{server.server_address[1]}/models"
    try:
        body = settings("engine.glb", container=container, outputAssetFilename="web.glb")
        body["settings"]["inputLocation"]["storageContainerReadListSas"] = f"?sig={secret}"
        run_hiding(service, "conv-web", body, secret, "inputLocation", "storageContainerReadListSas")
        out = service.data_dir / "storage" / service.account_id / "output" / "converted" / "web.glb"
        assert load_model(out).triangle_count == load_model(SAMPLE).triangle_count
        # ARR's settings file beside the asset is fetched too (with the token)
        (tmp_path / "models" / "engine.ConversionSettings.json").write_text(
            '{"scaling": 2.0}')
        body["settings"]["outputLocation"]["outputAssetFilename"] = "web2.glb"
        run_hiding(service, "conv-web-settings", body, secret, "inputLocation",
                   "storageContainerReadListSas")
        lo, hi = world_bounds(out)
        lo2, hi2 = world_bounds(out.with_name("web2.glb"))
        np.testing.assert_allclose(hi2 - lo2, 2.0 * (hi - lo), rtol=1e-4)
        # and ARR's material override file, named by the settings (in a folder)
        (tmp_path / "models" / "engine.ConversionSettings.json").write_text(
            '{"material-override": "mats/engine.json"}')
        (tmp_path / "models" / "mats").mkdir()
        (tmp_path / "models" / "mats" / "engine.json").write_text(
            '[{"name": "RedPaint", "unlit": true}]')
        body["settings"]["outputLocation"]["outputAssetFilename"] = "web3.glb"
        run_hiding(service, "conv-web-overrides", body, secret, "inputLocation",
                   "storageContainerReadListSas")
        unlit = {m.name for m in load_model(out.with_name("web3.glb")).materials if m.unlit}
        assert unlit == {"RedPaint"}
        # a token in the container URL itself: used, and not shown either
        body = settings("absent.glb", container=f"{container}?sig={secret}")
        assert put(service, "conv-web-404", body).status_code == 201
        missing = wait_done(service, "conv-web-404")
        assert missing["status"] == "Failed" and missing["error"]["code"] == "InvalidInput"
        assert "HTTP 404" in missing["error"]["message"] and secret not in str(missing)
        assert missing["settings"]["inputLocation"]["storageContainerUri"] == container
        body = settings("engine.glb", container=container)  # no token: refused by the server
        assert put(service, "conv-web-403", body).status_code == 201
        refused = wait_done(service, "conv-web-403")
        assert refused["status"] == "Failed" and "HTTP 403" in refused["error"]["message"]
        assert_never_shown(service, secret)
    finally:
        server.shutdown()
        server.server_close()


def test_an_http_output_is_uploaded_once_complete_and_its_token_never_shown(
        svc: tuple[RunningService, str], tmp_path) -> None:
    """ARR wrote its output to a blob container with a write SAS: here an http server on
    127.0.0.1 that takes Azure's Put Blob (``x-ms-blob-type: BlockBlob``) when ``sig`` is right.
    The converted file arrives in one PUT, whole, and loads; the token is in no response and no
    log; a refused upload fails the conversion, saying so."""
    import http.server
    import threading
    import urllib.parse

    service, _ = svc
    storage = service.data_dir / "storage" / service.account_id / "input"
    storage.mkdir(parents=True, exist_ok=True)
    (storage / "parts.obj").write_text(OBJ)
    (storage / "parts.mtl").write_text(MTL)
    secret = "w0rite-token-815"
    puts: list[tuple[str, str | None, bytes]] = []

    class Blobs(http.server.BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            url = urllib.parse.urlparse(self.path)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if urllib.parse.parse_qs(url.query).get("sig") != [secret]:
                self.send_error(403)
                return
            puts.append((url.path, self.headers.get("x-ms-blob-type"), body))
            self.send_response(201)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Blobs)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    container = f"http://127.0.0.1:{server.server_address[1]}/results"
    before = sorted(service.data_dir.joinpath("storage").rglob("*"))
    try:
        body = settings("parts.obj", out_container=container, outputAssetFilename="parts.glb")
        body["settings"]["outputLocation"]["storageContainerWriteSas"] = f"?sig={secret}"
        done = run_hiding(service, "conv-up", body, secret, "outputLocation", "storageContainerWriteSas")
        assert done["output"]["outputAssetUri"] == f"{container}/converted/parts.glb"
        # the asset, then ARR's info and result files beside it
        assert [(p, t) for p, t, _ in puts] == [
            ("/results/converted/parts.glb", "BlockBlob"),
            ("/results/converted/parts.info.json", "BlockBlob"),
            ("/results/converted/parts.result.json", "BlockBlob")]
        (tmp_path / "up.glb").write_bytes(puts[0][2])
        model = load_model(tmp_path / "up.glb")
        assert {"Plate", "Wedge"} <= {n.name for n in model.nodes} and model.triangle_count == 3
        info = json.loads(puts[1][2])
        assert info["inputStatistics"]["numFaces"] == 3
        assert json.loads(puts[2][2]) == [{"conversionId": "conv-up"}, {"result": "succeeded"}]
        assert sorted(service.data_dir.joinpath("storage").rglob("*")) == before  # none kept here
        # no token: the server refuses the upload, and the conversion says so
        body = settings("parts.obj", out_container=container)
        assert put(service, "conv-up-403", body).status_code == 201
        refused = wait_done(service, "conv-up-403")
        assert refused["status"] == "Failed" and refused["error"]["code"] == "OutputUploadFailed"
        assert "HTTP 403" in refused["error"]["message"] and "output" not in refused
        assert len(puts) == 3
        assert_never_shown(service, secret)
    finally:
        server.shutdown()
        server.server_close()


def test_a_download_and_an_upload_move_the_fraction(svc: tuple[RunningService, str]) -> None:
    """An http input is the first tenth of the fraction, moving by bytes as they come (here
    3 MiB sent in pieces, slowly); an http output the last tenth of what follows; the
    converter's steps the rest. The fraction never goes back."""
    import http.server
    import threading

    service, _ = svc
    padding = "".join(f"# padding line {i:07d} {'x' * 40}\n" for i in range(56_000))
    model = (grid_obj(20) + padding).encode()  # 3 MiB, most of it comments
    assert len(model) > 3 << 20

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/blobs/grid.obj":  # (a listing, a settings file)
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(model)))
            self.end_headers()
            for i in range(0, len(model), 256 << 10):
                self.wfile.write(model[i:i + (256 << 10)])
                self.wfile.flush()
                time.sleep(0.1)

        def do_PUT(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(0.3)
            self.send_response(201)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    web = f"http://127.0.0.1:{server.server_address[1]}/blobs"
    try:
        created = put(service, "conv-transfer", settings("grid.obj", container=web,
                                                         out_container=web))
        assert created.status_code == 201, created.text
        seen = [created.json()["progress"]]
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline, f"the conversion did not end; {seen[-1]}"
            body = httpx.get(f"{service.url}/accounts/{service.account_id}/conversions/"
                             "conv-transfer", params=V, headers=service.auth, timeout=30).json()
            if body["status"] != "Running" and body["status"] != "NotStarted":
                assert body["status"] == "Succeeded", body
                break
            seen.append(body["progress"])
            time.sleep(0.03)
    finally:
        server.shutdown()
        server.server_close()
    fractions = [p["fraction"] for p in seen]
    assert fractions == sorted(fractions), seen
    down = [p["fraction"] for p in seen if p["step"] == "downloading the input"]
    converter = [p["fraction"] for p in seen if p["step"] in STEPS]
    up = [p["fraction"] for p in seen if p["step"] == "uploading the output"]
    assert any(0.0 < f < 0.1 for f in down), f"the download did not move the fraction: {seen}"
    # (the upload's tenth is of what follows the download: from 0.91)
    assert converter and all(0.1 <= f <= 0.91 for f in converter), seen
    assert up and all(0.91 <= f <= 1.0 for f in up), seen


def test_the_asset_path_starts_at_blob_prefix_and_its_folder_comes_along(
        svc: tuple[RunningService, str]) -> None:
    """ARR's layout: ``blobPrefix`` "models/Assets" and ``relativeInputAssetPath`` "quad.obj"
    is the file models/Assets/quad.obj, and the files beside it (its .mtl and texture) are
    there for the conversion."""
    service, _ = svc
    folder = service.data_dir / "storage" / service.account_id / "input" / "models" / "Assets"
    folder.mkdir(parents=True, exist_ok=True)
    write_textured_quad(folder, "checker.png")
    body = settings("quad.obj", outputAssetFilename="prefixed.glb")
    body["settings"]["inputLocation"]["blobPrefix"] = "models/Assets"
    done = wait_done(service, put(service, "conv-prefix", body).json()["id"])
    assert done["status"] == "Succeeded" and "warnings" not in done["output"], done
    check_textured_quad(service.data_dir / "storage" / service.account_id / "output" / "converted" / "prefixed.glb")
    body["settings"]["inputLocation"]["blobPrefix"] = "../input"
    bad = put(service, "conv-prefix-bad", body)
    assert bad.status_code == 400 and "blobPrefix" in bad.json()["error"]["message"]


def test_an_azure_container_gives_every_blob_under_the_prefix(
        svc: tuple[RunningService, str], tmp_path) -> None:
    """An http container that answers Azure's List Blobs (paged, as Azure pages it) with the
    read/list token: every blob under blobPrefix is fetched (the OBJ's .mtl and texture: the
    texture is kept), nothing outside it; the token is shown nowhere."""
    import http.server
    import threading
    import urllib.parse
    from xml.sax.saxutils import escape

    service, _ = svc
    write_textured_quad(tmp_path, "Textures/checker.png")
    blobs = {"models/Assets/quad.obj": (tmp_path / "quad.obj").read_bytes(),
             "models/Assets/quad.mtl": (tmp_path / "quad.mtl").read_bytes(),
             "models/Assets/Textures/checker.png": (tmp_path / "checker.png").read_bytes(),
             "other/secret.txt": b"not for this conversion"}
    secret = "l1st-token-99"
    fetched: list[str] = []

    class Azure(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urllib.parse.urlparse(self.path)
            q = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
            if q.get("sig") != secret or not url.path.startswith("/container"):
                self.send_error(403)
                return
            if q.get("comp") == "list" and q.get("restype") == "container":
                names = sorted(n for n in blobs if n.startswith(q.get("prefix", "")))
                start = int(q.get("marker") or 0)  # two names a page
                page, more = names[start:start + 2], start + 2 < len(names)
                body = ("<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults><Blobs>"
                        + "".join(f"<Blob><Name>{escape(n)}</Name><Properties><Content-Length>"
                                  f"{len(blobs[n])}</Content-Length></Properties></Blob>"
                                  for n in page)
                        + f"</Blobs><NextMarker>{start + 2 if more else ''}</NextMarker>"
                        "</EnumerationResults>").encode()
                kind = "application/xml"
            else:
                name = urllib.parse.unquote(url.path[len("/container/"):])
                if name not in blobs:
                    self.send_error(404)
                    return
                fetched.append(name)
                body, kind = blobs[name], "application/octet-stream"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Azure)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        container = f"http://127.0.0.1:{server.server_address[1]}/container"
        body = settings("quad.obj", container=container, outputAssetFilename="azure.glb")
        body["settings"]["inputLocation"].update(blobPrefix="models/Assets",
                                                 storageContainerReadListSas=f"?sig={secret}")
        done = run_hiding(service, "conv-azure", body, secret, "inputLocation",
                          "storageContainerReadListSas")
        assert "warnings" not in done["output"], done
        assert sorted(fetched) == sorted(n for n in blobs if n.startswith("models/Assets/"))
        check_textured_quad(service.data_dir / "storage" / service.account_id / "output" / "converted" / "azure.glb")
        assert_never_shown(service, secret)
    finally:
        server.shutdown()
        server.server_close()


def test_locations_stay_in_the_storage_root(svc: tuple[RunningService, str]) -> None:
    service, _ = svc
    for body, target in (
            (settings("../../../../etc/passwd"), "relativeInputAssetPath"),
            (settings("x.obj", container="file:///etc"), "inputLocation.storageContainerUri"),
            (settings("x.obj", out_container="https:///no-host"),
             "outputLocation.storageContainerUri"),
            (settings("x.obj", outputAssetFilename=".."), "outputLocation.outputAssetFilename"),
            (settings("x.obj", container="https:///no-host"), "inputLocation.storageContainerUri"),
            (settings("x.obj", out_container="../.."), "outputLocation.storageContainerUri"),
            ({"settings": {**settings("x.obj")["settings"], "bogus": 1}}, "settings.bogus"),
            ({"settings": {"inputLocation": {"storageContainerUri": "input",
                                             "relativeInputAssetPath": "x.obj", "sas": "?"},
                           "outputLocation": {"storageContainerUri": "output"}}},
             "inputLocation.sas"),
            ({"settings": {"inputLocation": {}}}, "outputLocation"),
            ({"nothing": 1}, "settings")):
        r = put(service, "conv-escape", body)
        assert r.status_code == 400, (body, r.text)
        assert target in (r.json()["error"].get("target") or "") + r.json()["error"]["message"]
    assert httpx.get(f"{service.url}/accounts/{service.account_id}/conversions/conv-escape",
                     params=V, headers=service.auth, timeout=30).status_code == 404
    bad_id = put(service, "bad id!", settings("x.obj"))
    assert bad_id.status_code in (400, 404)


def test_credentials_and_accounts(svc: tuple[RunningService, str]) -> None:
    service, key_b = svc
    url = f"{service.url}/accounts/{service.account_id}/conversions"
    assert httpx.get(url, params=V, timeout=30).status_code == 401
    assert put(service, "conv-anon", settings("x.obj"), auth={}).status_code == 401
    # account B sees none of A's conversions, and cannot read one by id
    b = {"Authorization": f"Bearer {key_b}"}
    listed = httpx.get(f"{service.url}/accounts/{ACCOUNT_B}/conversions", params=V, headers=b,
                       timeout=30)
    assert listed.status_code == 200 and listed.json()["conversions"] == []
    assert httpx.get(f"{service.url}/accounts/{ACCOUNT_B}/conversions/conv-1", params=V,
                     headers=b, timeout=30).status_code == 404
    assert httpx.get(f"{url}/conv-1", params=V, headers=b, timeout=30).status_code in (401, 403)


def test_each_account_has_storage_of_its_own(svc: tuple[RunningService, str]) -> None:
    """Found by hand: every account shared one storage folder, so one account converted
    another's inputs and overwrote its outputs (and could name any file as its output). Each
    account's containers are now folders of its own; the output may not be the input; a path
    too long for the file system is refused at the PUT, not a failure naming the server's
    folders."""
    service, key_b = svc
    mine = service.data_dir / "storage" / service.account_id
    (mine / "input").mkdir(parents=True, exist_ok=True)
    (mine / "input" / "private.obj").write_text(OBJ)
    (mine / "output" / "converted").mkdir(parents=True, exist_ok=True)
    kept = mine / "output" / "converted" / "private.glb"
    kept.write_bytes(b"account A's output")
    b = {"Authorization": f"Bearer {key_b}"}

    def put_b(cid: str, body: object) -> httpx.Response:
        return httpx.put(f"{service.url}/accounts/{ACCOUNT_B}/conversions/{cid}", params=V,
                         json=body, headers=b, timeout=30)

    def done_b(cid: str) -> dict:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            body = httpx.get(f"{service.url}/accounts/{ACCOUNT_B}/conversions/{cid}", params=V,
                             headers=b, timeout=30).json()
            if body["status"] in ("Succeeded", "Failed", "Cancelled"):
                return body
            time.sleep(0.1)
        raise AssertionError(f"conversion {cid} did not finish")

    # B names A's input and A's output by the same container names: its own folders, empty
    assert put_b("b-reads-a", settings("private.obj")).status_code == 201
    failed = done_b("b-reads-a")
    assert failed["status"] == "Failed" and "does not exist" in failed["error"]["message"]
    assert kept.read_bytes() == b"account A's output"
    # nor by A's folder's own path
    r = put_b("b-file-uri", settings("private.obj", container=mine.joinpath("input").as_uri()))
    assert r.status_code == 400 and "outside the account's storage" in r.json()["error"]["message"]
    assert str(service.data_dir) not in r.text
    # B's own files convert in B's folder
    theirs = service.data_dir / "storage" / ACCOUNT_B / "input"
    theirs.mkdir(parents=True, exist_ok=True)
    (theirs / "private.obj").write_text(OBJ)
    (theirs / "parts.mtl").write_text(MTL)
    assert put_b("b-own", settings("private.obj")).status_code == 201
    assert done_b("b-own")["status"] == "Succeeded"
    assert (service.data_dir / "storage" / ACCOUNT_B / "output" / "converted" / "private.glb").exists()
    assert kept.read_bytes() == b"account A's output"
    # the output may not be the input; a path too long is refused at once, naming no folder
    same = {"settings": {"inputLocation": {"storageContainerUri": "input",
                                           "relativeInputAssetPath": "private.obj"},
                         "outputLocation": {"storageContainerUri": "input",
                                            "outputAssetFilename": "private.obj"}}}
    r = put(service, "conv-onto-input", same)
    assert r.status_code == 400 and "overwrite the input" in r.json()["error"]["message"]
    assert (mine / "input" / "private.obj").read_text() == OBJ
    r = put(service, "conv-long", settings("a/" * 3000 + "x.obj"))
    assert r.status_code == 400 and "too long" in r.json()["error"]["message"]
    assert str(service.data_dir) not in r.text


def test_a_missing_input_is_said_for_what_it_is(tmp_path: Path) -> None:
    """A folder given as the input, a container folder that does not exist, and a file not in
    its folder each get their own message (all said "does not exist"), naming no server path."""
    from farview.service.conversions import _missing_input

    (tmp_path / "input" / "models").mkdir(parents=True)
    (tmp_path / "input" / "engine.fbx").write_text("x")
    assert "is a folder" in _missing_input(tmp_path / "input" / "models")
    assert "its folder does not exist; check storageContainerUri" in _missing_input(
        tmp_path / "nosuch" / "engine.fbx")
    said = _missing_input(tmp_path / "input" / "engin.fbx")
    assert "does not exist in its storage container; the folder holds engine.fbx" in said
    assert str(tmp_path) not in said
