"""``rov-router run``: the router described by a TOML config."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from ._common import CLIError, Failed, add_web_arguments, hostport, verbose_parent


def add_parser(subparsers) -> None:
    """``run``: the router from a TOML config."""
    rn = subparsers.add_parser(
        "run",
        parents=[verbose_parent()],
        help="run the router: ExaBGP sessions -> ROV -> policy -> Loc-RIB -> downstream",
        description="Run the router described by a TOML config (see examples/router.toml). "
        "SIGUSR1 writes --state-file; SIGUSR2 applies a VRP file reload held back by max_shrink.",
    )
    rn.add_argument("--config", required=True, metavar="FILE", help="router TOML file")
    mode = rn.add_mutually_exclusive_group()
    mode.add_argument(
        "--json",
        action="store_const",
        const="json",
        dest="display",
        help="JSON lines (events, then a summary)",
    )
    mode.add_argument(
        "--plain",
        action="store_const",
        const="plain",
        dest="display",
        help="plain event lines (the default without a terminal)",
    )
    mode.add_argument(
        "--live",
        action="store_const",
        const="live",
        dest="display",
        help="the live table (the default in a terminal)",
    )
    rn.add_argument(
        "--state-file",
        metavar="FILE",
        help="write the full state (RPKI, neighbors, routes) as JSON here on SIGUSR1 and at exit",
    )
    rn.add_argument("--duration", type=float, help="stop after this many seconds")
    rn.add_argument(
        "--control",
        metavar="PATH",
        help="control socket for 'rov-router show' (default: [control] socket, or "
        "$XDG_RUNTIME_DIR/rov-router-UID.sock, or /tmp/rov-router-UID/control.sock)",
    )
    rn.add_argument(
        "--metrics",
        type=hostport,
        metavar="HOST:PORT",
        help="serve Prometheus /metrics here (default: [metrics] listen; off)",
    )
    rn.add_argument(
        "--filter-state",
        choices=["valid", "invalid", "not-found", "dropped"],
        help="live table: only routes in this state (keys a/v/i/n/d change it)",
    )
    rn.add_argument(
        "--filter-prefix",
        default="",
        metavar="TEXT",
        help="live table: only prefixes containing TEXT",
    )
    rn.add_argument(
        "--filter-neighbor",
        default="",
        metavar="ADDRESS",
        help="live table: only routes from this neighbor",
    )
    add_web_arguments(rn)


def run(args) -> int:
    from ..app import App
    from ..config import ConfigError, load_config

    try:
        cfg = load_config(args.config)
    except ConfigError as e:
        raise Failed(str(e)) from None
    if args.control:
        cfg.control_socket = Path(args.control)
    if args.metrics:
        cfg.metrics = args.metrics
    display = args.display or cfg.display
    if display == "auto":
        display = "live" if sys.stdout.isatty() else "plain"
    app = App(
        cfg,
        display=display,
        state_file=Path(args.state_file) if args.state_file else None,
        duration=args.duration,
    )
    from ..ops.control import ControlSocketError

    app.web_addr = args.web
    try:
        return asyncio.run(app.run())
    except (RuntimeError, ControlSocketError) as e:
        raise CLIError(str(e)) from None
    finally:
        app.remove_workdir()  # every exit path, also an interrupted start
