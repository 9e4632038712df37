"""``rov-router validate``: the RFC 6811 verdict with its reason for PREFIX ASN or for the
lines of --batch, against a VRP file or a table synced from an RTR cache."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from ..rpki.store import VRPStore
from ..rpki.validate import Verdict, validate_route
from ..rpki.vrp import load_vrp_file, parse_asn, parse_prefix
from ..rtr.client import RTRClient
from ._common import (
    CLIError,
    Failed,
    Terminated,
    hostport,
    interruptible,
    rtr_version_arg,
    stop_within,
    verbose_parent,
)
from .transport_args import add_client_arguments, client_options_from_args


def add_parser(subparsers) -> None:
    """``validate``: RFC 6811 verdicts with reasons."""
    v = subparsers.add_parser(
        "validate",
        parents=[verbose_parent()],
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
    src.add_argument("--cache", type=hostport, metavar="HOST:PORT", help="RTR cache to sync from")
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
        type=rtr_version_arg,
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


def load_store(args) -> VRPStore:
    store = VRPStore()
    if args.vrps:
        from ..ui.progress import TaskProgress, load_stages

        prog = TaskProgress(
            f"loading {Path(args.vrps).name}", json_lines=bool(getattr(args, "json", False))
        )
        try:
            vs = load_vrp_file(
                args.vrps,
                fmt=args.format,
                ignore_expires=args.ignore_expires,
                progress=load_stages(prog),
            )
        finally:
            prog.close(final=True)
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

        from ..ui.progress import RTRProgress

        shown = RTRProgress([client], json_lines=bool(getattr(args, "json", False)))

        async def sync() -> int:
            task = asyncio.ensure_future(client.run())
            watch = asyncio.ensure_future(shown.run())  # records received while it syncs
            try:
                await client.wait_synced(timeout)
            except TimeoutError:
                raise Failed(
                    f"no complete sync from {host}:{port} within {timeout:g} s "
                    f"({client.last_error or 'no End of Data'})"
                ) from None
            finally:
                watch.cancel()
                await stop_within(task, client.stop)
            return 0

        status = asyncio.run(interruptible(sync(), stop=client.stop))
        if status:
            raise Terminated(status - 128)  # interrupted: 130 / 143
        return store
    raise CLIError("give --vrps FILE or --cache HOST:PORT")


def parse_route_line(line: str, where: str) -> tuple[bytes, int, int | None]:
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


def run(args) -> int:
    routes: list[tuple[bytes, int, int | None]] = []
    if args.batch:
        fh = sys.stdin if args.batch == "-" else open(args.batch)  # noqa: SIM115
        name = "stdin" if args.batch == "-" else args.batch
        with fh:
            for i, line in enumerate(fh, 1):
                if line.strip() and not line.lstrip().startswith("#"):
                    routes.append(parse_route_line(line, f"{name}: line {i}"))
    elif args.prefix and args.asn:
        routes.append(parse_route_line(f"{args.prefix} {args.asn}", "arguments"))
    else:
        raise CLIError("give PREFIX ASN, or --batch FILE")
    store = load_store(args)
    for addr, plen, origin in routes:
        _print_verdict(validate_route(store, addr, plen, origin), args.json)
    return 0
