"""The examples in examples/real-routers/, used verbatim (only ports, and the VRP file's path,
substituted) with real BIRD 2, FRR bgpd and GoBGP: (a) as RTR clients of `rov-router cache`,
(b) as upstream and downstream BGP neighbors of `rov-router run`.  Every daemon is started
here and stopped by its PID; no system service is used."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rov_router.procs import free_port, stop_child
from tests.support.env import REPO, need_tool
from tests.support.peers import CacheProc

pytestmark = pytest.mark.interop

EX = REPO / "examples" / "real-routers"
DEMO_VRPS = REPO / "examples" / "demo_vrps.json"
UPSTREAM = {"bird": "127.0.0.11", "frr": "127.0.0.12", "gobgp": "127.0.0.13"}
DOWNSTREAM = {"bird": "127.0.0.21", "frr": "127.0.0.22", "gobgp": "127.0.0.23"}
PASSED = {"192.0.2.0/24", "203.0.113.0/24"}  # valid, not-found; 208.65.153.0/24 is invalid


def example(name: str, **ports: int) -> str:
    """An example file with its example ports (1790 router, 1791 neighbors, 3323 cache)
    replaced by free ones."""
    text = (EX / name).read_text()
    for old, new in (("1790", "router"), ("1791", "neighbor"), ("3323", "cache")):
        if new in ports:
            text = re.sub(rf"\b{old}\b", str(ports[new]), text)
    return text


def wait_until(what: str, probe, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        ok, last = probe()
        if ok:
            return last
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}; last seen:\n{last}")


class Daemons:
    """Real routers started from the example files, each stopped by its PID."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []

    def spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 - the child owns it
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs.append(p)
        return p

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")[-3000:]

    # ---- BIRD 2 ----
    def bird(self, name: str, conf: str) -> Path:
        bird = need_tool("bird")
        need_tool("birdc")
        path, ctl = self.tmp / f"{name}.conf", self.tmp / f"{name}.ctl"
        path.write_text(conf)
        subprocess.run([bird, "-p", "-c", str(path)], check=True, timeout=20)
        self.spawn(name, [bird, "-f", "-c", str(path), "-s", str(ctl), "-P", f"{ctl}.pid"])
        return ctl

    @staticmethod
    def birdc(ctl: Path, *cmd: str) -> str:
        if not ctl.exists():
            return ""
        return subprocess.run(
            [need_tool("birdc"), "-s", str(ctl), *cmd], capture_output=True, text=True, timeout=20
        ).stdout

    # ---- FRR bgpd ----
    def frr(self, name: str, conf: str, *extra: str) -> Path:
        bgpd = need_tool("/usr/lib/frr/bgpd")
        need_tool("vtysh")
        vty = self.tmp / name
        vty.mkdir()
        path = self.tmp / f"{name}.conf"
        path.write_text(conf)
        self.spawn(
            name,
            [bgpd, "-f", str(path), "-Z", "-S", "-n", "-P", "0", "-i", str(vty / "bgpd.pid"),
             "--vty_socket", str(vty), *extra],
        )  # fmt: skip
        wait_until(f"{name} vty", lambda: ((vty / "bgpd.vty").exists(), self.log(name)), 30)
        return vty

    @staticmethod
    def vtysh(vty: Path, cmd: str) -> str:
        return subprocess.run(
            [need_tool("vtysh"), "--vty_socket", str(vty), "-d", "bgpd", "-c", cmd],
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout

    # ---- GoBGP ----
    def gobgp(self, name: str, conf: str) -> int:
        gobgpd = need_tool("gobgpd")
        need_tool("gobgp")
        path, api = self.tmp / f"{name}.toml", free_port()
        path.write_text(conf)
        self.spawn(
            name,
            [gobgpd, "-f", str(path), "-p", "--api-hosts", f"127.0.0.1:{api}", "--pprof-disable"],
        )
        wait_until(
            f"{name} API", lambda: (self.gobgp_cli(api, "global").returncode == 0, self.log(name))
        )
        return api

    @staticmethod
    def gobgp_cli(api: int, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [need_tool("gobgp"), "-p", str(api), *args], capture_output=True, text=True, timeout=20
        )

    def stop(self) -> None:
        for p in reversed(self.procs):
            stop_child(p)


@pytest.fixture
def daemons(tmp_path):
    d = Daemons(tmp_path)
    yield d
    d.stop()


# ---- (a) RTR clients of the embedded cache ------------------------------------------------------


def test_bird_rtr_client_example(daemons, tmp_path):
    cache = CacheProc(DEMO_VRPS, tmp_path)
    daemons.procs.append(cache.proc)
    ctl = daemons.bird("bird-rtr", example("bird-rtr.conf", cache=cache.port))
    wait_until(
        "BIRD's rpki1 to sync 5 + 2 VRPs",
        lambda: (
            (st := daemons.birdc(ctl, "show", "protocols", "all", "rpki1")).count("Established")
            and "5 imported" in st
            and "2 imported" in st,
            st + daemons.log("bird-rtr"),
        ),
    )
    # the 2008 hijack is invalid, YouTube's own route valid, in BIRD's own check
    assert "(enum 35)2" in daemons.birdc(ctl, "eval", "roa_check(r4, 208.65.153.0/24, 17557)")
    assert "(enum 35)1" in daemons.birdc(ctl, "eval", "roa_check(r4, 208.65.152.0/22, 36561)")


def test_frr_rtr_client_example(daemons, tmp_path):
    cache = CacheProc(DEMO_VRPS, tmp_path)
    daemons.procs.append(cache.proc)
    vty = daemons.frr("frr-rtr", example("frr-rtr.conf", cache=cache.port), "-M", "rpki", "-p", "0")
    table = wait_until(
        "FRR to hold the 7 VRPs",
        lambda: (
            "Number of IPv4 Prefixes: 5" in (t := daemons.vtysh(vty, "show rpki prefix-table"))
            and "Number of IPv6 Prefixes: 2" in t,
            t + daemons.log("frr-rtr"),
        ),
    )
    assert re.search(r"208\.65\.152\.0\s+22\s+-\s+22\s+36561", table), table


def test_gobgp_rtr_client_example(daemons, tmp_path):
    cache = CacheProc(DEMO_VRPS, tmp_path)
    daemons.procs.append(cache.proc)
    api = daemons.gobgp("gobgp-rtr", example("gobgp-rtr.toml", cache=cache.port))
    wait_until(
        "GoBGP to hold 5 IPv4 / 2 IPv6 VRPs",
        lambda: (
            re.search(r"\bUp\b.*\b5/2\b", s := daemons.gobgp_cli(api, "rpki", "server").stdout)
            is not None,
            s + daemons.log("gobgp-rtr"),
        ),
    )
    table = daemons.gobgp_cli(api, "rpki", "table", "-a", "ipv4").stdout
    assert re.search(r"208\.65\.152\.0/22\s+22\s+36561", table), table


# ---- (b) upstream and downstream neighbors of `rov-router run` ---------------------------------


class Router:
    def __init__(self, tmp: Path, daemons: Daemons) -> None:
        self.port, self.neighbor_port = free_port(), free_port()
        conf = example("router.toml", router=self.port, neighbor=self.neighbor_port)
        conf = conf.replace('"../demo_vrps.json"', json.dumps(str(DEMO_VRPS)))
        (tmp / "router.toml").write_text(conf)
        self.control = tmp / "control.sock"
        self.proc = daemons.spawn(
            "router",
            [sys.executable, "-m", "rov_router.cli", "run", "--config", str(tmp / "router.toml"),
             "--json", "--control", str(self.control)],
        )  # fmt: skip

    def show(self, what: str) -> dict:
        r = subprocess.run(
            [sys.executable, "-m", "rov_router.cli", "show", what, "--json",
             "--socket", str(self.control)],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        return json.loads(r.stdout) if r.returncode == 0 else {}

    def neighbor(self, address: str) -> dict:
        return next(
            (n for n in self.show("neighbors").get("neighbors", []) if n["address"] == address), {}
        )


def _check_router_saw_three_and_dropped_the_hijack(router: Router, upstream: str, daemons) -> None:
    wait_until(
        f"3 routes from {upstream}",
        lambda: (
            (n := router.neighbor(upstream)).get("received") == 3,
            f"{n}\n{daemons.log('router')}",
        ),
    )
    n = router.neighbor(upstream)
    assert (n["valid"], n["invalid"], n["not-found"], n["dropped"]) == (1, 1, 1, 1), n


def test_bird_upstream_and_downstream_examples(daemons, tmp_path):
    router = Router(tmp_path, daemons)
    down = daemons.bird("bird-down", example("bird-downstream.conf", neighbor=router.neighbor_port))
    daemons.bird(
        "bird-up",
        example("bird-upstream.conf", router=router.port, neighbor=router.neighbor_port),
    )
    _check_router_saw_three_and_dropped_the_hijack(router, UPSTREAM["bird"], daemons)

    def routes():
        out = daemons.birdc(down, "show", "route")
        return {t.split()[0] for t in out.splitlines() if t[:1].isdigit()} == PASSED, out

    wait_until("BIRD downstream to hold the valid and not-found routes only", routes)


def test_frr_upstream_and_downstream_examples(daemons, tmp_path):
    router = Router(tmp_path, daemons)
    port = str(router.neighbor_port)
    down = daemons.frr(
        "frr-down",
        example("frr-downstream.conf", neighbor=router.neighbor_port),
        "-p", port, "-l", DOWNSTREAM["frr"],
    )  # fmt: skip
    daemons.frr(
        "frr-up",
        example("frr-upstream.conf", router=router.port),
        "-p", port, "-l", UPSTREAM["frr"],
    )  # fmt: skip
    _check_router_saw_three_and_dropped_the_hijack(router, UPSTREAM["frr"], daemons)

    def routes():
        out = daemons.vtysh(down, "show bgp ipv4 unicast json")
        try:
            got = set(json.loads(out).get("routes", {}))
        except ValueError:
            got = set()
        return got == PASSED, f"{out}\n{router.neighbor(DOWNSTREAM['frr'])}\n" + daemons.log(
            "frr-down"
        )

    wait_until("FRR downstream to hold the valid and not-found routes only", routes)


def test_gobgp_upstream_and_downstream_examples(daemons, tmp_path):
    router = Router(tmp_path, daemons)
    down = daemons.gobgp(
        "gobgp-down", example("gobgp-downstream.toml", neighbor=router.neighbor_port)
    )
    up_text = example("gobgp-upstream.toml", router=router.port)
    up = daemons.gobgp("gobgp-up", up_text)
    # the example's own route commands, as written in its comments
    adds = [
        shlex.split(m.group(1))
        for m in re.finditer(r"^#\s+gobgp -p \d+ (global rib add [^#\n]+)", up_text, re.M)
    ]
    assert len(adds) == 3, up_text
    for argv in adds:
        r = daemons.gobgp_cli(up, *argv)
        assert r.returncode == 0, r.stderr
    _check_router_saw_three_and_dropped_the_hijack(router, UPSTREAM["gobgp"], daemons)

    def routes():
        out = daemons.gobgp_cli(down, "global", "rib", "-a", "ipv4", "-j").stdout
        try:
            got = set(json.loads(out))
        except ValueError:
            got = set()
        return got == PASSED, f"{out}\n{router.neighbor(DOWNSTREAM['gobgp'])}\n" + daemons.log(
            "gobgp-down"
        )

    wait_until("GoBGP downstream to hold the valid and not-found routes only", routes)
