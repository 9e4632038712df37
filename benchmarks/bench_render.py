"""One huge UPDATE through the router core: a 4,000-AS path shared by 12,000 prefixes.

Run ``python benchmarks/bench_render.py`` from the repository root.  Prints the time of
``feed_line`` and of ``commands()`` (the ExaBGP announce commands for one downstream), then the
peak memory ``commands()`` allocates (a second run under ``tracemalloc``, which is slower).  The
attribute text is rendered once per UPDATE; rendering it once per prefix took seconds and
hundreds of MB for this UPDATE.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rov_router.config import load_config
from rov_router.router import RouterCore
from rov_router.rpki.store import VRPStore

CONFIG = """
[router]
asn = 65000
router_id = "127.0.0.1"

[[neighbor]]
address = "127.0.0.2"
asn = 65001

[[neighbor]]
address = "127.0.0.9"
asn = 65009
role = "downstream"
"""


def line(kind: str, peer: str, **body) -> str:
    n = {"address": {"local": "127.0.0.1", "peer": peer}, "asn": {"peer": 65001}, **body}
    return json.dumps({"exabgp": "5.0.0", "type": kind, "neighbor": n})


def run(path_len: int, prefixes: int, trace: bool) -> tuple[float, float, int, float]:
    with tempfile.TemporaryDirectory() as td:
        p = Path(td) / "r.toml"
        p.write_text(CONFIG)
        core = RouterCore(load_config(p), VRPStore())
    for peer in ("127.0.0.9", "127.0.0.2"):
        core.feed_line(line("state", peer, state="up"))
    update = line(
        "update",
        "127.0.0.2",
        direction="receive",
        message={
            "update": {
                "attribute": {
                    "origin": "igp",
                    "as-path": {
                        "0": {"element": "as-sequence", "value": list(range(1, path_len + 1))}
                    },
                },
                "announce": {
                    "ipv4 unicast": {
                        "127.0.0.2": [
                            {"nlri": f"20.{i // 256}.{i % 256}.0/24"} for i in range(prefixes)
                        ]
                    }
                },
            }
        },
    )
    t0 = time.perf_counter()
    core.feed_line(update)
    t1 = time.perf_counter()
    if trace:
        tracemalloc.start()
    cmds = core.commands()
    t2 = time.perf_counter()
    peak = tracemalloc.get_traced_memory()[1] / 1e6 if trace else 0.0
    tracemalloc.stop()
    return t1 - t0, t2 - t1, len(cmds), peak


def main() -> int:
    feed, cmd, n, _ = run(4000, 12_000, False)
    print(
        f"4,000-AS path x 12,000 prefixes: feed_line {feed:.2f} s, commands() {cmd:.2f} s, {n} commands"
    )
    _, _, _, peak = run(4000, 12_000, True)
    print(f"commands() peak allocation (tracemalloc): {peak:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
