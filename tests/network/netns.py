"""Separated hosts on one machine for network tests: network namespaces joined by veth pairs.

Only namespaces and addresses this module makes are touched (names ``fv<pid>-<tag>``, addresses
in 10.231.0.0/16 picked per pair, or in 10.232/10.233 for three hosts in a row), and each context
manager removes its namespaces on exit, also when the test fails. Needs root (CI is root);
:func:`skip_reason` says why it cannot run elsewhere.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


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


@dataclass(frozen=True)
class Relayed:
    """Three hosts in a row: ``server`` ─ ``middle`` ─ ``client``. The middle one forwards TCP
    to the server's ``signaling_port`` only (the client's https to the service); nothing else
    crosses it, so media can flow only through a relay running on the middle host itself,
    which has an address on each side (``middle_server_side``, ``middle_client_side``)."""

    server: Host
    middle: Host
    client: Host
    middle_server_side: str
    middle_client_side: str


@contextlib.contextmanager
def _three_in_a_row(tag: str) -> Iterator[Relayed]:
    """Namespaces ``server`` ─ ``middle`` ─ ``client`` joined by two veth pairs (a /30 each),
    with routes through the middle one (which forwards nothing until told); removed on exit."""
    net = random.randrange(0, 250)
    s_addr, ms_addr = f"10.232.{net}.1", f"10.232.{net}.2"
    mc_addr, c_addr = f"10.233.{net}.1", f"10.233.{net}.2"
    pid = os.getpid()
    server, middle, client = (Host(f"fv{pid}-{tag}{x}", a) for x, a in
                              (("s", s_addr), ("m", mc_addr), ("c", c_addr)))
    dev = {k: f"fv{pid % 100000}{tag}{k}"[:15] for k in ("s", "ms", "mc", "c")}
    try:
        for host in (server, middle, client):
            _check(_ip("netns", "add", host.name))
            _check(_ip("-n", host.name, "link", "set", "lo", "up"))
        _check(_ip("link", "add", dev["s"], "netns", server.name, "type", "veth", "peer", "name",
                   dev["ms"], "netns", middle.name))
        _check(_ip("link", "add", dev["c"], "netns", client.name, "type", "veth", "peer", "name",
                   dev["mc"], "netns", middle.name))
        for ns, d, address in ((server.name, dev["s"], s_addr), (middle.name, dev["ms"], ms_addr),
                               (middle.name, dev["mc"], mc_addr), (client.name, dev["c"], c_addr)):
            _check(_ip("-n", ns, "addr", "add", f"{address}/30", "dev", d))
            _check(_ip("-n", ns, "link", "set", d, "up"))
        _check(_ip("-n", server.name, "route", "add", f"10.233.{net}.0/30", "via", ms_addr))
        _check(_ip("-n", client.name, "route", "add", f"10.232.{net}.0/30", "via", mc_addr))
        _run(middle, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        _run(middle, "iptables", "-P", "FORWARD", "DROP")
        yield Relayed(server, middle, client, ms_addr, mc_addr)
    finally:
        for host in (server, middle, client):
            _ip("netns", "del", host.name)


def _run(host: Host, *argv: str) -> None:
    _check(subprocess.run(host.command(*argv), capture_output=True, text=True, timeout=30))


@contextlib.contextmanager
def relayed_hosts(tag: str, signaling_port: int, *, block_client_udp: bool = False) -> Iterator[Relayed]:
    """See :class:`Relayed`; removed on exit, also when the test fails. ``block_client_udp``:
    the client's host also drops every UDP packet it would send off-host (a UDP-blocking
    firewall: only TCP leaves it, so media can only come through TURN over TCP)."""
    with _three_in_a_row(tag) as net:
        _run(net.middle, "iptables", "-A", "FORWARD", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED",
             "-j", "ACCEPT")
        _run(net.middle, "iptables", "-A", "FORWARD", "-p", "tcp", "-d", net.server.address, "--dport",
             str(signaling_port), "-j", "ACCEPT")
        if block_client_udp:
            _run(net.client, "iptables", "-A", "OUTPUT", "!", "-o", "lo", "-p", "udp", "-j", "DROP")
        yield net


@contextlib.contextmanager
def routed_hosts(tag: str) -> Iterator[Relayed]:
    """``server`` ─ ``middle`` ─ ``client`` (see :class:`Relayed`), the middle host an IP router
    that forwards everything: the two ends reach each other's addresses as if cabled, one hop
    apart, and :func:`delayed` can hold their UDP on the way. :func:`impair` works on
    ``(server, client)`` as on :func:`two_hosts`. Removed on exit, also when the test fails."""
    with _three_in_a_row(tag) as net:
        _run(net.middle, "iptables", "-P", "FORWARD", "ACCEPT")
        yield net


@contextlib.contextmanager
def delayed(router: Host, delay_ms: float, jitter_ms: float, log_file: Path) -> Iterator[None]:
    """UDP through ``router`` (the middle of :func:`routed_hosts`) held ``delay_ms`` ± up to
    ``jitter_ms`` each way (``delay_relay.py``: this kernel has no ``netem``; a flow's packets
    keep their order); TCP is not delayed. Undone on exit."""
    _run(router, "iptables", "-I", "FORWARD", "1", "-p", "udp", "-j", "DROP")  # the relay sends them
    with log_file.open("w") as log:
        relay = subprocess.Popen(router.command(
            sys.executable, str(Path(__file__).with_name("delay_relay.py")), "--delay-ms", str(delay_ms),
            "--jitter-ms", str(jitter_ms)), stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        assert relay.stdout is not None
        if relay.stdout.readline().strip() != "ready":
            relay.wait(10)
            raise RuntimeError(f"the delay relay did not start:\n{log_file.read_text()[-2000:]}")
        yield
    finally:
        _stop(relay)
        subprocess.run(router.command("iptables", "-D", "FORWARD", "-p", "udp", "-j", "DROP"),
                       capture_output=True, timeout=30)


TURN_PORT = 3478


@contextlib.contextmanager
def coturn(net: Relayed, secret: str, log_file: Path, *, transport: str = "udp") -> Iterator[str]:
    """A real coturn on ``net``'s middle host: clients reach it on its client-side address,
    it relays from its server-side one; TURN REST credentials from ``secret``. Yields the URL
    to give ``farview serve --ice-server`` (``transport``: udp, or tcp for TURN over TCP on the
    same port); stopped on exit."""
    with log_file.open("w") as log:
        proc = subprocess.Popen(net.middle.command(
            "turnserver", "-n", "--no-cli", "--no-tls", "--no-dtls", "--fingerprint",
            "--use-auth-secret", f"--static-auth-secret={secret}", "--realm=farview.test",
            f"--listening-ip={net.middle_client_side}", f"--relay-ip={net.middle_server_side}",
            f"--listening-port={TURN_PORT}", "--min-port=49200", "--max-port=49300",
            "--log-file=stdout", "--simple-log"), stdout=log, stderr=subprocess.STDOUT)
    try:
        yield f"turn:{net.middle_client_side}:{TURN_PORT}?transport={transport}"
    finally:
        _stop(proc)


@dataclass(frozen=True)
class Service:
    """A running ``farview serve``: its service.json, its account, and a file with the key."""

    info: dict[str, Any]
    account: dict[str, str]
    key_file: Path


@contextlib.contextmanager
def farview_service(host: Host, workdir: Path, *args: str) -> Iterator[Service]:
    """``farview serve --host <host's address> --make-cert`` in ``host``'s namespace, with its
    data in ``workdir/data`` and ``args`` added (``--port`` among them); stopped on exit. A
    service that does not start fails with its output."""
    data = workdir / "data"
    log_path = workdir / "serve.log"
    with log_path.open("w") as log:
        serve = subprocess.Popen(host.command(
            sys.executable, "-m", "farview", "serve", "--host", host.address, "--make-cert",
            "--data-dir", str(data), "--log-level", "warning", *args),
            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not (data / "service.json").exists():
            if serve.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"farview serve did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        account = json.loads((data / "account.json").read_text())
        key_file = workdir / "key"
        key_file.write_text(account["account_key"])
        yield Service(json.loads((data / "service.json").read_text()), account, key_file)
    finally:
        _stop(serve)


def _stop(proc: subprocess.Popen[Any]) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


def _cable(host: Host) -> str:
    """The name of ``host``'s end of the cable (its one link besides loopback)."""
    out = subprocess.run(["ip", "-n", host.name, "-o", "link", "show"], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]
    return next(n for n in names if n != "lo")


