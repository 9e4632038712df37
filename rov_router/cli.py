"""The ``rov-router`` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from . import __version__
from .resources import shipped
from .rpki.store import VRPStore
from .rpki.validate import Verdict, validate_route
from .rpki.vrp import VRPFileError, load_vrp_file, parse_asn, parse_prefix, vrps_to_json
from .rtr import pdu as P
from .rtr import session as S
from .rtr.client import Applied, RTRClient, RTRManager, replay
from .rtr.dump import DumpError
from .rtr.transport import (
    add_client_arguments,
    add_server_arguments,
    client_options_from_args,
    server_options_from_args,
)

EXAMPLES = shipped("examples")


class CLIError(Exception):
    """A usage or input problem: one line on stderr, exit status ``status`` (2 by default)."""

    status = 2


class Failed(CLIError):
    """Bad input or a failed operation (an unreadable file, no sync in time): exit status 1."""

    status = 1


class Terminated(KeyboardInterrupt):
    """SIGTERM (or SIGHUP) turned into an exception, so ``finally`` blocks stop children."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.status = 128 + signum


def _raise_terminated(signum: int, _frame) -> None:
    raise Terminated(signum)


def _hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    host = host.strip("[]")
    return host, int(port)


def _check_ports(args) -> None:
    """HOST:PORT options with a port above 65535: one line, exit 1 (not an OverflowError)."""
    for key, value in vars(args).items():
        items = value if isinstance(value, list) else [value]
        for item in items:
            if (
                isinstance(item, tuple)
                and len(item) == 2
                and isinstance(item[1], int)
                and not 0 <= item[1] <= 65535
            ):
                opt = "--" + key.replace("_", "-")
                raise Failed(f"{opt} {item[0]}:{item[1]}: port must be 0-65535")


WEB_DEFAULT = "127.0.0.1:0"


def _add_web_arguments(parser: argparse.ArgumentParser) -> None:
    """--web [ADDR:PORT]: the browser view, see docs/web.md."""
    parser.add_argument(
        "--web",
        nargs="?",
        const=WEB_DEFAULT,
        type=_hostport_or_port,
        metavar="ADDR:PORT",
        help="serve the web view (default 127.0.0.1 on a free port; the URL is printed)",
    )


def _hostport_or_port(text: str) -> tuple[str, int]:
    if text.isdigit():
        return "127.0.0.1", int(text)
    return _hostport(text)


def _version(text: str) -> int:
    if text not in ("0", "1", "2"):
        raise argparse.ArgumentTypeError("RTR version must be 0, 1 or 2")
    return int(text)


