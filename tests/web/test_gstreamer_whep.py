"""A standard WHEP player that is neither a browser nor aiortc plays a session: GStreamer's
``webrtcbin`` (Debian's GStreamer 1.22, through ``tests/web/gst_whep_player.py``), against the
real session service and render host. Its DTLS server holds an RSA certificate, and aiortc
offered ECDSA suites only: every handshake failed with "no shared cipher" and no frame was
decoded, until patch 9 of ``streaming/_aiortc_patches.py``."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.conftest import RunningService, service_with_session

pytestmark = pytest.mark.slow

PLAYER = Path(__file__).with_name("gst_whep_player.py")
DEBIAN_PYTHON = "/usr/bin/python3"
"""GStreamer's Python binding (Debian ``python3-gi``) is installed for Debian's Python."""


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    with service_with_session(tmp_path_factory.mktemp("gst"), "gst-1", 30) as svc:
        yield svc


def _play(svc: RunningService, seconds: float, enough: int) -> dict[str, object]:
    """Play the session for ``seconds``, or until ``enough`` frames were decoded."""
    url = f"{svc.url}/accounts/{svc.account_id}/sessions/gst-1/whep"
    found = subprocess.run([DEBIAN_PYTHON, "-c", "import gi; gi.require_version('GstWebRTC', '1.0')"],
                           capture_output=True, text=True)
    if found.returncode != 0:
        pytest.fail("GStreamer's webrtcbin is not installed for Debian's Python: scripts/install "
                    "installs it (FARVIEW_TEST_DEBS=1): " + found.stderr[-300:])
    run = subprocess.run([DEBIAN_PYTHON, str(PLAYER), url, svc.account_key, str(seconds),
                          str(enough)],
                         capture_output=True, text=True, timeout=seconds + 60)
    assert run.returncode == 0, run.stderr[-2000:]
    result: dict[str, object] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


def test_gstreamer_webrtcbin_plays_the_home_view(service: RunningService) -> None:
    played = _play(service, 4.0, 30)
    assert played["status"] == 201, played
    assert played["errors"] == [], played
    # the home view at 30 fps from 1 s after connecting: at least a second's worth in 4 s
    assert isinstance(played["frames"], int) and played["frames"] >= 30, played
    assert played["size"] == [1280, 720], played
    assert played["delete"] == 204, played
    # the slot is free again at once: a second player gets it
    again = _play(service, 2.0, 1)
    assert again["status"] == 201 and again["errors"] == [], again
    assert isinstance(again["frames"], int) and again["frames"] > 0, again
