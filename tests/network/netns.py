"""Separated hosts on one machine for network tests: network namespaces joined by a veth pair.

Only namespaces and addresses this module makes are touched (names ``fv<pid>-<tag>``, addresses
in 10.231.0.0/16 picked per pair), and :func:`two_hosts` removes them on exit, also when the test
fails. Needs root (CI is root); :func:`skip_reason` says why it cannot run elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)


def skip_reason() -> str | None:
    """Why namespaces cannot be made here (None: they can)."""
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = f"fv{os.getpid()}-probe"
    made = _ip("netns", "add", probe)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    _ip("netns", "del", probe)
    return None


@dataclass(frozen=True)
class Host:
    """One namespace: its name and its address on the cable."""

    name: str
    address: str

    def command(self, *argv: str) -> list[str]:
        """``argv`` run inside this namespace."""
        return ["ip", "netns", "exec", self.name, *argv]


@contextlib.contextmanager
def two_hosts(tag: str) -> Iterator[tuple[Host, Host]]:
    """Two namespaces joined by a veth pair, each with loopback up and an address on a /30."""
    subnet = random.randrange(0, 16384)  # a /30 inside 10.231.0.0/16
    base = f"10.231.{subnet // 64}.{(subnet % 64) * 4}"
    prefix = base.rsplit(".", 1)[0]
    last = int(base.rsplit(".", 1)[1])
    a = Host(f"fv{os.getpid()}-{tag}a", f"{prefix}.{last + 1}")
    b = Host(f"fv{os.getpid()}-{tag}b", f"{prefix}.{last + 2}")
    veth_a, veth_b = f"fv{os.getpid() % 100000}{tag}a"[:15], f"fv{os.getpid() % 100000}{tag}b"[:15]
    try:
        for host in (a, b):
            _check(_ip("netns", "add", host.name))
            _check(_ip("-n", host.name, "link", "set", "lo", "up"))
        _check(_ip("link", "add", veth_a, "netns", a.name, "type", "veth", "peer", "name", veth_b,
                   "netns", b.name))
        for host, dev in ((a, veth_a), (b, veth_b)):
            _check(_ip("-n", host.name, "addr", "add", f"{host.address}/30", "dev", dev))
            _check(_ip("-n", host.name, "link", "set", dev, "up"))
        yield a, b
    finally:
        for host in (a, b):
            _ip("netns", "del", host.name)  # removes its end of the veth pair too


def _check(result: subprocess.CompletedProcess[str]) -> None:
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(result.args)} failed: {result.stderr.strip()}")
