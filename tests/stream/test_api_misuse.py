"""Mistakes a user of the Python API makes, against the real service, render host and stream:
each is refused with a farview error that says what was wrong, and leaves nothing behind (no
hidden connection holding the session, no request left pending, nothing changed). Found by a
user trying the API by hand."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from farview import Pose
from farview.client import (
    BadRequestError,
    ConnectionLostError,
    FarviewError,
    LeaseError,
    ProtocolError,
    RemoteError,
    RemoteRenderingClient,
    RenderingSession,
    SessionNotFoundError,
    TimedOutError,
)
from tests.hosting import SHARED_MODELS
from tests.service.conftest import RunningService, service_with_session

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    with service_with_session(tmp_path_factory.mktemp("misuse"), "misuse", 60) as svc:
        yield svc


def _session(rest: RemoteRenderingClient) -> RenderingSession:
    return rest.open_rendering_session("misuse")


async def test_a_bad_viewport_is_refused_before_connecting_and_holds_nothing(
        service: RunningService) -> None:
    """``connect(viewport=(0, 0))`` raised ZeroDivisionError after the host had accepted the
    connection, which no one could close: the session refused every client until the
    program ended."""
    with service.client() as rest:
        session = _session(rest)
        for bad, says in (((0, 0), "viewport 0x0 is outside 1..65535"),
                          ((-5, -5), "viewport -5x-5 is outside"),
                          ((70000, 10), "viewport 70000x10 is outside"),
                          ((320.5, 240), "in whole pixels"), ("big", "in whole pixels")):
            with pytest.raises(ProtocolError, match=says):
                await session.connect(viewport=bad)
        assert issubclass(ProtocolError, FarviewError) and issubclass(ProtocolError, ValueError)
        async with await session.connect(viewport=(320, 240)) as conn:  # at once: nothing held
            assert conn.is_connected


async def test_bad_poses_are_refused_and_change_nothing(service: RunningService) -> None:
    """A bad viewport in ``send_pose`` became the connection's, so every later pose failed;
    a float one or 0 raised struct.error or ZeroDivisionError; a position past float32,
    OverflowError; a bare position, "a pose message carries 1 or 2 views, got 3"."""
    with service.client() as rest:
        async with await _session(rest).connect(viewport=(320, 240)) as conn:
            for viewport in ((-5, -5), (640, 0), (320.5, 240), (70000, 100)):
                with pytest.raises(ProtocolError, match="viewport"):
                    conn.send_pose(Pose(), viewport=viewport)  # type: ignore[arg-type]
                assert conn.viewport == (320, 240)
            with pytest.raises(ProtocolError, match=r"Pose\(position=\(x, y, z\)\)"):
                conn.send_pose((0.0, 0.3, 1.5))  # type: ignore[arg-type]
            with pytest.raises(ProtocolError, match="32-bit floats"):
                Pose(position=(1e39, 0.0, 0.0))
            with pytest.raises(ProtocolError, match="near/far"):
                conn.send_pose(Pose(), far=1e39)
            sent = conn.send_pose(Pose(position=(0.0, 0.3, 1.5)))
            frame = await conn.frame_for(sent)
            assert frame.pose is not None and frame.pose.viewport == (320, 240)


async def test_bad_numbers_name_their_argument_and_leave_no_request_pending(
        service: RunningService) -> None:
    """NaN or infinity in a plain number argument raised "Out of range float values are not
    JSON compliant", naming nothing, and left the request pending until the connection
    closed."""
    with service.client() as rest:
        async with await _session(rest).connect(viewport=(320, 240)) as conn:
            scene = conn.scene
            calls = ((lambda: scene.raycast((0, 0, 5), (0, 0, -1), max_distance=math.nan),
                      "max_distance = nan"),
                     (lambda: scene.set_point_size(math.inf), "= inf"),
                     (lambda: scene.set_lighting(key_intensity=math.nan), "key_intensity = nan"),
                     (lambda: scene.set_lighting(lights=None), "lights must be a list"))
            for call, says in calls:
                with pytest.raises(ProtocolError, match=says):
                    await call()
            assert conn._pending_requests == {}
            root = scene.entity((await scene.roots())[0].id)
            with pytest.raises(ProtocolError, match="tint colour must be 3 numbers, got 'red'"):
                await root.set_tint("red")  # type: ignore[arg-type]
            with pytest.raises(ProtocolError, match="tint weight must be a finite number"):
                await root.set_tint((1.0, 0.0, 0.0), math.nan)
            # a quaternion whose squares overflow is still a rotation (it was stored as zeros,
            # and every later read of the entity failed)
            info = await root.set_rotation((1e200, 1e200, 0.0, 0.0))
            assert info.rotation == pytest.approx((math.sqrt(0.5), math.sqrt(0.5), 0.0, 0.0))
            await root.set_rotation((0.0, 0.0, 0.0, 1.0))
            # a path that is not a regular file says so ("no model file at '/dev/zero'")
            with pytest.raises(RemoteError, match="is not a regular file"):
                await scene.load_model("/dev/zero")


async def test_an_app_developers_mistakes_found_by_hand(service: RunningService) -> None:
    """A far plane of 1e300 was taken by the host and then refused every pose the app sent;
    positions past 32-bit floats were kept; ``fov_y="x"`` and ``frame_for("abc")`` raised
    TypeError and AttributeError; an entity kept from before a reconnect said only that its
    connection had closed; after the app's own close, the reason read "host closed the
    connection"."""
    with service.client() as rest:
        session = _session(rest)
        async with await session.connect(viewport=(320, 240)) as conn:
            scene = conn.scene
            with pytest.raises(ProtocolError, match="far must be in"):
                await scene.set_camera(0.1, 1e300)
            assert (await scene.get_camera()).override is False
            root = scene.entity((await scene.roots())[0].id)
            for call in (lambda: root.set_position((1e39, 0.0, 0.0)),
                         lambda: root.set_scale((1e300, 1.0, 1.0))):
                with pytest.raises(ProtocolError, match=r"within ±3.4e38 \(32-bit floats\)"):
                    await call()
            with pytest.raises(ProtocolError, match="vertical field of view must be"):
                conn.send_pose(Pose(), fov_y="x")  # type: ignore[arg-type]
            with pytest.raises(ProtocolError, match="frame_for takes the pose message"):
                await conn.frame_for("abc")  # type: ignore[arg-type]
            sent = conn.send_pose(Pose(position=(0.0, 0.3, 1.5)))  # all of it changed nothing
            assert (await conn.frame_for(sent)).pose == sent
        assert conn.close_reason == "closed by the client"
        async with await session.connect(viewport=(320, 240)) as again:
            with pytest.raises(ConnectionLostError, match=r"new_connection\.scene\.entity\(id\)"):
                await root.info()  # the handle of the connection before
            assert (await again.scene.entity(root.id).info()).id == root.id


