"""``farview view SESSION_ID`` and ``farview demo [MODEL]``: the desktop viewer commands.

``view`` connects to a running session. ``demo`` does everything on this machine: it uses the
local session service (starting one, with its defaults, if none runs), creates a session with
the shipped sample model (or MODEL), waits for it, shows the viewer, and on window close or
Ctrl+C stops the session and any service it started, leaving no process behind.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from farview.client.errors import FarviewError, SessionStateError
from farview.client.viewer.app import (
    EXIT_CONNECT_FAILED,
    EXIT_OK,
    EXIT_SESSION_ENDED,
    EXIT_USAGE,
    StreamWorker,
    ViewerResult,
    print_result,
    run_headless,
    run_window,
)
from farview.client.viewer.controls import KEY_HELP
from farview.input.launch import lease_argument, seconds_argument
from farview.streaming.frame import Frame
from farview.streaming.mailbox import LatestMailbox

VIEWER_EPILOG = ("keys and mouse:\n" + "\n".join(f"  {line}" for line in KEY_HELP.splitlines())
                 + "\n\nexit status:\n  0  closed, or --duration ran out\n  1  the viewer failed (a "
                 "bug: report it)\n  2  usage\n  3  the session ended\n  4  another client is "
                 "connected\n  5  no connection: none before --duration ran out, none again\n"
                 "     after a drop when it ran out, or the service could not be reached")


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 1280x720, got {text!r}") from None
    if not (16 <= w <= 7680 and 16 <= h <= 7680):
        raise argparse.ArgumentTypeError(f"size {w}x{h} is outside 16..7680 pixels")
    return w, h


def add_bitrate_options(g: Any) -> None:
    """``--max-bitrate`` / ``--min-bitrate`` (the range the stream's congestion control keeps
    to) and ``--intra-refresh``."""
    from farview.input.launch import bitrate_argument

    g.add_argument("--max-bitrate", type=bitrate_argument, metavar="BPS",
                   help="the most video bit rate to use, bit/s (3M, 500k; default: the host's, 8M unless "
                   "farview serve --max-bitrate says otherwise; more than the host's is refused)")
    g.add_argument("--min-bitrate", type=bitrate_argument, metavar="BPS",
                   help="the least the stream's congestion control may lower it to (default: the host's, 500k)")
    g.add_argument("--intra-refresh", action="store_true", default=None,
                   help="heal lost packets with a periodic intra-refresh sweep (half a second) instead of "
                   "keyframes on request: no large frames, slower recovery")


def check_bitrate_options(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.min_bitrate and args.max_bitrate and args.min_bitrate > args.max_bitrate:
        p.error(f"--min-bitrate {args.min_bitrate} is above --max-bitrate {args.max_bitrate}")


def check_headset_options(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse headset options that the chosen mode would ignore (they were silently ignored)."""
    headset = getattr(args, "headset", None)
    given = [(flag, mode) for flag, mode, used in (
        ("--trace", "sim", args.trace != p.get_default("trace")),
        ("--xr-graphics", "openxr", args.xr_graphics != p.get_default("xr_graphics")),
        ("--no-prediction", None, not args.prediction),
        ("--no-reprojection", None, not args.reprojection)) if used]
    for flag, mode in given:
        if headset is None:
            p.error(f"{flag} applies to headset mode only: add --headset {mode or 'sim|openxr'}")
        if mode is not None and headset != mode:
            p.error(f"{flag} applies to --headset {mode} only, not --headset {headset}")
    # --size with a headset: the simulated one's stereo frame (each eye half as wide; it was
    # ignored: 640x240 whatever was asked); a real one's eyes are the runtime's
    args.eye_size = None
    if headset and tuple(args.size) != tuple(p.get_default("size")):
        if headset == "openxr":
            p.error("--size does not apply to --headset openxr: the runtime's eye size is used")
        w, h = args.size
        if w % 2:
            p.error(f"--size {w}x{h} with --headset sim is both eyes side by side: give an even width")
        args.eye_size = (w // 2, h)


async def apply_stream_options(conn: Any, args: argparse.Namespace) -> None:
    """Ask the host for the stream settings the command line gives: the bit rate range, intra
    refresh (closing ``conn`` and raising
    :class:`~farview.client.errors.RemoteError` if the host refuses it)."""
    from farview.client.errors import RemoteError

    settings = {k: v for k in ("max_bitrate", "min_bitrate", "intra_refresh")
                if (v := getattr(args, k, None)) is not None}
    if not settings:
        return
    try:
        await conn.request("configure_stream", **settings)
    except RemoteError as exc:
        await conn.close()
        raise RemoteError(exc.code, f"the host refused the stream options: {exc.message}") from None


def add_viewer_options(p: argparse.ArgumentParser) -> None:
    from farview.client.cli.session import add_service_options

    add_service_options(p)
    g = p.add_argument_group("viewer")
    g.add_argument("--headless", action="store_true",
                   help="run the same pipeline without a window (servers, tests); the camera "
                   "starts at the home view and turns slowly around the model (0.01 rad a pose: "
                   "0.6 rad/s at --rate 60), so --screenshot shows it from where the turn ended")
    g.add_argument("--screenshot", type=Path, metavar="PATH",
                   help="write the last presented frame as PNG on exit")
    g.add_argument("--duration", type=seconds_argument, metavar="SECONDS", help="exit after this long")
    g.add_argument("--size", type=_size, default=(1280, 720), metavar="WxH",
                   help="window (or headless stream) size, default 1280x720; with --headset sim "
                   "the stereo frame, both eyes side by side (default 640x240)")
    g.add_argument("--no-vsync", dest="vsync", action="store_false",
                   help="do not wait for the display's refresh (lower latency, tearing)")
    g.add_argument("--fullscreen", action="store_true", help="start fullscreen (F11 toggles)")
    g.add_argument("--pose-rate", type=float, metavar="HZ",
                   help="also send the camera pose at this rate, faster than the display")
    g.add_argument("--rate", type=float, default=60.0, metavar="HZ",
                   help="headless only: poses per second (default 60); frames are taken as they arrive")
    add_bitrate_options(g)
    g.add_argument("--relay-only", action="store_true",
                   help="media only through the TURN server the service names, even where a "
                   "direct path exists (to check a TURN deployment)")
    h = p.add_argument_group("headset (stereo)")
    h.add_argument("--headset", choices=("sim", "openxr"),
                   help="stereo at the headset's rate: 'sim' replays a head-motion trace (--trace), "
                   "'openxr' uses the OpenXR runtime's headset (pip install 'farview[openxr]')")
    h.add_argument("--xr-graphics", choices=("auto", "egl", "glx"), default="auto",
                   help="--headset openxr: how frames reach the runtime: OpenGL through EGL "
                   "(XR_MNDX_egl_enable, no window), through GLX (XR_KHR_opengl_enable, needs X), or "
                   "auto (EGL where the runtime has it); --headless asks for XR_MND_headless instead "
                   "(poses only, nothing displayed)")
    h.add_argument("--trace", default="headturn", metavar="headturn|PATH",
                   help="--headset sim: the generated fast head turn (default) or a CSV/JSON trace file")
    h.add_argument("--no-prediction", dest="prediction", action="store_false",
                   help="render for the newest head pose, not the one predicted for display time")
    h.add_argument("--no-reprojection", dest="reprojection", action="store_false",
                   help="show frames as rendered, without turning them to the newest head pose")


def run_viewer(session: Any, args: argparse.Namespace, title: str) -> ViewerResult:
    """Show ``session`` (a RenderingSession) until closed; returns how it ended."""
    from farview.client.connection import connect_session

    mailbox: LatestMailbox[Frame] = LatestMailbox()

    async def connect(frames: LatestMailbox[Frame]) -> Any:
        conn = await connect_session(session, viewport=args.size, mailbox=frames,
                                     relay_only=args.relay_only)
        await apply_stream_options(conn, args)
        print(f"farview: connected; media path {conn.ice_path or 'unknown'} "
              "(host-host: direct; relay-*: through TURN)", file=sys.stderr, flush=True)
        return conn

    async def session_check() -> str | None:
        props = await asyncio.to_thread(session.get_properties)
        if props.is_terminal:
            detail = f": {props.error['message']}" if getattr(props, "error", None) else ""
            if "create a new session" in detail:  # (the service's message says it already)
                return f"session {session.id} is {props.status}{detail}"
            return f"session {session.id} is {props.status}{detail}; create a new session"
        return None

    if getattr(args, "headset", None):
        from farview.client.headset.app import run_headset_cli

        return run_headset_cli(session, args, title, session_check)
    worker = StreamWorker(connect, mailbox, session_check=session_check, pose_rate=args.pose_rate)
    if args.headless:
        return run_headless(worker, mailbox, size=args.size, rate=args.rate,
                            duration=args.duration, screenshot=args.screenshot)
    return run_window(worker, mailbox, size=args.size, vsync=args.vsync,
                      fullscreen=args.fullscreen, duration=args.duration,
                      screenshot=args.screenshot, title=title)


def _check_display(args: argparse.Namespace) -> str | None:
    if args.headless or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    if getattr(args, "headset", None) == "openxr":
        return None  # the runtime displays; its EGL binding needs no window (GLX says so itself)
    from farview.client.viewer.window import NO_DISPLAY_MESSAGE

    return NO_DISPLAY_MESSAGE


def view_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="farview view", description="Show a running session's stream in a window.",
        epilog=VIEWER_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("session_id")
    add_viewer_options(p)
    args = p.parse_args(argv)
    check_bitrate_options(p, args)
    check_headset_options(p, args)
    if (msg := _check_display(args)) is not None:
        print(f"farview: {msg}", file=sys.stderr)
        return EXIT_USAGE
    from farview.client.cli.session import client_from_args

    session = None
    try:
        with client_from_args(args) as rest:
            session = rest.open_rendering_session(args.session_id)
            session.wait_until_ready(timeout=5.0)
            session.wait_for_models()
            result = run_viewer(session, args, f"farview — {args.session_id}")
    except FarviewError as exc:
        print(f"farview: {exc}", file=sys.stderr)
        # (a session that had ended exited 5 here, and 3 once the view had started)
        ended = isinstance(exc, SessionStateError) and session is not None and \
            session.properties.is_terminal
        return EXIT_SESSION_ENDED if ended else EXIT_CONNECT_FAILED
    print_result(result, sys.stderr)
    return result.exit_code


# -- demo ------------------------------------------------------------------------------------


def _progress(text: str) -> None:
    print(f"[farview demo] {text}", file=sys.stderr, flush=True)


def _demo_session(rest: Any, args: argparse.Namespace, model: str | None) -> int:
    """Create the demo session, show it, and stop it whatever happens."""
    _progress("creating a session…")
    session = rest.create_session(max_lease_time_minutes=args.lease,
                                  models=[model] if model else None)
    try:
        _progress(f"session {session.id}: waiting for its render host…")
        session.wait_until_ready(timeout=120.0)
        _progress("loading the model…")
        session.wait_for_models()
        _progress("connecting…")
        result = run_viewer(session, args, f"farview demo — {session.id}")
        print_result(result, sys.stderr)
        return result.exit_code
    except FarviewError as exc:  # (said before "stopping session…", which it causes)
        print(f"farview: {exc}", file=sys.stderr)
        return EXIT_CONNECT_FAILED
    finally:
        _progress(f"stopping session {session.id}…")
        try:
            session.stop()
        except FarviewError as exc:
            print(f"farview: could not stop session {session.id}: {exc}", file=sys.stderr)


def demo_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="farview demo",
        description="Start everything on this machine and show a remotely rendered model: the "
        "local session service (started if none runs), a session with the shipped sample "
        "model (or MODEL), and the viewer. Closing the window or Ctrl+C stops the session.",
        epilog=VIEWER_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", help="model to show instead of the sample: a name in "
                   "the host's model store, a path on this machine, or an http(s) URL")
    p.add_argument("--model", dest="model_opt", metavar="PATH_OR_URL", help="same as MODEL")
    p.add_argument("--lease", type=lease_argument, default=60, help="session lease in minutes (default 60)")
    add_viewer_options(p)
    args = p.parse_args(argv)
    check_bitrate_options(p, args)
    check_headset_options(p, args)
    model = args.model_opt or args.model
    if model and os.path.exists(model):
        model = str(Path(model).resolve())
    if (msg := _check_display(args)) is not None:
        print(f"farview: {msg}", file=sys.stderr)
        return EXIT_USAGE
    from farview.client.cli.session import client_from_args, service_url
    from farview.client.local import embedded_service

    code = EXIT_OK
    try:
        with embedded_service(args.data_dir, wanted=not service_url(args), progress=_progress), \
                client_from_args(args) as rest:
            code = _demo_session(rest, args, model)
    except KeyboardInterrupt:
        code = EXIT_OK
    except FarviewError as exc:
        print(f"farview: {exc}", file=sys.stderr)
        code = EXIT_CONNECT_FAILED
    return code


def main(argv: list[str]) -> int:  # pragma: no cover - dispatch helper
    return view_main(argv)
