"""``farview bench``: measure latency end to end, stage by stage, with proof from the pixels.

Runs, in order, on one session's render host: farview's stream, then (unless ``--no-baseline``)
stock aiortc with the same poses, then (unless ``--no-floor``) the in-process floor
(:mod:`farview.client.bench.floor`, a child process). Prints a table, writes ``bench-WxH-FPS.json``
and ``.png`` to ``--output``. The machinery is :mod:`farview.client.bench.run`; summaries and the plot are
:mod:`farview.client.bench.report`.

Session: ``--session ID`` uses a running session (found through the usual service options);
otherwise the bench uses the local service (starting one, as ``farview demo`` does, if none
runs), creates a session with ``--model`` (default: the shipped sample), and stops the session
and any service it started when done.

Display: a window when a display exists (``DISPLAY``/``WAYLAND_DISPLAY``), else, or with
``--headless``, no window: "present" is then the moment the display loop takes the frame.

Exit status: 0 done; 1 ``--verify`` found frames whose pixels disagree with their metadata;
2 usage; 5 the service, session or stream failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from farview.client.cli.session import add_account_key_options
from farview.client.errors import FarviewError
from farview.input.launch import (
    DEFAULT_MAX_BITRATE,
    DEFAULT_MIN_BITRATE,
    bitrate_argument,
    lease_argument,
    python_module,
)

log = logging.getLogger(__name__)

EXIT_OK, EXIT_MISMATCH, EXIT_USAGE, EXIT_FAILED = 0, 1, 2, 5
PLOT_EXTRA_HINT = "pip install 'farview[bench]'"
FLOOR_TIMEOUT_S = 300.0


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"resolution must look like 1280x720, got {text!r}") from None
    if w % 2 or h % 2 or not (16 <= w <= 4096 and 16 <= h <= 4096):
        raise argparse.ArgumentTypeError(f"resolution {w}x{h} must be even and within 16..4096")
    return w, h


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="farview bench", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Drive a scripted camera through a render host and measure where every millisecond "
        "goes: pose → receive → present with host stages, network and decode; the same poses through "
        "stock aiortc; and the in-process floor.",
        epilog="trajectories: orbit (circle the model, 45°/s), shake (fast small turns, ~4° at 4–9 Hz), "
        "trace:FILE or --trajectory trace --trace-file FILE (CSV t,px,py,pz,qx,qy,qz,qw or JSON "
        "{\"samples\": [...]}, looped).\nexample: farview bench --resolution 1280x720 --fps 60 "
        "--duration 10 --verify --headless --output bench-out")
    p.add_argument("--resolution", type=_size, default=(1280, 720), metavar="WxH", help="default 1280x720")
    p.add_argument("--fps", type=int, default=60, help="poses per second and host frame cap (default 60)")
    p.add_argument("--duration", type=float, default=10.0, metavar="S", help="measured seconds per mode (default 10)")
    p.add_argument("--warmup", type=float, default=3.0, metavar="S",
                   help="seconds streamed before measuring, per mode (default 3; llvmpipe warms up)")
    p.add_argument("--model", help="model for a new session and the floor: store name or path (default: sample)")
    p.add_argument("--trajectory", default="orbit", metavar="orbit|shake|headturn|trace[:FILE]")
    p.add_argument("--stereo", action="store_true",
                   help="send two views (a simulated headset; each eye is half the --resolution wide), "
                   "rendered side by side; pair with --trajectory headturn")
    p.add_argument("--trace-file", metavar="FILE", help="the trace for --trajectory trace")
    p.add_argument("--session", metavar="ID", help="bench a running session instead of creating one")
    p.add_argument("--headless", action="store_true",
                   help="no window even when a display exists (the floor then stops at the decoded picture too)")
    p.add_argument("--display-rate", type=float, default=None, metavar="HZ",
                   help="how often the display takes the newest frame (default: as soon as it is decoded, "
                   "as the viewer does; a window also redraws at least at 240 Hz, the viewer's cap without "
                   "vsync; 60 models a 60 Hz display)")
    p.add_argument("--max-bitrate", "--bitrate", dest="max_bitrate", type=bitrate_argument,
                   default=DEFAULT_MAX_BITRATE,
                   metavar="BPS", help="farview's video bit rate to start at and never exceed, bit/s (default "
                   f"{DEFAULT_MAX_BITRATE}; at most the host's --max-bitrate)")
    p.add_argument("--min-bitrate", type=bitrate_argument, default=DEFAULT_MIN_BITRATE, metavar="BPS",
                   help=f"the least congestion control lowers it to, bit/s (default {DEFAULT_MIN_BITRATE})")
    p.add_argument("--fixed-bitrate", dest="congestion_control", action="store_false",
                   help="no congestion control: farview's encoder stays at --max-bitrate")
    p.add_argument("--intra-refresh", action="store_true",
                   help="farview's encoder heals losses with a periodic intra-refresh sweep, not keyframes")
    p.add_argument("--output", type=Path, metavar="DIR", help="write bench-WxH-FPS.json and .png here")
    p.add_argument("--verify", action="store_true",
                   help="burn each frame's pose sequence into its pixels and check it after decoding")
    p.add_argument("--no-baseline", dest="baseline", action="store_false", help="skip stock aiortc")
    p.add_argument("--no-floor", dest="floor", action="store_false", help="skip the in-process floor")
    p.add_argument("--lease", type=lease_argument, default=30, help="lease in minutes of the session it creates")
    g = p.add_argument_group("service (as for `farview session`)")
    g.add_argument("--url", help="service URL (env FARVIEW_URL; default: the local service)")
    g.add_argument("--account-id", help="account id (env FARVIEW_ACCOUNT_ID)")
    add_account_key_options(g)
    g.add_argument("--data-dir", type=Path, help="the local service's data dir (default $FARVIEW_DATA_DIR "
                   "or ~/.local/share/farview)")
    g.add_argument("--ca-cert", metavar="FILE",
                   help="CA/certificate file to trust for https (as for every farview command)")
    return p


class ProgressBar:
    """One line on stderr, redrawn in place on a terminal, a line per mode otherwise."""

    def __init__(self, stream: Any = sys.stderr) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self._mode: str | None = None

    def __call__(self, mode: str, fraction: float, frames: int) -> None:
        if self.tty:
            filled = int(30 * fraction)
            self.stream.write(f"\r{mode:<13} [{'#' * filled}{'.' * (30 - filled)}] {fraction * 100:3.0f}%  "
                              f"{frames} frames ")
            self.stream.flush()
        elif mode != self._mode:
            self.stream.write(f"[farview bench] measuring {mode}…\n")
            self.stream.flush()
        self._mode = mode

    def done(self) -> None:
        if self.tty and self._mode is not None:
            self.stream.write("\n")
            self.stream.flush()
        self._mode = None


def _say(text: str) -> None:
    print(f"[farview bench] {text}", file=sys.stderr, flush=True)


def _find_host_pid(service_pid: int | None, session_id: str, *, newest: bool) -> int | None:
    """The render host of the session benched: the render-host child of the local service whose
    log (its stderr: ``hosts/ACCOUNT/SESSION.log``) is that session's; else the only one or
    (``newest``, a session the bench just created) the youngest. Hosts listen on loopback behind
    the service, so their address names none of them."""
    import contextlib

    import psutil

    from farview.input.launch import HOST_MODULE

    if service_pid is None:
        return None
    try:
        children = psutil.Process(service_pid).children(recursive=True)
    except psutil.Error:
        return None
    hosts, logged = [], []
    log_name = f"{session_id[:200]}.log"  # (the service cuts a file name at 200 characters)
    for child in children:
        with contextlib.suppress(psutil.Error):
            if HOST_MODULE in child.cmdline():
                hosts.append((child.create_time(), int(child.pid)))
                if any(f.fd == 2 and Path(f.path).name == log_name for f in child.open_files()):
                    logged.append(int(child.pid))
    if len(logged) == 1:
        return logged[0]
    if len(hosts) == 1 or (hosts and newest):
        return max(hosts)[1]
    return None


def _load_trajectory(args: argparse.Namespace) -> Any:
    from farview.input.pose_sources import parse_trace_csv, parse_trace_json
    from farview.input.trajectory import make_trajectory, parse_trajectory_spec

    spec = parse_trajectory_spec(args.trajectory, args.trace_file)
    trace = None
    if spec.trace_file:
        path = Path(spec.trace_file)
        parse = parse_trace_json if path.suffix.lower() == ".json" else parse_trace_csv
        trace = parse(path.read_text(encoding="utf-8"), name=path.name)
    return spec, make_trajectory(spec, trace)


def _run_floor(args: argparse.Namespace, spec: Any) -> dict[str, Any] | None:
    w, h = args.resolution
    cmd = [*python_module("farview.client.bench.floor"), "--resolution", f"{w}x{h}", "--fps", str(args.fps),
           "--duration", str(args.duration), "--warmup-frames", str(max(0, round(args.warmup * args.fps))),
           "--trajectory", spec.kind]
    if spec.trace_file:
        cmd += ["--trace-file", spec.trace_file]
    if args.model:
        cmd += ["--model", args.model]
    if args.headless:
        cmd.append("--no-present")  # the floor does what the stream's client does
    _say("measuring the floor (render → encode → decode" + ("" if args.headless else " → upload")
         + " in one process)…")
    env = {k: v for k, v in os.environ.items() if k != "PYOPENGL_PLATFORM"}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=FLOOR_TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        _say("the floor measurement timed out; reported without it")
        return None
    if proc.returncode != 0:
        _say(f"the floor measurement failed; reported without it:\n{proc.stderr[-1500:]}")
        return None
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def output_stem(width: int, height: int, fps: int, stereo: bool) -> str:
    """The name of a run's JSON and plot: ``bench-WxH-FPS`` (``-stereo`` for two views, which
    a mono run into the same folder would otherwise overwrite)."""
    return f"bench-{width}x{height}-{fps}" + ("-stereo" if stereo else "")


def _run_config(args: argparse.Namespace, trajectory: Any) -> Any:
    """The run's settings, checked (before a session is made for them). Raises ValueError."""
    from farview.client.bench.run import StreamRunConfig

    w, h = args.resolution
    return StreamRunConfig(width=w, height=h, fps=args.fps, duration_s=args.duration,
                           warmup_s=args.warmup, trajectory=trajectory, headless=args.headless,
                           display_rate=args.display_rate, verify=args.verify,
                           max_bitrate=args.max_bitrate, min_bitrate=args.min_bitrate,
                           congestion_control=args.congestion_control,
                           intra_refresh=args.intra_refresh, stereo=args.stereo)