def test_models_given_as_one_string_are_refused_not_split(service: RunningService) -> None:
    with service.client() as rest, pytest.raises(BadRequestError, match=r"give \['Duck.glb'\]"):
        rest.create_session("one-string", models="Duck.glb")  # type: ignore[arg-type]
    with RemoteRenderingClient.local(data_dir=str(service.data_dir)) as local, \
            pytest.raises(SessionNotFoundError):  # (a str as the data dir was a TypeError)
        local.get_session("one-string")


async def test_a_timeout_is_not_a_lost_connection(service: RunningService) -> None:
    """A load that outlived the caller's timeout raised ConnectionLostError on a healthy
    connection (code that reconnects on it reconnected for nothing)."""
    with service.client() as rest:
        async with await _session(rest).connect(viewport=(320, 240)) as conn:
            with pytest.raises(TimedOutError, match=r"did not answer load_model within 0\.001 s"):
                await conn.scene.load_model(str(SHARED_MODELS / "Duck.glb"), timeout=0.001)
            assert isinstance(TimedOutError("x"), TimeoutError)
            assert conn.is_connected
            await conn.request("ping", t=0.0)


def test_rest_mistakes_are_farview_errors(service: RunningService, tmp_path: Path) -> None:
    """A closed client raised httpx's RuntimeError; ``get_session(None)`` listed the sessions
    and failed with KeyError 'id'; a missing certificate file, FileNotFoundError; ``renew(0)``
    extended the lease by 15 minutes; ``create_session("")`` made a random id."""
    with service.client() as rest:
        with pytest.raises(BadRequestError, match="a session id is a string, got None"):
            rest.get_session(None)  # type: ignore[arg-type]
        with pytest.raises(BadRequestError, match="is not valid"):
            rest.create_session("")
        session = _session(rest)
        lease = session.properties.max_lease_time_minutes
        with pytest.raises(LeaseError):
            session.renew(0)
        assert session.get_properties().max_lease_time_minutes == lease
    with pytest.raises(FarviewError, match="this client is closed"):
        rest.list_sessions()
    with pytest.raises(FarviewError, match=f"cannot use {tmp_path}/none.pem as the certificate"):
        RemoteRenderingClient(service.url, service.account_id, service.account_key,
                              verify=str(tmp_path / "none.pem"))


