"""RTR cache: rov-router's embedded cache vs StayRTR, serving the same VRP file in the same run.

Run ``python benchmarks/bench_cache.py [--quick]`` from the repository root.  This is a
benchmark (it prints figures and ratios), not a test.

VRP sets
--------
The 424k set (RIPE prepdev export, ``"expires"`` removed) and the deterministic 700k set
(prepdev + 275,777 synthetic VRPs), both built by ``benchmarks/bench_rtr_sync.py`` (imported,
see its docstring) and written once as JSON; both caches read the same file.

Caches
------
* **ours**: ``rov-router cache --vrps FILE --listen 127.0.0.1:PORT --json --ignore-expires
  --session-file TMP/session``.  Ready: its JSON line whose ``"message"`` contains
  ``serving RTR`` (taken when the line arrives on the pipe).
* **StayRTR** 0.5.1: ``stayrtr -bind 127.0.0.1:PORT -cache FILE -checktime=false -refresh 86400
  -metrics.addr "" -protocol 1`` (``bench_rtr_sync.StayRTR``).  Ready: the port listens and its
  log has ``New update`` (polled every 50 ms).

Client
------
A minimal raw RTR client in this script (run as a child process, ``--client-child PORT``):
connect, send a v1 Reset Query (``01 02 00 00 00 00 00 08``), ``recv_into`` 1 MiB chunks, walk
the PDU headers with ``struct.unpack_from`` on a memoryview, stop at End of Data (type 7),
count the IPv4 / IPv6 Prefix PDUs.  Every count is checked against the set size.  Clients are
started and import everything first, report "ready", and all wait for one "go" byte on stdin;
times are taken with ``time.perf_counter`` (CLOCK_MONOTONIC, the same clock in every process)
from the parent's "go" to each child's End of Data.

Figures (per set and cache; each repetition starts the cache afresh; 3 repetitions, median;
``--quick``: 424k set only, 1 repetition; the order of the two caches alternates)
----------------------------------------------------------------------------------------------
1. start-up: Popen -> ready; RSS (VmRSS) right after start-up.
2. one full reset at v1, the first one after start-up (our cache encodes the response then;
   later resets reuse it), and a repeated one (the next reset, same cache process).
3. ten clients resetting at once (10 child processes): "go" -> the last End of Data; every
   count checked.
4. the cache process's peak memory (VmHWM from ``/proc/PID/status``) after all of the above.
Also the cache process's CPU time (utime + stime from ``/proc/PID/stat``) in each phase, and,
for reference, the same client against an in-script replay of the recorded byte stream
(``bench_rtr_sync.ReplayServer``, which writes it in 1 MiB chunks): the floor set by the client.

Reload (``--reload``: only this part; ``--quick`` runs it once, otherwise twice)
------------------------------------------------------------------------------------
The 424k file and a changed copy (500 of its VRPs removed, 500 new ones: prepdev prefixes with
another origin AS, drawn with ``random.Random(SEED)``) are written once.  A fresh Python child
(``--reload-child``) serves the first through ``FileCache`` + ``CacheState`` (``settle`` 0) and
encodes the full v1 answer, as a serving cache has; then, alternately, the changed and the
original file are copied over the served one and timed: ``FileCache.reload(force=True)``
(read, parse, shrink guard, delta, serial bump, notify) plus encoding the v1 delta
(``delta_payload``): the delta is ready for every router.  Reference in the same child: the
file's bytes parsed by ``orjson.loads`` alone (the floor of any reader).  Target: <= 2 s.  A
running ``rov-router cache`` adds its ``--poll`` (1 s) and ``--settle`` (0.5 s) wait before it.

Targets: ours faster than StayRTR per client (reset time ratios < 1) and memory below
StayRTR's (ratios < 1).  Exit 1 if any client got a wrong count.

Every child is started with ``subprocess.Popen`` in its own session; its PID is kept and it is
stopped by PID with ``rov_router.procs.stop_child`` in a ``finally`` block.  Only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_rtr_sync import (
    N_EXTRA_V4,
    N_EXTRA_V6,
    RUN_TIMEOUT,
    LineReader,
    ReplayServer,
    StayRTR,
    _dump_json,
    fmt,
    load_prepdev,
    med,
    print_table,
    record_stream,
    rov_router_argv,
    shared_data,
    synth_vrps,
)

from rov_router.procs import free_port, port_listening, stop_child

RESET_QUERY_V1 = bytes.fromhex("0102000000000008")
CHUNK = 1 << 20
N_CLIENTS = 10
CLK_TCK = os.sysconf("SC_CLK_TCK")
HDR = struct.Struct("!BBHI")


# ---- the raw client (runs in a child process) --------------------------------------------------


def raw_reset(port: int) -> dict:
    """One v1 Reset Query; walk the answer to End of Data.  Times are perf_counter values."""
    buf = bytearray(2 * CHUNK + 65536)
    mv = memoryview(buf)
    unpack = HDR.unpack_from
    n4 = n6 = other = total = reads = 0
    off = end = 0
    first_byte = None
    eod: tuple | None = None
    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=RUN_TIMEOUT) as s:
        t_conn = time.perf_counter()
        s.sendall(RESET_QUERY_V1)
        while eod is None:
            if len(buf) - end < CHUNK:  # move the partial PDU (< 64 KiB) to the front
                rest = end - off
                buf[:rest] = buf[off:end]
                off, end = 0, rest
            n = s.recv_into(mv[end : end + CHUNK], CHUNK)
            if not n:
                raise RuntimeError(
                    f"connection closed before End of Data ({total} bytes, {n4 + n6} prefixes)"
                )
            if first_byte is None:
                first_byte = time.perf_counter()
            reads += 1
            total += n
            end += n
            while end - off >= 8:
                ver, typ, _, ln = unpack(mv, off)
                if ln < 8 or ln > 65535:
                    raise RuntimeError(
                        f"bad PDU length {ln} (type {typ}) at byte {total - end + off}"
                    )
                if end - off < ln:
                    break
                if ver != 1:
                    raise RuntimeError(f"PDU type {typ} in version {ver}, expected 1")
                if typ == 4:
                    n4 += 1
                elif typ == 6:
                    n6 += 1
                elif typ == 7:
                    eod = unpack(mv, off)
                    off += ln
                    break
                elif typ == 10:
                    raise RuntimeError(f"Error Report: {bytes(mv[off : off + ln])!r}")
                elif typ != 3:
                    other += 1
                off += ln
        t_eod = time.perf_counter()
    return {
        "t0": t0,
        "t_conn": t_conn,
        "t_first_byte": first_byte,
        "t_eod": t_eod,
        "v4": n4,
        "v6": n6,
        "prefixes": n4 + n6,
        "other": other,
        "bytes": total,
        "reads": reads,
        "trailing": end - off,
    }


def client_child(port: int) -> int:
    """Hidden mode: report ready, wait for one byte on stdin, reset once, print one JSON line."""
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    if not sys.stdin.buffer.read(1):
        return 2
    t_go = time.perf_counter()
    try:
        res = raw_reset(port)
    except (OSError, RuntimeError) as e:
        res = {"error": f"{type(e).__name__}: {e}"}
    res["t_go"] = t_go
    print(json.dumps(res), flush=True)
    return 0


def run_clients(port: int, n: int, expected: int) -> dict:
    """``n`` raw clients in child processes, released together; time to the last End of Data."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--client-child", str(port)]
    procs: list[subprocess.Popen] = []
    results: list[dict] = []
    try:
        for _ in range(n):
            procs.append(
                subprocess.Popen(
                    argv,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    start_new_session=True,
                )
            )
        for p in procs:
            line = p.stdout.readline()
            if line.strip() != b"ready":
                raise RuntimeError(f"client {p.pid} did not start: {line!r} {p.stderr.read()!r}")
        t_go = time.perf_counter()
        for p in procs:
            p.stdin.write(b"g")
            p.stdin.flush()
        for p in procs:
            out, err = p.communicate(timeout=RUN_TIMEOUT + 10)
            try:
                results.append(json.loads(out.decode().strip().splitlines()[-1]))
            except (ValueError, IndexError):
                results.append({"error": f"no result (rc {p.returncode}): {err.decode()[-300:]}"})
    finally:
        for p in procs:
            stop_child(p)
    errors = [r["error"] for r in results if "error" in r]
    counts = [r.get("prefixes") for r in results]
    good = [r for r in results if "error" not in r]
    return {
        "n": n,
        "ok": not errors and len(results) == n and all(c == expected for c in counts),
        "counts": counts,
        "errors": errors,
        "last": max(r["t_eod"] for r in good) - t_go if len(good) == n else None,
        "per_client": med([r["t_eod"] - r["t_go"] for r in good]),
        "skew": max(r["t_go"] for r in good) - t_go if good else None,
        "bytes": good[0]["bytes"] if good else None,
        "reads": med([r["reads"] for r in good]),
    }


