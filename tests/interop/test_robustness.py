"""A running `rov-router run` against bad input and unkind process handling: malformed ExaBGP
lines over the bridge socket (external mode, this test plays the bridge), signals, SIGKILL,
leftovers and the control socket."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rov_router.procs import stop_child
from tests.support.env import DATA, need_tool
from tests.support.router_toml import router_toml

pytestmark = pytest.mark.interop

#: an external ExaBGP (a fake bridge on a socket), the control socket, a VRP file
EXTERNAL = router_toml(exabgp_socket="{sock}", control="{ctl}", rpki=['vrps = "{vrps}"'])


def _line(kind: str, peer: str, **body) -> bytes:
    n = {
        "address": {"local": "127.0.0.1", "peer": peer},
        "asn": {"local": 65000, "peer": 65001},
        **body,
    }
    return (json.dumps({"exabgp": "5.0.0", "type": kind, "neighbor": n}) + "\n").encode()


def _state(peer: str, state: str) -> bytes:
    return _line("state", peer, state=state)


def _update(prefix, community=None) -> bytes:
    attr = {"origin": "igp", "as-path": {"0": {"element": "as-sequence", "value": [65001, 64496]}}}
    if community is not None:
        attr["community"] = community
    upd = {"attribute": attr, "announce": {"ipv4 unicast": {"127.0.0.2": [{"nlri": prefix}]}}}
    return _line("update", "127.0.0.2", direction="receive", message={"update": upd})


class FakeBridge:
    """Plays ExaBGP's bridge on the router's socket: sends lines, answers 'done' to commands."""

    def __init__(self, path: Path, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.sock = socket.socket(socket.AF_UNIX)
            try:
                self.sock.connect(str(path))
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.commands: list[str] = []
        self.lock = threading.Lock()
        self.send_lock = threading.Lock()  # whole lines: a 'done' never lands inside one
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        with self.sock.makefile("rb") as f:
            for line in f:
                with self.lock:
                    self.commands.append(line.decode().strip())
                try:
                    self.send(b"done\n")
                except OSError:
                    return

    def send(self, data: bytes) -> None:
        with self.send_lock:
            self.sock.sendall(data)

    def wait_announced(self, prefix: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for c in self.commands:
                    if c.startswith("neighbor 127.0.0.9 announce") and prefix in c.split():
                        return c
            time.sleep(0.05)
        raise AssertionError(f"{prefix} never announced downstream; commands: {self.commands}")

    def close(self) -> None:
        self.sock.close()


def start_router(tmp: Path, *extra: str, config: str = EXTERNAL) -> tuple[subprocess.Popen, Path]:
    vrps = tmp / "vrps.json"
    vrps.write_text((DATA / "small_vrps.json").read_text())
    cfg = tmp / "router.toml"
    cfg.write_text(config.format(sock=tmp / "bgp.sock", ctl=tmp / "ctl.sock", vrps=vrps))
    out = tmp / "router.out"
    with open(out, "wb") as f:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rov_router.cli",
                "run",
                "--config",
                str(cfg),
                *(extra or ["--json"]),
            ],
            stdout=f,
            stderr=subprocess.STDOUT,
        )
    return proc, out


def wait_output(out: Path, text: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in out.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"no {text!r} in the router's output:\n{out.read_text()[-3000:]}")


def wait_routes(ctl: Path, n: int, timeout: float = 30.0) -> None:
    from rov_router.ops.control import request

    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        try:
            got = request(ctl, {"cmd": "routes", "limit": 0})["matched"]
        except OSError:
            got = None
        if got == n:
            return
        time.sleep(0.1)
    raise AssertionError(f"the router holds {got} routes, expected {n}")


def events(out: Path) -> list[dict]:
    return [json.loads(x) for x in out.read_text().splitlines() if x.startswith("{")]


def test_malformed_exabgp_lines_are_counted_and_later_routes_still_flow(tmp_path):
    proc, out = start_router(tmp_path)
    bridge = None
    try:
        wait_output(out, '"event": "rpki"', proc)
        bridge = FakeBridge(tmp_path / "bgp.sock")
        bridge.send(_state("127.0.0.9", "up") + _state("127.0.0.2", "up"))
        bridge.send(_update(123))  # {"nlri": 123}: once an AttributeError that cut the bridge
        bridge.send(_update("192.0.2.0/24"))
        bridge.wait_announced("192.0.2.0/24")
        bridge.send(_update("11.0.0.0/8", community=[[65001]]))  # once a ValueError per flush
        bridge.send(_update("11.1.0.0/16"))
        bridge.wait_announced("11.1.0.0/16")
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        (summary,) = [e for e in events(out) if e["event"] == "summary"]
        assert summary["unparsed_lines"] == 2, summary
        assert summary["routes"] == 2 and summary["loc_rib"] == 2, summary
        text = out.read_text()
        assert "Traceback" not in text, text[-3000:]
        assert "announce nlri: expected a string, got int" in text
        assert "community: expected 2 numbers, got 1" in text
    finally:
        if bridge is not None:
            bridge.close()
        stop_child(proc)


# ---- signals, SIGKILL, leftovers ---------------------------------------------------------------

#: managed ExaBGP: the router's own BGP port, the downstream reached on the same port
MANAGED = router_toml(port="{port}", control="{ctl}", down_port="{port}", rpki=['vrps = "{vrps}"'])


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc)."""
    parent: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            parent[int(d.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    out: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        for child, pp in parent.items():
            if pp == p and child not in out:
                out.add(child)
                todo.append(child)
    return out


def alive(pids: set[int]) -> set[int]:
    out = set()
    for p in pids:
        try:
            state = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.add(p)
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "?"


def wait_gone(pids: set[int], timeout: float) -> set[int]:
    deadline = time.monotonic() + timeout
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive(pids)


def managed_router(tmp: Path) -> tuple[subprocess.Popen, Path, int]:
    from rov_router.procs import free_port

    port = free_port()
    text = MANAGED.replace("{port}", str(port))
    proc, out = start_router(tmp, "--plain", config=text)
    return proc, out, port


def upstream(tmp: Path, port: int):
    from rov_router.bgp.control import Speaker
    from rov_router.bgp.speaker import PeerSpec

    return Speaker(
        "up",
        [
            PeerSpec(
                "127.0.0.1", 65000, 65001, "127.0.0.2", "127.0.0.2", passive=False, connect=port
            )
        ],
        tmp,
    ).start()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_with_a_live_session_stops_within_2_s_with_the_signal_status_and_a_summary(
    tmp_path, sig
):
    proc, out, port = managed_router(tmp_path)
    sp = upstream(tmp_path, port)
    try:
        sp.wait_state("127.0.0.1", "up", 60)
        for prefix in ("192.0.2.0/24", "11.0.0.0/8"):
            assert sp.command(f"announce route {prefix} next-hop self as-path [ 65001 64496 ]")
        wait_routes(tmp_path / "ctl.sock", 2)
        workdir = next(
            Path(w) for w in out.read_text().split() if w.startswith("/tmp/rov-router-")
        ).parent
        kids = descendants(proc.pid)
        assert any("exabgp" in cmdline(k) for k in kids) and any(
            "rov_router.bgp.bridge" in cmdline(k) for k in kids
        )
        t0 = time.monotonic()
        proc.send_signal(sig)
        rc = proc.wait(10)
        took = time.monotonic() - t0
        assert rc == 128 + sig and took < 2.0, (rc, took, out.read_text()[-2000:])
        assert not wait_gone(kids, 2.0), [cmdline(k) for k in alive(kids)]
        assert not workdir.exists()
        summary = [x for x in out.read_text().splitlines() if " summary: " in x]
        assert summary and "summary: 2 routes" in summary[-1], out.read_text()[-2000:]
    finally:
        sp.stop()
        stop_child(proc)


def test_sigkilled_run_leaves_no_exabgp_or_bridge_behind(tmp_path):
    proc, _out, port = managed_router(tmp_path)
    sp = upstream(tmp_path, port)
    try:
        sp.wait_state("127.0.0.1", "up", 60)
        kids = descendants(proc.pid)
        names = [cmdline(k) for k in kids]
        assert any("exabgp" in n for n in names) and any(
            "rov_router.bgp.bridge" in n for n in names
        )
        proc.kill()
        proc.wait(5)
        left = wait_gone(kids, 5.0)
        assert not left, [cmdline(k) for k in left]
    finally:
        sp.stop()
        stop_child(proc)
        # a SIGKILLed router cannot remove its work directory: the test does
        for w in _out.read_text().split():
            if w.startswith("/tmp/rov-router-") and w.endswith("/exabgp.sock"):
                shutil.rmtree(Path(w).parent, ignore_errors=True)


def test_run_busy_withdrawing_a_lost_full_table_still_stops_within_2_s(tmp_path):
    n = 200_000
    proc, out = start_router(tmp_path, "--plain")
    bridge = None
    try:
        wait_output(out, "RPKI vrps.json", proc)
        bridge = FakeBridge(tmp_path / "bgp.sock")
        bridge.send(_state("127.0.0.9", "up") + _state("127.0.0.2", "up"))
        attr = {"origin": "igp", "as-path": {"0": {"element": "as-sequence", "value": [65001, 1]}}}
        for b in range(0, n, 2000):
            nlri = [
                {"nlri": f"{10 + (i >> 16)}.{i >> 8 & 255}.{i & 255}.0/24"}
                for i in range(b, b + 2000)
            ]
            upd = {"attribute": attr, "announce": {"ipv4 unicast": {"127.0.0.2": nlri}}}
            bridge.send(_line("update", "127.0.0.2", direction="receive", message={"update": upd}))
        wait_routes(tmp_path / "ctl.sock", n, timeout=120)
        bridge.send(_state("127.0.0.2", "down"))  # the feeder is lost: withdraw everything
        time.sleep(0.3)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(30)
        took = time.monotonic() - t0
        assert rc == 143 and took < 2.0, (rc, took, out.read_text()[-2000:])
    finally:
        if bridge is not None:
            bridge.close()
        stop_child(proc)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "rov_router.cli", *args]


def _commands(tmp: Path) -> dict[str, tuple[list[str], str | None]]:
    """argv and a text that shows it is up (None: wait a moment) per command."""
    from rov_router.procs import free_port

    dead = f"127.0.0.1:{free_port()}"
    vrps = tmp / "vrps.json"
    vrps.write_text((DATA / "small_vrps.json").read_text())
    mrt = (
        Path(__file__).resolve().parents[2] / "topologies/data/youtube-pakistan-2008-as3277.mrt.gz"
    )
    return {
        "rtr --once": (_cli("rtr", "--cache", dead, "--once"), "failed"),
        "rtr": (_cli("rtr", "--cache", dead), "failed"),
        "validate --cache": (_cli("validate", "--cache", dead, "192.0.2.0/24", "64496"), "failed"),
        "cache": (_cli("cache", "--vrps", str(vrps), "--listen", dead), "loaded"),
        "replay": (_cli("replay", str(mrt), "--router", dead, "--asn", "65001"), None),
        "lab": (_cli("lab", "origin-hijack", "--check"), "step 1/"),
    }


@pytest.mark.parametrize(
    "name", ["rtr --once", "rtr", "validate --cache", "cache", "replay", "lab"]
)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_every_command_stops_within_2_s_on_sigint_and_sigterm_with_its_children(
    tmp_path, name, sig
):
    argv, ready = _commands(tmp_path)[name]
    out = tmp_path / "out"
    with open(out, "wb") as f:
        proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        if ready is None:
            time.sleep(3)
        else:
            wait_output(out, ready, proc, timeout=60)
        kids = descendants(proc.pid)
        if name in ("replay", "lab"):
            assert any("exabgp" in cmdline(k) for k in kids), [cmdline(k) for k in kids]
        t0 = time.monotonic()
        proc.send_signal(sig)
        try:
            rc = proc.wait(10)
        except subprocess.TimeoutExpired:
            rc = None
        took = time.monotonic() - t0
        assert rc == 128 + sig and took < 2.0, (rc, took, out.read_text()[-2000:])
        assert "Traceback" not in out.read_text(), out.read_text()[-3000:]
        assert not wait_gone(kids, 2.0), [cmdline(k) for k in alive(kids)]
    finally:
        stop_child(proc)


# ---- closing the terminal ------------------------------------------------------------------


class Tmux:
    """A private tmux server (its own socket) running one command in a terminal."""

    def __init__(self, tmp: Path) -> None:
        self.bin = need_tool("tmux")
        self.name = f"rov11-{os.getpid()}-{tmp.name}"[:60]

    def run(self, command: str) -> None:
        subprocess.run(
            [
                self.bin,
                "-L",
                self.name,
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                "120",
                "-y",
                "30",
                command,
            ],
            check=True,
            timeout=20,
        )

    def kill_session(self) -> None:
        subprocess.run([self.bin, "-L", self.name, "kill-session", "-t", "t"], timeout=20)

    def kill_server(self) -> None:
        subprocess.run([self.bin, "-L", self.name, "kill-server"], capture_output=True, timeout=20)


def pid_of(marker: str, timeout: float = 30.0) -> int:
    """The rov-router process whose command line holds ``marker`` (a unique path)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for d in Path("/proc").iterdir():
            if d.name.isdigit() and d.name != str(os.getpid()):
                c = cmdline(int(d.name))
                if c.startswith(sys.executable + " -m rov_router.cli") and marker in c:
                    return int(d.name)
        time.sleep(0.05)
    raise AssertionError(f"no rov-router process with {marker}")


def test_cache_exits_when_its_terminal_is_closed_but_reloads_on_a_plain_sighup(tmp_path):
    from rov_router.procs import free_port, port_listening

    vrps = tmp_path / "vrps.json"
    vrps.write_text((DATA / "small_vrps.json").read_text())
    port = free_port()
    log = tmp_path / "cache.log"
    tmux = Tmux(tmp_path)
    env = f"PYTHONPATH={os.environ.get('PYTHONPATH', '')}"
    tmux.run(
        f"env {env} {sys.executable} -m rov_router.cli cache --vrps {vrps} "
        f"--listen 127.0.0.1:{port} 2>&1 | tee {log}"
    )
    pid = 0
    try:
        pid = pid_of(str(vrps))
        deadline = time.monotonic() + 30
        while not port_listening(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(pid, signal.SIGHUP)  # terminal still there: SIGHUP = reload
        deadline = time.monotonic() + 10
        while "reloaded" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "reloaded" in log.read_text() and alive({pid})
        tmux.kill_session()  # the terminal goes away: no orphan holding the port
        assert not wait_gone({pid}, 3.0), cmdline(pid)
        assert not port_listening(port)
    finally:
        tmux.kill_server()
        for p in alive({pid}) if pid else ():
            os.kill(p, signal.SIGKILL)


def test_run_removes_its_work_dir_when_its_terminal_is_closed(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    vrps = tmp_path / "vrps.json"
    vrps.write_text((DATA / "small_vrps.json").read_text())
    cfg = tmp_path / "router.toml"
    cfg.write_text(
        EXTERNAL.format(sock=tmp_path / "bgp.sock", ctl=tmp_path / "ctl.sock", vrps=vrps)
    )
    tmux = Tmux(tmp_path)
    env = f"PYTHONPATH={os.environ.get('PYTHONPATH', '')} TMPDIR={tmp}"
    tmux.run(f"env {env} {sys.executable} -m rov_router.cli run --config {cfg} --plain")
    pid = 0
    try:
        pid = pid_of(str(cfg))
        wait_routes(tmp_path / "ctl.sock", 0)
        assert [p.name[:11] for p in tmp.iterdir()] == ["rov-router-"]
        tmux.kill_session()
        assert not wait_gone({pid}, 3.0), cmdline(pid)
        assert list(tmp.iterdir()) == []
    finally:
        tmux.kill_server()
        for p in alive({pid}) if pid else ():
            os.kill(p, signal.SIGKILL)


# ---- the control socket ------------------------------------------------------------------------

NOBODY = 65534


def _no_xdg(tmp: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    env["TMPDIR"] = str(tmp)
    return env


def _run_default_socket(tmp: Path, env: dict) -> tuple[subprocess.Popen, Path]:
    vrps = tmp / "vrps.json"
    vrps.write_text((DATA / "small_vrps.json").read_text())
    cfg = tmp / f"router-{len(list(tmp.glob('router-*')))}.toml"
    text = EXTERNAL.format(sock=cfg.with_suffix(".sock"), ctl="", vrps=vrps)
    cfg.write_text(text.replace('[control]\nsocket = ""\n', ""))
    out = cfg.with_suffix(".out")
    with open(out, "wb") as f:
        proc = subprocess.Popen(
            _cli("run", "--config", str(cfg), "--plain"),
            stdout=f,
            stderr=subprocess.STDOUT,
            env=env,
        )
    return proc, out


def test_default_control_socket_lives_in_a_private_dir_and_a_second_router_is_told_what_to_use(
    tmp_path,
):
    env = _no_xdg(tmp_path)
    first, out1 = _run_default_socket(tmp_path, env)
    second = None
    try:
        wait_output(out1, "control socket", first)
        d = tmp_path / f"rov-router-{os.getuid()}"
        st = d.stat()
        assert st.st_uid == os.getuid() and (st.st_mode & 0o777) == 0o700
        assert f"control socket {d / 'control.sock'}" in out1.read_text()
        r = subprocess.run(
            _cli("show", "rtr", "--json"), capture_output=True, text=True, env=env, timeout=30
        )
        assert r.returncode == 0 and json.loads(r.stdout)["rpki"][0]["vrps"] == 37, r.stderr
        second, out2 = _run_default_socket(tmp_path, env)
        assert second.wait(30) == 2
        text = out2.read_text()
        assert f"another rov-router already answers on {d / 'control.sock'}" in text
        assert "--control " in text and "Traceback" not in text, text
    finally:
        for p in (first, second):
            if p is not None:
                stop_child(p)


def test_a_squatted_control_dir_or_socket_is_refused_by_run_and_show(tmp_path):
    env = _no_xdg(tmp_path)
    d = tmp_path / f"rov-router-{os.getuid()}"
    d.mkdir(mode=0o700)
    os.chown(d, NOBODY, NOBODY)  # another user got there first
    proc, out = _run_default_socket(tmp_path, env)
    try:
        assert proc.wait(30) == 2
        text = out.read_text()
        assert f"{d} belongs to uid {NOBODY}" in text and "Traceback" not in text, text
        assert not (d / "control.sock").exists()
        r = subprocess.run(_cli("show", "rtr"), capture_output=True, text=True, env=env, timeout=30)
        assert r.returncode == 2 and f"{d} belongs to uid {NOBODY}" in r.stderr, r.stderr
    finally:
        stop_child(proc)

    # a socket in a directory we trust, but bound by someone else, answering with forged data
    sock_path = tmp_path / "ctl.sock"
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(sock_path))
    srv.listen(4)
    os.chown(sock_path, NOBODY, NOBODY)

    def fake() -> None:
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            with c:
                c.recv(1000)
                c.sendall(b'{"rpki": [{"name": "x", "source": "FAKE-CACHE"}]}\n')

    threading.Thread(target=fake, daemon=True).start()
    try:
        for args in (("--json",), ()):
            r = subprocess.run(
                _cli("show", "rtr", "--socket", str(sock_path), *args),
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert r.returncode == 2 and "FAKE" not in r.stdout, (r.stdout, r.stderr)
            assert f"belongs to uid {NOBODY}, not to us" in r.stderr and "Traceback" not in r.stderr
    finally:
        srv.close()