def _fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = -1.0
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction 0..1 (0.5 = 50 %), got {text!r}")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rov-router",
        description="A simulated BGP router with RPKI route origin validation (RTR v0/v1/v2).",
    )
    p.add_argument("--version", action="version", version=f"rov-router {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="more log output (-vv for debug)",
    )
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser(
        "rtr",
        parents=[common],
        help="sync VRPs from RTR caches and follow updates (or: rtr replay DUMP)",
        description="Sync from one or more RTR caches, print the session state and follow "
        "updates.  'rov-router rtr replay FILE' replays a --dump recording through the same "
        "state machine.",
    )
    r.add_argument("action", nargs="?", choices=["replay"], help="replay a recorded dump")
    r.add_argument("file", nargs="?", help="the dump to replay")
    r.add_argument(
        "--cache",
        action="append",
        type=_hostport,
        default=[],
        metavar="HOST:PORT",
        help="RTR cache (repeat for several; data is kept per cache, validation uses the union)",
    )
    r.add_argument(
        "--version",
        "--rtr-version",
        dest="rtr_version",
        type=_version,
        help="use exactly this RTR version (sets min and max)",
    )
    r.add_argument("--max-version", type=_version, default=2, help="highest RTR version (2)")
    r.add_argument("--min-version", type=_version, default=0, help="lowest RTR version (0)")
    r.add_argument(
        "--aspa-compat",
        choices=["draft10"],
        help="parse ASPA PDUs in the draft-8210bis-10 layout (StayRTR 0.5.1) "
        "instead of falling back to v1",
    )
    r.add_argument(
        "--max-records",
        type=int,
        default=None,
        metavar="N",
        help="abandon a transfer carrying more than N records, keeping the table "
        "(default 6,000,000: ten times the largest real table)",
    )
    r.add_argument("--once", action="store_true", help="exit after the first End of Data")
    r.add_argument("--json", action="store_true", help="machine-readable output (JSON lines)")
    r.add_argument(
        "--export",
        metavar="FILE",
        help="write the table after each update: rpki-client JSON, or CSV when FILE ends "
        "in .csv (ASN,IP Prefix,Max Length,Trust Anchor, as Routinator and rpki-client)",
    )
    r.add_argument(
        "--data-dir",
        metavar="DIR",
        help="write serial-N.json per serial (announced / withdrawn) and vrps.json",
    )
    r.add_argument("--dump", metavar="FILE", help="record the raw RTR byte stream")
    r.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="with --once: give up (exit 1) when no sync completes in this time (120)",
    )
    r.add_argument(
        "--max-backoff",
        type=float,
        default=None,
        help="cap the reconnect backoff (seconds; default: the retry interval)",
    )
    add_client_arguments(r)  # --transport tls|ssh and its options (every --cache)

    v = sub.add_parser(
        "validate",
        parents=[common],
        help="RFC 6811 verdict with its reason for PREFIX ASN, or for lines from --batch",
    )
    v.add_argument("prefix", nargs="?")
    v.add_argument("asn", nargs="?")
    v.add_argument(
        "--batch",
        metavar="FILE",
        help="lines 'PREFIX ASN' (or 'PREFIX<TAB>LEN<TAB>ASN'); '-' for stdin",
    )
    src = v.add_mutually_exclusive_group()
    src.add_argument("--cache", type=_hostport, metavar="HOST:PORT", help="RTR cache to sync from")
    src.add_argument(
        "--vrps", metavar="FILE", help="VRP file: rpki-client / StayRTR / Routinator JSON, or CSV"
    )
    v.add_argument("--format", choices=["auto", "json", "csv"], default="auto")
    v.add_argument(
        "--ignore-expires",
        action="store_true",
        help="keep VRPs whose rpki-client 'expires' lies in the past (old snapshots)",
    )
    v.add_argument(
        "--version",
        "--rtr-version",
        dest="rtr_version",
        type=_version,
        default=None,
        help="with --cache: use exactly this RTR version",
    )
    v.add_argument("--json", action="store_true", help="one JSON object per route")
    v.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="with --cache: give up (exit 1) when no sync completes in this time (120)",
    )
    v.add_argument(
        "--aspa-compat",
        choices=["draft10"],
        help="with --cache: parse ASPA PDUs in the draft-8210bis-10 layout (StayRTR 0.5.1)",
    )
    add_client_arguments(v)  # for --cache: --transport tls|ssh and its options

    c = sub.add_parser(
        "cache",
        parents=[common],
        help="serve a VRP file (+ SLURM) over RTR v0/v1/v2 with deltas (embedded cache)",
        description="Serve a VRP file to any number of routers over RTR v0, v1 and v2. The file "
        "is watched (and re-read on SIGHUP): changes bump the serial, routers get a Serial "
        "Notify and the delta. An empty file is refused and a reload that would withdraw more "
        "than --max-shrink of the VRPs is held back (SIGUSR2 applies it). SIGUSR1 prints the "
        "status (JSON with --json).",
    )
    c.add_argument(
        "--vrps",
        required=True,
        metavar="FILE",
        help="rpki-client / StayRTR / Routinator JSON, or CSV",
    )
    c.add_argument("--slurm", metavar="FILE", help="RFC 8416 SLURM file applied on top")
    c.add_argument("--format", choices=["auto", "json", "csv"], default="auto")
    c.add_argument(
        "--ignore-expires",
        action="store_true",
        help="serve entries whose rpki-client 'expires' lies in the past",
    )
    c.add_argument(
        "--listen",
        type=_hostport,
        default=("127.0.0.1", 3323),
        metavar="HOST:PORT",
        help="address to listen on (127.0.0.1:3323)",
    )
    c.add_argument("--refresh", type=int, default=3600, help="End of Data refresh interval (s)")
    c.add_argument("--retry", type=int, default=600, help="End of Data retry interval (s)")
    c.add_argument("--expire", type=int, default=7200, help="End of Data expire interval (s)")
    c.add_argument("--max-version", type=_version, default=2, help="highest RTR version (2)")
    c.add_argument(
        "--notify-interval",
        type=float,
        default=60.0,
        help="at most one Serial Notify per this many seconds (bis §8.2: 60)",
    )
    c.add_argument("--history", type=int, default=64, help="serials kept for deltas (64)")
    c.add_argument(
        "--drain-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="drop a router that has not read its response for this long (30)",
    )
    c.add_argument("--poll", type=float, default=1.0, help="seconds between file checks (1)")
    c.add_argument(
        "--settle",
        type=float,
        default=0.5,
        metavar="SECONDS",
        help="read a changed file only once its size and mtime have not changed for this "
        "long (0.5)",
    )
    c.add_argument(
        "--max-shrink",
        type=_fraction,
        default=0.5,
        metavar="FRACTION",
        help="hold back a reload that would withdraw more than this fraction of the VRPs "
        "served (0.5); SIGUSR2 confirms a held reload; 1.0 turns the guard off",
    )
    c.add_argument(
        "--session-file",
        metavar="FILE",
        help="where the last session ID is kept so a restart never reuses it",
    )
    c.add_argument("--json", action="store_true", help="events and status as JSON lines")
    add_server_arguments(c)  # --tls-listen ... / --ssh-listen ...

    rn = sub.add_parser(
        "run",
        parents=[common],
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
        type=_hostport,
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
    _add_web_arguments(rn)

    lb = sub.add_parser(
        "lab",
        parents=[common],
        help="run a teaching scenario from topologies/ over real BGP sessions on loopback",
    )
    lb.add_argument("scenario", nargs="?", help="a scenario TOML file or its name")
    lb.add_argument("--list", action="store_true", help="list the scenarios")
    lb.add_argument(
        "--check",
        action="store_true",
        help="headless: check every expected outcome, exit 1 naming the first failure",
    )
    lb.add_argument("--speed", type=float, default=1.0, help="timeline speed factor (1)")
    lb.add_argument(
        "--step",
        action="store_true",
        help="presenter mode: each step waits for space / Enter (with --web: for Next in the page) "
        "instead of the timer",
    )
    lb.add_argument("--json", action="store_true", help="JSON output (with --check)")
    _add_web_arguments(lb)
    lb.add_argument(
        "--timeout",
        type=float,
        default=20.0,
        help="seconds an expected outcome may take to appear (20)",
    )

    sh = sub.add_parser(
        "show",
        parents=[common],
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

    rp = sub.add_parser(
        "replay",
        parents=[common],
        help="announce an MRT update or RIB file through a real BGP session into a router",
        description="Starts an ExaBGP speaker on --local-address that dials the router and "
        "replays the file's announcements and withdrawals on their own timeline divided by "
        "--speed. The router needs a neighbor for --local-address with AS --asn.",
    )
    rp.add_argument("file", help="MRT file (.gz / .bz2 / raw): BGP4MP updates or a RIB dump")
    rp.add_argument(
        "--router",
        type=_hostport,
        required=True,
        metavar="HOST:PORT",
        help="where the router's ExaBGP listens (its [router] listen and port)",
    )
    rp.add_argument("--router-as", type=int, default=65000, help="the router's AS (65000)")
    rp.add_argument("--local-address", default="127.0.0.2", help="our address (127.0.0.2)")
    rp.add_argument("--asn", type=int, help="our AS (default: the first AS of the first path)")
    rp.add_argument("--peer-as", type=int, help="only updates from this MRT peer AS")
    rp.add_argument("--within", metavar="PREFIX", help="only prefixes inside (or covering) this")
    rp.add_argument(
        "--speed",
        type=float,
        default=60.0,
        help="timeline speed-up (60: a minute per second; 0: as fast as possible)",
    )
    rp.add_argument(
        "--hold",
        type=float,
        default=2.0,
        help="seconds to keep the session up after the last update (2)",
    )

    d = sub.add_parser(
        "demo",
        parents=[common],
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
    _add_web_arguments(d)

    from .analysis.command import add_parser as add_analyze_parser

    add_analyze_parser(sub, common)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .procs import remember_terminal

    remember_terminal()
    # every command: SIGTERM unwinds like Ctrl-C (finally blocks stop children), exit 143;
    # commands that stop more gracefully install their own handlers on top
    signal.signal(signal.SIGTERM, _raise_terminated)
    level = logging.WARNING - 10 * args.verbose
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr
    )
    try:
        _check_ports(args)
        if args.command == "rtr":
            return cmd_rtr(args)
        if args.command == "validate":
            return cmd_validate(args)
        if args.command == "demo":
            return cmd_demo(args)
        if args.command == "cache":
            return cmd_cache(args)
        if args.command == "run":
            return cmd_run(args)
        if args.command == "lab":
            return cmd_lab(args)
        if args.command == "replay":
            return cmd_replay_mrt(args)
        if args.command == "show":
            return cmd_show(args)
        if args.command == "analyze":
            from .analysis.command import run as cmd_analyze

            return cmd_analyze(args)
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
    return 1


# ---- rtr ---------------------------------------------------------------------------------------


def _session_kw(args) -> dict:
    lo, hi = args.min_version, args.max_version
    if args.rtr_version is not None:
        lo = hi = args.rtr_version
    if lo > hi:
        raise CLIError(f"--min-version {lo} is above --max-version {hi}")
    kw = {"min_version": lo, "max_version": hi, "aspa_compat": args.aspa_compat}
    if getattr(args, "max_records", None) is not None:
        if args.max_records < 1:
            raise CLIError("--max-records must be at least 1")
        kw["max_records"] = args.max_records
    return kw


class _Reporter:
    """Prints events, writes --export / --data-dir files."""

    def __init__(self, store: VRPStore, args, clients: list[RTRClient] | None = None) -> None:
        self.store = store
        self.args = args
        self.clients = clients or []
        self.json = args.json
        self.data_dir = Path(args.data_dir) if args.data_dir else None
        if self.data_dir:
            self.data_dir.mkdir(parents=True, exist_ok=True)

    def out(self, obj: dict | str) -> None:
        if self.json:
            print(json.dumps(obj if isinstance(obj, dict) else {"message": obj}), flush=True)
        else:
            print(
                obj if isinstance(obj, str) else " ".join(f"{k}={v}" for k, v in obj.items()),
                flush=True,
            )

    def status(self, session: S.ClientSession) -> dict:
        info = session.info()
        return {
            "event": "status",
            "cache": info.source,
            "state": info.state,
            "version": info.version,
            "session_id": info.session_id,
            "serial": info.serial,
            "refresh": info.timers.refresh,
            "retry": info.timers.retry,
            "expire": info.timers.expire,
            **self.store.counts(info.source),
        }

    def on_event(self, session: S.ClientSession, ev: S.Event, update_changes=None) -> None:
        if isinstance(ev, S.Synced):
            st = self.status(session)
            if self.json:
                self.out({**st, "event": "synced", "reset": ev.reset, "records": ev.records})
            else:
                self.out(
                    f"{st['cache']}: {'reset' if ev.reset else 'update'} at serial {ev.serial} "
                    f"(session {ev.session_id}, RTR v{ev.version}, {ev.records} records): "
                    f"{st['vrps']} VRPs ({st['vrps_v4']} IPv4, {st['vrps_v6']} IPv6), "
                    f"{st['router_keys']} router keys, {st['aspas']} ASPA; refresh "
                    f"{st['refresh']} s, retry {st['retry']} s, expire {st['expire']} s"
                )
            self._write_files()
        elif isinstance(ev, Applied):
            if self.data_dir and ev.serial is not None:
                self._write_serial(session, ev)
            elif ev.serial is None:
                # a flush (expire, fatal error, cache shutdown): the files must not keep
                # listing VRPs the client no longer holds
                self._write_files()
            if ev.serial is None and ev.changes:
                self.out(
                    {
                        "event": "flushed",
                        "cache": ev.changes.source,
                        "vrps_removed": ev.changes.vrps_removed,
                    }
                    if self.json
                    else f"{ev.changes.source}: data flushed ({ev.changes.vrps_removed} VRPs removed)"
                )
        elif isinstance(ev, S.VersionChanged) and self.json:
            # in text mode the session's warning (stderr) already says it, once
            self.out(
                {
                    "event": "version",
                    "cache": session.source,
                    "from": ev.old,
                    "to": ev.new,
                    "reason": ev.reason,
                }
            )
        elif isinstance(ev, S.ErrorReceived | S.ErrorSent):
            kind = "error_received" if isinstance(ev, S.ErrorReceived) else "error_sent"
            self.out(
                {"event": kind, "cache": session.source, "code": ev.code, "text": ev.text}
                if self.json
                else f"{session.source}: {kind.replace('_', ' ')}: code {ev.code}: {ev.text}"
            )

    def _write_serial(self, session: S.ClientSession, ev: Applied) -> None:
        assert self.data_dir is not None
        # the per-serial lists come from the update the session just completed
        upd = self._last_update
        doc = {
            "cache": session.source,
            "serial": ev.serial,
            "session_id": session.session_id,
            "version": session.version,
            "reset": ev.reset,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "announced": [],
            "withdrawn": [],
            "aspa_announced": [],
            "aspa_withdrawn": [],
            "router_keys_announced": [],
            "router_keys_withdrawn": [],
        }
        if upd is not None:
            for announce, v in upd.vrps:
                doc["announced" if announce else "withdrawn"].append(
                    {"prefix": v.prefix, "maxLength": v.maxlen, "asn": v.asn}
                )
            for announce, a in upd.aspas:
                doc["aspa_announced" if announce else "aspa_withdrawn"].append(
                    {"customer_asid": a.customer, "providers": list(a.providers)}
                )
            for announce, k in upd.router_keys:
                doc["router_keys_announced" if announce else "router_keys_withdrawn"].append(
                    {"asn": k.asn, "ski": k.ski.hex()}
                )
        name = f"serial-{ev.serial}.json"
        _atomic_write(self.data_dir / name, json.dumps(doc, indent=1))

    _last_update = None

    def _write_files(self) -> None:
        doc = None
        if (self.args.export and not self.args.export.endswith(".csv")) or self.data_dir:
            doc = json.dumps(
                vrps_to_json(self.store.iter_vrps(), self.store.aspas(), self.store.router_keys())
            )
        if self.args.export:
            path = Path(self.args.export)
            _atomic_write(
                path, vrps_to_csv(self.store.iter_vrps()) if path.suffix == ".csv" else doc
            )
        if self.data_dir:
            _atomic_write(self.data_dir / "vrps.json", doc)


def vrps_to_csv(vrps) -> str:
    """The VRPs in the CSV that Routinator (``--format csv``) and rpki-client (``-c``) write.
    The trust anchor is not carried over RTR, so that column is empty."""
    rows = sorted(vrps, key=lambda v: (len(v.addr), v.addr, v.plen, v.maxlen, v.asn))
    return "ASN,IP Prefix,Max Length,Trust Anchor\n" + "".join(
        f"AS{v.asn},{v.prefix},{v.maxlen},\n" for v in rows
    )


def _atomic_write(path: Path, text: str | None) -> None:
    """Write a file so that a reader sees the old or the new content, never half of it: a
    temporary file in the same directory, flushed to disk, then renamed over the target."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text or "")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def cmd_rtr(args) -> int:
    if args.action == "replay":
        return _cmd_replay(args)
    if args.file:
        raise CLIError(f"unexpected argument {args.file!r}")
    if not args.cache:
        raise CLIError("give at least one --cache HOST:PORT")
    kw = _session_kw(args)
    try:
        kw["transport"] = client_options_from_args(args)
    except ValueError as e:
        raise CLIError(str(e)) from None
    store = VRPStore()
    clients: list[RTRClient] = []
    rep = _Reporter(store, args, clients)
    for i, (host, port) in enumerate(args.cache):
        dump = args.dump if i == 0 else (f"{args.dump}.{i}" if args.dump else None)

        def handler(ev, _i=i):
            c = clients[_i]
            if isinstance(ev, S.UpdateReady):
                rep._last_update = ev.update
            rep.on_event(c.session, ev)

        clients.append(
            RTRClient(
                host, port, store, on_event=handler, dump=dump, max_backoff=args.max_backoff, **kw
            )
        )
    mgr = RTRManager(store, clients)
    return asyncio.run(_interruptible(_run_rtr(mgr, args, rep), stop=mgr.stop))


async def _interruptible(
    work: Coroutine[Any, Any, int], stop: Callable[[], None] | None = None
) -> int:
    """Run ``work``; SIGINT / SIGTERM call ``stop`` and cancel it (its ``finally`` blocks
    still run), and the result is the conventional 130 / 143."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    got: list[int] = []

    def on_signal(sig: int) -> None:
        if not got:
            got.append(sig)
        if stop is not None:
            stop()
        task.cancel()

    sigs = (signal.SIGINT, signal.SIGTERM)
    for sig in sigs:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        status = await task
    except asyncio.CancelledError:
        if not got:
            raise
        status = 0
    finally:
        for sig in sigs:
            loop.remove_signal_handler(sig)
        signal.signal(signal.SIGTERM, _raise_terminated)
    return 128 + got[0] if got else status


async def _stop_within(
    task: asyncio.Future, stop: Callable[[], None], timeout: float = 1.0
) -> None:
    """Ask a background task to stop; cancel it if it has not ended within ``timeout``."""
    stop()
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout)
    except TimeoutError:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


async def _run_rtr(mgr: RTRManager, args, rep: _Reporter) -> int:
    task = asyncio.ensure_future(mgr.run())
    try:
        if args.once:
            waits = [asyncio.ensure_future(c.wait_synced()) for c in mgr.clients]
            try:
                _, pending = await asyncio.wait(waits, timeout=args.timeout)
            finally:
                for w in waits:
                    w.cancel()
            if pending:
                errs = "; ".join(
                    f"{c.source}: {c.last_error or 'no End of Data'}" for c in mgr.clients
                )
                raise Failed(f"no complete sync within {args.timeout:g} s ({errs})") from None
            await _stop_within(task, mgr.stop)
            if not args.json and len(mgr.clients) > 1:
                c = rep.store.counts()
                print(
                    f"union of {len(mgr.clients)} caches: {c['vrps']} VRPs on "
                    f"{c['vrp_prefixes_v4']} IPv4 and {c['vrp_prefixes_v6']} IPv6 prefixes, "
                    f"{c['router_keys']} router keys, {c['aspas']} ASPA",
                    flush=True,
                )
            return 0
        try:
            await task  # until stopped: a signal cancels us (130 / 143)
        except Exception as e:
            raise Failed(f"RTR client failed: {type(e).__name__}: {e}") from None
        return 0  # stopped cleanly from within
    finally:
        if not task.done():
            await _stop_within(task, mgr.stop)


def _cmd_replay(args) -> int:
    if not args.file:
        raise CLIError("rtr replay needs a dump FILE")
    store = VRPStore()
    rep = _Reporter(store, args)

    def on_event(session: S.ClientSession, ev: S.Event) -> None:
        if isinstance(ev, S.UpdateReady):
            rep._last_update = ev.update
        rep.on_event(session, ev)

    res = replay(args.file, store, on_event=on_event, **_session_kw(args))
    summary = {
        "event": "replayed",
        "connections": res.connections,
        "sent_matches_recording": res.sent_mismatches == 0,
        **store.counts(),
    }
    rep.out(
        summary
        if args.json
        else f"replayed {res.connections} connection(s); our queries "
        f"{'match' if res.sent_mismatches == 0 else 'DIFFER FROM'} the recording; table: "
        + _table_text(store)
    )
    return 0


def _table_text(store: VRPStore) -> str:
    c = store.counts()
    return (
        f"{c['vrps']:,} VRPs on {c['vrp_prefixes_v4']:,} IPv4 and {c['vrp_prefixes_v6']:,} IPv6 "
        f"prefixes, {c['router_keys']:,} router keys, {c['aspas']:,} ASPA records"
    )


# ---- validate ----------------------------------------------------------------------------------


def _load_store(args) -> VRPStore:
    store = VRPStore()
    if args.vrps:
        vs = load_vrp_file(args.vrps, fmt=args.format, ignore_expires=args.ignore_expires)
        aspa = f" (and {vs.expired_aspas} ASPA entries)" if vs.expired_aspas else ""
        if vs.expired and not vs.vrps:
            print(
                f"rov-router: warning: {args.vrps}: all {vs.expired:,} VRPs have expired{aspa} "
                "('expires' in the past); use --ignore-expires for an old snapshot",
                file=sys.stderr,
            )
        elif vs.expired or vs.expired_aspas:
            print(
                f"rov-router: warning: {args.vrps}: expired entries dropped: {vs.expired:,} "
                f"VRPs, {vs.expired_aspas:,} ASPA",
                file=sys.stderr,
            )
        store.replace(args.vrps, vs.vrps, vs.aspas, vs.router_keys)
        return store
    if args.cache:
        host, port = args.cache
        kw = {}
        if args.rtr_version is not None:
            kw = {"min_version": args.rtr_version, "max_version": args.rtr_version}
        if getattr(args, "aspa_compat", None):  # analyze reuses this without the option
            kw["aspa_compat"] = args.aspa_compat
        try:
            kw["transport"] = client_options_from_args(args)
        except ValueError as e:
            raise CLIError(str(e)) from None
        client = RTRClient(host, port, store, **kw)
        timeout = getattr(args, "timeout", 120.0)  # `analyze` shares this without --timeout

        async def sync() -> int:
            task = asyncio.ensure_future(client.run())
            try:
                await client.wait_synced(timeout)
            except TimeoutError:
                raise Failed(
                    f"no complete sync from {host}:{port} within {timeout:g} s "
                    f"({client.last_error or 'no End of Data'})"
                ) from None
            finally:
                await _stop_within(task, client.stop)
            return 0

        status = asyncio.run(_interruptible(sync(), stop=client.stop))
        if status:
            raise Terminated(status - 128)  # interrupted: 130 / 143
        return store
    raise CLIError("give --vrps FILE or --cache HOST:PORT")


def _parse_route_line(line: str, where: str) -> tuple[bytes, int, int | None]:
    parts = line.replace(",", " ").split()
    if len(parts) == 3 and parts[1].isdigit() and "/" not in parts[0]:
        parts = [f"{parts[0]}/{parts[1]}", parts[2]]  # CAIDA pfx2as: prefix, length, origin
    if len(parts) < 2:
        raise CLIError(f"{where}: expected 'PREFIX ASN', got {line.strip()!r}")
    try:
        addr, plen = parse_prefix(parts[0])
        asn_s = parts[1]
        origin = (
            None
            if asn_s.upper() in ("NONE", "AS_SET", "{}") or asn_s.startswith("{")
            else parse_asn(asn_s)
        )
    except ValueError as e:
        raise CLIError(f"{where}: {e}") from None
    return addr, plen, origin


def _print_verdict(v: Verdict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(v.to_json()))
    else:
        origin = "NONE" if v.origin is None else f"AS{v.origin}"
        print(f"{v.prefix}\t{origin}\t{v.state}\t{v.reason}")


def cmd_validate(args) -> int:
    routes: list[tuple[bytes, int, int | None]] = []
    if args.batch:
        fh = sys.stdin if args.batch == "-" else open(args.batch)  # noqa: SIM115
        name = "stdin" if args.batch == "-" else args.batch
        with fh:
            for i, line in enumerate(fh, 1):
                if line.strip() and not line.lstrip().startswith("#"):
                    routes.append(_parse_route_line(line, f"{name}: line {i}"))
    elif args.prefix and args.asn:
        routes.append(_parse_route_line(f"{args.prefix} {args.asn}", "arguments"))
    else:
        raise CLIError("give PREFIX ASN, or --batch FILE")
    store = _load_store(args)
    for addr, plen, origin in routes:
        _print_verdict(validate_route(store, addr, plen, origin), args.json)
    return 0


# ---- run ---------------------------------------------------------------------------------------


def cmd_run(args) -> int:
    from .app import App
    from .config import ConfigError, load_config

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
    from .ops.control import ControlSocketError

    app.web_addr = args.web
    try:
        return asyncio.run(app.run())
    except (RuntimeError, ControlSocketError) as e:
        raise CLIError(str(e)) from None
    finally:
        app.remove_workdir()  # every exit path, also an interrupted start


# ---- lab ---------------------------------------------------------------------------------------

TOPOLOGIES = shipped("topologies")


def _find_scenario(name: str) -> Path:
    p = Path(name)
    if p.exists():
        return p
    cand = TOPOLOGIES / (name if name.endswith(".toml") else name + ".toml")
    if cand.exists():
        return cand
    raise CLIError(f"no scenario {name!r} (try 'rov-router lab --list')")


def cmd_lab(args, default: str | None = None) -> int:
    from .lab.runner import Lab
    from .lab.scenario import ScenarioError, list_scenarios, load_scenario

    if getattr(args, "list", False):
        try:
            for sc in list_scenarios(TOPOLOGIES):
                print(f"{sc.name:28s} {sc.summary}")
        except ScenarioError as e:
            raise CLIError(str(e)) from None
        return 0
    name = args.scenario or default
    if not name:
        raise CLIError("give a scenario (rov-router lab --list shows them)")
    try:
        sc = load_scenario(_find_scenario(name))
    except ScenarioError as e:
        raise CLIError(str(e)) from None
    check = getattr(args, "check", False)
    if check:
        display = "json" if args.json else "plain"
    else:
        display = "live" if sys.stdout.isatty() else "plain"
    lab = Lab(
        sc,
        check_timeout=getattr(args, "timeout", 20.0),
        display=display,
        speed=args.speed,
        hold_at_end=0.0 if check or display != "live" else 5.0,
        # --step: the presenter advances with a key in the terminal, or with Next in the page
        step_mode=getattr(args, "step", False) and not check and getattr(args, "web", None) is None,
        web=getattr(args, "web", None),
        step=getattr(args, "step", False) and not check and getattr(args, "web", None) is not None,
    )
    lab.hold_web = not check

    async def run_lab():
        # a terminal closing (SIGHUP) or SIGTERM must still stop every ExaBGP we started
        task = asyncio.ensure_future(lab.run())
        loop = asyncio.get_running_loop()
        got: list[int] = []

        def on_signal(sig: int) -> None:
            got.append(sig)
            task.cancel()

        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, on_signal, sig)
        try:
            return await task
        except asyncio.CancelledError:
            raise Terminated(got[0] if got else signal.SIGINT) from None

    res = asyncio.run(run_lab())
    failure = res.first_failure()
    if args.json and check:
        print(
            json.dumps(
                {
                    "scenario": sc.name,
                    "ok": res.ok,
                    "first_failure": failure,
                    "steps": [
                        {"title": s.step.title, "ok": s.ok, "failures": s.failures}
                        for s in res.steps
                    ],
                }
            )
        )
    elif failure:
        print(f"rov-router lab: {sc.name}: FAILED at {failure}", file=sys.stderr)
    else:
        print(
            f"{sc.name}: all {sum(len(s.step.expect) for s in res.steps)} expected outcomes "
            f"held in {len(res.steps)} steps"
        )
    return 0 if res.ok else 1


