"""The ``rov-router`` command: builds the parser from the command modules in
``rov_router/commands/`` (each has ``add_parser(subparsers)`` and ``run(args)``), dispatches,
and turns the errors every command shares into one line on stderr and an exit status."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
from typing import NoReturn

from . import __version__
from .commands import analyze, cache, demo, lab, replay, rtr, run, show, validate
from .commands._common import CLIError, check_ports, raise_terminated
from .rpki.vrp import VRPFileError
from .rtr.dump import DumpError

# in the order `rov-router --help` lists them
COMMANDS = {
    "rtr": rtr,
    "validate": validate,
    "cache": cache,
    "run": run,
    "lab": lab,
    "show": show,
    "replay": replay,
    "demo": demo,
    "analyze": analyze,
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rov-router",
        description="A simulated BGP router with RPKI route origin validation (RTR v0/v1/v2).",
    )
    p.add_argument("--version", action="version", version=f"rov-router {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = p.add_subparsers(dest="command", required=True)
    for module in COMMANDS.values():
        module.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .procs import remember_terminal

    remember_terminal()
    # every command: SIGTERM unwinds like Ctrl-C (finally blocks stop children), exit 143;
    # commands that stop more gracefully install their own handlers on top
    signal.signal(signal.SIGTERM, raise_terminated)
    level = logging.WARNING - 10 * args.verbose
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr
    )
    try:
        check_ports(args)
        status = COMMANDS[args.command].run(args)
        if argv is None and getattr(args, "exit_without_teardown", False):
            _exit_now(status)  # the whole process (not a call from Python): no teardown
        return status
    except CLIError as e:
        print(f"rov-router: error: {e}", file=sys.stderr)
        return e.status
    except (VRPFileError, DumpError) as e:
        print(f"rov-router: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        return getattr(e, "status", 130)
    except BrokenPipeError:  # output piped into head & co.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return 0


def _exit_now(status: int) -> NoReturn:
    """End the process at once, for a command that has written all its output and files
    and set ``args.exit_without_teardown`` (``rtr --once``): the interpreter's teardown
    (freeing a 424k-VRP table node by node, module cleanup) only makes callers wait ~0.1 s
    longer.  The standard streams and logging are flushed here.  Skips atexit handlers: only
    for a process started from the command line (``main()`` with ``argv`` None)."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(status)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
