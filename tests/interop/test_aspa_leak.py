"""A route leak over real BGP sessions: a customer re-announces its other provider's route to
us.  Origin validation says valid for both copies; ASPA (served by the embedded cache at RTR
v2) marks the customer's copy invalid and the router drops it, keeping the provider's."""

from __future__ import annotations

import json

import pytest

from tests.support.lab import LEAK_ROUTER as ROUTER
from tests.support.lab import LEAK_VRPS as VRPS
from tests.support.lab import Lab

pytestmark = pytest.mark.interop


@pytest.fixture
def leak_lab(tmp_path):
    lab = Lab(tmp_path, router=ROUTER, vrps_text=json.dumps(VRPS))
    yield lab
    lab.stop()


def test_route_leak_dropped_by_aspa_while_rov_says_valid(leak_lab):
    lab = leak_lab
    customer = lab.start_upstream("127.0.0.2", 64501)
    provider = lab.start_upstream("127.0.0.3", 64502)
    # the leak: the customer passes on what it learned from its provider 64502
    assert (
        customer.command(
            "announce route 203.0.113.0/24 next-hop 127.0.0.2 as-path [ 64501 64502 64503 ]"
        )
        == "done"
    )
    # the legitimate path, from our provider
    assert (
        provider.command("announce route 203.0.113.0/24 next-hop 127.0.0.3 as-path [ 64502 64503 ]")
        == "done"
    )
    lab.wait_bird({"203.0.113.0/24"})
    st = lab.state()
    routes = {r["neighbor"]: r for r in st["routes"]}
    leak, legit = routes["127.0.0.2"], routes["127.0.0.3"]
    # origin validation alone accepts both copies
    assert leak["state"] == legit["state"] == "valid"
    assert leak["aspa"] == "invalid" and not leak["accepted"] and leak["action"] == "drop (leak)"
    assert leak["aspa_reason"].startswith(
        "AS64502 -> AS64501 is not an attested provider hop (AS64502's ASPA lists providers AS64510)"
    )
    assert "route leaked by AS64501" in leak["aspa_reason"]
    assert legit["aspa"] == "valid" and legit["accepted"] and legit["best"]
    (rpki,) = st["rpki"]
    assert rpki["version"] == 2 and rpki["aspas"] == 3
    # downstream got the provider's path, not the leak
    out = lab.bird_route_detail("203.0.113.0/24")
    assert "BGP.as_path: 65000 64502 64503" in out

    # the provider withdraws: the leaked copy must still not be used
    assert provider.command("withdraw route 203.0.113.0/24") == "done"
    lab.wait_bird(set())

    # 64502 now attests 64501 as one of its providers (they signed a transit contract): the
    # path is valley-free, the route becomes ASPA-valid and goes downstream, no session reset
    doc = json.loads(lab.vrps.read_text())
    doc["aspas"][2]["providers"] = [64501, 64510]
    lab.vrps.write_text(json.dumps(doc))
    lab.wait_bird({"203.0.113.0/24"})
    routes = {r["neighbor"]: r for r in lab.state()["routes"]}
    assert routes["127.0.0.2"]["aspa"] == "valid" and routes["127.0.0.2"]["accepted"]