# ---- show ---------------------------------------------------------------------------------------


def cmd_show(args) -> int:
    from .ops.control import ControlSocketError, default_socket, request

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
    if args.what == "rtr":
        for r in resp["rpki"]:
            line = f"{r['name']}  {r['cache']}  {r['state']}  v{r['version']}"
            if r["serial"] is not None:
                line += (
                    f"  session {r['session_id']}  serial {r['serial']}  {r['vrps']} VRPs "
                    f"({r['vrps_v4']} IPv4, {r['vrps_v6']} IPv6)  {r['router_keys']} keys  "
                    f"{r['aspas']} ASPA"
                )
            if r["expires_in"] is not None:
                line += f"  expires in {r['expires_in']:.0f} s"
            if r.get("last_error") and r["state"] != "established":
                line += f"  ({r['last_error']})"
            print(line)
    elif args.what == "neighbors":
        now = time.time()
        for n in resp["neighbors"]:
            since = ""
            if n.get("since"):
                stamp = time.strftime("%H:%M:%S", time.localtime(n["since"]))
                since = f"since {stamp} ({_ago(now - n['since'])})"
            print(f"{n['address']:<16} AS{n['asn']:<10} {n['role']:<11} {n['state']:<10} {since}")
            print(
                f"    received {n['received']}  accepted {n['accepted']}  dropped "
                f"{n['dropped']}  (valid {n['valid']}, invalid {n['invalid']}, not-found "
                f"{n['not-found']})  advertised {n['advertised']}"
            )
            if n.get("last_error"):
                print(f"    last error: {n['last_error']}")
    elif args.what in ("routes", "route"):
        for r in resp["routes"]:
            flag = "*" if r["best"] else (" " if r["accepted"] else "x")
            origin = "NONE" if r["origin"] is None else f"AS{r['origin']}"
            aspa = f" ASPA {r['aspa']}" if r["aspa"] else ""
            print(
                f"{flag} {r['prefix']:<20} {origin:<12} {r['neighbor']:<16} {r['state']:<9}"
                f"{aspa}  {r['action']}  path {r['path']}  -- {r['reason']}"
            )
        if args.what == "routes" and resp.get("truncated"):
            print(f"... {resp['matched']} routes matched, {len(resp['routes'])} shown (--limit)")
        if args.what == "route" and not resp["routes"]:
            print(f"no route for {args.prefix}")
        if args.what == "routes" and not resp["routes"]:
            what = " ".join(
                x
                for x in (
                    args.state or "",
                    "routes",
                    f"from {args.neighbor}" if args.neighbor else "",
                )
                if x
            )
            print(f"no {what}")
    elif "vrps" in resp:
        for v in resp["vrps"]:
            print(v["vrp"])
        shown, total, first = len(resp["vrps"]), resp["matched"], resp["offset"]
        of = f" of AS{args.asn}" if args.asn is not None else ""
        if not total:
            print(f"no VRPs{of}")
        elif shown < total:
            nxt = first + shown
            print(
                f"... VRPs {first + 1 if shown else first}-{nxt} of {total}{of}"
                + (f" (next page: --offset {nxt})" if nxt < total else "")
            )
    else:
        print(f"VRPs covering {resp['prefix']}:")
        for v in resp["covering"]:
            print(f"  {v['vrp']}  (from {', '.join(v['sources'])})")
        print(f"VRPs at or below {resp['prefix']}:")
        for v in resp["covered"]:
            print(f"  {v['vrp']}")
    return 0


