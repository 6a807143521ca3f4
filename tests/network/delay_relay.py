"""A delay line for UDP, for network tests on a kernel without ``netem``.

Run inside a router namespace (``netns.routed_hosts``) whose firewall drops forwarded UDP
(``netns.delayed`` sets that up): this process reads every UDP packet that arrives to be
forwarded (an ``AF_PACKET`` socket sees it before the firewall drops it), holds it for
``--delay-ms`` plus a uniform random ``±--jitter-ms``, and sends it on unchanged through a raw IP
socket (the kernel routes it; its addresses, ports and payload are as they came; its UDP
checksum is cleared, see below). Packets of one
flow (source and destination address) leave in the order they came, as through a queue: a
packet is held at least until the one before it has left. Everything else (TCP, ARP) is
forwarded by the kernel as usual, undelayed. Test-only code: it runs until terminated and prints
``ready`` once listening, and ``relayed N`` on exit.

    ip netns exec ROUTER python3 tests/network/delay_relay.py --delay-ms 40 --jitter-ms 10
"""

from __future__ import annotations

import argparse
import heapq
import random
import select
import signal
import socket
import subprocess
import sys
import time

ETH_P_IP = 0x0800
PACKET_OUTGOING = 4
IPPROTO_UDP = 17


def local_addresses() -> set[str]:
    out = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    return {line.split()[3].split("/")[0] for line in out.splitlines()}


def hold_s(delay_ms: float, jitter_ms: float, rng: random.Random) -> float:
    """How long one packet is held: ``delay_ms`` ± up to ``jitter_ms``, never negative."""
    return max(0.0, delay_ms + rng.uniform(-jitter_ms, jitter_ms)) / 1000


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--delay-ms", type=float, required=True)
    p.add_argument("--jitter-ms", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=None)
    args = p.parse_args()
    if not (args.delay_ms >= 0 and args.jitter_ms >= 0):
        p.error("--delay-ms and --jitter-ms must be >= 0")
    rng = random.Random(args.seed)
    local = local_addresses()
    rx = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    rx.setblocking(False)
    tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)  # IP_HDRINCL implied
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    queue: list[tuple[float, int, bytes, str]] = []  # (release time, sequence, packet, dst)
    last: dict[tuple[bytes, bytes], float] = {}  # a flow's latest release time
    seq = relayed = 0
    print("ready", flush=True)
    while not stopping:
        timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else 0.5
        try:
            readable, _, _ = select.select([rx], [], [], timeout)
        except InterruptedError:
            continue
        if readable:
            while True:
                try:
                    pkt, addr = rx.recvfrom(65535)
                except BlockingIOError:
                    break
                if addr[0] == "lo" or addr[2] == PACKET_OUTGOING:  # our own sends, or local
                    continue
                if len(pkt) < 20 or pkt[9] != IPPROTO_UDP:
                    continue  # the kernel forwards it
                dst = socket.inet_ntoa(pkt[16:20])
                if dst in local:
                    continue
                # The UDP checksum is cleared ("none", which IPv4 allows): a veth hands over a
                # packet whose checksum its sender left to offload (only the pseudo-header's
                # part is in it), which the kernel would complete on forwarding and a raw
                # socket does not.
                ihl = (pkt[0] & 0x0F) * 4
                if len(pkt) < ihl + 8:
                    continue
                pkt = pkt[:ihl + 6] + b"\0\0" + pkt[ihl + 8:]
                flow = (pkt[12:16], pkt[16:20])
                release = max(last.get(flow, 0.0),
                              time.monotonic() + hold_s(args.delay_ms, args.jitter_ms, rng))
                last[flow] = release
                seq += 1
                heapq.heappush(queue, (release, seq, pkt, dst))
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, pkt, dst = heapq.heappop(queue)
            try:
                tx.sendto(pkt, (dst, 0))
                relayed += 1
            except OSError as e:  # unreachable, say: a lost packet, as on a real path
                print(f"delay_relay: {dst}: {e}", file=sys.stderr, flush=True)
    print(f"relayed {relayed}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
