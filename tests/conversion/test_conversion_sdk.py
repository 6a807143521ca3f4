"""ARR's conversion API driven by Microsoft's own Python SDK (azure-mixedreality-remoterendering,
which nobody here wrote) against the real service over https: a conversion polled to
Succeeded with its output where the SDK's result names it, read back by get and list, and a
conversion of a file that is not glTF that the SDK reports as failed with ARR's error code."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from farview.host.gltf import load_model
from tests.hosting import SHARED_MODELS
from tests.service.conftest import RunningService, launch_service

pytestmark = pytest.mark.slow


@pytest.fixture
def https_service(tmp_path: Path) -> Iterator[RunningService]:
    svc = launch_service(tmp_path / "data", "--make-cert")
    yield svc
    assert svc.stop() == 0, svc.output()


def test_the_official_sdk_converts_a_model_and_reports_a_failure(
        https_service: RunningService, monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.core.credentials import AzureKeyCredential
    from azure.core.exceptions import HttpResponseError
    from azure.mixedreality.remoterendering import (
        AssetConversionInputSettings,
        AssetConversionOutputSettings,
        AssetConversionStatus,
        RemoteRenderingClient,
    )

    svc = https_service
    assert svc.cert and svc.url.startswith("https://")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", svc.cert)
    inputs = svc.data_dir / "storage" / svc.account_id / "input"
    inputs.mkdir(parents=True, exist_ok=True)
    shutil.copy(SHARED_MODELS / "Duck.glb", inputs / "Duck.glb")
    (inputs / "notes.glb").write_bytes(b"these are notes, not a model")

    client = RemoteRenderingClient(
        endpoint=svc.url, account_id=svc.account_id, account_domain="farview.test",
        authentication_endpoint_url=svc.url, credential=AzureKeyCredential(svc.account_key),
        polling_interval=1)
    output = AssetConversionOutputSettings(storage_container_uri="output", blob_prefix="converted",
                                           output_asset_filename="duck.glb")
    done = client.begin_asset_conversion(
        conversion_id="sdk-duck", output_settings=output,
        input_settings=AssetConversionInputSettings(storage_container_uri="input",
                                                    relative_input_asset_path="Duck.glb"),
    ).result()
    assert done.status == AssetConversionStatus.SUCCEEDED, done.error
    written = svc.data_dir / "storage" / svc.account_id / "output" / "converted" / "duck.glb"
    assert done.output.asset_uri == written.as_uri()
    duck = load_model(written)
    assert duck.triangle_count == load_model(SHARED_MODELS / "Duck.glb").triangle_count
    assert client.get_asset_conversion(conversion_id="sdk-duck").status == \
        AssetConversionStatus.SUCCEEDED
    assert [c.id for c in client.list_asset_conversions()] == ["sdk-duck"]

    poller = client.begin_asset_conversion(
        conversion_id="sdk-notes", output_settings=output,
        input_settings=AssetConversionInputSettings(storage_container_uri="input",
                                                    relative_input_asset_path="notes.glb"))
    with pytest.raises(HttpResponseError):  # the SDK's way of saying the conversion failed
        poller.result()
    failed = client.get_asset_conversion(conversion_id="sdk-notes")
    assert failed.status == AssetConversionStatus.FAILED
    assert failed.error.code == "InvalidInput" and "notes.glb" in failed.error.message
    assert sorted(p.name for p in written.parent.iterdir() if p.suffix == ".glb") == ["duck.glb"]
    assert {c.id for c in client.list_asset_conversions()} == {"sdk-duck", "sdk-notes"}
