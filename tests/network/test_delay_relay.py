"""The impairment harness's UDP delay line (``delay_relay.py``) over real packets: hosts one
router apart, UDP held there for the delay asked (each way) and kept in order, TCP passed
undelayed, and everything removed afterwards."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.network.delay_relay import hold_s
from tests.network.netns import delayed, routed_hosts, skip_reason

pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=str(skip_reason()))

ECHO = textwrap.dedent("""
    import socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((sys.argv[1], 9500))
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind((sys.argv[1], 9501)); t.listen()
    print("up", flush=True)
    s.settimeout(30)
    for _ in range(int(sys.argv[2])):
        data, addr = s.recvfrom(2048)
        s.sendto(data, addr)
    conn, _ = t.accept()
    n = 0
    while chunk := conn.recv(65536):
        n += len(chunk)
    conn.sendall(str(n).encode())
    conn.close()
""")

PROBE = textwrap.dedent("""
    import json, socket, sys, threading, time
    host, count = sys.argv[1], int(sys.argv[2])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    sent, order, rtts = {}, [], []

    def receive():
        for _ in range(count):
            data, _ = s.recvfrom(2048)
            i = int.from_bytes(data[:4], "big")
            order.append(i)
            rtts.append((time.perf_counter() - sent[i]) * 1000)

    reader = threading.Thread(target=receive)
    reader.start()
    for i in range(count):  # 2 ms apart: jitter would reorder them if order were not kept
        sent[i] = time.perf_counter()
        s.sendto(i.to_bytes(4, "big") + b"x" * 1000, (host, 9500))
        time.sleep(0.002)
    reader.join()
    t = socket.create_connection((host, 9501), timeout=10)
    t.sendall(b"y" * (4 << 20))
    t.shutdown(socket.SHUT_WR)
    got = int(t.recv(64).decode())
    print(json.dumps({"order": order, "rtts": rtts, "tcp_bytes": got}))
""")


def _probe(net, count: int) -> dict:
    echo = subprocess.Popen(net.server.command(sys.executable, "-c", ECHO, net.server.address, str(count)),
                            stdout=subprocess.PIPE, text=True)
    try:
        assert echo.stdout is not None and echo.stdout.readline().strip() == "up"
        out = subprocess.run(net.client.command(sys.executable, "-c", PROBE, net.server.address, str(count)),
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)
    finally:
        echo.kill()
        echo.wait(10)


def test_hold_is_delay_plus_bounded_jitter() -> None:
    import random
    rng = random.Random(1)
    holds = [hold_s(40, 10, rng) for _ in range(2000)]
    assert 0.030 <= min(holds) < 0.032 and 0.048 < max(holds) <= 0.050
    assert hold_s(5, 10, rng) >= 0.0


def test_udp_is_delayed_in_order_and_tcp_passes(tmp_path: Path) -> None:
    with routed_hosts("dr") as net:
        direct = _probe(net, 20)
        with delayed(net.middle, 40, 10, tmp_path / "relay.log"):
            held = _probe(net, 60)
        after = _probe(net, 20)  # the relay gone, the router forwards UDP again
        names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert net.middle.name in names
    assert net.middle.name not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    # Each way at least 40 - 10 ms: a round trip of 60 ms or more, every packet.
    assert len(held["rtts"]) == 60 and min(held["rtts"]) >= 60.0, held["rtts"]
    assert min(direct["rtts"]) < 30.0 and min(after["rtts"]) < 30.0  # nothing held without the relay
    assert held["order"] == sorted(held["order"])  # jitter did not reorder the flow
    assert held["tcp_bytes"] == 4 << 20  # TCP crossed the router whole
    assert (tmp_path / "relay.log").read_text() == ""  # no packet failed to go on
