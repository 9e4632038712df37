"""``rov-router analyze --router``: a running router's table (real ExaBGP session, real BIRD 2
downstream) analysed over the control socket, with a what-if that says which routes the router
would drop or re-admit — and the router itself left unchanged."""

from __future__ import annotations

import json
import time

import pytest

from tests.support.env import run_cli
from tests.support.lab import ROUTER, Lab

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

        # now really make the first change: the router does what the what-if predicted
        doc = json.loads(lab.vrps.read_text())
        doc["roas"] = [r for r in doc["roas"] if r["prefix"] != "192.0.2.0/24"]
        doc["roas"].append({"prefix": "198.51.100.0/24", "maxLength": 24, "asn": 64499})
        lab.vrps.write_text(json.dumps(doc))
        lab.wait_bird(full | {"198.51.100.0/24"})
        r = run_cli("show", "routes", "--socket", str(sock), "--json")
        now = {x["prefix"]: (x["state"], x["accepted"]) for x in json.loads(r.stdout)["routes"]}
        assert now["198.51.100.0/24"] == ("valid", True)
        assert now["192.0.2.0/24"] == ("not-found", True)
    finally:
        lab.stop()


def test_analyze_router_aspa_what_if_predicts_the_router(tmp_path):
    """A route leak dropped by ASPA: --aspa-set says the router would re-admit it once the
    provider attests the customer; then the real change does exactly that."""
    from tests.support.lab import LEAK_ROUTER
    from tests.support.lab import LEAK_VRPS as VRPS

    sock = tmp_path / "ctl.sock"
    lab = Lab(
        tmp_path,
        router=LEAK_ROUTER + f'\n[control]\nsocket = "{sock}"\n',
        vrps_text=json.dumps(VRPS),
    )
    try:
        customer = lab.start_upstream("127.0.0.2", 64501)
        leak = "announce route 203.0.113.0/24 next-hop 127.0.0.2 as-path [ 64501 64502 64503 ]"
        assert customer.command(leak) == "done"
        deadline = time.monotonic() + 30  # wait until the router holds (and drops) the leak
        while not json.loads(run_cli("show", "routes", "--socket", str(sock), "--json").stdout)[
            "routes"
        ]:
            assert time.monotonic() < deadline, "the leaked route never arrived"
            time.sleep(0.2)
        lab.wait_bird(set())
        r = run_cli(
            "analyze", "--router", "--socket", str(sock), "--vrps", str(lab.vrps), "--json",
            "--aspa-set", "64502:64501,64510", timeout=60,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        counts = doc["aspa"]["assumptions"]
        assert counts["neighbor's configured role"] == {"invalid": 1}
        wi = doc["what_if"]
        assert wi["routes"] == []  # ROV does not change
        actual = [a for a in wi["aspa_changes"] if a["assumption"] == "neighbor's configured role"]
        assert [(a["prefix"], a["peer"], a["before"], a["after"], a["router"]) for a in actual] == [
            ("203.0.113.0/24", "127.0.0.2", "invalid", "valid", "re-admitted")
        ]
        assert wi["router"] == {"dropped": 0, "re-admitted": 1}
        # the real change: the router re-admits the route and sends it downstream
        vdoc = json.loads(lab.vrps.read_text())
        vdoc["aspas"][2]["providers"] = [64501, 64510]
        lab.vrps.write_text(json.dumps(vdoc))
        lab.wait_bird({"203.0.113.0/24"})
        r = run_cli("show", "route", "203.0.113.0/24", "--socket", str(sock), "--json")
        (route,) = json.loads(r.stdout)["routes"]
        assert route["aspa"] == "valid" and route["accepted"]
    finally:
        lab.stop()


def test_analyze_router_without_a_router_says_so(tmp_path):
    vrps = tmp_path / "v.json"
    vrps.write_text('{"roas": []}')
    r = run_cli("analyze", "--router", "--socket", str(tmp_path / "none.sock"), "--vrps", str(vrps))
    assert r.returncode == 2 and "no router answers on" in r.stderr
    assert "Traceback" not in r.stderr