def _ago(seconds: float) -> str:
    s = int(max(0, seconds))
    if s < 120:
        return f"{s} s ago"
    if s < 7200:
        return f"{s // 60} min ago"
    return f"{s // 3600} h {s % 3600 // 60} min ago"


# ---- replay an MRT file into a router ----------------------------------------------------------


BATCH = 100  # prefixes per ExaBGP command when replaying (exabgp.md: 100 is the sweet spot)


def cmd_replay_mrt(args) -> int:
    from .bgp.control import Speaker
    from .bgp.mrt import MRTError, read_updates
    from .bgp.speaker import PeerSpec

    try:
        updates = list(read_updates(args.file, peer_as=args.peer_as, within=args.within))
    except ImportError:
        raise CLIError("mrtparse is not installed (pip install mrtparse)") from None
    except MRTError as e:
        raise Failed(str(e)) from None
    except OSError as e:
        raise Failed(f"{args.file}: cannot read: {e.strerror or e}") from None
    except ValueError as e:
        raise Failed(f"{args.file}: {e}") from None
    if not updates:
        raise CLIError(f"{args.file}: no matching updates")
    first_path = next((seq for u in updates for _p, seq, _s in u.announced if seq), [])
    asn = args.asn or (first_path[0] if first_path else None)
    if asn is None:
        raise CLIError("give --asn (the file's first path is empty)")
    host, port = args.router
    work = Path(tempfile.mkdtemp(prefix="rov-replay-"))
    sp = Speaker(
        f"replay-as{asn}",
        [
            PeerSpec(
                host,
                args.router_as,
                asn,
                args.local_address,
                args.local_address,
                passive=False,
                connect=port,
            )
        ],
        work,
    ).start()
    from .ui.progress import TaskProgress

    total = sum(len(u.announced) + len(u.withdrawn) for u in updates)
    sent = commands = 0
    # prefixes sharing next hop and AS path go out as one ExaBGP command (at most BATCH
    # prefixes), as the router itself announces downstream
    pending: dict[tuple[str, str], list[str]] = {}
    prog = TaskProgress("replay", total=total, unit="prefixes")

    def send(cmd: str) -> None:
        nonlocal commands
        if sp.command(cmd) != "done":
            raise CLIError(f"ExaBGP refused: {cmd[:200]}")
        commands += 1

    def flush(key: tuple[str, str] | None = None) -> None:
        nonlocal sent
        for k in [key] if key is not None else list(pending):
            prefixes = pending.pop(k, [])
            if prefixes:
                send(f"announce attributes {k[1]} nlri {' '.join(prefixes)}")
                sent += len(prefixes)
                prog.update(sent)

    try:
        sp.wait_state(host, "up", 60)
        t0, start = updates[0].time, time.monotonic()
        for u in updates:
            if args.speed > 0:
                flush()
                time.sleep(max(0.0, start + (u.time - t0) / args.speed - time.monotonic()))
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(u.time))
            for prefix, seq, sets in u.announced:
                path = list(seq) if seq and seq[0] == asn else [asn, *seq]
                nh = f"::ffff:{args.local_address}" if ":" in prefix else args.local_address
                attrs = f"next-hop {nh} as-path [ {' '.join(map(str, path))} ]" + (
                    f" ( {' '.join(map(str, sets))} )" if sets else ""
                )
                key = ("6" if ":" in prefix else "4", attrs)
                pending.setdefault(key, []).append(prefix)
                if len(pending[key]) >= BATCH:
                    flush(key)
                if args.verbose:
                    print(f"{stamp} announce {prefix} path {' '.join(map(str, path))}", flush=True)
            if u.withdrawn:
                flush()  # an announcement still pending must not overtake its withdrawal
                for prefix in u.withdrawn:
                    send(f"withdraw route {prefix}")
                    sent += 1
                    if args.verbose:
                        print(f"{stamp} withdraw {prefix}", flush=True)
                prog.update(sent)
        flush()
        prog.close(final=True)
        time.sleep(args.hold)
    except TimeoutError as e:
        raise CLIError(str(e)) from None
    finally:
        prog.close()
        sp.stop()
        shutil.rmtree(work, ignore_errors=True)
    elapsed = max(1e-9, time.monotonic() - start)
    print(
        f"replayed {sent:,} announcements / withdrawals from {len(updates):,} MRT updates as "
        f"AS{asn} in {commands:,} ExaBGP commands ({sent / elapsed:,.0f} prefixes/s)"
    )
    return 0


