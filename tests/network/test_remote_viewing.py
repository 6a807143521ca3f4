"""Viewing from another machine: the service (and its render hosts) in one network namespace,
the client in another, joined by a virtual cable. The client knows only the service's https URL
and its certificate (``--make-cert``); signaling goes through the service, media flows over ICE
between the two namespaces. Real processes, real TLS, real WebRTC, real frames."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.network.netns import farview_service, skip_reason, two_hosts

pytestmark = pytest.mark.slow
REASON = skip_reason()


@pytest.mark.skipif(REASON is not None, reason=f"no separated hosts here: {REASON}")
@pytest.mark.timeout(180)
def test_a_client_on_another_host_streams_through_the_services_https_endpoint(tmp_path: Path) -> None:
    with two_hosts("rv") as (server_ns, client_ns), farview_service(
            server_ns, tmp_path, "--port", "0",
            # hosts offer media on this address only, on ports a firewall can name, plus a
            # "public" address (nothing answers there; the client tries both)
            "--media-address", server_ns.address, "--media-ports", "50100-50109",
            "--announce-address", "192.0.2.10") as svc:
        info, account = svc.info, svc.account
        assert info["url"].startswith(f"https://{server_ns.address}:")
        script = tmp_path / "client.py"
        script.write_text(textwrap.dedent(f"""
            import asyncio, json
            from farview import RemoteRenderingClient, Pose

            async def main():
                with RemoteRenderingClient({info["url"]!r}, {account["account_id"]!r},
                                           open({str(tmp_path / "key")!r}).read(),
                                           verify={info["cert"]!r}) as rest:
                    session = rest.create_session("remote", max_lease_time_minutes=10)
                    session.wait_until_ready(90)
                    props = session.wait_for_models(90)
                    conn = await session.connect(viewport=(320, 240), timeout=30)
                    sent = conn.send_pose(Pose((0.0, 0.3, 1.5)))
                    frame = await conn.next_frame(timeout=30)
                    while frame.pose is None or frame.pose.sequence < sent.sequence:
                        frame = await conn.next_frame(timeout=30)
                    print(json.dumps({{"hostname": props.hostname, "port": props.handshake_port,
                                      "width": frame.width, "mean": float(frame.y.mean()),
                                      "std": float(frame.y.std()), "path": conn.ice_path,
                                      "answer": conn.pc.remoteDescription.sdp}}),
                                  flush=True)
                    await conn.close()
                    session.stop()

            asyncio.run(main())
        """))
        client = subprocess.run(client_ns.command(sys.executable, str(script)), capture_output=True,
                                text=True, timeout=150)
        assert client.returncode == 0, client.stderr[-3000:]
        seen = json.loads(client.stdout.strip().splitlines()[-1])
        # Microsoft's own ARR Python SDK, from the other host: key → STS token → sessions.
        sdk_script = tmp_path / "sdk.py"
        sdk_script.write_text(textwrap.dedent(f"""
            import json, os
            os.environ["REQUESTS_CA_BUNDLE"] = {info["cert"]!r}
            from azure.core.credentials import AzureKeyCredential
            from azure.mixedreality.remoterendering import RemoteRenderingClient

            client = RemoteRenderingClient(
                endpoint={info["url"]!r}, account_id={account["account_id"]!r},
                account_domain="farview.test", authentication_endpoint_url={info["url"]!r},
                credential=AzureKeyCredential(open({str(tmp_path / "key")!r}).read()),
                polling_interval=0.25)
            made = client.begin_rendering_session(session_id="sdk", size="Standard",
                                                  lease_time_minutes=5).result()
            longer = client.update_rendering_session(session_id="sdk", lease_time_minutes=10)
            listed = [s.id for s in client.list_rendering_sessions()]
            client.stop_rendering_session(session_id="sdk")
            print(json.dumps({{"status": str(made.status), "hostname": made.hostname,
                              "port": made.handshake_port, "lease": longer.lease_time_minutes,
                              "listed": "sdk" in listed,
                              "after": str(client.get_rendering_session("sdk").status)}}))
        """))
        sdk = subprocess.run(client_ns.command(sys.executable, str(sdk_script)), capture_output=True,
                             text=True, timeout=150)
        assert sdk.returncode == 0, sdk.stderr[-3000:]
        sdk_seen = json.loads(sdk.stdout.strip().splitlines()[-1])
    # the session names the service (the one public endpoint), and a real picture came through
    assert seen["hostname"] == server_ns.address and seen["port"] == int(info["url"].rsplit(":", 1)[1])
    assert seen["width"] == 320 and seen["std"] > 5.0, seen
    assert seen["path"] == "host-host", seen  # directly between the two hosts
    assert sdk_seen == {"status": "Ready", "hostname": server_ns.address, "port": seen["port"],
                        "lease": 10, "listed": True, "after": "Stopped"}, sdk_seen
    hosts = [line.split()[4:6] for line in seen["answer"].splitlines()
             if line.startswith("a=candidate:") and " typ host" in line]
    assert {ip for ip, _ in hosts} == {server_ns.address, "192.0.2.10"}, hosts  # no other interface
    assert all(50100 <= int(port) <= 50109 for _, port in hosts), hosts