# ---- the cache processes -----------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, float]:
    """VmRSS / VmHWM (MiB) and CPU seconds (utime + stime, all threads) of ``pid``."""
    out: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, val = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(val.split()[0]) / 1024
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        out["cpu"] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, ValueError, IndexError):
        pass
    return out


class OurCache:
    """``rov-router cache`` as a child process; ready at its 'serving RTR' line."""

    def __init__(self, json_path: Path, tmp: Path, tag: str) -> None:
        self.port = free_port()
        self.json_path = json_path
        self.tmp = tmp
        self.err_path = tmp / f"ours-{tag}.err"
        self.session_path = tmp / f"session-{tag}"
        self.proc: subprocess.Popen | None = None
        self.pid: int | None = None
        self.reader: LineReader | None = None
        self.startup: float | None = None
        self.loaded = ""

    def start(self) -> None:
        argv = [
            *rov_router_argv(),
            "cache",
            "--vrps",
            str(self.json_path.resolve()),
            "--listen",
            f"127.0.0.1:{self.port}",
            "--json",
            "--ignore-expires",
            "--session-file",
            str(self.session_path),
        ]
        t0 = time.perf_counter()
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                start_new_session=True,
            )
        self.pid = self.proc.pid
        self.reader = LineReader(self.proc.stdout, "serving RTR", t0)
        self.reader.start()
        while self.reader.t_marker is None:
            el = time.perf_counter() - t0
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"rov-router cache exited ({self.proc.returncode}): {self.tail()}"
                )
            if el > RUN_TIMEOUT:
                raise RuntimeError(f"rov-router cache not ready after {el:.0f} s: {self.tail()}")
            time.sleep(0.005)
        self.startup = self.reader.t_marker
        if not port_listening(self.port):
            raise RuntimeError(f"rov-router cache says it serves but 127.0.0.1:{self.port} is idle")
        for line in self.reader.lines:
            if '"loaded ' in line:
                self.loaded = json.loads(line).get("message", "")

    def tail(self) -> str:
        lines = self.reader.lines[-5:] if self.reader else []
        try:
            err = self.err_path.read_text(errors="replace")[-500:]
        except OSError:
            err = ""
        return "\n".join(lines) + "\n" + err

    def stop(self) -> None:
        if self.proc is not None:
            stop_child(self.proc)
        if self.reader is not None:
            self.reader.join(5)


