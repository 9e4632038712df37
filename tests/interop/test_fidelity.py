"""rov-router between real routers: every attribute a transparent eBGP router passes on reaches a
BIRD 2 sink, GoBGP accepts the next hops, RFC 8097 stays inside the AS, no route leaves before
RPKI has synced, and SIGHUP reloads the configuration without dropping unaffected sessions."""

from __future__ import annotations

import importlib.metadata
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rov_router.bgp.control import Speaker
from rov_router.bgp.speaker import PeerSpec
from rov_router.procs import free_port, stop_child
from tests.support.env import DATA, need_tool
from tests.support.lab import read_state
from tests.support.peers import StayRTR
from tests.support.router_toml import router_toml

pytestmark = pytest.mark.interop

BIRD_SINK = """
log "{dir}/bird-{name}.log" all;
router id {addr};
protocol device {{ }}
ipv4 table t4;
ipv6 table t6;
protocol bgp up {{
  local {addr} port {port} as {asn};
  neighbor 127.0.0.1 as 65000;
  passive on; strict bind on; multihop; hold time 240;
  ipv4 {{ table t4; import all; export none; }};
  ipv6 {{ table t6; import all; export none; }};
}}
"""

RICH = (
    "origin incomplete as-path [ 65001 101 47065 ] ( 61575 ) [ 47065 ] med 50 "
    "community [ 65001:7 ] large-community [ 65001:1:2 ] "
    "extended-community [ target:64500:100 0x4300000000000001 0x4000fde800000001 ] "
    "atomic-aggregate aggregator ( 64500:192.0.2.1 ) attribute [ 0xf0 0xc0 0x01020304 ]"
)


class Net:
    """Real peers on 127.0.0.x, every one started and stopped by PID."""

    def __init__(self, tmp: Path) -> None:
        self.dir = tmp
        self.birdc = need_tool("birdc")
        self.procs: list[subprocess.Popen] = []
        self.speakers: list[Speaker] = []
        self.port = free_port()
        self.router: subprocess.Popen | None = None
        self.out = tmp / "router.out"
        self.state_file = tmp / "state.json"
        self.toml = tmp / "router.toml"

    def bird(self, name: str, addr: str, asn: int) -> int:
        bird = need_tool("bird")
        port = free_port(addr)
        conf = self.dir / f"bird-{name}.conf"
        conf.write_text(BIRD_SINK.format(dir=self.dir, name=name, addr=addr, port=port, asn=asn))
        ctl = self.dir / f"bird-{name}.ctl"
        self.procs.append(
            subprocess.Popen(
                [bird, "-f", "-c", str(conf), "-s", str(ctl), "-P", str(self.dir / f"{name}.pid")]
            )
        )
        return port

    def birdc_out(self, name: str, *args: str) -> str:
        return subprocess.run(
            [self.birdc, "-s", str(self.dir / f"bird-{name}.ctl"), *args],
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout

    def bird_routes(self, name: str = "sink") -> set[str]:
        out = set()
        for table in ("t4", "t6"):
            for line in self.birdc_out(name, "show", "route", "table", table).splitlines():
                tok = line.split()
                if tok and "/" in tok[0]:
                    out.add(tok[0])
        return out

    def wait_bird(self, expected: set[str], name: str = "sink", timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        got: set[str] = set()
        while time.monotonic() < deadline:
            got = self.bird_routes(name)
            if got == expected:
                return
            time.sleep(0.2)
        raise AssertionError(
            f"BIRD {name} has {sorted(got)}, expected {sorted(expected)}\n{self.tail()}"
        )

    def bird_detail(self, prefix: str, name: str = "sink") -> str:
        table = "t6" if ":" in prefix else "t4"
        return self.birdc_out(name, "show", "route", "table", table, prefix, "all")

    def start_router(self, text: str, env: dict | None = None) -> None:
        self.toml.write_text(text)
        with open(self.out, "wb") as f:
            self.router = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "rov_router.cli",
                    "run",
                    "--config",
                    str(self.toml),
                    "--json",
                    "--state-file",
                    str(self.state_file),
                ],
                stdout=f,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
            )
        self.procs.append(self.router)

    def upstream(self, address: str = "127.0.0.2", asn: int = 65001) -> Speaker:
        sp = Speaker(
            f"up-{address}",
            [PeerSpec("127.0.0.1", 65000, asn, address, address, passive=False, connect=self.port)],
            self.dir,
        ).start()
        self.speakers.append(sp)
        sp.wait_state("127.0.0.1", "up", 60)
        return sp

    def events(self, kind: str | None = None) -> list[dict]:
        out = [json.loads(x) for x in self.out.read_text().splitlines() if x.startswith("{")]
        return [e for e in out if kind is None or e.get("event") == kind]

    def wait_event(self, kind: str, timeout: float = 30, n: int = 1) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.events(kind)
            if len(got) >= n:
                return got
            time.sleep(0.1)
        raise AssertionError(f"no {kind!r} event:\n{self.tail()}")

    def state(self) -> dict:
        assert self.router is not None
        return read_state(self.router.pid, self.state_file)

    def tail(self) -> str:
        return self.out.read_text()[-3000:] if self.out.exists() else ""

    def stop(self) -> None:
        for sp in self.speakers:
            sp.stop()
        for p in reversed(self.procs):
            stop_child(p)


