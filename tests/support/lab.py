"""The interop lab: rov-router (managed ExaBGP, a VRP file) between an ExaBGP upstream speaker
and a downstream BIRD 2, on 127.0.0.x; every process started and stopped by PID."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from rov_router.bgp.control import Speaker
from rov_router.bgp.speaker import PeerSpec
from rov_router.procs import free_port, stop_child
from tests.support.env import DATA, need_tool
from tests.support.router_toml import router_toml

ROUTES = [  # prefix, next hop, path; verdict against small_vrps.json
    ("192.0.2.0/24", "127.0.0.2", "65001 64496"),  # valid
    ("198.51.100.0/24", "127.0.0.2", "65001 64499"),  # invalid: wrong origin (VRP AS64497)
    ("203.0.113.0/27", "127.0.0.2", "65001 64498"),  # invalid: longer than maxLength 26
    ("11.0.0.0/8", "127.0.0.2", "65001 65005"),  # not-found
    ("2001:db8:abcd::/48", "2001:db8::2", "65001 64496"),  # valid
    ("2001:db8:abcd::/49", "2001:db8::2", "65001 64496"),  # invalid: too long
    ("2001:db9::/32", "2001:db8::2", "65001 65005"),  # not-found
]

BIRD_DOWN = """
log "{dir}/bird.log" all;
router id 127.0.0.9;
protocol device {{ }}
ipv4 table t4;
ipv6 table t6;
protocol bgp up {{
  local 127.0.0.9 port {port} as 65009;
  neighbor 127.0.0.1 as 65000;
  passive on; strict bind on; multihop; hold time 240;
  ipv4 {{ table t4; import all; export none; }};
  ipv6 {{ table t6; import all; export none; }};
}}
"""

#: the router of the lab (a str.format template: port, down_port, vrps, hold)
ROUTER = router_toml(
    port="{port}",
    up=["hold_time = {hold}"],
    down_port="{down_port}",
    down=['next_hop6 = "2001:db8::1"'],
    rpki=['vrps = "{vrps}"'],
)


def read_state(pid: int, state_file: Path) -> dict:
    """Ask a running ``rov-router run`` (SIGUSR1) for its state file and read the new one."""
    before = state_file.stat().st_mtime_ns if state_file.exists() else 0
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if state_file.exists() and state_file.stat().st_mtime_ns != before:
            return json.loads(state_file.read_text())
        time.sleep(0.05)
    raise AssertionError("no state file")


class Lab:
    def __init__(
        self,
        tmp: Path,
        *,
        hold: int = 90,
        env: dict | None = None,
        start_router: bool = True,
        router: str = ROUTER,
        vrps_text: str | None = None,
        stall_first_update: float = 0.0,
    ) -> None:
        need_tool("bird")
        self.birdc_bin = need_tool("birdc")
        self.dir = tmp
        self.port = free_port()
        self.down_port = free_port("127.0.0.9")
        self.vrps = tmp / "vrps.json"
        self.vrps.write_text(vrps_text or (DATA / "small_vrps.json").read_text())
        (tmp / "bird.conf").write_text(BIRD_DOWN.format(dir=tmp, port=self.down_port))
        (tmp / "router.toml").write_text(
            router.format(port=self.port, down_port=self.down_port, vrps=self.vrps, hold=hold)
        )
        self.state_file = tmp / "state.json"
        self.out = tmp / "router.out"
        self.procs: list[subprocess.Popen] = []
        self.speaker: Speaker | None = None
        self.speakers: list[Speaker] = []
        self.bird = self._spawn(
            [
                "bird",
                "-f",
                "-c",
                str(tmp / "bird.conf"),
                "-s",
                str(tmp / "bird.ctl"),
                "-P",
                str(tmp / "bird.pid"),
            ]
        )
        if not start_router:
            self.router = None
            self.hold = hold
            return
        with open(self.out, "wb") as f:
            self.router = self._spawn(
                [
                    sys.executable,
                    *(
                        [str(Path(__file__).with_name("stall.py")), str(stall_first_update)]
                        if stall_first_update
                        else ["-m", "rov_router.cli"]
                    ),
                    "run",
                    "--config",
                    str(tmp / "router.toml"),
                    "--json",
                    "--state-file",
                    str(self.state_file),
                ],
                stdout=f,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
            )
        self.hold = hold

    def _spawn(self, argv, **kw) -> subprocess.Popen:
        p = subprocess.Popen(argv, **kw)
        self.procs.append(p)
        return p

    def start_upstream(self, address: str = "127.0.0.2", asn: int = 65001) -> Speaker:
        self.speaker = Speaker(
            f"up-{address}",
            [
                PeerSpec(
                    "127.0.0.1",
                    65000,
                    asn,
                    address,
                    address,
                    passive=False,
                    connect=self.port,
                    hold_time=self.hold,
                )
            ],
            self.dir,
        ).start()
        self.speakers.append(self.speaker)
        self.speaker.wait_state("127.0.0.1", "up", 60)
        return self.speaker

    def announce_all(self) -> None:
        assert self.speaker is not None
        for prefix, nh, path in ROUTES:
            cmd = f"announce route {prefix} next-hop {nh} as-path [ {path} ]"
            assert self.speaker.command(cmd) == "done", cmd

    def bird_routes(self) -> set[str]:
        out: set[str] = set()
        for table in ("t4", "t6"):
            r = subprocess.run(
                [self.birdc_bin, "-s", str(self.dir / "bird.ctl"), "show", "route", "table", table],
                capture_output=True,
                text=True,
                timeout=20,
            )
            for line in r.stdout.splitlines():
                tok = line.split()
                if tok and "/" in tok[0]:
                    out.add(tok[0])
        return out

    def bird_route_detail(self, prefix: str) -> str:
        table = "t6" if ":" in prefix else "t4"
        r = subprocess.run(
            [
                self.birdc_bin,
                "-s",
                str(self.dir / "bird.ctl"),
                "show",
                "route",
                "table",
                table,
                prefix,
                "all",
            ],
            capture_output=True,
            text=True,
            timeout=20,
        )
        return r.stdout

    def wait_bird(self, expected: set[str], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        got: set[str] = set()
        while time.monotonic() < deadline:
            got = self.bird_routes()
            if got == expected:
                return
            time.sleep(0.2)
        raise AssertionError(
            f"BIRD has {sorted(got)}, expected {sorted(expected)}\n" + self.out.read_text()[-3000:]
        )

    def state(self) -> dict:
        return read_state(self.router.pid, self.state_file)

    def events(self) -> list[dict]:
        return [json.loads(x) for x in self.out.read_text().splitlines() if x.startswith("{")]

    def stop(self) -> None:
        for sp in self.speakers:
            sp.stop()
        for p in reversed(self.procs):
            stop_child(p)


#: a customer, a provider and a downstream, for the ASPA route-leak lab
LEAK_ROUTER = """
[router]
asn = 65000
router_id = "127.0.0.1"
listen = "127.0.0.1"
port = {port}

[[neighbor]]
address = "127.0.0.2"
asn = 64501
role = "customer"
hold_time = {hold}

[[neighbor]]
address = "127.0.0.3"
asn = 64502
role = "provider"

[[neighbor]]
address = "127.0.0.9"
asn = 65009
role = "downstream"
port = {down_port}

[[rpki]]
vrps = "{vrps}"
"""

LEAK_VRPS = {
    "roas": [{"prefix": "203.0.113.0/24", "maxLength": 24, "asn": 64503}],
    "aspas": [
        {"customer_asid": 64503, "providers": [64502]},  # the origin buys transit from 64502
        {"customer_asid": 64501, "providers": [64502, 65000]},  # our customer: 64502 and us
        {"customer_asid": 64502, "providers": [64510]},  # 64502's own upstream
    ],
}
