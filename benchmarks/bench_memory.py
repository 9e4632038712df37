"""What the routing table allocates per route, in process (no sockets, no ExaBGP): the first N
PCH prefixes (default 100,000) as ExaBGP JSON lines into a ``RouterCore`` with one upstream and
one downstream up, then ``tracemalloc``'s difference per route and the 12 biggest sources.

    python benchmarks/bench_memory.py [N]
"""

from __future__ import annotations

import gc
import json
import sys
import tempfile
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench_router as B

from rov_router.config import load_config
from rov_router.router import RouterCore
from rov_router.rpki.store import VRPStore

SINK = "127.0.0.9"


def main() -> int:
    limit = int(sys.argv[1]) if len(sys.argv) > 1 else B.QUICK_ROUTES
    table, _ = B.load_table(B.shared_data() / B.MRT, limit)
    router_as, feeder_as = B.pick_asns(table)
    with tempfile.TemporaryDirectory(prefix="bench-mem-") as td:
        tmp = Path(td)
        vrps = tmp / "vrps.json"
        vrps.write_text('{"roas": []}')
        cfg = B.router_toml(tmp, 1790, vrps, router_as, feeder_as)
        cfg.write_text(
            cfg.read_text()
            + f'\n[[neighbor]]\naddress = "{SINK}"\nasn = 64600\nrole = "downstream"\n'
            + 'next_hop = "keep"\n'
        )
        core = RouterCore(load_config(cfg), VRPStore())
    lines = B.update_lines(table, feeder_as, router_as)
    core.feed_line(B.state_line(feeder_as, router_as))
    sink = json.loads(B.state_line(feeder_as, router_as))
    sink["neighbor"]["address"]["peer"] = SINK
    sink["neighbor"]["asn"]["peer"] = 64600
    core.feed_line(json.dumps(sink).encode())
    core.commands()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for i, line in enumerate(lines):
        core.feed_line(line)
        if i % 200 == 0:
            core.commands()
    core.commands()
    del lines
    gc.collect()
    diff = tracemalloc.take_snapshot().compare_to(before, "lineno")
    n = len(table)
    total = sum(s.size_diff for s in diff)
    print(
        f"{n:,} routes, {len(core.peers[SINK].adj_out):,} sent downstream: "
        f"{total / n:.0f} B per route allocated (tracemalloc)"
    )
    for s in diff[:12]:
        print(f"{s.size_diff / n:7.1f} B  {s.count_diff / n:5.2f} objects  {s.traceback}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