def test_a_model_file_here_uploads_into_the_session(service: RunningService, tmp_path: Path) -> None:
    """A model on the user's own machine had no way in from Python (only the web viewer's
    upload, or a REST call by hand)."""
    from farview.client.scene import upload_model_http

    with service.client() as rest:
        session = _session(rest)
        token = rest.get_access_token()
        loaded = upload_model_http(session.upload_url("Duck.glb"), token, SHARED_MODELS / "Duck.glb",
                                   verify=session.verify)
        assert loaded.name == "Duck" and loaded.triangles > 1000
        junk = tmp_path / "notes.glb"
        junk.write_bytes(b"these are not a model\n" * 10)
        with pytest.raises(RemoteError) as info:
            upload_model_http(session.upload_url(junk.name), token, junk, verify=session.verify)
        assert info.value.target == "notes.glb" and "glTF" in info.value.message, info.value
        with pytest.raises(FarviewError, match=r"cannot read .*missing\.glb to upload it"):
            upload_model_http(session.upload_url("missing.glb"), token, tmp_path / "missing.glb")
        # a model over the upload limit is told what to do (it was told only the byte count)
        import socket

        import httpx
        url = httpx.URL(session.upload_url("huge.glb"))
        with socket.create_connection((url.host, url.port), timeout=30) as sock:
            sock.sendall(f"PUT {url.raw_path.decode()} HTTP/1.1\r\nHost: {url.host}\r\n"
                         f"Authorization: Bearer {token}\r\nContent-Length: 300000000\r\n"
                         "Connection: close\r\n\r\n".encode())
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert b" 413 " in answer.split(b"\r\n")[0] and b"farview convert" in answer, answer
    env = {**os.environ, "FARVIEW_URL": service.url, "FARVIEW_ACCOUNT_ID": service.account_id,
           "FARVIEW_ACCOUNT_KEY": service.account_key}
    cli = subprocess.run([sys.executable, "-m", "farview", "session", "upload-model", "misuse",
                          str(SHARED_MODELS / "Box.glb")], capture_output=True, text=True,
                         env=env, timeout=120)
    assert cli.returncode == 0 and "loaded Box into session misuse" in cli.stdout, cli


def test_stalled_uploads_hold_no_more_than_their_share(service: RunningService) -> None:
    """Found by a security review: 100 uploads from one account that stalled after a byte took
    every connection the service forwards through (other accounts' scene loads failed), and a
    host read each stalled body whole before its two-loads limit applied (six 250 MiB uploads:
    1.9 GB). An account has two uploads in flight; a host refuses a third load before reading."""
    import socket
    import time

    import httpx

    from farview.client.scene import upload_model_http

    with service.client() as rest:
        session = _session(rest)
        token = rest.get_access_token()
        url = httpx.URL(session.upload_url("stall.glb"))
        stalled = []
        for _ in range(2):
            sock = socket.create_connection((url.host, url.port), timeout=10)
            sock.sendall(f"PUT {url.raw_path.decode()} HTTP/1.1\r\nHost: {url.host}\r\n"
                         f"Authorization: Bearer {token}\r\nContent-Length: 1000000\r\n"
                         "Content-Type: application/octet-stream\r\n\r\nglTF".encode())
            stalled.append(sock)
        try:
            time.sleep(1.0)  # both reach the host and hold its two loads
            third = httpx.put(str(url), content=b"glTF", headers={"Authorization": f"Bearer {token}"})
            assert third.status_code == 429, third.text
            assert "2 model uploads from this account are in progress" in third.text
            host = f"{service.host_address('misuse')}/scene/upload/direct.glb"
            at_host = httpx.put(host, content=b"x" * 10, headers={"Authorization": f"Bearer {token}"})
            assert at_host.status_code == 429 and "2 model loads are in progress" in at_host.text
        finally:
            for sock in stalled:
                sock.close()
        deadline = time.monotonic() + 20
        while True:  # the slots come back when the stalled uploads go
            try:
                upload_model_http(session.upload_url("Box.glb"), token, SHARED_MODELS / "Box.glb",
                                  verify=session.verify)
                break
            except RemoteError as exc:
                assert "in progress" in exc.message and time.monotonic() < deadline, exc
                time.sleep(0.2)


def test_a_connection_made_by_one_asyncio_run_says_its_loop_has_ended(service: RunningService) -> None:
    """``conn = asyncio.run(session.connect())`` returns a connection whose event loop is gone;
    every later call said only "peer connection closed". (Last in this module: the host
    frees the session once the client has been silent for 3 s.)"""
    import asyncio

    from farview.client import ConnectionLostError

    with service.client() as rest:
        conn = asyncio.run(_session(rest).connect(viewport=(320, 240)))
        assert not conn.is_connected
        with pytest.raises(ConnectionLostError, match=r"inside one asyncio\.run"):
            conn.send_pose(Pose())
        with pytest.raises(ConnectionLostError, match=r"inside one asyncio\.run"):
            asyncio.run(conn.scene.roots())
