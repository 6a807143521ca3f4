"""The web viewer (Chromium) over a link that narrows and widens again, with real packets: the
service and its host in one network namespace, the browser in another
(``tests/network/netns.py``: only its own namespaces and addresses, removed at the end). The
host's sending is capped to ``--cap`` Mbit/s (``tc tbf``) for ``--capped`` seconds, then the cap
goes back to 8 Mbit/s for ``--lifted`` seconds; the camera orbits throughout (a pose every
display frame, ``tests/network/browser_driver.py``).

It prints, per run: frames presented a second before the cap, under it and after it; the
longest gap between presented frames from the cap on (the longest freeze) and when it began;
the encoder's target under the cap (median of the frames' metadata) and when it first went
under the cap; pose → present p50/p99 before the cap and from 5 s after it began to its end
(``requestVideoFrameCallback``'s expected display time, as the viewer's overlay); keyframes,
keyframes the host sent for packets it no longer resent, and retransmissions.

    python3 benchmarks/bench_browser_cap.py [--cap 3] [--capped 7] [--lifted 4] [--runs 1] [--ab]
        [--page 1280x800]

``--ab`` runs each round twice, the viewer without its ``network_feedback`` first (as before
2026-12-04), in the same run. Needs root, Chromium and Playwright (``scripts/install`` with
``FARVIEW_TEST_DEBS=1``). Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_network import _create
from farview.streaming.stats import percentile
from tests.network.netns import farview_service, impair, run_phased, skip_reason, two_hosts
from tests.web.test_browser import CHROMIUM

DRIVER = Path(__file__).resolve().parent.parent / "tests" / "network" / "browser_driver.py"


def run_once(args: argparse.Namespace, feedback: bool, tag: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp_name, two_hosts(tag) as (server, client), \
            farview_service(server, Path(tmp_name), "--port", "0") as svc:
        _create(client, svc.info, svc.account, svc.key_file)
        impair(server, client, rate_mbit=8.0)
        return run_phased(client.command(sys.executable, str(DRIVER), svc.info["url"],
                                         svc.account["account_id"], svc.account["account_key"],
                                         str(CHROMIUM), str(args.capped), str(args.lifted), "--page", args.page,
                                         *([] if feedback else ["--no-feedback"])),
                          lambda phase: impair(server, client, rate_mbit=args.cap if phase == "cap" else 8.0))


def row(result: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    frames = result["frames"]
    video = result["stats"]["video"]
    before = [f for f in frames if -3.0 <= f[0] < 0]
    capped = [f for f in frames if 0 <= f[0] < args.capped]
    after = [f for f in frames if f[0] >= args.capped]
    times = [f[0] for f in frames if f[0] >= 0]
    gaps = [(b - a, a) for a, b in zip([0.0, *times], times, strict=False)]
    gap, gap_at = max(gaps) if gaps else (None, None)
    under = next((f[0] for f in capped if f[1] and f[1] <= args.cap * 1e6), None)
    late = [f[2] for f in capped if f[0] >= 5.0 and f[2] is not None]
    clean = [f[2] for f in before if f[2] is not None]
    targets = [f[1] for f in capped if f[1]]
    return {
        "fps_before": len(before) / 3.0, "fps_capped": len(capped) / args.capped,
        "fps_after": len(after) / args.lifted if args.lifted else None,
        "longest_gap_ms": gap * 1000 if gap is not None else None, "gap_at_s": gap_at,
        "target_median_mbit": statistics.median(targets) / 1e6 if targets else None,
        "under_cap_s": under,
        "p50_clean": percentile(clean, 50) if clean else None, "p99_clean": percentile(clean, 99) if clean else None,
        "p50_late": percentile(late, 50) if late else None, "p99_late": percentile(late, 99) if late else None,
        "keyframes": video["keyframes_sent"], "keyframes_for_lost": video["keyframes_for_lost_packets"],
        "retransmissions": video["retransmissions"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cap", type=float, default=3.0, help="Mbit/s the host's link narrows to")
    ap.add_argument("--capped", type=float, default=7.0, help="seconds under the cap")
    ap.add_argument("--lifted", type=float, default=4.0, help="seconds after the cap is lifted")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--page", default="1280x800", help="the browser page's size, WxH (the stream is its "
                    "stage's: 1280x800 gives about 1280x740)")
    ap.add_argument("--ab", action="store_true",
                    help="each run also without the viewer's network_feedback (first), for comparison")
    args = ap.parse_args()
    if (reason := skip_reason()) is not None:
        print(f"bench_browser_cap: cannot build separated hosts here: {reason}", file=sys.stderr)
        return 2
    if CHROMIUM is None:
        print("bench_browser_cap: Chromium is not installed", file=sys.stderr)
        return 2
    lines = [f"web viewer (Chromium, {args.page} page) over a link capped 8 -> {args.cap:g} -> 8 Mbit/s "
             f"({args.capped:g} s capped, {args.lifted:g} s after)",
             f"{'viewer':<12} {'fps before/capped/after':>24} {'longest gap':>16} {'target':>8} "
             f"{'under in':>8} {'p50/p99 clean':>14} {'p50/p99 5 s on':>15} {'keyframes':>10}"]

    def fmt(v: Any, spec: str) -> str:
        return format(v, spec) if v is not None else "—"

    for i in range(args.runs):
        for feedback in ([False, True] if args.ab else [True]):
            r = row(run_once(args, feedback, f"bc{i}{int(feedback)}"), args)
            name = "feedback" if feedback else "no feedback"
            lines.append(
                f"{name:<12} {fmt(r['fps_before'], '.1f'):>8}/{fmt(r['fps_capped'], '.1f')}/"
                f"{fmt(r['fps_after'], '.1f'):<6} {fmt(r['longest_gap_ms'], '6.0f')} ms at "
                f"{fmt(r['gap_at_s'], '.1f')} s "
                f"{fmt(r['target_median_mbit'], '6.2f'):>8} {fmt(r['under_cap_s'], '.2f'):>7}s "
                f"{fmt(r['p50_clean'], '.0f'):>6}/{fmt(r['p99_clean'], '.0f'):<6} "
                f"{fmt(r['p50_late'], '.0f'):>7}/{fmt(r['p99_late'], '.0f'):<6} "
                f"{r['keyframes']:>4} ({r['keyframes_for_lost']} for lost packets)")
            print(lines[-1], flush=True)
    print("\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
