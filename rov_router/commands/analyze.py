"""``rov-router analyze``: the report, what-if and ROA audit from the command line."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

from ..analysis.table import TableError, read_router, read_table
from ..analysis.whatif import Change, WhatIfError, parse_aspa_set, parse_roa, slurm_change
from ..rpki.vrp import VRPFileError, parse_asn, parse_prefix
from ._common import CLIError, hostport, verbose_parent
from .validate import load_store


def add_parser(subparsers) -> None:
    from .transport_args import add_client_arguments

    a = subparsers.add_parser(
        "analyze",
        parents=[verbose_parent()],
        help="what ROV would drop on a table, what a ROA change would do, audit a holder's ROAs",
        description="Analyse a routing table against VRPs: states, invalid categories, "
        "whether a covering route exists for every invalid, top origins / VRPs, ASPA; "
        "--add-roa / --remove-roa / --slurm / --aspa-set for a what-if; --asn / --prefix "
        "for a ROA audit.  A running router is read, never changed.",
    )
    a.add_argument(
        "table",
        nargs="?",
        help="table file: CAIDA pfx2as, 'PREFIX ASN' lines or MRT (RIB or updates); "
        ".gz/.bz2/.xz ok",
    )
    a.add_argument(
        "--router", action="store_true", help="analyse a running router's routes instead"
    )
    a.add_argument("--socket", metavar="PATH", help="with --router: its control socket")
    a.add_argument("--table-format", choices=["auto", "text", "mrt"], default="auto", help="(auto)")
    src = a.add_mutually_exclusive_group()
    src.add_argument("--vrps", metavar="FILE", help="VRP file (rpki-client / StayRTR JSON, CSV)")
    src.add_argument(
        "--cache",
        type=hostport,
        metavar="HOST:PORT",
        help="RTR cache to sync VRPs (and ASPA) from",
    )
    a.add_argument("--format", choices=["auto", "json", "csv"], default="auto", help="VRP file")
    a.add_argument(
        "--ignore-expires",
        action="store_true",
        help="keep VRPs whose rpki-client 'expires' lies in the past (old snapshots)",
    )
    a.add_argument(
        "--version",
        "--rtr-version",
        dest="rtr_version",
        type=int,
        choices=[0, 1, 2],
        default=None,
        help="with --cache: use exactly this RTR version",
    )
    out = a.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="everything as one JSON document")
    out.add_argument("--csv", action="store_true", help="the main rows as CSV (see docs)")
    a.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report")
    a.add_argument("--top", type=int, default=10, help="length of the top lists (10)")
    a.add_argument("--limit", type=int, default=50, help="rows shown per list on a terminal")
    w = a.add_argument_group("what-if (repeatable)")
    w.add_argument("--add-roa", action="append", default=[], metavar="'PREFIX[-MAXLEN] ASN'")
    w.add_argument("--remove-roa", action="append", default=[], metavar="'PREFIX[-MAXLEN] ASN'")
    w.add_argument("--slurm", action="append", default=[], metavar="FILE")
    w.add_argument("--aspa-set", action="append", default=[], metavar="ASN:PROVIDERS")
    au = a.add_argument_group("ROA audit (repeatable)")
    au.add_argument("--asn", action="append", default=[], help="the holder's ASN")
    au.add_argument("--prefix", action="append", default=[], help="the holder's prefix")
    add_client_arguments(a)


def run(args) -> int:
    try:
        return _run(args)
    except (TableError, WhatIfError, VRPFileError, CLIError) as e:
        print(f"rov-router: error: {e}", file=sys.stderr)
        return 2


def _run(args) -> int:
    from ..analysis.audit import audit
    from ..analysis.output import print_text, to_csv, to_html, to_json
    from ..analysis.report import analyze, no_gc
    from ..analysis.whatif import what_if

    if args.router == bool(args.table):
        raise CLIError("give a table FILE or --router (one of them)")
    # arguments first: a typo must not cost a 5 s load
    change = Change()
    for text in args.add_roa:
        change.add.add(parse_roa(text))
    for text in args.remove_roa:
        change.remove.add(parse_roa(text))
    for text in args.aspa_set:
        c, p = parse_aspa_set(text)
        change.aspa[c] = p
    try:
        asns = {parse_asn(x) for x in args.asn}
        prefixes = [parse_prefix(x) for x in args.prefix]
    except ValueError as e:
        raise CLIError(f"audit: {e}") from None
    slurms = []
    if args.slurm:
        from ..rpki.slurm import load_slurm

        slurms = [load_slurm(f) for f in args.slurm]
    if args.router:
        from ..ops.control import default_socket

        table = read_router(Path(args.socket) if args.socket else default_socket())
    else:
        table = read_table(args.table, args.table_format)
    with no_gc():  # one big allocation burst; collections in it find nothing to free
        store = load_store(args)
    for s in slurms:
        slurm_change(store, s, change)
    report = analyze(store, table)
    if table.router_states is not None:
        differ = sum(
            1 for s, r in zip(report.states, table.router_states, strict=True) if str(s) != r
        )
        if differ:
            print(
                f"rov-router: warning: {differ} of {len(table)} routes have another state in the "
                "router: its VRP set differs from the one given here",
                file=sys.stderr,
            )
    wres = what_if(store, report, change) if change else None
    ares = audit(store, report, asns, prefixes) if asns or prefixes else None
    if args.html:
        try:
            Path(args.html).write_text(to_html(report, wres, ares, top=args.top), encoding="utf-8")
        except OSError as e:
            raise CLIError(f"cannot write {args.html}: {e}") from None
    if args.json:
        doc = to_json(report, wres, ares, top=args.top)
        sys.stdout.buffer.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
        sys.stdout.flush()
    elif args.csv:
        sys.stdout.write(to_csv(report, wres, ares))
    else:
        print_text(report, wres, ares, top=args.top, limit=args.limit)
    return 0
