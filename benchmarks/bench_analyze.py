"""``rov-router analyze`` at full-table scale: the report and a 1,000-ROA what-if.

Run ``python benchmarks/bench_analyze.py [--quick] [--no-peer]`` from the repository root
(take the interop lock when other work runs on the machine).  A benchmark: it prints figures,
it asserts nothing about time.

* Data: the 998k-line CAIDA RouteViews pfx2as 2024-04-06 (1,004,423 routes after splitting
  MOAS lines; AS_SET origins are NONE) against the 424,223 RIPE prepdev VRPs.
* Report: states, NIST categories with the covering VRPs of every invalid, the covering-route
  search for every invalid, top origins / VRPs, and the JSON document with the reason of
  every invalid route (what ``--json`` prints).  Phases are timed separately; the end-to-end
  figure is loading the VRP file + building the store + reading the table + the report.
  Target: <= 10 s.
* What-if: 500 added ROAs (one per random not-found / invalid route: its prefix and origin)
  and 500 removed VRPs (random ones that cover a route), 1,000 changes, one ``what_if`` call.
  Target: <= 2 s.  The result is compared with a full recomputation on the modified VRP set
  (must be identical).
* Peer, in the same run: RTRlib 0.8 ``rpki-rov`` (C) answering the same table's routes from a
  StayRTR serving the same VRPs: validation only (state + covering VRPs per route), no
  categories, no covering-route search.  Its wall time includes its sync and its own output.
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_REPORT = 10.0
TARGET_WHATIF = 2.0
SEED = 15
FLAGS = ("-refresh", "86400", "-metrics.addr", "", "-protocol", "1")


def shared_data() -> Path:
    env = os.environ.get("ROV_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data"


def peer_rpki_rov(vrp_file: Path, table, work: Path) -> tuple[float, int] | None:
    """Wall time of rpki-rov over the table (IPv4/IPv6 routes with an AS origin)."""
    from rov_router.procs import free_port, port_listening, stop_child

    stayrtr = shutil.which("stayrtr")
    rov = shutil.which("rpki-rov")
    if not stayrtr or not rov:
        print("peer: stayrtr or rpki-rov not installed; peer not measured")
        return None
    with lzma.open(vrp_file) as fh:
        doc = json.load(fh)
    for r in doc["roas"]:
        r.pop("expires", None)
    f = work / "prepdev.json"
    f.write_text(json.dumps(doc))
    port = free_port()
    log = open(work / "stayrtr.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [stayrtr, "-bind", f"127.0.0.1:{port}", "-cache", str(f), "-checktime=false", *FLAGS],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while not (port_listening(port) and b"New update" in (work / "stayrtr.log").read_bytes()):
            if time.monotonic() > deadline or proc.poll() is not None:
                print("peer: StayRTR did not come up; peer not measured")
                return None
            time.sleep(0.05)
        lines = "".join(
            f"{table.prefix(i).replace('/', ' ')} {table.origins[i]}\n"
            for i in range(len(table))
            if table.origins[i] is not None
        )
        t0 = time.perf_counter()
        r = subprocess.run(
            [rov, "127.0.0.1", str(port)], input=lines, text=True, capture_output=True
        )
        dt = time.perf_counter() - t0
        answered = sum(1 for x in r.stdout.splitlines() if x.count("|") == 2)
        return dt, answered
    finally:
        stop_child(proc)
        log.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="one run of each phase instead of 3")
    ap.add_argument("--no-peer", action="store_true", help="skip the rpki-rov measurement")
    args = ap.parse_args()
    reps = 1 if args.quick else 3
    data = shared_data()
    vrp_file = data / "vrps" / "rpki-client_ripe-prepdev_20230504.json.xz"
    route_file = data / "routes" / "caida_routeviews-rv2-20240406.pfx2as.gz"
    if not vrp_file.is_file() or not route_file.is_file():
        print(f"bench_analyze: SKIPPED: shared data not found in {data} (set ROV_SHARED_DATA)")
        return 0

    from rov_router.analysis.output import to_json
    from rov_router.analysis.report import _prefix_text, analyze, no_gc, unpack_vrp
    from rov_router.analysis.table import read_table
    from rov_router.analysis.whatif import Change, what_if
    from rov_router.rpki.store import VRPStore
    from rov_router.rpki.validate import INVALID
    from rov_router.rpki.vrp import VRP, load_vrp_file

    print(
        f"machine: {os.cpu_count()} cores, shared with 4 other helpers working at the same "
        "time: figures carry noise\n"
    )
    runs: dict[str, list[float]] = {}

    def timed(name: str, fn):
        t0 = time.perf_counter()
        out = fn()
        runs.setdefault(name, []).append(time.perf_counter() - t0)
        return out

    for _ in range(reps):
        unpack_vrp.cache_clear()  # every run starts cold, as one 'analyze' command does
        _prefix_text.cache_clear()
        with no_gc():  # as 'analyze' loads it: one big allocation burst
            vs = timed("load VRP file", lambda: load_vrp_file(vrp_file, ignore_expires=True))
        store = VRPStore()
        with no_gc():
            timed("build VRP store", lambda s=store, v=vs: s.replace("f", v.vrps, v.aspas))
        table = timed("read table", lambda: read_table(route_file))
        rep = timed("report (states, categories, covers)", lambda s=store, t=table: analyze(s, t))
        doc = timed("JSON with every invalid's reason", lambda r=rep: to_json(r))
    med = {k: statistics.median(v) for k, v in runs.items()}
    print(f"VRPs {rep.vrps}, routes {len(table)}, invalid {len(rep.invalid)}")
    print(f"states {doc['states']}")
    print(f"categories {doc['invalid_categories']}")
    print(f"covering route {doc['invalid_cover']}\n")
    print(f"=== Report, median of {reps} run(s) ===")
    for k, v in med.items():
        print(f"  {k:<40} {v:6.2f} s   (runs: {', '.join(f'{x:.2f}' for x in runs[k])})")
    analysis = med["report (states, categories, covers)"] + med["JSON with every invalid's reason"]
    total = sum(med.values())
    print(f"  {'analysis alone (report + JSON)':<40} {analysis:6.2f} s")
    print(
        f"  {'end to end (load + store + table + all)':<40} {total:6.2f} s   target <= "
        f"{TARGET_REPORT:.0f} s: {'PASS' if total <= TARGET_REPORT else 'FAIL'}"
    )

    # -- what-if of 1,000 ROAs
    rnd = random.Random(SEED)
    adds: set[VRP] = set()
    for i in rnd.sample(range(len(table)), 2000):
        if len(adds) == 500:
            break
        if table.origins[i] is not None and str(rep.states[i]) != "valid":
            a, p = table.addrs[i], table.plens[i]
            adds.add(VRP(a, p, p, table.origins[i]))
    covering = sorted({v for i in rnd.sample(rep.invalid, 3000) for v in rep.verdict(i).covering})
    removes = set(rnd.sample(covering, 500))
    change = Change(add=adds, remove=removes)
    wt = []
    for n in range(reps):
        if n:
            rep._index = None  # measure the first call each time: it builds the prefix index
        t0 = time.perf_counter()
        res = what_if(store, rep, change)
        wt.append(time.perf_counter() - t0)
    w = statistics.median(wt)
    print(f"\n=== What-if: {len(adds)} ROAs added + {len(removes)} removed ===")
    print(f"  revalidated {res.revalidated} routes, {len(res.routes)} change; {res.transitions()}")
    print(
        f"  what_if() incl. building the prefix index: {w:.2f} s (runs: "
        f"{', '.join(f'{x:.2f}' for x in wt)})   target <= {TARGET_WHATIF:.0f} s: "
        f"{'PASS' if w <= TARGET_WHATIF else 'FAIL'}"
    )
    t0 = time.perf_counter()
    res2 = what_if(store, rep, change)
    print(f"  a second what-if on the same report (index built): {time.perf_counter() - t0:.2f} s")
    assert len(res2.routes) == len(res.routes)
    # -- full recomputation with the modified set
    t0 = time.perf_counter()
    store2 = VRPStore()
    with no_gc():
        store2.replace("f", (vs.vrps - removes) | adds)
    rep2 = analyze(store2, table)
    t_full = time.perf_counter() - t0
    lab1 = [rep.categories.get(i) or str(s) for i, s in enumerate(rep.states)]
    lab2 = [rep2.categories.get(i) or str(s) for i, s in enumerate(rep2.states)]
    expected = {i: (lab1[i], lab2[i]) for i in range(len(table)) if lab1[i] != lab2[i]}
    got = {c.index: (c.before, c.after) for c in res.routes}
    covers_same = all(
        c.cover_after == rep2.cover[c.index] for c in res.routes if c.after_verdict.state is INVALID
    )
    same = got == expected and covers_same
    print(
        f"  full recomputation (new store + report): {t_full:.2f} s, "
        f"{t_full / w:.1f}x the what-if; identical to the what-if: {same}"
    )
    # -- peer
    if not args.no_peer:
        work = Path(tempfile.mkdtemp(prefix="bench-analyze-"))
        try:
            peer = peer_rpki_rov(vrp_file, table, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if peer:
            dt, answered = peer
            print(
                f"\n=== Peer: RTRlib rpki-rov, {answered} routes (validation + covering VRPs "
                f"only, incl. its sync) ===\n  {dt:.2f} s; rov-router's full analysis "
                f"(report + JSON) takes {analysis / dt:.2f}x that, end to end {total / dt:.2f}x"
            )
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
