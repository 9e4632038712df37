"""RFC 6811 validation rate: rov-router's checker vs a bare pytricia lookup, on real routes.

Run ``python benchmarks/bench_validate.py [--quick]`` from the repository root.  This is a
benchmark (it prints figures and ratios), not a test.

* Routes: CAIDA RouteViews pfx2as 2024-04-06 (``routes/caida_routeviews-rv2-20240406.pfx2as.gz``,
  998k lines ``prefix<TAB>length<TAB>origin``).  ``A_B`` (MOAS) gives one check per origin;
  a part with a comma (``A,B``: an AS_SET) gives origin None.  Each route is parsed once into
  ``(addr bytes, plen, origin)`` with :func:`rov_router.rpki.vrp.parse_prefix`.
* VRPs: the RIPE prepdev export (424,223 VRPs), ``load_vrp_file(path, ignore_expires=True)``,
  put into ``VRPStore().replace("f", ...)``.
* (a) ``make_checker(store)`` -> ``check(addr, plen, origin)``, one route at a time in a Python
  loop; (b) the same loop calling ``.get((addr, plen))`` on a ``pytricia.PyTricia(32)`` holding
  the same VRP prefixes, the floor for any per-route Python lookup on pytricia; (c)
  ``validate_route(store, addr, plen, origin)`` (verdict with its reason) on a fixed 100k
  sample.  (a) and (b) run 5 times, interleaved (``--quick``: once); the median is reported.
  (b)'s trie gets the prefixes in the store's insertion order (length, then address), so both
  tries have the same layout; a trie built in hash order (b-alt) is printed for information.
* Targets: (a) >= 300,000 routes/s and (a) >= 80 % of (b).
"""

from __future__ import annotations

import argparse
import gc
import gzip
import os
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

TARGET_RATE = 300_000
TARGET_FRACTION = 0.80
SAMPLE = 100_000
SEED = 20240406


