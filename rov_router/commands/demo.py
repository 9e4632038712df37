"""``rov-router demo``: the default teaching scenario live, or (--table) the sample routes
validated over RTR with each verdict explained."""

from __future__ import annotations

import asyncio
import json
import sys

from ..resources import shipped
from ..rpki.store import VRPStore
from ..rpki.validate import validate_route
from ..rpki.vrp import load_vrp_file
from ..rtr.client import RTRClient
from . import lab
from ._common import CLIError, add_web_arguments, verbose_parent
from .validate import parse_route_line

EXAMPLES = shipped("examples")


def add_parser(subparsers) -> None:
    """``demo``: the default teaching scenario, or the verdict table."""
    d = subparsers.add_parser(
        "demo",
        parents=[verbose_parent()],
        help="the default teaching scenario (an origin hijack, live) over real BGP sessions",
        description="Runs topologies/origin-hijack.toml: the embedded RTR cache, the router and "
        "three ExaBGP speakers on 127.0.0.x, with the live table in a terminal. --table "
        "instead validates the sample routes in examples/ and explains each verdict.",
    )
    d.add_argument(
        "--table",
        action="store_true",
        help="validate examples/demo_routes.txt over RTR and print a table",
    )
    d.add_argument("--check", action="store_true", help="headless, exit 1 on a failed outcome")
    d.add_argument("--speed", type=float, default=None, help="timeline speed (0.5 in a terminal)")
    d.add_argument(
        "--step",
        action="store_true",
        help="presenter mode: each step waits for space / Enter (with --web: for Next in the page) "
        "instead of the timer",
    )
    d.add_argument("--json", action="store_true")
    add_web_arguments(d)


async def _demo_sync(vs) -> tuple[VRPStore, dict]:
    """Serve the demo VRPs from an embedded cache on a free loopback port and sync them over
    RTR, as the router would."""
    from ..rtr.cache import CacheState
    from ..rtr.server import RTRServer

    cache = CacheState()
    cache.set_data(vs.vrps, vs.aspas, vs.router_keys)
    server = RTRServer(cache, "127.0.0.1", 0, on_event=lambda ev: None)
    await server.start()
    store = VRPStore()
    client = RTRClient("127.0.0.1", server.port, store, source=f"127.0.0.1:{server.port}")
    task = asyncio.ensure_future(client.run())
    try:
        await client.wait_synced(30)
    finally:
        client.stop()
        await task
        await server.close()
    sess = client.session
    info = {
        "cache": client.source,
        "version": sess.version,
        "session_id": sess.session_id,
        "serial": sess.serial,
        **store.counts(client.source),
    }
    return store, info


def run(args) -> int:
    if not args.table:
        args.scenario, args.list = None, False
        if args.speed is None:
            args.speed = 0.5 if sys.stdout.isatty() and not args.check else 1.0
        return lab.run(args, default="origin-hijack")
    vrps_file = EXAMPLES / "demo_vrps.json"
    routes_file = EXAMPLES / "demo_routes.txt"
    if not vrps_file.exists() or not routes_file.exists():
        raise CLIError(
            f"demo files not found in {EXAMPLES} (a broken install? reinstall rov-router)"
        )
    vs = load_vrp_file(vrps_file, ignore_expires=True)
    store, info = asyncio.run(_demo_sync(vs))
    if not args.json:
        print(
            f"embedded RTR cache on {info['cache']} serving {vrps_file.name}; our RTR client "
            f"synced {info['vrps']} VRPs and {info['aspas']} ASPA records over RTR "
            f"v{info['version']} (session {info['session_id']}, serial {info['serial']})"
        )
    rows = []
    for i, line in enumerate(routes_file.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        text, _, note = line.partition("#")
        addr, plen, origin = parse_route_line(text, f"{routes_file}: line {i}")
        rows.append((validate_route(store, addr, plen, origin), note.strip()))
    if args.json:
        for v, note in rows:
            print(json.dumps({**v.to_json(), "scenario": note}))
        return 0
    from rich.console import Console
    from rich.table import Table

    colour = {"valid": "green", "invalid": "red", "not-found": "yellow"}
    action = {"valid": "accept", "invalid": "DROP", "not-found": "accept"}
    t = Table(
        title=f"RFC 6811 origin validation: {len(rows)} routes against "
        f"{len(vs.vrps)} VRPs ({vrps_file.name})",
        show_lines=False,
    )
    t.add_column("prefix")
    t.add_column("origin")
    t.add_column("verdict")
    t.add_column("policy")
    t.add_column("why", ratio=1)
    for v, note in rows:
        c = colour[str(v.state)]
        t.add_row(
            v.prefix,
            "NONE" if v.origin is None else f"AS{v.origin}",
            f"[{c}]{v.state}[/{c}]",
            f"[{c}]{action[str(v.state)]}[/{c}]",
            f"{v.reason}\n[dim]{note}[/dim]",
        )
    Console().print(t)
    counts = {s: sum(1 for v, _ in rows if str(v.state) == s) for s in colour}
    print(
        f"{counts['valid']} valid, {counts['invalid']} invalid (dropped), "
        f"{counts['not-found']} not-found"
    )
    return 0