# ---- cache -------------------------------------------------------------------------------------


def cmd_cache(args) -> int:
    from .rtr.cache import CacheState
    from .rtr.server import FileCache, FileSource, RTRServer, pick_session_id, session_state_file

    host, port = args.listen
    try:
        tls, ssh = server_options_from_args(args)
    except ValueError as e:
        raise CLIError(str(e)) from None
    if not (args.refresh < args.expire and args.retry < args.expire):
        raise CLIError("--expire must be larger than --refresh and --retry (RFC 8210 §6)")
    state = Path(args.session_file) if args.session_file else session_state_file(host, port)
    cache = CacheState(
        session_id=pick_session_id(state),
        history=args.history,
        refresh=args.refresh,
        retry=args.retry,
        expire=args.expire,
    )

    def out(obj: dict) -> None:
        if args.json:
            print(json.dumps(obj), flush=True)
        else:
            msg = obj.get("message") or " ".join(f"{k}={v}" for k, v in obj.items())
            print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)

    source = FileSource(
        Path(args.vrps), Path(args.slurm) if args.slurm else None, args.format, args.ignore_expires
    )
    files = FileCache(
        cache,
        source,
        poll=args.poll,
        settle=args.settle,
        max_shrink=args.max_shrink,
        on_reload=lambda level, msg: out({"event": "reload", "level": level, "message": msg}),
    )
    files.reload(force=True)
    if not cache.has_data:
        raise CLIError(f"nothing to serve: {files.last_error}")

    def on_event(ev) -> None:
        if ev.kind != "served" or args.verbose:
            out({"event": ev.kind, "level": ev.level, "message": ev.message})

    server = RTRServer(
        cache,
        host,
        port,
        max_version=args.max_version,
        notify_interval=args.notify_interval,
        drain_timeout=args.drain_timeout,
        on_event=on_event,
        tls=tls,
        ssh=ssh,
    )

    async def run() -> int:
        from .procs import terminal_gone

        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        got: list[int] = []

        def stop_by(sig: int) -> None:
            got.append(sig)
            stop.set()

        def hangup() -> None:
            # SIGHUP = reload (StayRTR's convention), unless our terminal was closed: then a
            # cache left running would be an orphan holding its port
            if terminal_gone():
                stop_by(signal.SIGHUP)
            else:
                files.reload(force=True)

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop_by, sig)
        loop.add_signal_handler(signal.SIGHUP, hangup)
        loop.add_signal_handler(signal.SIGUSR2, files.confirm)

        def status() -> None:
            st = server.status()
            if args.json:
                print(json.dumps({"event": "status", **st}), flush=True)
            else:
                print(
                    f"status: serial {st['serial']} (session {st['session_id']}), "
                    f"{st['vrps']} VRPs, {st['router_keys']} router keys, {st['aspas']} ASPA; "
                    f"{len(st['routers'])} router(s)",
                    flush=True,
                )
                for r in st["routers"]:
                    print(
                        f"  {r['peer']}  v{r['version']}  serial {r['serial']}  "
                        f"{'up to date' if r['up_to_date'] else 'behind'}  "
                        f"{r['resets_served']} resets, {r['deltas_served']} deltas",
                        flush=True,
                    )

        loop.add_signal_handler(signal.SIGUSR1, status)
        try:
            await server.start()
        except OSError as e:
            raise CLIError(f"cannot listen on {host}:{port}: {e}") from None
        files.start_watching()
        try:
            await stop.wait()
        finally:
            await files.stop()
            # bis §8.5: routers keep their data until expire when told the cache restarts
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    server.stop(P.ErrorCode.CACHE_RESTART, "cache stopping"), 1.0
                )
            await server.close()
        return 128 + got[0] if got else 0

    return asyncio.run(run())


# ---- demo --------------------------------------------------------------------------------------


async def _demo_sync(vs) -> tuple[VRPStore, dict]:
    """Serve the demo VRPs from an embedded cache on a free loopback port and sync them over
    RTR, as the router would."""
    from .rtr.cache import CacheState
    from .rtr.server import RTRServer

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


def cmd_demo(args) -> int:
    if not args.table:
        args.scenario, args.list = None, False
        if args.speed is None:
            args.speed = 0.5 if sys.stdout.isatty() and not args.check else 1.0
        return cmd_lab(args, default="origin-hijack")
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
        addr, plen, origin = _parse_route_line(text, f"{routes_file}: line {i}")
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
