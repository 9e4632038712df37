"""The downstream path: BIRD 2 feeder -> X -> BIRD 2 sink on the PCH table, where X is

* ``bird``: a BIRD 2 in the middle (what a C router does; no ROV),
* ``recv``: ExaBGP that only receives (``bench_router.run_baseline``: up -> End-of-RIB),
* ``relay``: the same ExaBGP as rov-router's (launched the same way, same settings: the
  command budget of ``rov_router.bgp.exabgp_run``), with a trivial process that re-announces
  every UPDATE it receives to the sink in the same batched command form and with the same
  window of commands awaiting an answer as rov-router (the floor ExaBGP's command channel
  allows), and withdraws everything, batched, when the feeder goes,
* ``rov``: ``rov-router run`` (drop-invalid, embedded cache on the prepdev VRPs).

Figures: feeder start -> sink complete (the sink's route count stops changing), then the feeder
is stopped and the time until the sink is empty again (withdrawals), rov-router's VmHWM per
route minus its size after the VRP sync, and the latency of ``rov-router show neighbors`` while
the table is being ingested.  Ratios are against ``recv`` and ``relay`` of the same run.

    flock /tmp/rov-interop.lock python benchmarks/bench_downstream.py [--quick] [--modes ...]

``--quick``: the first 100,000 prefixes.  ``--profile DIR``: py-spy records rov-router and its
ExaBGP (and the relay's ExaBGP) into DIR.  Uses 127.0.0.1/.3/.9; take the interop lock.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench_between as BB
import bench_router as B

from rov_router.bgp.speaker import WINDOW
from rov_router.procs import free_port, port_listening, stop_child

SINK_ADDR = BB.SINK_ADDR
STABLE = 8.0  # the sink's count unchanged this long = complete
TIMEOUT = 1800.0


# ---- the relay (hidden mode: run by ExaBGP as its process) --------------------------------------


def relay_main(sink: str, local_as: int, batch: int, window: int) -> int:
    """Re-announce every received UPDATE to ``sink`` (``announce attributes ... nlri``, at most
    ``batch`` prefixes a command, at most ``window`` commands awaiting ExaBGP's answer: the
    form and the window rov-router uses); on the feeder's ``down``, withdraw all of it, batched."""
    try:
        import orjson

        loads = orjson.loads
    except ImportError:  # pragma: no cover
        loads = json.loads
    out = sys.stdout
    held: dict[str, None] = {}
    queue: collections.deque[str] = collections.deque()
    outstanding = 0
    for line in sys.stdin.buffer:
        if not line.startswith(b"{"):
            if line.strip() in (b"done", b"error"):
                outstanding = max(0, outstanding - 1)
        else:
            m = loads(line)
            n = m.get("neighbor", {})
            peer = n.get("address", {}).get("peer")
            if peer == sink:
                continue
            cmds = queue
            if m.get("type") == "state" and n.get("state") == "down":
                ps = list(held)
                held.clear()
                for i in range(0, len(ps), batch):
                    cmds.append(
                        f"neighbor {sink} withdraw attributes next-hop self nlri "
                        + " ".join(ps[i : i + batch])
                    )
            elif m.get("type") == "update":
                u = n.get("message", {}).get("update")
                if not u:
                    continue
                a = u.get("attribute", {})
                path = " ".join(
                    " ".join(str(x) for x in seg["value"])
                    for _k, seg in sorted(a.get("as-path", {}).items(), key=lambda kv: int(kv[0]))
                )
                attrs = f"origin {a.get('origin', 'igp')} as-path [ {local_as} {path} ]"
                for _fam, by_nh in u.get("announce", {}).items():
                    for nh, nlris in by_nh.items():
                        ps = [x if isinstance(x, str) else x["nlri"] for x in nlris]
                        held.update(dict.fromkeys(ps))
                        for i in range(0, len(ps), batch):
                            cmds.append(
                                f"neighbor {sink} announce attributes next-hop {nh} {attrs} nlri "
                                + " ".join(ps[i : i + batch])
                            )
                ws = []
                for _fam, nlris in u.get("withdraw", {}).items():
                    ws += [x if isinstance(x, str) else x["nlri"] for x in nlris]
                for p in ws:
                    held.pop(p, None)
                for i in range(0, len(ws), batch):
                    cmds.append(
                        f"neighbor {sink} withdraw attributes next-hop self nlri "
                        + " ".join(ws[i : i + batch])
                    )
        send = []
        while queue and outstanding < window:
            send.append(queue.popleft())
            outstanding += 1
        if send:
            out.write("\n".join(send) + "\n")
            out.flush()
    return 0


# ---- helpers --------------------------------------------------------------------------------------


