"""Byte vectors for every wire format in input/: committed bytes round-trip exactly, and
malformed input is refused with its exact error."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from farview.input import Action, FrameMetadata, InputEvent, PoseMessage, ProtocolError
from farview.input import control as wire
from farview.input.pose import Fov, Pose, View

POSE_MONO = bytes.fromhex(
    "010101000700000015cd5b07000000000005d0020000803e0000fa430000803f00000040000040400000000000000000"
    "000000000000803f000080bf0000803f0000003f000000bf")
POSE_STEREO = bytes.fromhex(
    "01020000080000000100000000000000000aa005cdcccc3d00007a446f1203bdcdcccc3f00000000000000000000000000"
    "0000000000803f000080bf0000803f0000803f000080bf6f12033dcdcccc3f000000000000000000000000000000000000"
    "803f000080bf0000803f0000803f000080bf")
META = bytes.fromhex("02010005d0020000b80b00000700000015cd5b070000000088130000c80000002c010000dc050000007d0000a00f0000")
EVENTS = {
    "key": bytes.fromhex("010101002a000000000000005700000001"),
    "button": bytes.fromhex("010200002b0000000000000000000000003f0000803e"),
    "pointer": bytes.fromhex("010300002c000000000000000000003f0000403f"),
    "scroll": bytes.fromhex("010400002d0000000000000000000000000080bf"),
}


@pytest.mark.parametrize("vector", [POSE_MONO, POSE_STEREO])
def test_pose_vectors_round_trip(vector: bytes) -> None:
    assert PoseMessage.decode(vector).encode() == vector


def test_pose_vector_fields() -> None:
    msg = PoseMessage.decode(POSE_MONO)
    assert msg.sequence == 7 and msg.client_time_us == 123456789 and msg.keyframe
    assert msg.viewport == (1280, 720) and msg.near == 0.25 and msg.far == 500.0
    assert msg.views[0].pose.position == (1.0, 2.0, 3.0)
    assert msg.views[0].fov == Fov(-1.0, 1.0, 0.5, -0.5)
    assert len(PoseMessage.decode(POSE_STEREO).views) == 2


def test_pose_encode_matches_vector() -> None:
    msg = PoseMessage(7, 123456789, (View(Pose((1.0, 2.0, 3.0)), Fov(-1.0, 1.0, 0.5, -0.5)),),
                      (1280, 720), 0.25, 500.0, True)
    assert msg.encode() == POSE_MONO


@pytest.mark.parametrize(("data", "error"), [
    (b"", "pose message is empty"),
    (b"\x02" + POSE_MONO[1:], "pose message version 2 is not supported (expected 1)"),
    (POSE_MONO[:10], "pose message truncated: 10 bytes, header needs 28"),
    (POSE_MONO[:-1], "pose message with 1 view(s) must be 72 bytes, got 71"),
    (POSE_MONO + b"\x00", "pose message with 1 view(s) must be 72 bytes, got 73"),
    (b"\x01\x03" + POSE_MONO[2:], "a pose message carries 1 or 2 views, got 3"),
])
def test_pose_malformed(data: bytes, error: str) -> None:
    with pytest.raises(ProtocolError) as info:
        PoseMessage.decode(data)
    assert str(info.value) == error


def test_pose_nan_and_zero_quaternion_refused() -> None:
    nan = bytearray(POSE_MONO)
    nan[28:32] = bytes.fromhex("0000c07f")  # position x = NaN
    with pytest.raises(ProtocolError, match="pose position must be finite"):
        PoseMessage.decode(bytes(nan))
    zero_q = bytearray(POSE_MONO)
    zero_q[40:56] = bytes(16)
    with pytest.raises(ProtocolError, match="zero quaternion"):
        PoseMessage.decode(bytes(zero_q))
    with pytest.raises(ProtocolError, match="near < far"):
        PoseMessage(1, 0, (View(Pose(), Fov(-1, 1, 1, -1)),), near=5.0, far=1.0)


def test_pose_normalises_quaternion() -> None:
    p = Pose(orientation=(0.0, 0.0, 0.0, 2.0))
    assert p.orientation == (0.0, 0.0, 0.0, 1.0)
    assert math.isclose(Fov.symmetric(90.0, 1.0).tan_up, 1.0)


def test_frame_metadata_vector() -> None:
    meta = FrameMetadata.decode(META)
    assert meta == FrameMetadata(3000, 7, 123456789, 1280, 720, True, 5000, 200, 300, 1500, 32000,
                                 wait_us=4000)
    assert meta.encode() == META
    with pytest.raises(ProtocolError) as info:
        FrameMetadata.decode(META[:-2])
    assert str(info.value) == "frame metadata must be 48 bytes, got 46"
    with pytest.raises(ProtocolError, match=r"version 1 is not supported \(expected 2\): update farview"):
        FrameMetadata.decode(b"\x01" + META[1:-4])  # version 1: 44 bytes, no wait_us
    with pytest.raises(ProtocolError, match="version 9 is not supported"):
        FrameMetadata.decode(b"\x09" + META[1:])


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_input_event_vectors(name: str) -> None:
    assert InputEvent.decode(EVENTS[name]).encode() == EVENTS[name]


def test_input_event_values_and_errors() -> None:
    assert InputEvent.decode(EVENTS["key"]) == InputEvent.key_event(87, Action.PRESS, 1, 42)
    assert InputEvent.decode(EVENTS["scroll"]).y == -1.0
    with pytest.raises(ProtocolError) as info:
        InputEvent.decode(b"\x01\x09" + EVENTS["key"][2:])
    assert str(info.value) == "unknown input event kind 9"
    with pytest.raises(ProtocolError) as info:
        InputEvent.decode(EVENTS["key"][:-1])
    assert str(info.value) == "KEY event must be 17 bytes, got 16"
    with pytest.raises(ProtocolError, match="unknown action"):
        InputEvent.decode(EVENTS["key"][:-1] + b"\x07")


def test_control_round_trip_and_errors() -> None:
    text = '{"v":1,"id":3,"method":"set_viewport","params":{"width":640,"height":480}}'
    req = wire.decode(text)
    assert req == wire.Request(3, "set_viewport", {"width": 640, "height": 480})
    assert wire.encode(req) == text
    assert wire.decode(wire.encode(wire.Error(4, "NotFound", "entity 9"))) == wire.Error(4, "NotFound", "entity 9")
    assert wire.decode(wire.encode(wire.Event("closing", {"reason": "x"}))) == wire.Event("closing", {"reason": "x"})
    for bad, error in [
        ("{", "control message is not JSON"),
        ("[]", "control message must be a JSON object"),
        ('{"v":2,"id":1,"method":"x"}', "control message version 2 is not supported (expected 1)"),
        ('{"v":1,"id":"a","method":"x"}', "control message id must be a non-negative integer, got 'a'"),
        ('{"v":1,"id":1,"method":""}', "control request 'method' must be a non-empty string"),
        ('{"v":1,"id":1}', "control message is neither a request, a result, an error nor an event"),
    ]:
        with pytest.raises(ProtocolError) as info:
            wire.decode(bad)
        assert str(info.value).startswith(error)
    with pytest.raises(ProtocolError, match="the limit is 65536"):
        wire.decode(" " * 70000)


def test_importing_input_pulls_in_no_heavy_dependency() -> None:
    code = ("import sys, farview.input, farview.input.pose, farview.input.events, farview.input.control,"
            " farview.input.frame_meta, farview.input.launch;"
            "bad=[m for m in ('aiortc','av','OpenGL','glfw','httpx') if m in sys.modules];"
            "print(','.join(bad)); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, f"importing input pulled in: {result.stdout}"


def test_deeply_nested_control_messages_are_refused_before_parsing() -> None:
    """30,000 '[' raised RecursionError inside json.loads, which escaped into aiortc and closed
    the client's stream; now it is a ProtocolError like any other bad message."""
    from farview.input.jsondepth import MAX_JSON_DEPTH, nests_deeper

    for bomb in ("[" * 30000, '{"v":1,"event":"x","data":' + '{"a":' * 10000 + "1" + "}" * 10001):
        with pytest.raises(ProtocolError, match=f"nests deeper than {MAX_JSON_DEPTH} levels"):
            wire.decode(bomb)
    ok = '{"v":1,"id":1,"method":"m","params":{"a":' + "[" * 60 + "]" * 60 + "}}"
    assert isinstance(wire.decode(ok), wire.Request)
    assert not nests_deeper('{"s": "' + "[" * 500 + '"}')  # brackets inside strings do not count
    assert not nests_deeper('["\\\\", "\\"[[[["]', 1)
    assert nests_deeper("[[", 1) and not nests_deeper("[[]]", 2)