def measure_cache(kind: str, path: Path, tmp: Path, tag: str, expected: int) -> dict:
    cache: OurCache | StayRTR = (
        OurCache(path, tmp, tag) if kind == "ours" else StayRTR(path, tmp, tag)
    )
    res: dict = {"kind": kind}
    try:
        cache.start()
        pid = cache.pid
        assert pid is not None
        st = proc_status(pid)
        res.update(
            startup=cache.startup,
            rss_start=st.get("VmRSS"),
            hwm_start=st.get("VmHWM"),
            cpu_start=st.get("cpu"),
            loaded=cache.loaded,
        )
        cpu = st.get("cpu", 0.0)
        for phase, n in (("first", 1), ("repeat", 1), ("ten", N_CLIENTS)):
            r = run_clients(cache.port, n, expected)
            st = proc_status(pid)
            r["cpu"] = st.get("cpu", 0.0) - cpu
            cpu = st.get("cpu", 0.0)
            res[phase] = r
        st = proc_status(pid)
        res.update(hwm_served=st.get("VmHWM"), rss_served=st.get("VmRSS"))
    finally:
        cache.stop()
    return res


def record_from_stayrtr(path: Path, tmp: Path, tag: str) -> bytes:
    stay = StayRTR(path, tmp, tag)
    try:
        stay.start()
        stream, _, _ = record_stream(stay.port)
        return stream
    finally:
        stay.stop()


