"""``rov-router replay``: announce an MRT file through a real BGP session into a router."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from ._common import CLIError, Failed, hostport, verbose_parent


def add_parser(subparsers) -> None:
    """``replay``: an MRT file through a real BGP session into a router."""
    rp = subparsers.add_parser(
        "replay",
        parents=[verbose_parent()],
        help="announce an MRT update or RIB file through a real BGP session into a router",
        description="Starts an ExaBGP speaker on --local-address that dials the router and "
        "replays the file's announcements and withdrawals on their own timeline divided by "
        "--speed. The router needs a neighbor for --local-address with AS --asn.",
    )
    rp.add_argument("file", help="MRT file (.gz / .bz2 / raw): BGP4MP updates or a RIB dump")
    rp.add_argument(
        "--router",
        type=hostport,
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


BATCH = 100  # prefixes per ExaBGP command when replaying (measured: more gains nothing)


def run(args) -> int:
    from ..ui.progress import TaskProgress

    prog = TaskProgress(f"replay {Path(args.file).name}")
    updates: list = []
    n_prefixes = 0

    def on_read(done: int, size: int) -> None:
        prog.update(done, size, info=f"{len(updates):,} updates, {n_prefixes:,} prefixes")

    size = None
    with contextlib.suppress(OSError):
        size = os.path.getsize(args.file)
    prog.stage("reading", total=size, unit="bytes")
    work: Path | None = None
    sp = None
    try:
        for u in _read(args, on_read):
            updates.append(u)
            n_prefixes += len(u.announced) + len(u.withdrawn)
            if sp is None and (args.asn or any(seq for _p, seq, _s in u.announced)):
                # our AS is known: ExaBGP starts while the rest is read
                sp, work = _replay_speaker(args, u)
        if not updates:
            raise CLIError(f"{args.file}: no matching updates")
        if sp is None:
            raise CLIError("give --asn (no path in the file names the AS)")
        return _replay_send(args, sp, updates, n_prefixes, prog)
    finally:
        prog.close()
        if sp is not None:
            sp.stop()
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)


def _read(args, progress) -> Iterator:
    """The file's updates; a file that cannot be read is a one-line error."""
    from ..bgp.mrt import MRTError, read_updates

    try:
        yield from read_updates(
            args.file, peer_as=args.peer_as, within=args.within, progress=progress
        )
    except ImportError:
        raise CLIError("mrtparse is not installed (pip install mrtparse)") from None
    except MRTError as e:
        raise Failed(str(e)) from None
    except OSError as e:
        raise Failed(f"{args.file}: cannot read: {e.strerror or e}") from None
    except ValueError as e:
        raise Failed(f"{args.file}: {e}") from None


def _replay_speaker(args, first) -> tuple:
    """The ExaBGP speaker that dials the router as the AS of ``--asn`` or of the first path."""
    from ..bgp.control import Speaker
    from ..bgp.speaker import PeerSpec

    asn = args.asn or next(seq for _p, seq, _s in first.announced if seq)[0]
    args.asn = asn
    host, port = args.router
    work = Path(tempfile.mkdtemp(prefix="rov-replay-"))
    spec = PeerSpec(
        host,
        args.router_as,
        asn,
        args.local_address,
        args.local_address,
        passive=False,
        connect=port,
    )
    try:
        return Speaker(f"replay-as{asn}", [spec], work).start(), work
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _replay_send(args, sp, updates: list, total: int, prog) -> int:
    from ..bgp.exabgp import (
        announce_command,
        mapped_next_hop,
        origin_attributes,
        withdraw_route_command,
    )
    from ..bgp.mrt import ReplayAnnounce, ReplayWait, ReplayWithdraw, replay_plan

    host, asn = args.router[0], args.asn
    sent = commands = 0

    def send(cmd: str) -> None:
        nonlocal commands
        if sp.command(cmd) != "done":
            raise CLIError(f"ExaBGP refused: {cmd[:200]}")
        commands += 1

    try:
        prog.stage("waiting for the session", unit="")
        sp.wait_state(host, "up", 60)
        prog.stage("sending", total=total, unit="prefixes")
        start = time.monotonic()
        # prefixes sharing next hop and AS path go out as one ExaBGP command (at most BATCH
        # prefixes), as the router itself announces downstream
        for step in replay_plan(
            updates,
            next_hop=lambda prefix: mapped_next_hop(args.local_address, prefix),
            prepend=asn,
            speed=args.speed,
            batch=BATCH,
        ):
            if isinstance(step, ReplayWait):
                time.sleep(max(0.0, start + step.at - time.monotonic()))
            elif isinstance(step, ReplayAnnounce):
                attrs = origin_attributes(step.next_hop, step.path, step.as_set)
                send(announce_command(None, attrs, step.prefixes))
                sent += len(step.prefixes)
                prog.update(sent)
            elif isinstance(step, ReplayWithdraw):
                for prefix in step.prefixes:
                    send(withdraw_route_command(prefix))
                    sent += 1
                prog.update(sent)
            elif args.verbose:
                stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(step.update.time))
                if step.path is None:
                    print(f"{stamp} withdraw {step.prefix}", flush=True)
                else:
                    print(
                        f"{stamp} announce {step.prefix} path {' '.join(map(str, step.path))}",
                        flush=True,
                    )
        prog.close(final=True)
        elapsed = max(1e-9, time.monotonic() - start)
        time.sleep(args.hold)
    except TimeoutError as e:
        raise CLIError(str(e)) from None
    print(
        f"replayed {sent:,} announcements / withdrawals from {len(updates):,} MRT updates as "
        f"AS{asn} in {commands:,} ExaBGP commands ({sent / elapsed:,.0f} prefixes/s)"
    )
    return 0
