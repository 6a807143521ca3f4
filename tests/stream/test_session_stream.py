"""The whole product path: the real session service starts a real render host; a client opens
the session over REST, connects and streams; stopping or killing the session is noticed."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import time
from collections.abc import Iterator

import pytest

from farview import Pose
from farview.client import AlreadyConnectedError, ConnectionLostError, RemoteRenderingClient, TimedOutError
from tests.hosting import model_mask
from tests.service.conftest import RunningService, launch_service, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    svc = launch_service(tmp_path_factory.mktemp("svc"))
    yield svc
    svc.stop()


def _client(svc: RunningService) -> RemoteRenderingClient:
    return RemoteRenderingClient(svc.url, svc.account_id, svc.account_key)


async def test_connect_stream_and_stop_through_the_service(service: RunningService) -> None:
    with _client(service) as rest:
        session = rest.create_session(max_lease_time_minutes=120)
        session.wait_until_ready(timeout=60)
        assert session.connection_status == "Disconnected"
        conn = await session.connect(viewport=(320, 240))
        try:
            assert session.is_connected and session.connection_status == "Connected"
            frame = await conn.next_frame()
            assert model_mask(frame.to_rgb()).mean() > 0.03
            sent = conn.send_pose(Pose(position=(0.0, 0.3, 1.5)))
            answered = await conn.frame_for(sent)
            assert answered.pose is not None and answered.pose.sequence >= sent.sequence
            never = dataclasses.replace(sent, sequence=sent.sequence + 1000)
            with pytest.raises(TimedOutError, match=f"pose {never.sequence} within 0.5 s"):
                await conn.frame_for(never, timeout=0.5)
            with pytest.raises(AlreadyConnectedError):
                await session.connect()
            await asyncio.to_thread(session.stop)
            with pytest.raises(ConnectionLostError) as info:
                for _ in range(200):
                    await conn.next_frame(timeout=5)
            assert f"session {session.id} was stopped" in str(info.value)
            assert not session.is_connected
            assert session.get_properties().status == "Stopped"
        finally:
            await conn.close()


async def test_host_killed_mid_stream_errors_the_session_and_tells_the_client(
        service: RunningService) -> None:
    with _client(service) as rest:
        session = rest.create_session(max_lease_time_minutes=120)
        session.wait_until_ready(timeout=60)
        conn = await session.connect(viewport=(320, 240))
        try:
            await conn.next_frame()
            pid = service.host_pid(session.id)
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            killed = time.monotonic()
            await asyncio.to_thread(
                wait_for, lambda: session.get_properties().status == "Error", 5.0, "Error status")
            became_error = time.monotonic() - killed
            props = session.properties
            assert props.error is not None
            assert "killed by signal SIGKILL" in props.error["message"]
            with pytest.raises(ConnectionLostError):
                for _ in range(100):
                    await conn.next_frame(timeout=5)
            assert became_error < 5.0
        finally:
            await conn.close()


async def test_lease_expiring_while_streaming_tells_the_client(service: RunningService) -> None:
    """The test service's lease minute is 1 s: a 3-minute lease ends 3 s after Ready."""
    with _client(service) as rest:
        session = rest.create_session(max_lease_time_minutes=3)
        session.wait_until_ready(timeout=60)
        conn = await session.connect(viewport=(320, 240))
        try:
            await conn.next_frame()
            with pytest.raises(ConnectionLostError) as info:
                for _ in range(1000):
                    await conn.next_frame(timeout=10)
            assert f"session {session.id} expired" in str(info.value)
            assert session.get_properties().status == "Expired"
        finally:
            await conn.close()


def test_cli_loads_a_model_into_a_running_session(service: RunningService) -> None:
    import json
    import subprocess
    import sys

    from tests.hosting import REPO, SHARED_MODELS

    with _client(service) as rest:
        session = rest.create_session(max_lease_time_minutes=120)
        session.wait_until_ready(timeout=60)
        env = {**os.environ, "FARVIEW_URL": service.url, "FARVIEW_ACCOUNT_ID": service.account_id,
               "FARVIEW_ACCOUNT_KEY": service.account_key}
        out = subprocess.run([sys.executable, "-m", "farview", "session", "load-model", session.id,
                              str(SHARED_MODELS / "Box.glb"), "--json"],
                             capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
        assert out.returncode == 0, out.stderr
        loaded = json.loads(out.stdout)
        assert loaded["name"] == "Box" and loaded["triangles"] == 12
        bad = subprocess.run([sys.executable, "-m", "farview", "session", "load-model", session.id,
                              str(REPO / "README.md")], capture_output=True, text=True, env=env, cwd=REPO,
                             timeout=60)
        assert bad.returncode != 0 and "glTF" in bad.stderr
        assert service.account_key not in out.stdout + out.stderr + bad.stdout + bad.stderr
        session.stop()


def test_the_readmes_python_example_runs_as_written(service: RunningService) -> None:
    """The README's "From Python" block, verbatim, against a running service: it prints the
    pose it asked for, leaves no session running and no warning behind. (As first written it
    took the stream's first frame, rendered before its pose came, and crashed on its ``pose``.)"""
    import re
    import subprocess
    import sys

    from tests.hosting import REPO

    readme = (REPO / "README.md").read_text()
    section = readme.split("### From Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None, "the README lost its Python example"
    env = {**os.environ, "FARVIEW_DATA_DIR": str(service.data_dir)}
    for name in ("FARVIEW_URL", "FARVIEW_ACCOUNT_ID", "FARVIEW_ACCOUNT_KEY"):
        env.pop(name, None)
    with _client(service) as rest:
        before = {s.id for s in rest.list_sessions(include_ended=True)}
        out = subprocess.run([sys.executable, "-c", code.group(1)], capture_output=True,
                             text=True, env=env, cwd=REPO, timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
        words = out.stdout.split()
        assert words and int(words[0]) >= 1, out.stdout  # the sequence of the pose it sent
        assert "Traceback" not in out.stderr and "destroyed" not in out.stderr, out.stderr
        left = [s for s in rest.list_sessions(include_ended=True) if s.id not in before]
        assert all(s.status == "Stopped" for s in left), left
