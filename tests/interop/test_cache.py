"""The embedded cache (`rov-router cache`) against our client, RTRlib rtrclient and BIRD 2, and
against routers that misbehave."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rov_router.procs import free_port, stop_child
from rov_router.rpki.vrp import VRP, load_vrp_file
from rov_router.rtr import pdu as P
from rov_router.rtr.cache import CacheState
from rov_router.rtr.server import RTRServer
from tests.support.env import DATA, need_tool, run_cli
from tests.support.peers import CacheProc

pytestmark = pytest.mark.interop


def mixed_file(path: Path) -> dict:
    """The real stayrtr excerpt (19 ROAs, 3 router keys) + the small set (37 VRPs, ASPA)."""
    real = json.loads((DATA / "stayrtr_test.rpki.json").read_text())
    small = json.loads((DATA / "small_vrps.json").read_text())
    for r in real["roas"]:
        r.pop("expires", None)
    doc = {
        "metadata": real["metadata"],
        "roas": real["roas"] + small["roas"],
        "bgpsec_keys": real["bgpsec_keys"],
        "provider_authorizations": small["provider_authorizations"],
    }
    path.write_text(json.dumps(doc))
    return doc


@pytest.fixture
def cache_proc(tmp_path):
    started: list[CacheProc] = []

    def start(vrps: Path, *extra: str) -> CacheProc:
        c = CacheProc(vrps, tmp_path, *extra)
        started.append(c)
        return c

    yield start
    for c in reversed(started):
        c.stop()


def full_sync_ipv4_count(port: int) -> int:
    """A well-behaved v1 router on a raw socket: Reset Query, then the IPv4 Prefix PDUs counted
    up to End of Data."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(P.ResetQuery(1).encode())
        f = P.Framer()
        n = 0
        s.settimeout(20)
        while True:
            chunk = s.recv(1 << 20)
            assert chunk
            f.feed(chunk)
            for raw in f:
                if raw[1] == P.PDUType.IPV4_PREFIX:
                    n += 1
                if raw[1] == P.PDUType.END_OF_DATA:
                    return n


