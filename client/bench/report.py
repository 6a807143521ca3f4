"""``farview bench`` results: summaries, the JSON document, the table and the plot.

Pure data work on :class:`~farview.client.bench.run.StreamRunResult` and the floor's frame list; no network.
Summary names follow ARCHITECTURE.md's statistics (ARR's FrameStatistics in snake_case plus host
stages); each latency is a distribution ``{"p50", "p95", "p99", "max", "mean", "n"}`` in ms.
The plot uses matplotlib's Agg backend (no display needed). Single-threaded.
"""

from __future__ import annotations

import itertools
import math
import os
import platform
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from farview.client.bench.run import FrameRecord, StreamRunResult
from farview.streaming.stats import percentile

SCHEMA_VERSION = 1
STAGES = ("wait", "render", "readback", "convert", "encode", "network", "decode", "queue", "upload",
          "draw")
"""The stages of pose → present, in order; their sum is a presented frame's pose → present."""
FLOOR_STAGES = ("render", "convert", "readback", "encode", "decode", "upload", "draw")


def distribution(values: list[float | None]) -> dict[str, float | int | None]:
    """p50/p95/p99/max/mean (ms) of the non-None values; None everywhere when there are none."""
    v = [x for x in values if x is not None]
    if not v:
        return {"p50": None, "p95": None, "p99": None, "max": None, "mean": None, "n": 0}
    return {"p50": percentile(v, 50), "p95": percentile(v, 95), "p99": percentile(v, 99),
            "max": max(v), "mean": sum(v) / len(v), "n": len(v)}


def machine_info() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu_model": model or platform.processor(), "cpu_count": os.cpu_count(),
            "platform": platform.platform(), "python": platform.python_version()}


def summarize_run(run: StreamRunResult) -> dict[str, Any]:
    recs = run.records
    shown = [r for r in recs if r.presented]
    own = [own_stages_ms(r) for r in shown] if run.mode == "farview" else None
    times = [r.t for r in recs]
    deltas = [(b - a) * 1000 for a, b in itertools.pairwise(times)]
    present_times = sorted(r.t + ((r.pose_to_present_ms or 0) - (r.pose_to_receive_ms or 0)) / 1000 for r in shown)
    size = sum(r.size_bytes for r in recs)
    out: dict[str, Any] = {
        "mode": run.mode,
        "measured_s": run.measured_s,
        "latency_pose_to_receive": distribution([r.pose_to_receive_ms for r in shown]),
        "latency_receive_to_present": distribution([r.receive_to_present_ms for r in shown]),
        "latency_pose_to_present": distribution([r.pose_to_present_ms for r in shown]),
        "latency_present_to_display": None,
        "time_since_last_present": max(
            ((b - a) * 1000 for a, b in itertools.pairwise(present_times)), default=None),
        "freezes_over_100ms": sum(1 for a, b in itertools.pairwise(present_times) if b - a > 0.1),
        "keyframes": sum(1 for r in recs if r.keyframe),
        "video_frames_received": len(recs),
        "video_frames_presented": len(shown),
        "video_frames_reused": run.frames_reused,
        "video_frames_skipped": run.frames_skipped,
        "video_frames_discarded": len(recs) - len(shown) + run.frames_discarded_unmatched,
        "video_frame_min_delta": min(deltas, default=None),
        "video_frame_max_delta": max(deltas, default=None),
        "poses_sent": run.poses_sent,
        "host_poses": run.extra.get("host_poses"),
        "fps_received": len(recs) / run.measured_s if run.measured_s > 0 else None,
        "fps_presented": len(shown) / run.measured_s if run.measured_s > 0 else None,
        "host_wait": distribution([r.wait_ms for r in shown]),
        "host_render": distribution([r.render_ms for r in shown]),
        "host_readback": distribution([r.readback_ms for r in shown]),
        "host_convert": distribution([r.convert_ms for r in shown]),
        "host_encode": distribution([r.encode_ms for r in shown]) if run.mode == "farview" else None,
        # the floor's stages as this very frame took them (render, readback, convert, encode,
        # decode; upload and draw when a window presented it), and what the stream added to them
        "own_stages": distribution(own) if own is not None else None,
        "stream_overhead": distribution([_minus(r.pose_to_present_ms, o) for r, o in zip(shown, own, strict=True)])
        if own is not None else None,
        "network": distribution([r.network_ms for r in shown]),
        "decode": distribution([r.decode_ms for r in shown]),
        "queue": distribution([r.queue_ms for r in shown]),
        "upload": distribution([r.upload_ms for r in shown]),
        "draw": distribution([r.draw_ms for r in shown]),
        "network_rtt": run.rtt_ms,
        "bitrate_kbps": size * 8 / 1000 / run.measured_s if size and run.measured_s > 0 else None,
        "cpu_percent": run.cpu_percent,
    }
    if run.config.verify:
        checked = sum(1 for r in recs if r.marker_sequence is not None)
        out["verify"] = {
            "frames_checked": checked + run.marker_unreadable,
            "mismatches": run.marker_mismatches,
            "unreadable": run.marker_unreadable,
            "latency_pose_to_present_from_pixels": distribution([r.pixel_pose_to_present_ms for r in shown]),
        }
    return out


