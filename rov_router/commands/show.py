"""``rov-router show``: ask a running router (over its control socket) and print the answer."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from ..rpki.vrp import parse_asn
from ..status import NeighborStatus, RouteView, RpkiSourceStatus
from ._common import CLIError, verbose_parent


def add_parser(subparsers) -> None:
    """``show``: ask a running router over its control socket."""
    sh = subparsers.add_parser(
        "show",
        parents=[verbose_parent()],
        help="ask a running router: rtr | neighbors | routes | route PREFIX | vrps PREFIX",
    )
    sh.add_argument("what", choices=["rtr", "neighbors", "routes", "route", "vrps"])
    sh.add_argument("prefix", nargs="?", help="for 'route' and 'vrps'")
    st = sh.add_mutually_exclusive_group()
    st.add_argument("--valid", action="store_const", const="valid", dest="state")
    st.add_argument("--invalid", action="store_const", const="invalid", dest="state")
    st.add_argument("--not-found", action="store_const", const="not-found", dest="state")
    sh.add_argument("--neighbor", help="only routes from this neighbor")
    sh.add_argument("--asn", type=parse_asn, help="vrps: only VRPs of this AS")
    sh.add_argument(
        "--limit", type=int, default=1000, help="at most this many routes / VRPs (1000)"
    )
    sh.add_argument("--offset", type=int, default=0, help="vrps: skip this many (paging)")
    sh.add_argument("--socket", metavar="PATH", help="the router's control socket")
    sh.add_argument("--json", action="store_true")


def run(args) -> int:
    from ..ops.control import ControlSocketError, default_socket, request

    try:
        path = Path(args.socket) if args.socket else default_socket()
    except ControlSocketError as e:
        raise CLIError(str(e)) from None
    req: dict = {"cmd": args.what}
    if args.what == "route" and not args.prefix:
        raise CLIError("show route needs a PREFIX")
    if args.what in ("route", "vrps") and args.prefix:
        req["prefix"] = args.prefix
    if args.what == "vrps":
        req.update({"asn": args.asn, "limit": args.limit, "offset": args.offset})
    if args.what == "routes":
        req.update({"state": args.state, "neighbor": args.neighbor, "limit": args.limit})
    try:
        resp = request(path, req)
    except ControlSocketError as e:
        raise CLIError(str(e)) from None
    except OSError as e:
        raise CLIError(
            f"no router answers on {path}: {e} (is 'rov-router run' running? --socket PATH)"
        ) from None
    if "unknown_neighbor" in resp:  # a wrong --neighbor is an answer, not a usage error
        print(f"rov-router show: {resp['error']}", file=sys.stderr)
        return 1
    if "error" in resp:
        raise CLIError(resp["error"])
    if args.json:
        print(json.dumps(resp, indent=1))
        return 0
    for line in render(args, resp):
        print(line)
    return 0


def render(args, resp: dict) -> list[str]:
    """The lines ``show`` prints for the router's answer ``resp`` to ``args.what``."""
    if args.what == "rtr":
        return rtr_lines(RpkiSourceStatus.from_json(r) for r in resp["rpki"])
    if args.what == "neighbors":
        return neighbor_lines((NeighborStatus.from_json(n) for n in resp["neighbors"]), time.time())
    if args.what in ("routes", "route"):
        routes = [RouteView.from_json(r) for r in resp["routes"]]
        out = route_lines(routes)
        if args.what == "routes" and resp.get("truncated"):
            out.append(f"... {resp['matched']} routes matched, {len(routes)} shown (--limit)")
        if args.what == "route" and not routes:
            out.append(f"no route for {args.prefix}")
        if args.what == "routes" and not routes:
            what = " ".join(
                x
                for x in (
                    args.state or "",
                    "routes",
                    f"from {args.neighbor}" if args.neighbor else "",
                )
                if x
            )
            out.append(f"no {what}")
        return out
    out = []
    if "vrps" in resp:
        out += [v["vrp"] for v in resp["vrps"]]
        shown, total, first = len(resp["vrps"]), resp["matched"], resp["offset"]
        of = f" of AS{args.asn}" if args.asn is not None else ""
        if not total:
            out.append(f"no VRPs{of}")
        elif shown < total:
            nxt = first + shown
            out.append(
                f"... VRPs {first + 1 if shown else first}-{nxt} of {total}{of}"
                + (f" (next page: --offset {nxt})" if nxt < total else "")
            )
        return out
    out.append(f"VRPs covering {resp['prefix']}:")
    out += [f"  {v['vrp']}  (from {', '.join(v['sources'])})" for v in resp["covering"]]
    out.append(f"VRPs at or below {resp['prefix']}:")
    out += [f"  {v['vrp']}" for v in resp["covered"]]
    return out


def rtr_lines(sources: Iterable[RpkiSourceStatus]) -> list[str]:
    out = []
    for r in sources:
        line = f"{r.name}  {r.cache}  {r.state}  v{r.version}"
        if r.serial is not None:
            line += (
                f"  session {r.session_id}  serial {r.serial}  {r.vrps} VRPs "
                f"({r.vrps_v4} IPv4, {r.vrps_v6} IPv6)  {r.router_keys} keys  {r.aspas} ASPA"
            )
        if r.expires_in is not None:
            line += f"  expires in {r.expires_in:.0f} s"
        if r.last_error and r.state != "established":
            line += f"  ({r.last_error})"
        out.append(line)
    return out


def neighbor_lines(neighbors: Iterable[NeighborStatus], now: float) -> list[str]:
    out = []
    for n in neighbors:
        since = ""
        if n.since:
            stamp = time.strftime("%H:%M:%S", time.localtime(n.since))
            since = f"since {stamp} ({_ago(now - n.since)})"
        out.append(f"{n.address:<16} AS{n.asn:<10} {n.role:<11} {n.state:<10} {since}")
        out.append(
            f"    received {n.received}  accepted {n.accepted}  dropped "
            f"{n.dropped}  (valid {n.valid}, invalid {n.invalid}, not-found "
            f"{n.not_found})  advertised {n.advertised}"
        )
        if n.last_error:
            out.append(f"    last error: {n.last_error}")
    return out


def route_lines(routes: Iterable[RouteView]) -> list[str]:
    out = []
    for r in routes:
        flag = "*" if r.best else (" " if r.accepted else "x")
        origin = "NONE" if r.origin is None else f"AS{r.origin}"
        aspa = f" ASPA {r.aspa}" if r.aspa else ""
        out.append(
            f"{flag} {r.prefix:<20} {origin:<12} {r.neighbor:<16} {r.state:<9}"
            f"{aspa}  {r.action}  path {r.path}  -- {r.reason}"
        )
    return out


def _ago(seconds: float) -> str:
    s = int(max(0, seconds))
    if s < 120:
        return f"{s} s ago"
    if s < 7200:
        return f"{s // 60} min ago"
    return f"{s // 3600} h {s % 3600 // 60} min ago"
