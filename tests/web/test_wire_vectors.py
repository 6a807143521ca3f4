"""One wire format, two languages: the Python codecs and the web viewer's JavaScript codecs
(``service/web/wire.js``) are held to the same vectors (``tests/web/wire_vectors.json``)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from farview.input import control
from farview.input.events import InputEvent
from farview.input.frame_meta import FrameMetadata
from farview.input.pose import PoseMessage
from tests.web import vectors

HERE = Path(__file__).parent
ROOT = HERE.parent.parent


def test_the_vectors_file_is_what_the_python_codecs_write() -> None:
    assert vectors.PATH.read_text() == vectors.text(), \
        "tests/web/wire_vectors.json is stale: run python -m tests.web.vectors (and check wire.js)"


def test_python_decodes_every_vector() -> None:
    data = json.loads(vectors.PATH.read_text())
    for case in data["pose"]:
        msg = PoseMessage.decode(bytes.fromhex(case["hex"]))
        assert msg.sequence == case["value"]["sequence"] and list(msg.viewport) == case["value"]["viewport"]
        assert msg.encode().hex() == case["hex"]
    for case in data["input"]:
        assert InputEvent.decode(bytes.fromhex(case["hex"])).encode().hex() == case["hex"]
    for case in data["frame_meta"]:
        meta = FrameMetadata.decode(bytes.fromhex(case["hex"]))
        assert meta.pts == case["value"]["pts"] and meta.encode().hex() == case["hex"]
    for case in data["control_encode"]:
        assert control.encode(control.decode(case["text"])) == case["text"]
    for case in data["control_decode"]:
        assert control.decode(case["text"]) is not None


def _node_tests(name: str) -> None:
    """Run the JavaScript tests in ``tests/web/<name>`` with Node's test runner: all pass."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is not installed: scripts/install installs it (Debian package nodejs)")
    out = subprocess.run([node, "--test", str(HERE / name)], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "# fail 0" in out.stdout and "# pass 0" not in out.stdout


def test_the_javascript_codecs_pass_the_same_vectors() -> None:
    _node_tests("wire.test.mjs")


def test_the_web_viewers_network_feedback_reads_as_the_python_clients() -> None:
    """The web viewer's queue meter (``service/web/feedback.js``, its tests in
    ``feedback.test.mjs``) reads the same trips as the Python client's
    (:class:`~farview.streaming.congestion.QueueDelayMeter`): the case both test."""
    from farview.streaming.congestion import QueueDelayMeter

    meter = QueueDelayMeter()
    for i, trip in enumerate([10, 10, 30, 30, 30, 30, 30, 30]):
        meter.on_frame(trip, i / 1000)
    assert meter.report(0.008) == 20  # feedback.test.mjs: "the queue is the lower quartile ..."
    _node_tests("feedback.test.mjs")


def test_the_web_viewer_frames_as_the_python_viewer() -> None:
    """``service/web/camera.js`` framing (its tests in ``camera.test.mjs``) backs off as
    :func:`farview.input.camera.framing` does in a view narrower than high."""
    from farview.input.camera import framing

    lo, hi = (-0.325, -0.262, -0.261), (0.313, 0.271, 0.235)
    wide, upright = framing(lo, hi, aspect=16 / 9), framing(lo, hi, aspect=0.45)
    assert upright.distance / wide.distance == pytest.approx(1 / 0.45)  # camera.test.mjs's case
    assert framing(lo, hi).distance == wide.distance
    _node_tests("camera.test.mjs")