def impair(sender: Host, receiver: Host, *, loss: float = 0.0, rate_mbit: float | None = None) -> None:
    """Make the cable between two hosts a worse network, replacing what an earlier call set:
    ``loss`` drops that fraction of the UDP packets ``receiver`` gets and sends, at random
    (iptables ``statistic``, both directions: media and its feedback); ``rate_mbit`` caps what
    ``sender`` sends over the cable with a token bucket (``tc tbf``). 0 and None: as it was.
    The rules live in the hosts' namespaces and go with them."""
    for chain in ("INPUT", "OUTPUT"):
        subprocess.run(receiver.command("iptables", "-F", chain), capture_output=True, timeout=30, check=True)
        if loss > 0:
            _check(subprocess.run(receiver.command(
                "iptables", "-A", chain, "!", f"-{'i' if chain == 'INPUT' else 'o'}", "lo", "-p", "udp",
                "-m", "statistic", "--mode", "random", "--probability", f"{loss:.4f}", "-j", "DROP"),
                capture_output=True, text=True, timeout=30))
    dev = _cable(sender)
    subprocess.run(["ip", "netns", "exec", sender.name, "tc", "qdisc", "del", "dev", dev, "root"],
                   capture_output=True, timeout=30)
    if rate_mbit is not None:
        _check(subprocess.run(sender.command(
            "tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", f"{rate_mbit}mbit",
            "burst", "32kbit", "latency", "50ms"), capture_output=True, text=True, timeout=30))


def run_phased(command: list[str], on_phase: Callable[[str], None], timeout: float = 60.0) -> dict[str, Any]:
    """Run ``command`` (a client in a namespace, :meth:`Host.command`): each line ``phase NAME``
    it prints calls ``on_phase(NAME)`` here (which sets the network for that phase) and then
    answers ``go`` on its stdin; its last line starting with ``{`` is its JSON result. Raises
    ``RuntimeError`` with the end of its stderr when it fails or gives no result."""
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdin is not None and proc.stdout is not None
    result = None
    try:
        for line in proc.stdout:
            if line.startswith("phase "):
                on_phase(line.split()[1])
                proc.stdin.write("go\n")
                proc.stdin.flush()
            elif line.startswith("{"):
                result = json.loads(line)
        proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    if proc.returncode != 0 or result is None:
        script = next((Path(a).name for a in command if a.endswith(".py")), "the client")
        raise RuntimeError(f"{script} failed ({proc.returncode}, result {'read' if result else 'missing'}):\n"
                           + (proc.stderr.read()[-3000:] if proc.stderr else ""))
    return result
