"""RTR cache memory under routers that do not read: rov-router's embedded cache vs StayRTR.

Run ``python benchmarks/bench_cache_memory.py [--routers 500] [--flood 50]`` from the
repository root.  This is a benchmark (it prints figures and ratios), not a test.

What is measured, for each cache in the same run (the same 424,223-VRP file: the RIPE prepdev
rpki-client export with every ``"expires"`` removed, see ``bench_rtr_sync.py``):

1. **baseline**: the cache started, one raw v1 Reset Query read to the end (so the v1 response
   is encoded and cached) and one ``rtrclient`` full sync; VmRSS from ``/proc/PID/status``.
   The size of that full v1 response (Cache Response .. End of Data) is recorded.  With
   ``--cold`` the baseline is taken right after start-up and the attack comes first.
2. **attack**: ``--routers`` connections (default 500), each with a 4 KiB receive buffer, each
   sends one v1 Reset Query and never reads; one more connection sends ``--flood`` (default 50)
   Reset Queries back to back and never reads.  While they are connected, a real RTRlib
   ``rtrclient -e -o OUT tcp 127.0.0.1 PORT`` syncs the full set (its VRP count is checked).
   VmRSS is sampled every 0.25 s for ``--hold`` seconds (default 10); the peak sample and the
   cache's VmHWM are reported.
3. **after**: the attackers close; VmRSS 3 s later.

Target (ours, not ``--cold``): peak VmRSS during the attack <= baseline + 2 full responses, and
rtrclient gets all 424,223 VRPs.  Exit 1 if the target is missed or a count is wrong.

``--code DIR`` runs ``rov-router cache`` from another checkout (e.g. the code before the
back-pressure change) for a before / after comparison.  Our cache runs with
``--drain-timeout`` above ``--hold`` so that no attacker is dropped during the measurement.

Every child is started with ``subprocess.Popen`` in its own session and stopped by PID with
``rov_router.procs.stop_child``.  Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_rtr_sync import (
    RUN_TIMEOUT,
    LineReader,
    StayRTR,
    _dump_json,
    load_prepdev,
    shared_data,
)

from rov_router.procs import free_port, port_listening, stop_child

PREPDEV = "vrps/rpki-client_ripe-prepdev_20230504.json.xz"
RESET_V1 = bytes([1, 2, 0, 0, 0, 0, 0, 8])


def vmrss(pid: int) -> dict[str, float]:
    out: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0]) / 1024
    except OSError:
        pass
    return out


class OurCache:
    def __init__(self, path: Path, tmp: Path, code: Path | None, drain: float) -> None:
        self.port = free_port()
        self.path, self.tmp, self.code, self.drain = path, tmp, code, drain
        self.proc: subprocess.Popen | None = None
        self.pid: int | None = None

    def start(self) -> None:
        env = dict(os.environ)
        if self.code is not None:
            env["PYTHONPATH"] = str(self.code)
        argv = [
            sys.executable,
            "-m",
            "rov_router.cli",
            "cache",
            "--vrps",
            str(self.path),
            "--listen",
            f"127.0.0.1:{self.port}",
            "--json",
            "--ignore-expires",
            "--session-file",
            str(self.tmp / "session"),
        ]
        if self.code is None:
            argv += ["--drain-timeout", str(self.drain)]
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.code,  # python -m puts the working directory first on sys.path
            start_new_session=True,
        )
        self.pid = self.proc.pid
        self.reader = LineReader(self.proc.stdout, "serving RTR", t0)
        self.reader.start()
        while self.reader.t_marker is None:
            if self.proc.poll() is not None or time.perf_counter() - t0 > RUN_TIMEOUT:
                raise RuntimeError("rov-router cache did not start: " + "".join(self.reader.lines))
            time.sleep(0.01)
        assert port_listening(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            stop_child(self.proc)


def full_reset(port: int) -> tuple[int, int]:
    """One v1 Reset Query read to End of Data: (bytes, prefix PDUs)."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(RESET_V1)
        buf = bytearray()
        off = n = 0
        s.settimeout(60)
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                raise RuntimeError("cache closed the connection")
            buf += chunk
            while len(buf) - off >= 8:
                length = int.from_bytes(buf[off + 4 : off + 8], "big")
                if len(buf) - off < length:
                    break
                t = buf[off + 1]
                off += length
                if t in (4, 6):
                    n += 1
                elif t == 7:
                    return off, n