def sink_conf(tmp: Path, port: int, peer_as: int, sink_as: int) -> Path:
    return BB.sink_conf(tmp, port, peer_as, sink_as)


def bird_middle_conf(
    tmp: Path, port: int, sink_port: int, router_as: int, feeder_as: int, sink_as: int
) -> Path:
    conf = tmp / "middle.conf"
    conf.write_text(
        f"""log "{tmp / "middle.log"}" {{ warning, error, fatal }};
router id {B.ROUTER_ADDR};
protocol device {{ }}
protocol bgp feeder {{
\tlocal {B.ROUTER_ADDR} port {port} as {router_as};
\tneighbor {B.FEEDER_ADDR} as {feeder_as};
\tpassive on; strict bind on; multihop; hold time 240;
\tipv4 {{ import all; export none; }};
}}
protocol bgp sink {{
\tlocal {B.ROUTER_ADDR} as {router_as};
\tneighbor {SINK_ADDR} port {sink_port} as {sink_as};
\tstrict bind on; multihop; hold time 240;
\tipv4 {{ import none; export all; next hop keep; }};
}}
"""
    )
    return conf


class Sink:
    def __init__(self, tmp: Path, router_as: int, sink_as: int) -> None:
        tmp.mkdir(exist_ok=True)
        self.port = free_port(SINK_ADDR)
        self.ctl = tmp / "sink.ctl"
        conf = sink_conf(tmp, self.port, router_as, sink_as)
        self.proc = BB.spawn(["bird", "-f", "-c", str(conf), "-s", str(self.ctl)], tmp / "s.out")

    def count(self) -> int:
        return BB.sink_count(self.ctl)

    def wait_stable(
        self, t0: float, alive=lambda: True, until_zero: bool = False
    ) -> tuple[float, int]:
        """Seconds from t0 to the sink's last change once stable (or to reaching 0)."""
        last, since = -1, time.monotonic()
        while time.monotonic() - t0 < TIMEOUT:
            time.sleep(0.25)
            if not alive():
                raise SystemExit("a process under test exited")
            n = self.count()
            if n != last:
                last, since = n, time.monotonic()
                if until_zero and n == 0:
                    return since - t0, 0
            else:
                quiet = time.monotonic() - since
                if (until_zero and quiet > 120) or (n > 0 and not until_zero and quiet > STABLE):
                    return since - t0, n
        return float("nan"), last

    def stop(self) -> None:
        stop_child(self.proc)


def start_feeder(ctx: dict, tmp: Path, port: int) -> B.Bird:
    tmp.mkdir(exist_ok=True)
    bird = B.Bird(
        tmp,
        B.bird_conf(
            tmp,
            ctx["routes_conf"],
            port,
            free_port(B.FEEDER_ADDR),
            ctx["feeder_as"],
            ctx["router_as"],
        ),
    )
    bird.start()
    return bird


