"""Media through a real TURN server when nothing else gets through: the client's host can reach
the service's https port (forwarded by the middle host) and a coturn relay on the middle host,
and nothing else. The service tells the client the relay in its WHEP resource's Link headers,
with credentials derived from coturn's shared secret; frames must flow through the relay."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.network.netns import coturn, relayed_hosts, skip_reason

pytestmark = pytest.mark.slow
REASON = skip_reason() or (None if shutil.which("turnserver") else "coturn (turnserver) is not installed")
SECRET = "farview-turn-test-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(REASON is not None, reason=f"no relayed hosts here: {REASON}")
@pytest.mark.timeout(240)
def test_a_client_that_only_reaches_a_turn_server_streams_through_it(tmp_path: Path) -> None:
    port = _free_port()
    data = tmp_path / "data"
    (tmp_path / "turn-secret").write_text(SECRET)
    with relayed_hosts("tr", port) as net, contextlib.ExitStack() as stack:
        turn_log = tmp_path / "turn.log"
        turn_url = stack.enter_context(coturn(net, SECRET, turn_log))
        serve = subprocess.Popen(net.server.command(
            sys.executable, "-m", "farview", "serve", "--host", net.server.address, "--port", str(port),
            "--make-cert", "--data-dir", str(data), "--log-level", "warning",
            "--ice-server", turn_url,
            "--turn-secret-file", str(tmp_path / "turn-secret")),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + 60
            while not (data / "service.json").exists():
                assert serve.poll() is None and time.monotonic() < deadline, serve.stdout.read()  # type: ignore[union-attr]
                time.sleep(0.1)
            info = json.loads((data / "service.json").read_text())
            account = json.loads((data / "account.json").read_text())
            (tmp_path / "key").write_text(account["account_key"])
            script = tmp_path / "client.py"
            script.write_text(textwrap.dedent(f"""
                import asyncio, json
                from farview import RemoteRenderingClient, Pose

                async def main():
                    with RemoteRenderingClient({info["url"]!r}, {account["account_id"]!r},
                                               open({str(tmp_path / "key")!r}).read(),
                                               verify={info["cert"]!r}) as rest:
                        session = rest.create_session("relayed", max_lease_time_minutes=10)
                        session.wait_until_ready(90)
                        session.wait_for_models(90)
                        conn = await session.connect(viewport=(320, 240), timeout=60)
                        sent = conn.send_pose(Pose((0.0, 0.3, 1.5)))
                        frame = await conn.next_frame(timeout=60)
                        while frame.pose is None or frame.pose.sequence < sent.sequence:
                            frame = await conn.next_frame(timeout=60)
                        print(json.dumps({{"servers": [s.url for s in conn.ice_servers],
                                          "std": float(frame.y.std()), "width": frame.width,
                                          "path": conn.ice_path}}), flush=True)
                        await conn.close()
                        session.stop()

                asyncio.run(main())
            """))
            client = subprocess.run(net.client.command(sys.executable, str(script)), capture_output=True,
                                    text=True, timeout=180)
            assert client.returncode == 0, client.stderr[-3000:] + "\nTURN:\n" + turn_log.read_text()[-2000:]
            seen = json.loads(client.stdout.strip().splitlines()[-1])
        finally:
            serve.terminate()
            try:
                serve.wait(20)
            except subprocess.TimeoutExpired:
                serve.kill()
    assert seen["servers"] == [turn_url]
    assert seen["width"] == 320 and seen["std"] > 5.0, seen
    assert seen["path"] == "relay-host", seen  # the media went through coturn
    assert "session" in turn_log.read_text().lower() or "allocation" in turn_log.read_text().lower()
