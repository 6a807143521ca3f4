"""The render-host process (``python -m farview.host``, started by the session service).

From its first instruction it watches its parent (the service) and ends when the parent is
gone (:func:`watch_parent`). Then it reads :class:`~farview.input.launch.HostConfig` from one
stdin line, binds its HTTP server, prints the listening line on stdout, loads its start-up
models (reporting each on stdout) and serves until SIGTERM/SIGINT. The service holds the host's
stdin open; EOF on it is not used as a signal, the service reaps hosts explicitly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import time

import uvicorn

from farview.host.app import create_app
from farview.input.ice import MediaNetwork
from farview.input.launch import HostConfig, listening_line, model_status_line, parse_stopping
from farview.streaming._aiortc_patches import set_media_network

log = logging.getLogger(__name__)
HOST_SWITCH_INTERVAL_S = 0.0005
"""The host process's GIL switch interval (see ``main``)."""


PARENT_POLL_S = 0.5


def watch_parent(parent_pid: int) -> threading.Thread:
    """From the host's first instruction: a thread that sends the host SIGTERM when the
    process that started it (the service) is gone, so no host outlives a dead service, even one
    that died while the host was still starting (before its event loop ran, SIGTERM's default
    ends the process; after, the loop's handler shuts it down cleanly)."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_POLL_S)
        log.warning("parent process %d is gone; host shutting down", parent_pid)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=watch, name="parent-watch", daemon=True)
    thread.start()
    return thread


def _read_service_messages(loop: asyncio.AbstractEventLoop, runtime: object) -> None:
    """Thread: further JSON lines from the service on stdin. ``{"event": "stopping", "reason":
    ...}`` says why the host is about to be stopped, so the client hears it (e.g. "expired")."""
    for line in sys.stdin:
        reason = parse_stopping(line)
        if reason is None:
            log.warning("ignoring a line from the session service on stdin that is not a stop")
            continue
        loop.call_soon_threadsafe(runtime.set_stop_reason, reason)  # type: ignore[attr-defined]


def _tell_service(line: str) -> None:
    """One line to the session service on stdout. A service that is gone (killed while this host
    started) left a BrokenPipeError traceback in the host's log; the host is told of its parent's
    death apart (``watch_parent``) and stops then."""
    try:
        print(line, flush=True)
    except BrokenPipeError:
        log.warning("the session service no longer reads this host's output; it is gone")
        # what is left in stdout's buffer then goes nowhere, at exit too (Python's own advice)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


async def serve(config: HostConfig, bind: str, port: int) -> None:
    from farview.host.runtime import HostRuntime

    set_media_network(config.media.addresses, config.media.ports)
    if config.media != MediaNetwork():
        log.info("media: addresses %s, UDP ports %s, announced %s",
                 ", ".join(config.media.addresses) or "every interface",
                 "{}-{}".format(*config.media.ports) if config.media.ports else "ephemeral",
                 config.media.announced or "none")
    runtime = HostRuntime(config)
    await runtime.start()
    app = create_app(config, runtime.signaling, runtime.scene_api)
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only when the proto says TCP (else ~40 ms per answer)
    sock = socket.socket(socket.AF_INET6 if ":" in bind else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((bind, port))
    sock.listen(64)
    sock.set_inheritable(False)
    uv_config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(uv_config)
    # Our own handlers: uvicorn's would re-raise the signal after shutdown (exit by signal).
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
    actual_port = sock.getsockname()[1]
    _tell_service(listening_line(bind, actual_port))
    threading.Thread(target=_read_service_messages, args=(loop, runtime), daemon=True,
                     name="service-messages").start()
    # the host answers first; its start-up models load meanwhile, each change told on stdout
    loads = asyncio.create_task(runtime.load_startup_models(
        lambda status: _tell_service(model_status_line(status))))
    try:
        await server.serve(sockets=[sock])
    finally:
        loads.cancel()
        await runtime.stop()


def main(argv: list[str] | None = None) -> int:
    watch_parent(os.getppid())
    parser = argparse.ArgumentParser(
        prog="farview host",
        description="Run one render host (started by `farview serve`; not meant to be run by hand). "
        "Reads its configuration as one JSON line on stdin.",
    )
    parser.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default 0: any free port)")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s host %(levelname)s %(name)s: %(message)s")
    line = sys.stdin.readline()
    try:
        config = HostConfig.from_json(line)
    except ValueError as exc:
        print(f"farview host: {exc}", file=sys.stderr)
        return 2
    # The event loop (RTP/SCTP) and the render thread share the GIL. The render thread drops it
    # hundreds of times a frame (every GL call) and takes it straight back, so the loop waited
    # up to the 5 ms default switch interval to send a finished frame's packets. 0.5 ms: in 3 of
    # 3 A/B bench pairs, network p50 fell 0.1-1.1 ms and pose -> present p50 1-6 ms.
    sys.setswitchinterval(HOST_SWITCH_INTERVAL_S)
    asyncio.run(serve(config, args.bind, args.port))
    return 0