# ---- report ------------------------------------------------------------------------------------


def rng(vals: list) -> str:
    v = [x for x in vals if x is not None]
    return f"{min(v):.3f}-{max(v):.3f}" if len(v) > 1 else ""


def describe(res: dict) -> str:
    parts = [
        f"start {fmt(res.get('startup'), '.2f')} s",
        f"RSS {fmt(res.get('rss_start'), '.0f')} MiB",
    ]
    for phase in ("first", "repeat", "ten"):
        r = res.get(phase)
        if r:
            t = r["last"]
            bad = "" if r["ok"] else f" COUNT MISMATCH {r['counts']} {r['errors'][:2]}"
            parts.append(f"{phase} {fmt(t, '.3f')} s (cache CPU {r['cpu']:.2f} s){bad}")
    parts.append(f"VmHWM {fmt(res.get('hwm_served'), '.0f')} MiB")
    return ", ".join(parts)


RELOAD_TARGET = 2.0
RELOAD_HALF = 500


def reload_child(first: Path, changed: Path, cur: Path, reps: int) -> int:
    """Hidden mode: serve ``first``, then time reloads of ``changed`` / ``first`` over it."""
    import orjson

    from rov_router.rtr.cache import CacheState
    from rov_router.rtr.server import FileCache, FileSource

    shutil.copyfile(first, cur)
    msgs: list[str] = []
    cache = CacheState()
    files = FileCache(cache, FileSource(cur), settle=0, on_reload=lambda _l, m: msgs.append(m))
    t0 = time.perf_counter()
    files.reload(force=True)
    cache.full_payload(1)
    out: dict = {"first": time.perf_counter() - t0, "vrps": len(cache.vrps), "runs": []}
    for i in range(2 * reps):
        shutil.copyfile(changed if i % 2 == 0 else first, cur)
        before = cache.serial
        t0 = time.perf_counter()
        ok = files.reload(force=True)
        t1 = time.perf_counter()
        body = cache.delta_payload(1, before)
        t2 = time.perf_counter()
        out["runs"].append(
            {
                "reload": t1 - t0,
                "delta": t2 - t1,
                "total": t2 - t0,
                "ok": ok and cache.serial != before and body is not None,
                "bytes": len(body) if body else 0,
                "message": msgs[-1],
            }
        )
    data = cur.read_bytes()
    t0 = time.perf_counter()
    orjson.loads(data)
    out["orjson"] = time.perf_counter() - t0
    print(json.dumps(out), flush=True)
    return 0