@pytest.mark.parametrize("version", [0, 1, 2])
def test_our_client_gets_exactly_the_file(cache_proc, tmp_path, version):
    f = tmp_path / "vrps.json"
    mixed_file(f)
    cache = cache_proc(f)
    out = tmp_path / "out.json"
    r = run_cli(
        "rtr",
        "--cache",
        f"127.0.0.1:{cache.port}",
        "--version",
        str(version),
        "--once",
        "--export",
        str(out),
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    want = load_vrp_file(f)
    got = load_vrp_file(out)
    assert got.vrps == want.vrps and len(got.vrps) == 55
    assert got.router_keys == (want.router_keys if version >= 1 else set())
    assert got.aspas == (want.aspas if version == 2 else {})
    assert len(want.router_keys) == 3 and len(want.aspas) == 3


def _rtrclient_lines(text: str) -> tuple[set[VRP], set[VRP]]:
    added, removed = set(), set()
    for line in text.splitlines():
        m = re.match(r"([+-])\s+(\S+)\s+(\d+)\s+-\s+(\d+)\s+(\d+)$", line.strip())
        if m:
            sign, addr, plen, maxlen, asn = m.groups()
            v = VRP.parse(f"{addr}/{plen}", int(maxlen), int(asn))
            (added if sign == "+" else removed).add(v)
    return added, removed


def test_rtrclient_full_set_then_only_the_delta(cache_proc, tmp_path):
    exe = need_tool("rtrclient")
    f = tmp_path / "vrps.json"
    doc = mixed_file(f)
    cache = cache_proc(f)
    out, err = tmp_path / "rtr.out", tmp_path / "rtr.err"
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen(
            ["stdbuf", "-oL", exe, "-p", "tcp", "127.0.0.1", str(cache.port)], stdout=o, stderr=e
        )
    try:

        def wait(pattern: str, count: int = 1) -> None:
            deadline = time.monotonic() + 20
            while len(re.findall(pattern, err.read_text(errors="replace"))) < count:
                assert time.monotonic() < deadline, err.read_text()[-2000:]
                time.sleep(0.05)

        wait(r"Sync successful")
        added, removed = _rtrclient_lines(out.read_text())
        assert added == load_vrp_file(f).vrps and not removed
        # change the file: 2 VRPs out, 3 in
        gone = [doc["roas"].pop(1), doc["roas"].pop(1)]  # 1.0.4.0/24 and /22 AS38803
        new = [
            {"prefix": f"203.0.113.{i * 64}/26", "maxLength": 26, "asn": 64999} for i in range(3)
        ]
        doc["roas"] += new
        f.write_text(json.dumps(doc))
        wait(r"Serial Notify received")
        wait(r"Sync successful", 2)
        log = err.read_text(errors="replace")
        # the second sync was the Serial Query path: 5 prefix PDUs, serial 1
        assert re.search(r"Sync successful, received 5 Prefix PDUs.*SN: 1", log), log[-1500:]
        added2, removed2 = _rtrclient_lines(out.read_text())
        assert removed2 == {VRP.parse(g["prefix"], g["maxLength"], g["asn"]) for g in gone}
        assert added2 - added == {VRP.parse(n["prefix"], 26, 64999) for n in new}
        cache.wait_for(r"delta from serial 0 -> serial 1")
        # status on demand (SIGUSR1): the connected router, its version and serial
        os.kill(cache.proc.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while not [e for e in cache.events() if e.get("event") == "status"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        (st,) = [e for e in cache.events() if e.get("event") == "status"]
        assert st["serial"] == 1 and st["vrps"] == 56
        (router,) = st["routers"]
        assert router["version"] == 1 and router["serial"] == 1 and router["up_to_date"]
        assert (router["resets_served"], router["deltas_served"]) == (1, 1)
    finally:
        stop_child(proc)


BIRD_CONF = """
log "{log}" all;
router id 127.0.0.1;
roa4 table r4;
roa6 table r6;
protocol rpki rpki1 {{
  roa4 {{ table r4; }};
  roa6 {{ table r6; }};
  remote 127.0.0.1 port {port};
  retry keep 5;
}}
"""


def birdc(ctl: Path, *cmd: str) -> str:
    r = subprocess.run(
        [need_tool("birdc"), "-s", str(ctl), *cmd], capture_output=True, text=True, timeout=20
    )
    return r.stdout


def test_bird2_syncs_and_roa_check_flips(cache_proc, tmp_path):
    bird = need_tool("bird")
    need_tool("birdc")
    f = tmp_path / "vrps.json"
    doc = mixed_file(f)
    cache = cache_proc(f)
    conf, ctl = tmp_path / "bird.conf", tmp_path / "bird.ctl"
    conf.write_text(BIRD_CONF.format(log=tmp_path / "bird.log", port=cache.port))
    subprocess.run([bird, "-p", "-c", str(conf)], check=True, timeout=20)
    proc = subprocess.Popen(
        [bird, "-f", "-c", str(conf), "-s", str(ctl), "-P", str(tmp_path / "bird.pid")]
    )
    want = load_vrp_file(f).vrps
    n4 = sum(1 for v in want if len(v.addr) == 4)
    try:
        deadline = time.monotonic() + 30
        while True:
            st = birdc(ctl, "show", "protocols", "all", "rpki1") if ctl.exists() else ""
            if "Established" in st and f"{n4} imported" in st:
                break
            assert time.monotonic() < deadline, st
            time.sleep(0.1)
        assert "Protocol version: 1" in st
        assert f"{len(want) - n4} imported" in st
        assert birdc(ctl, "show", "route", "table", "r4", "count").count(f"{n4} of {n4} routes")
        assert "(enum 35)1" in birdc(ctl, "eval", "roa_check(r4, 192.0.2.0/24, 64496)")
        # the ROA for 192.0.2.0/24 moves from AS64496 to AS64497: BIRD sees it via the cache
        for r in doc["roas"]:
            if r["prefix"] == "192.0.2.0/24" and r["asn"] == 64496:
                r["asn"] = 64497
        f.write_text(json.dumps(doc))
        deadline = time.monotonic() + 30
        while "(enum 35)2" not in birdc(ctl, "eval", "roa_check(r4, 192.0.2.0/24, 64496)"):
            assert time.monotonic() < deadline, birdc(ctl, "show", "protocols", "all", "rpki1")
            time.sleep(0.1)
        assert "(enum 35)1" in birdc(ctl, "eval", "roa_check(r4, 192.0.2.0/24, 64497)")
        cache.wait_for(r"delta from serial 0 -> serial 1")
    finally:
        stop_child(proc)


def test_broken_file_keeps_last_good_set_and_names_the_problem(cache_proc, tmp_path):
    f = tmp_path / "vrps.json"
    doc = mixed_file(f)
    cache = cache_proc(f)
    doc["roas"][3]["maxLength"] = 99
    f.write_text(json.dumps(doc))
    ev = cache.wait_for(r"roas\[3\]")
    assert ev["level"] == "error" and str(f) in ev["message"] and "maxLength 99" in ev["message"]
    assert "still serving serial 0" in ev["message"]
    r = run_cli("rtr", "--cache", f"127.0.0.1:{cache.port}", "--once", "--json", timeout=60)
    (syn,) = [json.loads(x) for x in r.stdout.splitlines() if '"synced"' in x]
    assert syn["vrps"] == 55 and syn["serial"] == 0


def test_session_id_changes_across_restarts(cache_proc, tmp_path):
    f = tmp_path / "vrps.json"
    mixed_file(f)
    ids = []
    for _ in range(3):
        c = cache_proc(f)
        ids.append(int(re.search(r"session (\d+)", c.wait_for(r"serving RTR")["message"]).group(1)))
        c.stop()
    assert ids[0] != ids[1] and ids[1] != ids[2]


# ---- misbehaving routers against the real TCP server (in-process) ---------------------------


def _read_all(sock: socket.socket, timeout: float = 5.0) -> bytes:
    sock.settimeout(timeout)
    buf = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return buf
        if not chunk:
            return buf
        buf += chunk


def _error_of(data: bytes) -> P.ErrorReport:
    f = P.Framer()
    f.feed(data)
    (pdu,) = [P.decode(raw) for raw in f]
    assert isinstance(pdu, P.ErrorReport)
    return pdu


def test_bad_routers_get_errors_or_are_dropped_and_others_are_served():
    big = {VRP((i << 8).to_bytes(4, "big"), 24, 24, 64496 + i % 100) for i in range(1, 300_000)}

    async def run():
        cache = CacheState()
        cache.set_data(big)
        server = RTRServer(
            cache, "127.0.0.1", 0, stall_timeout=1.0, partial_timeout=0.5, write_high_water=64 << 10
        )
        await server.start()
        port = server.port
        loop = asyncio.get_running_loop()

        def bad(payload: bytes) -> bytes:
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(payload)
                return _read_all(s)

        # a router that never reads: tiny receive buffer, asks for 6 MB, then sleeps
        lazy = socket.socket()
        lazy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        lazy.connect(("127.0.0.1", port))
        lazy.sendall(P.ResetQuery(1).encode())
        results = {
            "garbage": await loop.run_in_executor(None, bad, b"GET / HTTP/1.1\r\n\r\n"),
            "unknown type": await loop.run_in_executor(None, bad, bytes([1, 99, 0, 0, 0, 0, 0, 8])),
            "too long": await loop.run_in_executor(None, bad, bytes([1, 2, 0, 0, 0, 2, 0, 0])),
            "half PDU": await loop.run_in_executor(None, bad, bytes([1, 2, 0, 0, 0])),
        }

        # meanwhile a well-behaved router syncs the whole set
        n = await loop.run_in_executor(None, full_sync_ipv4_count, port)
        await asyncio.sleep(2.0)  # past the stall timeout
        status = server.status()
        lazy.close()
        await server.close()
        return results, n, status

    results, n, status = asyncio.run(run())
    assert _error_of(results["garbage"]).code == 4  # 'G' = version 71: Unsupported Version
    assert _error_of(results["garbage"]).version == 2  # answered in our highest version
    assert _error_of(results["unknown type"]).code == 5
    assert _error_of(results["too long"]).code == 0
    assert _error_of(results["half PDU"]).code == 0  # timed out after 0.5 s
    assert n == len(big)
    assert status["routers"] == []  # the lazy router was dropped


def test_python_api_changes_data_and_stops_and_starts_serving():
    """What lab scenarios do: change VRPs / ASPA at run time, take the cache away, bring it back."""
    from rov_router.rpki.store import VRPStore
    from rov_router.rtr import session as S
    from rov_router.rtr.client import RTRClient

    a = VRP.parse("192.0.2.0/24", 24, 64496)
    b = VRP.parse("198.51.100.0/24", 24, 64497)

    async def run():
        cache = CacheState()
        cache.set_data({a}, {64496: (64500,)})
        server = RTRServer(cache, "127.0.0.1", 0, notify_interval=0)
        await server.start()
        store = VRPStore()
        events: list = []
        client = RTRClient("127.0.0.1", server.port, store, on_event=events.append, max_backoff=0.2)
        task = asyncio.ensure_future(client.run())

        async def until(cond, timeout=10.0):
            deadline = asyncio.get_running_loop().time() + timeout
            while not cond():
                assert asyncio.get_running_loop().time() < deadline, events[-5:]
                await asyncio.sleep(0.02)

        await client.wait_synced(10)
        cache.add_vrps([b])
        cache.set_aspa(64497, [64501, 64502])
        await until(lambda: client.session.serial == 2)
        assert set(store.iter_vrps()) == {a, b}
        assert store.aspas() == {64496: (64500,), 64497: (64501, 64502)}
        await server.stop()  # the cache goes away: the router keeps its data
        await until(lambda: not client.connected)
        assert set(store.iter_vrps()) == {a, b}
        cache.remove_vrps([a])  # changed while down
        await server.start()  # back on the same port: the router resumes by Serial Query
        await until(lambda: client.session.serial == 3)
        assert set(store.iter_vrps()) == {b}
        client.stop()
        await task
        await server.close()
        return events

    events = asyncio.run(run())
    syncs = [e for e in events if isinstance(e, S.Synced)]
    # reset; one delta to serial 2 (both changes were made before the router asked); after the
    # restart, a delta to serial 3 over the resumed session
    assert [(s.reset, s.serial) for s in syncs] == [(True, 0), (False, 2), (False, 3)]


def test_truncated_file_is_refused_and_the_set_still_served(cache_proc, tmp_path):
    """A producer that truncates before it writes (``json.dump`` into an opened file) leaves a
    0-byte file for a while: the cache refuses it and keeps serving every VRP."""
    f = tmp_path / "vrps.json"
    mixed_file(f)
    cache = cache_proc(f)
    cache.wait_for(r"serving RTR")
    with open(f, "w"):
        pass  # truncated
    ev = cache.wait_for(r"empty \(0 bytes\)")
    assert ev["level"] == "error"
    assert ev["message"] == f"{f}: empty (0 bytes); still serving serial 0"
    r = run_cli("rtr", "--cache", f"127.0.0.1:{cache.port}", "--once", "--json", timeout=60)
    (syn,) = [json.loads(x) for x in r.stdout.splitlines() if '"synced"' in x]
    assert syn["vrps"] == 55 and syn["serial"] == 0


def test_empty_file_at_start_is_an_error(tmp_path):
    f = tmp_path / "vrps.csv"
    f.write_text("\n \n")
    r = run_cli("cache", "--vrps", str(f), "--listen", f"127.0.0.1:{free_port()}", timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip() == (
        f"rov-router: error: nothing to serve: {f}: empty (3 bytes, all whitespace)"
    )


def test_big_shrink_is_held_until_sigusr2(cache_proc, tmp_path):
    f = tmp_path / "vrps.json"
    doc = mixed_file(f)
    cache = cache_proc(f)
    cache.wait_for(r"serving RTR")
    doc["roas"] = doc["roas"][:5]
    f.write_text(json.dumps(doc))
    ev = cache.wait_for(r"HELD BACK")
    assert ev["level"] == "error" and "still serving serial 0" in ev["message"]
    r = run_cli("rtr", "--cache", f"127.0.0.1:{cache.port}", "--once", "--json", timeout=60)
    (syn,) = [json.loads(x) for x in r.stdout.splitlines() if '"synced"' in x]
    assert syn["vrps"] == 55 and syn["serial"] == 0
    os.kill(cache.proc.pid, signal.SIGUSR2)
    cache.wait_for(r"held-back reload confirmed")
    cache.wait_for(r"serial 0 -> 1")
    r = run_cli("rtr", "--cache", f"127.0.0.1:{cache.port}", "--once", "--json", timeout=60)
    (syn,) = [json.loads(x) for x in r.stdout.splitlines() if '"synced"' in x]
    assert syn["vrps"] == 5 and syn["serial"] == 1


def test_routers_that_do_not_read_hold_bounded_memory_and_are_dropped():
    """Three routers send ten Reset Queries each and never read (tiny receive buffers): the
    cache keeps at most one response in flight per router, written from the shared encoded
    body in small chunks, stops reading their queries, and drops them after the drain
    timeout; a good router syncs the whole set meanwhile."""
    big = {VRP((i << 8).to_bytes(4, "big"), 24, 24, 64496 + i % 100) for i in range(1, 60_000)}

    async def run():
        cache = CacheState()
        cache.set_data(big)
        server = RTRServer(cache, "127.0.0.1", 0, stall_timeout=1.5)
        await server.start()
        port = server.port
        loop = asyncio.get_running_loop()
        response = len(cache.full_payload(1))
        lazy = []
        for _ in range(3):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", port))
            s.sendall(P.ResetQuery(1).encode() * 10)
            lazy.append(s)
        await asyncio.sleep(0.5)
        # private bytes (the transport's copy) and queries answered; what is still queued
        # are views of the one shared encoded body
        held = [(c.transport.get_write_buffer_size(), c.session.queries) for c in server._conns]
        shared = all(
            all(
                v.obj is cache.full_payload(1) for v in getattr(c, "_queue", ()) if len(v.obj) > 100
            )
            for c in server._conns
        )

        n = await loop.run_in_executor(None, full_sync_ipv4_count, port)
        await asyncio.sleep(3.0)  # past the drain timeout
        status = server.status()
        for s in lazy:
            s.close()
        await server.close()
        return response, held, shared, n, status

    response, held, shared, n, status = asyncio.run(run())
    assert len(held) == 3 and shared
    # each holds at most two small chunks of its own, not copies of a 1.2 MB response
    assert all(buffered <= 16 << 10 for buffered, _ in held), (response, held)
    # a query is answered only once the previous answer has left (into the kernel's socket
    # buffers); the rest wait unread
    assert all(queries < 10 for _, queries in held), held
    assert n == len(big)
    assert status["routers"] == []  # the routers that do not read were dropped


def test_rtr_once_exits_without_teardown_and_loses_no_output(cache_proc, tmp_path):
    """`rtr --once` ends the process right after its output (teardown of a big table only
    delays the caller): atexit hooks do not run, yet the synced line on a block-buffered
    stdout (a file) and the --export file are complete, and the status is 0."""
    f = tmp_path / "vrps.json"
    mixed_file(f)
    cache = cache_proc(f)
    export = tmp_path / "out.json"
    out = tmp_path / "stdout.txt"
    hook = (
        "import atexit, sys; atexit.register(lambda: print('TEARDOWN RAN', file=sys.stderr)); "
        "from rov_router.cli import main; sys.exit(main())"
    )
    argv = ["rtr", "--cache", f"127.0.0.1:{cache.port}", "--once", "--json", "--export"]
    with open(out, "wb") as fo:
        r = subprocess.run(
            [sys.executable, "-c", hook, *argv, str(export)],
            stdout=fo,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    assert r.returncode == 0, r.stderr
    assert "TEARDOWN RAN" not in r.stderr
    (syn,) = [json.loads(x) for x in out.read_text().splitlines() if '"synced"' in x]
    assert syn["vrps"] == 55
    assert len(json.loads(export.read_text())["roas"]) == 55
    # called from Python (argv given), main() returns as before and teardown runs
    code = (
        "import atexit, sys; atexit.register(lambda: print('TEARDOWN RAN', file=sys.stderr)); "
        f"from rov_router.cli import main; print('rc', main({[*argv, str(export)]!r}))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "rc 0" in r.stdout and "TEARDOWN RAN" in r.stderr, r.stderr
