"""Load benchmark: as many concurrent sessions as this machine holds on the local pool,
created, connected, streamed and stopped repeatedly, against its own ``farview serve``.

    python3 benchmarks/bench_load.py [--max-sessions 4] [--rounds 3] [--stream-seconds 10]

For 1..max-sessions concurrent sessions it runs ``--rounds`` rounds (``tests/faults/loadrun.py``)
and prints, per round, create → Ready time, frames per client, the service's fds, threads and
RSS, render hosts left and host ports still open; then the service's REST latency (p50/p99)
under that load and a leak verdict (hosts or ports left, fds or RSS growing over the rounds).
Each render host is ~200 MB RSS and busy CPU while streaming; on a 2-core machine 3-4 is the limit.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.faults.loadrun import run_load
from tests.service.conftest import launch_service

FD_SLACK = 4
RSS_SLACK_MB = 20.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-sessions", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stream-seconds", type=float, default=10.0)
    args = parser.parse_args()
    leaks: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        svc = launch_service(Path(tmp) / "data", "--max-sessions", str(args.max_sessions))
        try:
            for n in range(1, args.max_sessions + 1):
                print(f"== {n} concurrent session(s), {args.rounds} rounds, {args.stream_seconds:g} s streaming",
                      flush=True)
                result = asyncio.run(run_load(svc, sessions=n, rounds=args.rounds,
                                              stream_seconds=args.stream_seconds))
                print(result.summary(), flush=True)
                first, last = result.rounds[0], result.rounds[-1]
                for r in result.rounds:
                    if r.hosts_left or r.ports_still_open:
                        leaks.append(f"{n} sessions, round {r.round}: {r.hosts_left} hosts, "
                                     f"{r.ports_still_open} ports left")
                if last.service_fds > first.service_fds + FD_SLACK:
                    leaks.append(f"{n} sessions: service fds {first.service_fds} → {last.service_fds}")
                if last.service_rss_mb > first.service_rss_mb + RSS_SLACK_MB:
                    leaks.append(f"{n} sessions: service RSS {first.service_rss_mb:.1f} → "
                                 f"{last.service_rss_mb:.1f} MB")
                if any(f == 0 for r in result.rounds for f in r.frames):
                    print(f"  note: a client got no frame with {n} sessions (the machine is saturated)")
        finally:
            svc.stop()
    for leak in leaks:
        print("LEAK:", leak)
    print("verdict:", "leaks found" if leaks else "no leaked processes, ports, fds or memory")
    return 1 if leaks else 0


if __name__ == "__main__":
    sys.exit(main())