def _bench(session: Any, args: argparse.Namespace, spec: Any, trajectory: Any, host_pid: int | None,
           cfg: Any) -> int:
    from farview.client.bench.report import build_document, format_table, write_plot
    from farview.client.bench.run import _Display, run_stream
    from farview.client.connection import connect_session

    w, h = args.resolution

    async def connect(frames: Any, stock: bool) -> Any:
        conn = await connect_session(session, viewport=(w, h), mailbox=frames, stock_receiver=stock)
        _say(f"media path {conn.ice_path or 'unknown'}")
        return conn

    progress = ProgressBar()
    display = _Display(w, h, args.headless)
    runs = []
    try:
        for stock in ([False, True] if args.baseline else [False]):
            runs.append(run_stream(connect, cfg, stock=stock, host_pid=host_pid, display=display,
                                   progress=progress))
            progress.done()
            time.sleep(0.3)  # the host frees its client slot
    finally:
        display.close()
    floor = _run_floor(args, spec) if args.floor else None
    config = {"resolution": f"{w}x{h}", "fps": args.fps, "duration_s": args.duration, "warmup_s": args.warmup,
              "trajectory": trajectory.name, "model": args.model or "sample_engine", "headless": args.headless,
              "display_rate": args.display_rate, "max_bitrate": args.max_bitrate,
              "min_bitrate": args.min_bitrate, "congestion_control": args.congestion_control,
              "intra_refresh": args.intra_refresh, "verify": args.verify, "stereo": args.stereo,
              "session": session.id, "host_pid": host_pid, "command": "farview bench " + " ".join(args.argv)}
    doc = build_document(config, runs, floor)
    print(format_table(doc))
    if args.output is not None:
        args.output.mkdir(parents=True, exist_ok=True)
        stem = output_stem(w, h, args.fps, args.stereo)
        json_path = args.output / f"{stem}.json"
        json_path.write_text(json.dumps(doc, indent=1, allow_nan=False, default=str))
        print(f"\nwrote {json_path}")
        try:
            png = write_plot(doc, args.output / f"{stem}.png")
        except ImportError:  # the results are written: only the picture needs matplotlib
            print(f"no plot: it needs matplotlib, which {PLOT_EXTRA_HINT} installs", file=sys.stderr)
        else:
            print(f"wrote {png}")
    if args.verify and any(r.marker_mismatches for r in runs):
        print("farview bench: frames whose pixels disagree with their metadata: "
              + ", ".join(f"{r.mode} {r.marker_mismatches}" for r in runs), file=sys.stderr)
        return EXIT_MISMATCH
    return EXIT_OK


