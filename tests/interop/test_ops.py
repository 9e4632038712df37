"""Operations on a running router: the control socket with `rov-router show`, and Prometheus
/metrics, checked for the right numbers."""

from __future__ import annotations

import json
import re
import time
import urllib.request

import pytest

from rov_router.procs import free_port
from tests.support.env import run_cli
from tests.support.lab import ROUTER, Lab

pytestmark = pytest.mark.interop


def show(sock, *args) -> dict:
    r = run_cli("show", *args, "--socket", str(sock), "--json", timeout=30)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_show_commands_and_metrics(tmp_path):
    mport = free_port()
    sock = tmp_path / "ctl.sock"
    router = ROUTER + f'\n[control]\nsocket = "{sock}"\n\n[metrics]\nlisten = "127.0.0.1:{mport}"\n'
    lab = Lab(tmp_path, router=router)
    try:
        lab.start_upstream()
        lab.announce_all()
        lab.wait_bird({"192.0.2.0/24", "11.0.0.0/8", "2001:db8:abcd::/48", "2001:db9::/32"})
        (rtr,) = show(sock, "rtr")["rpki"]
        assert rtr["state"] == "established" and rtr["vrps"] == 37 and rtr["aspas"] == 3
        assert (rtr["vrps_v4"], rtr["vrps_v6"], rtr["version"]) == (21, 16, 2)
        nbs = {n["address"]: n for n in show(sock, "neighbors")["neighbors"]}
        assert (nbs["127.0.0.2"]["received"], nbs["127.0.0.2"]["dropped"]) == (7, 3)
        assert nbs["127.0.0.9"]["advertised"] == 4 and nbs["127.0.0.9"]["state"] == "up"
        inv = show(sock, "routes", "--invalid")
        assert {r["prefix"] for r in inv["routes"]} == {
            "198.51.100.0/24",
            "203.0.113.0/27",
            "2001:db8:abcd::/49",
        }
        assert all(not r["accepted"] for r in inv["routes"])
        (route,) = show(sock, "route", "198.51.100.0/24")["routes"]
        assert (
            route["reason"]
            == "VRP 198.51.100.0/24-24 AS64497 covers it; origin AS64499 does not match"
        )
        vr = show(sock, "vrps", "10.0.0.0/8")
        assert [v["vrp"] for v in vr["covering"]] == ["10.0.0.0/8-16 AS64500"]
        assert [v["vrp"] for v in vr["covered"]] == [
            "10.0.0.0/8-16 AS64500",
            "10.1.0.0/16-24 AS64501",
        ]
        text = run_cli("show", "routes", "--socket", str(sock)).stdout
        assert "198.51.100.0/24" in text and "origin AS64499 does not match" in text

        body = (
            urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=10).read().decode()
        )
        metrics = {}
        for line in body.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                metrics[name] = float(value)
        src = rtr["name"]
        assert metrics[f'rpki_vrps{{ip_version="4",source="{src}"}}'] == 21
        assert metrics[f'rpki_vrps{{ip_version="6",source="{src}"}}'] == 16
        assert metrics[f'rtr_state{{cache="{rtr["cache"]}",source="{src}"}}'] == 1
        assert metrics[f'rtr_serial{{source="{src}"}}'] == 0
        assert metrics['bgp_routes_received{neighbor="127.0.0.2"}'] == 7
        assert metrics['bgp_routes{neighbor="127.0.0.2",status="dropped",verdict="any"}'] == 3
        assert metrics['bgp_routes{neighbor="127.0.0.2",status="all",verdict="invalid"}'] == 3
        assert metrics['bgp_neighbor_up{asn="65009",neighbor="127.0.0.9",role="downstream"}'] == 1
        assert metrics["rov_revalidations_total"] >= 1
    finally:
        lab.stop()


def test_show_without_a_router_says_so(tmp_path):
    r = run_cli("show", "rtr", "--socket", str(tmp_path / "none.sock"), timeout=30)
    assert r.returncode == 2 and "no router answers on" in r.stderr


def test_show_text_since_last_error_all_vrps_and_unknown_neighbor(tmp_path):
    sock = tmp_path / "ctl.sock"
    lab = Lab(tmp_path, router=ROUTER + f'\n[control]\nsocket = "{sock}"\n')
    try:
        sp = lab.start_upstream()
        lab.announce_all()
        lab.wait_bird({"192.0.2.0/24", "11.0.0.0/8", "2001:db8:abcd::/48", "2001:db9::/32"})

        def text(*args: str):
            return run_cli("show", *args, "--socket", str(sock), timeout=30)

        nb = text("neighbors").stdout
        assert re.search(r"127\.0\.0\.2 .* up +since \d\d:\d\d:\d\d \(\d+ s ago\)", nb), nb
        # every VRP, one page at a time, and one AS's
        page = text("vrps", "--limit", "10").stdout.splitlines()
        assert len(page) == 11 and page[-1] == "... VRPs 1-10 of 37 (next page: --offset 10)"
        last = text("vrps", "--limit", "10", "--offset", "30").stdout.splitlines()
        assert len(last) == 8 and last[-1] == "... VRPs 31-37 of 37"
        assert not set(page[:10]) & set(last[:7])
        mine = text("vrps", "--asn", "AS64500").stdout.splitlines()
        assert mine and all(line.endswith(" AS64500") for line in mine), mine
        # no match says so; an unknown neighbor is an error (exit 1)
        none = text("routes", "--not-found", "--neighbor", "127.0.0.9")
        assert none.returncode == 0 and none.stdout.strip() == "no not-found routes from 127.0.0.9"
        bad = text("routes", "--neighbor", "127.0.0.99")
        assert bad.returncode == 1
        assert "no neighbor 127.0.0.99 (neighbors: 127.0.0.2, 127.0.0.9)" in bad.stderr
        # the neighbor goes away: its state, since when, and the last error in words
        sp.stop()
        deadline = time.monotonic() + 30
        while "last error:" not in (nb := text("neighbors").stdout):
            assert time.monotonic() < deadline, nb
            time.sleep(0.3)
        (err,) = [x for x in nb.splitlines() if "last error:" in x]
        assert "(" not in err or re.search(r"[A-Za-z] \(\d/\d+\)", err), err
        assert not re.search(r"\(\d+,\d+\)", nb), nb
    finally:
        lab.stop()
