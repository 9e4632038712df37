"""rov-router between real routers, on a full table: BIRD 2 feeder -> rov-router -> BIRD 2 sink,
the sink compared route by route with RTRlib's verdicts.

Run ``python benchmarks/bench_between.py [--limit N]`` from the repository root.  It prints
figures and the mismatch count (0 is exact); it is a check with figures, not a test.

* Routes: the PCH full table as ``bench_router.load_table`` reads it (577,703 IPv4 prefixes,
  last path per prefix).  The feeder is BIRD 2 (``bench_router.bird_conf``): one static route
  per prefix with the AS path rebuilt by ``bgp_path.prepend``, exported over eBGP from
  127.0.0.3; BIRD cannot build an AS_SET, so those paths arrive as plain sequences.
* VRPs: the RIPE prepdev rpki-client export with the ``expires`` keys removed, served by one
  **StayRTR** on 127.0.0.1 to both rov-router (RTR v2) and RTRlib's ``rpki-rov`` (RTR v1).
* rov-router: ``run --json`` with the feeder (upstream, drop-invalid) and the sink
  (downstream, 127.0.0.9, ``next_hop = "keep"``) as neighbors and StayRTR as its RPKI source;
  started before the feeder, it holds routes until the first sync.
* Sink: BIRD 2 on 127.0.0.9, ``import all`` into its own table.
* Expected: every prefix whose (prefix, origin) RTRlib calls valid or not-found, with the AS path
  ``ROUTER_AS FEEDER_AS <path>``; no other prefix.  ``birdc show route all`` is parsed and
  compared prefix by prefix (presence and AS path).

Every process is started by PID in its own session and stopped by that PID.  Take the interop
lock (``flock /tmp/rov-interop.lock``) while it runs: it uses 127.0.0.1/.3/.9.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench_router as B

from rov_router.procs import free_port, port_listening, stop_child

SINK_ADDR = "127.0.0.9"
LOAD_TIMEOUT = 1800.0
STABLE = 20.0  # the sink's count unchanged this long (after reaching the expected count) = done


def spawn(argv: list[str], log: Path, **kw) -> subprocess.Popen:
    with open(log, "wb") as f:
        return subprocess.Popen(
            argv, stdout=f, stderr=subprocess.STDOUT, start_new_session=True, **kw
        )


def stayrtr(vrps: Path, tmp: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    log = tmp / "stayrtr.log"
    p = spawn(
        [
            "stayrtr",
            "-bind",
            f"127.0.0.1:{port}",
            "-cache",
            str(vrps),
            "-checktime=false",
            "-refresh",
            "86400",
            "-metrics.addr",
            "",
        ],
        log,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if port_listening(port) and b"New update" in log.read_bytes():
            return p, port
        if p.poll() is not None:
            raise SystemExit(f"stayrtr exited: {log.read_text()[-2000:]}")
        time.sleep(0.2)
    raise SystemExit("stayrtr not ready")


def rtrlib_verdicts(queries: list[tuple[str, int, int]], port: int, tmp: Path) -> dict:
    """(address, length, origin) -> 0 valid / 1 not-found / 2 invalid, from ``rpki-rov``."""
    text = "".join(f"{a} {plen} {asn}\n" for a, plen, asn in queries)
    r = subprocess.run(
        ["rpki-rov", "127.0.0.1", str(port)],
        input=text,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    out: dict[tuple[str, int, int], int] = {}
    for line in r.stdout.splitlines():
        parts = line.split("|")
        if len(parts) != 3:
            continue
        a, plen, asn = parts[0].split()
        out[(a, int(plen), int(asn) & 0xFFFFFFFF)] = int(parts[2])
    return out


def sink_conf(tmp: Path, port: int, router_as: int, sink_as: int) -> Path:
    conf = tmp / "sink.conf"
    conf.write_text(
        f"""log "{tmp / "sink.log"}" {{ warning, error, fatal }};