GOBGP = """
[global.config]
  as = {asn}
  router-id = "{addr}"
  port = {listen}
  local-address-list = ["{addr}"]

[[neighbors]]
  [neighbors.config]
    neighbor-address = "127.0.0.1"
    peer-as = 65000
  [neighbors.transport.config]
    local-address = "{addr}"
    remote-port = {remote}
    passive-mode = {passive}
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 90
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
"""


class GoBGP:
    """A private gobgpd on one 127.0.0.x address (gRPC on the same address), by PID."""

    def __init__(self, net: Net, addr: str, asn: int, *, listen: int = -1, remote: int = 179):
        self.gobgp = need_tool("gobgp")
        self.addr = addr
        self.api = free_port(addr)
        conf = net.dir / f"gobgpd-{addr}.toml"
        passive = "true" if listen > 0 else "false"
        conf.write_text(
            GOBGP.format(asn=asn, addr=addr, listen=listen, remote=remote, passive=passive)
        )
        self.log = net.dir / f"gobgpd-{addr}.log"
        with open(self.log, "wb") as f:
            self.proc = subprocess.Popen(
                [
                    need_tool("gobgpd"),
                    "-f",
                    str(conf),
                    "--api-hosts",
                    f"{addr}:{self.api}",
                    "--pprof-disable",
                    "-p",
                    "-l",
                    "info",
                ],
                stdout=f,
                stderr=subprocess.STDOUT,
            )
        net.procs.append(self.proc)

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [self.gobgp, "-u", self.addr, "-p", str(self.api), *args],
            capture_output=True,
            text=True,
            timeout=20,
        )

    def wait_established(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        out = ""
        while time.monotonic() < deadline:
            out = self.cli("neighbor").stdout
            if "Establ" in out:
                return
            time.sleep(0.3)
        raise AssertionError(
            f"gobgpd {self.addr} not established: {out}\n{self.log.read_text()[-2000:]}"
        )

    def rib(self, family: str = "ipv4") -> list[dict]:
        r = self.cli("-j", "global", "rib", "-a", family)
        doc = json.loads(r.stdout or "{}")
        return [path for paths in doc.values() for path in paths]


@pytest.fixture
def net(tmp_path):
    n = Net(tmp_path)
    yield n
    n.stop()


def router_text(
    net: Net,
    sink_port: int,
    *,
    policy: str = "drop-invalid",
    sink_as: int = 65009,
    extra: str = "",
    rpki: str | None = None,
    rpki_wait: int = 120,
) -> str:
    vrps = net.dir / "vrps.json"
    if not vrps.exists():
        vrps.write_text((DATA / "small_vrps.json").read_text())
    return router_toml(
        port=net.port,
        up=[f'policy = "{policy}"'],
        down_asn=sink_as,
        down_port=sink_port,
        down=['next_hop6 = "2001:db8::1"'],
        extra=extra,
        rpki=[rpki or f'vrps = "{vrps}"'],
        policy=[f"rpki_wait = {rpki_wait}"],
    )


def test_every_attribute_reaches_the_bird_sink_as_a_transparent_router_passes_it(net):
    """AS_SET mid-path kept, transitive extended community passed, the RFC 8097 and
    non-transitive ones not, AGGREGATOR, ATOMIC_AGGREGATE, communities, MED and an unknown
    optional transitive attribute (Partial bit set)."""
    sink = net.bird("sink", "127.0.0.9", 65009)
    net.start_router(router_text(net, sink))
    up = net.upstream()
    assert up.command(f"announce route 11.0.0.0/8 next-hop 127.0.0.2 {RICH}") == "done"
    net.wait_bird({"11.0.0.0/8"})
    d = net.bird_detail("11.0.0.0/8")
    assert "BGP.as_path: 65000 65001 101 47065 {61575} 47065" in d, d
    assert "BGP.origin: Incomplete" in d and "BGP.med: 50" in d
    assert "BGP.community: (65001,7)" in d and "BGP.large_community: (65001, 1, 2)" in d
    assert "BGP.ext_community: (rt, 64500, 100)" in d, d
    assert "0x43" not in d.lower() and "0x4000fde8" not in d.lower()
    assert "BGP.atomic_aggr:" in d and "BGP.aggregator: 192.0.2.1 AS64500" in d, d
    # the unknown attribute, optional transitive ([t]); sent with the Partial bit ExaBGP set
    assert "BGP.f0 [t]: 01 02 03 04" in d, d


def test_rfc8097_only_inside_the_as_and_community_tags_to_ebgp(net):
    ebgp = net.bird("sink", "127.0.0.9", 65009)
    ibgp = net.bird("ibgp", "127.0.0.8", 65000)
    extra = f"""
[[neighbor]]
address = "127.0.0.8"
asn = 65000
role = "downstream"
port = {ibgp}
"""
    tags = (
        'tag_communities = { valid = "65000:100", not-found = "65000:101", invalid = "65000:102" }'
    )
    net.start_router(
        router_text(net, ebgp, policy="tag", extra=extra).replace(
            'policy = "tag"', 'policy = "tag"\n' + tags
        )
    )
    up = net.upstream()
    for prefix, origin in (("198.51.100.0/24", 64499), ("192.0.2.0/24", 64496)):
        cmd = f"announce route {prefix} next-hop 127.0.0.2 as-path [ 65001 {origin} ] "
        assert up.command(cmd + "extended-community [ 0x4300000000000000 ]") == "done"
    both = {"198.51.100.0/24", "192.0.2.0/24"}
    net.wait_bird(both)
    net.wait_bird(both, "ibgp")
    inv_e, val_e = net.bird_detail("198.51.100.0/24"), net.bird_detail("192.0.2.0/24")
    assert "ext_community" not in inv_e + val_e  # no 0x43 to eBGP; the received one stripped
    assert "BGP.community: (65000,102)" in inv_e and "BGP.community: (65000,100)" in val_e
    inv_i = net.bird_detail("198.51.100.0/24", "ibgp")
    val_i = net.bird_detail("192.0.2.0/24", "ibgp")
    # iBGP: the origin validation state (RFC 8097: 0x4300, last octet 2 invalid / 0 valid),
    # the received eBGP one replaced; no prepend, local-pref sent
    assert "BGP.ext_community: (generic, 0x43000000, 0x2)" in inv_i, inv_i
    assert "BGP.ext_community: (generic, 0x43000000, 0x0)" in val_i, val_i
    assert "BGP.as_path: 65001 64499" in inv_i and "BGP.local_pref: 100" in inv_i
    assert "community: (65000" not in inv_i


def test_gobgp_feeder_as_set_mid_path_and_extended_community_reach_bird(net):
    """The issue's real case: GoBGP announces the PCH route 184.164.252.0/24 with path
    101 47065 {61575} 47065, rt 64500:100, a community, a large community and MED 50."""
    sink = net.bird("sink", "127.0.0.9", 65009)
    extra = '\n[[neighbor]]\naddress = "127.0.0.4"\nasn = 65004\nrole = "upstream"\n'
    net.start_router(router_text(net, sink, extra=extra))
    g = GoBGP(net, "127.0.0.4", 65004, remote=net.port)
    g.wait_established()
    r = g.cli(
        *("global", "rib", "add", "-a", "ipv4", "184.164.252.0/24", "nexthop", "127.0.0.4"),
        *("aspath", "101 47065 {61575} 47065", "rt", "64500:100", "community", "65004:1"),
        *("large-community", "65004:1:1", "med", "50"),
    )
    assert r.returncode == 0, r.stderr
    net.wait_bird({"184.164.252.0/24"})
    d = net.bird_detail("184.164.252.0/24")
    assert "BGP.as_path: 65000 65004 101 47065 {61575} 47065" in d, d
    assert "BGP.ext_community: (rt, 64500, 100)" in d and "BGP.med: 50" in d
    assert "BGP.community: (65004,1)" in d and "BGP.large_community: (65004, 1, 1)" in d


def test_next_hop_per_neighbor_accepted_by_gobgp(net):
    """GoBGP refuses an IPv4 loopback next hop ('invalid nexthop address'), which is what
    'self' is on a loopback lab: a configured address, or the received next hop as a route
    server keeps it, is accepted."""
    sink = net.bird("sink", "127.0.0.9", 65009)
    ports = {a: free_port(a) for a in ("127.0.0.7", "127.0.0.8")}
    extra = ""
    for addr, asn, nh in (("127.0.0.7", 65007, "keep"), ("127.0.0.8", 65008, "192.0.2.254")):
        extra += (
            f'\n[[neighbor]]\naddress = "{addr}"\nasn = {asn}\nrole = "downstream"\n'
            f'port = {ports[addr]}\nnext_hop = "{nh}"\n'
        )
    keep = GoBGP(net, "127.0.0.7", 65007, listen=ports["127.0.0.7"])
    fixed = GoBGP(net, "127.0.0.8", 65008, listen=ports["127.0.0.8"])
    net.start_router(router_text(net, sink, extra=extra))
    keep.wait_established()
    fixed.wait_established()
    up = net.upstream()
    for cmd in (
        "announce route 11.0.0.0/8 next-hop 198.18.0.2 as-path [ 65001 65005 ]",
        "announce route 2001:db9::/32 next-hop 2001:db8::2 as-path [ 65001 65005 ]",
    ):
        assert up.command(cmd) == "done"
    net.wait_bird({"11.0.0.0/8", "2001:db9::/32"})

    def next_hops(g: GoBGP) -> dict[str, str]:
        deadline = time.monotonic() + 20
        got: dict[str, str] = {}
        while time.monotonic() < deadline and len(got) < 2:
            got = {}
            for fam in ("ipv4", "ipv6"):
                for path in g.rib(fam):
                    attrs = {a["type"]: a for a in path["attrs"]}
                    nh = attrs.get(3, {}).get("nexthop") or attrs.get(14, {}).get("nexthop")
                    got[path["nlri"]["prefix"]] = nh
            time.sleep(0.3)
        return got

    assert next_hops(keep) == {"11.0.0.0/8": "198.18.0.2", "2001:db9::/32": "2001:db8::2"}
    assert next_hops(fixed)["11.0.0.0/8"] == "192.0.2.254"
    assert "invalid nexthop" not in keep.log.read_text() + fixed.log.read_text()


HOLD_ROUTES = [  # prefix, origin: valid, invalid, not-found against small_vrps.json
    ("192.0.2.0/24", 64496),
    ("198.51.100.0/24", 64499),
    ("11.0.0.0/8", 65005),
]


def bird_import_updates(net: Net, name: str = "sink") -> int:
    """BIRD's count of IPv4 routes received on the session (announcements, since start)."""
    out = net.birdc_out(name, "show", "protocols", "all", "up")
    for line in out.splitlines():
        if "Import updates:" in line:
            return int(line.split()[2])
    raise AssertionError(out)


def announce_hold_routes(net: Net) -> None:
    up = net.upstream()
    for prefix, origin in HOLD_ROUTES:
        cmd = f"announce route {prefix} next-hop 127.0.0.2 as-path [ 65001 {origin} ]"
        assert up.command(cmd) == "done"


def test_routes_wait_for_a_cache_that_answers_late(net):
    """No route leaves before the first RPKI sync: the cache starts 5 s after the feeder's
    routes arrived; then only the valid and not-found ones reach the sink, and it never saw the
    invalid one (its import counter says exactly 2 announcements)."""
    sink = net.bird("sink", "127.0.0.9", 65009)
    cache = StayRTR(DATA / "small_vrps.json", net.dir)
    net.start_router(router_text(net, sink, rpki=f'cache = "127.0.0.1:{cache.port}"'))
    announce_hold_routes(net)
    deadline = time.monotonic() + 20
    routes: list[dict] = []
    while time.monotonic() < deadline and len(routes) < 3:
        routes = net.state()["routes"]
        time.sleep(0.3)
    assert {r["action"] for r in routes} == {"waiting for RPKI"}
    assert [n["rpki_hold"] for n in net.state()["neighbors"]] == [True, True]
    time.sleep(5)
    assert net.bird_routes() == set()
    try:
        cache.start()
        net.wait_bird({"192.0.2.0/24", "11.0.0.0/8"})
        time.sleep(1)
        assert bird_import_updates(net) == 2
        (ready,) = net.wait_event("rpki_ready")
        assert ready["level"] == "info" and ready["released"] == 3
        held = [e for e in net.events("route") if e["action"] == "waiting for RPKI"]
        assert len(held) == 3
    finally:
        cache.stop()


def test_hold_ends_after_rpki_wait_with_a_warning(net):
    """No cache ever answers: after rpki_wait the configured behaviour applies (without VRPs
    every route is not-found and advertised), said loudly."""
    sink = net.bird("sink", "127.0.0.9", 65009)
    dead = free_port()
    net.start_router(router_text(net, sink, rpki=f'cache = "127.0.0.1:{dead}"', rpki_wait=4))
    announce_hold_routes(net)
    (ready,) = net.wait_event("rpki_ready", timeout=20)
    assert ready["level"] == "warning" and "not synced after 4 s" in ready["message"]
    net.wait_bird({p for p, _ in HOLD_ROUTES})


def bird_since(net: Net, name: str = "sink") -> str:
    """When BIRD's session 'up' last changed state (it changes on any session reset)."""
    for line in net.birdc_out(name, "show", "protocols").splitlines():
        tok = line.split()
        if tok and tok[0] == "up":
            assert tok[-1] == "Established", line
            return tok[-2]
    raise AssertionError("no protocol 'up' in BIRD")


def reload(net: Net, text: str, n: int) -> dict:
    net.toml.write_text(text)
    assert net.router is not None
    os.kill(net.router.pid, signal.SIGHUP)
    return net.wait_event("reload", n=n)[-1]


def test_sighup_reloads_the_configuration_without_dropping_unaffected_sessions(net):
    sink = net.bird("sink", "127.0.0.9", 65009)
    text = router_text(net, sink)
    net.start_router(text)
    announce_hold_routes(net)
    up2 = net.speakers[0]
    net.wait_bird({"192.0.2.0/24", "11.0.0.0/8"})
    since = bird_since(net)
    time.sleep(1.1)  # BIRD's 'since' has a one-second resolution in 'show protocols'

    # 1. the upstream's policy changes and a neighbor is added: the invalid route is now
    #    announced, the new neighbor's route arrives, no session is reset
    text2 = text.replace('policy = "drop-invalid"', 'policy = "accept-all"') + (
        '\n[[neighbor]]\naddress = "127.0.0.3"\nasn = 65003\nrole = "upstream"\n'
    )
    ev = reload(net, text2, 1)
    assert ev["ok"] and ev["changed"] == ["127.0.0.2"] and ev["added"] == ["127.0.0.3"], ev
    up3 = net.upstream("127.0.0.3", 65003)
    cmd = "announce route 20.33.0.0/16 next-hop 127.0.0.3 as-path [ 65003 65033 ]"
    assert up3.command(cmd) == "done"
    net.wait_bird({"192.0.2.0/24", "198.51.100.0/24", "11.0.0.0/8", "20.33.0.0/16"})

    # 2. a file with an error is refused; the running configuration stays
    ev = reload(net, text2.replace('role = "upstream"', 'role = "upstrem"', 1), 2)
    assert not ev["ok"] and f"{net.toml}:" in ev["message"] and "neighbor[0].role" in ev["message"]
    assert "running one is kept" in ev["message"]
    ev = reload(net, text2.replace("asn = 65000", "asn = 65100", 1), 3)
    assert not ev["ok"] and "asn changed" in ev["message"] and "restart" in ev["message"]

    # 3. the first upstream removed (its routes withdrawn) and the RPKI source replaced by one
    #    where 20.33.0.0/16 belongs to another AS (the route becomes invalid, is withdrawn)
    doc = json.loads((DATA / "small_vrps.json").read_text())
    doc["roas"].append({"prefix": "20.33.0.0/16", "maxLength": 16, "asn": 64511, "ta": "t"})
    vrps2 = net.dir / "vrps2.json"
    vrps2.write_text(json.dumps(doc))
    text3 = text2.replace(
        '[[neighbor]]\naddress = "127.0.0.2"\nasn = 65001\nrole = "upstream"\n'
        'policy = "accept-all"\n',
        "",
    ).replace(str(net.dir / "vrps.json"), str(vrps2))
    assert "127.0.0.2" not in text3 and "vrps2.json" in text3
    ev = reload(net, text3, 4)
    assert ev["ok"] and ev["removed"] == ["127.0.0.2"], ev
    assert ev["rpki_removed"] == ["vrps.json"] and ev["rpki_added"] == ["vrps2.json"]
    net.wait_bird(set())
    st = net.state()
    (r,) = st["routes"]
    assert (r["prefix"], r["state"], r["accepted"]) == ("20.33.0.0/16", "invalid", False)
    assert [s["name"] for s in st["rpki"]] == ["vrps2.json"]

    # the sink's session and the kept upstream's were never reset
    assert bird_since(net) == since
    assert [m["neighbor"]["state"] for m in up3.messages("state")][-1] == "up"
    assert "down" not in [m["neighbor"]["state"] for m in up3.messages("state")][1:]
    assert up2.messages("state")[-1]["neighbor"]["state"] == "down"  # removed: closed
    assert [e for e in net.events("neighbor") if e["neighbor"] == "127.0.0.9"][-1]["state"] == "up"


def test_exabgp_from_the_same_environment_not_from_path(net):
    """An unrelated 'exabgp' first in PATH is not run; the ExaBGP installed with rov-router is,
    and its version is printed at start."""
    fake = net.dir / "bin"
    fake.mkdir()
    marker = net.dir / "wrong-exabgp-ran"
    (fake / "exabgp").write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    (fake / "exabgp").chmod(0o755)
    sink = net.bird("sink", "127.0.0.9", 65009)
    net.start_router(router_text(net, sink), env={"PATH": f"{fake}:{os.environ.get('PATH', '')}"})
    (start,) = net.wait_event("start")
    assert start["exabgp_version"] == importlib.metadata.version("exabgp")
    assert f"ExaBGP {start['exabgp_version']} ({sys.executable} -m exabgp)" in start["message"]
    up = net.upstream()
    assert up.command("announce route 11.0.0.0/8 next-hop 127.0.0.2 as-path [ 65001 65005 ]")
    net.wait_bird({"11.0.0.0/8"})
    assert not marker.exists()
