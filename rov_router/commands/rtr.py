"""``rov-router rtr``: sync VRPs from RTR caches, print the session state, follow updates,
write --export / --data-dir files; ``rtr replay DUMP`` replays a --dump recording."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from ..rpki.store import VRPStore
from ..rpki.vrp import vrps_to_csv, vrps_to_json
from ..rtr import session as S
from ..rtr.client import Applied, RTRClient, RTRManager, replay
from ._common import (
    CLIError,
    Failed,
    atomic_write,
    hostport,
    interruptible,
    rtr_version_arg,
    stop_within,
    verbose_parent,
)
from .transport_args import add_client_arguments, client_options_from_args


def add_parser(subparsers) -> None:
    """``rtr``: sync from RTR caches and follow updates; ``rtr replay DUMP``."""
    r = subparsers.add_parser(
        "rtr",
        parents=[verbose_parent()],
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
        type=hostport,
        default=[],
        metavar="HOST:PORT",
        help="RTR cache (repeat for several; data is kept per cache, validation uses the union)",
    )
    r.add_argument(
        "--version",
        "--rtr-version",
        dest="rtr_version",
        type=rtr_version_arg,
        help="use exactly this RTR version (sets min and max)",
    )
    r.add_argument("--max-version", type=rtr_version_arg, default=2, help="highest RTR version (2)")
    r.add_argument("--min-version", type=rtr_version_arg, default=0, help="lowest RTR version (0)")
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
        atomic_write(self.data_dir / name, json.dumps(doc, indent=1))

    _last_update = None
    progress: Any = None  # ui.progress.RTRProgress while syncing

    def _write_files(self) -> None:
        doc = None
        if (self.args.export and not self.args.export.endswith(".csv")) or self.data_dir:
            doc = json.dumps(
                vrps_to_json(self.store.iter_vrps(), self.store.aspas(), self.store.router_keys())
            )
        if self.args.export:
            path = Path(self.args.export)
            atomic_write(
                path, vrps_to_csv(self.store.iter_vrps()) if path.suffix == ".csv" else doc
            )
        if self.data_dir:
            atomic_write(self.data_dir / "vrps.json", doc)


def run(args) -> int:
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
    from ..ui.progress import RTRProgress

    store = VRPStore()
    clients: list[RTRClient] = []
    rep = _Reporter(store, args, clients)
    rep.progress = RTRProgress(clients, json_lines=args.json)
    for i, (host, port) in enumerate(args.cache):
        dump = args.dump if i == 0 else (f"{args.dump}.{i}" if args.dump else None)

        def handler(ev, _i=i):
            c = clients[_i]
            if isinstance(ev, S.UpdateReady):
                rep._last_update = ev.update
            elif isinstance(ev, S.Synced):
                rep.progress.synced(c.session.source, ev.records, ev.reset)
            rep.on_event(c.session, ev)

        clients.append(
            RTRClient(
                host, port, store, on_event=handler, dump=dump, max_backoff=args.max_backoff, **kw
            )
        )
    mgr = RTRManager(store, clients)
    status = asyncio.run(interruptible(_run_rtr(mgr, args, rep), stop=mgr.stop))
    # --once: output and files are written; the process may end without freeing the table
    args.exit_without_teardown = args.once
    return status


async def _run_rtr(mgr: RTRManager, args, rep: _Reporter) -> int:
    task = asyncio.ensure_future(mgr.run())
    shown = asyncio.ensure_future(rep.progress.run())  # records received while a sync runs
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
            await stop_within(task, mgr.stop)
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
        shown.cancel()
        if not task.done():
            await stop_within(task, mgr.stop)


def _cmd_replay(args) -> int:
    if not args.file:
        raise CLIError("rtr replay needs a dump FILE")
    store = VRPStore()
    rep = _Reporter(store, args)

    def on_event(session: S.ClientSession, ev: S.Event) -> None:
        if isinstance(ev, S.UpdateReady):
            rep._last_update = ev.update
        rep.on_event(session, ev)

    from ..ui.progress import TaskProgress

    prog = TaskProgress(f"rtr replay {Path(args.file).name}", unit="bytes", json_lines=args.json)
    prog.stage("replaying", unit="bytes")

    def progress(done: int, size: int, records: int) -> None:
        prog.update(done, size, info=f"{records:,} records of this transfer" if records else "")

    try:
        res = replay(args.file, store, on_event=on_event, progress=progress, **_session_kw(args))
    finally:
        prog.close(final=True)
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
