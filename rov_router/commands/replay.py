"""``rov-router replay``: announce an MRT file through a real BGP session into a router."""

from __future__ import annotations

import shutil
import tempfile
import time
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


BATCH = 100  # prefixes per ExaBGP command when replaying (exabgp.md: 100 is the sweet spot)


def run(args) -> int:
    from ..bgp.control import Speaker
    from ..bgp.mrt import MRTError, read_updates
    from ..bgp.speaker import PeerSpec

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
    from ..ui.progress import TaskProgress

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
