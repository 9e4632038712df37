"""``rov-router cache``: serve a VRP file (+ SLURM) over RTR v0/v1/v2 with deltas."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from pathlib import Path

from ..rpki.vrp import vrps_to_csv, vrps_to_json
from ..rtr import pdu as P
from ._common import CLIError, atomic_write, fraction, hostport, rtr_version_arg, verbose_parent
from .transport_args import add_server_arguments, server_options_from_args


def add_parser(subparsers) -> None:
    """``cache``: the embedded RTR cache serving a VRP file."""
    c = subparsers.add_parser(
        "cache",
        parents=[verbose_parent()],
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
        type=hostport,
        default=("127.0.0.1", 3323),
        metavar="HOST:PORT",
        help="address to listen on (127.0.0.1:3323)",
    )
    c.add_argument("--refresh", type=int, default=3600, help="End of Data refresh interval (s)")
    c.add_argument("--retry", type=int, default=600, help="End of Data retry interval (s)")
    c.add_argument("--expire", type=int, default=7200, help="End of Data expire interval (s)")
    c.add_argument("--max-version", type=rtr_version_arg, default=2, help="highest RTR version (2)")
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
        type=fraction,
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
    c.add_argument(
        "--export",
        metavar="FILE",
        help="write the set served (after SLURM) on every change: rpki-client JSON, or CSV "
        "when FILE ends in .csv; the trust anchor ('ta') of the VRP file is kept",
    )
    c.add_argument("--json", action="store_true", help="events and status as JSON lines")
    add_server_arguments(c)  # --tls-listen ... / --ssh-listen ...


def run(args) -> int:
    from ..rtr.cache import CacheState
    from ..rtr.server import FileCache, FileSource, RTRServer, pick_session_id, session_state_file

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
    source.keep_ta = bool(args.export)

    def export(data) -> None:
        path = Path(args.export)
        if path.suffix == ".csv":
            text = vrps_to_csv(data.vrps, data.tas)
        else:
            doc = vrps_to_json(data.vrps, data.aspas, data.router_keys, tas=data.tas)
            text = json.dumps(doc)
        try:
            atomic_write(path, text)
        except OSError as e:
            msg = f"--export {path}: cannot write: {e.strerror or e}"
            out({"event": "export", "level": "error", "message": msg})

    files = FileCache(
        cache,
        source,
        poll=args.poll,
        settle=args.settle,
        max_shrink=args.max_shrink,
        on_reload=lambda level, msg: out({"event": "reload", "level": level, "message": msg}),
        on_apply=export if args.export else None,
    )
    from ..ui.progress import TaskProgress, load_stages

    prog = TaskProgress(f"cache: loading {Path(args.vrps).name}", json_lines=args.json)
    source.progress = load_stages(prog)
    try:
        files.reload(force=True)
    finally:
        prog.close(final=True)
        source.progress = None
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
        from ..procs import terminal_gone

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
