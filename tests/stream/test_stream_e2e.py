"""A real render host process and a real client on loopback: frames, poses, exclusivity,
reconnects, bad input. No stand-ins: EGL rendering, libx264, aiortc, PyAV decoding."""

from __future__ import annotations

import asyncio
import math
import struct
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from farview.client.connection import RenderingConnection, connect_to_host
from farview.client.errors import OtherClientConnectedError, RemoteError
from farview.input.pose import Pose
from tests.hosting import REPO, RunningHost, centroid_x, connected, model_mask, start_host

pytestmark = pytest.mark.slow

VIEWPORT = (320, 240)


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    running = start_host(tmp_path_factory.mktemp("host"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
async def conn(host: RunningHost) -> AsyncIterator[RenderingConnection]:
    async with connected(host, VIEWPORT) as c:
        yield c


def camera_at(x: float) -> Pose:
    return Pose((x, 0.1, 1.6))


async def frame_for(conn: RenderingConnection, seq: int, timeout: float = 15.0):  # type: ignore[no-untyped-def]
    """Wait for the frame rendered with pose ``seq``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = await conn.next_frame(timeout=timeout)
        if frame.pose is not None and frame.pose.sequence >= seq:
            return frame
    raise AssertionError(f"no frame for pose {seq}")


async def test_frames_show_the_model_and_follow_the_pose(conn: RenderingConnection) -> None:
    centre = conn.send_pose(camera_at(0.0))
    f0 = await frame_for(conn, centre.sequence)
    assert f0.width == VIEWPORT[0] and f0.height == VIEWPORT[1]
    rgb = f0.to_rgb()
    assert model_mask(rgb).mean() > 0.05, "the model should cover part of the frame"
    x_centre = centroid_x(rgb)
    right = conn.send_pose(camera_at(0.4))
    f1 = await frame_for(conn, right.sequence)
    # camera moved right → the model moves left in the image
    assert centroid_x(f1.to_rgb()) < x_centre - 0.05
    left = conn.send_pose(camera_at(-0.4))
    f2 = await frame_for(conn, left.sequence)
    assert centroid_x(f2.to_rgb()) > x_centre + 0.05
    assert f2.metadata is not None and f2.metadata.render_us > 0 and f2.metadata.encode_us > 0
    assert f2.pose_to_receive_ms is not None and f2.pose_to_receive_ms > 0


async def test_the_last_frame_before_a_rest_has_its_last_packet_sent_again(
        conn: RenderingConnection) -> None:
    """Streaming patch 10: when nothing follows a frame, its last packet goes out again (a
    browser cannot see that the last packets of the last frame were lost, and waited 3 s).
    Nothing is lost on loopback: the copy reaches the client as a duplicate, which it drops,
    and the stream goes on as before."""
    first = conn.send_pose(camera_at(0.1))
    await frame_for(conn, first.sequence)
    received = conn.statistics().frames_received_total
    await asyncio.sleep(0.5)  # the camera rests: no frame follows
    video = (await conn.request("get_stats"))["video"]
    assert video["tail_probes"] >= 1, video
    assert conn.statistics().frames_received_total == received  # (the copy made no frame)
    second = conn.send_pose(camera_at(-0.1))
    frame = await frame_for(conn, second.sequence)
    assert frame.width == VIEWPORT[0]


async def test_every_frame_matches_the_pose_it_was_rendered_with(conn: RenderingConnection) -> None:
    """Alternate two camera positions quickly; every frame's pixels must agree with the pose
    the client says it was rendered with (model left for camera right, and vice versa)."""
    first = conn.send_pose(camera_at(0.0))
    x_centre = centroid_x((await frame_for(conn, first.sequence)).to_rgb())
    checked = 0
    for i in range(40):
        conn.send_pose(camera_at(0.4 if i % 2 else -0.4))
        await asyncio.sleep(0.02)
        while conn.frames.wait(0):  # a frame is waiting
            frame = await conn.next_frame()
            assert frame.pose is not None
            cam_x = frame.pose.views[0].pose.position[0]
            cx = centroid_x(frame.to_rgb())
            if cam_x > 0.2:
                assert cx < x_centre, f"frame claims pose {frame.pose.sequence} (camera right) but model is not left"
            elif cam_x < -0.2:
                assert cx > x_centre, f"frame claims pose {frame.pose.sequence} (camera left) but model is not right"
            checked += 1
    assert checked >= 10
    stats = conn.statistics()
    assert stats.frames_received_total >= checked
    assert stats.latency_pose_to_receive is None or stats.latency_pose_to_receive > 0


async def test_second_client_gets_409_and_slot_frees_on_disconnect(host: RunningHost) -> None:
    first = await connect_to_host(host.whep_url, host.token(), viewport=VIEWPORT)
    try:
        await first.next_frame()
        with pytest.raises(OtherClientConnectedError, match="only one client"):
            await connect_to_host(host.whep_url, host.token(), viewport=VIEWPORT)
    finally:
        await first.close()
    second = await connect_to_host(host.whep_url, host.token(), viewport=VIEWPORT)
    try:
        frame = await second.next_frame()
        assert model_mask(frame.to_rgb()).mean() > 0.05, "the scene is still there after a reconnect"
    finally:
        await second.close()


async def test_signaling_needs_a_valid_token(host: RunningHost) -> None:
    async with httpx.AsyncClient() as http:
        r = await http.post(host.whep_url, content=b"v=0\r\n", headers={"Content-Type": "application/sdp"})
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        r = await http.post(host.whep_url, content=b"v=0\r\n", headers={
            "Content-Type": "application/sdp", "Authorization": "Bearer not-a-token"})
        assert r.status_code == 401
        r = await http.post(host.whep_url, content=b"hello", headers={
            "Content-Type": "application/sdp", "Authorization": f"Bearer {host.token()}"})
        assert r.status_code == 400 and "not an SDP offer" in r.json()["error"]["message"]
        r = await http.post(host.whep_url, content=b"v=0\r\nm=audio 9 RTP/AVP 0\r\n", headers={
            "Content-Type": "application/sdp", "Authorization": f"Bearer {host.token()}"})
        assert r.status_code == 400


async def test_bad_input_keeps_the_stream_alive(conn: RenderingConnection) -> None:
    await conn.next_frame()
    good = conn.send_pose(camera_at(0.0))
    await frame_for(conn, good.sequence)
    nan_pose = bytearray(good.encode())
    nan_pose[28:32] = struct.pack("<f", math.nan)
    zero_quat = bytearray(good.encode())
    zero_quat[40:56] = bytes(16)
    for label, data in [
        ("pose", b"garbage"), ("pose", b"\x07" * 72), ("pose", bytes(nan_pose)),
        ("pose", bytes(zero_quat)), ("pose", good.encode()[:30]), ("pose", b"x" * 70000),
        ("input", b"\x01\x09" + bytes(20)), ("input", "text"),
        ("control", "{not json"), ("control", '{"v":9}'), ("control", b"\xff\xfe"),
        ("control", '{"v":1,"event":"network_feedback","data":{"queue_ms":"soon"}}'),
        ("control", '{"v":1,"event":"network_feedback","data":{"queue_ms":-5}}'),
        ("control", '{"v":1,"event":"network_feedback","data":{"queue_ms":40,'
                    '"received_kbps":"lots"}}'),
        # the client's network_feedback goes on the unreliable frames channel; nothing else does
        ("frames", "{not json"), ("frames", '{"v":1,"event":"ping"}'), ("frames", b"\x00" * 40),
        ("frames", '{"v":1,"event":"network_feedback","data":{"queue_ms":-5}}'),
        ("frames", '{"v":1,"event":"network_feedback","data":{"queue_ms":1,"n":-1}}'),
        ("frames", '{"v":1,"event":"network_feedback","data":{"queue_ms":1,"n":"7"}}'),
        ("frames", '{"v":1,"event":"network_feedback","data":{"queue_ms":1,"n":true}}'),
    ]:
        conn.send_raw(label, data)
    with pytest.raises(RemoteError, match="UnknownMethod"):
        await conn.request("no_such_method")
    with pytest.raises(RemoteError, match="at least 1x1"):
        await conn.set_viewport(0, 0)
    clamped = await conn.set_viewport(100000, 100000)
    assert clamped["clamped"] and clamped["width"] == clamped["max"]
    await conn.set_viewport(*VIEWPORT)
    after = conn.send_pose(camera_at(0.2))
    frame = await frame_for(conn, after.sequence)
    assert frame.width == VIEWPORT[0]
    stats = await conn.request("get_stats")
    bad = stats["bad_messages"]
    assert sum(v for k, v in bad.items() if k.startswith("pose")) >= 6
    assert sum(v for k, v in bad.items() if k.startswith("control")) >= 6
    assert sum(v for k, v in bad.items() if k.startswith("frames")) >= 7
    # the client numbers its network_feedback reports and sends each twice: the host took one
    assert stats["video"]["feedback_repeated"] >= 1, stats["video"]
    reported = [data for name, data in conn.events if name == "bad_message"]
    assert any(d["channel"] == "pose" for d in reported)


async def test_a_keyframe_ask_is_repeated_on_the_next_pose_and_answered(conn: RenderingConnection) -> None:
    """When the stream asks for a keyframe (a give-up sends a PLI), the next pose carries the
    keyframe flag too (poses go twice on their channel: the ask gets through a lossy link), and
    the host answers with a keyframe; the pose after carries no flag."""
    await conn.next_frame()
    first = conn.send_pose(camera_at(0.05))
    await frame_for(conn, first.sequence)
    # the stream's first frames are keyframes: an ask within 50 ms after one began would be
    # taken for a copy of the ask it answers (KEYFRAME_DUPLICATE_S)
    await asyncio.sleep(0.3)
    before = (await conn.request("get_stats"))["video"]
    conn._jitter.keyframe_asks += 1  # as a give-up does (no PLI here: the flag is the only ask)
    asked = conn.send_pose(camera_at(0.1))
    assert asked.keyframe
    assert not conn.send_pose(camera_at(0.15)).keyframe
    deadline = time.monotonic() + 15
    after = before
    while time.monotonic() < deadline:
        after = (await conn.request("get_stats"))["video"]
        if after["keyframes_sent"] > before["keyframes_sent"]:
            break
        await asyncio.sleep(0.1)
    assert after["keyframe_requests"] >= before["keyframe_requests"] + 1, (before, after)
    assert after["keyframes_sent"] > before["keyframes_sent"], (before, after)


async def test_viewport_change_re_renders_at_new_size(conn: RenderingConnection) -> None:
    await conn.next_frame()
    await conn.set_viewport(480, 272)
    msg = conn.send_pose(camera_at(0.0))
    frame = await frame_for(conn, msg.sequence)
    assert (frame.width, frame.height) == (480, 272)


async def test_a_rate_too_low_for_the_viewport_sends_a_smaller_picture_of_the_same_view(
        conn: RenderingConnection) -> None:
    """150 kbit/s cannot keep even 15 fps of 1280x720 a picture: the host sends 640x360 of the
    same view (the client decodes the size change), says so in its statistics, and a pick in
    the pose's viewport pixels still finds the model."""
    await conn.next_frame()
    await conn.set_viewport(1280, 720)
    full = await frame_for(conn, conn.send_pose(camera_at(0.0)).sequence)
    assert (full.width, full.height) == (1280, 720)
    try:
        await conn.request("configure_stream", max_bitrate=150_000, min_bitrate=100_000)
        deadline = time.monotonic() + 15
        small = full
        while (small.width, small.height) == (1280, 720) and time.monotonic() < deadline:
            small = await frame_for(conn, conn.send_pose(camera_at(0.0)).sequence)
        assert (small.width, small.height) == (640, 360) and small.pose is not None
        assert small.pose.viewport == (1280, 720)
        video = (await conn.request("get_stats"))["video"]
        assert video["resolution_scale"] == 0.5 and video["size"] == [640, 360], video
        for _ in range(10):  # the switch's keyframe gets two frames' bits (grey at 150 kbit/s):
            small = await frame_for(conn, conn.send_pose(camera_at(0.0)).sequence)  # P-frames refine it
        assert abs(centroid_x(small.to_rgb()) - centroid_x(full.to_rgb())) < 0.03
        # a pick in the viewport's pixels: the engine block, a little below the centre
        hit = await conn.scene.pick(small.pose, 640, 440)
        assert hit is not None, "the model is there"
    finally:
        await conn.request("configure_stream", max_bitrate=8_000_000, min_bitrate=500_000)


def test_dropped_client_frees_the_host_within_seconds(host: RunningHost, tmp_path: Path) -> None:
    """A client process killed with SIGKILL (no goodbye) must not hold the host."""
    script = tmp_path / "client.py"
    script.write_text(textwrap.dedent(f"""
        import asyncio, sys
        sys.path.insert(0, {str(REPO)!r})
        from farview.client.connection import connect_to_host
        async def main():
            conn = await connect_to_host({host.whep_url!r}, {host.token()!r}, viewport=(320, 240))
            await conn.next_frame()
            print("connected", flush=True)
            await asyncio.sleep(600)
        asyncio.run(main())
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "connected"
        proc.kill()
        proc.wait()
        killed_at = time.monotonic()

        async def reconnect() -> float:
            while True:
                try:
                    c = await connect_to_host(host.whep_url, host.token(), viewport=VIEWPORT)
                except OtherClientConnectedError:
                    await asyncio.sleep(0.2)
                    continue
                await c.next_frame()
                await c.close()
                return time.monotonic() - killed_at

        freed_after = asyncio.run(asyncio.wait_for(reconnect(), 20))
        assert freed_after < 10, f"slot freed only after {freed_after:.1f} s"
    finally:
        if proc.poll() is None:
            proc.kill()
