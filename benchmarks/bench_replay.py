"""`rov-router replay` of the PCH full table into a running router, against BIRD 2 feeding the
same router the same table.

    flock /tmp/rov-interop.lock python benchmarks/bench_replay.py [--reps N] [--profile DIR]

Both runs use ``bench_router.run_rov_router`` (``rov-router run --json`` with the feeder as
its only upstream neighbor and the embedded cache on the prepdev VRPs); only the feeder differs:

* ``bird``: BIRD 2 with the table as static routes (``bench_router.Bird``), eBGP from
  127.0.0.3 with the feeder AS prepended;
* ``replay``: ``rov-router replay routes/mrt/pch_bgp4mp-et_fulltable_20151023.mrt.gz
  --speed 0`` from 127.0.0.3 as the feeder AS (it prepends that AS like BIRD does).

Figures per run: the time from the feeder's ``neighbor up`` at the router to the router's
``route`` event of the last route (577,703 prefixes: the stream's NLRI minus the 3 withdrawn,
duplicates counted once), routes/s over that time, and for the replay also the time from its
start (the MRT file is read while its ExaBGP connects) to ``neighbor up``.  Target: the
replay's routes/s >= 80 % of BIRD's, i.e. the router's ExaBGP, not the replay, is the limit.

``--profile DIR``: py-spy records the replay process (and its ExaBGP) during one extra run.
The machine has 2 CPUs shared with other jobs: figures carry that noise; each run prints
the CPU seconds other processes used (``bench_router.foreign_cpu``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench_router as B

from rov_router.procs import stop_child


class ReplayFeeder:
    """``rov-router replay`` with the interface of ``bench_router.Bird``."""

    def __init__(self, ctx: dict, rep_dir: Path, port: int, profile: Path | None) -> None:
        self.ctx, self.dir, self.port, self.profile = ctx, rep_dir, port, profile
        self.proc: subprocess.Popen | None = None
        self.spy: subprocess.Popen | None = None
        self.t_start: float | None = None

    def start(self) -> None:
        argv = [
            *B.rov_router_argv(),
            "replay",
            str(self.ctx["mrt"]),
            "--router",
            f"{B.ROUTER_ADDR}:{self.port}",
            "--router-as",
            str(self.ctx["router_as"]),
            "--local-address",
            B.FEEDER_ADDR,
            "--asn",
            str(self.ctx["feeder_as"]),
            "--speed",
            "0",
            "--hold",
            "3600",
        ]
        env = {**os.environ, "TMPDIR": str(self.dir)}
        self.t_start = time.time()
        with open(self.dir / "replay.out", "wb") as out, open(self.dir / "replay.err", "wb") as err:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=env,
                start_new_session=True,
            )
        if self.profile is not None:
            self.spy = subprocess.Popen(
                [B.py_spy(), "record", "--nonblocking", "--subprocesses", "-r", "50", "-f", "raw",
                 "-o", str(self.profile / "replay.txt"), "--pid", str(self.proc.pid)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def exported(self) -> int | None:
        return len(self.ctx["table"])

    def log_tail(self) -> str:
        return B.tail(self.dir / "replay.err")

    def stop(self) -> None:
        if self.spy is not None:
            import signal

            with contextlib.suppress(ProcessLookupError):
                os.kill(self.spy.pid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.spy.wait(60)
            stop_child(self.spy)
        if self.proc is not None:
            stop_child(self.proc)


def one(ctx: dict, tmp: Path, kind: str, profile: Path | None = None) -> dict:
    feeders: list[ReplayFeeder] = []

    def make(rep_dir: Path, port: int) -> ReplayFeeder:
        f = ReplayFeeder(ctx, rep_dir, port, profile)
        feeders.append(f)
        return f

    r = B.run_rov_router(ctx, tmp, len(ctx["table"]), feeder=make if kind == "replay" else None)
    n = (r.get("neighbor") or {}).get("received")
    r["rate"] = n / r["seconds"] if n and r.get("seconds") else None
    return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=1, help="repetitions of each (1)")
    ap.add_argument("--profile", type=Path, help="py-spy the replay into this directory")
    args = ap.parse_args()
    data = B.shared_data()
    mrt, prepdev = data / B.MRT, data / B.PREPDEV
    if not (mrt.is_file() and prepdev.is_file()):
        print(f"bench_replay: SKIPPED: shared data not found under {data}")
        return 0
    with tempfile.TemporaryDirectory(prefix="bench_replay.") as td:
        tmp = Path(td)
        table, info = B.load_table(mrt, None)
        router_as, feeder_as = B.pick_asns(table)
        vrps_json = tmp / "vrps.json"
        B.write_vrps(prepdev, vrps_json)
        routes_conf = tmp / "bird-routes.conf"
        B.write_bird_routes(table, routes_conf)
        ctx = {
            "table": table,
            "mrt": mrt,
            "router_as": router_as,
            "feeder_as": feeder_as,
            "vrps_json": vrps_json,
            "routes_conf": routes_conf,
        }
        print(
            f"bench_replay: {len(table):,} prefixes ({info['nlri']:,} NLRI, "
            f"{info['withdrawn']} withdrawn); {args.reps} repetition(s); {os.cpu_count()} CPUs"
        )
        runs: dict[str, list[dict]] = {"bird": [], "replay": []}
        for i in range(args.reps):
            for kind in ("bird", "replay"):
                r = one(ctx, tmp / f"{kind}{i}", kind)
                runs[kind].append(r)
                cpu = r.get("cpu") or {}
                print(
                    f"  rep {i + 1} {kind:6}: up -> last route {B.fmt(r.get('seconds'), '.1f')} s "
                    f"= {B.fmt(r.get('rate'), ',.0f')} routes/s; feeder start -> up "
                    f"{B.fmt(r.get('bird_to_up'), '.1f')} s; received "
                    f"{(r.get('neighbor') or {}).get('received')}; CPU feeder "
                    f"{B.fmt(cpu.get('bird'), '.1f')} s, router ExaBGP "
                    f"{B.fmt(cpu.get('exabgp'), '.1f')} s, rov-router "
                    f"{B.fmt(cpu.get('rov-router'), '.1f')} s; other jobs "
                    f"{B.fmt(B.foreign_cpu(cpu), '.1f')} CPU-s"
                    + ("" if r["ok"] else "  INCOMPLETE: " + "; ".join(r["notes"])),
                    flush=True,
                )
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            one(ctx, tmp / "profiled", "replay", args.profile)
            print(f"  profile: {args.profile / 'replay.txt'}")
            B.print_profile(args.profile / "replay.txt")
        med = {
            k: statistics.median([r["rate"] for r in v if r.get("rate")] or [0])
            for k, v in runs.items()
        }
        ratio = med["replay"] / med["bird"] if med["bird"] else None
        print(
            f"median routes/s: BIRD {med['bird']:,.0f}, rov-router replay {med['replay']:,.0f}; "
            f"replay / BIRD = {B.fmt(ratio, '.2f')} (target >= 0.80)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
