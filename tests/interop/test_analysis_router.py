"""``rov-router analyze --router``: a running router's table (real ExaBGP session, real BIRD 2
downstream) analysed over the control socket, with a what-if that says which routes the router
would drop or re-admit — and the router itself left unchanged."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli
from tests.interop.test_router import ROUTER, Lab

pytestmark = pytest.mark.interop


def test_analyze_running_router_what_if_leaves_it_unchanged(tmp_path):
    sock = tmp_path / "ctl.sock"
    lab = Lab(tmp_path, router=ROUTER + f'\n[control]\nsocket = "{sock}"\n')
    try:
        lab.start_upstream()
        lab.announce_all()
        full = {"192.0.2.0/24", "11.0.0.0/8", "2001:db8:abcd::/48", "2001:db9::/32"}
        lab.wait_bird(full)
        r = run_cli(
            "analyze", "--router", "--socket", str(sock), "--vrps", str(lab.vrps), "--json",
            "--add-roa", "198.51.100.0/24 AS64499", "--remove-roa", "192.0.2.0/24 AS64496",
            timeout=60,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert "another state in the router" not in r.stderr  # same VRPs as the router's
        doc = json.loads(r.stdout)
        assert doc["table"]["kind"] == "router" and doc["table"]["routes"] == 7
        assert doc["states"] == {"valid": 2, "invalid": 3, "not-found": 2}
        assert doc["invalid_categories"] == {
            "invalid-as": 1,
            "invalid-length": 2,
            "invalid-as-length": 0,
        }
        inv = {x["prefix"]: x for x in doc["invalid_routes"]}
        assert inv["198.51.100.0/24"]["peer"] == "127.0.0.2"
        assert inv["198.51.100.0/24"]["path"] == "65001 64499"
        assert inv["2001:db8:abcd::/49"]["cover"]["prefix"] == "2001:db8:abcd::/48"
        assert inv["198.51.100.0/24"]["cover"] is None  # dropping it blackholes the space
        wi = doc["what_if"]
        got = {(c["prefix"], c["before"], c["after"], c.get("router")) for c in wi["routes"]}
        assert got == {
            ("198.51.100.0/24", "invalid-as", "valid", "re-admitted"),
            ("192.0.2.0/24", "valid", "not-found", None),  # drop-invalid keeps not-found
        }
        assert wi["router"] == {"dropped": 0, "re-admitted": 1}
        # the router was only read
        r = run_cli("show", "routes", "--invalid", "--socket", str(sock), "--json")
        assert {x["prefix"] for x in json.loads(r.stdout)["routes"]} == {
            "198.51.100.0/24",
            "203.0.113.0/27",
            "2001:db8:abcd::/49",
        }
        lab.wait_bird(full)
        # a what-if that makes a route invalid: the router would drop it
        r = run_cli(
            "analyze", "--router", "--socket", str(sock), "--vrps", str(lab.vrps), "--json",
            "--add-roa", "11.0.0.0/8 AS64999", timeout=60,
        )  # fmt: skip
        wi = json.loads(r.stdout)["what_if"]
        (c,) = wi["routes"]
        assert (c["prefix"], c["before"], c["after"], c["router"]) == (
            "11.0.0.0/8",
            "not-found",
            "invalid-as",
            "dropped",
        )
        assert c["cover_after"] is None
        assert "VRP 11.0.0.0/8-8 AS64999 covers it; origin AS65005" in c["reason_after"]
    finally:
        lab.stop()


def test_analyze_router_without_a_router_says_so(tmp_path):
    vrps = tmp_path / "v.json"
    vrps.write_text('{"roas": []}')
    r = run_cli("analyze", "--router", "--socket", str(tmp_path / "none.sock"), "--vrps", str(vrps))
    assert r.returncode == 2 and "no router answers on" in r.stderr
    assert "Traceback" not in r.stderr
