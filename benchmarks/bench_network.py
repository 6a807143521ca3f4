"""Remote viewing across separated hosts, against loopback, in one run.

Builds two network namespaces joined by a veth pair (as ``tests/network`` does: only its own
namespaces and 10.231.0.0/16 addresses, removed at the end), runs ``farview serve --make-cert``
in the first, creates a session from the second (timing REST create → Ready from the remote
client), then runs ``farview bench`` on that session twice: from the service's namespace
(loopback: the client beside the host) and from the other namespace (direct: across the cable,
signaling through the service's https endpoint, media over ICE). Prints pose → present p50/p99
and fps of each. Needs root. Prints numbers; asserts nothing.

    python3 benchmarks/bench_network.py [--duration 8] [--resolution 1280x720] [--fps 60]

Then, when coturn is installed, a third row: three namespaces in a row where the client's
host reaches only the service's https port and a coturn relay on the middle host (``farview
serve --ice-server ... --turn-secret-file ...``), so the media goes client → TURN → host.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.network.netns import Host, coturn, farview_service, relayed_hosts, skip_reason, two_hosts


def _bench(ns: Host, info: dict[str, Any], account: dict[str, str], key_file: Path, session_id: str,
           args: argparse.Namespace, out: Path) -> dict[str, Any]:
    return bench_modes(ns, info, account, key_file, session_id, args, out)["farview"]


def bench_modes(ns: Host, info: dict[str, Any], account: dict[str, str], key_file: Path, session_id: str,
                args: argparse.Namespace, out: Path, *, baseline: bool = False) -> dict[str, dict[str, Any]]:
    """``farview bench`` from ``ns`` on the session: per mode (farview; stock aiortc too with
    ``baseline``), pose → present p50/p99, fps, the longest gap between presented frames (ms),
    bitrate and the media path."""
    cmd = ns.command(sys.executable, "-m", "farview", "bench", "--session", session_id, "--url", info["url"],
                     "--account-id", account["account_id"], "--account-key-file", str(key_file),
                     "--ca-cert", info["cert"], "--headless", *([] if baseline else ["--no-baseline"]),
                     "--no-floor", "--duration", str(args.duration), "--warmup", "2",
                     "--resolution", args.resolution, "--fps", str(args.fps), "--output", str(out))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration * 8 + 180)
    if proc.returncode != 0:
        raise RuntimeError(f"farview bench in {ns.name} failed:\n{proc.stderr[-2000:]}")
    path = next((line.split("media path ", 1)[1].strip() for line in proc.stderr.splitlines()
                 if "media path " in line), "unknown")
    doc = json.loads(next(out.glob("bench-*.json")).read_text())
    rows = {}
    for mode, s in doc["summary"].items():
        if not isinstance(s, dict) or "latency_pose_to_present" not in s:
            continue
        p2p = s["latency_pose_to_present"] or {}
        rows[mode] = {"p50": p2p.get("p50"), "p99": p2p.get("p99"), "path": path,
                      "fps": s["video_frames_presented"] / s["measured_s"],
                      "longest_gap": s.get("time_since_last_present"), "kbps": s.get("bitrate_kbps")}
    return rows


def _create(ns: Host, info: dict[str, Any], account: dict[str, str], key_file: Path) -> float:
    """Create session "net" from ``ns``; seconds from the create call to Ready."""
    create = textwrap.dedent(f"""
        import json, time
        from farview import RemoteRenderingClient
        with RemoteRenderingClient({info["url"]!r}, {account["account_id"]!r},
                                   open({str(key_file)!r}).read(), verify={info["cert"]!r}) as rest:
            t0 = time.perf_counter()
            session = rest.create_session("net", max_lease_time_minutes=30)
            session.wait_until_ready(120, poll_interval=0.05)
            ready = time.perf_counter() - t0
            session.wait_for_models(120)
            print(json.dumps({{"ready_s": ready}}))
    """)
    made = subprocess.run(ns.command(sys.executable, "-c", create), capture_output=True, text=True, timeout=180)
    if made.returncode != 0:
        raise RuntimeError(f"creating the session from {ns.name} failed:\n{made.stderr[-2000:]}")
    return float(json.loads(made.stdout.strip().splitlines()[-1])["ready_s"])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=8.0)
    p.add_argument("--resolution", default="1280x720")
    p.add_argument("--fps", type=int, default=60)
    args = p.parse_args()
    if (reason := skip_reason()) is not None:
        print(f"bench_network: cannot build separated hosts here: {reason}", file=sys.stderr)
        return 2
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "direct-run").mkdir()
        (tmp / "turn-run").mkdir()
        with two_hosts("bn") as (server_ns, client_ns), \
                farview_service(server_ns, tmp / "direct-run", "--port", "0") as svc:
            info, account, key_file = svc.info, svc.account, svc.key_file
            ready_s = _create(client_ns, info, account, key_file)
            rows["loopback (client beside the host)"] = _bench(server_ns, info, account, key_file, "net", args,
                                                               tmp / "loopback")
            rows["direct (client on another host)"] = _bench(client_ns, info, account, key_file, "net", args,
                                                             tmp / "direct")
        turn_note = None
        if shutil.which("turnserver") is None:
            turn_note = "TURN-relayed: skipped (coturn's turnserver is not installed)"
        else:
            port = 8455
            (tmp / "turn-secret").write_text("bench-network-secret")
            with relayed_hosts("bt", port) as net, coturn(net, "bench-network-secret", tmp / "turn.log") as url, \
                    farview_service(net.server, tmp / "turn-run", "--port", str(port), "--ice-server", url,
                                    "--turn-secret-file", str(tmp / "turn-secret")) as svc:
                info, account, key_file = svc.info, svc.account, svc.key_file
                _create(net.client, info, account, key_file)
                rows["TURN (client reaches only the relay)"] = _bench(net.client, info, account, key_file, "net",
                                                                     args, tmp / "turn")
    print(f"\nremote viewing, {args.resolution} at {args.fps} fps, {args.duration:g} s measured per row "
          f"(sample model, headless)")
    print(f"REST create → Ready from the remote client: {ready_s * 1000:.0f} ms")
    print(f"{'path':<38} {'p50 ms':>8} {'p99 ms':>8} {'fps':>6}  media path")
    for name, row in rows.items():
        print(f"{name:<38} {row['p50']:>8.1f} {row['p99']:>8.1f} {row['fps']:>6.1f}  {row['path']}")
    if turn_note:
        print(turn_note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
