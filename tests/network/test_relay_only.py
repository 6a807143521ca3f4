"""``relay_only`` (``farview view --relay-only``): a client that could reach the render host
directly still sends its media through the TURN server the service names, which is how a user
checks a TURN deployment. A real coturn and service on loopback (coturn told to relay to
loopback peers)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from farview import Pose
from farview.client import ConnectError
from tests.service.conftest import launch_service

pytestmark = pytest.mark.slow
SECRET = "farview-relay-only-test-secret"


def _free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(shutil.which("turnserver") is None, reason="coturn (turnserver) is not installed")
@pytest.mark.timeout(120)
def test_relay_only_goes_through_turn_where_a_direct_path_exists(tmp_path: Path) -> None:
    port = _free_port()
    low = 49400 + (port % 50) * 10  # a small relay range of its own
    turn_log = tmp_path / "turn.log"
    with turn_log.open("w") as log:
        turn = subprocess.Popen(
            ["turnserver", "-n", "--no-cli", "--no-tls", "--no-dtls", "--fingerprint",
             "--use-auth-secret", f"--static-auth-secret={SECRET}", "--realm=farview.test",
             "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", f"--listening-port={port}",
             f"--min-port={low}", f"--max-port={low + 9}", "--allow-loopback-peers",
             "--log-file=stdout", "--simple-log"], stdout=log, stderr=subprocess.STDOUT)
    (tmp_path / "secret").write_text(SECRET)
    with_turn = launch_service(tmp_path / "turn-data", "--ice-server",
                               f"turn:127.0.0.1:{port}?transport=udp", "--turn-secret-file",
                               str(tmp_path / "secret"))
    without = launch_service(tmp_path / "plain-data")
    try:
        time.sleep(0.5)  # coturn listening

        async def stream() -> str | None:
            with with_turn.client() as rest:
                session = rest.create_session("relayed", max_lease_time_minutes=10)
                session.wait_until_ready(60)
                async with await session.connect(viewport=(160, 120), relay_only=True) as conn:
                    sent = conn.send_pose(Pose(position=(0.0, 0.3, 1.5)))
                    frame = await conn.frame_for(sent, timeout=20)
                    assert frame.pose is not None and frame.width == 160
                    path = conn.ice_path
                session.stop()
            with without.client() as rest:
                session = rest.create_session("direct", max_lease_time_minutes=10)
                session.wait_until_ready(60)
                with pytest.raises(ConnectError, match="names no TURN server to relay through"):
                    await session.connect(viewport=(160, 120), relay_only=True)
                session.stop()
            return path

        path = asyncio.run(stream())
        assert path is not None and path.startswith("relay"), (path, turn_log.read_text()[-2000:])
    finally:
        with_turn.stop()
        without.stop()
        turn.terminate()
        turn.wait(10)