def shared_data() -> Path:
    env = os.environ.get("ROV_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data"


def load_routes(path: Path, parse_prefix) -> tuple[list[tuple[bytes, int, int | None]], dict]:
    routes: list[tuple[bytes, int, int | None]] = []
    stats = Counter()
    with gzip.open(path, "rt") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 3:
                stats["skipped_lines"] += 1
                continue
            pfx, plen_s, origins = parts
            try:
                addr, plen = parse_prefix(f"{pfx}/{plen_s}")
            except ValueError:
                stats["skipped_lines"] += 1
                continue
            stats["lines"] += 1
            parts_o = origins.split("_")
            if len(parts_o) > 1:
                stats["moas_lines"] += 1
            for o in parts_o:
                if "," in o:
                    stats["as_set_origins"] += 1
                    routes.append((addr, plen, None))
                else:
                    routes.append((addr, plen, int(o)))
            if len(addr) == 16:
                stats["ipv6_lines"] += 1
    return routes, dict(stats)


def timed(loop, reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        gc.collect()
        t0 = time.perf_counter()
        loop()
        out.append(time.perf_counter() - t0)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="one timing run instead of five")
    args = ap.parse_args()
    reps = 1 if args.quick else 5

    data = shared_data()
    vrp_file = data / "vrps" / "rpki-client_ripe-prepdev_20230504.json.xz"
    route_file = data / "routes" / "caida_routeviews-rv2-20240406.pfx2as.gz"
    if not data.is_dir() or not vrp_file.is_file() or not route_file.is_file():
        print(
            f"bench_validate: SKIPPED: shared data not found ({data}: need {vrp_file.name} and "
            f"{route_file.name}); set ROV_SHARED_DATA to the shared/data folder to run it."
        )
        return 0

    import pytricia

    from rov_router.rpki.store import VRPStore
    from rov_router.rpki.validate import make_checker, validate_route
    from rov_router.rpki.vrp import load_vrp_file, parse_prefix

    t0 = time.perf_counter()
    routes, rstats = load_routes(route_file, parse_prefix)
    print(
        f"routes: {rstats.get('lines', 0)} lines -> {len(routes)} (prefix, origin) checks "
        f"({rstats.get('moas_lines', 0)} MOAS lines, {rstats.get('as_set_origins', 0)} AS_SET "
        f"origins -> None, {rstats.get('ipv6_lines', 0)} IPv6, "
        f"{rstats.get('skipped_lines', 0)} lines skipped); parsed in {time.perf_counter() - t0:.1f} s"
    )

    t0 = time.perf_counter()
    s = load_vrp_file(vrp_file, ignore_expires=True)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    store = VRPStore()
    store.replace("f", s.vrps, s.aspas, s.router_keys)
    t_store = time.perf_counter() - t0
    print(
        f"VRPs: {len(s.vrps)} loaded in {t_load:.1f} s, store built in {t_store:.1f} s "
        f"({store.counts()['vrp_prefixes_v4']} IPv4 + {store.counts()['vrp_prefixes_v6']} IPv6 "
        "VRP prefixes)"
    )

    # (b)'s trie gets the prefixes in the order the store inserts them (by length, then
    # address), so both tries have the same memory layout; insertion order alone moves the
    # bare lookup rate by ~20 % (see b-alt, built in the VRP set's hash order).
    keys = sorted({(v.addr, v.plen) for v in s.vrps}, key=lambda k: (len(k[0]), k[1], k[0]))
    bare4 = pytricia.PyTricia(32)
    bare6 = pytricia.PyTricia(128)
    for k in keys:
        (bare4 if len(k[0]) == 4 else bare6)[k] = True
    alt4 = pytricia.PyTricia(32)
    for v in s.vrps:
        if len(v.addr) == 4:
            alt4[(v.addr, v.plen)] = True
    only_v4 = all(len(a) == 4 for a, _, _ in routes)

    # (a) mirrors (b): when every route is IPv4, both use one family's trie (the router knows
    # each route's family); (a-gen) is the checker that dispatches on the family per call
    check = make_checker(store, 4) if only_v4 else make_checker(store)
    check_gen = make_checker(store)

    def loop_a() -> None:
        for addr, plen, origin in routes:
            check(addr, plen, origin)

    def loop_a_gen() -> None:
        for addr, plen, origin in routes:
            check_gen(addr, plen, origin)

    def make_loop_b(t4, t6):
        if only_v4:
            get = t4.get

            def loop_b() -> None:
                for addr, plen, _origin in routes:
                    get((addr, plen))

        else:  # not the case for this file (IPv4 only), kept for other route files
            get4, get6 = t4.get, t6.get

            def loop_b() -> None:
                for addr, plen, _origin in routes:
                    (get4 if len(addr) == 4 else get6)((addr, plen))

        return loop_b

    loop_b = make_loop_b(bare4, bare6)
    loop_b_alt = make_loop_b(alt4, bare6)

    n = len(routes)
    print(
        f"\ntiming {n} checks, {reps} interleaved run(s) of (a), (b), (b-alt), "
        "one route per Python loop iteration ..."
    )
    ta: list[float] = []
    tb: list[float] = []
    tb_alt: list[float] = []
    ta_gen: list[float] = []
    for _ in range(reps):
        ta += timed(loop_a, 1)
        ta_gen += timed(loop_a_gen, 1)
        tb += timed(loop_b, 1)
        tb_alt += timed(loop_b_alt, 1)
    rate_a = n / statistics.median(ta)
    rate_b = n / statistics.median(tb)
    rate_b_alt = n / statistics.median(tb_alt)
    rate_a_gen = n / statistics.median(ta_gen)

    counts = Counter(str(check(a, p, o)) for a, p, o in routes)

    sample = random.Random(SEED).sample(routes, min(SAMPLE, n))
    verdicts: list = []

    def loop_c() -> None:
        verdicts.clear()
        for addr, plen, origin in sample:
            verdicts.append(validate_route(store, addr, plen, origin))

    tc = timed(loop_c, 1)
    rate_c = len(sample) / tc[0]
    counts_c = Counter(str(v.state) for v in verdicts)
    mismatches = sum(
        1 for v, (a, p, o) in zip(verdicts, sample, strict=True) if v.state != check(a, p, o)
    )

    frac = rate_a / rate_b
    ok_rate = rate_a >= TARGET_RATE
    ok_frac = frac >= TARGET_FRACTION

    def spread(ts: list[float], count: int) -> str:
        if len(ts) < 2:
            return ""
        return f"  (runs: {', '.join(f'{count / t / 1e3:.0f}k' for t in ts)})"

    print("\n=== Validation rate (routes/s, median) ===\n")
    print(
        f"(a) make_checker check(addr, plen, origin)   {rate_a:>12,.0f} routes/s"
        f"   target >= {TARGET_RATE:,}: {'PASS' if ok_rate else 'FAIL'}{spread(ta, n)}"
    )
    print(
        f"    a-gen: family dispatch per call          {rate_a_gen:>12,.0f} routes/s"
        f"{spread(ta_gen, n)}  ({rate_a_gen / rate_b:.1%} of (b))"
    )
    print(f"(b) bare pytricia .get((addr, plen))        {rate_b:>12,.0f} routes/s{spread(tb, n)}")
    print(
        f"    b-alt: same, trie built in hash order    {rate_b_alt:>12,.0f} routes/s"
        f"{spread(tb_alt, n)}  (information only)"
    )
    print(
        f"(c) validate_route (verdict + reason), 100k {rate_c:>12,.0f} routes/s"
        f"   ({tc[0]:.2f} s for {len(sample)} routes)"
    )
    print(
        f"\nratio (a)/(b) = {frac:.1%}   target >= {TARGET_FRACTION:.0%}: "
        f"{'PASS' if ok_frac else 'FAIL'}   [(a)/(b-alt) = {rate_a / rate_b_alt:.1%}]"
    )
    print(
        f"\nverdicts, all {n} checks: valid {counts['valid']}, invalid {counts['invalid']}, "
        f"not-found {counts['not-found']}"
    )
    print(
        f"verdicts, 100k sample (c): valid {counts_c['valid']}, invalid {counts_c['invalid']}, "
        f"not-found {counts_c['not-found']}; (a) and (c) disagree on {mismatches}"
    )
    if mismatches:
        print("bench_validate: make_checker and validate_route DISAGREE on some routes")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
