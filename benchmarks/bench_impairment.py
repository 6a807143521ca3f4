"""farview's stream, and stock aiortc's in the same run, over an impaired network with real packets.

Three network namespaces in a row, one router between two hosts (``tests/network/netns.py``:
only its own namespaces and addresses, removed at the end): the service and its host on one
side, ``farview bench`` (the scripted orbit trajectory, headless) on the other. Each condition
impairs the path (``netns.impair``): random loss of UDP packets both ways (iptables
``statistic``) and/or a token-bucket cap on what the host sends (``tc tbf``); or, as this kernel
has no ``netem``, delay and jitter from a user-space delay line on the router
(``netns.delayed``: UDP held 40 ms ± up to 10 ms each way, each flow kept in order). Dynamic
conditions change the impairment during the measured window, at the same offsets for both
modes: each mode's events are timed from the moment it starts measuring.

Per mode it prints frames presented a second, the longest gap between presented frames (the
longest freeze), freezes over 100 ms, pose → present p50/p99, the received bit rate (aiortc's
inbound RTP bytes, the same for both modes), keyframes (farview's, from its frame metadata), and
for the dynamic rows: after the loss burst, the time from its end to the next presented frame;
under the cap, when farview's encoder target went under it, and p99 from 5 s after the cap began
to its end against the clean row's. With ``--verify`` the host burns each frame's pose into its
pixels and the client reads it back: pictures that show another pose than their metadata names
(stock aiortc's decoder conceals a lost packet with pieces of earlier pictures) are counted, and
frames a second and the longest gap are also given over the correct pictures only.
``--output DIR`` writes the table, the JSON of every run and a PNG of the bit rate over time (of
the first run). ``--repeat N`` runs every row N times and adds the medians, and in how many runs
farview's number was better than stock aiortc's, the same and worse, column by column: one run
of a row on this machine can go either way where the two are close.
Needs root. Prints numbers; asserts nothing.

    python3 benchmarks/bench_impairment.py [--duration 8] [--only TEXT] [--verify] [--output DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_network import _create
from farview.client.bench.run import MODES
from farview.streaming.stats import percentile
from tests.network.netns import Host, delayed, farview_service, impair, routed_hosts, skip_reason

WARMUP_S = 2.0


@dataclass(frozen=True)
class Condition:
    name: str
    steady: dict[str, Any] = field(default_factory=dict)
    """``impair`` arguments for the whole run (before the events)."""
    events: tuple[tuple[float, dict[str, Any]], ...] = ()
    """(seconds after measuring starts, ``impair`` arguments)."""
    min_duration: float = 0.0
    delay: tuple[float, float] | None = None
    """(ms, ± jitter ms) each way, for the whole run: ``netns.delayed``."""
    cap_mbit: float | None = None
    """The cap a "cap" row narrows the link to (its targets are judged against it)."""

    @property
    def kind(self) -> str:
        return "burst" if any(kw.get("loss", 0) >= 0.5 for _, kw in self.events) else \
            "cap" if self.events else "steady"


def cap(mbit: float) -> Condition:
    """The link narrowed from 8 Mbit/s to ``mbit`` 2 s into measuring, and widened again 7 s later."""
    return Condition(f"cap 8 → {mbit:g} → 8 Mbit/s", {"rate_mbit": 8.0},
                     ((2.0, {"rate_mbit": mbit}), (9.0, {"rate_mbit": 8.0})), min_duration=13.0,
                     cap_mbit=mbit)


def conditions(caps: tuple[float, ...] = (3.0,)) -> tuple[Condition, ...]:
    """The rows, in order; ``caps``: one cap row for each (the issue's is 3 Mbit/s)."""
    return (Condition("clean"),
            Condition("1 % loss", {"loss": 0.01}),
            Condition("5 % loss", {"loss": 0.05}),
            Condition("50 % loss for 2 s", {}, ((3.0, {"loss": 0.5}), (5.0, {}))),
            *(cap(mbit) for mbit in caps),
            Condition("40 ms delay ± 10 ms", delay=(40.0, 10.0)))


def _present_times(frames: list[dict[str, Any]], correct_only: bool = False) -> list[float]:
    """When each presented frame was presented; ``correct_only``: only those whose pixels show
    the pose their metadata names (``--verify``: the marker the host burns in, read back)."""
    return sorted(r["t"] + ((r["pose_to_present_ms"] or 0) - (r["pose_to_receive_ms"] or 0)) / 1000
                  for r in frames if r["presented"]
                  and (not correct_only or r["marker_sequence"] == r["pose_sequence"]))


def _bench(client: Host, svc: Any, cond: Condition, duration: float, out: Path, server: Host,
           baseline: bool, extra: tuple[str, ...] = ()) -> tuple[dict[str, Any], dict[str, list[tuple[float, str]]]]:
    """Run ``farview bench`` with the condition's timeline; returns its JSON document and, per
    mode, the events as (perf_counter when applied, description)."""
    info = svc.info
    cmd = client.command(sys.executable, "-m", "farview", "bench", "--session", "net", "--url", info["url"],
                         "--account-id", svc.account["account_id"], "--account-key-file", str(svc.key_file),
                         "--ca-cert", info["cert"], "--headless", *([] if baseline else ["--no-baseline"]),
                         "--no-floor", "--duration", str(duration), "--warmup", str(WARMUP_S),
                         "--resolution", "1280x720", "--fps", "60", "--output", str(out), *extra)
    impair(server, client, **cond.steady)
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    applied: dict[str, list[tuple[float, str]]] = {}
    timers: list[threading.Timer] = []
    modes = iter(MODES)
    tail: list[str] = []

    def apply(mode: str, kwargs: dict[str, Any]) -> None:
        impair(server, client, **kwargs)
        applied.setdefault(mode, []).append((time.perf_counter(), json.dumps(kwargs)))
        now = time.time()  # wall-clock, as the host's log (--workdir keeps it) stamps lines
        stamp = time.strftime("%H:%M:%S", time.localtime(now)) + f",{int(now % 1 * 1000):03d}"
        print(f"[bench_impairment] {mode}: {json.dumps(kwargs)} at {stamp}", file=sys.stderr,
              flush=True)

    assert proc.stderr is not None
    for line in proc.stderr:
        tail = [*tail, line][-40:]
        if "media path " in line:  # a mode connected: it measures from WARMUP_S on
            mode = next(modes, "?")
            impair(server, client, **cond.steady)
            t0 = time.monotonic()
            for offset, kwargs in cond.events:
                delay = max(0.0, t0 + WARMUP_S + offset - time.monotonic())
                timer = threading.Timer(delay, apply, (mode, kwargs))
                timer.start()
                timers.append(timer)
    rc = proc.wait(duration * 8 + 180)
    for timer in timers:
        timer.cancel()
    impair(server, client)
    if rc != 0 and not (rc == 1 and "--verify" in extra):  # 1: --verify saw wrong pictures
        raise RuntimeError(f"farview bench failed ({rc}):\n{''.join(tail)}")
    return json.loads(next(out.glob("bench-*.json")).read_text()), applied


def _row(doc: dict[str, Any], mode: str, cond: Condition, events: list[tuple[float, str]],
         clean_p99: dict[str, float]) -> dict[str, Any]:
    s = doc["summary"][mode]
    frames = doc["frames"][mode]
    timing = doc["timing"][mode]
    start = timing["start_perf"]
    p2p = s["latency_pose_to_present"] or {}
    samples = timing["received_bytes"]
    kbps = ((samples[-1][1] - samples[0][1]) * 8 / 1000 / (samples[-1][0] - samples[0][0])
            if len(samples) > 1 and samples[-1][0] > samples[0][0] else None)
    row: dict[str, Any] = {
        "fps": s["video_frames_presented"] / s["measured_s"], "longest_gap": s["time_since_last_present"],
        "freezes": s["freezes_over_100ms"], "p50": p2p.get("p50"), "p99": p2p.get("p99"), "kbps": kbps,
        "keyframes": s["keyframes"] if mode == "farview" else None,
        "events": [(at - start, what) for at, what in events] if start is not None else [],
    }
    offsets = [t for t, _ in row["events"]]
    shown = _present_times(frames)
    if any(r["marker_sequence"] is not None for r in frames):  # --verify
        right = _present_times(frames, correct_only=True)
        row["wrong"] = len(shown) - len(right)
        row["correct_fps"] = len(right) / s["measured_s"]
        row["correct_longest_gap"] = (max(b - a for a, b in itertools.pairwise(right)) * 1000
                                      if len(right) > 1 else None)
    if cond.kind == "burst" and len(offsets) == 2:
        end = offsets[1]
        after = [t for t in shown if t > end]
        row["recovery_ms"] = (after[0] - end) * 1000 if after else None
    if cond.kind == "cap" and len(offsets) == 2:
        cap_at, lift_at = offsets
        under = [r["t"] for r in frames if r["t"] >= cap_at and r["target_bitrate"]
                 and r["target_bitrate"] <= (cond.cap_mbit or 0) * 1e6]
        row["under_cap_s"] = (under[0] - cap_at) if under else None
        late = [r["pose_to_present_ms"] for r in frames
                if r["presented"] and cap_at + 5 <= r["t"] <= lift_at and r["pose_to_present_ms"] is not None]
        p99_late = percentile(late, 99) if late else None
        row["p99_5s_after_cap"] = p99_late
        base = clean_p99.get(mode)
        row["p99_ratio_5s_after_cap"] = p99_late / base if p99_late and base else None
        up = [r["t"] for r in frames if r["t"] >= lift_at and (r["target_bitrate"] or 0) >= 6e6]
        row["back_over_6_mbit_s"] = (up[0] - lift_at) if up else None
    return row


MEDIAN_COLUMNS = (("fps", "fps", ".1f", True), ("longest gap", "longest_gap", ".0f", False),
                  (">100 ms", "freezes", ".0f", False), ("p50 ms", "p50", ".1f", False),
                  ("p99 ms", "p99", ".1f", False), ("Mbit/s", "kbps", ".2f", None),
                  ("recovery ms", "recovery_ms", ".0f", False), ("p99/clean", "p99_ratio_5s_after_cap", ".2f", False),
                  ("under cap s", "under_cap_s", ".2f", False), ("wrong", "wrong", ".0f", False),
                  ("right fps", "correct_fps", ".1f", True), ("right gap", "correct_longest_gap", ".0f", False))
"""The median table's columns: heading, row key, format, and whether more is better (None:
neither). With ``--verify``, "right fps" and "right gap" count only the pictures that showed
their own pose: stock aiortc's decoder presents concealed pictures after a loss, and a backlog
of them once read 67.8 fps (120 wrong) at 5 % loss."""


def medians_table(conditions: list[Condition], runs: list[dict[str, dict[str, Any]]], repeat: int) -> list[str]:
    """Lines of a table: per condition and mode, the median of each column over the runs
    (``runs``: each run's rows by mode, in the order the conditions ran, ``repeat`` times), then
    in how many runs farview's number was better than stock aiortc's, the same, and worse, column
    by column ("2-1-0"; a run without both numbers counts for none)."""
    width = 12
    lines = [f"medians of {repeat} runs; \"farview better\": in how many runs farview's number was better, "
             "the same, worse than stock aiortc's",
             f"{'condition':<22} {'mode':<14}" + "".join(f"{h:>{width}}" for h, *_ in MEDIAN_COLUMNS)]
    for c, cond in enumerate(conditions):
        mine = runs[c::len(conditions)]
        modes = [m for m in MODES if any(m in r for r in mine)]
        for mode in modes:
            cells = []
            for _, key, fmt, _ in MEDIAN_COLUMNS:
                values = [r[mode][key] for r in mine if mode in r and r[mode].get(key) is not None]
                if key == "kbps":
                    values = [v / 1000 for v in values]
                cells.append(format(statistics.median(values), fmt) if values else "—")
            lines.append(f"{cond.name:<22} {mode:<14}" + "".join(f"{v:>{width}}" for v in cells))
        if set(modes) >= {"farview", "stock_aiortc"}:
            cells = []
            for _, key, _, more in MEDIAN_COLUMNS:
                pairs = [(r["farview"].get(key), r["stock_aiortc"].get(key)) for r in mine
                         if "farview" in r and "stock_aiortc" in r]
                pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
                if more is None or not pairs:
                    cells.append("")
                    continue
                better = sum((a > b) if more else (a < b) for a, b in pairs)
                worse = sum((a < b) if more else (a > b) for a, b in pairs)
                cells.append(f"{better}-{len(pairs) - better - worse}-{worse}")
            lines.append((f"{cond.name:<22} {'farview better':<14}" + "".join(f"{v:>{width}}" for v in cells)).rstrip())
    return lines


def _plot(results: list[tuple[Condition, dict[str, Any], dict[str, dict[str, Any]]]], path: Path) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("bench_impairment: no PNG (matplotlib is not installed: pip install 'farview[bench]')",
              file=sys.stderr)
        return False
    fig, axes = plt.subplots(len(results), 1, figsize=(10, 2.6 * len(results)), squeeze=False)
    for ax, (cond, doc, rows) in zip(axes[:, 0], results, strict=True):
        for mode, style in zip(MODES, ("-", "--"), strict=True):
            timing = doc.get("timing", {}).get(mode)
            if not timing:
                continue
            pairs = [(a, b) for a, b in itertools.pairwise(timing["received_bytes"]) if b[0] > a[0]]
            ax.plot([(a[0] + b[0]) / 2 for a, b in pairs],
                    [(b[1] - a[1]) * 8 / 1e6 / (b[0] - a[0]) for a, b in pairs], style, label=f"{mode} received")
        target = [(r["t"], r["target_bitrate"] / 1e6) for r in doc["frames"].get("farview", [])
                  if r["target_bitrate"]]
        if target:
            ax.step([t for t, _ in target], [v for _, v in target], where="post", alpha=0.7,
                    label="farview encoder target")
        for t, what in rows.get("farview", {}).get("events", []):
            ax.axvline(t, color="grey", linestyle=":")
            ax.annotate(what, (t, ax.get_ylim()[1] * 0.9), fontsize=7, color="grey")
        ax.set_title(cond.name, fontsize=9)
        ax.set_ylabel("Mbit/s")
        ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("seconds from the start of measuring")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return True


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=8.0,
                   help="seconds measured per mode (the capped row measures at least 13)")
    p.add_argument("--only", action="append", default=[], metavar="TEXT",
                   help="run only the conditions whose name contains TEXT (repeatable; the clean row "
                   "always runs: the others are compared with it)")
    p.add_argument("--no-baseline", action="store_true", help="farview only, not stock aiortc")
    p.add_argument("--min-bitrate", metavar="BPS",
                   help="farview's floor for its target (farview bench --min-bitrate; default 500k)")
    p.add_argument("--cap", action="append", type=float, default=[], metavar="MBIT",
                   help="the cap row narrows the link from 8 Mbit/s to MBIT (repeatable: a row for each; "
                   "default 3, the issue's)")
    p.add_argument("--intra-refresh", action="store_true",
                   help="farview heals losses with a periodic intra-refresh sweep instead of keyframes")
    p.add_argument("--verify", action="store_true",
                   help="the host burns each frame's pose into its pixels and the client reads it back: "
                   "pictures that show the wrong pose (a decoder's concealment) are counted, and frame rate "
                   "and longest gap are also given over the correct pictures only")
    p.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="run every row N times (farview and stock aiortc alternate within each) and add "
                   "a table of the medians and of how many runs farview did better than stock aiortc, "
                   "the same, and worse")
    p.add_argument("--output", type=Path, metavar="DIR", help="write the table, the runs' JSON and a PNG here")
    p.add_argument("--workdir", type=Path, metavar="DIR",
                   help="keep the service's data and logs (the host's log among them) here")
    args = p.parse_args()
    if args.repeat < 1:
        p.error("--repeat takes 1 or more")
    if (reason := skip_reason()) is not None:
        print(f"bench_impairment: cannot build separated hosts here: {reason}", file=sys.stderr)
        return 2
    chosen = [c for c in conditions(tuple(args.cap) or (3.0,))
              if c.name == "clean" or not args.only or any(t in c.name for t in args.only)]
    results: list[tuple[Condition, dict[str, Any], dict[str, dict[str, Any]]]] = []
    clean_p99: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name) if args.workdir is None else args.workdir
        tmp.mkdir(parents=True, exist_ok=True)
        with routed_hosts("bi") as net, farview_service(net.server, tmp, "--port", "0") as svc:
            server, client = net.server, net.client
            _create(client, svc.info, svc.account, svc.key_file)
            runs = [(k, cond) for k in range(args.repeat) for cond in chosen]
            for i, (k, cond) in enumerate(runs):
                print(f"[bench_impairment] {cond.name}" + (f" (run {k + 1} of {args.repeat})" if args.repeat > 1
                                                          else "") + " ...", file=sys.stderr, flush=True)
                duration = max(args.duration, cond.min_duration, max((t for t, _ in cond.events), default=0) + 3)
                with (delayed(net.middle, *cond.delay, tmp / f"relay{i}.log") if cond.delay
                      else contextlib.nullcontext()):
                    doc, applied = _bench(client, svc, cond, duration, tmp / f"row{i}", server,
                                          not args.no_baseline,
                                          ("--intra-refresh",) * args.intra_refresh + ("--verify",) * args.verify
                                          + (("--min-bitrate", args.min_bitrate) if args.min_bitrate else ()))
                rows = {mode: _row(doc, mode, cond, applied.get(mode, []), clean_p99) for mode in doc["summary"]
                        if isinstance(doc["summary"][mode], dict) and "latency_pose_to_present" in doc["summary"][mode]}
                if cond.name == "clean":
                    clean_p99 = {m: r["p99"] for m, r in rows.items() if r["p99"]}
                results.append((cond, doc, rows))
                if args.output is not None:
                    args.output.mkdir(parents=True, exist_ok=True)
                    slug = "".join(ch if ch.isalnum() else "-" for ch in cond.name).strip("-")
                    (args.output / f"impairment-{i}-{slug}.json").write_text(json.dumps(doc))
    lines = [f"impaired network, 1280x720 at 60 fps, {args.duration:g} s measured per mode (at least 13 s "
             "for the cap), sample model, headless; loss is random UDP loss both ways"
             + ("; farview with intra refresh" if args.intra_refresh else ""),
             f"{'condition':<22} {'mode':<12} {'fps':>5} {'longest gap':>11} {'>100 ms':>7} {'p50 ms':>7} "
             f"{'p99 ms':>7} {'Mbit/s':>7} {'keyframes':>9}  dynamic"]

    def num(v: Any, fmt: str) -> str:
        return format(v, fmt) if v is not None else "—"

    for i, (cond, _doc, rows) in enumerate(results):
        if args.repeat > 1 and i % len(chosen) == 0:
            lines.append(f"run {i // len(chosen) + 1} of {args.repeat}")
        for mode, r in rows.items():
            extra = ""
            if "recovery_ms" in r:
                extra = f"next picture {num(r['recovery_ms'], '.0f')} ms after the burst"
            if "under_cap_s" in r:
                extra = (f"target under {cond.cap_mbit:g} in {num(r['under_cap_s'], '.2f')} s; p99 5 s on "
                         f"{num(r['p99_5s_after_cap'], '.1f')} ms ({num(r['p99_ratio_5s_after_cap'], '.2f')}× "
                         f"clean); target ≥ 6 Mbit/s {num(r['back_over_6_mbit_s'], '.1f')} s after the cap went")
            if "wrong" in r:
                extra += (f"{'; ' if extra else ''}{r['wrong']} shown wrong; correct pictures "
                          f"{r['correct_fps']:.1f} fps, longest gap {num(r['correct_longest_gap'], '.0f')} ms")
            lines.append(f"{cond.name:<22} {mode:<12} {r['fps']:>5.1f} {num(r['longest_gap'], '>11.0f')} "
                         f"{r['freezes']:>7} {num(r['p50'], '>7.1f')} {num(r['p99'], '>7.1f')} "
                         f"{num(r['kbps'] and r['kbps'] / 1000, '>7.2f')} {num(r['keyframes'], '>9')}  {extra}")
    if args.repeat > 1:
        lines += ["", *medians_table(chosen, [rows for _, _, rows in results], args.repeat)]
    print("\n" + "\n".join(lines))
    if args.output is not None:
        (args.output / "impairment.txt").write_text("\n".join(lines) + "\n")
        if _plot(results[:len(chosen)], args.output / "impairment-bitrate.png"):  # the first run
            print(f"plot: {args.output / 'impairment-bitrate.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
