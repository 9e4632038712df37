"""The web view while a full table flows through a running router.

Run ``python benchmarks/bench_web.py [--quick]`` from the repository root (needs the shared
data, BIRD 2, ExaBGP, chromium + chromedriver and selenium).  A benchmark: it prints figures.

Setup (the same data and feeder as ``bench_router.py``, whose helpers it imports): the PCH full
table (577,703 IPv4 prefixes; ``--quick``: the first 100,000) from BIRD 2 over eBGP into
``rov-router run --plain --web 127.0.0.1:PORT`` with the 424k prepdev VRPs served by the
embedded cache.

Two runs:

* **viewer**: headless Chromium has the page open (the event stream, the SVG redrawn on every
  state document, the route table refetched at most once a second) and this script reads the
  event stream too.  Figures: documents received and the longest gap between two of them
  while the table loads; per page render (the page records each one): time from the server
  building the document to the page having drawn it (same clock, same machine), the longest
  gap between two renders during the load, and the render's own duration; the largest
  document; the load time (neighbor up -> all routes counted in a state document).
* **no viewer** (the peer measured in the same run): the same router with the web server up
  but nobody watching.  In both runs the script polls ``/api/state`` every 0.5 s; the load
  ends at the first poll that saw every route BIRD exported.  The ratio
  of the two load times is the price of watching.

* **show**: in both runs a thread runs ``rov-router show neighbors`` and ``rov-router show rtr``
  alternately (a new process each time, as a user types them), one every 0.25 s, from the
  neighbor coming up to the end of the load; after it, 6 more of each on the idle router (the
  floor: starting Python and the CLI).  Figures: max and p95 per command while routes flowed.

The page must update at least once a second during the load ("page updates < 1 s"): the
longest render gap says whether it did; ``show`` must answer within 0.5 s.  The machine is
shared (2 CPUs; other jobs run): figures carry that noise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import itertools

import bench_router as BR

STALL = 90.0


class SSEReader(threading.Thread):
    """Reads ``/events``; keeps (arrival time, seq, routes, size, server time) per document."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(daemon=True)
        self.host, self.port = host, port
        self.docs: list[tuple[float, int, int, int, float, dict]] = []
        self.stop = False

    def run(self) -> None:
        s = socket.create_connection((self.host, self.port))
        s.sendall(f"GET /events HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode())
        buf = b""
        while not self.stop:
            chunk = s.recv(1 << 20)
            if not chunk:
                return
            buf += chunk
            while b"\n\n" in buf:
                ev, buf = buf.split(b"\n\n", 1)
                if ev.startswith(b"event: state\ndata: "):
                    body = ev.split(b"data: ", 1)[1]
                    d = json.loads(body)
                    up = any(n["state"] == "up" for n in d["status"]["neighbors"])
                    self.docs.append(
                        (
                            time.time(),
                            d["seq"],
                            d["status"]["counts"]["routes"],
                            len(body),
                            d["status"]["time"],
                            {"up": up},
                        )
                    )
        s.close()


class ShowProbe(threading.Thread):
    """``rov-router show neighbors`` / ``show rtr`` alternately, one process each, every
    ``pause`` s; keeps (start, seconds, what, exit status).  After each, the same request
    from this process (no interpreter start): the router's own part, kept as "what/rt"."""

    def __init__(self, sock: Path, env: dict, pause: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.sock, self.env, self.pause = sock, env, pause
        self.samples: list[tuple[float, float, str, int]] = []
        self.stop = False

    def once(self, what: str) -> None:
        t0 = time.time()
        try:
            rc = subprocess.run(
                [sys.executable, "-m", "rov_router.cli", "show", "--socket", str(self.sock), what],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env=self.env, timeout=60,
            ).returncode  # fmt: skip
        except subprocess.TimeoutExpired:
            rc = -1
        self.samples.append((t0, time.time() - t0, what, rc))
        from rov_router.ops.control import request

        t1 = time.time()
        try:
            request(self.sock, {"cmd": what}, timeout=60)
            rc = 0
        except (OSError, ValueError):
            rc = -1
        self.samples.append((t1, time.time() - t1, what + "/rt", rc))

    def run(self) -> None:
        for what in itertools.cycle(("neighbors", "rtr")):
            if self.stop:
                return
            self.once(what)
            time.sleep(self.pause)


def show_figures(probe: ShowProbe, t0: float | None, t1: float | None, res: dict) -> None:
    """Max / p95 per command for the calls started in [t0, t1]; the idle floor after it."""
    for what in ("neighbors", "rtr", "neighbors/rt", "rtr/rt"):
        during = [d for t, d, w, rc in probe.samples if w == what and t0 and t1 and t0 <= t <= t1]
        res[f"show_{what}_n"] = len(during)
        res[f"show_{what}_max"] = max(during) if during else None
        res[f"show_{what}_p95"] = _pct(during, 95)
        idle = [d for t, d, w, rc in probe.samples if w == what and t1 and t > t1]
        res[f"show_{what}_idle"] = statistics.median(idle) if idle else None
    res["show_failed"] = sum(1 for *_x, rc in probe.samples if rc != 0)


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1100"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(
        service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=opts
    )


def get_state(url: str) -> dict:
    with urllib.request.urlopen(url + "api/state", timeout=30) as r:
        return json.loads(r.read())


def run(ctx: dict, rep_dir: Path, viewer: bool) -> dict:
    from rov_router.procs import free_port, stop_child

    rep_dir.mkdir()
    port = free_port(BR.ROUTER_ADDR)
    web_port = free_port("127.0.0.1")
    cfg = BR.router_toml(rep_dir, port, ctx["vrps_json"], ctx["router_as"], ctx["feeder_as"])
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    env["TMPDIR"] = str(rep_dir)
    res: dict = {"notes": []}
    proc = bird = drv = sse = probe = None
    try:
        with open(rep_dir / "rov-router.out", "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "rov_router.cli", "run", "--config", str(cfg), "--plain",
                 "--web", f"127.0.0.1:{web_port}"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=rep_dir,
                env=env, start_new_session=True,
            )  # fmt: skip
        url = f"http://127.0.0.1:{web_port}/"
        ok = BR.wait_for(
            lambda: _try(lambda: get_state(url)["status"]["rpki"][0]["vrps"] > 0),
            BR.SYNC_TIMEOUT,
            step=0.5,
            alive=lambda: proc.poll() is None,
        )
        if not ok:
            res["notes"].append("no RTR sync: " + BR.tail(rep_dir / "rov-router.out"))
            return res
        if viewer:
            drv = browser()
            drv.get(url)
            BR.wait_for(lambda: drv.execute_script("return window.rovRenders.length > 0"), 30)
            sse = SSEReader("127.0.0.1", web_port)
            sse.start()
        bird = BR.Bird(
            rep_dir,
            BR.bird_conf(
                rep_dir, ctx["routes_conf"], port, free_port(BR.FEEDER_ADDR),
                ctx["feeder_as"], ctx["router_as"],
            ),
        )  # fmt: skip
        res["waited"] = BR.wait_machine_quiet()
        # the router's control socket: its TMPDIR is rep_dir (rov_router.ops.control)
        probe = ShowProbe(rep_dir / f"rov-router-{os.getuid()}" / "control.sock", env)
        t_bird = time.time()
        bird.start()
        probe.start()
        target = None
        stable = False
        next_birdc = 0.0
        samples: list[tuple[float, int]] = []
        t_up = t_done = None
        last_n, last_change = -1, time.monotonic()
        while True:
            st = get_state(url)
            now = time.time()
            n = st["status"]["counts"]["routes"]
            if t_up is None and any(x["state"] == "up" for x in st["status"]["neighbors"]):
                t_up = now
            if time.monotonic() >= next_birdc:
                # BIRD's exported count grows while it sends: done once it stopped growing and
                # the router counted that many
                exp = bird.exported() or None
                stable = exp is not None and exp == target
                target, next_birdc = exp, time.monotonic() + 2.0
            samples.append((now, n))
            if target is not None and stable and n >= target:
                # when the router first had them all (polled every 0.5 s in both runs)
                t_done = next(t for t, k in samples if k >= target)
                break
            if n != last_n:
                last_n, last_change = n, time.monotonic()
            elif time.monotonic() - last_change > STALL:
                res["notes"].append(f"stalled at {n} routes (target {target})")
                break
            if proc.poll() is not None:
                res["notes"].append("rov-router exited: " + BR.tail(rep_dir / "rov-router.out"))
                return res
            time.sleep(0.5)
        res.update(routes=last_n if t_done is None else n, target=target)
        probe.stop = True
        probe.join(90)
        for _ in range(6):  # the floor: the same commands on the idle router
            probe.once("neighbors")
            probe.once("rtr")
        show_figures(probe, t_up or t_bird, t_done, res)
        if viewer and sse is not None:
            # the last document, as the viewers see it
            BR.wait_for(lambda: sse.docs and sse.docs[-1][2] >= (target or 0), 30)
            docs = list(sse.docs)
            t_up = next((d[0] for d in docs if d[5]["up"]), t_up)
            done = next((d[0] for d in docs if d[2] >= (target or 0)), None)
            t_done = done or t_done
            # while routes flow: from the first document with routes to the one with them all
            t_flow = next((d[0] for d in docs if d[2] > 0), t_up)
            load = [d for d in docs if t_flow and t_flow <= d[0] <= (t_done or d[0])]
            gaps = [b[0] - a[0] for a, b in itertools.pairwise(load)]
            res["sse_docs"] = len(load)
            res["sse_max_gap"] = max(gaps) if gaps else None
            res["sse_p95_gap"] = _pct(gaps, 95)
            res["doc_kb_max"] = max(d[3] for d in docs) / 1024
            time.sleep(1.5)
            rs = drv.execute_script("return window.rovRenders")
            during = [
                r for r in rs if t_flow and t_flow * 1000 <= r["t"] <= (t_done or 1e18) * 1000
            ]
            rg = [(b["t"] - a["t"]) / 1000 for a, b in itertools.pairwise(during)]
            lat = [(r["t"] - r["server"]) / 1000 for r in during]
            res["renders"] = len(during)
            res["render_max_gap"] = max(rg) if rg else None
            res["render_p95_gap"] = _pct(rg, 95)
            res["latency_p50"] = statistics.median(lat) if lat else None
            res["latency_p95"] = _pct(lat, 95)
            res["latency_max"] = max(lat) if lat else None
            res["render_ms_p50"] = statistics.median([r["ms"] for r in during]) if during else None
            res["render_ms_max"] = max((r["ms"] for r in during), default=None)
            res["page_routes"] = rs[-1]["routes"] if rs else None
            res["console_errors"] = [
                e["message"] for e in drv.get_log("browser") if e["level"] == "SEVERE"
            ]
            drv.save_screenshot(str(rep_dir.parent / "bench_web.png"))
        res["load_seconds"] = (t_done - t_up) if t_done and t_up else None
        res["bird_to_up"] = (t_up - t_bird) if t_up else None
        return res
    finally:
        if probe is not None:
            probe.stop = True
        if sse is not None:
            sse.stop = True
        if drv is not None:
            drv.quit()
        if bird is not None:
            bird.stop()
        if proc is not None:
            stop_child(proc)


def _try(fn):
    try:
        return fn()
    except (OSError, ValueError, KeyError, IndexError):
        return None


def _pct(xs: list[float], p: int) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def f(x, spec=".2f") -> str:
    return "-" if x is None else format(x, spec)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="the first 100,000 routes")
    args = ap.parse_args()
    data = BR.shared_data()
    mrt, prepdev = data / BR.MRT, data / BR.PREPDEV
    missing = [str(p) for p in (mrt, prepdev) if not p.is_file()]
    missing += [
        t for t in ("bird", "birdc", "exabgp", "chromium", "chromedriver") if not shutil.which(t)
    ]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium")
    if missing:
        print(f"bench_web: SKIPPED: missing {', '.join(missing)}")
        return 0
    limit = BR.QUICK_ROUTES if args.quick else None
    with tempfile.TemporaryDirectory(prefix="bench_web.") as td:
        tmp = Path(td)
        t0 = time.perf_counter()
        table, _info = BR.load_table(mrt, limit)
        router_as, feeder_as = BR.pick_asns(table)
        vrps_json = tmp / "vrps.json"
        n_vrps = BR.write_vrps(prepdev, vrps_json)
        routes_conf = tmp / "bird-routes.conf"
        BR.write_bird_routes(table, routes_conf)
        print(
            f"bench_web: {len(table)} routes, {n_vrps} VRPs (prepared in "
            f"{time.perf_counter() - t0:.0f} s); {os.cpu_count()} CPUs, shared with other jobs"
        )
        ctx = {
            "router_as": router_as,
            "feeder_as": feeder_as,
            "vrps_json": vrps_json,
            "routes_conf": routes_conf,
        }
        v = run(ctx, tmp / "viewer", viewer=True)
        print(
            f"viewer:    load {f(v.get('load_seconds'), '.1f')} s for {v.get('routes')} routes; "
            f"event stream {v.get('sse_docs')} documents while routes flowed, gap max {f(v.get('sse_max_gap'))} s, "
            f"p95 {f(v.get('sse_p95_gap'))} s, "
            f"largest {f(v.get('doc_kb_max'), '.0f')} KiB"
        )
        print(
            f"           page: {v.get('renders')} renders during the load, gap max "
            f"{f(v.get('render_max_gap'))} s, p95 {f(v.get('render_p95_gap'))} s; "
            "server->drawn latency p50 "
            f"{f(v.get('latency_p50'))} s, p95 {f(v.get('latency_p95'))} s, max "
            f"{f(v.get('latency_max'))} s; render {f(v.get('render_ms_p50'), '.0f')} ms median, "
            f"{f(v.get('render_ms_max'), '.0f')} ms max; final page count {v.get('page_routes')}; "
            f"console errors {len(v.get('console_errors') or [])}"
        )
        b = run(ctx, tmp / "noviewer", viewer=False)
        print(f"no viewer: load {f(b.get('load_seconds'), '.1f')} s for {b.get('routes')} routes")
        worst = []
        for name, r in (("viewer", v), ("no viewer", b)):
            for what in ("neighbors", "rtr"):
                print(
                    f"show {what:9} during the load ({name}): {r.get(f'show_{what}_n')} calls, "
                    f"max {f(r.get(f'show_{what}_max'))} s, p95 {f(r.get(f'show_{what}_p95'))} s; "
                    f"idle router {f(r.get(f'show_{what}_idle'))} s (median; Python + CLI start); "
                    f"the request alone: max {f(r.get(f'show_{what}/rt_max'), '.3f')} s, p95 "
                    f"{f(r.get(f'show_{what}/rt_p95'), '.3f')} s"
                )
                worst.append(r.get(f"show_{what}_max"))
            if r.get("show_failed"):
                print(f"note: {r['show_failed']} show calls failed ({name})")
        if v.get("load_seconds") and b.get("load_seconds"):
            print(f"ratio viewer / no viewer: {v['load_seconds'] / b['load_seconds']:.2f}")
        gap = v.get("render_max_gap")
        print(
            "page updates < 1 s during the load: "
            + ("yes" if gap is not None and gap < 1.0 else f"NO (longest gap {f(gap)} s)")
        )
        ok = all(x is not None and x <= 0.5 for x in worst)
        print(
            "show answers within 0.5 s during the load: "
            + ("yes" if ok else f"NO (worst {f(max((x for x in worst if x), default=None))} s)")
        )
        for n in v["notes"] + b["notes"]:
            print("note:", n)
        shot = tmp / "bench_web.png"
        if shot.exists():
            dst = Path(__file__).resolve().parents[1] / "tests" / "artifacts"
            dst.mkdir(exist_ok=True)
            shutil.copy(shot, dst / "bench_web.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
