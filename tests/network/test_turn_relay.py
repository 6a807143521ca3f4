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
from pathlib import Path

import pytest

from tests.network.netns import coturn, farview_service, relayed_hosts, skip_reason

pytestmark = pytest.mark.slow
REASON = skip_reason() or (None if shutil.which("turnserver") else "coturn (turnserver) is not installed")
SECRET = "farview-turn-test-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(REASON is not None, reason=f"no relayed hosts here: {REASON}")
@pytest.mark.timeout(240)
@pytest.mark.parametrize("transport", ["udp", "tcp", None], ids=["nat-like", "udp-blocked", "no-relay"])
def test_a_client_that_only_reaches_a_turn_server_streams_through_it(tmp_path: Path,
                                                                     transport: str | None) -> None:
    """nat-like: no route between client and server but through the relay. udp-blocked: the
    client's host also sends no UDP at all, so its relay is reached over TCP. no-relay: the
    service names no TURN server, so ICE fails: a clear error naming the candidates tried, and
    the host is free again at once (a second attempt is not refused as a second client)."""
    port = _free_port()
    (tmp_path / "turn-secret").write_text(SECRET)
    with relayed_hosts("tr", port, block_client_udp=transport == "tcp") as net, \
            contextlib.ExitStack() as stack:
        turn_log = tmp_path / "turn.log"
        turn_url = stack.enter_context(coturn(net, SECRET, turn_log, transport=transport)) if transport else None
        relay = ["--ice-server", turn_url, "--turn-secret-file", str(tmp_path / "turn-secret")] if turn_url else []
        svc = stack.enter_context(farview_service(net.server, tmp_path, "--port", str(port), *relay))
        info, account = svc.info, svc.account
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
                    if {transport is None!r}:
                        errors = []
                        for _ in range(2):
                            try:
                                await session.connect(viewport=(320, 240), timeout=3)
                            except Exception as exc:
                                errors.append([type(exc).__name__, str(exc)])
                        session.stop()
                        print(json.dumps({{"errors": errors}}), flush=True)
                        return
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
        assert client.returncode == 0, client.stderr[-3000:] + (
            "\nTURN:\n" + turn_log.read_text()[-2000:] if turn_url else "")
        seen = json.loads(client.stdout.strip().splitlines()[-1])
    if turn_url is None:
        assert [kind for kind, _ in seen["errors"]] == ["ConnectError", "ConnectError"], seen
        message = seen["errors"][0][1]
        assert "did not open" in message and f"host udp {net.client.address}:" in message, message
        assert "--ice-server" in message, message  # what to do about it
        return
    assert seen["servers"] == [turn_url]
    assert seen["width"] == 320 and seen["std"] > 5.0, seen
    assert seen["path"] == "relay-host", seen  # the media went through coturn
    assert "session" in turn_log.read_text().lower() or "allocation" in turn_log.read_text().lower()