def _service_namespace(args: argparse.Namespace) -> argparse.Namespace:
    return argparse.Namespace(url=args.url, account_id=args.account_id, account_key_file=args.account_key_file,
                              data_dir=args.data_dir, verify=args.ca_cert)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(argv)
    if not args.headless and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        args.headless = True
    try:
        spec, trajectory = _load_trajectory(args)
        cfg = _run_config(args, trajectory)
    except (OSError, ValueError) as exc:
        print(f"farview bench: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from farview.client.cli.session import client_from_args, service_url
    from farview.client.local import embedded_service, find_local_service

    created = None
    local = not (service_url(args) or args.session)  # (FARVIEW_URL started a local one too)
    try:
        with embedded_service(args.data_dir, wanted=local, progress=_say) as service, \
                client_from_args(_service_namespace(args)) as rest:
            if args.session:
                session = rest.open_rendering_session(args.session)
                session.wait_until_ready(timeout=10.0)
                session.wait_for_models()
            else:
                _say("creating a session…")
                model = str(Path(args.model).resolve()) if args.model and os.path.exists(args.model) else args.model
                session = created = rest.create_session(max_lease_time_minutes=args.lease,
                                                        models=[model] if model else None)
            try:
                if created is not None:
                    _say(f"session {session.id}: waiting for its render host…")
                    session.wait_until_ready(timeout=120.0)
                    _say("loading the model…")
                    session.wait_for_models()  # a model that fails ends the bench with its message
                service_pid = service.pid if service is not None else None
                if service_pid is None and not args.url:
                    try:
                        service_pid = find_local_service(args.data_dir).pid
                    except FarviewError:
                        service_pid = None
                host_pid = _find_host_pid(service_pid, session.id, newest=created is not None)
                if host_pid is None:
                    _say("the render host is not a local process here; its CPU is not reported")
                return _bench(session, args, spec, trajectory, host_pid, cfg)
            finally:
                if created is not None:
                    _say(f"stopping session {created.id}…")
                    try:
                        created.stop()
                    except FarviewError as exc:
                        _say(f"could not stop session {created.id}: {exc}")
    except KeyboardInterrupt:
        return EXIT_FAILED
    except (FarviewError, ConnectionError, TimeoutError) as exc:
        print(f"farview bench: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))


__all__ = ["build_parser", "main", "output_stem"]
