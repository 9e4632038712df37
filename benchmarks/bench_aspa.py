"""ASPA AS_PATH verification rate on real paths, next to origin validation on the same routes.

Run ``python benchmarks/bench_aspa.py [--quick]`` from the repository root (a benchmark: it
prints figures and ratios, it is not a test).

* Routes: the real PCH full table sent as UPDATEs at session start
  (``routes/mrt/pch_bgp4mp-et_fulltable_20151023.mrt.gz``, 577,737 NLRI with AS paths), read
  with mrtparse (``pip install mrtparse``).
* RPKI: the RIPE prepdev export (``vrps/rpki-client_ripe-prepdev_20230504.json.xz``): 424,223
  VRPs and 6,647 ASPA records (per-AFI lists merged per customer), expiry ignored.
* (a) ``rov_router.rpki.aspa.verify`` per route, downstream algorithm (the routes come from a
  provider-like session), neighbor = first AS; (b) the same with the upstream algorithm;
  (c) ``make_checker`` origin validation per route.  One route per Python call, 3 runs, median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def shared_data() -> Path:
    env = os.environ.get("ROV_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def load_routes(path: Path, limit: int | None) -> list[tuple[bytes, int, list[int], list[int]]]:
    import mrtparse

    from rov_router.rpki.vrp import parse_prefix

    out = []
    for e in mrtparse.Reader(str(path)):
        bm = e.data.get("bgp_message")
        if not bm or not bm.get("nlri"):
            continue
        seq: list[int] = []
        sets: list[int] = []
        for a in bm.get("path_attributes", []):
            if set(a["type"].values()) & {"AS_PATH", "AS4_PATH"}:
                seq, sets = [], []
                for seg in a["value"]:
                    kind = next(iter(seg["type"].values()))
                    (seq if kind == "AS_SEQUENCE" else sets).extend(int(x) for x in seg["value"])
        for n in bm["nlri"]:
            addr, plen = parse_prefix(f"{n['prefix']}/{n['length']}")
            out.append((addr, plen, seq, sets))
            if limit and len(out) >= limit:
                return out
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="100k routes, one run")
    args = ap.parse_args()
    data = shared_data()
    mrt = data / "routes/mrt/pch_bgp4mp-et_fulltable_20151023.mrt.gz"
    vrps = data / "vrps/rpki-client_ripe-prepdev_20230504.json.xz"
    if not mrt.exists() or not vrps.exists():
        print(f"SKIPPED: {data} does not hold the PCH MRT file and the prepdev export")
        return 0
    try:
        import mrtparse  # noqa: F401
    except ImportError:
        print("SKIPPED: mrtparse is not installed (pip install mrtparse)")
        return 0
    from rov_router.rpki.aspa import verify
    from rov_router.rpki.store import VRPStore
    from rov_router.rpki.validate import make_checker
    from rov_router.rpki.vrp import load_vrp_file

    t = time.perf_counter()
    routes = load_routes(mrt, 100_000 if args.quick else None)
    print(
        f"routes: {len(routes)} from {mrt.name} in {time.perf_counter() - t:.1f} s; "
        f"{sum(1 for r in routes if r[3])} with an AS_SET"
    )
    s = load_vrp_file(vrps, ignore_expires=True)
    store = VRPStore()
    store.replace("prepdev", s.vrps, s.aspas)
    print(f"RPKI: {len(s.vrps)} VRPs, {len(s.aspas)} ASPA records")
    providers = store.aspa_providers
    check = make_checker(store)
    on_path = sum(1 for r in routes if any(providers(a) is not None for a in r[2]))
    print(f"routes with at least one ASPA-attested AS on the path: {on_path}")
    reps = 1 if args.quick else 3

    def run_aspa(algorithm: str) -> Counter:
        c: Counter = Counter()
        for _addr, _plen, seq, sets in routes:
            c[
                verify(
                    seq,
                    providers,
                    algorithm=algorithm,
                    neighbor_as=seq[0] if seq else None,
                    as_set=sets,
                ).state.value
            ] += 1
        return c

    def run_rov() -> Counter:
        c: Counter = Counter()
        for addr, plen, seq, sets in routes:
            c[str(check(addr, plen, None if sets or not seq else seq[-1]))] += 1
        return c

    results = {}
    for name, fn in (
        ("ASPA downstream", lambda: run_aspa("downstream")),
        ("ASPA upstream", lambda: run_aspa("upstream")),
        ("ROV", run_rov),
    ):
        times = []
        counts: Counter = Counter()
        for _ in range(reps):
            t = time.perf_counter()
            counts = fn()
            times.append(time.perf_counter() - t)
        med = statistics.median(times)
        results[name] = len(routes) / med
        print(
            f"{name:16s} {results[name]:>12,.0f} routes/s  ({med:.2f} s; runs "
            f"{', '.join(f'{x:.2f}' for x in times)})  {dict(counts)}"
        )
    for name in ("ASPA downstream", "ASPA upstream"):
        print(
            f"{name} / ROV rate: {results[name] / results['ROV']:.2f} "
            f"(ASPA costs {results['ROV'] / results[name]:.1f}x origin validation per route)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