def spy(pid: int, out: Path, seconds: int) -> subprocess.Popen:
    return subprocess.Popen(
        [
            B.py_spy(),
            "record",
            "-p",
            str(pid),
            "-d",
            str(seconds),
            "-r",
            "50",
            "-f",
            "raw",
            "-o",
            str(out),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def phases(ctx, tmp: Path, port: int, sink: Sink, alive, on_start=None) -> dict:
    """Start the feeder, time the sink filling up, stop the feeder, time the sink emptying."""
    res: dict = {}
    t0 = time.monotonic()
    feeder = start_feeder(ctx, tmp / "feeder", port)
    try:
        if on_start:
            on_start()
        res["load"], res["routes"] = sink.wait_stable(t0, alive)
        res["t_loaded"] = time.monotonic()
    finally:
        t1 = time.monotonic()
        feeder.stop()
    res["withdraw"], res["left"] = sink.wait_stable(t1, alive, until_zero=True)
    return res


# ---- the modes ------------------------------------------------------------------------------------


def run_bird(ctx: dict, tmp: Path) -> dict:
    tmp.mkdir()
    sink = Sink(tmp / "sink", ctx["router_as"], ctx["sink_as"])
    port = free_port(B.ROUTER_ADDR)
    conf = bird_middle_conf(
        tmp, port, sink.port, ctx["router_as"], ctx["feeder_as"], ctx["sink_as"]
    )
    mid = BB.spawn(["bird", "-f", "-c", str(conf), "-s", str(tmp / "mid.ctl")], tmp / "mid.out")
    try:
        B.wait_for(lambda: port_listening(port, B.ROUTER_ADDR), 30)
        r = phases(ctx, tmp, port, sink, lambda: mid.poll() is None)
        r["rss_mid"] = B.proc_status(mid.pid, "VmHWM")
        return r
    finally:
        stop_child(mid)
        sink.stop()


def run_recv(ctx: dict, tmp: Path) -> dict:
    r = B.run_baseline(ctx, tmp)
    if r.get("ok"):
        r["load"] = r["bird_to_up"] + r["seconds"]
    return r


def run_relay(ctx: dict, tmp: Path, batch: int, profile: Path | None) -> dict:
    from rov_router.bgp.speaker import PeerSpec, SpeakerSpec, exabgp_command, render

    tmp.mkdir()
    sink = Sink(tmp / "sink", ctx["router_as"], ctx["sink_as"])
    port = free_port(B.ROUTER_ADDR)
    common = {
        "local_as": ctx["router_as"],
        "router_id": B.ROUTER_ADDR,
        "local_address": B.ROUTER_ADDR,
        "hold_time": 240,
    }
    spec = SpeakerSpec(
        "relay",
        [
            PeerSpec(address=B.FEEDER_ADDR, peer_as=ctx["feeder_as"], passive=True, **common),
            PeerSpec(
                address=SINK_ADDR,
                peer_as=ctx["sink_as"],
                passive=False,
                connect=sink.port,
                **common,
            ),
        ],
        listen=[B.ROUTER_ADDR],
        port=port,
        socket=tmp / "unused.sock",
    )
    conf, env = render(spec, tmp)
    text = conf.read_text()
    run_line = next(x for x in text.splitlines() if x.strip().startswith("run "))
    relay = (
        f"\trun {sys.executable} {Path(__file__).resolve()} --relay {SINK_ADDR} "
        f"{ctx['router_as']} {batch} {WINDOW};"
    )
    conf.write_text(text.replace(run_line, relay))
    with open(tmp / "exabgp.out", "wb") as out:
        exa = subprocess.Popen(
            [*exabgp_command(), "--env-file", str(env), "server", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=B.exabgp_env(),
            cwd=tmp,
            start_new_session=True,
        )
    spies = []
    try:
        B.wait_for(
            lambda: port_listening(port, B.ROUTER_ADDR), 60, alive=lambda: exa.poll() is None
        )
        B.wait_for(lambda: "established" in BB.birdc(sink.ctl, "show", "protocols").lower(), 60)

        def on_start():
            if profile:
                spies.append(spy(exa.pid, profile / "relay-exabgp.txt", 60))

        r = phases(ctx, tmp, port, sink, lambda: exa.poll() is None, on_start)
        r["rss_exabgp"] = B.proc_status(exa.pid, "VmHWM")
        return r
    finally:
        for s in spies:
            with contextlib.suppress(subprocess.TimeoutExpired):
                s.wait(70)
        stop_child(exa)
        sink.stop()


def show_latency(sock: Path, stop: float) -> list[float]:
    lat = []
    while time.monotonic() < stop:
        t = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "rov_router.cli", "show", "--socket", str(sock), "neighbors"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        lat.append(time.monotonic() - t)
        time.sleep(0.2)
    return lat


def run_rov(ctx: dict, tmp: Path, profile: Path | None) -> dict:
    tmp.mkdir()
    sink = Sink(tmp / "sink", ctx["router_as"], ctx["sink_as"])
    port = free_port(B.ROUTER_ADDR)
    cfg = B.router_toml(tmp, port, ctx["vrps_json"], ctx["router_as"], ctx["feeder_as"])
    cfg.write_text(
        cfg.read_text()
        + f"""
[[neighbor]]
address = "{SINK_ADDR}"
asn = {ctx["sink_as"]}
role = "downstream"
port = {sink.port}
next_hop = "keep"
"""
    )
    sock = tmp / "control.sock"
    env = {**os.environ, "TMPDIR": str(tmp)}
    router = BB.spawn(
        [
            sys.executable,
            "-m",
            "rov_router.cli",
            "run",
            "--config",
            str(cfg),
            "--plain",
            "--control",
            str(sock),
        ],
        tmp / "router.out",
        env=env,
    )
    spies = []
    lat: list[float] = []
    try:
        ok = B.wait_for(
            lambda: (
                b"VRPs" in (tmp / "router.out").read_bytes() and port_listening(port, B.ROUTER_ADDR)
            ),
            300,
            alive=lambda: router.poll() is None,
        )
        if not ok:
            raise SystemExit("rov-router not ready:\n" + B.tail(tmp / "router.out"))
        B.wait_for(lambda: "established" in BB.birdc(sink.ctl, "show", "protocols").lower(), 60)
        time.sleep(1.0)
        base = B.proc_status(router.pid, "VmRSS")

        import threading

        def on_start():
            exa = B.proc_children(router.pid)
            if profile:
                spies.append(spy(router.pid, profile / "rov-router.txt", 60))
                for c in exa:
                    spies.append(spy(c, profile / f"rov-exabgp-{c}.txt", 60))
            th = threading.Thread(
                target=lambda: lat.extend(show_latency(sock, time.monotonic() + ctx["show_for"])),
                daemon=True,
            )
            th.start()

        r = phases(ctx, tmp, port, sink, lambda: router.poll() is None, on_start)
        r["rss_base"] = base
        r["rss_hwm"] = B.proc_status(router.pid, "VmHWM")
        r["show_max"] = max(lat) if lat else None
        r["show_n"] = len(lat)
        r["show_med"] = sorted(lat)[len(lat) // 2] if lat else None
        return r
    finally:
        for s in spies:
            with contextlib.suppress(subprocess.TimeoutExpired):
                s.wait(70)
        stop_child(router)
        sink.stop()


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--relay":
        return relay_main(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    if len(sys.argv) > 1 and sys.argv[1] == "--sink":
        return B.sink_main(sys.argv[2])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help=f"first {B.QUICK_ROUTES:,} prefixes")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--modes", default="bird,recv,relay,rov")
    ap.add_argument("--batch", type=int, default=None, help="relay: prefixes per command")
    ap.add_argument("--profile", type=Path, default=None)
    args = ap.parse_args()
    limit = B.QUICK_ROUTES if args.quick else args.limit
    from rov_router import router as R

    batch = args.batch or R.BATCH
    data = B.shared_data()
    table, _info = B.load_table(data / B.MRT, limit)
    router_as, feeder_as = B.pick_asns(table)
    used = {a for _o, segs in table.values() for _k, asns in segs for a in asns}
    sink_as = next(a for a in range(64600, 65000) if a not in used)
    print(
        f"table: {len(table):,} prefixes; AS{feeder_as} -> AS{router_as} -> AS{sink_as}; "
        f"batch {batch}, window {WINDOW}"
    )
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    res: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-down-") as td:
        tmp = Path(td)
        routes = tmp / "routes.conf"
        B.write_bird_routes(table, routes)
        vrps = tmp / "vrps.json"
        n_vrps = B.write_vrps(data / B.PREPDEV, vrps)
        ctx = {
            "routes_conf": routes,
            "router_as": router_as,
            "feeder_as": feeder_as,
            "sink_as": sink_as,
            "vrps_json": vrps,
            "show_for": 20.0 if limit else 60.0,
        }
        for mode in args.modes.split(","):
            t = time.monotonic()
            if mode == "bird":
                res[mode] = run_bird(ctx, tmp / mode)
            elif mode == "recv":
                res[mode] = run_recv(ctx, tmp / mode)
            elif mode == "relay":
                res[mode] = run_relay(ctx, tmp / mode, batch, args.profile)
            elif mode == "rov":
                res[mode] = run_rov(ctx, tmp / mode, args.profile)
            print(
                f"  {mode}: {json.dumps(res[mode], default=str)[:600]} "
                f"({time.monotonic() - t:.0f} s)",
                flush=True,
            )
    n = len(table)
    print(
        f"\n{n:,} routes, {n_vrps:,} VRPs; feeder start -> sink complete / feeder stopped -> "
        "sink empty (2 shared cores: other jobs add noise; compare ratios of this run)"
    )
    print(
        f"{'middle':<8} {'load s':>8} {'routes':>9} {'withdraw s':>11} {'vs recv':>8} "
        f"{'vs relay':>9}"
    )
    for mode, r in res.items():
        load = r.get("load")
        ratio_recv = B.ratio(load, res.get("recv", {}).get("load"))
        ratio_relay = B.ratio(load, res.get("relay", {}).get("load"))
        print(
            f"{mode:<8} {B.fmt(load, '.1f'):>8} {r.get('routes', r.get('nlri', '-')):>9} "
            f"{B.fmt(r.get('withdraw'), '.1f'):>11} {B.fmt(ratio_recv):>8} "
            f"{B.fmt(ratio_relay):>9}"
        )
    rov = res.get("rov")
    if rov and rov.get("rss_hwm"):
        per = (rov["rss_hwm"] - rov["rss_base"]) * 2**20 / n
        print(
            f"rov-router VmHWM {rov['rss_hwm']:.0f} MiB, after the VRP sync "
            f"{rov['rss_base']:.0f} MiB: {per:.0f} B per route (table, all-in minus VRPs)"
        )
        print(f"withdrawals / announcements: {B.fmt(B.ratio(rov['withdraw'], rov['load']))}")
        print(
            f"show neighbors during ingest: max {B.fmt(rov['show_max'])} s, median "
            f"{B.fmt(rov['show_med'])} s over {rov['show_n']} calls"
        )
    print(json.dumps(res, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
