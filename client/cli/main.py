"""The ``farview`` command: one entry point, a subcommand per job, each in its own module."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from types import FrameType

# subcommand → (module, one-line help). Modules are imported lazily so that `farview session`
# never loads OpenGL or aiortc.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("farview.service.cli", "run the session service (REST API, local host pool)"),
    "session": ("farview.client.cli.session", "create, show, list, renew or stop sessions; load models into them"),
    "demo": ("farview.client.cli.view:demo_main", "start everything locally and show the sample model"),
    "view": ("farview.client.cli.view:view_main", "show a running session's stream in a window"),
    "bench": ("farview.client.cli.bench:main", "measure latency end to end, stage by stage"),
    "convert": ("farview.host.convert:cli_main",
                "convert a model (glTF, FBX, OBJ, STL, PLY, COLLADA, 3DS, OFF) or a point "
                "cloud (LAS, LAZ, E57, XYZ) into one optimised .glb"),
    "host": ("farview.host.main", "run one render host (started by the service, not by hand)"),
}


OWN_SIGNALS = frozenset({"serve", "convert", "host"})
"""Commands that handle SIGTERM themselves; the others stop on it as on Ctrl+C."""


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _usage() -> str:
    lines = ["usage: farview <command> [options]", "", "commands:"]
    for name, (_mod, help_text) in SUBCOMMANDS.items():
        lines.append(f"  {name:<10} {help_text}")
    lines += ["", "Run `farview <command> --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if args[0] == "--version":
        from importlib.metadata import version

        print(f"farview {version('farview')}")
        return 0
    name = args[0]
    if name not in SUBCOMMANDS:
        print(f"farview: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    import importlib

    module_name, _, func = SUBCOMMANDS[name][0].partition(":")
    module = importlib.import_module(module_name)
    entry: Callable[[list[str]], int] = getattr(module, func or "main")
    if name not in OWN_SIGNALS:
        # `timeout`, a service manager or a closed terminal ends a command as Ctrl+C does, so
        # that it stops the session it created (it was left Ready for its whole lease)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _interrupt)
    return entry(args[1:])


if __name__ == "__main__":
    sys.exit(main())