def bench_reload(prepdev: Path, reps: int) -> int:
    import random

    from bench_rtr_sync import SEED

    with tempfile.TemporaryDirectory(prefix="bench_cache_reload.") as td:
        tmp = Path(td)
        doc = load_prepdev(prepdev)
        roas = doc["roas"]
        first, changed = tmp / "vrps-424k.json", tmp / "vrps-424k-changed.json"
        _dump_json(doc, first)
        rng = random.Random(SEED)
        drop = set(rng.sample(range(len(roas)), RELOAD_HALF))
        held = {(r["prefix"], r["maxLength"], r["asn"]) for r in roas}
        new: list[dict] = []
        for r in rng.sample(roas, 4 * RELOAD_HALF):
            asn = rng.randint(1, 64495)
            if (r["prefix"], r["maxLength"], asn) not in held and len(new) < RELOAD_HALF:
                held.add((r["prefix"], r["maxLength"], asn))
                new.append({**r, "asn": asn})
        _dump_json({**doc, "roas": [r for i, r in enumerate(roas) if i not in drop] + new}, changed)
        print(
            f"reload: {len(roas)} VRPs; changed copy: -{len(drop)} +{len(new)} VRPs "
            f"({changed.stat().st_size / 1e6:.1f} MB); {reps} reload(s) each way in a fresh child",
            flush=True,
        )
        argv = [sys.executable, str(Path(__file__).resolve()), "--reload-child"]
        argv += [str(first), str(changed), str(tmp / "served.json"), str(reps)]
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
        )
        try:
            out, err = proc.communicate(timeout=600)
        finally:
            stop_child(proc)
    try:
        res = json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        print(f"bench_cache: reload child failed: {err.decode()[-800:]}")
        return 1
    print(f"first load + full v1 encoding: {res['first']:.2f} s ({res['vrps']} VRPs)")
    for i, r in enumerate(res["runs"]):
        print(
            f"  reload {i + 1} ({'changed' if i % 2 == 0 else 'original'} file): "
            f"FileCache.reload {r['reload']:.3f} s + delta encoding {r['delta']:.4f} s = "
            f"{r['total']:.3f} s ({r['bytes']} bytes of v1 PDUs{'' if r['ok'] else ', NOT PUBLISHED'}): "
            f"{r['message']}",
            flush=True,
        )
    totals = [r["total"] for r in res["runs"]]
    worst = max(totals)
    print(
        f"\nreload + delta published: median {statistics.median(totals):.3f} s, worst "
        f"{worst:.3f} s  (target <= {RELOAD_TARGET:g} s: {'PASS' if worst <= RELOAD_TARGET else 'FAIL'}); "
        f"orjson.loads of the file alone {res['orjson']:.3f} s (ratio median reload / parse "
        f"{statistics.median(totals) / res['orjson']:.1f}x)"
    )
    return 0 if all(r["ok"] for r in res["runs"]) else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="424k set only, 1 repetition")
    ap.add_argument("--reps", type=int, default=None, help="repetitions (default 3; --quick: 1)")
    ap.add_argument("--client-child", type=int, metavar="PORT", help=argparse.SUPPRESS)
    ap.add_argument("--reload", action="store_true", help="only the reload figures")
    ap.add_argument("--reload-child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client_child is not None:
        return client_child(args.client_child)
    if args.reload_child is not None:
        a, b, cur, n = args.reload_child
        return reload_child(Path(a), Path(b), Path(cur), int(n))

    data = shared_data()
    prepdev = data / "vrps" / "rpki-client_ripe-prepdev_20230504.json.xz"
    if not data.is_dir() or not prepdev.is_file():
        print(
            f"bench_cache: SKIPPED: shared data not found ({prepdev}); "
            "set ROV_SHARED_DATA to the shared/data folder to run this benchmark."
        )
        return 0
    if shutil.which("stayrtr") is None:
        print("bench_cache: SKIPPED: stayrtr is not installed (apt-get install stayrtr)")
        return 0

    if args.reload:
        return bench_reload(prepdev, 1 if args.quick else 2)
    reps = args.reps or (1 if args.quick else 3)
    sets = ["424k"] if args.quick else ["424k", "700k"]
    print(
        f"bench_cache: sets {', '.join(sets)}; {reps} run(s) per figure (median shown); "
        f"{os.cpu_count()} CPUs; rov-router = {rov_router_argv()[0]}; "
        f"stayrtr = {shutil.which('stayrtr')}",
        flush=True,
    )
    t_start = time.perf_counter()
    label = {"ours": "ours", "stayrtr": "StayRTR"}
    runs: dict[tuple[str, str], list[dict]] = {}
    floors: dict[str, dict] = {}
    notes: list[str] = []
    all_ok = True
    with tempfile.TemporaryDirectory(prefix="bench_cache.") as td:
        tmp = Path(td)
        t0 = time.perf_counter()
        doc = load_prepdev(prepdev)
        base_roas = doc["roas"]
        print(
            f"prepdev: {len(base_roas)} VRPs loaded, 'expires' removed "
            f"({time.perf_counter() - t0:.1f} s)",
            flush=True,
        )
        for set_name in sets:
            path = tmp / f"vrps-{set_name}.json"
            t0 = time.perf_counter()
            roas = base_roas
            if set_name == "700k":
                roas = base_roas + synth_vrps(base_roas, N_EXTRA_V4, N_EXTRA_V6)
            out = {**doc, "roas": roas}
            out["metadata"] = {
                **doc.get("metadata", {}),
                "vrps": len(roas),
                "uniquevrps": len(roas),
            }
            _dump_json(out, path)
            expected = len(roas)
            del out, roas
            print(
                f"\n== {set_name}: {expected} VRPs, {path.stat().st_size / 1e6:.1f} MB JSON, "
                f"built in {time.perf_counter() - t0:.1f} s",
                flush=True,
            )
            for rep in range(reps):
                order = ["ours", "stayrtr"] if rep % 2 == 0 else ["stayrtr", "ours"]
                for kind in order:
                    res = measure_cache(kind, path, tmp, f"{set_name}-{kind}-{rep}", expected)
                    runs.setdefault((set_name, kind), []).append(res)
                    ok = all(res[p]["ok"] for p in ("first", "repeat", "ten"))
                    all_ok &= ok
                    print(
                        f"  [{set_name}] run {rep + 1}/{reps} {kind:7s}: {describe(res)}",
                        flush=True,
                    )
                    if res.get("loaded"):
                        notes.append(f"{set_name} {label[kind]} loaded: {res['loaded']}")

            # the client's floor: the same bytes from an in-script server writing 1 MiB chunks
            stream = record_from_stayrtr(path, tmp, f"{set_name}-record")
            replay = ReplayServer(stream)
            try:
                fl = {
                    p: run_clients(replay.port, n, expected)
                    for p, n in (("one", 1), ("ten", N_CLIENTS))
                }
            finally:
                replay.stop()
            floors[set_name] = fl
            all_ok &= fl["one"]["ok"] and fl["ten"]["ok"]
            print(
                f"  [{set_name}] replay (client floor, {len(stream)} bytes): one "
                f"{fmt(fl['one']['last'], '.3f')} s, ten {fmt(fl['ten']['last'], '.3f')} s"
                + ("" if fl["one"]["ok"] and fl["ten"]["ok"] else " COUNT MISMATCH"),
                flush=True,
            )
            if replay.errors:
                notes.append(f"{set_name}: replay server errors: {replay.errors[:3]}")

    # ---- tables ----
    figures = [
        ("start-up: Popen -> ready (s)", lambda r: r.get("startup"), ".3f"),
        ("reset, 1 client, first after start-up (s)", lambda r: r["first"]["last"], ".3f"),
        ("reset, 1 client, repeated (s)", lambda r: r["repeat"]["last"], ".3f"),
        (
            f"{N_CLIENTS} clients at once: go -> last End of Data (s)",
            lambda r: r["ten"]["last"],
            ".3f",
        ),
        (
            f"{N_CLIENTS} clients at once: median per client (s)",
            lambda r: r["ten"]["per_client"],
            ".3f",
        ),
        ("cache CPU: start-up (s)", lambda r: r.get("cpu_start"), ".2f"),
        ("cache CPU: first reset (s)", lambda r: r["first"]["cpu"], ".2f"),
        ("cache CPU: repeated reset (s)", lambda r: r["repeat"]["cpu"], ".2f"),
        (f"cache CPU: {N_CLIENTS} clients (s)", lambda r: r["ten"]["cpu"], ".2f"),
        ("RSS right after start-up (MiB)", lambda r: r.get("rss_start"), ".0f"),
        ("VmHWM right after start-up (MiB)", lambda r: r.get("hwm_start"), ".0f"),
        ("VmHWM after serving (MiB)", lambda r: r.get("hwm_served"), ".0f"),
    ]
    rows = []
    medians: dict[tuple[str, str, str], float | None] = {}
    for set_name in sets:
        for kind in ("ours", "stayrtr"):
            rs = runs[(set_name, kind)]
            ok = "yes" if all(r[p]["ok"] for r in rs for p in ("first", "repeat", "ten")) else "NO"
            for name, get, spec in figures:
                vals = [get(r) for r in rs]
                m = med(vals)
                medians[(set_name, kind, name)] = m
                rows.append(
                    (
                        set_name,
                        label[kind],
                        name,
                        fmt(m, spec),
                        rng(vals) if spec == ".3f" else "",
                        ok,
                    )
                )
        fl = floors[set_name]
        for p, name in (
            ("one", "reset, 1 client"),
            ("ten", f"{N_CLIENTS} clients at once: go -> last End of Data"),
        ):
            rows.append(
                (
                    set_name,
                    "replay",
                    f"{name} (s) [client floor]",
                    fmt(fl[p]["last"], ".3f"),
                    "",
                    "yes" if fl[p]["ok"] else "NO",
                )
            )
    print(f"\n=== Results (median of {reps} run(s); range min-max for times) ===\n")
    print_table(["set", "cache", "figure", "value", "range", "counts ok"], rows, "lllrrl")

    ratio_defs = [
        ("start-up time", "start-up: Popen -> ready (s)", None),
        ("reset, first after start-up", "reset, 1 client, first after start-up (s)", "< 1 (faster per client)"),
        ("reset, repeated", "reset, 1 client, repeated (s)", "< 1 (faster per client)"),
        (f"{N_CLIENTS} clients: last End of Data", f"{N_CLIENTS} clients at once: go -> last End of Data (s)", "< 1 (faster per client)"),
        (f"{N_CLIENTS} clients: median per client", f"{N_CLIENTS} clients at once: median per client (s)", "< 1 (faster per client)"),
        ("RSS right after start-up", "RSS right after start-up (MiB)", "< 1 (less memory)"),
        ("VmHWM after serving", "VmHWM after serving (MiB)", "< 1 (less memory)"),
    ]  # fmt: skip
    rrows = []
    for set_name in sets:
        for what, key, target in ratio_defs:
            a = medians.get((set_name, "ours", key))
            b = medians.get((set_name, "stayrtr", key))
            v = None if a is None or not b else a / b
            verdict = "-" if target is None or v is None else ("met" if v < 1 else "MISSED")
            rrows.append((set_name, what, fmt(v, ".2f"), target or "(info)", verdict))
    print("\n=== Ratios ours / StayRTR (< 1: ours faster / smaller) ===\n")
    print_table(["set", "figure", "ours/StayRTR", "target", "status"], rrows, "llrll")
    print(
        "\nNotes:\n"
        "* Reset times run from the parent's 'go' (clients already started and connected to\n"
        "  nothing yet) to End of Data in the client: TCP connect + Reset Query + the whole answer.\n"
        "  The client walks every PDU in Python, so the 'replay' rows (same bytes, written in\n"
        "  1 MiB chunks by an in-script server) are the floor any cache can reach here.\n"
        f"* The {N_CLIENTS} clients and the cache share this machine's {os.cpu_count()} CPUs.\n"
        "* StayRTR's readiness is polled every 50 ms; ours is the time its line arrives."
    )
    for n in dict.fromkeys(notes):
        print(f"* {n}")
    print("\n=== Reload of a changed 424k file ===\n", flush=True)
    rc = bench_reload(prepdev, 1 if args.quick else 2)
    print(f"\ntotal benchmark time {time.perf_counter() - t_start:.0f} s")
    if not all_ok:
        print("bench_cache: some clients got the wrong VRP count (see above)")
        return 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