OWN_STAGES = ("render", "readback", "convert", "encode", "decode", "upload", "draw")


def own_stages_ms(rec: FrameRecord) -> float | None:
    """The sum of the floor's stages for one streamed frame, as that frame took them (upload and
    draw count when they ran, i.e. in a window); None when a host stage is missing."""
    values = [getattr(rec, f"{s}_ms") for s in OWN_STAGES]
    if any(v is None for v in values[:5]):
        return None
    return float(sum(v for v in values if v is not None))


def _minus(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None


def summarize_floor(floor: dict[str, Any]) -> dict[str, Any]:
    frames = floor["frames"]
    out: dict[str, Any] = {k: floor.get(k) for k in ("gl_renderer", "encoder", "model", "triangles")}
    out["present"] = bool(floor.get("present", True))
    out["frames"] = len(frames)
    for stage in FLOOR_STAGES:
        out[stage] = distribution([f[f"{stage}_ms"] for f in frames])
    out["total"] = distribution([f["total_ms"] for f in frames])
    out["total_without_present"] = distribution([f["total_without_present_ms"] for f in frames])
    return out


def _p50(d: dict[str, Any] | None, key: str) -> float | None:
    value = (d or {}).get(key) or {}
    p = value.get("p50") if isinstance(value, dict) else None
    return float(p) if p is not None else None


def ratios(summaries: dict[str, dict[str, Any]], floor: dict[str, Any] | None, headless: bool) -> dict[str, Any]:
    """End-to-end / floor (headless compares with the floor without upload and draw, since
    headless presentation does neither) and stock / farview, both on pose → present p50."""
    ours = _p50(summaries.get("farview"), "latency_pose_to_present")
    out: dict[str, Any] = {"pose_to_present_p50_ms": ours}
    # Same frames, same moment: immune to the machine changing speed between the stream and
    # the floor measurement (a shared VM does, in phases of seconds).
    own = _p50(summaries.get("farview"), "own_stages")
    out["own_stages_p50_ms"] = own
    out["end_to_end_over_own_stages"] = ours / own if ours and own else None
    out["stream_overhead_p50_ms"] = _p50(summaries.get("farview"), "stream_overhead")
    if floor is not None:
        ref = _p50(floor, "total_without_present" if headless else "total")
        out["floor_p50_ms"] = ref
        out["floor_compared"] = "total_without_present" if headless else "total"
        out["end_to_end_over_floor"] = ours / ref if ours and ref else None
    if "stock_aiortc" in summaries:
        stock = _p50(summaries["stock_aiortc"], "latency_pose_to_present")
        out["stock_pose_to_present_p50_ms"] = stock
        out["stock_over_farview"] = stock / ours if ours and stock else None
    return out


def build_document(config: dict[str, Any], runs: list[StreamRunResult], floor: dict[str, Any] | None) -> dict[str, Any]:
    summaries = {r.mode: summarize_run(r) for r in runs}
    floor_summary = summarize_floor(floor) if floor is not None else None
    return {
        "farview_bench": SCHEMA_VERSION,
        "config": config,
        "machine": machine_info() | ({"gl_renderer": floor.get("gl_renderer")} if floor else {}),
        "summary": summaries,
        "floor": floor_summary,
        "ratios": ratios(summaries, floor_summary, bool(config.get("headless"))),
        "frames": {r.mode: [asdict(rec) for rec in r.records] for r in runs},
        "floor_frames": floor["frames"] if floor is not None else None,
        "timing": {r.mode: {"start_perf": r.start_perf, "received_bytes": r.received_bytes} for r in runs},
    }


def _fmt(v: Any, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def format_table(doc: dict[str, Any]) -> str:
    """The end-of-run table (plain text, also pasted into RESULTS.md)."""
    cfg = doc["config"]
    lines = [f"farview bench: {cfg['resolution']} at {cfg['fps']} poses/s, {cfg['duration_s']} s measured, "
             f"trajectory {cfg['trajectory']}, {'headless' if cfg['headless'] else 'window'}"
             + (", stereo (two views side by side)" if cfg.get("stereo") else "")]
    modes = list(doc["summary"])
    head = f"{'':<28}" + "".join(f"{m:>30}" for m in modes)
    lines += ["", head, f"{'(ms)':<28}" + "".join(f"{'p50 / p95 / p99 / max':>30}" for _ in modes)]
    rows = [("pose → receive", "latency_pose_to_receive"), ("receive → present", "latency_receive_to_present"),
            ("pose → present", "latency_pose_to_present"), ("  host wait (queued)", "host_wait"),
            ("  host render", "host_render"),
            ("  host readback", "host_readback"), ("  host convert", "host_convert"),
            ("  host encode", "host_encode"), ("  network (+queues)", "network"), ("  decode", "decode"),
            ("  wait for display", "queue"), ("  upload", "upload"), ("  draw + swap", "draw")]
    for label, key in rows:
        cells = []
        for m in modes:
            d = doc["summary"][m].get(key)
            cells.append("-" if not d or d.get("p50") is None else
                         " / ".join(_fmt(d[q]) for q in ("p50", "p95", "p99", "max")))
        lines.append(f"{label:<28}" + "".join(f"{c:>30}" for c in cells))
    for m in modes:
        if "verify" in doc["summary"][m]:
            v = doc["summary"][m]["verify"]
            d = v["latency_pose_to_present_from_pixels"]
            dist = " / ".join(_fmt(d[q]) for q in ("p50", "p95", "p99", "max"))
            lines.append(f"{'pose → present (pixels) ' + m:<28}{dist:>30}   checked {v['frames_checked']}, "
                         f"mismatches {v['mismatches']}, unreadable {v['unreadable']}")
    lines.append("")
    lines.append(f"{'':<28}" + "".join(f"{m:>30}" for m in modes))
    Row = tuple[str, Callable[[dict[str, Any]], str]]
    counts: list[Row] = [
              ("fps received / presented", lambda s: f"{_fmt(s['fps_received'])} / {_fmt(s['fps_presented'])}"),
              ("frames recv/skip/reuse/disc", lambda s: f"{s['video_frames_received']}/{s['video_frames_skipped']}/"
                                                        f"{s['video_frames_reused']}/{s['video_frames_discarded']}"),
              # (on a lossy link what a user notices first: the picture standing still)
              ("longest gap ms / gaps > 100 ms", lambda s: f"{_fmt(s.get('time_since_last_present'))} / "
                                                           f"{s.get('freezes_over_100ms', '-')}"),
              ("poses sent", lambda s: str(s["poses_sent"])),
              ("bitrate Mbit/s", lambda s: _fmt((s["bitrate_kbps"] or 0) / 1000 or None, 2)),
              ("CPU % host / client", lambda s: f"{_fmt(s['cpu_percent'].get('host'), 0)} / "
                                                f"{_fmt(s['cpu_percent'].get('client'), 0)}"),
              ("RTT (control ping)", lambda s: _fmt(s["network_rtt"]))]
    for label, fn in counts:
        lines.append(f"{label:<28}" + "".join(f"{fn(doc['summary'][m]):>30}" for m in modes))
    floor = doc.get("floor")
    if floor:
        lines.append("")
        if floor.get("present", True):
            lines.append("floor (one process, no network), p50 ms: " + ", ".join(
                f"{s} {_fmt(floor[s]['p50'], 2)}" for s in FLOOR_STAGES) +
                f"; total {_fmt(floor['total']['p50'])} "
                f"(without upload+draw {_fmt(floor['total_without_present']['p50'])})")
        else:
            lines.append("floor (one process, no network; no upload or draw, as the headless "
                         "client), p50 ms: " + ", ".join(
                             f"{s} {_fmt(floor[s]['p50'], 2)}" for s in FLOOR_STAGES[:5]) +
                         f"; total {_fmt(floor['total_without_present']['p50'])}")
    r = doc["ratios"]
    lines.append("")
    if r.get("end_to_end_over_floor") is not None:
        lines.append(f"end-to-end / floor (pose → present p50 / floor {r['floor_compared']} p50): "
                     f"{_fmt(r['pose_to_present_p50_ms'])} / {_fmt(r['floor_p50_ms'])} = "
                     f"{r['end_to_end_over_floor']:.2f}x")
    if r.get("end_to_end_over_own_stages") is not None:
        lines.append(f"end-to-end / its own stages (the floor's stages as the same frames took "
                     f"them, p50): {_fmt(r['pose_to_present_p50_ms'])} / "
                     f"{_fmt(r['own_stages_p50_ms'])} = {r['end_to_end_over_own_stages']:.2f}x; "
                     f"added by the stream (wait, network, hand-offs) p50 "
                     f"{_fmt(r['stream_overhead_p50_ms'])} ms")
    if r.get("stock_over_farview") is not None:
        lines.append(f"stock aiortc / farview (pose → present p50): {_fmt(r['stock_pose_to_present_p50_ms'])} / "
                     f"{_fmt(r['pose_to_present_p50_ms'])} = {r['stock_over_farview']:.2f}x")
    return "\n".join(lines)


def _stage_values(rec: FrameRecord | dict[str, Any], stage: str) -> float:
    value = (rec if isinstance(rec, dict) else asdict(rec)).get(f"{stage}_ms")
    return max(0.0, float(value)) if value is not None else 0.0


def write_plot(doc: dict[str, Any], path: Path) -> Path:
    """Latency over time stacked by stage (farview), and the pose → present histograms."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = doc["frames"]
    fig, (ax_time, ax_hist) = plt.subplots(2, 1, figsize=(11, 8), gridspec_kw={"height_ratios": [3, 2]})
    ours = [r for r in frames.get("farview", []) if r["presented"] and r["pose_to_present_ms"] is not None]
    if ours:
        t = [r["t"] for r in ours]
        stacks = [[_stage_values(r, s) for r in ours] for s in STAGES]
        ax_time.stackplot(t, *stacks, labels=list(STAGES), step="post")
        ax_time.plot(t, [r["pose_to_present_ms"] for r in ours], color="black", linewidth=0.6,
                     label="pose → present")
        pixels = [(r["t"], r["pixel_pose_to_present_ms"]) for r in ours if r.get("pixel_pose_to_present_ms")]
        if pixels:
            ax_time.scatter(*zip(*pixels, strict=True), s=3, color="red", label="from pixels", zorder=3)
    floor = doc.get("floor")
    # the floor figure the ratio uses: without upload and draw when headless
    compared = doc.get("ratios", {}).get("floor_compared") or "total"
    if floor and floor[compared]["p50"] is not None:
        ax_time.axhline(floor[compared]["p50"], color="grey", linestyle="--", linewidth=1,
                        label="floor p50" + (" (no upload/draw)" if compared != "total" else ""))
    cfg = doc["config"]
    ax_time.set_title(f"farview pose → present by stage, {cfg['resolution']} at {cfg['fps']} poses/s "
                      f"({cfg['trajectory']}{', stereo' if cfg.get('stereo') else ''})")
    ax_time.set_xlabel("time (s)")
    ax_time.set_ylabel("ms")
    ax_time.legend(loc="upper right", fontsize=7, ncol=4)
    for mode, colour in (("farview", "tab:blue"), ("stock_aiortc", "tab:orange")):
        values = [r["pose_to_present_ms"] for r in frames.get(mode, [])
                  if r["presented"] and r["pose_to_present_ms"] is not None]
        if values:
            ax_hist.hist(values, bins=60, alpha=0.6, color=colour,
                         label=f"{mode} (p50 {percentile(values, 50):.1f} ms)")
    if doc.get("floor_frames"):
        ax_hist.hist([f[f"{compared}_ms"] for f in doc["floor_frames"]], bins=60, alpha=0.5,
                     color="tab:green",
                     label=f"floor (p50 {floor[compared]['p50']:.1f} ms)" if floor else "floor")
    ax_hist.set_xlabel("pose → present (ms)")
    ax_hist.set_ylabel("frames")
    ax_hist.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


__all__ = ["build_document", "format_table", "percentile", "write_plot"]
