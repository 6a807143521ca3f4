"""farview's stream, and stock aiortc's in the same run, over an impaired network with real packets.

Two network namespaces joined by a veth pair (``tests/network/netns.py``: only its own
namespaces and addresses, removed at the end): the service and its host in one, ``farview
bench`` in the other. Before each row the cable is impaired (``netns.impair``): random loss of
UDP packets both ways (iptables ``statistic``) or a token-bucket cap on what the host sends
(``tc tbf``; this kernel has no ``netem``, so no added delay or jitter yet). Each row runs
farview's stream then stock aiortc's on the same session, and prints per mode: frames presented
a second, the longest gap between presented frames (the longest freeze), pose → present p50/p99
and the bitrate. Needs root. Prints numbers; asserts nothing.

    python3 benchmarks/bench_impairment.py [--duration 8] [--resolution 1280x720] [--fps 60]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_network import _create, bench_modes
from tests.network.netns import farview_service, impair, skip_reason, two_hosts

CONDITIONS: list[tuple[str, float, float | None]] = [
    ("clean", 0.0, None),
    ("1 % loss", 0.01, None),
    ("5 % loss", 0.05, None),
    ("capped at 3 Mbit/s", 0.0, 3.0),
]
"""(name, UDP loss fraction both ways, cap in Mbit/s on what the host sends)."""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=8.0)
    p.add_argument("--resolution", default="1280x720")
    p.add_argument("--fps", type=int, default=60)
    p.add_argument("--only", action="append", default=[], metavar="TEXT",
                   help="run only the conditions whose name contains TEXT (repeatable)")
    p.add_argument("--no-baseline", action="store_true", help="farview only, not stock aiortc")
    args = p.parse_args()
    if (reason := skip_reason()) is not None:
        print(f"bench_impairment: cannot build separated hosts here: {reason}", file=sys.stderr)
        return 2
    rows: list[tuple[str, str, dict]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with two_hosts("bi") as (server, client), farview_service(server, tmp, "--port", "0") as svc:
            _create(client, svc.info, svc.account, svc.key_file)
            for i, (name, loss, cap) in enumerate(CONDITIONS):
                if args.only and not any(text in name for text in args.only):
                    continue
                impair(server, client, loss=loss, rate_mbit=cap)
                print(f"[bench_impairment] {name} ...", file=sys.stderr, flush=True)
                modes = bench_modes(client, svc.info, svc.account, svc.key_file, "net", args, tmp / f"row{i}",
                                    baseline=not args.no_baseline)
                rows += [(name, mode, row) for mode, row in modes.items()]
            impair(server, client)
    print(f"\nimpaired network, {args.resolution} at {args.fps} fps, {args.duration:g} s measured per mode "
          "(sample model, headless; loss is random UDP loss both ways)")
    print(f"{'condition':<20} {'mode':<12} {'fps':>6} {'longest gap ms':>15} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'kbit/s':>8}")

    def num(v: float | None, fmt: str) -> str:
        return format(v, fmt) if v is not None else "—"

    for name, mode, row in rows:
        print(f"{name:<20} {mode:<12} {row['fps']:>6.1f} {num(row['longest_gap'], '>15.0f')} "
              f"{num(row['p50'], '>8.1f')} {num(row['p99'], '>8.1f')} {num(row['kbps'], '>8.0f')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
