"""`rov-router replay FILE.mrt` announces real MRT updates through a BGP session into a running
router (here: the YouTube 2008 records of RouteViews peer AS3277)."""

from __future__ import annotations

import json
import re

import pytest

from tests.support.env import REPO, run_cli
from tests.support.lab import Lab

pytestmark = pytest.mark.interop

ROUTER = """
[router]
asn = 65000
router_id = "127.0.0.1"
listen = "127.0.0.1"
port = {port}

[[neighbor]]
address = "127.0.0.2"
asn = 3277
role = "peer"
hold_time = {hold}

[[neighbor]]
address = "127.0.0.9"
asn = 65009
role = "downstream"
port = {down_port}

[[rpki]]
vrps = "{vrps}"
"""

VRPS = {"roas": [{"prefix": "208.65.152.0/22", "maxLength": 22, "asn": 36561}]}


def test_replay_mrt_into_a_running_router(tmp_path, monkeypatch):
    monkeypatch.setenv("ROV_ROUTER_PROGRESS_INTERVAL", "0")  # every progress step, on stderr
    lab = Lab(tmp_path, router=ROUTER, vrps_text=json.dumps(VRPS))
    try:
        mrt = REPO / "topologies" / "data" / "youtube-pakistan-2008-as3277.mrt.gz"
        r = run_cli(
            "-v",
            "replay",
            str(mrt),
            "--router",
            f"127.0.0.1:{lab.port}",
            "--local-address",
            "127.0.0.2",
            "--speed",
            "0",
            "--hold",
            "1",
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        assert (
            "2008-02-24 18:48:50 announce 208.65.153.0/24 path 3277 3216 3549 3491 17557"
            in r.stdout
        )
        assert "replayed 8 announcements / withdrawals from 5 MRT updates as AS3277" in r.stdout
        # prefixes sharing the AS path went out together: fewer commands than prefixes
        commands = int(re.search(r"in (\d+) ExaBGP commands", r.stdout)[1])
        assert commands < 8, r.stdout
        # progress on stderr (not a terminal: plain lines): the file's bytes, then the prefixes
        # sent of the total, with the rate; never on stdout
        name = mrt.name
        size = mrt.stat().st_size / 1e3  # a small file: in kB
        assert f"replay {name}: reading 0.0/{size:,.1f} kB" in r.stderr, r.stderr
        assert f"replay {name}: reading {size:,.1f}/{size:,.1f} kB" in r.stderr, r.stderr
        sending = re.findall(
            rf"replay {re.escape(name)}: sending (\d+)/8 prefixes, [\d,]+/s", r.stderr
        )
        assert sending and sending[-1] == "8", r.stderr
        assert "replay " not in r.stdout.replace("replayed 8", ""), r.stdout
        # the last word per prefix came from YouTube itself; the ROA's maxLength 22 makes
        # even those invalid
        seen = {e["prefix"]: e for e in lab.events() if e.get("event") == "route"}
        assert set(seen) == {"208.65.153.0/24", "208.65.153.0/25", "208.65.153.128/25"}
        hijack = [e for e in lab.events() if e.get("event") == "route" and e["origin"] == 17557]
        assert hijack and all(e["state"] == "invalid" and e["action"] == "drop" for e in hijack)
        assert "origin AS17557 does not match" in hijack[0]["reason"]
    finally:
        lab.stop()
