"""The long fuzz run of the RTR code a peer can reach (``tests/fuzz/harness.py``): the PDU
decoder and framer, the client session + VRP store, the cache's router session.

Run ``python benchmarks/fuzz_rtr.py [--inputs 1000000] [--seed 1]`` from the repository root.
``--inputs`` is the total, split over the three targets (decoder 50 %, client 25 %, cache 25 %).
Prints inputs, escapes (exceptions or broken invariants), hangs (an input over 1 s), the slowest
input, the rate and the peak RSS of this process; exit 1 on any escape or hang.  CI runs a short
seeded run of the same harness (``tests/fuzz/test_fuzz.py``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fuzz.harness import peak_rss_mib, run

SHARE = {"decode": 0.5, "client": 0.25, "cache": 0.25}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inputs", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    t0 = time.perf_counter()
    total = esc = hangs = 0
    print(f"fuzz_rtr: {args.inputs} inputs, seed {args.seed}", flush=True)
    for target, share in SHARE.items():
        n = int(args.inputs * share)
        res = run(target, n, args.seed)
        total += res.inputs
        esc += res.escapes
        hangs += res.hangs
        print(
            f"  {target:7s} {res.inputs:>9} inputs  {res.escapes} escapes  {res.hangs} hangs  "
            f"slowest {res.slowest * 1000:.1f} ms  {res.inputs / res.seconds:,.0f}/s  "
            f"({res.seconds:.0f} s)",
            flush=True,
        )
        for ex in res.examples:
            print("    " + ex.replace("\n", "\n    "))
    print(
        f"total {total} inputs, {esc} escapes, {hangs} hangs, peak RSS {peak_rss_mib():.0f} MiB, "
        f"{time.perf_counter() - t0:.0f} s"
    )
    return 1 if esc or hangs else 0


if __name__ == "__main__":
    sys.exit(main())