def rtrclient(port: int, tmp: Path) -> tuple[int | None, float]:
    out = tmp / f"rtrclient-{port}-{time.monotonic_ns()}.txt"
    t0 = time.perf_counter()
    p = subprocess.Popen(
        ["rtrclient", "-e", "-o", str(out), "tcp", "127.0.0.1", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert p.stderr is not None
        for line in p.stderr:
            if b"Sync successful" in line:
                break
        el = time.perf_counter() - t0
        p.wait(RUN_TIMEOUT)  # -e: it writes the table and exits
    except subprocess.TimeoutExpired:
        pass
    finally:
        stop_child(p)
    if not out.exists():
        return None, el
    with open(out, "rb") as f:
        return sum(1 for line in f if b" AS " in line), el


def attack(port: int, routers: int, flood: int) -> list[socket.socket]:
    socks = []
    for i in range(routers + 1):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", port))
        s.sendall(RESET_V1 * (flood if i == 0 else 1))  # the flood first
        socks.append(s)
    return socks


def measure(kind: str, cache, args, tmp: Path, expected: int) -> dict:
    res: dict = {"kind": kind}
    try:
        cache.start()
        pid = cache.pid
        if args.cold:  # the attack comes first: the response is encoded for it
            time.sleep(1.0)
            res["baseline"] = vmrss(pid)["VmRSS"]
            socks = attack(cache.port, args.routers, args.flood)
        size, prefixes = full_reset(cache.port)
        res.update(response=size / 2**20, reset_ok=prefixes == expected)
        if not args.cold:
            rtrclient(cache.port, tmp)
            time.sleep(1.0)
            res["baseline"] = vmrss(pid)["VmRSS"]
            socks = attack(cache.port, args.routers, args.flood)
        samples: list[float] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                r = vmrss(pid).get("VmRSS")
                if r is not None:
                    samples.append(r)
                time.sleep(0.25)

        th = threading.Thread(target=sample)
        th.start()
        try:
            time.sleep(1.0)
            res["sync_count"], res["sync_s"] = rtrclient(cache.port, tmp)
            time.sleep(max(0.0, args.hold - 1.0 - res["sync_s"]))
        finally:
            stop.set()
            th.join()
        res["peak"] = max(samples) if samples else None
        res["hwm"] = vmrss(pid).get("VmHWM")
        for s in socks:
            s.close()
        time.sleep(3.0)
        res["after"] = vmrss(pid).get("VmRSS")
    finally:
        cache.stop()
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--routers", type=int, default=500)
    ap.add_argument("--flood", type=int, default=50)
    ap.add_argument("--hold", type=float, default=10.0)
    ap.add_argument("--code", type=Path, help="run our cache from this checkout")
    ap.add_argument("--no-stayrtr", action="store_true")
    ap.add_argument(
        "--cold",
        action="store_true",
        help="attack right after start-up (baseline before any response was encoded)",
    )
    args = ap.parse_args()
    src = shared_data() / PREPDEV
    if not src.exists():
        print(f"needs {src}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-cache-mem-") as td:
        tmp = Path(td)
        doc = load_prepdev(src)
        expected = len(doc["roas"])
        path = tmp / "prepdev.json"
        _dump_json(doc, path)
        del doc
        results = [
            measure(
                "rov-router" + (f" ({args.code})" if args.code else ""),
                OurCache(path, tmp, args.code, args.hold + 60),
                args,
                tmp,
                expected,
            )
        ]
        if not args.no_stayrtr:
            results.append(measure("StayRTR", StayRTR(path, tmp, "mem"), args, tmp, expected))
    print(
        f"424k set ({expected} VRPs); {args.routers} routers that never read + 1 sending "
        f"{args.flood} Reset Queries; rtrclient syncing meanwhile; RSS in MiB"
    )
    hdr = (
        "cache",
        "resp MiB",
        "baseline",
        "peak",
        "VmHWM",
        "after",
        "peak-base",
        "budget",
        "rtrclient",
    )
    print("  ".join(f"{h:>12}" for h in hdr))
    ok = True
    for r in results:
        budget = r["baseline"] + 2 * r["response"]
        good = r["sync_count"] == expected
        within = r["peak"] is not None and r["peak"] <= budget
        if r["kind"].startswith("rov-router") and args.code is None and not args.cold:
            ok = ok and good and within and r["reset_ok"]
        print(
            "  ".join(
                f"{v:>12}"
                for v in (
                    r["kind"][:12],
                    f"{r['response']:.1f}",
                    f"{r['baseline']:.0f}",
                    f"{r['peak']:.0f}",
                    f"{r['hwm']:.0f}",
                    f"{r['after']:.0f}",
                    f"{r['peak'] - r['baseline']:+.0f}",
                    f"{budget:.0f} {'ok' if within else 'OVER'}",
                    f"{r['sync_count']} in {r['sync_s']:.1f}s",
                )
            )
        )
    if len(results) == 2:
        a, b = results
        print(
            f"ratio ours/StayRTR: peak-baseline {((a['peak'] - a['baseline']) / max(1.0, b['peak'] - b['baseline'])):.2f}, "
            f"peak {a['peak'] / b['peak']:.2f}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