router id {SINK_ADDR};
ipv4 table t4;
protocol bgp up {{
\tlocal {SINK_ADDR} port {port} as {sink_as};
\tneighbor {B.ROUTER_ADDR} as {router_as};
\tpassive on; strict bind on; multihop; hold time 240;
\tipv4 {{ table t4; import all; export none; }};
}}
"""
    )
    return conf


def birdc(ctl: Path, *args: str, timeout: float = 600) -> str:
    return subprocess.run(
        ["birdc", "-s", str(ctl), *args], capture_output=True, text=True, timeout=timeout
    ).stdout


def sink_count(ctl: Path) -> int:
    m = re.search(r"(\d+) of \d+ routes", birdc(ctl, "show", "route", "table", "t4", "count"))
    return int(m.group(1)) if m else 0


def sink_table(ctl: Path) -> dict[str, str]:
    """prefix -> BGP.as_path text, from ``show route table t4 all``."""
    out: dict[str, str] = {}
    prefix = None
    for line in birdc(ctl, "show", "route", "table", "t4", "all", timeout=1800).splitlines():
        if line and not line[0].isspace() and "/" in line.split()[0]:
            prefix = line.split()[0]
        elif prefix and line.strip().startswith("BGP.as_path:"):
            out[prefix] = line.split(":", 1)[1].strip()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=None, help="first N prefixes only")
    args = ap.parse_args()
    data = B.shared_data()
    t0 = time.monotonic()
    table, info = B.load_table(data / B.MRT, args.limit)
    router_as, feeder_as = B.pick_asns(table)
    used = {a for _o, segs in table.values() for _k, asns in segs for a in asns}
    # the sink's AS must be in no path either: a router never sends a route whose path holds
    # the neighbor's AS (the neighbor would drop it as a loop)
    sink_as = next(a for a in range(64600, 65000) if a not in used)
    print(
        f"table: {len(table):,} prefixes ({info})  router AS{router_as}, feeder AS{feeder_as}, "
        f"sink AS{sink_as}"
    )
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="bench-between-") as td:
        tmp = Path(td)
        try:
            vrps = tmp / "vrps.json"
            n_vrps = B.write_vrps(data / B.PREPDEV, vrps)
            cache, cache_port = stayrtr(vrps, tmp)
            procs.append(cache)
            print(f"StayRTR on 127.0.0.1:{cache_port} serving {n_vrps:,} VRPs")

            # the independent verdicts
            expected: dict[str, str] = {}
            queries = []
            paths = {}
            for prefix, (_origin, segs) in table.items():
                flat = [a for _k, asns in segs for a in asns]
                origin = flat[-1] if flat else feeder_as
                a, plen = prefix.split("/")
                queries.append((a, int(plen), origin))
                paths[prefix] = " ".join(str(x) for x in (router_as, feeder_as, *flat))
            t = time.monotonic()
            verdicts = rtrlib_verdicts(queries, cache_port, tmp)
            counts = {0: 0, 1: 0, 2: 0}
            for (a, plen, origin), prefix in zip(queries, table, strict=True):
                v = verdicts.get((a, plen, origin))
                if v is None:
                    raise SystemExit(f"rpki-rov gave no verdict for {prefix} AS{origin}")
                counts[v] += 1
                if v != 2:
                    expected[prefix] = paths[prefix]
            print(
                f"RTRlib rpki-rov: {counts[0]:,} valid, {counts[1]:,} not-found, "
                f"{counts[2]:,} invalid ({time.monotonic() - t:.1f} s)"
            )

            # sink, router, feeder
            sink_port = free_port(SINK_ADDR)
            sink_ctl = tmp / "sink.ctl"
            conf = sink_conf(tmp, sink_port, router_as, sink_as)
            procs.append(spawn(["bird", "-f", "-c", str(conf), "-s", str(sink_ctl)], tmp / "s.out"))
            port = free_port()
            rt = tmp / "router.toml"
            rt.write_text(
                f"""[router]
asn = {router_as}
router_id = "{B.ROUTER_ADDR}"
listen = "{B.ROUTER_ADDR}"
port = {port}

[[neighbor]]
address = "{B.FEEDER_ADDR}"
asn = {feeder_as}
role = "upstream"
policy = "drop-invalid"

[[neighbor]]
address = "{SINK_ADDR}"
asn = {sink_as}
role = "downstream"
port = {sink_port}
next_hop = "keep"

[[rpki]]
name = "stayrtr"
cache = "127.0.0.1:{cache_port}"
"""
            )
            env = {**os.environ, "TMPDIR": str(tmp)}
            router = spawn(
                [sys.executable, "-m", "rov_router.cli", "run", "--config", str(rt), "--plain"],
                tmp / "router.out",
                env=env,
            )
            procs.append(router)
            routes = tmp / "routes.conf"
            B.write_bird_routes(table, routes)
            bird_port = free_port(B.FEEDER_ADDR)
            fconf = B.bird_conf(tmp, routes, port, bird_port, feeder_as, router_as)
            t_load = time.monotonic()
            procs.append(
                spawn(
                    ["bird", "-f", "-c", str(fconf), "-s", str(tmp / "feeder.ctl")], tmp / "f.out"
                )
            )
            last, since = -1, time.monotonic()
            while time.monotonic() - t_load < LOAD_TIMEOUT:
                time.sleep(2)
                if router.poll() is not None:
                    raise SystemExit(
                        "rov-router exited:\n" + (tmp / "router.out").read_text()[-3000:]
                    )
                n = sink_count(sink_ctl)
                if n != last:
                    last, since = n, time.monotonic()
                elif n >= len(expected) and time.monotonic() - since > STABLE:
                    break
                elif n > 0 and time.monotonic() - since > 120:
                    break  # stalled below the expected count: compare what is there
            t_loaded = since - t_load
            print(f"sink: {last:,} routes, stable {t_loaded:.0f} s after the feeder started")
            got = sink_table(sink_ctl)
            missing = [p for p in expected if p not in got]
            extra = [p for p in got if p not in expected]
            wrong_path = [p for p, path in expected.items() if p in got and got[p] != path]
            mismatches = len(missing) + len(extra) + len(wrong_path)
            print(
                f"route by route: expected {len(expected):,} (valid + not-found), sink holds "
                f"{len(got):,}; missing {len(missing)}, extra (leaked) {len(extra)}, "
                f"wrong AS path {len(wrong_path)}  => mismatches = {mismatches}"
            )
            for name, lst in (("missing", missing), ("extra", extra), ("path", wrong_path)):
                for p in lst[:5]:
                    print(f"  {name}: {p} want {expected.get(p)!r} got {got.get(p)!r}")
            rlog = (tmp / "router.out").read_text()
            for line in rlog.splitlines():
                if "held routes" in line or "summary:" in line or "ExaBGP 5" in line:
                    print("  router:", line[:200])
            print(json.dumps({"mismatches": mismatches, "expected": len(expected)}))
            print(f"total {time.monotonic() - t0:.0f} s")
            return 0 if mismatches == 0 else 1
        finally:
            for p in reversed(procs):
                stop_child(p)


if __name__ == "__main__":
    sys.exit(main())
